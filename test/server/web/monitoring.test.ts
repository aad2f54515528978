// The monitoring part of the dashboard in real headless Chromium: a fresh start says on the front page
// that it cannot receive anything yet and why; an alert opened by a check is on the front page and the
// domain page with its fix; the history of checks shows what changed between two runs; "Check now"
// runs the monitor and the alert resolves; enforcing with MX hosts that would bounce asks first.
// The monitor is the engine's (src/monitor/monitor.ts) on the real store; only its audit is handed in
// (the MonitorDeps `check` seam), with the findings a certificate renewal without a TLSA update gives.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { DomainCheck } from '../../../src/check/run.js';
import type { Finding } from '../../../src/check/types.js';
import { DnsClient } from '../../../src/dns/client.js';
import { Monitor } from '../../../src/monitor/monitor.js';
import { DEFAULT_MONITOR_SETTINGS } from '../../../src/monitor/settings.js';
import { launchBrowser, logIn, openTestApp, type TestApp, type TestBrowser } from '../../helpers/browser.js';
import { type LabDnsServer, startDnsServer } from '../../lab/dns-server.js';

const START = new Date('2026-05-10T08:00:00Z');
const NEW_TLSA =
  '_25._tcp.mx.example.com. IN TLSA 3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6';

const mxRecords: Finding = {
  section: 'mx',
  status: 'pass',
  code: 'MX_RECORDS',
  message: '2 MX record(s): 10 mx.example.com, 20 mx2.example.com',
};
const mx2: Finding = {
  section: 'tls',
  status: 'pass',
  code: 'TLS_STARTTLS',
  message: 'STARTTLS offered',
  host: 'mx2.example.com',
};
const tlsaMatch: Finding = {
  section: 'dane',
  status: 'pass',
  code: 'DANE_TLSA_MATCH',
  message: '192.0.2.1: the certificate matches 3 1 1',
  host: 'mx.example.com',
};
const tlsaMismatch: Finding = {
  section: 'dane',
  status: 'fail',
  code: 'DANE_TLSA_MISMATCH',
  message: '192.0.2.1: no TLSA record matches the certificate presented (renewed?)',
  host: 'mx.example.com',
  fix: NEW_TLSA,
};

