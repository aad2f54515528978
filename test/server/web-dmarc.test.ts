// The DMARC views and the report views that scale, in real headless Chromium (Debian package `chromium`,
// playwright-core) on the real SQLite store, with a lab DNS server on loopback for the domain's MX, SPF,
// _dmarc and the sources' reverse names: the domain page's DMARC chart, next step, sources and reporters;
// a bar of the chart and a source opening the reports behind them; a range two years back; a report whose
// strings carry HTML/script payloads shown as text with none of them running; 210 TLS-RPT reports reached
// through pages with the count. Screenshots go to $MXGUARD_SCREENSHOTS when set, else a temporary directory.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { DMARC_CSV_COLUMNS } from '../../src/dmarc/csv.js';
import { DnsClient } from '../../src/dns/client.js';
import { ptrLookups } from '../../src/server/api/dmarc-routes.js';
import {
  launchBrowser,
  logIn,
  openTestApp,
  payloadRan,
  reportJson,
  screenshots,
  type TestApp,
  type TestBrowser,
} from '../helpers/browser.js';
import { parseCsv } from '../helpers/csv.js';
import { DMARC_XSS, dmarcReport, xssDmarcReport } from '../helpers/dmarc.js';
import { type LabDnsServer, startDnsServer } from '../lab/dns-server.js';

const START = new Date('2026-05-10T08:00:00Z');
const DAYS = 35;
const dayOf = (i: number) =>
  new Date(START.getTime() - (DAYS - 1 - i) * 86_400_000).toISOString().slice(0, 10);
const TLSRPT_REPORTS = 210;

