// checkMtaSts against the lab: a DNS lab serving one zone per scenario, the lab HTTPS policy host with a
// test PKI, a DnsClient pointed at the DNS lab (never the system resolver). One scenario per finding code
// (docs/findings/mtasts.md), asserting code, status, host and the fix. Nothing leaves 127.0.0.0/8.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { checkMtaSts } from '../../src/check/mtasts.js';
import type { CheckEnvironment, Finding, MxHost } from '../../src/check/types.js';
import { DnsClient } from '../../src/dns/client.js';
import { FETCH_SEVERITY } from '../../src/fetch/policy.js';
import { stsIdFromDate } from '../../src/mtasts/record.js';
import { standardChain, TestPki } from '../helpers/pki.js';
import { type LabDnsServer, type LabRecord, type LabZone, startDnsServer } from '../lab/dns-server.js';
import { labCert, type PolicyHost, type SiteBehaviour, startPolicyHost } from '../lab/https-server.js';

const NOW = new Date('2026-03-01T12:00:00Z');
const FRESH_ID = stsIdFromDate(NOW); // 20260301120000
const LAB_IP = '127.0.0.1';

function policy(mode: string, mx: string[], maxAge = 1209600, extra = ''): string {
  return `version: STSv1\nmode: ${mode}\n${mx.map((m) => `mx: ${m}\n`).join('')}max_age: ${maxAge}\n${extra}`;
}

interface Scenario {
  /** TXT records at _mta-sts.<domain> (each a string, or the character-strings of one record). */
  txt?: Array<string | string[]>;
  /** The policy host's behaviour; omitted = no mta-sts.<domain> in DNS. */
  site?: SiteBehaviour;
  /** Extra records of the zone. */
  records?: LabRecord[];
  /** Zone flags. */
  zone?: Partial<Pick<LabZone, 'servfail' | 'bogus' | 'drop'>>;
  /** No A record at mta-sts.<domain> even though a site is served (the CNAME scenario adds its own). */
  noPolicyAddress?: boolean;
}

const GOOD = policy('enforce', ['mx1.good.test', '*.mail.good.test']);

