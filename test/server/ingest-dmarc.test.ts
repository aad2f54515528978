// ingestReport with DMARC aggregate reports (src/server/ingest.ts, issue 15) on a real SQLite store and
// the real decoder threads: the kind is found from the content for mail and files, HTTPS stays TLS-RPT
// only (RFC 8460 §5.4; DMARC has no HTTPS delivery), the URL's domain rule applies to DMARC too, and
// intake.otherDomains 'refuse' keeps reports about domains that are not configured out, for both kinds.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { type IngestDeps, ingestReport } from '../../src/server/ingest.js';
import { gzippedReport, NOW, type TestContext, testContext } from '../fixtures/intake/helpers.js';
import { CORPUS_DIR } from '../helpers/corpus.js';

const CORPUS = `${CORPUS_DIR}dmarc/`;
/** Policy domain example.com, report id e2cb5d97-..., 8 records, 9 messages (read from the XML). */
const ZOHO = readFileSync(`${CORPUS}zoho.com!example.com!1581753600!1581840000.xml`);
const ZOHO_ID = 'e2cb5d97-dcbb-470f-b2dd-45519a2abbb3';

describe('ingestReport: DMARC reports', () => {
  let ctx: TestContext;
  let deps: IngestDeps;
  before(async () => {
    ctx = await testContext();
    deps = { store: ctx.store, limits: ctx.config.intake, now: () => NOW, metrics: ctx.metrics };
  });
  after(async () => ctx.close());

  it('stores a DMARC report from mail or a file, once, and says which kind it was', async () => {
    const first = await ingestReport(deps, ZOHO, {
      source: 'import',
      dkim: 'unverified',
      submitter: 'z.xml',
    });
    assert.ok('stored' in first, JSON.stringify(first));
    assert.deepEqual(
      first.stored.map((s) => [s.kind, s.created, s.organization, s.reportId]),
      [['dmarc', true, 'zoho.com', ZOHO_ID]],
    );
    const again = await ingestReport(deps, ZOHO, { source: 'smtp', dkim: 'pass' });
    assert.ok('stored' in again);
    assert.deepEqual(
      again.stored.map((s) => [s.id, s.created]),
      [[first.stored[0]!.id, false]],
    );
    const stored = await ctx.store.getDmarcReport(first.stored[0]!.id);
    assert.equal(stored?.messages, 9);
    assert.equal(stored?.rows, 8);
    assert.equal(stored?.source, 'import');
  });

  it("refuses a DMARC report over HTTPS with the TLS-RPT reader's error, and a report for another URL domain", async () => {
    const https = await ingestReport(deps, ZOHO, { source: 'https', dkim: 'none' });
    assert.ok('rejected' in https);
    assert.match(https.code, /^TLSRPT_/);
    const wrong = await ingestReport(deps, ZOHO, {
      source: 'imap',
      dkim: 'pass',
      policyDomain: 'example.org',
    });
    assert.ok('rejected' in wrong);
    assert.equal(wrong.code, 'INTAKE_WRONG_DOMAIN');
    assert.match(wrong.rejected, /about example\.com, not example\.org/);
  });
  it('rejects a DMARC report whose counts add up past 2^53, with the reason, and stores none of it', async () => {
    // Read by the parser (each count has 15 digits), refused by the store's rules: the decoder thread
    // leaves such a report as read instead of preparing it, and the store gives the reason.
    const record = (i: number) =>
      `<record><row><source_ip>192.0.2.${i}</source_ip><count>999999999999999</count><policy_evaluated>` +
      '<disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>' +
      '<identifiers><header_from>example.com</header_from></identifiers><auth_results/></record>';
    const xml = Buffer.from(
      '<?xml version="1.0"?><feedback><report_metadata><org_name>big.example</org_name>' +
        '<report_id>too-many</report_id><date_range><begin>1764547200</begin><end>1764633599</end></date_range>' +
        '</report_metadata><policy_published><domain>example.com</domain><p>none</p></policy_published>' +
        Array.from({ length: 10 }, (_, i) => record(i)).join('') +
        '</feedback>',
    );
    const before = (await ctx.store.listDmarcReports({ organization: 'big.example' })).total;
    const result = await ingestReport(deps, xml, { source: 'smtp', dkim: 'pass' });
    assert.ok('rejected' in result, JSON.stringify(result));
    assert.equal(result.code, 'INTAKE_STORE_INVALID');
    assert.match(result.rejected, /"too-many".*add up past 2\^53/);
    assert.equal((await ctx.store.listDmarcReports({ organization: 'big.example' })).total, before);
    const rejected = await ctx.store.listRejected({ limit: 5 });
    assert.ok(rejected.items.some((r) => r.id === result.rejectedId && /add up/.test(r.reason)));
  });
});

describe('intake.otherDomains', () => {
  let ctx: TestContext;
  let deps: IngestDeps;
  before(async () => {
    ctx = await testContext({ intake: { otherDomains: 'refuse' } });
    deps = { store: ctx.store, limits: ctx.config.intake, now: () => NOW };
  });
  after(async () => ctx.close());

  it('"refuse": reports of either kind about a domain that is not configured are rejected with a reason', async () => {
    const dmarc = await ingestReport(deps, ZOHO, { source: 'smtp', dkim: 'pass' });
    assert.ok('rejected' in dmarc);
    assert.equal(dmarc.code, 'INTAKE_OTHER_DOMAIN');
    assert.match(dmarc.rejected, /about example\.com, not a configured domain/);
    const tlsrpt = await ingestReport(deps, gzippedReport({ 'report-id': 'other-1' }), {
      source: 'https',
      dkim: 'none',
    });
    assert.ok('rejected' in tlsrpt);
    assert.equal(tlsrpt.code, 'INTAKE_OTHER_DOMAIN');
    const rejected = (await ctx.store.listRejected()).items;
    assert.equal(rejected.length, 2);
    assert.ok(rejected.every((r) => /intake\.otherDomains/.test(r.reason)));

    // Once the domain is configured, the same input is stored.
    await ctx.store.addDomain(
      'example.com',
      { mode: 'testing', mx: ['mx.example.com'], maxAge: 86400, rua: ['mailto:tlsrpt@example.com'] },
      NOW,
    );
    const kept = await ingestReport(deps, ZOHO, { source: 'smtp', dkim: 'pass' });
    assert.ok('stored' in kept, JSON.stringify(kept));
    const tlsKept = await ingestReport(deps, gzippedReport({ 'report-id': 'other-1' }), {
      source: 'https',
      dkim: 'none',
    });
    assert.ok('stored' in tlsKept, JSON.stringify(tlsKept));
  });

  it('"keep" (the default) stores reports about any domain', async () => {
    const keeping = await testContext();
    try {
      const result = await ingestReport(
        { store: keeping.store, limits: keeping.config.intake, now: () => NOW },
        ZOHO,
        { source: 'smtp', dkim: 'pass' },
      );
      assert.ok('stored' in result, JSON.stringify(result));
    } finally {
      await keeping.close();
    }
  });
});
