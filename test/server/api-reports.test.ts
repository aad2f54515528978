// The report part of the API: import, list, detail, rejected input, per-domain statistics for the
// chart and the failure tables, and attacker-controlled report text coming back verbatim.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { longOrganizationGzip } from '../fixtures/intake/hostile.js';
import {
  adminApi,
  openTestApp,
  reportJson,
  sampleReport,
  type TestApp,
  XSS,
  xssReportSpec,
} from '../helpers/browser.js';

const START = new Date('2026-05-10T08:00:00Z');

describe('reports API', () => {
  let t: TestApp;
  let auth: { authorization: string };
  const get = (url: string) => t.app.inject({ url, headers: auth });
  const importBytes = (payload: string | Buffer, type = 'application/tlsrpt+json', query = '') =>
    t.app.inject({
      method: 'POST',
      url: `/api/reports/import${query}`,
      headers: { ...auth, 'content-type': type },
      payload,
    });

  before(async () => {
    t = await openTestApp({ start: START });
    auth = { authorization: `Bearer ${t.password}` };
    const add = await t.app.inject({
      method: 'POST',
      url: '/api/domains',
      headers: auth,
      payload: { name: 'example.com', mx: ['mx1.example.com', 'mx2.example.com'] },
    });
    assert.equal(add.statusCode, 201);
  });
  after(() => t.close());

  test('importing a JSON report stores it once', async () => {
    const json = reportJson({
      organization: 'Mail Sender A',
      reportId: 'a-2026-05-08',
      domain: 'example.com',
      day: '2026-05-08',
      successful: 1000,
      failures: [
        {
          resultType: 'certificate-expired',
          count: 4,
          sendingMtaIp: '192.0.2.1',
          receivingMxHostname: 'mx1.example.com',
        },
        {
          resultType: 'starttls-not-supported',
          count: 1,
          sendingMtaIp: '192.0.2.2',
          receivingMxHostname: 'mx2.example.com',
        },
      ],
    });
    const first = await importBytes(json, 'application/tlsrpt+json', '?filename=a.json');
    assert.equal(first.statusCode, 200, first.body);
    const stored = first.json().stored;
    assert.equal(stored.length, 1);
    assert.deepEqual(
      { created: stored[0].created, organization: stored[0].organization, reportId: stored[0].reportId },
      { created: true, organization: 'Mail Sender A', reportId: 'a-2026-05-08' },
    );
    const again = await importBytes(json, 'application/octet-stream');
    assert.equal(again.json().stored[0].created, false);
    assert.equal(again.json().stored[0].id, stored[0].id);

    const detail = (await get(`/api/reports/${stored[0].id}`)).json();
    assert.equal(detail.source, 'import');
    assert.equal(detail.dkim, 'unverified');
    assert.equal(detail.submitter, 'a.json');
  });

  test('importing a gzip report', async () => {
    const json = reportJson({
      organization: 'Mail Sender B',
      reportId: 'b-2026-05-09',
      domain: 'example.com',
      day: '2026-05-09',
      successful: 500,
      failures: [
        {
          resultType: 'certificate-expired',
          count: 6,
          sendingMtaIp: '198.51.100.9',
          receivingMxHostname: 'mx1.example.com',
        },
      ],
    });
    const res = await importBytes(gzipSync(json), 'application/tlsrpt+gzip');
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().stored[0].created, true);
  });

  test('input that is not a report is refused and kept in the rejected list', async () => {
    const res = await importBytes('this is not a report', 'application/octet-stream', '?filename=notes.txt');
    assert.equal(res.statusCode, 400);
    const body = res.json();
    assert.match(body.code, /^TLSRPT_/);
    assert.equal(typeof body.rejectedId, 'number');
    const { rejected, total, nextCursor } = (await get('/api/rejected')).json();
    assert.equal(total, 1);
    assert.equal(nextCursor, null);
    assert.equal(rejected[0].id, body.rejectedId);
    assert.equal(rejected[0].submitter, 'notes.txt');
    assert.equal(rejected[0].source, 'import');
    assert.equal(rejected[0].size, 'this is not a report'.length);
  });

  test('wrong content types and oversized input', async () => {
    for (const type of [
      'application/json',
      'text/plain',
      'multipart/form-data; boundary=x',
      'application/x-www-form-urlencoded',
    ]) {
      const res = await importBytes('{}', type);
      assert.equal(res.statusCode, 415, type);
    }
    const huge = Buffer.alloc(t.ctx.config.intake.maxBytes + 1, 0x20);
    assert.equal((await importBytes(huge, 'application/octet-stream')).statusCode, 413);
  });

  test('listing reports, newest first, with a domain filter and paging', async () => {
    const other = reportJson({
      organization: 'Other',
      reportId: 'o-1',
      domain: 'other.example',
      day: '2026-05-10',
      successful: 3,
    });
    assert.equal((await importBytes(other)).statusCode, 200);
    const all = (await get('/api/reports')).json();
    assert.deepEqual(
      all.reports.map((r: { reportId: string }) => r.reportId),
      ['o-1', 'b-2026-05-09', 'a-2026-05-08'],
    );
    assert.deepEqual(all.reports[2].domains, ['example.com']);
    assert.equal(all.reports[2].successful, 1000);
    assert.equal(all.reports[2].failed, 5);
    const mine = (await get('/api/reports?domain=example.com')).json();
    assert.equal(mine.reports.length, 2);
    assert.equal(all.total, 3);
    assert.equal(all.nextCursor, null);
    assert.equal(all.limit, 100);
    const first = (await get('/api/reports?limit=1')).json();
    assert.equal(first.total, 3);
    assert.equal(typeof first.nextCursor, 'string');
    const page = (await get(`/api/reports?limit=1&cursor=${encodeURIComponent(first.nextCursor)}`)).json();
    assert.deepEqual(
      page.reports.map((r: { reportId: string }) => r.reportId),
      ['b-2026-05-09'],
    );
    assert.equal(page.limit, 1);
    for (const query of ['?limit=0', '?limit=abc', '?limit=100000', '?cursor=bogus', '?offset=1']) {
      const res = await get(`/api/reports${query}`);
      assert.equal(res.statusCode, 400, query);
    }
    assert.match((await get('/api/reports?offset=1')).json().message, /cursor/);
  });

  test('report detail; unknown ids are 404', async () => {
    const [first] = (await get('/api/reports?domain=example.com&limit=1')).json().reports;
    const detail = (await get(`/api/reports/${first.id}`)).json();
    assert.equal(detail.report.policies[0].failures[0].resultType, 'certificate-expired');
    for (const id of ['999999', '0', '-1', 'abc', '1e3', '99999999999999999999']) {
      assert.equal((await get(`/api/reports/${id}`)).statusCode, 404, id);
    }
  });

  test('stats: sessions per day with every day filled, failures by type, organisation, MX and IP', async () => {
    const res = await get('/api/domains/example.com/stats?days=7');
    assert.equal(res.statusCode, 200, res.body);
    const stats = res.json();
    assert.equal(stats.since, '2026-05-04');
    assert.equal(stats.until, '2026-05-10');
    assert.equal(stats.daily.length, 7);
    assert.deepEqual(stats.daily.slice(3), [
      { day: '2026-05-07', successful: 0, failed: 0 },
      { day: '2026-05-08', successful: 1000, failed: 5 },
      { day: '2026-05-09', successful: 500, failed: 6 },
      { day: '2026-05-10', successful: 0, failed: 0 },
    ]);
    assert.deepEqual(stats.totals, { successful: 1500, failed: 11 });
    assert.deepEqual(stats.failures.resultType, [
      { key: 'certificate-expired', count: 10 },
      { key: 'starttls-not-supported', count: 1 },
    ]);
    assert.deepEqual(stats.failures.organization, [
      { key: 'Mail Sender B', count: 6 },
      { key: 'Mail Sender A', count: 5 },
    ]);
    assert.deepEqual(stats.failures.receivingMxHostname, [
      { key: 'mx1.example.com', count: 10 },
      { key: 'mx2.example.com', count: 1 },
    ]);
    assert.deepEqual(stats.failures.sendingMtaIp, [
      { key: '198.51.100.9', count: 6 },
      { key: '192.0.2.1', count: 4 },
      { key: '192.0.2.2', count: 1 },
    ]);
    const short = (await get('/api/domains/example.com/stats?days=1')).json();
    assert.deepEqual(short.daily, [{ day: '2026-05-10', successful: 0, failed: 0 }]);
    assert.deepEqual(short.failures.resultType, []);
    for (const days of ['0', '367', 'x']) {
      assert.equal((await get(`/api/domains/example.com/stats?days=${days}`)).statusCode, 400, days);
    }
    const overview = (await get('/api/domains')).json().domains[0];
    assert.deepEqual(overview.last30Days, { successful: 1500, failed: 11 });
  });

  test('HTML and script in a report come back verbatim as JSON strings', async () => {
    const json = reportJson(xssReportSpec('example.com', '2026-05-10'));
    const res = await importBytes(json);
    assert.equal(res.statusCode, 200, res.body);
    const { id, organization, reportId } = res.json().stored[0];
    assert.equal(organization, XSS.organization);
    assert.equal(reportId, XSS.reportId);
    const detailRes = await get(`/api/reports/${id}`);
    assert.match(String(detailRes.headers['content-type']), /^application\/json/);
    const detail = detailRes.json();
    assert.equal(detail.organization, XSS.organization);
    assert.equal(detail.reportId, XSS.reportId);
    assert.equal(detail.report.contactInfo, XSS.contactInfo);
    const failure = detail.report.policies[0].failures[0];
    assert.deepEqual(
      [
        failure.sendingMtaIp,
        failure.receivingMxHostname,
        failure.receivingMxHelo,
        failure.failureReasonCode,
        failure.additionalInformation,
      ],
      [XSS.sendingMtaIp, XSS.mxHost, XSS.helo, XSS.failureReasonCode, XSS.additionalInformation],
    );
    const stats = (await get('/api/domains/example.com/stats?days=1')).json();
    assert.deepEqual(stats.failures.organization, [{ key: XSS.organization, count: 3 }]);
    // The store groups MX host names case-insensitively (lower case).
    assert.deepEqual(stats.failures.receivingMxHostname, [{ key: XSS.mxHost.toLowerCase(), count: 3 }]);
    assert.deepEqual(stats.failures.sendingMtaIp, [{ key: XSS.sendingMtaIp, count: 3 }]);
  });

  test('fuzz: random bytes to the import never cause a server error', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.string({ maxLength: 300 }).map((s) => Buffer.from(s)),
          fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v))),
        ),
        async (bytes) => {
          const res = await importBytes(Buffer.from(bytes), 'application/octet-stream');
          assert.ok([200, 400].includes(res.statusCode), `${res.statusCode} ${res.body}`);
        },
      ),
      { numRuns: 150 },
    );
  });
});

