// `mxguard check` end to end through the built command, against lab DNS, HTTPS and SMTP servers on loopback.
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type CliResult, runCliAsync } from '../helpers/cli.js';
import { type StandardChain, standardChain, TestPki } from '../helpers/pki.js';
import { type LabDnsServer, startDnsServer } from '../lab/dns-server.js';
import { labCert, type PolicyHost, startPolicyHost } from '../lab/https-server.js';
import { type LabSmtpServer, startSmtpServer } from '../lab/smtp-server.js';

const SECTIONS = ['mx', 'mtasts', 'tls', 'dane', 'senders', 'tlsrpt', 'spf', 'dmarc', 'dkim', 'provider'];
const STATUSES = ['pass', 'warn', 'fail', 'skip', 'info'];
const ROOT_KEY = { flags: 257, algorithm: 13, key: Buffer.alloc(64, 7) };
const GOOD_POLICY = 'version: STSv1\nmode: enforce\nmx: mx.good.test\nmax_age: 1209600\n';

interface Finding {
  section: string;
  status: string;
  code: string;
  message: string;
  host?: string;
  fix?: string;
  sender?: string;
  answer?: string;
}
interface Report {
  domain: string;
  status: string;
  findings: Finding[];
  error?: string;
}

let pki: TestPki;
let chain: StandardChain;
let dns: LabDnsServer;
let smtp: LabSmtpServer;
let https: PolicyHost;
let caFile: string;

/** Runs `check` without blocking the event loop: the lab servers live in this process. */
function runCheck(args: string[], input?: string): Promise<CliResult> {
  return runCliAsync(['check', ...args], input === undefined ? {} : { input });
}

function labArgs(extra: string[] = []): string[] {
  return [
    '--resolver',
    `${dns.host}:${dns.port}`,
    '--ca-file',
    caFile,
    '--smtp-port',
    String(smtp.port),
    '--https-port',
    String(https.port),
    '--timeout',
    '5',
    ...extra,
  ];
}

function spki256(pem: string): string {
  const der = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex');
}

function assertSchema(report: Report): void {
  assert.equal(typeof report.domain, 'string');
  assert.ok(['pass', 'warn', 'fail', 'error'].includes(report.status), report.status);
  for (const f of report.findings) {
    assert.ok(SECTIONS.includes(f.section), `section ${f.section}`);
    assert.ok(STATUSES.includes(f.status), `status ${f.status}`);
    assert.match(f.code, /^[A-Z][A-Z0-9_]+$/);
    assert.equal(typeof f.message, 'string');
  }
}

