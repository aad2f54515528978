// ingestReport (src/server/ingest.ts): bytes -> decodeReports -> saveReport / saveRejected, on the real
// SQLite store, plus a few pure unit tests with a stub store for failures SQLite will not produce.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { DEFAULT_INTAKE } from '../../src/server/config.js';
import { type IngestDeps, ingestReport, intakeMetrics, refusedForSize } from '../../src/server/ingest.js';
import { DecoderBusyError, ReportDecoderPool } from '../../src/server/report-decoder.js';
import { type Store, StoreError } from '../../src/store/types.js';
import {
  counterValue,
  gzipBomb,
  gzippedReport,
  NOW,
  reportBytes,
  reportEmail,
  TEST_LIMITS,
  type TestContext,
  testContext,
  wireReport,
} from '../fixtures/intake/helpers.js';
import { longOrganizationGzip, manyRowsReport } from '../fixtures/intake/hostile.js';

let ctx: TestContext;
let deps: IngestDeps;

before(async () => {
  ctx = await testContext();
  deps = { store: ctx.store, limits: ctx.config.intake, now: () => NOW, metrics: ctx.metrics };
});
after(async () => ctx.close());

describe('ingestReport stores reports', () => {
  it('stores a JSON report once (idempotent on organization + report-id)', async () => {
    const bytes = reportBytes({ 'report-id': 'json-1' });
    const first = await ingestReport(deps, bytes, {
      source: 'import',
      submitter: 'a.json',
      dkim: 'unverified',
    });
    assert.ok('stored' in first);
    assert.equal(first.stored.length, 1);
    assert.equal(first.stored[0]!.created, true);
    assert.equal(first.stored[0]!.reportId, 'json-1');
    assert.equal(first.stored[0]!.organization, 'Example Sender Inc.');

    const again = await ingestReport(deps, bytes, { source: 'https', dkim: 'none' });
    assert.ok('stored' in again);
    assert.equal(again.stored[0]!.created, false);
    assert.equal(again.stored[0]!.id, first.stored[0]!.id);

    const saved = await ctx.store.getReport(first.stored[0]!.id);
    assert.equal(saved?.source, 'import');
    assert.equal(saved?.dkim, 'unverified');
    assert.equal(saved?.submitter, 'a.json');
    assert.equal(
      await counterValue(ctx, 'mxguard_reports_received_total', { source: 'import', outcome: 'created' }),
      1,
    );
    assert.equal(
      await counterValue(ctx, 'mxguard_reports_received_total', { source: 'https', outcome: 'duplicate' }),
      1,
    );
  });

  it('stores a gzip report', async () => {
    const result = await ingestReport(deps, gzippedReport({ 'report-id': 'gz-1' }), {
      source: 'https',
      dkim: 'none',
    });
    assert.ok('stored' in result);
    assert.equal(result.stored[0]!.created, true);
  });

  it('stores every report attachment of an email', async () => {
    const email = reportEmail({
      reports: [gzippedReport({ 'report-id': 'mail-a' }), gzippedReport({ 'report-id': 'mail-b' })],
    });
    const result = await ingestReport(deps, Buffer.from(email), { source: 'smtp', dkim: 'pass' });
    assert.ok('stored' in result);
    assert.deepEqual(
      result.stored.map((s) => s.reportId),
      ['mail-a', 'mail-b'],
    );
  });

  it('keeps the parser warnings with the report', async () => {
    const report = wireReport({ 'report-id': 'warn-1' });
    const policies = report.policies as Array<{ summary: Record<string, number> }>;
    delete policies[0]!.summary['total-failure-session-count'];
    const result = await ingestReport(deps, Buffer.from(JSON.stringify(report)), {
      source: 'https',
      dkim: 'none',
    });
    assert.ok('stored' in result);
    assert.ok(result.warnings.length > 0);
    const saved = await ctx.store.getReport(result.stored[0]!.id);
    assert.ok(saved!.warnings.length > 0);
  });

  it('stores attacker-controlled text verbatim (escaping is the dashboard’s job)', async () => {
    const evil = '<script>alert("x")</script><img src=x onerror=alert(1)>';
    const bytes = reportBytes({ 'report-id': `html-${evil}`, 'organization-name': evil });
    const result = await ingestReport(deps, bytes, { source: 'https', submitter: evil, dkim: 'none' });
    assert.ok('stored' in result);
    const saved = await ctx.store.getReport(result.stored[0]!.id);
    assert.equal(saved?.organization, evil);
    assert.equal(saved?.reportId, `html-${evil}`);
    assert.equal(saved?.submitter, evil);
  });
});

