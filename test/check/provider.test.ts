// `check --preset` (src/check/provider.ts): the provider section for Exchange Online and Google Workspace.
// checkProvider runs against the lab DNS server (test/lab/dns-server.ts) for the SPF lookup, with MX hosts and
// policies as the mx and mtasts sections hand them over; the CLI test runs a whole `check --preset --json`
// against the lab, where the MX hosts carry the providers' real host name forms.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { checkProvider, type ProviderInput } from '../../src/check/provider.js';
import { type CheckEnvironment, type Finding, finding, type MxHost } from '../../src/check/types.js';
import { PRESETS, type Preset } from '../../src/common/presets.js';
import { splitTxt } from '../../src/common/txt.js';
import { DnsClient } from '../../src/dns/client.js';
import { parsePolicy } from '../../src/mtasts/policy.js';
import { runCliAsync } from '../helpers/cli.js';
import { type LabDnsServer, type LabRecord, startDnsServer } from '../lab/dns-server.js';

const EXO = PRESETS['exchange-online'] as Preset;
const GOOGLE = PRESETS['google-workspace'] as Preset;

function txt(name: string, value: string): LabRecord {
  return { name, type: 'TXT', data: splitTxt(value) };
}
function mxHost(host: string, preference = 0): MxHost {
  return { host, preference, addresses: ['192.0.2.25'], addressesSecure: false };
}
function policy(...mx: string[]) {
  const text = ['version: STSv1', 'mode: enforce', ...mx.map((m) => `mx: ${m}`), 'max_age: 604800', ''].join(
    '\n',
  );
  return parsePolicy(text).policy;
}
const codes = (findings: Finding[]) => findings.map((f) => `${f.code}:${f.status}`);
const named = (findings: Finding[], code: string) => findings.filter((f) => f.code === code);

let dns: LabDnsServer;
let env: CheckEnvironment;

before(async () => {
  dns = await startDnsServer([
    {
      origin: 'test',
      records: [
        txt('exo.test', 'v=spf1 include:spf.protection.outlook.com -all'),
        txt('noinclude.test', 'v=spf1 ip4:192.0.2.1 ~all'),
        txt('google.test', 'v=spf1 include:_spf.google.com ~all'),
      ],
    },
  ]);
  env = {
    resolver: new DnsClient({ servers: [{ host: dns.host, port: dns.port }] }),
    dnssecValidating: true,
    ca: [],
    allowPrivate: true,
    timeoutMs: 2000,
    smtpPort: 25,
    httpsPort: 443,
    dkimSelectors: [],
    now: new Date('2026-12-01T00:00:00Z'),
  };
});
after(async () => dns?.stop());

function input(domain: string, preset: Preset, extra: Partial<ProviderInput>): ProviderInput {
  return { domain, preset, hosts: [], mxSecure: false, stsFindings: [], ...extra };
}