before(async () => {
  pki = TestPki.create();
  chain = standardChain(pki, { host: 'mx.good.test' });
  caFile = chain.root.certPath;
  smtp = await startSmtpServer({ cert: labCert(chain.leaf.key, [chain.leaf, chain.intermediate]) });
  // Each policy host has a certificate for its own name, from the same test CA.
  const policyGood = pki.issue('policy-good', { issuer: chain.intermediate, sans: ['mta-sts.good.test'] });
  const policyBad = pki.issue('policy-bad', { issuer: chain.intermediate, sans: ['mta-sts.bad.test'] });
  https = await startPolicyHost({
    sites: {
      'mta-sts.good.test': {
        kind: 'serve',
        body: GOOD_POLICY,
        cert: labCert(policyGood.key, [policyGood, chain.intermediate]),
      },
      'mta-sts.bad.test': {
        kind: 'serve',
        body: 'version: STSv1\nmode: enforce\nmx: other.bad.test\nmax_age: 1209600\n',
        cert: labCert(policyBad.key, [policyBad, chain.intermediate]),
      },
    },
    defaultCert: labCert(chain.leaf.key, [chain.leaf, chain.intermediate]),
  });
  dns = await startDnsServer([
    { origin: '.', secure: true, records: [{ name: '.', type: 'DNSKEY', data: ROOT_KEY }] },
    {
      origin: 'good.test',
      secure: true,
      records: [
        { name: 'good.test', type: 'MX', data: { preference: 10, exchange: 'mx.good.test' } },
        { name: 'good.test', type: 'TXT', data: 'v=spf1 mx -all' },
        { name: 'mx.good.test', type: 'A', data: '127.0.0.1' },
        {
          name: '_25._tcp.mx.good.test',
          type: 'TLSA',
          data: {
            usage: 3,
            selector: 1,
            matchingType: 1,
            certificate: Buffer.from(spki256(chain.leaf.pem), 'hex'),
          },
        },
        {
          name: '_25._tcp.mx.good.test',
          type: 'TLSA',
          data: {
            usage: 2,
            selector: 1,
            matchingType: 1,
            certificate: Buffer.from(spki256(chain.intermediate.pem), 'hex'),
          },
        },
        { name: '_mta-sts.good.test', type: 'TXT', data: 'v=STSv1; id=20260101000000' },
        { name: 'mta-sts.good.test', type: 'A', data: '127.0.0.1' },
        { name: '_smtp._tls.good.test', type: 'TXT', data: 'v=TLSRPTv1; rua=mailto:tlsrpt@good.test' },
        { name: '_dmarc.good.test', type: 'TXT', data: 'v=DMARC1; p=reject; rua=mailto:dmarc@good.test' },
      ],
    },
    {
      origin: 'bad.test',
      records: [
        { name: 'bad.test', type: 'MX', data: { preference: 10, exchange: 'mx.bad.test' } },
        { name: 'mx.bad.test', type: 'A', data: '127.0.0.1' },
        { name: '_mta-sts.bad.test', type: 'TXT', data: 'v=STSv1; id=20260101000000' },
        { name: 'mta-sts.bad.test', type: 'A', data: '127.0.0.1' },
      ],
    },
  ]);
});

after(async () => {
  await Promise.all([dns?.stop(), smtp?.stop(), https?.stop()]);
  pki?.remove();
});

