// What serve answers while its database cannot be reached (src/server/store-unavailable.ts): a real
// SQLite store behind a switch that makes every call fail with StoreError STORE_UNAVAILABLE, as the
// PostgreSQL store does when its server is gone (the real outage, on a lab PostgreSQL stopped and
// started again: store-unavailable-postgres.test.ts). HTTP through app.inject, SMTP over loopback.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { POLICY_PATH } from '../../src/mtasts/url.js';
import { API_ROUTES } from '../../src/server/api/routes.js';
import { StoreUnavailable } from '../../src/server/api/schemas.js';
import { buildApp } from '../../src/server/app.js';
import { ensureAdminPassword } from '../../src/server/auth.js';
import type { ServerContext } from '../../src/server/context.js';
import { type MailIntake, startMailIntake } from '../../src/server/mail.js';
import { metricsText } from '../../src/server/metrics.js';
import { openApiDocument } from '../../src/server/openapi.js';
import { STORE_RETRY_AFTER_SECONDS } from '../../src/server/store-unavailable.js';
import { type Store, StoreError } from '../../src/store/types.js';
import {
  gzippedReport,
  reportEmail,
  sendMail,
  type TestContext,
  testContext,
} from '../fixtures/intake/helpers.js';
import { DOMAIN_SETTINGS } from '../fixtures/serve/helpers.js';

/** The driver's words, which must never reach a client (they name the database host). */
const DRIVER_MESSAGE = 'connect ECONNREFUSED 10.1.2.3:5432';

type StoreState = 'up' | 'down' | 'hung';

/**
 * `store` behind a switch: 'down' makes every async call reject with STORE_UNAVAILABLE, 'hung' makes
 * it never settle (a pool waiting for a connection). logFetch (batched, never throws) and close pass.
 */
function switchableStore(store: Store): { store: Store; state: StoreState } {
  const control = { state: 'up' as StoreState, store };
  control.store = new Proxy(store, {
    get(target, name) {
      const value = Reflect.get(target, name, target);
      if (typeof value !== 'function') return value;
      // Called on the store itself, so that its own inner calls (the fetch log's flush) pass too.
      if (name === 'close' || name === 'logFetch') return value.bind(target);
      return (...args: unknown[]) => {
        if (control.state === 'down')
          return Promise.reject(new StoreError('STORE_UNAVAILABLE', DRIVER_MESSAGE));
        if (control.state === 'hung') return new Promise(() => undefined);
        return value.apply(target, args);
      };
    },
  });
  return control;
}

function assertRetryLater(res: { statusCode: number; headers: Record<string, unknown>; body: string }) {
  assert.equal(res.statusCode, 503, res.body);
  assert.equal(res.headers['retry-after'], String(STORE_RETRY_AFTER_SECONDS));
  assert.ok(!res.body.includes('10.1.2.3'), `the driver's message leaked: ${res.body}`);
}

