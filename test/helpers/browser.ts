// Helpers for the dashboard tests (API and browser): the app under test on a real store (SQLite, or
// PostgreSQL under MXGUARD_TEST_STORE=postgres: test/helpers/test-store.ts) with a settable clock,
// and headless Chromium (Debian package `chromium`) driven by playwright-core.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { Registry } from 'prom-client';
import { DnsClient } from '../../src/dns/client.js';
import type { Resolver } from '../../src/dns/resolver.js';
import { buildApp } from '../../src/server/app.js';
import { ensureAdminPassword } from '../../src/server/auth.js';
import type { ServeConfig, ServerContext } from '../../src/server/context.js';
import { openTestStore } from './test-store.js';

export const CHROMIUM = '/usr/bin/chromium';

/** A clock the test moves by hand. */
export interface TestClock {
  now: Date;
  advance(seconds: number): void;
}

export interface TestApp {
  app: FastifyInstance;
  ctx: ServerContext;
  clock: TestClock;
  /** The admin password (generated on first run, as serve does). */
  password: string;
  dataDir: string;
  /** Base URL when started with listen: true. */
  url: string;
  close(): Promise<void>;
}

export function testConfig(dataDir: string): ServeConfig {
  return {
    dataDir,
    listen: { host: '127.0.0.1', port: 0 },
    intake: {
      maxBytes: 1024 * 1024,
      maxDecompressedBytes: 8 * 1024 * 1024,
      ratePerMinute: 60,
      acceptUnsigned: false,
    },
  };
}

/**
 * The whole serve app (buildApp: policy hosting, intake, API, dashboard) on a fresh data directory.
 * `start` is the clock's time (default: now); `listen` starts a real loopback listener (for the
 * browser), otherwise use app.inject; `resolver` answers the live `_mta-sts` lookups.
 */
