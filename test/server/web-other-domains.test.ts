// The "Other domains" page (src/server/web/other-domains.js, issue 15) in real headless Chromium (Debian
// package `chromium`, playwright-core) on the real SQLite store: reports about domains that are not
// configured listed per domain with counts and the intake.otherDomains setting; a count opens the reports
// behind it; reports that name no policy domain say so; a policy domain and reporter carrying HTML/script
// payloads are shown as text and none runs. Screenshots go to $MXGUARD_SCREENSHOTS when set, else a
// temporary directory.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { TlsReport } from '../../src/tlsrpt/report.js';
import {
  launchBrowser,
  logIn,
  openTestApp,
  screenshots,
  type TestApp,
  type TestBrowser,
} from '../helpers/browser.js';
import { DMARC_XSS, dmarcReport } from '../helpers/dmarc.js';

const START = new Date('2026-05-10T08:00:00Z');
/** A policy domain as a hostile reporter writes it (the store keeps it lower-cased). */
const XSS_DOMAIN = '"><img src=x onerror="window.__mxguardxss=\'domain\'">.evil.example';

describe('Other domains page in Chromium', () => {
  let t: TestApp;
  let browser: TestBrowser;
  let page: Page;
  const shots = screenshots(() => page);
  const screenshot = shots.take;
  const xssRan = () =>
    page.evaluate(() => {
      const w = window as unknown as { __mxguardXss?: unknown; __mxguardxss?: unknown };
      return w.__mxguardXss ?? w.__mxguardxss;
    });
  const cellsOf = (testid: string) =>
    page
      .getByTestId(testid)
      .locator('tbody tr')
      .evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)));

  before(async () => {
    t = await openTestApp({ start: START, listen: true });
    const add = await t.app.inject({
      method: 'POST',
      url: '/api/domains',
      headers: { authorization: `Bearer ${t.password}` },
      payload: { name: 'ours.example', mx: ['mx.ours.example'] },
    });
    assert.equal(add.statusCode, 201, add.body);
    const tls = (reportId: string, organization: string, domains: string[]): TlsReport => ({
      organization,
      reportId,
      start: '2026-05-08T00:00:00Z',
      end: '2026-05-08T23:59:59Z',
      policies: domains.map((domain) => ({
        type: 'sts',
        domain,
        policyStrings: [],
        mxHosts: [],
        successful: 4,
        failed: 0,
        failures: [],
      })),
    });
    const saveTls = (r: TlsReport) =>
      t.ctx.store.saveReport({ report: r, source: 'import', dkim: 'unverified', warnings: [] }, START);
    await saveTls(tls('t-ours', 'Sender Inc', ['ours.example']));
    await saveTls(tls('t-evil', DMARC_XSS.organization, [XSS_DOMAIN]));
    await saveTls(tls('t-bare', 'Bare Sender', ['']));
    const saveDmarc = (reportId: string, organization: string, domain: string, day: string) =>
      t.ctx.store.saveDmarcReport(
        {
          report: dmarcReport({
            organization,
            reportId,
            domain,
            day,
            rows: [{ sourceIp: '192.0.2.1', count: 3 }],
          }),
          source: 'import',
          dkim: 'unverified',
          warnings: [],
        },
        START,
      );
    await saveDmarc('d-ours', 'google.com', 'ours.example', '2026-05-07');
    await saveDmarc('d-evil-1', DMARC_XSS.organization, XSS_DOMAIN, '2026-05-06');
    await saveDmarc('d-evil-2', 'google.com', XSS_DOMAIN, '2026-05-09');
    browser = await launchBrowser();
    page = browser.page;
  });
  after(async () => {
    await browser?.close();
    await t?.close();
    shots.remove();
  });

  test('the nav opens the page: each other domain with its counts, as text, and the setting', async (ctx) => {
    ctx.diagnostic(`screenshots: ${shots.dir}`);
    await page.goto(t.url);
    await logIn(page, t);
    await page.locator('#nav').waitFor();
    await page.click('#nav a[data-nav=other]');
    await page.getByTestId('other-domains-table').waitFor();
    assert.match(await page.locator('h2').first().innerText(), /Other domains \(2\)/);
    const rows = await cellsOf('other-domains-table');
    assert.deepEqual(
      rows.map((r) => r.slice(0, 3)),
      [
        ['(the report names no policy domain)', '1', '0'],
        [XSS_DOMAIN.toLowerCase(), '1', '2'],
      ],
    );
    assert.match(
      await page.getByTestId('other-domains-setting').innerText(),
      /intake\.otherDomains is "keep"/,
    );
    assert.equal(await xssRan(), undefined);
    await screenshot('other-01-domains');
  });

  test('a count opens the reports behind it; a report without a policy domain says so', async () => {
    await page
      .getByTestId('other-domains-table')
      .locator('tbody tr')
      .nth(1)
      .locator('td')
      .nth(2)
      .locator('a')
      .click();
    await page.getByTestId('dmarc-reports-table').waitFor();
    assert.match(await page.locator('h2').first().innerText(), /DMARC reports \(2\)/);
    const dmarcRows = await cellsOf('dmarc-reports-table');
    assert.deepEqual(
      dmarcRows.map((r) => [r[0], r[1], r[3]]),
      [
        ['google.com', 'd-evil-2', XSS_DOMAIN.toLowerCase()],
        [DMARC_XSS.organization, 'd-evil-1', XSS_DOMAIN.toLowerCase()],
      ],
    );
    await screenshot('other-02-dmarc-reports-of-a-domain');

    await page.goto(`${t.url}/#/other`);
    await page
      .getByTestId('other-domains-table')
      .locator('tbody tr')
      .first()
      .locator('td')
      .nth(1)
      .locator('a')
      .click();
    await page.getByTestId('reports-table').waitFor();
    assert.match(await page.getByTestId('other-domains-note').innerText(), /name no policy domain/);
    const tlsRows = await cellsOf('reports-table');
    assert.deepEqual(
      tlsRows.map((r) => [r[1], r[3]]),
      [['t-bare', '(no policy domain)']],
    );
    await screenshot('other-03-tlsrpt-without-policy-domain');
    await page.getByRole('link', { name: 'Bare Sender' }).click();
    await page.getByTestId('report-facts').waitFor();
    assert.match(await page.getByTestId('report-facts').innerText(), /\(the report names no policy domain\)/);
  });

  test('the lists of every report about other domains, from the page’s links', async () => {
    await page.goto(`${t.url}/#/other`);
    await page.getByText('All TLS-RPT reports about other domains').click();
    await page.getByTestId('reports-table').waitFor();
    assert.match(await page.getByTestId('other-domains-note').innerText(), /not configured/);
    assert.deepEqual((await cellsOf('reports-table')).map((r) => r[1]).sort(), ['t-bare', 't-evil']);
    assert.ok((await page.getByTestId('reports-table').innerText()).includes(DMARC_XSS.organization));
    await page.goto(`${t.url}/#/other`);
    await page.getByText('All DMARC reports about other domains').click();
    await page.getByTestId('dmarc-reports-table').waitFor();
    assert.deepEqual((await cellsOf('dmarc-reports-table')).map((r) => r[1]).sort(), [
      'd-evil-1',
      'd-evil-2',
    ]);
    assert.equal(await xssRan(), undefined);
    assert.deepEqual(browser.dialogs, []);
    assert.deepEqual(browser.errors, []);
    await screenshot('other-04-dmarc-reports-of-other-domains');
  });
});