describe('ingestReport rejects bad input and keeps it in the rejected list', () => {
  const bad: Array<[string, Buffer, string]> = [
    ['empty input', Buffer.alloc(0), 'TLSRPT_NOT_A_REPORT'],
    ['invalid JSON', Buffer.from('{"organization-name": '), 'TLSRPT_BAD_JSON'],
    ['not a report', Buffer.from('{"hello": "world"}'), 'TLSRPT_NOT_A_REPORT'],
    [
      'corrupt gzip',
      Buffer.concat([gzippedReport().subarray(0, 20), Buffer.from('junk')]),
      'TLSRPT_BAD_GZIP',
    ],
    ['a gzip bomb', gzipBomb(TEST_LIMITS.maxDecompressedBytes * 8), 'TLSRPT_TOO_LARGE'],
    ['over the input cap', Buffer.alloc(TEST_LIMITS.maxBytes + 1, 0x20), 'TLSRPT_TOO_LARGE'],
    ['JSON nested too deep', Buffer.from(`${'['.repeat(100)}${']'.repeat(100)}`), 'TLSRPT_TOO_DEEP'],
    ['a counted-wrong report', reportBytes({ policies: 'none' }), 'TLSRPT_BAD_FIELD'],
  ];
  for (const [name, bytes, code] of bad) {
    it(`${name}: ${code}`, async () => {
      const before = (await ctx.store.listRejected({ limit: 1000 })).items.length;
      const result = await ingestReport(deps, bytes, {
        source: 'https',
        submitter: '198.51.100.9',
        dkim: 'none',
      });
      assert.ok('rejected' in result, JSON.stringify(result));
      assert.equal(result.code, code);
      const rejected = (await ctx.store.listRejected({ limit: 1000 })).items;
      assert.equal(rejected.length, before + 1);
      const row = rejected.find((r) => r.id === result.rejectedId);
      assert.equal(row?.reason, result.rejected);
      assert.equal(row?.size, bytes.length);
      assert.equal(row?.submitter, '198.51.100.9');
      assert.equal(row?.source, 'https');
    });
  }

  it('counts rejections by source and code', async () => {
    const n = await counterValue(ctx, 'mxguard_reports_rejected_total', {
      source: 'https',
      code: 'TLSRPT_BAD_JSON',
    });
    assert.ok(n >= 1);
  });
});

describe('ingestReport for one policy domain (POST /tlsrpt/:domain)', () => {
  it('accepts a report that covers the domain (any case, trailing dot)', async () => {
    const result = await ingestReport(deps, reportBytes({ 'report-id': 'dom-1' }), {
      source: 'https',
      dkim: 'none',
      policyDomain: 'Example.COM.',
    });
    assert.ok('stored' in result);
  });

  it('rejects a report about another domain', async () => {
    const result = await ingestReport(deps, reportBytes({ 'report-id': 'dom-2' }), {
      source: 'https',
      dkim: 'none',
      policyDomain: 'other.example',
    });
    assert.ok('rejected' in result);
    assert.equal(result.code, 'INTAKE_WRONG_DOMAIN');
    assert.match(result.rejected, /example\.com, not other\.example/);
    const stored = (await ctx.store.listReports({ limit: 1000 })).items;
    assert.ok(!stored.some((r) => r.reportId === 'dom-2'));
  });

  it('takes policies without policy-domain to be about the domain in the URL', async () => {
    const report = wireReport({ 'report-id': 'dom-3' });
    const policies = report.policies as Array<{ policy: Record<string, unknown> }>;
    delete policies[0]!.policy['policy-domain'];
    const result = await ingestReport(deps, Buffer.from(JSON.stringify(report)), {
      source: 'https',
      dkim: 'none',
      policyDomain: 'example.org',
    });
    assert.ok('stored' in result);
    assert.ok(result.warnings.some((w) => w.code === 'INTAKE_POLICY_DOMAIN_FROM_URL'));
    const saved = await ctx.store.getReport(result.stored[0]!.id);
    assert.deepEqual(saved?.domains, ['example.org']);
    assert.equal(saved?.report.policies[0]?.domain, 'example.org');
  });
});

