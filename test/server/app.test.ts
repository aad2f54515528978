// Policy hosting and the operational routes of the serve app (src/server/app.ts): RFC 8461 §3.3
// (policy at https://mta-sts.<domain>/.well-known/mta-sts.txt, text/plain, no redirects), the fetch
// log and its metrics, /healthz, /metrics (its login: test/server/metrics.test.ts), the HTTP-01
// challenge route, and the published-id check (src/server/livecheck.ts) against the lab DNS server.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { DnsClient } from '../../src/dns/client.js';
import { parsePolicy } from '../../src/mtasts/policy.js';
import { POLICY_PATH } from '../../src/mtasts/url.js';
import { buildApp, CHALLENGES_SUBDIR, policyCacheOf, policyDomainForHost } from '../../src/server/app.js';
import { ensureAdminPassword } from '../../src/server/auth.js';
import { publishedIdStatus } from '../../src/server/livecheck.js';
import { createRegistry } from '../../src/server/metrics.js';
import { StoreError } from '../../src/store/types.js';
import { DOMAIN_SETTINGS, eventually, type TestContext, testContext } from '../fixtures/serve/helpers.js';
import { type LabDnsServer, startDnsServer } from '../lab/dns-server.js';

describe('policyDomainForHost', () => {
  const table: Array<[string | undefined, string | undefined]> = [
    ['mta-sts.example.com', 'example.com'],
    ['MTA-STS.Example.COM', 'example.com'],
    ['mta-sts.example.com:443', 'example.com'],
    ['mta-sts.example.com.', 'example.com'],
    ['mta-sts.example.com.:8443', 'example.com'],
    ['mta-sts.sub.example.co.uk', 'sub.example.co.uk'],
    ['example.com', undefined],
    ['www.mta-sts.example.com', undefined],
    ['mta-sts.', undefined],
    ['mta-sts', undefined],
    ['mta-sts.example.com:https', undefined],
    ['[::1]:8080', undefined],
    ['', undefined],
    [undefined, undefined],
  ];
  for (const [host, domain] of table) {
    it(`${JSON.stringify(host)} -> ${JSON.stringify(domain)}`, () =>
      assert.equal(policyDomainForHost(host), domain));
  }
});