describe('checkProvider: Exchange Online', () => {
  it('a tenant on the legacy endpoint, ready in every respect but DANE: each finding says so', async () => {
    const found = await checkProvider(
      input('exo.test', EXO, {
        hosts: [mxHost('exo-test.mail.protection.outlook.com')],
        policy: policy('*.mail.protection.outlook.com'),
      }),
      env,
    );
    assert.deepEqual(codes(found), [
      'PROVIDER_MX:pass',
      'PROVIDER_POLICY_NOT_READY:info',
      'PROVIDER_DANE_NOT_READY:info',
      'PROVIDER_POLICY_NO_REDIRECT:pass',
      'PROVIDER_SPF:pass',
    ]);
    assert.ok(found.every((f) => f.section === 'provider'));
    // The zone is not signed: that is what DANE still needs (preference 0 and one MX are fine).
    assert.match(named(found, 'PROVIDER_DANE_NOT_READY')[0]!.message, /DNSSEC-signed/);
    assert.doesNotMatch(named(found, 'PROVIDER_DANE_NOT_READY')[0]!.message, /one MX record|preference/);
  });

  it('*.mx.microsoft in the policy is a warning: it cannot match <domain>.<x>-v1.mx.microsoft', async () => {
    const found = await checkProvider(
      input('exo.test', EXO, {
        hosts: [mxHost('exo-test.o-v1.mx.microsoft')],
        mxSecure: true,
        policy: policy('*.mx.microsoft'),
      }),
      env,
    );
    const warn = named(found, 'PROVIDER_MX_WILDCARD_ONE_LABEL');
    assert.equal(warn.length, 1);
    assert.equal(warn[0]!.status, 'warn');
    assert.match(warn[0]!.message, /one label only/);
    // On the DNSSEC endpoint already: no "move" advice, DANE endpoint passes.
    assert.deepEqual(named(found, 'PROVIDER_POLICY_NOT_READY'), []);
    assert.equal(named(found, 'PROVIDER_DANE_ENDPOINT')[0]?.status, 'pass');
  });

  it('DANE preconditions: two MX hosts and a signed zone name only the MX count', async () => {
    const found = await checkProvider(
      input('exo.test', EXO, {
        hosts: [mxHost('exo-test.mail.protection.outlook.com', 10), mxHost('backup.exo.test', 20)],
        mxSecure: true,
      }),
      env,
    );
    const dane = named(found, 'PROVIDER_DANE_NOT_READY')[0]!;
    assert.match(dane.message, /one MX record \(it has 2\)/);
    assert.doesNotMatch(dane.message, /DNSSEC-signed/);
    // The backup MX is not at Exchange Online: mail that reaches it skips the provider.
    const mx = named(found, 'PROVIDER_MX')[0]!;
    assert.equal(mx.status, 'warn');
    assert.match(mx.message, /backup\.exo\.test/);
    assert.match(mx.fix ?? '', /backup\.exo\.test/);
  });

  it('a preference other than 0 or 10 is named; a single signed MX at 0 can enable DANE', async () => {
    const odd = await checkProvider(
      input('exo.test', EXO, { hosts: [mxHost('exo-test.mail.protection.outlook.com', 5)], mxSecure: true }),
      env,
    );
    assert.match(named(odd, 'PROVIDER_DANE_NOT_READY')[0]!.message, /preference of 0 or 10/);
    const ready = await checkProvider(
      input('exo.test', EXO, { hosts: [mxHost('exo-test.mail.protection.outlook.com', 0)], mxSecure: true }),
      env,
    );
    assert.match(named(ready, 'PROVIDER_DANE_NOT_READY')[0]!.message, /can be enabled/);
  });

  it('an SPF record without the include gets a fix that keeps its other terms and puts the include before all', async () => {
    const found = await checkProvider(input('noinclude.test', EXO, { hosts: [] }), env);
    const spf = named(found, 'PROVIDER_SPF')[0]!;
    assert.equal(spf.status, 'warn');
    assert.equal(
      spf.fix,
      'noinclude.test. IN TXT "v=spf1 ip4:192.0.2.1 include:spf.protection.outlook.com ~all"',
    );
  });

  it('a redirecting policy host: the provider finding follows from MTASTS_FETCH_REDIRECT, without a fix', async () => {
    const redirect = finding('mtasts', 'fail', 'MTASTS_FETCH_REDIRECT', 'redirects', { fix: 'serve it' });
    const found = await checkProvider(input('exo.test', EXO, { stsFindings: [redirect] }), env);
    const hosting = named(found, 'PROVIDER_POLICY_NO_REDIRECT')[0]!;
    assert.equal(hosting.status, 'skip');
    assert.equal(hosting.cause, 'MTASTS_FETCH_REDIRECT');
    assert.equal(hosting.fix, undefined);
  });

  it('MX hosts elsewhere (a gateway in front): one info, no MX verdicts', async () => {
    const found = await checkProvider(input('exo.test', EXO, { hosts: [mxHost('mx.gateway.test')] }), env);
    assert.deepEqual(codes(found), ['PROVIDER_MX_NONE:info', 'PROVIDER_SPF:pass']);
  });
});

