// `mxguard domain add|set --mode enforce` run the live check first and refuse (exit 1) an enforce policy
// that would make senders bounce mail: an MX host in DNS that the policy does not cover, one without
// STARTTLS, one whose certificate does not name it (src/monitor/preflight.ts); --force stores it and says
// what will bounce. Also `domain add --watch-only`, `domain check` (the run stored like serve's monitor
// stores it) and `domain list`'s last check. The built command against lab DNS and SMTP on loopback.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CliResult, runCliAsync } from '../helpers/cli.js';
import { type StandardChain, standardChain, TestPki } from '../helpers/pki.js';
import { type LabDnsServer, startDnsServer } from '../lab/dns-server.js';
import { labCert } from '../lab/https-server.js';
import { type LabSmtpServer, startSmtpServer } from '../lab/smtp-server.js';

let root: string;
let pki: TestPki;
let chain: StandardChain;
let dns: LabDnsServer;
/** 127.0.0.1: STARTTLS with a certificate for mx1.pre.test and mx1.ok.test only. */
let tlsMx: LabSmtpServer;
/** 127.0.0.2, the same port: no STARTTLS. */
let plainMx: LabSmtpServer;
let dirs = 0;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'mxguard-cli-preflight-'));
  pki = TestPki.create();
  chain = standardChain(pki, { host: 'mx1.pre.test', sans: ['mx1.pre.test', 'mx1.ok.test'] });
  tlsMx = await startSmtpServer({ cert: labCert(chain.leaf.key, [chain.leaf, chain.intermediate]) });
  plainMx = await startSmtpServer({ host: '127.0.0.2', port: tlsMx.port });
  const mx = (name: string, preference: number, exchange: string) => ({
    name,
    type: 'MX' as const,
    data: { preference, exchange },
  });
  const a = (name: string, data: string) => ({ name, type: 'A' as const, data });
  dns = await startDnsServer([
    {
      origin: 'pre.test',
      records: [
        mx('pre.test', 10, 'mx1.pre.test'),
        mx('pre.test', 20, 'mx2.pre.test'),
        mx('pre.test', 30, 'mx3.pre.test'),
        a('mx1.pre.test', '127.0.0.1'),
        a('mx2.pre.test', '127.0.0.2'),
        // The same server as mx1: its certificate does not name mx3.
        a('mx3.pre.test', '127.0.0.1'),
        // An id that is not the stored policy's: the monitor's own finding (section monitor).
        { name: '_mta-sts.pre.test', type: 'TXT' as const, data: 'v=STSv1; id=1' },
      ],
    },
    { origin: 'ok.test', records: [mx('ok.test', 10, 'mx1.ok.test'), a('mx1.ok.test', '127.0.0.1')] },
  ]);
});

after(async () => {
  await Promise.all([dns?.stop(), tlsMx?.stop(), plainMx?.stop()]);
  pki?.remove();
  rmSync(root, { recursive: true, force: true });
});

const labArgs = () => [
  '--resolver',
  `${dns.host}:${dns.port}`,
  '--ca-file',
  chain.root.certPath,
  '--allow-private',
  '--smtp-port',
  String(tlsMx.port),
  '--timeout',
  '5',
];

function domainCli(dataDir: string, ...args: string[]): Promise<CliResult> {
  return runCliAsync(['domain', ...args, '--data-dir', dataDir]);
}

