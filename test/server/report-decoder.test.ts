// The report decoder pool (src/server/report-decoder.ts): real worker threads. The real thread script
// decodes reports up to the caps within its heap limit; a test thread script (fixtures/intake/
// decoder-worker.ts) stands in for a decoder stuck on hostile input, to see the pool end it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { decodeDmarcReports } from '../../src/dmarc/parse.js';
import {
  DECODER_DEFAULTS,
  DecodeLimitError,
  DecoderBusyError,
  type DecoderPoolOptions,
  ReportDecoderPool,
} from '../../src/server/report-decoder.js';
import { prepareDmarcReport } from '../../src/store/dmarc-rules.js';
import { TlsRptError } from '../../src/tlsrpt/error.js';
import { reportBytes } from '../fixtures/intake/helpers.js';
import { manyRowsReport } from '../fixtures/intake/hostile.js';
import { CORPUS_DIR } from '../helpers/corpus.js';

const LIMITS = { maxCompressedBytes: 10 * 1024 * 1024, maxDecompressedBytes: 10 * 1024 * 1024 };
const TEST_WORKER = new URL('../fixtures/intake/decoder-worker.ts', import.meta.url);
const HANG = Buffer.from('{"hang": true}');
const HOG = Buffer.from('{"hog": true}');