describe('monitoring in the dashboard (Chromium)', () => {
  let t: TestApp;
  let dns: LabDnsServer;
  let browser: TestBrowser;
  let page: Page;
  /** What the next audit finds. */
  let findings: Finding[] = [mxRecords, mx2, tlsaMatch];
  let monitor: Monitor;
  const text = (testid: string) => page.getByTestId(testid).innerText();

  before(async () => {
    // The monitor asks the resolver whether it validates before each audit: a lab DNS server answers.
    dns = await startDnsServer([{ origin: 'example.com', records: [] }]);
    const resolver = new DnsClient({ servers: [{ host: dns.host, port: dns.port }], timeoutMs: 1000 });
    t = await openTestApp({ start: START, listen: true, resolver });
    monitor = new Monitor({
      store: t.ctx.store,
      // A webhook nobody delivers here (no deliverer runs): its delivery stays pending on the page.
      settings: { ...DEFAULT_MONITOR_SETTINGS, webhooks: [{ url: 'http://127.0.0.1:9/hook' }] },
      network: { resolver, ca: [], allowPrivate: true, timeoutMs: 1000 },
      now: () => t.clock.now,
      check: async (domain): Promise<DomainCheck> => ({
        domain,
        status: findings.some((f) => f.status === 'fail') ? 'fail' : 'pass',
        findings,
      }),
    });
    t.ctx.monitor = {
      checkNow: (domain) => monitor.check(domain, 'manual'),
      liveCheck: (domain) => monitor.liveCheck(domain),
    };
    browser = await launchBrowser();
    page = browser.page;
  });
  after(async () => {
    await browser?.close();
    await t?.close();
    await dns?.stop();
  });

  test('a fresh start says on the front page that it cannot receive anything yet, and why', async () => {
    await page.goto(t.url);
    await logIn(page, t);
    await page.getByTestId('setup-status').waitFor();
    const setup = await text('setup-status');
    assert.match(setup, /mxguard cannot receive anything yet: no domain is configured; no HTTPS listener/);
    assert.match(setup, /Fix: start serve with --tls-listen 0\.0\.0\.0:443/);
    assert.match(await text('setup-status'), /Fix: add a domain below/);
    assert.match(await page.getByRole('heading', { name: /Open alerts/ }).innerText(), /Open alerts \(0\)/);
  });

  test('an alert opened by a check is on the front page with its fix', async () => {
    await t.ctx.store.addDomain(
      'example.com',
      { mode: 'testing', mx: ['mx.example.com'], maxAge: 604800, rua: ['mailto:tlsrpt@example.com'] },
      START,
    );
    await monitor.check('example.com', 'schedule');
    t.clock.advance(3600);
    findings = [mxRecords, mx2, tlsaMismatch];
    await monitor.check('example.com', 'schedule');
    await page.reload();
    await page.getByTestId('open-alerts').waitFor();
    const alerts = await text('open-alerts');
    assert.match(alerts, /example\.com\s+fail DANE_TLSA_MISMATCH\s+mx\.example\.com/);
    assert.ok(alerts.includes(NEW_TLSA), 'the fix: the new 3 1 1 record');
    assert.doesNotMatch(await text('setup-status'), /no domain is configured/);
    assert.match(
      await text('deliveries'),
      /alert\.opened example\.com DANE_TLSA_MISMATCH\s+webhook\s+http:\/\/127\.0\.0\.1:9\/hook\s+pending\s+0/,
    );
  });

  test('the history of checks shows what changed between two runs', async () => {
    await page.getByRole('link', { name: 'example.com' }).first().click();
    await page.getByTestId('check-history').waitFor();
    const rows = page.getByTestId('check-history').locator('tbody tr');
    assert.equal(await rows.count(), 2);
    assert.match(await rows.nth(0).innerText(), /schedule\s+fail\s+2\s+0\s+1/);
    assert.match(await text('open-alerts'), /DANE_TLSA_MISMATCH/);
    await rows.nth(0).getByRole('button', { name: 'What changed' }).click();
    await page
      .getByTestId('check-diff')
      .getByRole('heading', { name: /What changed/ })
      .waitFor();
    const diff = await text('check-diff');
    assert.match(
      diff,
      /New\s+FAIL DANE_TLSA_MISMATCH \(mx\.example\.com\): 192\.0\.2\.1: no TLSA record matches/,
    );
    assert.match(diff, /Gone\s+PASS DANE_TLSA_MATCH \(mx\.example\.com\)/);
  });

  test('"Check now" runs the monitor: the run is stored and the fixed alert resolves', async () => {
    findings = [mxRecords, mx2, tlsaMatch];
    t.clock.advance(3600);
    await page.getByTestId('check-now').click();
    await page.waitForFunction(() =>
      document.querySelector('#flash.ok')?.textContent?.includes('Checked example.com: pass'),
    );
    const rows = page.getByTestId('check-history').locator('tbody tr');
    assert.equal(await rows.count(), 3);
    assert.match(await rows.nth(0).innerText(), /manual\s+pass/);
    assert.match(await page.getByRole('heading', { name: /Open alerts/ }).innerText(), /Open alerts \(0\)/);
    const [resolved] = (await t.ctx.store.listAlerts({ state: 'resolved' })).items;
    assert.equal(resolved?.code, 'DANE_TLSA_MISMATCH');
    // Any two runs: the first against the one just made.
    await page.getByTestId('diff-older').selectOption({ index: 2 });
    await page.getByRole('button', { name: 'Compare' }).click();
    await page.getByTestId('check-diff').getByText('Nothing: the same').waitFor();
    await page.getByTestId('diff-older').selectOption({ index: 1 });
    await page.getByRole('button', { name: 'Compare' }).click();
    await page
      .getByTestId('check-diff')
      .getByText(/^PASS DANE_TLSA_MATCH/)
      .waitFor();
    const diff = await text('check-diff');
    assert.match(diff, /New\s+PASS DANE_TLSA_MATCH \(mx\.example\.com\)/);
    assert.match(diff, /Gone\s+FAIL DANE_TLSA_MISMATCH \(mx\.example\.com\)/);
  });

  test('a watch-only domain is added from the form and shown without a policy', async () => {
    await page.goto(`${t.url}/#/`);
    await page.fill('#f-name', 'watched.example');
    await page.check('#f-watch');
    await page.click('form[data-testid=add-domain-form] button[type=submit]');
    await page.getByText('Watched only: its policy is hosted elsewhere').waitFor();
    assert.equal(page.url(), `${t.url}/#/domains/watched.example`);
    assert.equal(await page.locator('.page-title .badge').innerText(), 'watch-only');
    assert.equal(await page.getByRole('heading', { name: 'DNS records to publish' }).count(), 0);
    assert.equal((await t.ctx.store.getDomain('watched.example'))?.watchOnly, true);
    await page.goto(`${t.url}/#/domains/example.com`);
    await page.getByTestId('check-history').waitFor();
  });

  test('enforcing with an MX host the policy does not cover asks first, naming it and the fix', async () => {
    await page.locator('summary', { hasText: 'Change the policy' }).click();
    await page.selectOption('#f-mode', 'enforce');
    browser.dialogs.splice(0);
    await page.click('form[data-testid=edit-domain-form] button[type=submit]');
    await page.getByTestId('publish-txt').waitFor();
    assert.equal(browser.dialogs.length, 1);
    assert.match(
      browser.dialogs[0]!,
      /mx2\.example\.com is an MX host of example\.com in DNS, but no mx pattern/,
    );
    assert.match(browser.dialogs[0]!, /Fix: add it to the policy: --mx mx2\.example\.com/);
    assert.equal((await t.ctx.store.getDomain('example.com'))?.mode, 'enforce', 'accepted: enforced anyway');
    assert.deepEqual(browser.errors, []);
  });
});