describe('the pre-flight of an enforce policy', () => {
  it('add --mode enforce is refused (exit 1) naming each MX host that would bounce and its fix; nothing is stored', async () => {
    const dir = join(root, `d${++dirs}`);
    const r = await domainCli(
      dir,
      'add',
      'pre.test',
      '--mx',
      'mx1.pre.test',
      '--mode',
      'enforce',
      ...labArgs(),
    );
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /pre\.test: not enforcing: enforcing senders would bounce mail/);
    assert.match(
      r.stderr,
      /mx2\.pre\.test is an MX host of pre\.test in DNS, but no mx pattern .*\[PREFLIGHT_MX_NOT_COVERED\]\n {4}fix: add it to the policy: --mx mx2\.pre\.test/,
    );
    assert.match(r.stderr, /fix: add it to the policy: --mx mx3\.pre\.test/);
    assert.match(
      r.stderr,
      /mx2\.pre\.test: 127\.0\.0\.2: .*STARTTLS is not offered.*\(RFC 3207\): enforcing senders will not deliver to it \(RFC 8461 §4\.2\) \[PREFLIGHT_STARTTLS\]/,
    );
    assert.match(
      r.stderr,
      /mx3\.pre\.test: .*does not name mx3\.pre\.test.*\[PREFLIGHT_PKIX\]\n {4}fix: get a certificate with subjectAltName DNS:mx3\.pre\.test/,
    );
    assert.doesNotMatch(r.stderr, /mx1\.pre\.test: .*PREFLIGHT/, 'mx1 is fine');
    assert.match(r.stderr, /--force/);
    const list = await domainCli(dir, 'list');
    assert.match(list.stdout, /no domains configured/);
  });

  it('set --mode enforce is refused the same way and shows the last 14 days of TLS-RPT; --force stores it and says what will bounce', async () => {
    const dir = join(root, `d${++dirs}`);
    assert.equal((await domainCli(dir, 'add', 'pre.test', '--mx', 'mx1.pre.test')).code, 0);
    const refused = await domainCli(dir, 'set', 'pre.test', '--mode', 'enforce', ...labArgs());
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /pre\.test: TLS-RPT of the last 14 days: 0 sessions succeeded, 0 failed/);
    assert.match(refused.stderr, /\[PREFLIGHT_MX_NOT_COVERED\]/);
    assert.equal(
      JSON.parse((await domainCli(dir, 'show', 'pre.test', '--json')).stdout).domain.mode,
      'testing',
    );

    const forced = await domainCli(dir, 'set', 'pre.test', '--mode', 'enforce', '--force', ...labArgs());
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(
      forced.stderr,
      /pre\.test: warning: --force: enforcing although senders that enforce MTA-STS will bounce mail:/,
    );
    assert.match(forced.stderr, /mx2\.pre\.test .*\[PREFLIGHT_MX_NOT_COVERED\]/);
    assert.equal(
      JSON.parse((await domainCli(dir, 'show', 'pre.test', '--json')).stdout).domain.mode,
      'enforce',
    );
    // Already enforced: covering mx2 and mx3 leaves the STARTTLS and certificate problems.
    const widened = await domainCli(dir, 'set', 'pre.test', '--mx', '*.pre.test', ...labArgs());
    assert.equal(widened.code, 1, widened.stderr);
    assert.doesNotMatch(widened.stderr, /PREFLIGHT_MX_NOT_COVERED/);
    assert.match(widened.stderr, /\[PREFLIGHT_STARTTLS\]/);
    assert.match(widened.stderr, /\[PREFLIGHT_PKIX\]/);
  });

  it('a domain whose MX hosts all work is enforced at once', async () => {
    const dir = join(root, `d${++dirs}`);
    const r = await domainCli(
      dir,
      'add',
      'ok.test',
      '--mx',
      'mx1.ok.test',
      '--mode',
      'enforce',
      ...labArgs(),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^added ok\.test: policy id \d{14}, mode enforce/);
    assert.doesNotMatch(r.stderr, /PREFLIGHT|warning/);
    assert.ok(
      tlsMx.sessions.some((s) => s.sni === 'mx1.ok.test' && s.tls),
      'the MX host was probed with STARTTLS',
    );
  });
});