// Paging while reports arrive, deletion, and the other paged lists (the legacy rows of issue 10 with
// megabyte strings: api-reports-legacy.test.ts, SQLite only).
describe('reports API: bounded answers and deletion', () => {
  let t: TestApp;
  let auth: { authorization: string };
  const { get, del, importJson, pages, addDomains } = adminApi(() => t);

  before(async () => {
    t = await openTestApp({ start: START });
    auth = { authorization: `Bearer ${t.password}` };
    await addDomains(['example.com', 'other.example']);
  });
  after(() => t.close());

  test('pages cover every report exactly once while reports arrive between them', async () => {
    for (let i = 0; i < 20; i++)
      assert.equal((await importJson(sampleReport(`ok-${i}`, `2026-05-0${1 + (i % 9)}`))).statusCode, 200);
    const before = await get('/api/reports?limit=1000');
    const present = new Set(before.json().reports.map((r: { id: number }) => r.id));
    const seen: number[] = [];
    let cursor: string | null = null;
    let round = 0;
    do {
      const res = await get(`/api/reports?limit=5${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(res.statusCode, 200);
      const body = res.json();
      seen.push(...body.reports.map((r: { id: number }) => r.id));
      cursor = body.nextCursor;
      // a newer report (before every page) and an older one (after this page) arrive meanwhile
      assert.equal((await importJson(sampleReport(`late-new-${round}`, '2026-05-10'))).statusCode, 200);
      assert.equal((await importJson(sampleReport(`late-old-${round}`, '2026-04-01'))).statusCode, 200);
      round++;
    } while (cursor !== null);
    assert.equal(new Set(seen).size, seen.length, 'no report twice');
    for (const id of present) assert.ok(seen.includes(id as number), `report ${id} listed`);
  });

  test('DELETE /api/reports/{id}: 204, then gone (404); its sessions leave the statistics', async () => {
    const imported = await importJson(
      reportJson({
        organization: 'To Delete',
        reportId: 'del-1',
        domain: 'other.example',
        day: '2026-05-09',
        successful: 70,
        failures: [{ resultType: 'certificate-expired', count: 4, sendingMtaIp: '192.0.2.44' }],
      }),
    );
    const { id } = imported.json().stored[0];
    const stats = async () => (await get('/api/domains/other.example/stats?days=7')).json();
    assert.deepEqual((await stats()).totals, { successful: 70, failed: 4 });
    assert.equal((await del(`/api/reports/${id}`, {})).statusCode, 401, 'admin only');
    assert.equal(
      (await del(`/api/reports/${id}`, { ...auth, origin: 'https://evil.example' })).statusCode,
      403,
      'cross-site refused',
    );
    const res = await del(`/api/reports/${id}`);
    assert.equal(res.statusCode, 204);
    assert.equal(res.body, '');
    assert.equal((await get(`/api/reports/${id}`)).statusCode, 404);
    assert.equal((await del(`/api/reports/${id}`)).statusCode, 404);
    assert.deepEqual((await stats()).totals, { successful: 0, failed: 0 });
    assert.deepEqual((await stats()).failures.sendingMtaIp, []);
    for (const bad of ['0', '-1', 'abc', '1e3', '99999999999999999999']) {
      assert.equal((await del(`/api/reports/${bad}`)).statusCode, 404, bad);
    }
  });

  test('the rejected list, the fetch log and the domains page with cursors and totals', async () => {
    for (let i = 0; i < 7; i++) {
      await t.app.inject({
        method: 'POST',
        url: `/api/reports/import?filename=junk-${i}`,
        headers: { ...auth, 'content-type': 'application/octet-stream' },
        payload: 'not a report',
      });
    }
    const rejected = await pages('/api/rejected', 'rejected', 3);
    assert.equal(rejected.total, 7);
    assert.equal(new Set(rejected.items.map((r) => r.id)).size, 7);

    for (let i = 0; i < 9; i++) {
      t.ctx.store.logFetch({
        at: new Date(START.getTime() + i * 1000).toISOString(),
        domain: 'example.com',
        clientIp: '192.0.2.9',
        userAgent: `agent ${i}`,
      });
    }
    const fetches = await pages('/api/domains/example.com/fetches', 'fetches', 4);
    assert.equal(fetches.total, 9);
    assert.deepEqual(
      (fetches.items as unknown as Array<{ userAgent: string }>).map((f) => f.userAgent),
      Array.from({ length: 9 }, (_, i) => `agent ${8 - i}`),
    );

    for (let i = 0; i < 4; i++) {
      await t.app.inject({
        method: 'POST',
        url: '/api/domains',
        headers: auth,
        payload: { name: `d${i}.example`, mx: ['mx.example.net'] },
      });
    }
    const domains = await pages('/api/domains', 'domains', 2);
    assert.equal(domains.total, 6);
    assert.deepEqual(
      (domains.items as unknown as Array<{ name: string }>).map((d) => d.name),
      ['d0.example', 'd1.example', 'd2.example', 'd3.example', 'example.com', 'other.example'],
    );
    for (const path of ['/api/rejected', '/api/domains', '/api/domains/example.com/fetches']) {
      assert.equal((await get(`${path}?cursor=xyz`)).statusCode, 400, path);
      assert.equal((await get(`${path}?limit=0`)).statusCode, 400, path);
    }
  });
});

// The dashboard's upload takes the same caps as POST /tlsrpt, with the same answers: a refusal for a
// cap is 413 (not 400), and the report is in the rejected list, never stored.
describe('reports API: the import has the intake caps', () => {
  let t: TestApp;
  let auth: { authorization: string };

  before(async () => {
    t = await openTestApp({ start: START });
    auth = { authorization: `Bearer ${t.password}` };
  });
  after(() => t.close());

  test('the 46 KB gzip with a 45 MiB organization-name is 413 and only a rejection is kept', async () => {
    const attack = await longOrganizationGzip(45 * 1024 * 1024, 'amplify-import');
    assert.ok(attack.length < 100 * 1024, `the attack is small (${attack.length} bytes)`);
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/reports/import?filename=amplify.json.gz',
      headers: { ...auth, 'content-type': 'application/tlsrpt+gzip' },
      payload: attack,
    });
    assert.equal(res.statusCode, 413, res.body.slice(0, 300));
    const body = res.json() as { code: string; rejectedId: number };
    assert.match(body.code, /^TLSRPT_(FIELD_TOO_LONG|TOO_LARGE)$/);
    const rejected = (await t.app.inject({ url: '/api/rejected', headers: auth })).json() as {
      rejected: Array<{ id: number; submitter?: string }>;
    };
    assert.ok(rejected.rejected.some((r) => r.id === body.rejectedId && r.submitter === 'amplify.json.gz'));
    const list = (await t.app.inject({ url: '/api/reports', headers: auth })).json() as { total: number };
    assert.equal(list.total, 0);
  });
});
