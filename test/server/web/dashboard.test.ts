// The dashboard in real headless Chromium (Debian package `chromium`, driven by playwright-core):
// log in, add a domain, see and copy the records, import reports, see the chart and the failure
// tables, and a report full of HTML/script payloads shown as text with none of them running; the
// report list in pages, a report deleted, and the chart after it (a giant legacy report in the list
// and deleted: dashboard-legacy.test.ts, SQLite only).
// Screenshots go to $MXGUARD_SCREENSHOTS when set (kept, to be looked at), else to a temporary
// directory removed afterwards; the directory is printed as a test diagnostic.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { Page } from 'playwright-core';
import { DnsClient } from '../../../src/dns/client.js';
import { stsIdFromDate } from '../../../src/mtasts/record.js';
import {
  launchBrowser,
  logIn,
  openTestApp,
  payloadRan,
  reportJson,
  saveSampleReports,
  screenshots,
  type TestApp,
  type TestBrowser,
  XSS,
  xssReportSpec,
} from '../../helpers/browser.js';
import { type LabDnsServer, startDnsServer } from '../../lab/dns-server.js';

const START = new Date('2026-05-10T08:00:00Z');

describe('dashboard in Chromium', () => {
  let t: TestApp;
  let dns: LabDnsServer;
  let browser: TestBrowser;
  let page: Page;
  const shots = screenshots(() => page);
  const files = mkdtempSync(join(tmpdir(), 'mxguard-upload-'));
  const screenshot = shots.take;
  const xssRan = () => payloadRan(page);
  const text = (testid: string) => page.getByTestId(testid).innerText();

  before(async () => {
    // DNS publishes the id of the first policy: it matches until the policy changes.
    dns = await startDnsServer([
      {
        origin: 'example.com',
        records: [{ name: '_mta-sts.example.com', type: 'TXT', data: `v=STSv1; id=${stsIdFromDate(START)}` }],
      },
    ]);
    const resolver = new DnsClient({ servers: [{ host: dns.host, port: dns.port }], timeoutMs: 1000 });
    t = await openTestApp({ start: START, listen: true, resolver });
    browser = await launchBrowser();
    page = browser.page;
    await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: t.url });
  });
  after(async () => {
    await browser?.close();
    await t?.close();
    await dns?.stop();
    rmSync(files, { recursive: true, force: true });
    shots.remove();
  });

  test('log in', async (ctx) => {
    ctx.diagnostic(
      `screenshots: ${shots.dir}${shots.kept ? '' : ' (removed afterwards; set MXGUARD_SCREENSHOTS=DIR to keep them)'}`,
    );
    await page.goto(t.url);
    await page.getByTestId('login-form').waitFor();
    await screenshot('01-login');
    await page.fill('#password', 'not the password');
    await page.click('form[data-testid=login-form] button[type=submit]');
    await page.getByText('Wrong password.').waitFor();
    await logIn(page, t);
    await page.getByText('No domains yet: add one below.').waitFor();
    assert.equal(await page.locator('#nav').isVisible(), true);
    const cookies = await browser.context.cookies(t.url);
    const session = cookies.find((c) => c.name === 'mxguard_session');
    assert.ok(session);
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(
      await page.evaluate(() => document.cookie),
      '',
      'the session cookie is invisible to scripts',
    );
  });

  test('add a domain and see the TXT record to publish', async () => {
    await page.fill('#f-name', 'example.com');
    await page.selectOption('#f-mode', 'enforce');
    await page.fill('#f-mx', 'mx1.example.com\nmx2.example.com');
    await page.click('form[data-testid=add-domain-form] button[type=submit]');
    await page.getByTestId('publish-txt').waitFor();
    // This app runs no live check, so the pre-flight of enforce asks first (accepted here);
    // test/server/web/monitoring.test.ts shows it with problems found.
    assert.equal(browser.dialogs.length, 1);
    assert.match(browser.dialogs[0]!, /^Enforcing this policy now would make senders bounce mail:/);
    assert.match(browser.dialogs[0]!, /the live check could not run \(this server runs no live checks\)/);
    browser.dialogs.splice(0);
    const id = stsIdFromDate(START);
    assert.match(
      await text('publish-txt'),
      new RegExp(`_mta-sts\\.example\\.com\\.  TXT  "v=STSv1; id=${id}"`),
    );
    assert.equal(page.url(), `${t.url}/#/domains/example.com`);
    assert.match(await page.locator('h1').innerText(), /^example\.com$/);
    await page.getByText('✓ published in DNS').waitFor();
    await screenshot('02-domain-added');
  });

  test('the records to publish, in three forms, with a working copy button', async () => {
    const id = stsIdFromDate(START);
    const bind = await text('records-bind');
    assert.match(
      bind,
      new RegExp(`^_mta-sts\\.example\\.com\\.\\t3600\\tIN\\tTXT\\t"v=STSv1; id=${id}"$`, 'm'),
    );
    assert.match(
      bind,
      /^_smtp\._tls\.example\.com\.\t3600\tIN\tTXT\t"v=TLSRPTv1; rua=mailto:tlsrpt@example\.com"$/m,
    );
    await page
      .locator('[data-testid=records-bind]')
      .locator('xpath=..')
      .getByRole('button', { name: 'Copy' })
      .click();
    await page.getByRole('button', { name: 'Copied' }).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), bind);

    await page.getByRole('tab', { name: 'PowerShell' }).click();
    assert.match(
      await text('records-powershell'),
      /Add-DnsServerResourceRecord -ZoneName 'example.com' -Name '_mta-sts'/,
    );
    await page.getByRole('tab', { name: 'JSON' }).click();
    const json = JSON.parse(await text('records-json'));
    assert.equal(json.records[0].value, `v=STSv1; id=${id}`);
    await page.fill('#f-target', '192.0.2.10');
    await page.locator('#f-target').press('Enter');
    await page.waitForFunction(() =>
      document.querySelector('[data-testid=records-json]')?.textContent?.includes('192.0.2.10'),
    );
    await screenshot('03-records-json');
    await page.getByRole('tab', { name: 'BIND zone file' }).click();
  });

  test('import reports from files, including one full of HTML and script', async () => {
    writeFileSync(
      join(files, 'sender-a.json'),
      reportJson({
        organization: 'Mail Sender A',
        reportId: 'a-0508',
        domain: 'example.com',
        day: '2026-05-08',
        successful: 1200,
        failures: [
          {
            resultType: 'certificate-expired',
            count: 40,
            sendingMtaIp: '192.0.2.1',
            receivingMxHostname: 'mx1.example.com',
          },
          {
            resultType: 'starttls-not-supported',
            count: 12,
            sendingMtaIp: '192.0.2.2',
            receivingMxHostname: 'mx2.example.com',
          },
        ],
      }),
    );
    writeFileSync(
      join(files, 'sender-b.json.gz'),
      gzipSync(
        reportJson({
          organization: 'Mail Sender B',
          reportId: 'b-0509',
          domain: 'example.com',
          day: '2026-05-09',
          successful: 800,
          failures: [
            {
              resultType: 'certificate-expired',
              count: 25,
              sendingMtaIp: '198.51.100.9',
              receivingMxHostname: 'mx1.example.com',
            },
          ],
        }),
      ),
    );
    writeFileSync(join(files, 'evil.json'), reportJson(xssReportSpec('example.com', '2026-05-10')));
    writeFileSync(join(files, 'garbage.json'), '{"not": "a report"}');

    await page.click('#nav a[data-nav=reports]');
    await page.getByTestId('import-form').waitFor();
    for (const name of ['sender-a.json', 'sender-b.json.gz', 'evil.json']) {
      await page.setInputFiles('#f-file', join(files, name));
      await page.click('form[data-testid=import-form] button[type=submit]');
      await page.waitForFunction(
        (n) => document.querySelector('#flash')?.textContent?.includes(`Stored: report ${n}`),
        name === 'sender-a.json' ? 'a-0508' : name === 'sender-b.json.gz' ? 'b-0509' : XSS.reportId,
      );
    }
    await page.setInputFiles('#f-file', join(files, 'garbage.json'));
    await page.click('form[data-testid=import-form] button[type=submit]');
    await page.waitForFunction(() =>
      document.querySelector('#flash.error')?.textContent?.includes('not a TLS-RPT report'),
    );
    await page.waitForFunction(() =>
      document.querySelector('[data-testid=rejected-table]')?.textContent?.includes('garbage.json'),
    );

    const rows = await page.locator('[data-testid=reports-table] tbody tr').allInnerTexts();
    assert.equal(rows.length, 3);
    assert.ok(rows[0]!.startsWith(XSS.organization), rows[0]);
    assert.ok(rows[0]!.includes(XSS.reportId), rows[0]);
    assert.equal(await xssRan(), undefined, 'no payload ran');
    await screenshot('04-reports');
  });

  test('the hostile report is shown as text and nothing in it runs', async () => {
    await page.getByRole('link', { name: XSS.organization }).click();
    await page.getByTestId('report-facts').waitFor();
    const facts = await text('report-facts');
    assert.ok(facts.includes(XSS.organization), facts);
    assert.ok(facts.includes(XSS.reportId), facts);
    assert.ok(facts.includes(XSS.contactInfo), facts);
    const failures = await text('report-failures');
    for (const payload of [
      XSS.sendingMtaIp,
      XSS.mxHost,
      XSS.helo,
      XSS.failureReasonCode,
      XSS.additionalInformation,
    ]) {
      assert.ok(failures.includes(payload), `${payload} shown as text`);
    }
    const injected = await page.evaluate(() => ({
      scripts: document.querySelectorAll('script').length,
      elements: document.querySelectorAll(
        'main img, main iframe, main svg[onload], main [onerror], main [onload], main b, main a[href^="javascript"]',
      ).length,
    }));
    assert.deepEqual(
      injected,
      { scripts: 1, elements: 0 },
      'only the dashboard script; no element from a report',
    );
    // A barrier instead of a sleep: an image requested now fails after any image a report payload could
    // have requested earlier, so an onerror/onload handler, if one existed, has run by then.
    await page.evaluate(
      () =>
        new Promise<void>((resolve) => {
          const probe = new Image();
          probe.onerror = probe.onload = () => resolve();
          probe.src = '/xss-barrier-probe.png';
        }),
    );
    assert.equal(await xssRan(), undefined);
    assert.deepEqual(browser.dialogs, []);
    await screenshot('05-hostile-report');
  });

  test('the domain page: chart, failure tables, policy history, fetch log', async () => {
    t.ctx.store.logFetch({
      at: '2026-05-10T07:00:00.000Z',
      domain: 'example.com',
      clientIp: '203.0.113.5',
      userAgent: 'Google-SMTP-STS',
    });
    t.ctx.store.logFetch({
      at: '2026-05-10T07:30:00.000Z',
      domain: 'example.com',
      clientIp: '203.0.113.6',
      userAgent: '<img src=x onerror=alert(2)>',
    });
    await page.goto(`${t.url}/#/domains/example.com`);
    await page.getByTestId('sessions-chart').waitFor();
    const chart = page.getByTestId('sessions-chart');
    const bars = await chart.evaluate((fig) => ({
      ok: fig.querySelectorAll('g.day rect.bar-ok').length,
      fail: fig.querySelectorAll('g.day rect.bar-fail').length,
      days: fig.querySelectorAll('g.day').length,
      titles: [...fig.querySelectorAll('g.day > title')].map((x) => x.textContent),
    }));
    assert.equal(bars.days, 30);
    assert.equal(bars.ok, 3);
    assert.equal(bars.fail, 3);
    assert.ok(
      bars.titles.includes('2026-05-08: 1,200 successful, 52 failed (4.2% failed)'),
      bars.titles.join('\n'),
    );
    assert.match(await chart.locator('figcaption').innerText(), /2,007 successful, 80 failed/);

    assert.match(await text('failures-resultType'), /certificate-expired\s+68/);
    const orgs = await text('failures-organization');
    assert.ok(orgs.includes('Mail Sender A') && orgs.includes(XSS.organization), orgs);
    assert.match(await text('failures-mx'), /mx1\.example\.com\s+65/);
    assert.ok((await text('failures-ip')).includes(XSS.sendingMtaIp));

    const clients = await text('fetch-clients');
    assert.match(clients, /Google\s+1/);
    assert.match(clients, /other\s+1/);
    assert.equal(await xssRan(), undefined);
    assert.deepEqual(browser.dialogs, []);
    await page.mouse.move(0, 0);
    await screenshot('06-domain-page');

    // Change the policy: a new id and the TXT value to publish.
    await page.getByText('Change the policy').click();
    await page.selectOption('form[data-testid=edit-domain-form] #f-mode', 'testing');
    t.clock.advance(3600);
    await page.click('form[data-testid=edit-domain-form] button[type=submit]');
    const newId = stsIdFromDate(t.clock.now);
    await page.waitForFunction(
      (id) => document.querySelector('[data-testid=publish-txt]')?.textContent?.includes(id),
      newId,
    );
    const history = await page.locator('[data-testid=policy-history] tbody tr').count();
    assert.equal(history, 2);
    await screenshot('07-policy-changed');
  });

  test('the overview lists the domain with its status', async () => {
    await page.click('#nav a[data-nav=domains]');
    await page.getByTestId('domains-table').waitFor();
    const row = await page.locator('[data-testid=domains-table] tbody tr').innerText();
    const cells = row.split('\t').map((c) => c.trim());
    assert.deepEqual(cells, [
      'example.com',
      'testing',
      stsIdFromDate(t.clock.now),
      `DNS has ${stsIdFromDate(START)}`,
      '2,007',
      '80',
      '3.8%',
    ]);
    await screenshot('08-overview');
    await page.getByRole('link', { name: 'example.com' }).click();
    await page.getByTestId('published-warning').waitFor();
    const warning = await text('published-warning');
    assert.ok(warning.includes(`still has id ${stsIdFromDate(START)}`), warning);
    assert.ok(
      warning.includes(`_mta-sts.example.com.  TXT  "v=STSv1; id=${stsIdFromDate(t.clock.now)}"`),
      warning,
    );
    await screenshot('09-published-id-differs');
  });

  test('settings: create an API token that works for scripts', async () => {
    await page.click('#nav a[data-nav=settings]');
    await page.fill('#f-token', 'ci <script>window.__mxguardXss="token"</script>');
    await page.getByRole('button', { name: 'Create token' }).click();
    await page.waitForFunction(() => document.querySelector('#flash.ok')?.textContent?.includes('mxg_'));
    const token = /mxg_[A-Za-z0-9_-]{43}/.exec((await page.locator('#flash').innerText()) ?? '')?.[0];
    assert.ok(token);
    const res = await fetch(`${t.url}/api/session`, { headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual(await res.json(), { authenticated: true, via: 'token' });
    assert.ok((await page.locator('main table').innerText()).includes('ci <script>'));
    assert.equal(await xssRan(), undefined);
    await screenshot('10-settings');
  });

  test('the reports list pages; a normal report is deleted; the chart follows', async () => {
    await saveSampleReports(t, 60, 'paging.example');
    await page.click('#nav a[data-nav=reports]');
    await page.getByTestId('reports-table').waitFor();
    const rows = page.locator('[data-testid=reports-table] tbody tr');
    assert.equal(await rows.count(), 50);
    const more = page.getByTestId('reports-table-more');
    assert.match(await more.innerText(), /50 of 63/);
    await more.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(shots.dir, '11-reports-show-more.png') });
    await more.click();
    await page.waitForFunction(
      () => document.querySelectorAll('[data-testid=reports-table] tbody tr').length === 63,
    );
    assert.equal(await more.count(), 0, 'no more pages: the button is gone');
    const links = await page
      .locator('[data-testid=reports-table] tbody tr td:first-child a')
      .evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    assert.equal(new Set(links).size, 63, 'every report once');
    await screenshot('12-reports-paged');

    // A normal report: its sessions leave the domain's chart.
    await page.getByRole('link', { name: 'Mail Sender B' }).click();
    await page.getByTestId('report-facts').waitFor();
    await page.getByRole('button', { name: 'Delete this report' }).click();
    await page.waitForFunction(() => document.querySelector('#flash.ok')?.textContent?.includes('deleted'));
    assert.equal(page.url(), `${t.url}/#/reports`);
    assert.equal(await page.getByRole('link', { name: 'Mail Sender B' }).count(), 0);
    assert.equal(browser.dialogs.length, 1);
    assert.ok(
      browser.dialogs.every((d) => d.startsWith('Delete report')),
      browser.dialogs.join('\n'),
    );

    await page.goto(`${t.url}/#/domains/example.com`);
    const chart = page.getByTestId('sessions-chart');
    await chart.waitFor();
    const titles = await chart.evaluate((fig) =>
      [...fig.querySelectorAll('g.day > title')].map((x) => x.textContent),
    );
    assert.ok(!titles.some((x) => x?.startsWith('2026-05-09: 800 successful')), titles.join('\n'));
    assert.match(await chart.locator('figcaption').innerText(), /1,207 successful, 55 failed/);
    assert.equal(await xssRan(), undefined);
    await screenshot('14-after-delete');
  });

  test('no page errors, log out', async () => {
    assert.deepEqual(browser.errors, []);
    await page.click('#logout');
    await page.getByTestId('login-form').waitFor();
    assert.equal(await page.locator('#nav').isVisible(), false);
    const res = await page.evaluate(async () => (await fetch('/api/domains')).status);
    assert.equal(res, 401);
  });
});
