// The attack of issue 10 on the reports API: reports with megabyte strings (stored by an older
// mxguard, before the parser capped them: test/helpers/legacy-reports.ts) made GET /api/reports build
// answers of hundreds of MB and then fail with 500 for good. Every list answer now has a fixed byte
// cap, the detail view answers 413 with a clipped summary, and such reports can be deleted. SQLite
// only: that era never existed on PostgreSQL (test/postgres-pass.ts).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SCHEMAS } from '../../src/server/api/schemas.js';
import {
  CLIP_MARK,
  LIST_PAGE_MAX_BYTES,
  LIST_TEXT_MAX,
  REPORT_DETAIL_MAX_BYTES,
} from '../../src/store/paging.js';
import { adminApi, openTestApp, sampleReport, type TestApp } from '../helpers/browser.js';
import { insertLegacyReports, MIB, rowsOfReport } from '../helpers/legacy-reports.js';

const START = new Date('2026-05-10T08:00:00Z');

describe('reports API: legacy rows with megabyte strings', () => {
  let t: TestApp;
  const { get, del, importJson, pages, addDomains } = adminApi(() => t);

  before(async () => {
    t = await openTestApp({ start: START });
    await addDomains(['example.com', 'other.example']);
  });
  after(() => t.close());

  test('legacy rows with megabyte strings: every page of GET /api/reports stays under the cap, no 500', async () => {
    for (let i = 0; i < 20; i++)
      assert.equal((await importJson(sampleReport(`ok-${i}`, `2026-05-0${1 + (i % 9)}`))).statusCode, 200);
    insertLegacyReports(
      t.dataDir,
      Array.from({ length: 12 }, (_, i) => ({
        organization: `${i}${'A'.repeat(MIB)}`,
        reportId: `${i}${'\u0001'.repeat(MIB)}`,
        start: `2026-05-0${1 + (i % 9)}T06:00:00Z`,
        domain: 'example.com',
        submitter: 's'.repeat(MIB),
      })),
    );
    for (const limit of [100, 1000]) {
      const res = await get(`/api/reports?limit=${limit}`);
      assert.equal(res.statusCode, 200);
      assert.ok(res.rawPayload.length <= LIST_PAGE_MAX_BYTES, `${res.rawPayload.length} bytes`);
      const body = res.json();
      assert.ok(SCHEMAS.ReportList.safeParse(body).success, 'the documented schema');
      assert.equal(body.total, 32);
      const giant = body.reports.find((r: { organization: string }) => r.organization.startsWith('0AAA'));
      assert.equal(giant.organization.length, LIST_TEXT_MAX + CLIP_MARK.length);
      assert.ok(giant.organization.endsWith(CLIP_MARK));
      assert.deepEqual(giant.clipped, ['organization', 'reportId']);
    }
    const all = await pages('/api/reports', 'reports', 7);
    assert.equal(all.items.length, 32);
    assert.equal(new Set(all.items.map((r) => r.id)).size, 32);
    assert.ok(Math.max(...all.sizes) <= LIST_PAGE_MAX_BYTES);
    // the domain filter and the overview are bounded the same way
    const mine = await get('/api/reports?domain=example.com&limit=1000');
    assert.equal(mine.statusCode, 200);
    assert.ok(mine.rawPayload.length <= LIST_PAGE_MAX_BYTES);
    assert.equal((await get('/api/domains')).statusCode, 200);
  });

  test('the detail view: whole values for normal reports, 413 with the clipped summary for giant ones', async () => {
    const [giant] = insertLegacyReports(t.dataDir, [
      {
        organization: `Giant ${'G'.repeat(REPORT_DETAIL_MAX_BYTES)}`,
        reportId: 'giant-1',
        start: '2026-05-02T00:00:00Z',
        domain: 'example.com',
      },
    ]);
    const res = await get(`/api/reports/${giant}`);
    assert.equal(res.statusCode, 413);
    assert.ok(res.rawPayload.length < 64 * 1024);
    const body = res.json();
    assert.ok(SCHEMAS.ReportTooLarge.safeParse(body).success, 'the documented schema');
    assert.equal(body.code, 'REPORT_TOO_LARGE');
    assert.equal(body.maxBytes, REPORT_DETAIL_MAX_BYTES);
    assert.ok(body.bytes > REPORT_DETAIL_MAX_BYTES);
    assert.equal(body.report.id, giant);
    assert.equal(body.report.reportId, 'giant-1');
    assert.deepEqual(body.report.clipped, ['organization']);
    // a report of normal size: every value whole, even past the list view's clip length
    const long = 'L'.repeat(LIST_TEXT_MAX + 50);
    const [normal] = insertLegacyReports(t.dataDir, [
      { organization: long, reportId: 'long-1', start: '2026-05-02T00:00:00Z', domain: 'example.com' },
    ]);
    const detail = await get(`/api/reports/${normal}`);
    assert.equal(detail.statusCode, 200);
    assert.equal(detail.json().organization, long);
    assert.equal(detail.json().clipped, undefined);
  });

  test('a giant legacy report can be deleted through the API', async () => {
    const [giant] = insertLegacyReports(t.dataDir, [
      {
        organization: 'X'.repeat(2 * REPORT_DETAIL_MAX_BYTES),
        reportId: 'giant-del',
        start: '2026-05-03T00:00:00Z',
        domain: 'example.com',
      },
    ]);
    assert.equal((await del(`/api/reports/${giant}`)).statusCode, 204);
    assert.deepEqual(rowsOfReport(t.dataDir, giant!), { reports: 0, policies: 0, failures: 0 });
  });

  test('the statistics stay bounded with megabyte keys in legacy failure rows', async () => {
    insertLegacyReports(
      t.dataDir,
      Array.from({ length: 30 }, (_, i) => ({
        organization: `${i}${'\u0001'.repeat(MIB / 16)}`,
        reportId: `stats-${i}`,
        start: '2026-05-08T00:00:00Z',
        domain: 'other.example',
        failures: [
          {
            resultType: `${i}${'\u0002'.repeat(MIB / 16)}`,
            count: 1,
            sendingMtaIp: `${i}${'\u0003'.repeat(MIB / 16)}`,
            receivingMxHostname: `${i}${'\u0004'.repeat(MIB / 16)}`,
          },
        ],
      })),
    );
    const res = await get('/api/domains/other.example/stats?days=30');
    assert.equal(res.statusCode, 200);
    assert.ok(res.rawPayload.length <= LIST_PAGE_MAX_BYTES, `${res.rawPayload.length} bytes`);
    const body = res.json();
    assert.equal(body.failures.organization.length, 30);
    assert.equal(body.failures.organization[0].clipped, true);
  });
});