describe('serve over HTTP while the store cannot be reached', () => {
  let base: TestContext;
  let switched: ReturnType<typeof switchableStore>;
  let app: FastifyInstance;
  let auth: { authorization: string };
  let policyText: string;

  before(async () => {
    base = await testContext();
    switched = switchableStore(base.store);
    const ctx: ServerContext = { ...base, store: switched.store };
    policyText = (await base.store.addDomain('example.com', DOMAIN_SETTINGS, new Date())).policyText;
    const password = await ensureAdminPassword(ctx, undefined);
    assert.ok(password);
    auth = { authorization: `Bearer ${password}` };
    app = buildApp(ctx, { healthTimeoutMs: 100 });
    await app.ready();
  });
  after(async () => {
    switched.state = 'up';
    await app.close();
    await base.close();
  });

  const postReport = (body: Buffer) =>
    app.inject({
      method: 'POST',
      url: '/tlsrpt',
      headers: { 'content-type': 'application/tlsrpt+gzip' },
      payload: body,
    });

  it('/healthz names the store: ok while it answers, unavailable (503, Retry-After) while it is down', async () => {
    const up = await app.inject({ url: '/healthz' });
    assert.equal(up.statusCode, 200);
    assert.deepEqual(up.json(), { status: 'ok', store: 'ok', domains: 1 });

    switched.state = 'down';
    try {
      const down = await app.inject({ url: '/healthz' });
      assertRetryLater(down);
      assert.equal(down.json().status, 'error');
      assert.equal(down.json().store, 'unavailable');
    } finally {
      switched.state = 'up';
    }
    assert.equal((await app.inject({ url: '/healthz' })).json().store, 'ok');
  });

  it('/healthz says "slow" when the store does not answer in time, instead of hanging', async () => {
    switched.state = 'hung';
    try {
      const res = await app.inject({ url: '/healthz' });
      assert.equal(res.statusCode, 503);
      assert.equal(res.json().store, 'slow');
    } finally {
      switched.state = 'up';
    }
  });

  it('hosts policies from memory during the outage', async () => {
    switched.state = 'down';
    try {
      const res = await app.inject({ url: POLICY_PATH, headers: { host: 'mta-sts.example.com' } });
      assert.equal(res.statusCode, 200);
      assert.equal(res.body, policyText);
    } finally {
      switched.state = 'up';
    }
  });

  it('answers the API with 503 STORE_UNAVAILABLE (not 400 or 500), then normally again', async () => {
    switched.state = 'down';
    try {
      for (const request of [
        { url: '/api/domains', headers: auth },
        { url: '/api/reports', headers: auth },
        {
          method: 'POST' as const,
          url: '/api/domains',
          headers: { ...auth, 'content-type': 'application/json' },
          payload: { name: 'new.example', mx: ['mx.new.example'] },
        },
      ]) {
        const res = await app.inject(request);
        assertRetryLater(res);
        // The body is the one the OpenAPI document gives every operation for 503 (checked below).
        assert.deepEqual(StoreUnavailable.strict().parse(res.json()), res.json(), request.url);
        assert.equal(res.json().code, 'STORE_UNAVAILABLE', request.url);
      }
    } finally {
      switched.state = 'up';
    }
    const domains = await app.inject({ url: '/api/domains', headers: auth });
    assert.equal(domains.statusCode, 200, domains.body);
    assert.equal(await base.store.getDomain('new.example'), undefined);
  });

  it('the OpenAPI document lists that 503 for every operation', () => {
    const doc = openApiDocument(API_ROUTES) as {
      paths: Record<string, Record<string, { responses: Record<string, { description: string }> }>>;
    };
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => [`${method} ${path}`, op] as const),
    );
    assert.ok(operations.length > 10);
    for (const [name, op] of operations)
      assert.match(op.responses['503']?.description ?? '', /STORE_UNAVAILABLE/, name);
  });

  it('a scrape during the outage still answers, with mxguard_store_up 0 (metricsListen: no login)', async () => {
    const registry = base.metrics;
    assert.match(await metricsText(registry), /^mxguard_store_up 1$/m);
    switched.state = 'down';
    try {
      const text = await metricsText(registry);
      assert.match(text, /^mxguard_store_up 0$/m);
      assert.match(text, /^mxguard_policy_unknown_host_total /m);
    } finally {
      switched.state = 'up';
    }
  });

  it('answers /metrics (login through the store) with 503', async () => {
    switched.state = 'down';
    try {
      const res = await app.inject({ url: '/metrics', headers: auth });
      assertRetryLater(res);
      assert.equal(res.json().code, 'STORE_UNAVAILABLE');
    } finally {
      switched.state = 'up';
    }
  });

  it('refuses a report over HTTPS intake with 503 and keeps nothing of it; the retry stores it once', async () => {
    const body = gzippedReport({ 'report-id': 'outage-1' });
    switched.state = 'down';
    try {
      const res = await postReport(body);
      assertRetryLater(res);
      assert.equal(res.json().error.code, 'STORE_UNAVAILABLE');
    } finally {
      switched.state = 'up';
    }
    assert.equal((await base.store.listReports()).total, 0);
    assert.equal((await base.store.listRejected()).total, 0);

    const retry = await postReport(body);
    assert.equal(retry.statusCode, 201, retry.body);
    const again = await postReport(body);
    assert.equal(again.statusCode, 200, again.body);
    const reports = await base.store.listReports();
    assert.deepEqual(
      reports.items.map((r) => r.reportId),
      ['outage-1'],
    );
  });

  it('refuses bad content during the outage with 503 too: the refusal cannot be recorded', async () => {
    switched.state = 'down';
    try {
      const res = await postReport(Buffer.from('not a report at all'));
      assertRetryLater(res);
    } finally {
      switched.state = 'up';
    }
    assert.equal((await base.store.listRejected()).total, 0);
  });
});

describe('SMTP intake while the store cannot be reached', () => {
  let base: TestContext;
  let switched: ReturnType<typeof switchableStore>;
  let smtp: MailIntake;

  before(async () => {
    base = await testContext({
      intake: { acceptUnsigned: true },
      config: { smtp: { host: '127.0.0.1', port: 0 } },
    });
    switched = switchableStore(base.store);
    smtp = await startMailIntake({ ...base, store: switched.store });
  });
  after(async () => {
    await smtp.stop();
    await base.close();
  });

  it('answers 451 4.3.0 (the sender retries) and keeps nothing; the retry is stored once', async () => {
    const message = reportEmail({ reports: [gzippedReport({ 'report-id': 'mail-outage' })] });
    switched.state = 'down';
    try {
      const reply = await sendMail(smtp.port, message);
      assert.equal(reply.code, 451, reply.text);
      assert.match(reply.text, /4\.3\.0/);
      assert.ok(!reply.text.includes('10.1.2.3'), reply.text);
    } finally {
      switched.state = 'up';
    }
    assert.equal((await base.store.listReports()).total, 0);
    assert.equal((await base.store.listRejected()).total, 0);

    const retry = await sendMail(smtp.port, message);
    assert.equal(retry.code, 250, retry.text);
    await sendMail(smtp.port, message);
    assert.deepEqual(
      (await base.store.listReports()).items.map((r) => r.reportId),
      ['mail-outage'],
    );
  });
});