export async function openTestApp(
  options: { start?: Date; listen?: boolean; resolver?: Resolver } = {},
): Promise<TestApp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'mxguard-dash-'));
  const store = await openTestStore(dataDir);
  const clock: TestClock = {
    now: options.start ?? new Date(),
    advance(seconds) {
      this.now = new Date(this.now.getTime() + seconds * 1000);
    },
  };
  const ctx: ServerContext = {
    store,
    config: testConfig(dataDir),
    logger: pino({ level: 'silent' }),
    metrics: new Registry(),
    // Without a lab DNS server: a resolver that can only reach a closed port (lookups fail fast).
    resolver:
      options.resolver ??
      new DnsClient({ servers: [{ host: '127.0.0.1', port: 9 }], timeoutMs: 200, tries: 1 }),
    network: { ca: [], allowPrivate: true, timeoutMs: 1000 },
    now: () => clock.now,
  };
  const password = await ensureAdminPassword(ctx, undefined);
  if (password === undefined) throw new Error('a fresh store must get a generated admin password');
  const app = buildApp(ctx);
  await app.ready();
  let url = '';
  if (options.listen) url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    app,
    ctx,
    clock,
    password,
    dataDir,
    url,
    async close() {
      await app.close();
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface TestBrowser {
  context: BrowserContext;
  page: Page;
  /** Dialogs (alert/confirm/prompt) the page opened, by message; confirm() is accepted. */
  dialogs: string[];
  /** Uncaught page errors and console errors. */
  errors: string[];
  close(): Promise<void>;
}

/** Headless Chromium with a fresh profile; fails naming the Debian package when it is missing. */
export async function launchBrowser(): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install the Debian package "chromium" (see .ci/run)`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'mxguard-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const dialogs: string[] = [];
  const errors: string[] = [];
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void (dialog.type() === 'confirm' ? dialog.accept() : dialog.dismiss());
  });
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (msg) => {
    // 4xx answers the dashboard expects (401 before login, 400 for a bad import) are logged by
    // Chromium as "Failed to load resource"; anything else (a CSP violation, an exception) counts.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) errors.push(msg.text());
  });
  return {
    context,
    page,
    dialogs,
    errors,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Fill in and send the dashboard's login form as the admin of `t` (the caller waits for what follows). */
export async function logIn(page: Page, t: TestApp): Promise<void> {
  await page.fill('#password', t.password);
  await page.click('form[data-testid=login-form] button[type=submit]');
}

/** What a hostile report's payload set in the page if it ran (window.__mxguardXss), or undefined. */
export function payloadRan(page: Page): Promise<unknown> {
  return page.evaluate(() => (window as unknown as { __mxguardXss?: unknown }).__mxguardXss);
}

/**
 * A dashboard test's screenshots: into MXGUARD_SCREENSHOTS (kept) or a temporary folder that `remove`
 * deletes; `take` moves the mouse away first (no hover highlight in the picture).
 */
export function screenshots(page: () => Page) {
  const keep = process.env.MXGUARD_SCREENSHOTS;
  const dir = keep ?? mkdtempSync(join(tmpdir(), 'mxguard-screens-'));
  mkdirSync(dir, { recursive: true });
  return {
    dir,
    kept: keep !== undefined,
    async take(name: string): Promise<void> {
      await page().mouse.move(0, 0);
      await page().screenshot({ path: join(dir, `${name}.png`), fullPage: true });
    },
    remove(): void {
      if (keep === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- TLS-RPT reports for the tests (RFC 8460 §4.4 wire format, made-up values) ----

export interface FailureSpec {
  resultType: string;
  count: number;
  sendingMtaIp?: string;
  receivingMxHostname?: string;
  receivingMxHelo?: string;
  receivingIp?: string;
  failureReasonCode?: string;
  additionalInformation?: string;
}

export interface ReportSpec {
  organization: string;
  reportId: string;
  domain: string;
  /** UTC day the report's date range starts (YYYY-MM-DD). */
  day: string;
  successful: number;
  failures?: FailureSpec[];
  mxHost?: string;
  contactInfo?: string;
  policyStrings?: string[];
}

/** The report as JSON text, as a sender would post it. */
export function reportJson(spec: ReportSpec): string {
  const failures = spec.failures ?? [];
  return JSON.stringify({
    'organization-name': spec.organization,
    'date-range': { 'start-datetime': `${spec.day}T00:00:00Z`, 'end-datetime': `${spec.day}T23:59:59Z` },
    'contact-info': spec.contactInfo ?? 'tlsrpt@sender.example',
    'report-id': spec.reportId,
    policies: [
      {
        policy: {
          'policy-type': 'sts',
          'policy-string': spec.policyStrings ?? [
            'version: STSv1',
            'mode: testing',
            `mx: mx.${spec.domain}`,
            'max_age: 604800',
          ],
          'policy-domain': spec.domain,
          'mx-host': [spec.mxHost ?? `mx.${spec.domain}`],
        },
        summary: {
          'total-successful-session-count': spec.successful,
          'total-failure-session-count': failures.reduce((n, f) => n + f.count, 0),
        },
        'failure-details': failures.map((f) => ({
          'result-type': f.resultType,
          'failed-session-count': f.count,
          ...(f.sendingMtaIp !== undefined ? { 'sending-mta-ip': f.sendingMtaIp } : {}),
          ...(f.receivingMxHostname !== undefined ? { 'receiving-mx-hostname': f.receivingMxHostname } : {}),
          ...(f.receivingMxHelo !== undefined ? { 'receiving-mx-helo': f.receivingMxHelo } : {}),
          ...(f.receivingIp !== undefined ? { 'receiving-ip': f.receivingIp } : {}),
          ...(f.failureReasonCode !== undefined ? { 'failure-reason-code': f.failureReasonCode } : {}),
          ...(f.additionalInformation !== undefined
            ? { 'additional-information': f.additionalInformation }
            : {}),
        })),
      },
    ],
  });
}

/**
 * HTML/script payloads for the escaping tests. Each one, if it ever ran, would set
 * window.__mxguardXss (and the last one would open an alert dialog).
 */
export const XSS = {
  organization: '<script>window.__mxguardXss = "organization"</script>Evil Org',
  reportId: '<img src=x onerror="window.__mxguardXss = \'report-id\'">',
  mxHost: '"><svg onload="window.__mxguardXss = \'mx-host\'">',
  failureReasonCode: '<iframe srcdoc="<script>parent.__mxguardXss=1</script>"></iframe>',
  additionalInformation: '<a href="javascript:window.__mxguardXss=\'info\'">click</a>',
  sendingMtaIp: '<img src=x onerror=alert(1)>',
  helo: '</td></tr></table><script>window.__mxguardXss = "helo"</script>',
  contactInfo: '<b onmouseover="window.__mxguardXss=1">contact</b>',
};

/** A report whose every free-text field carries one of the XSS payloads. */
export function xssReportSpec(domain: string, day: string): ReportSpec {
  return {
    organization: XSS.organization,
    reportId: XSS.reportId,
    domain,
    day,
    successful: 7,
    contactInfo: XSS.contactInfo,
    policyStrings: ['version: STSv1', `mx: ${XSS.mxHost}`],
    failures: [
      {
        resultType: 'certificate-expired',
        count: 3,
        sendingMtaIp: XSS.sendingMtaIp,
        receivingMxHostname: XSS.mxHost,
        receivingMxHelo: XSS.helo,
        receivingIp: '198.51.100.7',
        failureReasonCode: XSS.failureReasonCode,
        additionalInformation: XSS.additionalInformation,
      },
    ],
  };
}

/** Every page of an API list endpoint of `t` (`key` names its items), following nextCursor; the byte size of each answer. */
export async function everyPage(
  t: TestApp,
  headers: Record<string, string>,
  path: string,
  key: string,
  limit: number,
): Promise<{ items: Array<{ id: number }>; sizes: number[]; total: number }> {
  const items: Array<{ id: number }> = [];
  const sizes: number[] = [];
  let cursor: string | null = null;
  for (let n = 0; n < 10_000; n++) {
    const sep = path.includes('?') ? '&' : '?';
    const url: string = `${path}${sep}limit=${limit}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
    const res = await t.app.inject({ url, headers });
    if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode} ${res.body.slice(0, 300)}`);
    sizes.push(res.rawPayload.length);
    const body = res.json();
    items.push(...body[key]);
    cursor = body.nextCursor;
    if (cursor === null) return { items, sizes, total: body.total as number };
  }
  throw new Error(`${path}: the pages never end`);
}

/** Stores `count` small reports for `domain` through the store (one session each, days 1-9 of May 2026). */
export async function saveSampleReports(t: TestApp, count: number, domain: string): Promise<void> {
  for (let i = 0; i < count; i++) {
    const day = `2026-05-0${1 + (i % 9)}`;
    await t.ctx.store.saveReport(
      {
        report: {
          organization: `Paging Sender ${i}`,
          reportId: `paging-${i}`,
          start: `${day}T00:00:00Z`,
          end: `${day}T23:59:59Z`,
          policies: [
            { type: 'sts', domain, policyStrings: [], mxHosts: [], successful: 1, failed: 0, failures: [] },
          ],
        },
        source: 'https',
        dkim: 'none',
        warnings: [],
      },
      t.clock.now,
    );
  }
}

/** The admin API calls of the report tests, on the app that `current()` returns (opened in a before hook). */
export function adminApi(current: () => TestApp) {
  const auth = () => ({ authorization: `Bearer ${current().password}` });
  return {
    get: (url: string) => current().app.inject({ url, headers: auth() }),
    del: (url: string, headers: Record<string, string> = auth()) =>
      current().app.inject({ method: 'DELETE', url, headers }),
    importJson: (json: string) =>
      current().app.inject({
        method: 'POST',
        url: '/api/reports/import',
        headers: { ...auth(), 'content-type': 'application/tlsrpt+json' },
        payload: json,
      }),
    pages: (path: string, key: string, limit: number) => everyPage(current(), auth(), path, key, limit),
    /** Adds each domain (MX `mx.<name>`) through POST /api/domains. */
    async addDomains(names: readonly string[]): Promise<void> {
      for (const name of names) {
        const add = await current().app.inject({
          method: 'POST',
          url: '/api/domains',
          headers: auth(),
          payload: { name, mx: [`mx.${name}`] },
        });
        if (add.statusCode !== 201)
          throw new Error(`POST /api/domains ${name}: ${add.statusCode} ${add.body}`);
      }
    },
  };
}

/** A one-policy report of organization "Sender" without failures. */
export const sampleReport = (reportId: string, day: string, domain = 'example.com', successful = 10) =>
  reportJson({ organization: 'Sender', reportId, domain, day, successful, failures: [] });