describe('policy hosting', () => {
  let ctx: TestContext;
  let app: FastifyInstance;
  let policyText: string;

  before(async () => {
    ctx = await testContext();
    policyText = (await ctx.store.addDomain('example.test', DOMAIN_SETTINGS, new Date())).policyText;
    await ctx.store.addDomain(
      'other.test',
      { ...DOMAIN_SETTINGS, mode: 'testing', mx: ['mx.other.test'] },
      new Date(),
    );
    app = buildApp(ctx, { policyRefreshMs: 50 });
    await app.ready();
  });
  after(async () => {
    await app.close();
    await ctx.close();
  });

  it('serves the policy of mta-sts.<domain> as text/plain; charset=utf-8', async () => {
    const res = await app.inject({ url: POLICY_PATH, headers: { host: 'mta-sts.example.test' } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(res.body, policyText);
    // The served text is a valid RFC 8461 policy.
    assert.equal(parsePolicy(res.body).policy.mode, 'enforce');
  });

  it('routes by Host: each domain gets its own policy, whatever the case, port or trailing dot', async () => {
    for (const host of ['MTA-STS.Other.Test', 'mta-sts.other.test:8443', 'mta-sts.other.test.']) {
      const res = await app.inject({ url: POLICY_PATH, headers: { host } });
      assert.equal(res.statusCode, 200, host);
      assert.match(res.body, /mode: testing/);
      assert.match(res.body, /mx: mx\.other\.test/);
    }
  });

  it('answers 404 for hosts that are not mta-sts.<configured domain>', async () => {
    for (const host of [
      'mta-sts.unknown.test',
      'example.test',
      'www.example.test',
      '127.0.0.1:8080',
      'mta-sts.example.test.evil.test',
    ]) {
      const res = await app.inject({ url: POLICY_PATH, headers: { host } });
      assert.equal(res.statusCode, 404, host);
      assert.equal(res.headers.location, undefined);
    }
  });

  it('answers 404 for other paths on the policy host, and never redirects', async () => {
    for (const url of [
      '/.well-known/mta-sts.txt/',
      '/.well-known/MTA-STS.txt',
      '/mta-sts.txt',
      '/.well-known/',
      '/.well-known/mta-sts.txt.bak',
    ]) {
      const res = await app.inject({ url, headers: { host: 'mta-sts.example.test' } });
      assert.equal(res.statusCode, 404, url);
      assert.equal(res.headers.location, undefined, url);
    }
  });

  it('answers HEAD with the headers and no body, and does not log it as a fetch', async () => {
    const before = (await ctx.store.listFetches('other.test')).items.length;
    const res = await app.inject({
      method: 'HEAD',
      url: POLICY_PATH,
      headers: { host: 'mta-sts.other.test' },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(res.body, '');
    assert.equal((await ctx.store.listFetches('other.test')).items.length, before);
  });

  it('refuses other methods on the policy path', async () => {
    const res = await app.inject({
      method: 'POST',
      url: POLICY_PATH,
      headers: { host: 'mta-sts.example.test' },
    });
    assert.equal(res.statusCode, 404);
  });

  it('logs every GET of a policy: time, domain, client IP, User-Agent', async () => {
    const res = await app.inject({
      url: POLICY_PATH,
      headers: { host: 'mta-sts.example.test', 'user-agent': 'Google-SMTP-STS' },
      remoteAddress: '192.0.2.25',
    });
    assert.equal(res.statusCode, 200);
    const fetches = (await ctx.store.listFetches('example.test')).items;
    const mine = fetches.find((f) => f.clientIp === '192.0.2.25');
    assert.ok(mine, JSON.stringify(fetches));
    assert.equal(mine.domain, 'example.test');
    assert.equal(mine.userAgent, 'Google-SMTP-STS');
    assert.ok(Math.abs(Date.parse(mine.at) - Date.now()) < 60_000);
  });

  it('counts fetches by domain (metrics.domainLabels) and fetcher, and unknown hosts, in /metrics', async () => {
    const labelled = await testContext();
    labelled.metrics = createRegistry({ domainLabels: true });
    const labelledApp = buildApp(labelled);
    try {
      await ensureAdminPassword(labelled, 'metrics-test-password');
      await labelled.store.addDomain('example.test', DOMAIN_SETTINGS, new Date());
      await labelled.store.addDomain('other.test', { ...DOMAIN_SETTINGS, mx: ['mx.other.test'] }, new Date());
      await labelledApp.ready();
      await labelledApp.inject({
        url: POLICY_PATH,
        headers: { host: 'mta-sts.example.test', 'user-agent': 'Google-SMTP-STS' },
      });
      await labelledApp.inject({
        url: POLICY_PATH,
        headers: { host: 'mta-sts.other.test', 'user-agent': 'Microsoft Exchange STS' },
      });
      await labelledApp.inject({ url: POLICY_PATH, headers: { host: 'mta-sts.nowhere.test' } });
      const res = await labelledApp.inject({
        url: '/metrics',
        headers: { authorization: 'Bearer metrics-test-password' },
      });
      assert.equal(res.statusCode, 200);
      assert.match(res.headers['content-type'] as string, /^text\/plain/);
      assert.match(res.body, /mxguard_policy_fetches_total\{domain="example\.test",client="Google"\} 1/);
      assert.match(res.body, /mxguard_policy_fetches_total\{domain="other\.test",client="Microsoft"\} 1/);
      assert.match(res.body, /mxguard_policy_unknown_host_total 1/);
      assert.match(res.body, /mxguard_process_cpu_user_seconds_total/);
    } finally {
      await labelledApp.close();
      await labelled.close();
    }
  });

  it('serves the new policy after a change made through the store (as the domain CLI does)', async () => {
    await ctx.store.updateDomain('example.test', { mode: 'testing' }, new Date(Date.now() + 5000));
    const body = await eventually(async () => {
      const res = await app.inject({ url: POLICY_PATH, headers: { host: 'mta-sts.example.test' } });
      return /mode: testing/.test(res.body) ? res.body : undefined;
    }, 'the changed policy');
    assert.equal(body, (await ctx.store.getDomain('example.test'))?.policyText);
  });

  it('stops serving a removed domain and serves a new one', async () => {
    await ctx.store.removeDomain('other.test');
    await ctx.store.addDomain('new.test', { ...DOMAIN_SETTINGS, mx: ['mx.new.test'] }, new Date());
    await policyCacheOf(app).refresh();
    assert.equal(
      (await app.inject({ url: POLICY_PATH, headers: { host: 'mta-sts.other.test' } })).statusCode,
      404,
    );
    assert.equal(
      (await app.inject({ url: POLICY_PATH, headers: { host: 'mta-sts.new.test' } })).statusCode,
      200,
    );
  });

  it('answers /healthz', async () => {
    const res = await app.inject({ url: '/healthz' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().status, 'ok');
  });

  it('answers HTTP-01 challenges from the challenge folder, and nothing else', async () => {
    const dir = join(ctx.dataDir, CHALLENGES_SUBDIR);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'tok_EN-123'), 'tok_EN-123.thumbprint');
    writeFileSync(join(ctx.dataDir, 'secret.txt'), 'not for the web');
    const ok = await app.inject({
      url: '/.well-known/acme-challenge/tok_EN-123',
      headers: { host: 'mta-sts.example.test' },
    });
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.body, 'tok_EN-123.thumbprint');
    for (const token of ['missing', '..%2F..%2Fsecret.txt', '%2e%2e', 'a.b']) {
      const res = await app.inject({ url: `/.well-known/acme-challenge/${token}` });
      assert.equal(res.statusCode, 404, token);
    }
  });

  it('takes the client address from X-Forwarded-For only when the proxy is trusted', async () => {
    const trusted = buildApp(ctx, { trustProxy: ['127.0.0.1'] });
    try {
      await trusted.inject({
        url: POLICY_PATH,
        headers: {
          host: 'mta-sts.example.test',
          'x-forwarded-for': '198.51.100.7',
          'user-agent': 'via proxy',
        },
        remoteAddress: '127.0.0.1',
      });
      await app.inject({
        url: POLICY_PATH,
        headers: { host: 'mta-sts.example.test', 'x-forwarded-for': '198.51.100.8', 'user-agent': 'spoofed' },
        remoteAddress: '203.0.113.9',
      });
    } finally {
      await trusted.close();
    }
    const fetches = (await ctx.store.listFetches('example.test')).items;
    assert.equal(fetches.find((f) => f.userAgent === 'via proxy')?.clientIp, '198.51.100.7');
    assert.equal(fetches.find((f) => f.userAgent === 'spoofed')?.clientIp, '203.0.113.9');
  });
});

describe('publishedIdStatus', () => {
  let dns: LabDnsServer;
  let ctx: TestContext;
  let currentId: string;

  before(async () => {
    ctx = await testContext();
    currentId = (await ctx.store.addDomain('published.test', DOMAIN_SETTINGS, new Date())).policyId;
    for (const name of ['stale.test', 'missing.test', 'two.test', 'broken.test', 'down.test']) {
      await ctx.store.addDomain(name, DOMAIN_SETTINGS, new Date());
    }
    const txt = (name: string, data: string) => ({ name, type: 'TXT' as const, data });
    dns = await startDnsServer([
      {
        origin: 'test',
        records: [
          txt('_mta-sts.published.test', `v=STSv1; id=${currentId}`),
          txt('_mta-sts.stale.test', 'v=STSv1; id=20200101000000'),
          txt('_mta-sts.two.test', 'v=STSv1; id=1'),
          txt('_mta-sts.two.test', 'v=STSv1; id=2'),
          txt('_mta-sts.broken.test', 'v=STSv1; id=not_valid!'),
          txt('missing.test', 'v=spf1 -all'),
        ],
      },
      { origin: 'down.test', servfail: true, records: [] },
    ]);
    ctx.resolver = new DnsClient({
      servers: [{ host: dns.host, port: dns.port }],
      timeoutMs: 1000,
      tries: 1,
    });
  });
  after(async () => {
    await dns.stop();
    await ctx.close();
  });

  it('matches when the published id is the current one', async () => {
    assert.deepEqual(await publishedIdStatus(ctx, 'published.test'), {
      published: currentId,
      current: currentId,
      matches: true,
    });
  });

  it('says when the published id is stale', async () => {
    const status = await publishedIdStatus(ctx, 'stale.test');
    assert.equal(status.published, '20200101000000');
    assert.equal(status.matches, false);
    assert.equal(status.error, undefined);
  });

  const failures: Array<[string, RegExp]> = [
    ['missing.test', /_mta-sts\.missing\.test: no TXT record starting with "v=STSv1;" is published/],
    ['two.test', /2 "v=STSv1" records/],
    ['broken.test', /_mta-sts\.broken\.test: .*id/],
    ['down.test', /DNS lookup failed: the resolver answered SERVFAIL for TXT _mta-sts\.down\.test/],
  ];
  for (const [domain, pattern] of failures) {
    it(`explains why there is no published id: ${domain}`, async () => {
      const status = await publishedIdStatus(ctx, domain);
      assert.equal(status.published, undefined);
      assert.equal(status.matches, false);
      assert.ok(status.current.length === 14);
      assert.match(status.error ?? '', pattern);
    });
  }

  it('throws STORE_DOMAIN_UNKNOWN for a domain that is not configured', async () => {
    await assert.rejects(
      publishedIdStatus(ctx, 'nobody.test'),
      (err) => err instanceof StoreError && err.code === 'STORE_DOMAIN_UNKNOWN',
    );
  });
});
