// The dashboard's error messages and record notes, in real headless Chromium: a field is named by
// the label the user sees in the form ("MX hosts", "mta-sts.example.com points to"), never by the
// API parameter (`mx`, `policyHostTarget`) or a command-line option (`--policy-host-target`).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { launchBrowser, logIn, openTestApp, type TestApp, type TestBrowser } from '../../helpers/browser.js';

describe('dashboard forms: messages name the form fields', () => {
  let t: TestApp;
  let browser: TestBrowser;
  let page: Page;
  /** The text of the error banner once it shows; then dismissed, for the next test. */
  const errorShown = async () => {
    await page.locator('#flash.error').waitFor();
    const message = await page.locator('#flash.error span').innerText();
    await page.click('#flash button');
    await page.locator('#flash').waitFor({ state: 'hidden' });
    return message;
  };

  before(async () => {
    t = await openTestApp({ start: new Date('2026-05-10T08:00:00Z'), listen: true });
    browser = await launchBrowser();
    page = browser.page;
    await page.goto(t.url);
    await logIn(page, t);
    await page.getByText('No domains yet: add one below.').waitFor();
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  test('a bad MX host names the "MX hosts" field', async () => {
    await page.fill('#f-name', 'example.com');
    await page.fill('#f-mx', 'mx_bad.example.com');
    await page.click('form[data-testid=add-domain-form] button[type=submit]');
    const message = await errorShown();
    assert.match(message, /^“MX hosts \(one per line\)”: /);
    assert.match(message, /mx_bad\.example\.com/);
  });

  test('the records notes name the "points to" field, not policyHostTarget or --policy-host-target', async () => {
    await page.fill('#f-mx', 'mx.example.com');
    await page.click('form[data-testid=add-domain-form] button[type=submit]');
    await page.getByTestId('publish-txt').waitFor();
    const notes = await page.locator('ul.notes').innerText();
    assert.match(
      notes,
      /mta-sts\.example\.com needs an A\/AAAA or CNAME record .*\(“mta-sts\.example\.com points to”\)/,
    );
    assert.doesNotMatch(notes, /policyHostTarget|--policy-host-target/);
  });

  test('a bad "points to" value is named by that field', async () => {
    await page.fill('#f-target', 'bad_host..');
    await page.click('#f-target ~ button[type=submit]');
    const message = await errorShown();
    assert.match(message, /^“mta-sts\.example\.com points to” bad_host\.\.: /);
    assert.doesNotMatch(message, /policyHostTarget|--/);
  });

  test('a bad MX host in the policy edit form names its field too', async () => {
    await page.locator('summary', { hasText: 'Change the policy' }).click();
    await page.fill('form[data-testid=edit-domain-form] textarea[name=mx]', '*.*.example.com');
    await page.click('form[data-testid=edit-domain-form] button[type=submit]');
    assert.match(await errorShown(), /^“MX hosts \(one per line\)”: /);
    assert.deepEqual(browser.errors, []);
  });
});
