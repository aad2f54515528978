// `mxguard check --file` at survey scale, through the built command against lab DNS and SMTP servers on
// loopback: domains sharing an MX host cost one SMTP connection per (address, MX name); --format csv with
// RFC 4180 quoting and no formula injection; --out with --resume skips the domains already done.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CliResult, runCliAsync } from '../helpers/cli.js';
import { parseCsv } from '../helpers/csv.js';
import { mxRecord, type SurveyLab, startSurveyLab } from '../helpers/survey-lab.js';

let lab: SurveyLab;
let dir: string;
const mx = mxRecord;

function runCheck(args: string[]): Promise<CliResult> {
  return runCliAsync(['check', ...lab.checkOptions(), ...args]);
}

function listFile(name: string, domains: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, `${domains.join('\n')}\n`);
  return path;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mxguard-survey-'));
  lab = await startSurveyLab('mx.shared.test', [
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
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('mxguard check --file at survey scale', () => {
  it('probes an MX address once per MX name however many domains share it', async () => {
    const before = lab.smtp.sessions.length;
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
    const sessions = lab.smtp.sessions.slice(before);
    assert.deepEqual(sessions.map((s) => s.sni).sort(), ['mx.shared.test', 'mx2.shared.test'], r.stderr);
    // Every domain still gets the tls findings of its MX host from the shared probe.
    for (const report of reports) assert.ok(report.findings.some((f) => f.section === 'tls' && f.host));
  });

  it('--tls-versions: one more connection per MX address and name, offering only TLS 1.0/1.1', async () => {
    const before = lab.smtp.sessions.length;
    await runCheck(['--file', listFile('versions.txt', ['one.test', 'two.test']), '--tls-versions']);
    const sessions = lab.smtp.sessions.slice(before);
    // The modern probe names the host (SNI recorded after its handshake); the old one is refused by this server.
    // Two domains on one MX name: one modern probe and one old-TLS probe for both.
    assert.deepEqual(sessions.map((s) => s.sni ?? 'refused old TLS').sort(), [
      'mx.shared.test',
      'refused old TLS',
    ]);
  });

  it('--no-cache checks each domain as if alone: one connection per domain and MX name', async () => {
    const before = lab.smtp.sessions.length;
    const list = listFile('nocache.txt', ['one.test', 'two.test', 'three.test']);
    const r = await runCheck(['--no-cache', '--file', list]);
    assert.equal(r.stdout.trim().split('\n').length, 3, r.stderr);
    const sessions = lab.smtp.sessions.slice(before).map((s) => s.sni);
    assert.deepEqual(sessions.sort(), ['mx.shared.test', 'mx.shared.test', 'mx2.shared.test']);
  });

  it('writes one CSV row per domain with each section, quoted, and no cell a spreadsheet would run', async () => {
    const hostile = '=HYPERLINK("http://x.test","click"),+1';
    const r = await runCheck([
      '--format',
      'csv',
      '--file',
      listFile('csv.txt', ['one.test', 'evil.test', hostile, '@SUM(1)']),
    ]);
    const rows = parseCsv(r.stdout);
    assert.deepEqual(rows[0], [
      'domain',
      'status',
      'mx',
      'mtasts',
      'tls',
      'dane',
      'senders',
      'tlsrpt',
      'spf',
      'dmarc',
      'dkim',
      'provider',
      'fail_codes',
      'warn_codes',
      'error',
    ]);
    assert.equal(rows.length, 5, r.stdout);
    for (const row of rows) {
      assert.equal(row.length, 15, row.join('|'));
      for (const cell of row) assert.doesNotMatch(cell, /^[=+\-@]/, `cell ${cell}`);
    }
    const byDomain = new Map(rows.slice(1).map((row) => [row[0]!, row]));
    assert.equal(byDomain.get(`'${hostile}`)?.[1], 'error', 'the hostile line kept whole, guarded');
    assert.equal(byDomain.get("'@SUM(1)")?.[1], 'error');
    const one = byDomain.get('one.test')!;
    assert.ok(['pass', 'warn', 'fail'].includes(one[1]!));
    assert.equal(one[2], 'pass', 'the mx section passed');
    assert.equal(one[11], '', 'no provider section without --preset');
    assert.match(one[12]!, /^[A-Z0-9_ ]*$/);
  });

  it('--resume skips the domains the --out file holds, drops a line the interruption cut, and appends', async () => {
    for (const format of ['ndjson', 'csv']) {
      const out = join(dir, `resume.${format}`);
      const first = await runCheck(['--format', format, '--out', out, 'one.test', 'two.test']);
      assert.equal(first.stdout, '', 'results go to --out');
      // An interrupted run leaves half a line behind.
      writeFileSync(
        out,
        `${readFileSync(out, 'utf8')}${format === 'csv' ? 'three.te' : '{"domain":"three.te'}`,
      );
      const before = lab.smtp.sessions.length;
      const r = await runCheck([
        '--format',
        format,
        '--out',
        out,
        '--resume',
        '--file',
        listFile('all.txt', ['one.test', 'two.test', 'three.test', 'four.test']),
      ]);
      assert.ok([0, 1].includes(r.code), r.stderr);
      const text = readFileSync(out, 'utf8');
      const domains =
        format === 'csv'
          ? parseCsv(text).map((row) => row[0])
          : text
              .trim()
              .split('\n')
              .map((l) => (JSON.parse(l) as { domain: string }).domain);
      assert.deepEqual(
        domains,
        format === 'csv'
          ? ['domain', 'one.test', 'two.test', ...domains.slice(3)]
          : ['one.test', 'two.test', ...domains.slice(2)],
      );
      assert.deepEqual(domains.slice(format === 'csv' ? 3 : 2).sort(), ['four.test', 'three.test']);
      // This run's probes: one per MX name (each run has its own memo).
      assert.deepEqual(
        lab.smtp.sessions
          .slice(before)
          .map((s) => s.sni)
          .sort(),
        ['mx.shared.test', 'mx2.shared.test'],
      );
    }
  });

  it('--resume without --out, and an unknown --format, are usage errors', async () => {
    const r = await runCheck(['--resume', '--file', listFile('x.txt', ['one.test'])]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--resume needs --out/);
    const f = await runCheck(['--format', 'xml', 'one.test']);
    assert.equal(f.code, 2);
    assert.match(f.stderr, /--format: "xml" is not one of ndjson, csv/);
  });
});