describe('ingestReport never throws on hostile input', () => {
  it('random bytes are either stored or rejected', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        const result = await ingestReport(deps, bytes, { source: 'https', dkim: 'none' });
        assert.ok('stored' in result || 'rejected' in result);
      }),
      { numRuns: 150 },
    );
  });

  it('random gzip and JSON-ish text is either stored or rejected', async () => {
    const jsonish = fc.oneof(
      fc.json(),
      fc.string().map((s) => `{"organization-name": ${JSON.stringify(s)}`),
    );
    await fc.assert(
      fc.asyncProperty(jsonish, fc.boolean(), async (text, zip) => {
        const bytes = zip ? gzipSync(text) : Buffer.from(text);
        const result = await ingestReport(deps, bytes, { source: 'https', dkim: 'none' });
        assert.ok('stored' in result || 'rejected' in result);
      }),
      { numRuns: 150 },
    );
  });
});

describe('ingestReport with store failures (stub store)', () => {
  function stubStore(saveReport: Store['saveReport']): { store: Store; rejected: string[] } {
    const rejected: string[] = [];
    const store = {
      saveReport,
      saveRejected: async (input: { reason: string }) => {
        rejected.push(input.reason);
        return rejected.length;
      },
    } as unknown as Store;
    return { store, rejected };
  }

  it('a failing store is thrown, not turned into a rejection (the caller says "try again")', async () => {
    const { store, rejected } = stubStore(async () => {
      throw new StoreError('STORE_IO', 'disk full');
    });
    await assert.rejects(
      ingestReport({ store, limits: TEST_LIMITS, now: () => NOW }, reportBytes(), {
        source: 'https',
        dkim: 'none',
      }),
      /disk full/,
    );
    assert.deepEqual(rejected, []);
  });

  it('a report the store finds invalid is rejected with the reason', async () => {
    const { store, rejected } = stubStore(async () => {
      throw new StoreError('STORE_INVALID', 'report failed total: too large');
    });
    const metrics = new Registry();
    const result = await ingestReport(
      { store, limits: TEST_LIMITS, now: () => NOW, metrics },
      reportBytes(),
      {
        source: 'smtp',
        dkim: 'pass',
      },
    );
    assert.ok('rejected' in result);
    assert.equal(result.code, 'INTAKE_STORE_INVALID');
    assert.equal(rejected.length, 1);
    assert.match(rejected[0]!, /too large/);
  });

  it('the counters can be asked for twice on one registry', () => {
    const metrics = new Registry();
    const a = intakeMetrics(metrics);
    const b = intakeMetrics(metrics);
    assert.equal(a.received, b.received);
    assert.equal(metrics.getMetricsAsArray().length, 3);
  });
});

// Issue 10: hostile reports, with the limits `serve` runs with by default.
describe('ingestReport with the default limits: hostile reports (issue 10)', () => {
  let hostile: TestContext;
  let defaults: IngestDeps;
  before(async () => {
    hostile = await testContext({ intake: { ...DEFAULT_INTAKE } });
    defaults = {
      store: hostile.store,
      limits: hostile.config.intake,
      now: () => NOW,
      metrics: hostile.metrics,
    };
  });
  after(async () => hostile.close());

  async function rejectedWith(bytes: Buffer, code: string): Promise<void> {
    const result = await ingestReport(defaults, bytes, {
      source: 'https',
      submitter: '203.0.113.9',
      dkim: 'none',
    });
    assert.ok('rejected' in result, JSON.stringify('stored' in result ? result.stored : result));
    assert.equal(result.code, code);
    assert.ok(refusedForSize(result.code));
    const row = (await hostile.store.listRejected({ limit: 1000 })).items.find(
      (r) => r.id === result.rejectedId,
    );
    assert.equal(row?.size, bytes.length);
    assert.ok(row!.reason.length <= 1000);
  }

  it('the 46 KB gzip whose organization-name is 45 MiB is refused (TLSRPT_TOO_LARGE), nothing stored', async () => {
    const attack = await longOrganizationGzip(45 * 1024 * 1024, 'amplify-1');
    assert.ok(attack.length < 64 * 1024);
    await rejectedWith(attack, 'TLSRPT_TOO_LARGE');
    const stored = (await hostile.store.listReports({ limit: 1000 })).items;
    assert.ok(!stored.some((r) => r.reportId === 'amplify-1'));
  });

  it('a 5 MiB organization-name within the byte cap is refused (TLSRPT_FIELD_TOO_LONG), nothing stored', async () => {
    await rejectedWith(await longOrganizationGzip(5 * 1024 * 1024, 'amplify-2'), 'TLSRPT_FIELD_TOO_LONG');
    const stored = (await hostile.store.listReports({ limit: 1000 })).items;
    assert.ok(!stored.some((r) => r.reportId === 'amplify-2'));
  });

  it('200,000 failure rows: stored as 1000 rows and one merged row, with every count exact', async () => {
    const result = await ingestReport(defaults, gzipSync(manyRowsReport(200_000, 'rows-200k')), {
      source: 'https',
      dkim: 'none',
    });
    assert.ok('stored' in result, JSON.stringify(result));
    assert.ok(result.warnings.some((w) => w.code === 'TLSRPT_FAILURE_ROWS_MERGED'));
    const saved = await hostile.store.getReport(result.stored[0]!.id);
    const policy = saved!.report.policies[0]!;
    assert.equal(policy.failed, 200_000);
    assert.equal(policy.failures.length, 1001);
    assert.equal(
      policy.failures.reduce((sum, f) => sum + f.count, 0),
      200_000,
    );
    const listed = (await hostile.store.listReports({ limit: 1000 })).items.find(
      (r) => r.reportId === 'rows-200k',
    );
    assert.equal(listed?.failed, 200_000);
  });

  it('organization-name of 256 characters is stored, 257 refused: the same cap as the parser', async () => {
    const atCap = await ingestReport(defaults, reportBytes({ 'organization-name': 'o'.repeat(256) }), {
      source: 'import',
      dkim: 'unverified',
    });
    assert.ok('stored' in atCap);
    await rejectedWith(reportBytes({ 'organization-name': 'o'.repeat(257) }), 'TLSRPT_FIELD_TOO_LONG');
  });
});

