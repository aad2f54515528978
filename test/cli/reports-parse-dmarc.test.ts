// `mxguard reports parse` with DMARC aggregate reports (RFC 7489 Appendix C), beside TLS-RPT: the built
// command as users run it. The kind and the format come from the content, not the file name.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { dmarcEmail, EXPECTED_REPORT, RECORD_1, reportXml, XML, ZIP } from '../fixtures/dmarc/reports.js';
import { reportGzip } from '../fixtures/tlsrpt/build.js';
import { runCli, runCliAsync } from '../helpers/cli.js';

let dir: string;
const file = (name: string) => join(dir, name);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mxguard-reports-dmarc-'));
  writeFileSync(file('report.xml'), XML);
  // Named like a TLS-RPT report, holds a DMARC zip: found by content.
  writeFileSync(file('misnamed.json.gz'), ZIP);
  writeFileSync(file('tls.json.gz'), reportGzip);
  writeFileSync(
    file('report.eml'),
    dmarcEmail([{ type: 'application/gzip', filename: 'r.xml.gz', content: gzipSync(XML) }]),
  );
  writeFileSync(file('broken.xml'), reportXml().replace('</org_name>', '</orgname>'));
  writeFileSync(
    file('dtd.xml'),
    reportXml({ prolog: '<!DOCTYPE feedback [ <!ENTITY x SYSTEM "file:///etc/passwd"> ]>' }),
  );
  writeFileSync(file('many.xml'), reportXml({ records: RECORD_1.repeat(105) }));
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe('reports parse, DMARC', () => {
  test('human output: facts, policy, one row per record', async () => {
    const r = await runCliAsync(['reports', 'parse', file('report.xml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(
      r.stdout,
      [
        `${file('report.xml')}: DMARC report r-2024-05-01-42`,
        '  organization: Receiver Mail Co <dmarc-reports@receiver.example>',
        '  period:       2024-05-01T00:00:00Z to 2024-05-01T23:59:59Z',
        '  domain:       example.com',
        '  policy:       p=quarantine sp=reject pct=50 adkim=r aspf=s fo=1',
        '  messages:     15 in 2 rows (none 12, quarantine 3, reject 0)',
        '    SOURCE IP     COUNT  DISPOSITION  DKIM ALIGNED  SPF ALIGNED  HEADER FROM',
        '    192.0.2.10    12     none         pass          fail         example.com',
        '    2001:db8::25  3      quarantine   fail          fail         example.com',
        '',
      ].join('\n'),
    );
  });

  test('--json: the report with "kind": "dmarc", beside a TLS-RPT report with "kind": "tlsrpt"', async () => {
    const r = await runCliAsync(['reports', 'parse', '--json', file('report.xml'), file('tls.json.gz')]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.reports[0], { file: file('report.xml'), ...EXPECTED_REPORT });
    assert.equal(out.reports[0].kind, 'dmarc');
    assert.deepEqual(
      out.reports.map((x: { kind: string; file: string }) => [x.kind, x.file]),
      [
        ['dmarc', file('report.xml')],
        ['tlsrpt', file('tls.json.gz')],
      ],
    );
    assert.deepEqual(out.warnings, []);
    assert.deepEqual(out.errors, []);
  });

  test('zip under a TLS-RPT name, an e-mail, and standard input: all found by content', async () => {
    const r = await runCliAsync(['reports', 'parse', '--json', file('misnamed.json.gz'), file('report.eml')]);
    assert.equal(r.code, 0, r.stderr);
    const reports = JSON.parse(r.stdout).reports;
    assert.deepEqual(
      reports.map((x: { kind: string; reportId: string }) => [x.kind, x.reportId]),
      [
        ['dmarc', 'r-2024-05-01-42'],
        ['dmarc', 'r-2024-05-01-42'],
      ],
    );
    const stdin = runCli(['reports', 'parse', '-'], { input: gzipSync(XML) });
    assert.equal(stdin.code, 0, stdin.stderr);
    assert.match(stdin.stdout, /^-: DMARC report r-2024-05-01-42\n/);
  });

  test('invalid XML and a DTD: exit 1 with the DMARC error codes, the good file still printed', async () => {
    const r = await runCliAsync([
      'reports',
      'parse',
      file('broken.xml'),
      file('report.xml'),
      file('dtd.xml'),
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /report\.xml: DMARC report r-2024-05-01-42/);
    const errors = r.stderr.trim().split('\n');
    assert.equal(errors.length, 2, r.stderr);
    assert.match(
      errors[0]!,
      /broken\.xml: error \[DMARC_REPORT_BAD_XML\] line \d+, column \d+: not well-formed XML/,
    );
    assert.match(
      errors[1]!,
      /dtd\.xml: error \[DMARC_REPORT_DTD\] offset \d+: the XML holds a <!DOCTYPE> declaration/,
    );
  });

  test('a report with more than 100 rows shows 100 and says how many more', async () => {
    const r = await runCliAsync(['reports', 'parse', file('many.xml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.match(/^ {4}192\.0\.2\.10 /gm)?.length, 100);
    assert.match(r.stdout, /messages: {5}1260 in 105 rows/);
    assert.match(r.stdout, /\n {4}\(\+5 more rows: see --json\)\n$/);
  });

  test('bidi and control characters in report fields are escaped on the terminal', async () => {
    const evil = reportXml({ orgName: 'Evil\u202Egpj.exe&#x85;' }).replace(
      '<source_ip>192.0.2.10</source_ip>',
      '<source_ip>192.0.2.10\u2066</source_ip>',
    );
    writeFileSync(file('evil.xml'), evil);
    const r = await runCliAsync(['reports', 'parse', file('evil.xml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(
      r.stdout,
      /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u,
    );
    assert.match(r.stdout, /organization: Evil\\u\{202e\}gpj\.exe\\x85 </);
    assert.match(r.stdout, /^ {4}192\.0\.2\.10\\u\{2066\} +12 /m);
  });

  test('--help names both kinds and the DMARC formats', async () => {
    const r = await runCliAsync(['reports', 'parse', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Read TLS-RPT and DMARC aggregate reports/);
    assert.match(r.stdout, /"kind": "tlsrpt" or "dmarc"/);
    assert.match(r.stdout, /zip with one XML file/);
  });
});