const SCENARIOS: Record<string, Scenario> = {
  'good.test': {
    txt: ['v=STSv1; id=20260101000000', 'some-verification=abc'],
    site: { kind: 'serve', body: GOOD },
  },
  'none.test': {},
  'two.test': {
    txt: ['v=STSv1; id=1', 'v=STSv1; id=2'],
    site: { kind: 'serve', body: policy('enforce', ['mx.two.test']) },
  },
  'badtxt.test': {
    txt: ['v=STSv1; id=not-valid!'],
    site: { kind: 'serve', body: policy('enforce', ['mx.badtxt.test']) },
  },
  'noid.test': { txt: ['v=STSv1'] },
  'txtnote.test': {
    txt: [['v=STSv1; id=1; ', 'extra=yes']],
    site: { kind: 'serve', body: policy('enforce', ['mx.txtnote.test']) },
  },
  'txtspace.test': {
    txt: ['v=STSv1; id=1 '],
    site: { kind: 'serve', body: policy('enforce', ['mx.txtspace.test']) },
  },
  'servfail.test': { txt: ['v=STSv1; id=1'], zone: { servfail: true } },
  'bogus.test': { txt: ['v=STSv1; id=1'], zone: { bogus: true } },
  'drop.test': { txt: ['v=STSv1; id=1'], zone: { drop: true } },
  'nohost.test': { txt: ['v=STSv1; id=1'] },
  'status404.test': { txt: ['v=STSv1; id=1'], site: { kind: 'serve', status: 404, body: 'not found\n' } },
  'redirect.test': {
    txt: ['v=STSv1; id=1'],
    site: { kind: 'redirect', location: 'https://elsewhere.test/.well-known/mta-sts.txt' },
  },
  'huge.test': { txt: ['v=STSv1; id=1'], site: { kind: 'huge', bytes: 70 * 1024 } },
  'html.test': {
    txt: ['v=STSv1; id=1'],
    site: { kind: 'serve', body: policy('enforce', ['mx.html.test']), contentType: 'text/html' },
  },
  'charset.test': {
    txt: ['v=STSv1; id=1'],
    site: {
      kind: 'serve',
      body: policy('enforce', ['mx.charset.test']),
      contentType: 'text/plain; charset=iso-8859-1',
    },
  },
  'expired.test': { txt: ['v=STSv1; id=1'] }, // site added with its own certificate in before()
  'wrongname.test': { txt: ['v=STSv1; id=1'] },
  'invalid.test': {
    txt: ['v=STSv1; id=1'],
    site: { kind: 'serve', body: 'version: STSv1\nmode: enforce\nmax_age: 86400\n' },
  },
  'halfbuilt.test': { site: { kind: 'serve', status: 404, body: 'not found\n' } },
  'notxt.test': { site: { kind: 'serve', body: policy('enforce', ['mx.notxt.test']) } },
  'uncovered.test': {
    txt: ['v=STSv1; id=1'],
    site: { kind: 'serve', body: policy('enforce', ['mx1.uncovered.test']) },
  },
  'uncovered-testing.test': {
    txt: ['v=STSv1; id=1'],
    site: { kind: 'serve', body: policy('testing', ['mx1.uncovered-testing.test']) },
  },
  'wildcard.test': {
    txt: ['v=STSv1; id=1'],
    site: { kind: 'serve', body: policy('enforce', ['*.wildcard.test']) },
  },
  'stale.test': {
    txt: ['v=STSv1; id=1'],
    site: { kind: 'serve', body: policy('enforce', ['mx1.stale.test', 'old.stale.test']) },
  },
  'modenone.test': {
    txt: ['v=STSv1; id=1'],
    site: { kind: 'serve', body: 'version: STSv1\nmode: none\nmax_age: 86400\n' },
  },
  'shortage.test': {
    txt: ['v=STSv1; id=1'],
    site: { kind: 'serve', body: policy('enforce', ['mx.shortage.test'], 3600) },
  },
  'weekage.test': {
    txt: ['v=STSv1; id=1'],
    site: { kind: 'serve', body: policy('enforce', ['mx.weekage.test'], 86400) },
  },
  'weekage-testing.test': {
    txt: ['v=STSv1; id=1'],
    site: { kind: 'serve', body: policy('testing', ['mx.weekage-testing.test'], 86400) },
  },
  'warnings.test': {
    txt: ['v=STSv1; id=1'],
    site: {
      kind: 'serve',
      body: policy('enforce', ['mx.warnings.test', 'MX.warnings.test'], 1209600, 'comment: hello\n'),
    },
  },
  'dupmode.test': {
    txt: ['v=STSv1; id=1'],
    site: {
      kind: 'serve',
      body: 'version: STSv1\nmode: enforce\nmode: testing\nmx: mx.dupmode.test\nmax_age: 1209600\n',
    },
  },
  'idsame.test': {
    txt: ['v=STSv1; id=7'],
    site: { kind: 'serve', body: policy('enforce', ['mx2.idsame.test']) },
  },
  'cname.test': {
    txt: ['v=STSv1; id=1'],
    site: { kind: 'serve', body: policy('enforce', ['mx.cname.test']) },
    noPolicyAddress: true,
    records: [
      { name: 'mta-sts.cname.test', type: 'CNAME', data: 'pages.cname.test' },
      { name: 'pages.cname.test', type: 'A', data: LAB_IP },
    ],
  },
  'private.test': {
    txt: ['v=STSv1; id=1'],
    site: { kind: 'serve', body: policy('enforce', ['mx.private.test']) },
  },
};