describe('ingestReport and the decoder pool', () => {
  const decoders: ReportDecoderPool[] = [];
  function testPool(options: { queue?: number; timeoutMs?: number } = {}): ReportDecoderPool {
    const pool = new ReportDecoderPool({
      threads: 1,
      queue: options.queue ?? 0,
      timeoutMs: options.timeoutMs ?? 60_000,
      maxHeapMiB: 256,
      idleMs: 60_000,
      workerUrl: new URL('../fixtures/intake/decoder-worker.ts', import.meta.url),
    });
    decoders.push(pool);
    return pool;
  }
  after(async () => {
    await Promise.all(decoders.map((d) => d.close()));
  });

  it('a decode over the time limit is a rejection (INTAKE_DECODE_TIMEOUT), kept in the rejected list', async () => {
    const decoder = testPool({ timeoutMs: 500 });
    const bytes = Buffer.from('{"hang": 1}');
    const result = await ingestReport({ ...deps, decoder }, bytes, { source: 'imap', dkim: 'pass' });
    assert.ok('rejected' in result);
    assert.equal(result.code, 'INTAKE_DECODE_TIMEOUT');
    assert.ok(refusedForSize(result.code));
    const row = (await ctx.store.listRejected({ limit: 1000 })).items.find((r) => r.id === result.rejectedId);
    assert.equal(row?.source, 'imap');
    const after = await ingestReport({ ...deps, decoder }, reportBytes({ 'report-id': 'after-timeout' }), {
      source: 'imap',
      dkim: 'pass',
    });
    assert.ok('stored' in after);
  });

  it('a full decoder queue is thrown (try again later), not recorded as a rejection', async () => {
    const decoder = testPool({ queue: 0, timeoutMs: 1500 });
    const hung = ingestReport({ ...deps, decoder }, Buffer.from('{"hang": 2}'), {
      source: 'smtp',
      dkim: 'pass',
    });
    const before = (await ctx.store.listRejected({ limit: 1000 })).items.length;
    await assert.rejects(
      ingestReport({ ...deps, decoder }, reportBytes({ 'report-id': 'busy' }), {
        source: 'smtp',
        dkim: 'pass',
      }),
      DecoderBusyError,
    );
    assert.equal((await ctx.store.listRejected({ limit: 1000 })).items.length, before);
    assert.ok('rejected' in (await hung));
  });

  it('refusedForSize: size and cost codes, not content codes', () => {
    for (const code of [
      'TLSRPT_TOO_LARGE',
      'TLSRPT_FIELD_TOO_LONG',
      'TLSRPT_LIST_TOO_LONG',
      'INTAKE_DECODE_MEMORY',
    ])
      assert.equal(refusedForSize(code), true, code);
    for (const code of ['TLSRPT_BAD_JSON', 'TLSRPT_TOO_DEEP', 'INTAKE_WRONG_DOMAIN', 'DKIM_NONE'])
      assert.equal(refusedForSize(code), false, code);
  });
});
