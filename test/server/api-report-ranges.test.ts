// Ranges of the TLS-RPT views (issue 15, "report views that scale"): GET /api/domains/{name}/stats and
// GET /api/reports take a range of UTC days of any length up to ten years, so a report imported years
// after it was sent is reachable, and the reports of one day of the chart are one filtered list.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openTestApp, reportJson, type TestApp } from '../helpers/browser.js';

const NOW = new Date('2026-05-10T08:00:00Z');

describe('TLS-RPT ranges', () => {
  let t: TestApp;
  let auth: { authorization: string };
  const get = async (url: string, status = 200) => {
    const res = await t.app.inject({ url, headers: auth });
    assert.equal(res.statusCode, status, `${url}: ${res.body}`);
    return res.json();
  };

  before(async () => {
    t = await openTestApp({ start: NOW });
    auth = { authorization: `Bearer ${t.password}` };
    const add = await t.app.inject({
      method: 'POST',
      url: '/api/domains',
      headers: auth,
      payload: { name: 'example.com', mx: ['mx.example.com'] },
    });
    assert.equal(add.statusCode, 201);
    const days = ['2024-02-10', '2026-05-01', '2026-05-01', '2026-05-09'];
    for (const [i, day] of days.entries()) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/reports/import',
        headers: { ...auth, 'content-type': 'application/tlsrpt+json' },
        payload: reportJson({
          organization: `Sender ${i}`,
          reportId: `r-${i}`,
          domain: 'example.com',
          day,
          successful: 10 * (i + 1),
          failures: [{ resultType: 'certificate-expired', count: i + 1 }],
        }),
      });
      assert.equal(res.statusCode, 200, res.body);
    }
  });
  after(() => t.close());

  test('a range two years back shows the old report; days still means the last days', async () => {
    const old = await get('/api/domains/example.com/stats?since=2024-02-01&until=2024-02-29');
    assert.equal(old.daily.length, 29);
    assert.deepEqual(old.totals, { successful: 10, failed: 1 });
    assert.deepEqual(
      old.daily.find((d: { day: string }) => d.day === '2024-02-10'),
      { day: '2024-02-10', successful: 10, failed: 1 },
    );
    // The failure tables count the same range: the 2026 reports' failures are not in it.
    assert.deepEqual(old.failures.resultType, [{ key: 'certificate-expired', count: 1 }]);
    assert.deepEqual(old.failures.organization, [{ key: 'Sender 0', count: 1 }]);
    const recent = await get('/api/domains/example.com/stats?days=30');
    assert.equal(recent.since, '2026-04-11');
    assert.equal(recent.until, '2026-05-10');
    assert.deepEqual(recent.totals, { successful: 20 + 30 + 40, failed: 2 + 3 + 4 });
    const long = await get('/api/domains/example.com/stats?since=2017-01-01');
    assert.equal(long.until, '2026-05-10');
    assert.deepEqual(long.totals, { successful: 100, failed: 10 });
  });

  test('the reports of one sending organisation (a row of the failure table), in the range', async () => {
    const sender = await get(
      '/api/reports?domain=example.com&organization=Sender%202&since=2026-05-01&until=2026-05-01',
    );
    assert.equal(sender.total, 1);
    assert.deepEqual(
      sender.reports.map((r: { reportId: string }) => r.reportId),
      ['r-2'],
    );
    const none = await get('/api/reports?organization=Sender%202&until=2025-01-01');
    assert.equal(none.total, 0);
  });

  test('the reports of one day (a bar of the chart), with the total', async () => {
    const day = await get('/api/reports?domain=example.com&since=2026-05-01&until=2026-05-01');
    assert.equal(day.total, 2);
    assert.deepEqual(day.reports.map((r: { reportId: string }) => r.reportId).sort(), ['r-1', 'r-2']);
    const old = await get('/api/reports?until=2025-01-01');
    assert.deepEqual(
      old.reports.map((r: { reportId: string }) => r.reportId),
      ['r-0'],
    );
  });

  test('refused: a range longer than ten years, a day that does not exist, since after until', async () => {
    await get('/api/domains/example.com/stats?since=2000-01-01', 400);
    await get('/api/domains/example.com/stats?since=2026-02-30&until=2026-03-01', 400);
    await get('/api/domains/example.com/stats?since=2026-05-02&until=2026-05-01', 400);
    await get('/api/reports?since=yesterday', 400);
  });
});