function hosts(...names: string[]): MxHost[] {
  return names.map((host, i) => ({
    host,
    preference: 10 * (i + 1),
    addresses: ['192.0.2.1'],
    addressesSecure: false,
  }));
}

let pki: TestPki;
let dns: LabDnsServer;
let https: PolicyHost;
let resolver: DnsClient;
let ca: string[];

before(async () => {
  pki = TestPki.create('mxguard-check-mtasts-');
  const policyHosts = Object.keys(SCENARIOS).map((d) => `mta-sts.${d}`);
  const chain = standardChain(pki, { host: 'mta-sts.good.test', sans: policyHosts });
  ca = [chain.root.pem];
  const expired = pki.issue('expired', {
    issuer: chain.intermediate,
    sans: ['mta-sts.expired.test'],
    notAfter: new Date('2021-01-01T00:00:00Z'),
  });
  const wrongName = pki.issue('wrong-name', { issuer: chain.intermediate, sans: ['www.wrongname.test'] });
  const sites: Record<string, SiteBehaviour> = {
    'mta-sts.expired.test': {
      kind: 'serve',
      body: GOOD,
      cert: labCert(expired.key, [expired, chain.intermediate]),
    },
    'mta-sts.wrongname.test': {
      kind: 'serve',
      body: GOOD,
      cert: labCert(wrongName.key, [wrongName, chain.intermediate]),
    },
  };
  for (const [domain, s] of Object.entries(SCENARIOS)) if (s.site) sites[`mta-sts.${domain}`] = s.site;
  https = await startPolicyHost({
    defaultCert: labCert(chain.leaf.key, [chain.leaf, chain.intermediate]),
    sites,
  });

  const zones: LabZone[] = Object.entries(SCENARIOS).map(([domain, s]) => {
    const records: LabRecord[] = [...(s.records ?? [])];
    for (const txt of s.txt ?? []) records.push({ name: `_mta-sts.${domain}`, type: 'TXT', data: txt });
    const served = s.site !== undefined || domain === 'expired.test' || domain === 'wrongname.test';
    if (served && !s.noPolicyAddress) records.push({ name: `mta-sts.${domain}`, type: 'A', data: LAB_IP });
    records.push({ name: domain, type: 'A', data: '192.0.2.1' });
    return { origin: domain, records, ...s.zone };
  });
  dns = await startDnsServer(zones);
  resolver = new DnsClient({ servers: [{ host: dns.host, port: dns.port }], timeoutMs: 400, tries: 2 });
});

after(async () => {
  await https?.stop();
  await dns?.stop();
  pki?.remove();
});

function env(overrides: Partial<CheckEnvironment> = {}): CheckEnvironment {
  return {
    resolver,
    dnssecValidating: false,
    ca,
    allowPrivate: true,
    timeoutMs: 10_000,
    smtpPort: 25,
    httpsPort: https.port,
    dkimSelectors: [],
    now: NOW,
    ...overrides,
  };
}

/** Every code seen in any scenario, checked against the documentation at the end. */
const seenCodes = new Set<string>();

async function check(
  domain: string,
  mx: MxHost[] = hosts(`mx.${domain}`),
  overrides: Partial<CheckEnvironment> = {},
) {
  const result = await checkMtaSts(domain, env(overrides), mx);
  for (const f of result.findings) {
    seenCodes.add(f.code);
    assert.equal(f.section, 'mtasts');
    if (f.status !== 'pass' && f.status !== 'info' && f.code !== 'MTASTS_MODE_TESTING') {
      assert.ok(f.fix === undefined || f.fix.length > 0);
    }
  }
  return result;
}

function only(findings: Finding[], code: string): Finding {
  const matching = findings.filter((f) => f.code === code);
  assert.equal(matching.length, 1, `expected one ${code}, got: ${JSON.stringify(findings, null, 1)}`);
  return matching[0]!;
}

function codes(findings: Finding[]): string[] {
  return findings.map((f) => f.code).sort();
}