const pools: ReportDecoderPool[] = [];
function pool(options: Partial<DecoderPoolOptions> = {}): ReportDecoderPool {
  const p = new ReportDecoderPool({
    threads: 1,
    queue: 4,
    timeoutMs: 60_000,
    maxHeapMiB: DECODER_DEFAULTS.maxHeapMiB,
    idleMs: 60_000,
    ...options,
  });
  pools.push(p);
  return p;
}
after(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

describe('the real decoder thread', () => {
  it('decodes a report, and gives TlsRptError with its code, place and problems', async () => {
    const decoder = pool();
    const { reports } = await decoder.decode(gzipSync(reportBytes({ 'report-id': 'thread-1' })), LIMITS);
    assert.equal(reports[0]!.reportId, 'thread-1');

    const err = await decoder.decode(reportBytes({ 'report-id': 'x'.repeat(257) }), LIMITS).catch((e) => e);
    assert.ok(err instanceof TlsRptError, String(err));
    assert.equal(err.code, 'TLSRPT_FIELD_TOO_LONG');
    assert.equal(err.where, 'report-id');
    assert.match(err.message, /^report-id: 257 characters/);
    assert.equal(err.problems[0]!.code, 'TLSRPT_FIELD_TOO_LONG');
  });

  it('decodes a report at the byte cap (200,000 rows, 9 MiB) within the default heap limit', async () => {
    const bytes = manyRowsReport(200_000);
    assert.ok(
      bytes.length > 8 * 1024 * 1024 && bytes.length < LIMITS.maxDecompressedBytes,
      `${bytes.length}`,
    );
    const { reports } = await pool().decode(gzipSync(bytes), LIMITS);
    const policy = reports[0]!.policies[0]!;
    assert.equal(policy.failed, 200_000);
    assert.equal(policy.failures.length, 1001);
    assert.equal(
      policy.failures.reduce((sum, f) => sum + f.count, 0),
      200_000,
    );
  });
});

describe('DMARC reports from the real thread', () => {
  it('come prepared for the store (rows as columns, the report as JSON), as the parser read them', async () => {
    const xml = readFileSync(`${CORPUS_DIR}dmarc/zoho.com!example.com!1581753600!1581840000.xml`);
    const decoded = await pool().decodeAny(gzipSync(xml), LIMITS);
    assert.equal(decoded.kind, 'dmarc');
    const [prepared] = decoded.reports;
    assert.ok(prepared && prepared.kind === 'dmarc-prepared', JSON.stringify(prepared));
    // The same as preparing here what the parser reads here.
    const [read] = (await decodeDmarcReports(xml)).reports;
    assert.deepEqual(prepared, prepareDmarcReport(read!));
    assert.deepEqual(JSON.parse(prepared.json), read);
    assert.equal(prepared.rows.sourceIp.length, 8);
  });
});

describe('bounds of the pool', () => {
  it('a job over the time limit has its thread terminated; the next job gets a new thread', async () => {
    const decoder = pool({ timeoutMs: 1000, workerUrl: TEST_WORKER });
    const err = await decoder.decode(HANG, LIMITS).catch((e) => e);
    assert.ok(err instanceof DecodeLimitError, String(err));
    assert.equal(err.code, 'INTAKE_DECODE_TIMEOUT');
    assert.equal(decoder.running, 0);
    const { reports } = await decoder.decode(reportBytes({ 'report-id': 'after-hang' }), LIMITS);
    assert.equal(reports[0]!.reportId, 'after-hang');
  });

  it('a job over the heap limit ends its thread, not the process; the next job works', async () => {
    const decoder = pool({ maxHeapMiB: 64, workerUrl: TEST_WORKER });
    const err = await decoder.decode(HOG, LIMITS).catch((e) => e);
    assert.ok(err instanceof DecodeLimitError, String(err));
    assert.equal(err.code, 'INTAKE_DECODE_MEMORY');
    const { reports } = await decoder.decode(reportBytes({ 'report-id': 'after-hog' }), LIMITS);
    assert.equal(reports[0]!.reportId, 'after-hog');
  });

  it('refuses a job at once when the threads are busy and the queue is full; queued jobs run after', async () => {
    const decoder = pool({ threads: 1, queue: 1, timeoutMs: 1500, workerUrl: TEST_WORKER });
    const hung = decoder.decode(HANG, LIMITS).catch((e) => e);
    const queued = decoder.decode(reportBytes({ 'report-id': 'queued' }), LIMITS);
    assert.equal(decoder.full, true);
    const refused = await decoder.decode(reportBytes(), LIMITS).catch((e) => e);
    assert.ok(refused instanceof DecoderBusyError, String(refused));
    assert.equal(refused.code, 'INTAKE_BUSY');
    assert.ok(refused.retryAfterSeconds >= 1);
    assert.equal((await hung).code, 'INTAKE_DECODE_TIMEOUT');
    assert.equal((await queued).reports[0]!.reportId, 'queued');
    assert.equal(decoder.full, false);
  });

  it('runs `threads` jobs at once', async () => {
    const decoder = pool({ threads: 2, queue: 0, timeoutMs: 1500, workerUrl: TEST_WORKER });
    const hung = decoder.decode(HANG, LIMITS).catch((e) => e);
    const { reports } = await decoder.decode(reportBytes({ 'report-id': 'beside' }), LIMITS);
    assert.equal(reports[0]!.reportId, 'beside');
    assert.equal(decoder.running, 1, 'the hung job still runs beside it');
    assert.equal((await hung).code, 'INTAKE_DECODE_TIMEOUT');
  });

  it('sends a thread `ahead` jobs at once, which it answers one after the other', async () => {
    const decoder = pool({ threads: 1, ahead: 3, queue: 10 });
    const ids = ['a1', 'a2', 'a3', 'a4', 'a5', 'a6'];
    const decoded = ids.map((id) => decoder.decode(reportBytes({ 'report-id': id }), LIMITS));
    assert.equal(decoder.running, 3, 'three sent, three waiting');
    const answered = await Promise.all(decoded);
    assert.deepEqual(
      answered.map((d) => d.reports[0]!.reportId),
      ids,
    );
    assert.equal(decoder.running, 0);
  });

  it('the jobs sent behind a job over the time limit are run by the next thread', async () => {
    const decoder = pool({ threads: 1, ahead: 3, queue: 10, timeoutMs: 1000, workerUrl: TEST_WORKER });
    const hung = decoder.decode(HANG, LIMITS).catch((e) => e);
    const behind = ['b1', 'b2'].map((id) => decoder.decode(reportBytes({ 'report-id': id }), LIMITS));
    assert.equal((await hung).code, 'INTAKE_DECODE_TIMEOUT');
    assert.deepEqual(
      (await Promise.all(behind)).map((d) => d.reports[0]!.reportId),
      ['b1', 'b2'],
    );
  });

  it('close() fails the jobs running and waiting', async () => {
    const decoder = pool({ queue: 1, workerUrl: TEST_WORKER });
    const hung = decoder.decode(HANG, LIMITS).catch((e) => e);
    const waiting = decoder.decode(reportBytes(), LIMITS).catch((e) => e);
    await decoder.close();
    assert.match(String(await hung), /closed/);
    assert.match(String(await waiting), /closed/);
    assert.match(String(await decoder.decode(reportBytes(), LIMITS).catch((e) => e)), /closed/);
  });
});

describe('from dist/ (after tsc)', () => {
  it('the compiled pool finds its compiled thread script', async () => {
    const compiled = new URL('../../dist/server/report-decoder.js', import.meta.url);
    assert.ok(existsSync(compiled), 'run `npx tsc -p tsconfig.json` first (npm test does)');
    const script = `
      const { createReportDecoder } = await import(${JSON.stringify(compiled.href)});
      const decoder = createReportDecoder({ decodeThreads: 1 });
      const bytes = Buffer.from(process.argv[1], 'base64');
      const { reports } = await decoder.decode(bytes, { maxCompressedBytes: 1e6, maxDecompressedBytes: 1e6 });
      console.log(reports[0].reportId, decoder.constructor.name);
      await decoder.close();`;
    const bytes = gzipSync(reportBytes({ 'report-id': 'from-dist' })).toString('base64');
    const { stdout } = await promisify(execFile)(process.execPath, [
      '--input-type=module',
      '-e',
      script,
      bytes,
    ]);
    assert.equal(stdout.trim(), 'from-dist ReportDecoderPool');
  });
});
