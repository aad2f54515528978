// mxguard_alerts_open on /metrics (src/server/metrics.ts): the open monitoring alerts of the real store,
// by code, and by domain only when metrics.domainLabels asks for it; a resolved alert leaves the series.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { buildApp } from '../../src/server/app.js';
import { ensureAdminPassword } from '../../src/server/auth.js';
import { createRegistry } from '../../src/server/metrics.js';
import type { CheckOutcome } from '../../src/store/monitor-types.js';
import { DOMAIN_SETTINGS, type TestContext, testContext } from '../fixtures/serve/helpers.js';

const PASSWORD = 'metrics-alerts-password';
const NOW = new Date('2026-05-10T08:00:00Z');

function opening(domain: string, codes: string[]): CheckOutcome {
  return {
    run: { domain, at: NOW.toISOString(), durationMs: 1, status: 'fail', findings: [], trigger: 'schedule' },
    open: codes.map((code) => ({
      alert: { domain, code, subject: `mx.${domain}`, severity: 'fail' as const, message: code },
      deliveries: [],
    })),
    resolve: [],
  };
}

async function scrape(ctx: TestContext): Promise<string> {
  const app = buildApp(ctx);
  await app.ready();
  try {
    const res = await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${PASSWORD}` } });
    assert.equal(res.statusCode, 200, res.body);
    return res.body;
  } finally {
    await app.close();
  }
}

const series = (text: string) => text.split('\n').filter((l) => l.startsWith('mxguard_alerts_open'));

describe('mxguard_alerts_open', () => {
  const contexts: TestContext[] = [];
  after(async () => {
    for (const ctx of contexts) await ctx.close();
  });

  async function withAlerts(domainLabels: boolean): Promise<{ ctx: TestContext; mismatch: number }> {
    const ctx = await testContext();
    contexts.push(ctx);
    ctx.metrics = createRegistry({ domainLabels });
    await ensureAdminPassword(ctx, PASSWORD);
    for (const d of ['a.test', 'b.test']) await ctx.store.addDomain(d, DOMAIN_SETTINGS, NOW);
    const a = await ctx.store.recordCheck(
      opening('a.test', ['DANE_TLSA_MISMATCH', 'TLS_CERT_EXPIRING']),
      NOW,
    );
    await ctx.store.recordCheck(opening('b.test', ['DANE_TLSA_MISMATCH']), NOW);
    return { ctx, mismatch: a.opened[0]! };
  }

  it('counts open alerts by code, naming no domain by default', async () => {
    const { ctx } = await withAlerts(false);
    const text = await scrape(ctx);
    assert.deepEqual(series(text).sort(), [
      'mxguard_alerts_open{code="DANE_TLSA_MISMATCH"} 2',
      'mxguard_alerts_open{code="TLS_CERT_EXPIRING"} 1',
    ]);
    assert.doesNotMatch(text, /[ab]\.test/);
  });

  it('labels them by domain with metrics.domainLabels; a resolved alert leaves the series', async () => {
    const { ctx, mismatch } = await withAlerts(true);
    assert.deepEqual(series(await scrape(ctx)).sort(), [
      'mxguard_alerts_open{domain="a.test",code="DANE_TLSA_MISMATCH"} 1',
      'mxguard_alerts_open{domain="a.test",code="TLS_CERT_EXPIRING"} 1',
      'mxguard_alerts_open{domain="b.test",code="DANE_TLSA_MISMATCH"} 1',
    ]);
    await ctx.store.recordCheck(
      { ...opening('a.test', []), resolve: [{ alertId: mismatch, deliveries: [] }] },
      new Date(NOW.getTime() + 60_000),
    );
    assert.deepEqual(series(await scrape(ctx)).sort(), [
      'mxguard_alerts_open{domain="a.test",code="TLS_CERT_EXPIRING"} 1',
      'mxguard_alerts_open{domain="b.test",code="DANE_TLSA_MISMATCH"} 1',
    ]);
  });
});
