// The DMARC part of the API (src/server/api/dmarc-routes.ts) on the real SQLite store, with a lab DNS
// server on loopback answering the domain's MX, SPF, _dmarc and the reverse names of the sources:
// filters and paging with totals over every report, ranges older than a year, the daily results, the
// reporters, the sources judged (reverse DNS filled in the background) and the next step with its record.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DnsClient } from '../../src/dns/client.js';
import { ptrLookups } from '../../src/server/api/dmarc-routes.js';
import { openTestApp, type TestApp } from '../helpers/browser.js';
import { type DmarcRowSpec, dmarcReport } from '../helpers/dmarc.js';
import { type LabDnsServer, startDnsServer } from '../lab/dns-server.js';

const NOW = new Date('2026-05-10T12:00:00Z');
const OWN_MX = '192.0.2.25';
const SPF_NET_HOST = '198.51.100.4';
const PROVIDER = '203.0.113.7';
const SPOOFER = '233.252.0.1';

/** 40 days of daily reports by two reporters: what each day holds, kept to compute expectations. */
const DAYS = 40;
const dayOf = (i: number) => new Date(NOW.getTime() - (DAYS - 1 - i) * 86_400_000).toISOString().slice(0, 10);
function rowsOf(i: number): DmarcRowSpec[] {
  return [
    { sourceIp: OWN_MX, count: 10 + i },
    { sourceIp: SPF_NET_HOST, count: 3, dkim: 'fail' },
    { sourceIp: PROVIDER, count: 2, spf: 'fail' },
    {
      sourceIp: SPOOFER,
      count: 1 + (i % 3),
      dkim: 'fail',
      spf: 'fail',
      disposition: i % 2 ? 'reject' : 'none',
    },
  ];
}

