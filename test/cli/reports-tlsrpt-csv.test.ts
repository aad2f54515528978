// `mxguard reports list --kind tlsrpt --format csv` (src/tlsrpt/csv.ts through the built command): TLS-RPT
// reports imported from files come out as parsedmarc's smtp_tls CSV, a summary row per policy and a row per
// failure detail; --format csv without a kind is a usage error; --other-domains keeps the reports about
// domains that are not configured, in the CSV as in the table.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TLSRPT_CSV_COLUMNS } from '../../src/tlsrpt/csv.js';
import { reportJson } from '../helpers/browser.js';
import { runCli } from '../helpers/cli.js';
import { csvRecords } from '../helpers/csv.js';

describe('reports list --kind tlsrpt --format csv', () => {
  let root: string;
  let data: string;
  const cli = (...args: string[]) => runCli([...args, '--data-dir', data]);

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'mxguard-tlsrpt-csv-'));
    data = join(root, 'data');
    const files = join(root, 'reports');
    mkdirSync(files);
    writeFileSync(
      join(files, 'ours.json'),
      reportJson({
        organization: 'Sender Inc',
        reportId: 'r-ours',
        domain: 'ours.example',
        day: '2026-05-08',
        successful: 40,
        failures: [
          {
            resultType: 'certificate-expired',
            count: 3,
            sendingMtaIp: '198.51.100.7',
            receivingIp: '192.0.2.25',
          },
          { resultType: 'starttls-not-supported', count: 1, receivingMxHostname: 'mx2.ours.example' },
        ],
      }),
    );
    writeFileSync(
      join(files, 'stranger.json'),
      reportJson({
        organization: '+Other Sender',
        reportId: 'r-stranger',
        domain: 'stranger.example',
        day: '2026-05-09',
        successful: 5,
      }),
    );
    const add = cli(
      'domain',
      'add',
      'ours.example',
      '--mx',
      'mx.ours.example',
      '--rua',
      'mailto:tls@ours.example',
    );
    assert.equal(add.code, 0, add.stderr);
    const imported = cli('reports', 'import', files);
    assert.equal(imported.code, 0, imported.stderr);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('writes a summary row per policy and a row per failure detail, newest report first', () => {
    const r = cli('reports', 'list', '--kind', 'tlsrpt', '--all', '--format', 'csv');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith(`${TLSRPT_CSV_COLUMNS.join(',')}\r\n`));
    const rows = csvRecords(r.stdout);
    assert.deepEqual(
      rows.map((row) => [
        row.organization_name,
        row.report_id,
        row.policy_domain,
        row.result_type,
        row.successful_session_count,
        row.failed_session_count,
        row.sending_mta_ip,
        row.receiving_ip,
        row.receiving_mx_hostname,
      ]),
      [
        ["'+Other Sender", 'r-stranger', 'stranger.example', '', '5', '0', '', '', ''],
        ['Sender Inc', 'r-ours', 'ours.example', '', '40', '4', '', '', ''],
        [
          'Sender Inc',
          'r-ours',
          'ours.example',
          'certificate-expired',
          '',
          '3',
          '198.51.100.7',
          '192.0.2.25',
          '',
        ],
        [
          'Sender Inc',
          'r-ours',
          'ours.example',
          'starttls-not-supported',
          '',
          '1',
          '',
          '',
          'mx2.ours.example',
        ],
      ],
    );
    assert.deepEqual(
      rows.map((row) => [row.begin_date, row.policy_type, row.mx_host_patterns]),
      [
        ['2026-05-09T00:00:00Z', 'sts', 'mx.stranger.example'],
        ['2026-05-08T00:00:00Z', 'sts', 'mx.ours.example'],
        ['2026-05-08T00:00:00Z', 'sts', 'mx.ours.example'],
        ['2026-05-08T00:00:00Z', 'sts', 'mx.ours.example'],
      ],
    );
  });

  it('--other-domains keeps the reports about domains that are not configured', () => {
    const csv = cli('reports', 'list', '--kind', 'tlsrpt', '--other-domains', '--format', 'csv');
    assert.equal(csv.code, 0, csv.stderr);
    assert.deepEqual(
      csvRecords(csv.stdout).map((row) => row.report_id),
      ['r-stranger'],
    );
    const json = cli('reports', 'list', '--other-domains', '--json');
    assert.equal(json.code, 0, json.stderr);
    const listing = JSON.parse(json.stdout) as { total: number; reports: { reportId: string }[] };
    assert.equal(listing.total, 1);
    assert.deepEqual(
      listing.reports.map((x) => x.reportId),
      ['r-stranger'],
    );
  });

  it('--format csv needs one kind: a usage error naming both', () => {
    const r = cli('reports', 'list', '--format', 'csv');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--kind tlsrpt or --kind dmarc/);
    assert.equal(r.stdout, '');
  });
});
