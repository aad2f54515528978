// /metrics of `mxguard serve` (src/server/app.ts, src/server/metrics.ts): behind the admin login on the
// main listeners, unauthenticated only on its own listener (metricsListen), and without a label per
// hosted domain unless metrics.domainLabels asks for it (the metrics would otherwise list the domains).
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { POLICY_PATH } from '../../src/mtasts/url.js';
import {
  buildApp,
  type Listeners,
  type RunningListener,
  startListeners,
  startMetricsListener,
} from '../../src/server/app.js';
import { ensureAdminPassword, SESSION_COOKIE } from '../../src/server/auth.js';
import { createRegistry, serverMetrics } from '../../src/server/metrics.js';
import { DOMAIN_SETTINGS, type TestContext, testContext } from '../fixtures/serve/helpers.js';

const PASSWORD = 'metrics-test-password';

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers, agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('/metrics on the main listener', () => {
  let ctx: TestContext;
  let app: FastifyInstance;

  before(async () => {
    ctx = await testContext();
    await ensureAdminPassword(ctx, PASSWORD);
    await ctx.store.addDomain('example.test', DOMAIN_SETTINGS, new Date());
    app = buildApp(ctx);
    await app.ready();
    await app.inject({
      url: POLICY_PATH,
      headers: { host: 'mta-sts.example.test', 'user-agent': 'Google-SMTP-STS' },
    });
  });
  after(async () => {
    await app.close();
    await ctx.close();
  });

  it('refuses a scrape without credentials with 401', async () => {
    const res = await app.inject({ url: '/metrics' });
    assert.equal(res.statusCode, 401);
    assert.equal(res.headers['www-authenticate'], 'Bearer realm="mxguard"');
    assert.doesNotMatch(res.body, /mxguard_policy_fetches_total|example\.test/);
  });

  it('refuses a wrong bearer token with 401', async () => {
    const res = await app.inject({ url: '/metrics', headers: { authorization: 'Bearer not-the-password' } });
    assert.equal(res.statusCode, 401);
  });

  it('answers with the admin password, an API token or a session', async () => {
    const byPassword = await app.inject({
      url: '/metrics',
      headers: { authorization: `Bearer ${PASSWORD}` },
    });
    assert.equal(byPassword.statusCode, 200);
    assert.match(byPassword.headers['content-type'] as string, /^text\/plain/);
    assert.match(byPassword.body, /mxguard_policy_fetches_total\{client="Google"\} 1\b/);

    const created = await app.inject({
      method: 'POST',
      url: '/api/tokens',
      headers: { authorization: `Bearer ${PASSWORD}`, 'content-type': 'application/json' },
      payload: { name: 'prometheus' },
    });
    assert.equal(created.statusCode, 201, created.body);
    const byToken = await app.inject({
      url: '/metrics',
      headers: { authorization: `Bearer ${created.json().token}` },
    });
    assert.equal(byToken.statusCode, 200);

    const login = await app.inject({
      method: 'POST',
      url: '/api/login',
      headers: { 'content-type': 'application/json' },
      payload: { password: PASSWORD },
    });
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    assert.match(cookie, new RegExp(`^${SESSION_COOKIE}=`));
    const bySession = await app.inject({ url: '/metrics', headers: { cookie } });
    assert.equal(bySession.statusCode, 200);
  });

  it('answers 421 on a host name that is not an admin host, even with credentials', async () => {
    const res = await app.inject({
      url: '/metrics',
      headers: { host: 'evil.example', authorization: `Bearer ${PASSWORD}` },
    });
    assert.equal(res.statusCode, 421);
  });

  it('has no label naming a hosted domain by default', async () => {
    const metrics = serverMetrics(ctx.metrics);
    metrics.certificateLoads.inc({ host: 'mta-sts.example.test', result: 'loaded' });
    metrics.acmeOrders.inc({ host: 'mta-sts.example.test', result: 'issued' });
    const res = await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${PASSWORD}` } });
    assert.doesNotMatch(res.body, /example\.test/);
    assert.match(res.body, /mxguard_certificate_loads_total\{result="loaded"\} 1\b/);
    assert.match(res.body, /mxguard_acme_orders_total\{result="issued"\} 1\b/);
  });
});

describe('metrics.domainLabels', () => {
  it('labels policy fetches, certificate loads and ACME orders by domain when asked', async () => {
    const ctx = await testContext();
    ctx.metrics = createRegistry({ domainLabels: true });
    await ensureAdminPassword(ctx, PASSWORD);
    await ctx.store.addDomain('example.test', DOMAIN_SETTINGS, new Date());
    const app = buildApp(ctx);
    try {
      await app.ready();
      await app.inject({
        url: POLICY_PATH,
        headers: { host: 'mta-sts.example.test', 'user-agent': 'Google-SMTP-STS' },
      });
      serverMetrics(ctx.metrics).certificateLoads.inc({ host: 'mta-sts.example.test', result: 'failed' });
      const res = await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${PASSWORD}` } });
      assert.match(res.body, /mxguard_policy_fetches_total\{domain="example\.test",client="Google"\} 1\b/);
      assert.match(
        res.body,
        /mxguard_certificate_loads_total\{host="mta-sts\.example\.test",result="failed"\} 1\b/,
      );
    } finally {
      await app.close();
      await ctx.close();
    }
  });
});

describe('metricsListen: its own listener, unauthenticated', () => {
  let ctx: TestContext;
  let app: FastifyInstance;
  let main: Listeners;
  let metricsListener: RunningListener;

  before(async () => {
    ctx = await testContext();
    await ensureAdminPassword(ctx, PASSWORD);
    app = buildApp(ctx);
    main = await startListeners(app, { listen: { host: '127.0.0.1', port: 0 } });
    metricsListener = await startMetricsListener({ host: '127.0.0.1', port: 0 }, ctx.metrics);
  });
  after(async () => {
    await metricsListener.close();
    await main.close(1000);
    await app.close();
    await ctx.close();
  });

  it('serves /metrics without credentials on the metrics address', async () => {
    const res = await get(`${metricsListener.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.body, /mxguard_process_cpu_user_seconds_total/);
  });

  it('serves nothing else there: no policy, no API, no dashboard', async () => {
    for (const path of ['/', '/api/session', POLICY_PATH, '/healthz', '/metrics/x']) {
      const res = await get(`${metricsListener.url}${path}`, { host: 'mta-sts.example.test' });
      assert.equal(res.status, 404, path);
    }
  });

  it('still wants credentials for /metrics on the main listener', async () => {
    assert.equal((await get(`${main.urls.http}/metrics`)).status, 401);
    assert.equal(
      (await get(`${main.urls.http}/metrics`, { authorization: `Bearer ${PASSWORD}` })).status,
      200,
    );
  });
});