describe('DMARC API', () => {
  let lab: LabDnsServer;
  let t: TestApp;
  let auth: { authorization: string };
  const get = async (url: string, status = 200) => {
    const res = await t.app.inject({ url, headers: auth });
    assert.equal(res.statusCode, status, `${url}: ${res.body}`);
    return res.json();
  };

  before(async () => {
    lab = await startDnsServer([
      {
        origin: 'example.com',
        records: [
          { name: 'example.com', type: 'MX', data: { preference: 10, exchange: 'mx.example.com' } },
          { name: 'mx.example.com', type: 'A', data: OWN_MX },
          { name: 'example.com', type: 'TXT', data: ['v=spf1 mx ip4:198.51.100.0/28 -all'] },
          {
            name: '_dmarc.example.com',
            type: 'TXT',
            data: ['v=DMARC1; p=none; rua=mailto:dmarc@example.com'],
          },
        ],
      },
      {
        origin: 'in-addr.arpa',
        records: [{ name: '7.113.0.203.in-addr.arpa', type: 'PTR', data: 'o1.mail.sendgrid.net' }],
      },
    ]);
    t = await openTestApp({
      start: NOW,
      resolver: new DnsClient({ servers: [{ host: lab.host, port: lab.port }], timeoutMs: 2000, tries: 1 }),
    });
    auth = { authorization: `Bearer ${t.password}` };
    const add = await t.app.inject({
      method: 'POST',
      url: '/api/domains',
      headers: auth,
      payload: { name: 'example.com', mx: ['mx.example.com'] },
    });
    assert.equal(add.statusCode, 201);
    for (let i = 0; i < DAYS; i++) {
      for (const organization of ['google.com', 'Yahoo']) {
        const report = dmarcReport({
          organization,
          reportId: `${organization}-${i}`,
          domain: 'example.com',
          day: dayOf(i),
          rows: rowsOf(i),
        });
        await t.ctx.store.saveDmarcReport(
          { report, source: 'import', dkim: 'unverified', warnings: [] },
          NOW,
        );
      }
    }
    // Two years back, beyond any 365-day picker: still reachable by its range.
    const old = dmarcReport({
      organization: 'Old Reporter',
      reportId: 'old-1',
      domain: 'example.com',
      day: '2024-03-01',
      rows: [{ sourceIp: SPOOFER, count: 99, dkim: 'fail', spf: 'fail', disposition: 'reject' }],
    });
    await t.ctx.store.saveDmarcReport(
      { report: old, source: 'import', dkim: 'unverified', warnings: [] },
      NOW,
    );
  });
  after(async () => {
    await t.close();
    await lab.stop();
  });

  test('sources ranked by messages, judged legitimate, the provider named once its PTR is looked up (first test: nothing cached yet)', async () => {
    const url = `/api/domains/example.com/dmarc/sources?since=${dayOf(0)}`;
    const first = await get(url);
    const judged = (page: { sources: { sourceIp: string; legitimacy: string }[] }) =>
      Object.fromEntries(page.sources.map((s) => [s.sourceIp, s.legitimacy]));
    assert.deepEqual(
      first.sources.map((s: { sourceIp: string }) => s.sourceIp),
      [OWN_MX, SPF_NET_HOST, PROVIDER, SPOOFER],
    );
    assert.equal(first.total, 4);
    assert.deepEqual(judged(first), {
      [OWN_MX]: 'own-mx',
      [SPF_NET_HOST]: 'spf-authorised',
      [PROVIDER]: 'aligned',
      [SPOOFER]: 'unknown',
    });
    await ptrLookups(t.ctx).idle();
    const second = await get(url);
    const provider = second.sources.find((s: { sourceIp: string }) => s.sourceIp === PROVIDER);
    assert.deepEqual(
      [provider.ptr, provider.legitimacy, provider.provider],
      ['o1.mail.sendgrid.net', 'known-provider', 'SendGrid'],
    );
    const spf = second.sources.find((s: { sourceIp: string }) => s.sourceIp === SPF_NET_HOST);
    assert.equal(spf.ptr, undefined, 'no PTR record: none shown');
    assert.equal(spf.messages, 2 * 3 * DAYS);
    assert.equal(spf.dkimAligned, 0);
    assert.equal(spf.spfAligned, 2 * 3 * DAYS);
    const failing = await get(`${url}&verdict=fail`);
    assert.deepEqual(
      failing.sources.map((s: { sourceIp: string }) => s.sourceIp),
      [SPOOFER],
    );
    const paged = await get(`${url}&limit=3`);
    assert.equal(paged.sources.length, 3);
    assert.equal(paged.total, 4);
    const rest = await get(`${url}&limit=3&cursor=${paged.nextCursor}`);
    assert.deepEqual(
      rest.sources.map((s: { sourceIp: string }) => s.sourceIp),
      [SPOOFER],
    );
    assert.equal(rest.nextCursor, null);
  });

  test('the daily results add up to the rows of the reports, every day of the range', async () => {
    const view = await get('/api/domains/example.com/dmarc');
    assert.equal(view.since, dayOf(DAYS - 30));
    assert.equal(view.until, dayOf(DAYS - 1));
    assert.equal(view.daily.length, 30);
    let expected = { pass: 0, fail: 0, quarantined: 0, rejected: 0 };
    for (let i = DAYS - 30; i < DAYS; i++) {
      const day = { pass: 0, fail: 0, quarantined: 0, rejected: 0 };
      for (const r of rowsOf(i)) {
        const n = 2 * r.count; // two reporters
        if (r.dkim !== 'fail' || r.spf !== 'fail') day.pass += n;
        else if (r.disposition === 'reject') day.rejected += n;
        else day.fail += n;
      }
      assert.deepEqual(view.daily[i - (DAYS - 30)], { day: dayOf(i), ...day });
      expected = {
        pass: expected.pass + day.pass,
        fail: expected.fail + day.fail,
        quarantined: 0,
        rejected: expected.rejected + day.rejected,
      };
    }
    assert.deepEqual(view.totals, expected);
    assert.deepEqual(
      view.reporters.map((r: { organization: string; reports: number }) => [r.organization, r.reports]),
      [
        ['Yahoo', 30],
        ['google.com', 30],
      ],
    );
    assert.equal(view.reportersCut, false);
    assert.equal(view.policy, 'none');
  });

  test('the next step: 30 days aligned but for an unknown spoofer -> p=quarantine with the record', async () => {
    const view = await get('/api/domains/example.com/dmarc');
    assert.equal(view.nextStep.code, 'MOVE_TO_QUARANTINE');
    assert.deepEqual(view.nextStep.record, {
      name: '_dmarc.example.com',
      type: 'TXT',
      value: 'v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com',
    });
    const short = await get(`/api/domains/example.com/dmarc?since=${dayOf(DAYS - 10)}`);
    assert.equal(short.nextStep.code, 'WAIT');
  });

  test('report list: every filter, paging through all with the total, ranges years back', async () => {
    const all: number[] = [];
    let url = '/api/dmarc/reports?domain=example.com&since=2020-01-01&limit=7';
    for (;;) {
      const page = await get(url);
      assert.equal(page.total, 2 * DAYS + 1);
      all.push(...page.reports.map((r: { id: number }) => r.id));
      if (page.nextCursor === null) break;
      url = `/api/dmarc/reports?domain=example.com&since=2020-01-01&limit=7&cursor=${page.nextCursor}`;
    }
    assert.equal(all.length, 2 * DAYS + 1);
    assert.equal(new Set(all).size, all.length);
    const old = await get('/api/dmarc/reports?since=2024-01-01&until=2024-12-31');
    assert.deepEqual(
      old.reports.map((r: { reportId: string }) => r.reportId),
      ['old-1'],
    );
    const oldView = await get('/api/domains/example.com/dmarc?since=2024-02-28&until=2024-03-02');
    assert.equal(oldView.totals.rejected, 99);
    const byDay = await get(`/api/dmarc/reports?since=${dayOf(5)}&until=${dayOf(5)}`);
    assert.deepEqual(byDay.reports.map((r: { reportId: string }) => r.reportId).sort(), [
      'Yahoo-5',
      'google.com-5',
    ]);
    const byReporter = await get(`/api/dmarc/reports?organization=Yahoo&since=${dayOf(0)}`);
    assert.equal(byReporter.total, DAYS);
    const rejected = await get(`/api/dmarc/reports?disposition=reject&since=2020-01-01`);
    assert.equal(rejected.total, 2 * (DAYS / 2) + 1, 'odd days have a rejected row, and the old report');
    const bySource = await get(`/api/dmarc/reports?sourceIp=${PROVIDER}&since=2020-01-01`);
    assert.equal(bySource.total, 2 * DAYS);
    const summary = bySource.reports[0];
    assert.equal(
      summary.messages,
      rowsOf(DAYS - 1).reduce((n, r) => n + r.count, 0),
    );
  });

  test('one report whole, delete, and the refusals', async () => {
    const page = await get(`/api/dmarc/reports?organization=Yahoo&since=${dayOf(3)}&until=${dayOf(3)}`);
    const id = page.reports[0].id;
    const report = await get(`/api/dmarc/reports/${id}`);
    assert.equal(report.report.reportId, 'Yahoo-3');
    assert.deepEqual(
      report.report.records.map((r: { sourceIp: string }) => r.sourceIp),
      rowsOf(3).map((r) => r.sourceIp),
    );
    const del = await t.app.inject({ method: 'DELETE', url: `/api/dmarc/reports/${id}`, headers: auth });
    assert.equal(del.statusCode, 204);
    await get(`/api/dmarc/reports/${id}`, 404);
    await get('/api/dmarc/reports/0', 404);
    await get('/api/domains/other.example/dmarc', 404);
    const backwards = await get(`/api/domains/example.com/dmarc?since=${dayOf(9)}&until=${dayOf(1)}`, 400);
    assert.match(backwards.message, /after until/);
    await get('/api/domains/example.com/dmarc?since=2000-01-01&until=2026-05-10', 400);
    await get('/api/domains/example.com/dmarc?since=2026-02-30', 400);
    await get('/api/dmarc/reports?disposition=maybe', 400);
  });
});