describe('checkMtaSts: a correct deployment', () => {
  it('passes TXT, policy, coverage, mode and certificate, and returns the state', async () => {
    const { findings, state } = await check('good.test', hosts('mx1.good.test', 'in.mail.good.test'));
    assert.deepEqual(codes(findings), [
      'MTASTS_CERT',
      'MTASTS_MODE',
      'MTASTS_MX_COVERED',
      'MTASTS_POLICY',
      'MTASTS_TXT',
    ]);
    assert.ok(findings.every((f) => f.status === 'pass'));
    assert.equal(only(findings, 'MTASTS_POLICY').host, 'mta-sts.good.test');
    assert.match(only(findings, 'MTASTS_CERT').message, /until 2090-01-01/);
    assert.equal(state.id, '20260101000000');
    assert.equal(state.body, GOOD);
    assert.equal(state.policy?.mode, 'enforce');
    assert.deepEqual(state.policy?.mx, ['mx1.good.test', '*.mail.good.test']);
  });
});

describe('checkMtaSts: the _mta-sts TXT record', () => {
  it('no MTA-STS at all is a warning (never a pass) whose fix is the records to publish', async () => {
    const { findings, state } = await check('none.test', hosts('mx1.none.test', 'mx2.none.test'));
    assert.deepEqual(codes(findings), ['MTASTS_NONE']);
    const f = only(findings, 'MTASTS_NONE');
    assert.equal(f.status, 'warn');
    assert.ok(f.fix?.includes(`_mta-sts.none.test. IN TXT "v=STSv1; id=${FRESH_ID}"`), f.fix);
    assert.ok(
      f.fix?.includes('mode: testing\nmx: mx1.none.test\nmx: mx2.none.test\nmax_age: 86400\n'),
      f.fix,
    );
    assert.ok(f.fix?.includes('https://mta-sts.none.test/.well-known/mta-sts.txt'), f.fix);
    assert.deepEqual(state, {});
  });

  it('no TXT record and a policy host that answers 404: still MTASTS_NONE, saying what the host did', async () => {
    const { findings } = await check('halfbuilt.test');
    assert.deepEqual(codes(findings), ['MTASTS_NONE']);
    assert.match(
      only(findings, 'MTASTS_NONE').message,
      /\(https:\/\/mta-sts\.halfbuilt\.test(:\d+)?\/\.well-known\/mta-sts\.txt answered 404/,
    );
  });

  it('no MTA-STS and no MX hosts is info: nothing to protect', async () => {
    const { findings } = await check('none.test', []);
    const f = only(findings, 'MTASTS_NONE');
    assert.equal(f.status, 'info');
    assert.equal(f.fix, undefined);
  });

  it('two v=STSv1 records fail (RFC 8461 §3.1) and the fix is one record', async () => {
    const { findings, state } = await check('two.test');
    const f = only(findings, 'MTASTS_TXT_MULTIPLE');
    assert.equal(f.status, 'fail');
    assert.match(f.message, /2 "v=STSv1" records/);
    assert.ok(f.fix?.includes(`_mta-sts.two.test. IN TXT "v=STSv1; id=${FRESH_ID}"`));
    assert.equal(state.id, undefined);
    // the policy is still fetched and judged
    assert.equal(only(findings, 'MTASTS_POLICY').status, 'pass');
  });

  it('a syntax error fails with the parser message', async () => {
    const { findings } = await check('badtxt.test');
    const f = only(findings, 'MTASTS_TXT_SYNTAX');
    assert.equal(f.status, 'fail');
    assert.match(f.message, /id "not-valid!" must be 1 to 32 letters and digits/);
    assert.ok(f.fix?.includes(`id=${FRESH_ID}`));
  });

  it('"v=STSv1" without ";" is reported as invalid, not as missing', async () => {
    const { findings } = await check('noid.test');
    assert.equal(only(findings, 'MTASTS_TXT_SYNTAX').status, 'fail');
    assert.ok(!findings.some((f) => f.code === 'MTASTS_NONE'));
    // there is no policy host either: with a TXT record that is a policy fetch failure
    assert.equal(only(findings, 'MTASTS_FETCH_DNS').status, 'fail');
  });

  it('parser notes are info and warnings warn (strings of one record joined)', async () => {
    const note = await check('txtnote.test');
    assert.equal(only(note.findings, 'MTASTS_TXT_NOTE').status, 'info');
    assert.equal(note.state.id, '1');
    const space = await check('txtspace.test');
    const f = only(space.findings, 'MTASTS_TXT_WARNING');
    assert.equal(f.status, 'warn');
    assert.match(f.message, /white space/);
  });

  it('SERVFAIL, DNSSEC-bogus and timeouts fail and say which', async () => {
    const servfail = only((await check('servfail.test')).findings, 'MTASTS_TXT_DNS');
    assert.equal(servfail.status, 'fail');
    assert.match(servfail.message, /SERVFAIL for TXT _mta-sts\.servfail\.test/);
    const bogus = only((await check('bogus.test')).findings, 'MTASTS_TXT_DNS');
    assert.match(bogus.message, /fails DNSSEC validation \(bogus\)/);
    const drop = await check('drop.test', hosts('mx.drop.test'), { timeoutMs: 3000 });
    assert.match(only(drop.findings, 'MTASTS_TXT_DNS').message, /timeout/);
    assert.equal(only(drop.findings, 'MTASTS_FETCH_DNS').status, 'fail');
  });
});

describe('checkMtaSts: the policy fetch', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['nohost.test', 'MTASTS_FETCH_DNS', /no A or AAAA record.*policy fetch failure/],
    ['status404.test', 'MTASTS_FETCH_STATUS', /answered 404/],
    ['redirect.test', 'MTASTS_FETCH_REDIRECT', /redirects \(301\) to https:\/\/elsewhere\.test/],
    ['huge.test', 'MTASTS_FETCH_TOO_LARGE', /more than 65536 bytes/],
    ['expired.test', 'MTASTS_FETCH_CERT_EXPIRED', /expired/],
    ['wrongname.test', 'MTASTS_FETCH_CERT_NAME', /www\.wrongname\.test, not for mta-sts\.wrongname\.test/],
    ['invalid.test', 'MTASTS_FETCH_POLICY_INVALID', /mode enforce needs at least one "mx" field/],
  ];
  for (const [domain, code, message] of cases) {
    it(`${domain}: ${code} with FETCH_SEVERITY's status, the policy host and a fix`, async () => {
      const { findings, state } = await check(domain);
      const f = only(findings, code);
      assert.equal(f.status, FETCH_SEVERITY[code as keyof typeof FETCH_SEVERITY]);
      assert.equal(f.status, 'fail');
      assert.equal(f.host, `mta-sts.${domain}`);
      assert.match(f.message, message);
      assert.ok(f.fix && f.fix.length > 0);
      assert.equal(state.policy, undefined);
    });
  }

  it('a missing policy or a bad status gets the policy to serve as its fix', async () => {
    const f = only((await check('status404.test')).findings, 'MTASTS_FETCH_STATUS');
    assert.ok(f.fix?.includes('https://mta-sts.status404.test/.well-known/mta-sts.txt with status 200'));
    assert.ok(f.fix?.includes('version: STSv1\nmode: testing\nmx: mx.status404.test\nmax_age: 86400\n'));
    const redirect = only((await check('redirect.test')).findings, 'MTASTS_FETCH_REDIRECT');
    assert.match(redirect.fix ?? '', /redirects are not followed/);
    const cert = only((await check('expired.test')).findings, 'MTASTS_FETCH_CERT_EXPIRED');
    assert.match(cert.fix ?? '', /certificate for mta-sts\.expired\.test/);
  });

  it('a wrong Content-Type or charset warns, and the policy is still used', async () => {
    const html = await check('html.test');
    const f = only(html.findings, 'MTASTS_FETCH_CONTENT_TYPE');
    assert.equal(f.status, 'warn');
    assert.equal(f.host, 'mta-sts.html.test');
    assert.match(f.fix ?? '', /Content-Type: text\/plain; charset=utf-8/);
    assert.equal(html.state.policy?.mode, 'enforce');
    const charset = only((await check('charset.test')).findings, 'MTASTS_FETCH_CHARSET');
    assert.equal(charset.status, 'warn');
  });

  it('a policy without the TXT record warns: senders never look', async () => {
    const { findings, state } = await check('notxt.test');
    const f = only(findings, 'MTASTS_TXT_MISSING');
    assert.equal(f.status, 'warn');
    assert.equal(f.fix, `_mta-sts.notxt.test. IN TXT "v=STSv1; id=${FRESH_ID}"`);
    assert.ok(!findings.some((x) => x.code === 'MTASTS_NONE'));
    assert.equal(state.id, undefined);
    assert.equal(state.policy?.mode, 'enforce');
  });

  it('refuses the private policy address without allowPrivate, naming --allow-private', async () => {
    const { findings } = await check('private.test', hosts('mx.private.test'), { allowPrivate: false });
    const f = only(findings, 'MTASTS_FETCH_PRIVATE_ADDRESS');
    assert.equal(f.status, 'fail');
    assert.match(f.message, /127\.0\.0\.1 \(loopback/);
    assert.match(f.message, /--allow-private/);
    assert.match(f.fix ?? '', /--allow-private/);
    const before = https.requests.length;
    await check('private.test', hosts('mx.private.test'), { allowPrivate: false });
    assert.equal(https.requests.length, before, 'no request reached the lab host');
  });

  it('a CNAME on the policy host is noted as info; the policy is fetched through it', async () => {
    const { findings } = await check('cname.test');
    const f = only(findings, 'MTASTS_HOST_CNAME');
    assert.equal(f.status, 'info');
    assert.equal(f.host, 'mta-sts.cname.test');
    assert.match(f.message, /pages\.cname\.test.*Exchange Online/);
    assert.equal(only(findings, 'MTASTS_POLICY').status, 'pass');
    assert.ok(
      !(await check('good.test', hosts('mx1.good.test'))).findings.some(
        (x) => x.code === 'MTASTS_HOST_CNAME',
      ),
    );
  });
});