describe('checkProvider: Google Workspace', () => {
  it('classic aspmx hosts and a policy without smtp.google.com: the move to smtp.google.com needs it first', async () => {
    const found = await checkProvider(
      input('google.test', GOOGLE, {
        hosts: [mxHost('aspmx.l.google.com', 1), mxHost('alt1.aspmx.l.google.com', 5)],
        policy: policy('aspmx.l.google.com', '*.aspmx.l.google.com'),
      }),
      env,
    );
    const ready = named(found, 'PROVIDER_POLICY_NOT_READY')[0]!;
    assert.equal(ready.status, 'info');
    assert.equal(ready.fix, 'mx: smtp.google.com');
    assert.equal(named(found, 'PROVIDER_MX')[0]!.status, 'pass');
    // No Exchange Online DANE advice for Google.
    assert.deepEqual(named(found, 'PROVIDER_DANE_NOT_READY'), []);
  });

  it('the policy already lists smtp.google.com: ready', async () => {
    const found = await checkProvider(
      input('google.test', GOOGLE, {
        hosts: [mxHost('aspmx.l.google.com', 1)],
        policy: policy('smtp.google.com', 'aspmx.l.google.com', '*.aspmx.l.google.com'),
      }),
      env,
    );
    assert.equal(named(found, 'PROVIDER_POLICY_READY')[0]?.status, 'pass');
    assert.deepEqual(named(found, 'PROVIDER_POLICY_NOT_READY'), []);
  });

  it('backup hosts under googlemail.com are Google hosts', async () => {
    const found = await checkProvider(
      input('google.test', GOOGLE, {
        hosts: [mxHost('smtp.google.com', 1), mxHost('aspmx2.googlemail.com', 10)],
      }),
      env,
    );
    assert.equal(named(found, 'PROVIDER_MX')[0]!.status, 'pass');
  });
});

describe('check --preset (CLI, lab DNS)', () => {
  let lab: LabDnsServer;
  before(async () => {
    lab = await startDnsServer([
      {
        origin: '.',
        secure: true,
        records: [
          { name: '.', type: 'DNSKEY', data: { flags: 257, algorithm: 13, key: Buffer.alloc(64, 1) } },
        ],
      },
      {
        origin: 'contoso.test',
        records: [
          {
            name: 'contoso.test',
            type: 'MX',
            data: { preference: 0, exchange: 'contoso-test.mail.protection.outlook.com' },
          },
          txt('contoso.test', 'v=spf1 -all'),
        ],
      },
      {
        origin: 'outlook.com',
        records: [{ name: 'contoso-test.mail.protection.outlook.com', type: 'A', data: '127.0.0.1' }],
      },
    ]);
  });
  after(async () => lab?.stop());

  it('adds the Provider section to --json, and the section to the text output', async () => {
    const args = [
      'check',
      'contoso.test',
      '--preset',
      'exchange-online',
      '--resolver',
      `${lab.host}:${lab.port}`,
    ];
    // No SMTP or HTTPS server in this lab: port 9 refuses at once, so only the DNS-based verdicts matter here.
    const network = ['--allow-private', '--smtp-port', '9', '--https-port', '9', '--timeout', '2'];
    const r = await runCliAsync([...args, ...network, '--json']);
    const report = JSON.parse(r.stdout) as { findings: Finding[] };
    const provider = report.findings.filter((f) => f.section === 'provider');
    assert.deepEqual(codes(provider), [
      'PROVIDER_MX:pass',
      'PROVIDER_DANE_NOT_READY:info',
      'PROVIDER_SPF:warn',
    ]);
    // Sections keep their order: provider last.
    assert.equal(report.findings.at(-1)!.section, 'provider');
    const text = await runCliAsync([...args, ...network]);
    assert.match(text.stdout, /Provider \(--preset\)/);
    assert.match(text.stdout, /include:spf\.protection\.outlook\.com/);
  });
});
