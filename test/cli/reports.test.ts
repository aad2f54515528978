// `mxguard reports parse`: the built command, as users and scripts run it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { reportEmail, reportGzip, reportJson, reportObject } from '../fixtures/tlsrpt/build.js';
import { runCli } from '../helpers/cli.js';

let dir: string;
const file = (name: string) => join(dir, name);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mxguard-reports-'));
  writeFileSync(file('report.json'), reportJson);
  writeFileSync(file('report.json.gz'), reportGzip);
  // named .json but gzip inside: found by content
  writeFileSync(file('misnamed.json'), reportGzip);
  const second = reportObject();
  second['report-id'] = 'second-report';
  second.policies = [second.policies[1]];
  writeFileSync(
    file('two.eml'),
    reportEmail([
      { type: 'application/tlsrpt+gzip', filename: 'a.json.gz', content: reportGzip },
      { type: 'application/tlsrpt+gzip', filename: 'b.json.gz', content: gzipSync(JSON.stringify(second)) },
    ]),
  );
  const quirky = reportObject();
  delete quirky.policies[0]['failure-details'][0]['sending-mta-ip'];
  quirky['date-range']['start-datetime'] = '2024-05-01T00:00:00';
  writeFileSync(file('quirky.json'), JSON.stringify(quirky));
  writeFileSync(file('notes.txt'), 'just some text\n');
  const broken = reportObject();
  delete broken['report-id'];
  writeFileSync(file('broken.json'), JSON.stringify(broken));
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe('reports parse, human output', () => {
  test('summarises a report', () => {
    const r = runCli(['reports', 'parse', file('report.json.gz')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const name = file('report.json.gz');
    assert.equal(
      r.stdout,
      [
        `${name}: report 2024-05-01_receiver.example_7f3a`,
        '  organization: Sender Mail Co <tlsrpt-admin@sender.example>',
        '  period:       2024-05-01T00:00:00Z to 2024-05-01T23:59:59Z',
        '  policy sts for receiver.example',
        '    mx hosts:   mx1.receiver.example, mx2.receiver.example',
        '    successful: 1200',
        '    failed:     15',
        '      certificate-expired: 10',
        '      validation-failure: 5',
        '  policy tlsa for mx1.receiver.example',
        '    mx hosts:   (none listed)',
        '    successful: 800',
        '    failed:     0',
        '',
      ].join('\n'),
    );
  });

  test('warnings follow the summary, each naming the file', () => {
    const r = runCli(['reports', 'parse', file('quirky.json')]);
    assert.equal(r.code, 0);
    const lines = r.stdout.trim().split('\n');
    const warnings = lines.filter((l) => l.includes(': warning ['));
    assert.deepEqual(warnings, [
      `${file('quirky.json')}: warning [TLSRPT_DATETIME_NO_TIMEZONE] date-range.start-datetime: "2024-05-01T00:00:00" has no time zone (RFC 3339 requires one); read as UTC`,
      `${file('quirky.json')}: warning [TLSRPT_MISSING_SENDING_MTA_IP] policies[0].failure-details[0]: no sending-mta-ip (RFC 8460 §4.4 asks for one)`,
    ]);
    assert.deepEqual(lines.slice(-2), warnings);
  });

  test('a file that is not a report: exit 1, error line on stderr, other files still printed', () => {
    const r = runCli(['reports', 'parse', file('notes.txt'), file('report.json'), file('broken.json')]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /report\.json: report 2024-05-01_receiver\.example_7f3a/);
    assert.equal(
      r.stderr,
      [
        `${file('notes.txt')}: error [TLSRPT_NOT_A_REPORT] not a TLS-RPT report: neither JSON, gzip nor an email`,
        `${file('broken.json')}: error [TLSRPT_MISSING_FIELD] report-id: missing required field`,
        '',
      ].join('\n'),
    );
  });

  test('a file that cannot be opened: exit 2, the others still read', () => {
    const r = runCli(['reports', 'parse', file('missing.json'), file('notes.txt'), file('report.json')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /missing\.json: error \[CANNOT_READ\] cannot read: no such file\n/);
    assert.match(r.stderr, /notes\.txt: error \[TLSRPT_NOT_A_REPORT\]/);
    assert.match(r.stdout, /report\.json: report /);
  });

  test('reads standard input for "-"', () => {
    const r = runCli(['reports', 'parse', '-'], { input: reportGzip });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^-: report 2024-05-01_receiver\.example_7f3a\n/);
  });

  test('--help shows an example; no file is a usage error', () => {
    const help = runCli(['reports', 'parse', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: mxguard reports parse \[options\] <file\.\.\.>/);
    assert.match(help.stdout, /Examples:\n\s+mxguard reports parse report\.json\.gz/);
    const none = runCli(['reports', 'parse']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /missing required argument/);
  });
});

describe('reports parse, hostile text on the terminal', () => {
  test('bidi overrides, isolates and control characters in report fields are escaped', () => {
    const evil = reportObject();
    evil['organization-name'] = 'Evil\u202Egpj.exe\u001b]0;owned\u0007';
    evil['report-id'] = 'id\u2066\u200f\u0085x';
    evil['contact-info'] = 'a@b.example\u001b[2J';
    evil.policies[0].policy['mx-host'] = ['mx\u202e.receiver.example'];
    evil.policies[0]['failure-details'][0]['result-type'] = 'certificate-expired\u202e';
    writeFileSync(file('evil.json'), JSON.stringify(evil));
    const r = runCli(['reports', 'parse', file('evil.json')]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(
      r.stdout,
      /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u,
    );
    assert.match(r.stdout, /: report id\\u\{2066\}\\u\{200f\}\\x85x$/m);
    assert.match(
      r.stdout,
      /^ {2}organization: Evil\\u\{202e\}gpj\.exe\\x1b\]0;owned\\x07 <a@b\.example\\x1b\[2J>$/m,
    );
    assert.match(r.stdout, /mx hosts: {3}mx\\u\{202e\}\.receiver\.example/);
    assert.match(r.stdout, /certificate-expired\\u\{202e\}: 10/);
  });
});

describe('reports parse --json', () => {
  test('exact shape for one report', () => {
    const r = runCli(['reports', 'parse', '--json', file('report.json')]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      reports: [
        {
          file: file('report.json'),
          kind: 'tlsrpt',
          organization: 'Sender Mail Co',
          reportId: '2024-05-01_receiver.example_7f3a',
          start: '2024-05-01T00:00:00Z',
          end: '2024-05-01T23:59:59Z',
          policies: [
            {
              type: 'sts',
              domain: 'receiver.example',
              mxHosts: ['mx1.receiver.example', 'mx2.receiver.example'],
              successful: 1200,
              failed: 15,
              failures: [
                {
                  resultType: 'certificate-expired',
                  count: 10,
                  sendingMtaIp: '192.0.2.10',
                  receivingMxHostname: 'mx2.receiver.example',
                  receivingIp: '198.51.100.25',
                },
                {
                  resultType: 'validation-failure',
                  count: 5,
                  sendingMtaIp: '2001:db8::25',
                  receivingMxHostname: 'mx1.receiver.example',
                  receivingMxHelo: 'mail.receiver.example',
                  receivingIp: '198.51.100.24',
                  additionalInformation: 'https://sender.example/tlsrpt/help#validation',
                  failureReasonCode: 'X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
                },
              ],
            },
            {
              type: 'tlsa',
              domain: 'mx1.receiver.example',
              mxHosts: [],
              successful: 800,
              failed: 0,
              failures: [],
            },
          ],
        },
      ],
      warnings: [],
      errors: [],
    });
  });

  test('format is found by content, not by name', () => {
    const r = runCli(['reports', 'parse', '--json', file('misnamed.json')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).reports.length, 1);
  });

  test('an email with two report attachments gives two reports', () => {
    const r = runCli(['reports', 'parse', '--json', file('two.eml')]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(
      out.reports.map((x: { file: string; reportId: string }) => [x.file, x.reportId]),
      [
        [file('two.eml'), '2024-05-01_receiver.example_7f3a'],
        [file('two.eml'), 'second-report'],
      ],
    );
    assert.deepEqual(out.warnings, []);
  });

  test('warnings and errors per file, highest exit code wins', () => {
    const r = runCli([
      'reports',
      'parse',
      '--json',
      file('quirky.json'),
      file('broken.json'),
      file('missing.json'),
    ]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, '');
    const out = JSON.parse(r.stdout);
    assert.equal(out.reports.length, 1);
    assert.deepEqual(out.warnings, [
      {
        file: file('quirky.json'),
        severity: 'warning',
        code: 'TLSRPT_DATETIME_NO_TIMEZONE',
        message: '"2024-05-01T00:00:00" has no time zone (RFC 3339 requires one); read as UTC',
        where: 'date-range.start-datetime',
      },
      {
        file: file('quirky.json'),
        severity: 'warning',
        code: 'TLSRPT_MISSING_SENDING_MTA_IP',
        message: 'no sending-mta-ip (RFC 8460 §4.4 asks for one)',
        where: 'policies[0].failure-details[0]',
      },
    ]);
    assert.deepEqual(out.errors, [
      {
        file: file('broken.json'),
        code: 'TLSRPT_MISSING_FIELD',
        message: 'report-id: missing required field',
      },
      { file: file('missing.json'), code: 'CANNOT_READ', message: 'cannot read: no such file' },
    ]);
  });

  test('not a report only: exit 1', () => {
    const r = runCli(['reports', 'parse', '--json', file('notes.txt')]);
    assert.equal(r.code, 1);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.reports, []);
    assert.deepEqual(
      out.errors.map((e: { code: string }) => e.code),
      ['TLSRPT_NOT_A_REPORT'],
    );
  });
});