describe('DMARC dashboard in Chromium', () => {
  let t: TestApp;
  let dns: LabDnsServer;
  let browser: TestBrowser;
  let page: Page;
  let xssId: number;
  const shots = screenshots(() => page);
  const screenshot = shots.take;
  const xssRan = () => payloadRan(page);
  const rowsOf = (testid: string) => page.getByTestId(testid).locator('tbody tr');

  before(async () => {
    dns = await startDnsServer([
      {
        origin: 'example.com',
        records: [
          { name: 'example.com', type: 'MX', data: { preference: 10, exchange: 'mx.example.com' } },
          { name: 'mx.example.com', type: 'A', data: '192.0.2.25' },
          { name: 'example.com', type: 'TXT', data: ['v=spf1 mx -all'] },
          { name: '_dmarc.example.com', type: 'TXT', data: ['v=DMARC1; p=none; rua=mailto:d@example.com'] },
        ],
      },
      {
        origin: 'in-addr.arpa',
        records: [{ name: '7.113.0.203.in-addr.arpa', type: 'PTR', data: 'a1-2.smtp-out.amazonses.com' }],
      },
    ]);
    const resolver = new DnsClient({
      servers: [{ host: dns.host, port: dns.port }],
      timeoutMs: 1000,
      tries: 1,
    });
    t = await openTestApp({ start: START, listen: true, resolver });
    const auth = { authorization: `Bearer ${t.password}` };
    const add = await t.app.inject({
      method: 'POST',
      url: '/api/domains',
      headers: auth,
      payload: { name: 'example.com', mx: ['mx.example.com'] },
    });
    assert.equal(add.statusCode, 201);
    const save = (report: ReturnType<typeof dmarcReport>) =>
      t.ctx.store.saveDmarcReport({ report, source: 'import', dkim: 'unverified', warnings: [] }, START);
    for (let i = 0; i < DAYS; i++) {
      await save(
        dmarcReport({
          organization: 'google.com',
          reportId: `g-${i}`,
          domain: 'example.com',
          day: dayOf(i),
          rows: [
            { sourceIp: '192.0.2.25', count: 20 },
            { sourceIp: '203.0.113.7', count: 5, spf: 'fail' },
            { sourceIp: '233.252.0.1', count: 2, dkim: 'fail', spf: 'fail', disposition: 'reject' },
          ],
        }),
      );
    }
    await save(
      dmarcReport({
        organization: 'Old Reporter',
        reportId: 'old-1',
        domain: 'example.com',
        day: '2024-03-01',
        rows: [{ sourceIp: '233.252.0.1', count: 99, dkim: 'fail', spf: 'fail', disposition: 'reject' }],
      }),
    );
    xssId = (await save(xssDmarcReport('example.com', dayOf(DAYS - 2)))).id;
    for (let i = 0; i < TLSRPT_REPORTS; i++) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/reports/import',
        headers: { ...auth, 'content-type': 'application/tlsrpt+json' },
        payload: reportJson({
          organization: `Sender ${i}`,
          reportId: `tls-${i}`,
          domain: 'example.com',
          day: dayOf(i % DAYS),
          successful: 10,
          // One sender with failures on the last day, for the failure tables' drill-down.
          ...(i === DAYS - 1 ? { failures: [{ resultType: 'certificate-expired', count: 4 }] } : {}),
        }),
      });
      assert.equal(res.statusCode, 200, res.body);
    }
    browser = await launchBrowser();
    page = browser.page;
  });
  after(async () => {
    await browser?.close();
    await t?.close();
    await dns?.stop();
    shots.remove();
  });

  test('log in and open the domain: DMARC chart, next step, sources, reporters', async (ctx) => {
    ctx.diagnostic(`screenshots: ${shots.dir}`);
    await page.goto(t.url);
    await logIn(page, t);
    await page.locator('#nav').waitFor();
    // The first view queues the reverse lookups; after them, the provider shows by name.
    await page.goto(`${t.url}/#/domains/example.com`);
    await page.getByTestId('dmarc-chart').waitFor();
    await ptrLookups(t.ctx).idle();
    await page.reload();
    await page.getByTestId('dmarc-sources').waitFor();
    assert.equal(await page.getByTestId('dmarc-chart').locator('g.day').count(), 30);
    assert.match(await page.getByTestId('dmarc-next-step').innerText(), /move to p=quarantine/);
    assert.equal(
      await page.getByTestId('dmarc-next-record').innerText(),
      '_dmarc.example.com.  TXT  "v=DMARC1; p=quarantine; rua=mailto:d@example.com"',
    );
    const sources = await rowsOf('dmarc-sources').evaluateAll((rows) =>
      rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)),
    );
    assert.deepEqual(
      sources.map((r) => [r[0], r[1], r[6]]),
      [
        ['192.0.2.25', '—', 'yes: an MX host of the domain'],
        ['203.0.113.7', 'a1-2.smtp-out.amazonses.com', 'yes: known provider (Amazon SES)'],
        ['233.252.0.1', '—', 'unknown'],
        ['198.51.100.9', '—', 'unknown'],
      ],
    );
    assert.equal(await rowsOf('dmarc-reporters').count(), 2);
    await screenshot('dmarc-01-domain');
  });

  test('a bar of the DMARC chart opens that day’s reports; a source opens its reports', async () => {
    const day = dayOf(DAYS - 3);
    await page.getByTestId('dmarc-chart').locator(`g.day[data-day="${day}"]`).click();
    await page.waitForURL(`**/#/dmarc?domain=example.com&since=${day}&until=${day}`);
    await page.getByTestId('dmarc-reports-table').waitFor();
    assert.deepEqual(await rowsOf('dmarc-reports-table').locator('td:nth-child(2)').allInnerTexts(), [
      `g-${DAYS - 3}`,
    ]);
    assert.match(await page.locator('h2').first().innerText(), /DMARC reports \(1\)/);
    await page.goto(`${t.url}/#/domains/example.com`);
    await page.getByTestId('dmarc-sources').locator('a', { hasText: '233.252.0.1' }).click();
    await page.getByTestId('dmarc-reports-table').waitFor();
    assert.match(page.url(), /sourceIp=233\.252\.0\.1/);
    assert.match(await page.locator('h2').first().innerText(), /DMARC reports \(30\)/);
    await screenshot('dmarc-05-reports-of-a-source');
  });

  test('a range two years back, from the date fields', async () => {
    await page.goto(`${t.url}/#/domains/example.com`);
    await page.getByTestId('range-picker').waitFor();
    await page.fill('[data-testid=range-picker] input[name=since]', '2024-02-01');
    await page.fill('[data-testid=range-picker] input[name=until]', '2024-03-31');
    await page.click('[data-testid=range-picker] button[type=submit]');
    await page.waitForURL('**/#/domains/example.com?since=2024-02-01&until=2024-03-31');
    await page.getByText('Reports from 2024-02-01 to 2024-03-31 (UTC)').waitFor();
    assert.equal(await page.getByTestId('dmarc-chart').locator('g.day').count(), 60);
    assert.match(await page.getByTestId('dmarc-chart').locator('figcaption').innerText(), /99 rejected/);
    await screenshot('dmarc-02-two-years-back');
  });

  test('a report full of HTML/script payloads is shown as text, none runs', async () => {
    await page.goto(`${t.url}/#/dmarc?domain=example.com`);
    await page.getByTestId('dmarc-reports-table').waitFor();
    assert.ok((await page.getByTestId('dmarc-reports-table').innerText()).includes(DMARC_XSS.organization));
    await page.goto(`${t.url}/#/dmarc/${xssId}`);
    await page.getByTestId('dmarc-report-rows').waitFor();
    const facts = await page.getByTestId('dmarc-report-facts').innerText();
    for (const value of [DMARC_XSS.organization, DMARC_XSS.reportId, DMARC_XSS.email]) {
      assert.ok(facts.includes(value), `shown as text: ${value}`);
    }
    const rows = await page.getByTestId('dmarc-report-rows').innerText();
    for (const value of [
      DMARC_XSS.headerFrom,
      DMARC_XSS.envelopeFrom,
      DMARC_XSS.selector,
      DMARC_XSS.reason,
    ]) {
      assert.ok(rows.includes(value), `shown as text: ${value}`);
    }
    assert.equal(await page.locator('main script, main img, main iframe, main svg[onload]').count(), 0);
    assert.equal(await xssRan(), undefined);
    await screenshot('dmarc-03-hostile-report');
    assert.deepEqual(browser.dialogs, []);
  });

  test('"Download CSV" saves the reports the filters select, in parsedmarc\'s columns', async () => {
    await page.goto(
      `${t.url}/#/dmarc?domain=example.com&organization=${encodeURIComponent(DMARC_XSS.organization)}`,
    );
    await page.getByTestId('dmarc-reports-table').waitFor();
    const link = page.getByTestId('csv-download');
    assert.equal(
      await link.getAttribute('href'),
      `/api/dmarc/reports.csv?domain=example.com&organization=${encodeURIComponent(DMARC_XSS.organization).replace(/%20/g, '+')}`,
    );
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    assert.equal(download.suggestedFilename(), 'dmarc-reports.csv');
    const rows = parseCsv(readFileSync((await download.path())!, 'utf8'));
    assert.deepEqual(rows[0], [...DMARC_CSV_COLUMNS]);
    const org = rows[0]!.indexOf('org_name');
    assert.ok(rows.length > 1);
    // Only the hostile reporter's rows, its name as text (a leading "<" is no formula: kept as it is).
    assert.deepEqual([...new Set(rows.slice(1).map((r) => r[org]))], [DMARC_XSS.organization]);
    assert.equal(await xssRan(), undefined);
  });

  test('210 TLS-RPT reports: the count, and every one reached through the pages', async () => {
    await page.goto(`${t.url}/#/reports`);
    await page.getByTestId('reports-table').waitFor();
    assert.match(await page.locator('h2', { hasText: 'Reports (' }).innerText(), /Reports \(210\)/);
    const more = page.getByTestId('reports-table-more');
    while ((await more.count()) > 0) {
      const shown = await rowsOf('reports-table').count();
      assert.match(await more.innerText(), new RegExp(`\\(${shown} of 210 shown\\)`));
      await more.click();
      await page.waitForFunction(
        (n) => document.querySelectorAll('[data-testid=reports-table] tbody tr').length > n,
        shown,
      );
    }
    const ids = await rowsOf('reports-table').locator('td:nth-child(2)').allInnerTexts();
    assert.equal(ids.length, TLSRPT_REPORTS);
    assert.equal(new Set(ids).size, TLSRPT_REPORTS);
    await screenshot('dmarc-04-all-tlsrpt-reports');
  });

  test('a bar of the TLS-RPT chart opens the reports of that day, with their count', async () => {
    await page.goto(`${t.url}/#/domains/example.com`);
    const day = dayOf(DAYS - 1);
    await page.getByTestId('sessions-chart').locator(`g.day[data-day="${day}"]`).click();
    await page.waitForURL(`**/#/reports?domain=example.com&since=${day}&until=${day}`);
    await page.getByTestId('reports-table').waitFor();
    // Reports i with i % 35 === 34: 34, 69, 104, 139, 174, 209.
    assert.match(await page.locator('h2', { hasText: 'Reports (' }).innerText(), /Reports \(6\)/);
    assert.equal(await rowsOf('reports-table').count(), 6);
    assert.deepEqual(browser.errors, []);
  });

  test("a row of the failures by sending organisation opens that sender's reports of the range", async () => {
    await page.goto(`${t.url}/#/domains/example.com`);
    const table = page.getByTestId('failures-organization');
    await table.waitFor();
    assert.deepEqual(await rowsOf('failures-organization').allInnerTexts(), [`Sender ${DAYS - 1}\t4`]);
    await table.getByRole('link', { name: `Sender ${DAYS - 1}` }).click();
    await page.waitForURL(
      /#\/reports\?domain=example\.com&organization=Sender\+34&since=\d{4}-\d\d-\d\d&until=/,
    );
    await page.getByTestId('reports-organization').waitFor();
    assert.match(await page.locator('h2', { hasText: 'Reports (' }).innerText(), /Reports \(1\)/);
    assert.deepEqual(await rowsOf('reports-table').locator('td:nth-child(2)').allInnerTexts(), [
      `tls-${DAYS - 1}`,
    ]);
    await page.getByRole('link', { name: 'Every organisation' }).click();
    await page.waitForURL((url) => !url.hash.includes('organization'));
    // The page shows the filtered list until the new one has loaded: wait for the heading to change.
    await page.locator('h2', { hasText: /^Reports \((?!1\))[\d,]+\)/ }).waitFor();
    await page.getByTestId('reports-organization').waitFor({ state: 'detached' });
    assert.deepEqual(browser.errors, []);
  });
});
