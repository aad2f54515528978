// The dashboard in real headless Chromium (Debian package `chromium`, driven by playwright-core) on
// a store that holds a giant report of an older mxguard (before report caps:
// test/helpers/legacy-reports.ts): its row in the paged report list is clipped, its page says it is
// too large to show, and it can be deleted. SQLite only: that era never existed on PostgreSQL
// (test/postgres-pass.ts). Screenshots as in dashboard.test.ts ($MXGUARD_SCREENSHOTS when set).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { REPORT_DETAIL_MAX_BYTES } from '../../../src/store/paging.js';
import {
  launchBrowser,
  logIn,
  openTestApp,
  saveSampleReports,
  screenshots,
  type TestApp,
  type TestBrowser,
} from '../../helpers/browser.js';
import { insertLegacyReports, MIB } from '../../helpers/legacy-reports.js';

const START = new Date('2026-05-10T08:00:00Z');

describe('dashboard in Chromium with a giant legacy report', () => {
  let t: TestApp;
  let browser: TestBrowser;
  let page: Page;
  const shots = screenshots(() => page);
  const screenshot = shots.take;

  before(async () => {
    t = await openTestApp({ start: START, listen: true });
    browser = await launchBrowser();
    page = browser.page;
  });
  after(async () => {
    await browser?.close();
    await t?.close();
    shots.remove();
  });

  test('the reports list pages with the giant report clipped; the giant report is deleted', async (ctx) => {
    ctx.diagnostic(`screenshots: ${shots.dir}${shots.kept ? '' : ' (removed afterwards)'}`);
    await saveSampleReports(t, 60, 'paging.example');
    const [giant] = insertLegacyReports(t.dataDir, [
      {
        organization: `Giant\u202e ${'G'.repeat(REPORT_DETAIL_MAX_BYTES)}`,
        reportId: `giant-${'R'.repeat(MIB)}`,
        start: '2026-05-07T00:00:00Z',
        domain: 'paging.example',
      },
    ]);
    await page.goto(t.url);
    await logIn(page, t);
    await page.locator('#nav').waitFor();

    await page.click('#nav a[data-nav=reports]');
    await page.getByTestId('reports-table').waitFor();
    const rows = page.locator('[data-testid=reports-table] tbody tr');
    assert.equal(await rows.count(), 50);
    const more = page.getByTestId('reports-table-more');
    assert.match(await more.innerText(), /50 of 61/);
    await more.click();
    await page.waitForFunction(
      () => document.querySelectorAll('[data-testid=reports-table] tbody tr').length === 61,
    );
    assert.equal(await more.count(), 0, 'no more pages: the button is gone');
    const links = await page
      .locator('[data-testid=reports-table] tbody tr td:first-child a')
      .evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    assert.equal(new Set(links).size, 61, 'every report once');
    const giantRow = rows.filter({ hasText: 'Giant' });
    const giantText = await giantRow.innerText();
    assert.ok(giantText.length < 1500, `${giantText.length} characters in the row`);
    assert.ok(giantText.includes('…'), 'the clipped values are marked');
    await screenshot('legacy-12-reports-paged');

    // The giant report: too large to show, but it can be deleted.
    await page.goto(`${t.url}/#/reports/${giant}`);
    await page.getByTestId('report-too-large').waitFor();
    await screenshot('legacy-13-report-too-large');
    await page.getByRole('button', { name: 'Delete this report' }).click();
    await page.waitForFunction(() => document.querySelector('#flash.ok')?.textContent?.includes('deleted'));
    assert.equal(page.url(), `${t.url}/#/reports`);
    await page.getByTestId('reports-table-more').waitFor();
    assert.match(await page.getByTestId('reports-table-more').innerText(), /50 of 60/);
    assert.equal(await page.locator('[data-testid=reports-table] tbody tr', { hasText: 'Giant' }).count(), 0);
    assert.equal(browser.dialogs.length, 1);
    assert.ok(browser.dialogs[0]?.startsWith('Delete report'), browser.dialogs.join('\n'));
    assert.deepEqual(browser.errors, []);
  });
});