describe('mxguard check', () => {
  it('passes a domain with MTA-STS enforce, DANE, TLS-RPT, SPF and DMARC (exit 0, documented JSON)', async () => {
    const r = await runCheck(['good.test', '--json', '--allow-private', ...labArgs()]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout) as Report;
    assertSchema(report);
    assert.equal(report.domain, 'good.test');
    const failed = report.findings.filter((f) => f.status === 'fail');
    assert.deepEqual(failed, []);
    // Every section but `provider`, which only --preset adds.
    for (const section of SECTIONS.filter((s) => s !== 'provider')) {
      assert.ok(
        report.findings.some((f) => f.section === section),
        `a finding in ${section}`,
      );
    }
    assert.ok(
      report.findings.some((f) => f.section === 'dane' && f.status === 'pass' && f.host === 'mx.good.test'),
    );
    assert.ok(report.findings.some((f) => f.section === 'mtasts' && f.status === 'pass'));
    // What senders do: DANE first for Postfix with policyd, MTA-STS for an MTA-STS-only sender.
    const senders = report.findings
      .filter((f) => f.section === 'senders')
      .map((f) => [f.sender, f.code, f.status, f.answer ?? null]);
    assert.deepEqual(senders, [
      ['dane-mta-sts', 'SENDERS_DANE', 'pass', 'OK dane-only'],
      ['mta-sts', 'SENDERS_MTA_STS', 'pass', null],
      ['opportunistic', 'SENDERS_TLS', 'pass', null],
    ]);
    assert.ok(
      smtp.sessions.some((s) => s.sni === 'mx.good.test' && s.tls),
      'the MX was probed with SNI',
    );
  });

  it('fails a domain whose policy does not cover its MX, and prints the fix for people (exit 1)', async () => {
    const r = await runCheck(['bad.test', '--allow-private', ...labArgs()]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^✗ bad\.test: fail$/m);
    assert.match(r.stdout, /^MTA-STS$/m);
    assert.match(r.stdout, /✗ .*mx\.bad\.test/);
    assert.match(r.stdout, /fix:\n(?:\s+.*\n)*?\s+version: STSv1\n\s+mode: enforce\n\s+mx: mx\.bad\.test/);
    assert.match(r.stdout, /\d+ passed, \d+ warnings, \d+ failed/);
  });

  it('refuses private addresses found in DNS unless --allow-private is given', async () => {
    const sessions = smtp.sessions.length;
    const requests = https.requests.length;
    const r = await runCheck(['good.test', '--json', ...labArgs()]);
    const report = JSON.parse(r.stdout) as Report;
    assertSchema(report);
    assert.equal(smtp.sessions.length, sessions, 'no SMTP session opened');
    assert.equal(https.requests.length, requests, 'no policy fetched');
    assert.ok(
      report.findings.some((f) => /--allow-private/.test(f.message)),
      'a finding names --allow-private',
    );
  });

  it('streams NDJSON for --file, one line per domain, bad lines reported (exit 2)', async () => {
    const list = pki.writeFile('domains.txt', '# lab domains\ngood.test\n\nbad.test\nnot a domain!\n');
    const r = await runCheck(['--file', list, '--concurrency', '2', '--allow-private', ...labArgs()]);
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 3);
    const reports = lines.map((l) => JSON.parse(l) as Report);
    const byDomain = new Map(reports.map((rep) => [rep.domain, rep]));
    assert.equal(byDomain.get('good.test')?.status === 'fail', false);
    assert.equal(byDomain.get('bad.test')?.status, 'fail');
    assert.equal(byDomain.get('not a domain!')?.status, 'error');
    assert.equal(r.stderr, '', 'no progress bar when stderr is not a TTY');
  });

  it('remembers the policy with --state and warns when the body changed but the id did not', async () => {
    const state = pki.writeFile('state.json', '{}');
    const first = await runCheck(['good.test', '--json', '--allow-private', '--state', state, ...labArgs()]);
    assert.equal(first.code, 0, first.stdout);
    const changed = GOOD_POLICY.replace('max_age: 1209600', 'max_age: 2419200');
    const policyGood = pki.issue('policy-good-2', {
      issuer: chain.intermediate,
      sans: ['mta-sts.good.test'],
    });
    https.setSite('mta-sts.good.test', {
      kind: 'serve',
      body: changed,
      cert: labCert(policyGood.key, [policyGood, chain.intermediate]),
    });
    try {
      const second = await runCheck([
        'good.test',
        '--json',
        '--allow-private',
        '--state',
        state,
        ...labArgs(),
      ]);
      const report = JSON.parse(second.stdout) as Report;
      const unchanged = report.findings.find(
        (f) => f.section === 'mtasts' && /ID/.test(f.code) && f.status === 'warn',
      );
      assert.ok(unchanged, JSON.stringify(report.findings, null, 1));
      assert.match(unchanged.fix ?? '', /_mta-sts\.good\.test\.? .*TXT "v=STSv1; id=\d{14}"/);
    } finally {
      https.setSite('mta-sts.good.test', {
        kind: 'serve',
        body: GOOD_POLICY,
        cert: labCert(policyGood.key, [policyGood, chain.intermediate]),
      });
    }
  });

  it('exits 2 when the resolver is unreachable', async () => {
    const r = await runCheck(['good.test', '--resolver', '127.0.0.1:9', '--timeout', '1']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /resolver unreachable \(127\.0\.0\.1:9\)/);
  });

  it('exits 2 on usage errors with a line naming the input', async () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /at least one domain/],
      [['exa mple.test', ...labArgs()], /not a valid domain/],
      [['good.test', '--resolver', 'not-an-ip'], /--resolver/],
      [['good.test', '--ca-file', '/nonexistent/ca.pem', ...labArgs().slice(0, 2)], /ca\.pem/],
      [['good.test', '--concurrency', '0'], /--concurrency/],
    ];
    for (const [args, message] of cases) {
      const r = await runCheck(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });
});
