// The API's CSV downloads (src/server/api/csv-download.ts; GET /api/dmarc/reports.csv and /api/reports.csv)
// over HTTP on loopback, on the real SQLite store: parsedmarc's columns, one page of reports per file
// chosen by the list's filters, X-Total-Count and a Link to the next file, reverse DNS names from the
// cache, the admin only, and the limit's bounds.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DMARC_CSV_COLUMNS } from '../../src/dmarc/csv.js';
import { TLSRPT_CSV_COLUMNS } from '../../src/tlsrpt/csv.js';
import { decodeReports } from '../../src/tlsrpt/parse.js';
import { reportBytes } from '../fixtures/intake/helpers.js';
import { openTestApp, type TestApp } from '../helpers/browser.js';
import { parseCsv } from '../helpers/csv.js';
import { dmarcReport } from '../helpers/dmarc.js';

const NOW = new Date('2026-05-10T12:00:00Z');
/** Five reports for example.com (two rows each, one report a day), one for other.example. */
const DAYS = ['2026-05-01', '2026-05-02', '2026-05-03', '2026-05-04', '2026-05-05'];

describe('CSV downloads', () => {
  let t: TestApp;
  let auth: { authorization: string };
  const download = async (path: string) => {
    const res = await fetch(`${t.url}${path}`, { headers: auth });
    return { res, rows: parseCsv(await res.text()) };
  };
  /** The rows of a CSV as objects by column. */
  const records = (rows: string[][]) =>
    rows.slice(1).map((r) => Object.fromEntries(rows[0]!.map((c, i) => [c, r[i]])));

  before(async () => {
    t = await openTestApp({ start: NOW, listen: true });
    auth = { authorization: `Bearer ${t.password}` };
    for (const [i, day] of DAYS.entries()) {
      const report = dmarcReport({
        organization: 'google.com',
        reportId: `g-${i}`,
        domain: 'example.com',
        day,
        rows: [
          { sourceIp: '192.0.2.25', count: 10 + i },
          { sourceIp: '203.0.113.7', count: 1, dkim: 'fail', spf: 'fail', disposition: 'reject' },
        ],
      });
      await t.ctx.store.saveDmarcReport({ report, source: 'import', dkim: 'unverified', warnings: [] }, NOW);
    }
    const other = dmarcReport({
      organization: 'Yahoo',
      reportId: 'y-1',
      domain: 'other.example',
      day: '2026-05-03',
      rows: [{ sourceIp: '198.51.100.9', count: 4 }],
    });
    await t.ctx.store.saveDmarcReport(
      { report: other, source: 'import', dkim: 'unverified', warnings: [] },
      NOW,
    );
    await t.ctx.store.setPtrName('203.0.113.7', 'o1.mail.sendgrid.net', NOW);
    for (const id of ['t-1', 't-2']) {
      const { reports } = await decodeReports(reportBytes({ 'report-id': id }));
      await t.ctx.store.saveReport(
        { report: reports[0]!, source: 'import', dkim: 'unverified', warnings: [] },
        NOW,
      );
    }
  });
  after(async () => t.close());

  test('DMARC: a line per record in the filter, newest first, paged by Link with the total', async () => {
    const first = await download('/api/dmarc/reports.csv?domain=example.com&limit=3');
    assert.equal(first.res.status, 200);
    assert.match(first.res.headers.get('content-type') ?? '', /^text\/csv; charset=utf-8/);
    assert.equal(first.res.headers.get('content-disposition'), 'attachment; filename="dmarc-reports.csv"');
    assert.equal(first.res.headers.get('x-total-count'), '5');
    assert.deepEqual(first.rows[0], [...DMARC_CSV_COLUMNS]);
    const page1 = records(first.rows);
    assert.deepEqual(
      page1.map((r) => [r.report_id, r.source_ip_address, r.count, r.disposition]),
      [
        ['g-4', '192.0.2.25', '14', 'none'],
        ['g-4', '203.0.113.7', '1', 'reject'],
        ['g-3', '192.0.2.25', '13', 'none'],
        ['g-3', '203.0.113.7', '1', 'reject'],
        ['g-2', '192.0.2.25', '12', 'none'],
        ['g-2', '203.0.113.7', '1', 'reject'],
      ],
    );
    // The reverse DNS name serve cached, and its registrable domain.
    assert.deepEqual(
      [page1[1]!.source_reverse_dns, page1[1]!.source_base_domain],
      ['o1.mail.sendgrid.net', 'sendgrid.net'],
    );
    assert.equal(page1[0]!.source_reverse_dns, '');

    const link = /^<([^>]+)>; rel="next"$/.exec(first.res.headers.get('link') ?? '');
    assert.ok(link, `Link: ${first.res.headers.get('link')}`);
    assert.match(link[1]!, /^\/api\/dmarc\/reports\.csv\?domain=example\.com&limit=3&cursor=/);
    const second = await download(link[1]!);
    assert.equal(second.res.headers.get('link'), null);
    assert.equal(second.res.headers.get('x-total-count'), '5');
    assert.deepEqual(
      records(second.rows).map((r) => r.report_id),
      ['g-1', 'g-1', 'g-0', 'g-0'],
    );
  });

  test('DMARC: the list filters apply (reporter, disposition, range, other domains)', async () => {
    const yahoo = await download('/api/dmarc/reports.csv?organization=Yahoo');
    assert.deepEqual(
      records(yahoo.rows).map((r) => [r.org_name, r.domain, r.count]),
      [['Yahoo', 'other.example', '4']],
    );
    const other = await download('/api/dmarc/reports.csv?otherDomains=true');
    assert.equal(other.res.headers.get('x-total-count'), '6'); // no domain is configured here
    const range = await download(
      '/api/dmarc/reports.csv?domain=example.com&since=2026-05-02&until=2026-05-03',
    );
    assert.deepEqual([...new Set(records(range.rows).map((r) => r.report_id))], ['g-2', 'g-1']);
    const none = await download('/api/dmarc/reports.csv?domain=nothing.example');
    assert.equal(none.res.headers.get('x-total-count'), '0');
    assert.deepEqual(none.rows, [[...DMARC_CSV_COLUMNS]]);
  });

  test('TLS-RPT: per policy a summary line and a line per failure detail', async () => {
    const { res, rows } = await download('/api/reports.csv');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-disposition'), 'attachment; filename="tlsrpt-reports.csv"');
    assert.equal(res.headers.get('x-total-count'), '2');
    assert.deepEqual(rows[0], [...TLSRPT_CSV_COLUMNS]);
    assert.deepEqual(
      records(rows).map((r) => [
        r.report_id,
        r.result_type,
        r.successful_session_count,
        r.failed_session_count,
      ]),
      [
        ['t-2', '', '40', '2'],
        ['t-2', 'certificate-expired', '', '2'],
        ['t-1', '', '40', '2'],
        ['t-1', 'certificate-expired', '', '2'],
      ],
    );
  });

  test('the admin only; the limit is 1 to 10,000 reports per file', async () => {
    assert.equal((await fetch(`${t.url}/api/dmarc/reports.csv`)).status, 401);
    assert.equal((await fetch(`${t.url}/api/reports.csv`)).status, 401);
    for (const limit of ['0', '10001', 'x']) {
      const res = await fetch(`${t.url}/api/dmarc/reports.csv?limit=${limit}`, { headers: auth });
      assert.equal(res.status, 400, limit);
      assert.match((await res.json()).message, /limit/);
    }
  });
});
