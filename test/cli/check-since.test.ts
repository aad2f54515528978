// `mxguard check --since previous.json` through the built command against lab DNS, HTTPS and SMTP servers
// on loopback: exit 1 only for fails that are new compared with the previous --json result (one report or
// NDJSON), what changed printed for people and in the JSON, and a file that is no result refused (exit 2).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CliResult, runCliAsync } from '../helpers/cli.js';
import { type StandardChain, standardChain, TestPki } from '../helpers/pki.js';
import { type LabDnsServer, startDnsServer } from '../lab/dns-server.js';
import { labCert, type PolicyHost, startPolicyHost } from '../lab/https-server.js';
import { type LabSmtpServer, startSmtpServer } from '../lab/smtp-server.js';

interface Finding {
  section: string;
  status: string;
  code: string;
  message: string;
  host?: string;
}
interface Report {
  domain: string;
  status: string;
  findings: Finding[];
  changes?: { added: Finding[]; gone: Finding[]; changed: unknown[]; newFails: number };
}

let pki: TestPki;
let chain: StandardChain;
let dns: LabDnsServer;
let smtp: LabSmtpServer;
let https: PolicyHost;
let dir: string;

const zone = (domain: string) => ({
  origin: domain,
  records: [
    { name: domain, type: 'MX' as const, data: { preference: 10, exchange: `mx.${domain}` } },
    { name: `mx.${domain}`, type: 'A' as const, data: '127.0.0.1' },
    { name: `_mta-sts.${domain}`, type: 'TXT' as const, data: 'v=STSv1; id=20260101000000' },
    { name: `mta-sts.${domain}`, type: 'A' as const, data: '127.0.0.1' },
  ],
});

before(async () => {
  pki = TestPki.create('mxguard-check-since-');
  const hosts = ['mx.bad.test', 'mta-sts.bad.test', 'mx.good.test', 'mta-sts.good.test'];
  chain = standardChain(pki, { host: hosts[0]!, sans: hosts });
  const cert = labCert(chain.leaf.key, [chain.leaf, chain.intermediate]);
  smtp = await startSmtpServer({ cert });
  https = await startPolicyHost({
    sites: {
      // An enforced policy that does not cover mx.bad.test: MTASTS_MX_NOT_COVERED fails.
      'mta-sts.bad.test': {
        kind: 'serve',
        body: 'version: STSv1\nmode: enforce\nmx: other.bad.test\nmax_age: 1209600\n',
      },
      'mta-sts.good.test': {
        kind: 'serve',
        body: 'version: STSv1\nmode: enforce\nmx: mx.good.test\nmax_age: 1209600\n',
      },
    },
    defaultCert: cert,
  });
  dns = await startDnsServer([zone('bad.test'), zone('good.test')]);
  dir = mkdtempSync(join(tmpdir(), 'mxguard-check-since-'));
});

after(async () => {
  await Promise.all([dns?.stop(), smtp?.stop(), https?.stop()]);
  pki?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function check(args: string[]): Promise<CliResult> {
  return runCliAsync([
    'check',
    ...args,
    '--allow-private',
    '--resolver',
    `${dns.host}:${dns.port}`,
    '--ca-file',
    chain.root.certPath,
    '--smtp-port',
    String(smtp.port),
    '--https-port',
    String(https.port),
    '--timeout',
    '5',
  ]);
}

let file = 0;
function previousFile(content: string): string {
  const path = join(dir, `previous-${++file}.json`);
  writeFileSync(path, content);
  return path;
}

async function jsonReport(domain: string): Promise<Report> {
  const r = await check([domain, '--json']);
  return JSON.parse(r.stdout) as Report;
}

describe('mxguard check --since', () => {
  it('a fail that was there before is not new: exit 0, and nothing changed', async () => {
    const previous = await jsonReport('bad.test');
    assert.ok(previous.findings.some((f) => f.code === 'MTASTS_MX_NOT_COVERED' && f.status === 'fail'));
    const r = await check(['bad.test', '--since', previousFile(JSON.stringify(previous))]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^Changes since .*previous-\d+\.json:\n {2}none\n0 new fails$/m);
  });

  it('a fail the previous result did not have: exit 1, printed as new', async () => {
    const previous = await jsonReport('bad.test');
    previous.findings = previous.findings.filter((f) => f.code !== 'MTASTS_MX_NOT_COVERED');
    const r = await check(['bad.test', '--since', previousFile(JSON.stringify(previous))]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^ {2}\+ \[MTASTS_MX_NOT_COVERED\] fail: mx\.bad\.test: MX host mx\.bad\.test/m);
    assert.match(r.stdout, /^1 new fail$/m);
  });

  it('a warning that turned into a fail is a new fail; a finding gone is listed as gone', async () => {
    const previous = await jsonReport('bad.test');
    for (const f of previous.findings) if (f.code === 'MTASTS_MX_NOT_COVERED') f.status = 'warn';
    previous.findings.push({
      section: 'tls',
      status: 'fail',
      code: 'TLS_CONNECT_FAILED',
      message: 'refused',
      host: 'mx.bad.test',
    });
    const r = await check(['bad.test', '--since', previousFile(JSON.stringify(previous))]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^ {2}~ \[MTASTS_MX_NOT_COVERED\] fail \(was warn\): /m);
    assert.match(r.stdout, /^ {2}- \[TLS_CONNECT_FAILED\] fail: mx\.bad\.test: refused$/m);
  });

  it('--json adds the changes; NDJSON of several domains is a previous result too', async () => {
    const bad = await jsonReport('bad.test');
    bad.findings = bad.findings.filter((f) => f.code !== 'MTASTS_MX_NOT_COVERED');
    const good = await jsonReport('good.test');
    const path = previousFile(`${JSON.stringify(good)}\n${JSON.stringify(bad)}\n`);
    const r = await check(['good.test', 'bad.test', '--json', '--since', path]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const reports = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Report);
    const byDomain = new Map(reports.map((x) => [x.domain, x]));
    assert.equal(byDomain.get('good.test')?.changes?.newFails, 0);
    assert.equal(byDomain.get('bad.test')?.changes?.newFails, 1);
    assert.deepEqual(
      byDomain.get('bad.test')?.changes?.added.map((f) => f.code),
      ['MTASTS_MX_NOT_COVERED'],
    );
    // Still a check result: the next run can compare with it.
    const again = await check([
      'bad.test',
      '--since',
      previousFile(JSON.stringify(byDomain.get('bad.test'))),
    ]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
  });

  it('a domain the previous result did not have: every fail is new', async () => {
    const good = await jsonReport('good.test');
    const r = await check(['bad.test', '--since', previousFile(JSON.stringify(good))]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^Changes since .* \(the domain was not in it\):$/m);
  });

  it('refuses a file that is not a check result (exit 2, naming it)', async () => {
    for (const content of [
      'not json at all',
      '{"domain": "x.test"}',
      '[1, 2]',
      '{"domain":"x.test","findings":[{"code":1}]}',
    ]) {
      const path = previousFile(content);
      const r = await check(['good.test', '--since', path]);
      assert.equal(r.code, 2, `${content}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, new RegExp(`--since ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
    }
    const missing = await check(['good.test', '--since', join(dir, 'absent.json')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /absent\.json: cannot read/);
  });
});