describe('checkMtaSts: policy contents', () => {
  it('an MX host not covered under enforce fails, with the corrected policy and a new id', async () => {
    const { findings } = await check('uncovered.test', hosts('mx1.uncovered.test', 'mx2.uncovered.test'));
    const f = only(findings, 'MTASTS_MX_NOT_COVERED');
    assert.equal(f.status, 'fail');
    assert.equal(f.host, 'mx2.uncovered.test');
    assert.match(f.message, /refuse to deliver/);
    assert.ok(
      f.fix?.includes('mode: enforce\nmx: mx1.uncovered.test\nmx: mx2.uncovered.test\nmax_age: 1209600\n'),
      f.fix,
    );
    assert.ok(f.fix?.includes(`_mta-sts.uncovered.test. IN TXT "v=STSv1; id=${FRESH_ID}"`), f.fix);
    assert.ok(!findings.some((x) => x.code === 'MTASTS_MX_COVERED'));
  });

  it('an MX host not covered under testing warns; one policy fix (still testing), the mode advice points to it', async () => {
    const { findings } = await check(
      'uncovered-testing.test',
      hosts('mx1.uncovered-testing.test', 'mx2.uncovered-testing.test'),
    );
    const f = only(findings, 'MTASTS_MX_NOT_COVERED');
    assert.equal(f.status, 'warn');
    assert.equal(f.host, 'mx2.uncovered-testing.test');
    assert.ok(
      f.fix?.includes('mode: testing\nmx: mx1.uncovered-testing.test\nmx: mx2.uncovered-testing.test\n'),
      f.fix,
    );
    const mode = only(findings, 'MTASTS_MODE_TESTING');
    assert.equal(mode.status, 'warn');
    assert.match(mode.message, /switch to enforce once the corrected policy above is published/);
    assert.equal(mode.fix, undefined);
    // Never two different policies to publish.
    const policies = findings.filter((x) => x.fix?.includes('version: STSv1'));
    assert.equal(policies.length, 1, policies.map((x) => x.code).join(', '));
  });

  it('without corrections, testing mode advises enforce with the same mx list', async () => {
    const { findings } = await check('uncovered-testing.test', hosts('mx1.uncovered-testing.test'));
    const mode = only(findings, 'MTASTS_MODE_TESTING');
    assert.match(mode.message, /switch to enforce once the TLS-RPT reports are clean/);
    assert.ok(mode.fix?.includes('mode: enforce\nmx: mx1.uncovered-testing.test\n'), mode.fix);
  });

  it('a wildcard covers exactly one label (RFC 8461 §4.1)', async () => {
    const { findings } = await check('wildcard.test', hosts('a.wildcard.test', 'a.b.wildcard.test'));
    const f = only(findings, 'MTASTS_MX_NOT_COVERED');
    assert.equal(f.host, 'a.b.wildcard.test');
    assert.match(f.message, /"\*\.wildcard\.test" matches exactly one label/);
    assert.ok(f.fix?.includes('mx: *.wildcard.test\nmx: a.b.wildcard.test\n'), f.fix);
  });

  it('a policy mx that matches no MX host is stale', async () => {
    const { findings } = await check('stale.test', hosts('mx1.stale.test'));
    const f = only(findings, 'MTASTS_MX_STALE');
    assert.equal(f.status, 'warn');
    assert.match(f.message, /"old\.stale\.test" matches none/);
    assert.ok(f.fix?.includes('mode: enforce\nmx: mx1.stale.test\nmax_age'), f.fix);
    assert.equal(only(findings, 'MTASTS_MX_COVERED').status, 'pass');
  });

  it('a missing MX and a stale pattern: the one corrected policy is given once, the other finding points to it', async () => {
    const { findings } = await check('stale.test', hosts('mx1.stale.test', 'mx2.stale.test'));
    const missing = only(findings, 'MTASTS_MX_NOT_COVERED');
    const stale = only(findings, 'MTASTS_MX_STALE');
    assert.ok(missing.fix?.includes('mx: mx1.stale.test\nmx: mx2.stale.test\n'), missing.fix);
    assert.equal(stale.fix, undefined);
    assert.match(stale.message, /\(the fix of MTASTS_MX_NOT_COVERED covers this\)$/);
  });

  it('mode none warns (policy being withdrawn) and skips coverage', async () => {
    const { findings } = await check('modenone.test');
    const f = only(findings, 'MTASTS_MODE_NONE');
    assert.equal(f.status, 'warn');
    assert.match(f.message, /withdrawn/);
    assert.match(f.fix ?? '', /mode: testing\nmx: mx\.modenone\.test/);
    assert.ok(!findings.some((x) => x.code.startsWith('MTASTS_MX_')));
  });

  it('max_age under a day warns; under a week warns under enforce and is info while testing', async () => {
    const day = only((await check('shortage.test')).findings, 'MTASTS_MAX_AGE_UNDER_DAY');
    assert.equal(day.status, 'warn');
    assert.ok(day.fix?.includes('max_age: 1209600'));
    assert.equal(only((await check('weekage.test')).findings, 'MTASTS_MAX_AGE_UNDER_WEEK').status, 'warn');
    assert.equal(
      only((await check('weekage-testing.test')).findings, 'MTASTS_MAX_AGE_UNDER_WEEK').status,
      'info',
    );
  });

  it("the parser's warnings warn and its notes are info (non-strict parse)", async () => {
    const { findings } = await check('warnings.test');
    const warning = only(findings, 'MTASTS_POLICY_WARNING');
    assert.equal(warning.status, 'warn');
    assert.match(warning.message, /line 4: mx "MX.warnings.test" is already listed on line 3/);
    const note = only(findings, 'MTASTS_POLICY_NOTE');
    assert.equal(note.status, 'info');
    assert.match(note.message, /unknown field "comment"/);
  });
});