describe('domain check, list and --watch-only', () => {
  it('domain check stores the run like the monitor; list shows the last check and open alerts', async () => {
    const dir = join(root, `d${++dirs}`);
    assert.equal((await domainCli(dir, 'add', 'pre.test', '--mx', 'mx1.pre.test')).code, 0);
    const r = await domainCli(dir, 'check', 'pre.test', '--json', ...labArgs());
    const out = JSON.parse(r.stdout);
    assert.equal(out.run.domain, 'pre.test');
    assert.equal(out.run.trigger, 'manual');
    assert.equal(r.code, out.run.status === 'fail' ? 1 : 0, r.stderr);
    assert.ok(
      out.run.findings.some(
        (f: { code: string; host?: string }) =>
          f.code === 'TLS_CERT_NAME_MISMATCH' && f.host === 'mx3.pre.test',
      ),
    );
    const human = await domainCli(dir, 'check', 'pre.test', ...labArgs());
    assert.match(human.stdout, /TLS_CERT_NAME_MISMATCH/);
    assert.doesNotMatch(human.stdout, /undefined/);
    assert.match(human.stdout, /^Monitor\n {2}⚠ .*\[\w+\]$/m);
    assert.match(human.stdout, new RegExp(`stored as check run ${out.run.id + 1}; open alerts: `));
    const list = await domainCli(dir, 'list');
    const row = list.stdout.split('\n').find((l) => l.startsWith('pre.test'));
    assert.match(row ?? '', /\s(pass|warn|fail) \d{4}-\d\d-\d\dT\d\d:\d\dZ\s+\d+$/);
    const json = JSON.parse((await domainCli(dir, 'list', '--json')).stdout);
    assert.equal(json.domains[0].lastCheck.id, out.run.id + 1);
    const alerts = /open alerts: (.*)$/m.exec(human.stdout)![1]!;
    assert.equal(json.domains[0].openAlerts, alerts === 'none' ? 0 : alerts.split(', ').length);
    // Under testing mode a certificate problem is a warning: its alert opens on the second bad check.
    assert.match(alerts, /TLS_CERT_NAME_MISMATCH \(mx3\.pre\.test\/127\.0\.0\.1\)/);
  });

  it('show --setup lists what DNS still lacks, each with its fix', async () => {
    const dir = join(root, `d${++dirs}`);
    assert.equal((await domainCli(dir, 'add', 'pre.test', '--mx', 'mx1.pre.test')).code, 0);
    const net = ['--resolver', `${dns.host}:${dns.port}`, '--timeout', '5'];
    const r = await domainCli(dir, 'show', 'pre.test', '--setup', ...net);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^setup: still to do:$/m);
    assert.match(r.stdout, /✗ mta-sts\.pre\.test does not resolve .*\[SETUP_POLICY_HOST_DNS\]/);
    assert.match(
      r.stdout,
      /\[SETUP_ID_NOT_CURRENT\]\n {4}fix: publish _mta-sts\.pre\.test\. TXT "v=STSv1; id=\d{14}"/,
    );
    assert.match(
      r.stdout,
      /\[SETUP_NO_TLSRPT\]\n {4}fix: publish _smtp\._tls\.pre\.test\. TXT "v=TLSRPTv1; rua=mailto:tlsrpt@pre\.test"/,
    );
    const json = JSON.parse((await domainCli(dir, 'show', 'pre.test', '--setup', '--json', ...net)).stdout);
    assert.deepEqual(
      json.setup.map((i: { code: string }) => i.code),
      ['SETUP_POLICY_HOST_DNS', 'SETUP_ID_NOT_CURRENT', 'SETUP_NO_TLSRPT'],
    );
    assert.doesNotMatch((await domainCli(dir, 'show', 'pre.test')).stdout, /setup:/, 'only with --setup');
  });

  it('--watch-only adds a domain without a policy; list shows it as watch-only', async () => {
    const dir = join(root, `d${++dirs}`);
    const r = await domainCli(dir, 'add', 'ok.test', '--watch-only');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^added ok\.test \(watch-only\)/);
    const list = await domainCli(dir, 'list');
    assert.match(list.stdout, /^ok\.test\s+watch-only\s+-\s+-\s+-\s+never\s+0$/m);
    const shown = JSON.parse((await domainCli(dir, 'show', 'ok.test', '--json')).stdout);
    assert.equal(shown.domain.watchOnly, true);
    const withMx = await domainCli(
      join(root, `d${++dirs}`),
      'add',
      'ok.test',
      '--watch-only',
      '--mx',
      'mx1.ok.test',
    );
    assert.equal(withMx.code, 2);
    assert.match(withMx.stderr, /--mx: not with --watch-only/);
  });
});