describe('checkMtaSts: a repeated field', () => {
  it('fails: senders use the first instance but validators reject it; the fix keeps the first', async () => {
    const { findings, state } = await check('dupmode.test');
    const f = only(findings, 'MTASTS_POLICY_DUPLICATE');
    assert.equal(f.status, 'fail');
    assert.match(f.message, /line 3: "mode" appears again \(first on line 2\)/);
    assert.ok(
      f.fix?.includes('version: STSv1\nmode: enforce\nmx: mx.dupmode.test\nmax_age: 1209600\n'),
      f.fix,
    );
    assert.ok(f.fix?.includes(`id=${FRESH_ID}`));
    assert.equal(state.policy?.mode, 'enforce');
  });
});

describe('checkMtaSts: certificate expiry and id changes', () => {
  it('a policy certificate expiring within 14 days warns; one already expired (by env.now) fails', async () => {
    const soon = await check('good.test', hosts('mx1.good.test'), { now: new Date('2089-12-25T00:00:00Z') });
    const f = only(soon.findings, 'MTASTS_CERT_EXPIRING');
    assert.equal(f.status, 'warn');
    assert.equal(f.host, 'mta-sts.good.test');
    assert.match(f.message, /expires in 7 day/);
    const late = await check('good.test', hosts('mx1.good.test'), { now: new Date('2090-02-01T00:00:00Z') });
    assert.equal(only(late.findings, 'MTASTS_CERT_EXPIRED').status, 'fail');
  });

  it('the same id with a changed body warns, with a fresh id as fix', async () => {
    const previousPolicy = { id: '7', body: policy('enforce', ['mx1.idsame.test']) };
    const { findings } = await check('idsame.test', hosts('mx2.idsame.test'), { previousPolicy });
    const f = only(findings, 'MTASTS_ID_UNCHANGED');
    assert.equal(f.status, 'warn');
    assert.equal(f.fix, `_mta-sts.idsame.test. IN TXT "v=STSv1; id=${FRESH_ID}"`);
  });

  it('no warning when the id changed, or when only line ends differ', async () => {
    const body = policy('enforce', ['mx2.idsame.test']);
    const changedId = await check('idsame.test', hosts('mx2.idsame.test'), {
      previousPolicy: { id: '6', body: policy('enforce', ['mx1.idsame.test']) },
    });
    assert.ok(!changedId.findings.some((f) => f.code === 'MTASTS_ID_UNCHANGED'));
    const crlf = await check('idsame.test', hosts('mx2.idsame.test'), {
      previousPolicy: { id: '7', body: body.replace(/\n/g, '\r\n') },
    });
    assert.ok(!crlf.findings.some((f) => f.code === 'MTASTS_ID_UNCHANGED'));
  });
});

describe('docs/findings/mtasts.md', () => {
  it('documents every code the scenarios produced, and every fetch code', () => {
    const doc = readFileSync(new URL('../../docs/findings/mtasts.md', import.meta.url), 'utf8');
    const documented = new Set([...doc.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]));
    assert.ok(seenCodes.size > 20, `only ${seenCodes.size} codes seen`);
    for (const code of [...seenCodes, ...Object.keys(FETCH_SEVERITY)]) {
      assert.ok(documented.has(code), `${code} is not in docs/findings/mtasts.md`);
    }
  });
});
