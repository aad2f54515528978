// Decoding TLS-RPT reports (RFC 8460 §5: gunzip, the email's MIME, JSON, the field caps of src/tlsrpt)
// and DMARC aggregate reports (RFC 7489 §7.2.1.1: XML, gzip, zip, e-mail; the caps of src/dmarc) off the
// event loop, in a small pool of worker threads per process, so that no report, however hostile,
// stalls policy hosting (RFC 8461 §3.3) or the API while it is read.
//
// Bounded on every side:
// - threads: at most `threads` jobs run at once (default 1 per process; with node:cluster every
//   process has its own pool); a thread may be sent `ahead` jobs at once (default 1), which it decodes
//   one after the other, so that it does not run dry while the caller's thread is busy (`reports
//   import` between store commits); a thread that ends takes only the job it was running with it;
// - queue: at most `queue` jobs wait; one more is refused at once with DecoderBusyError (HTTPS 503
//   with Retry-After, SMTP 451, IMAP: next round), instead of piling up;
// - time: a job running longer than `timeoutMs` (from the reply to the job before it) has its thread
//   terminated (DecodeLimitError INTAKE_DECODE_TIMEOUT); the next job gets a new thread;
// - memory: each thread runs with a V8 heap limit (`maxHeapMiB`, resourceLimits), and a job that
//   passes it ends its thread (INTAKE_DECODE_MEMORY), not the process.
// A thread idle for a minute is ended (and made again when needed); idle threads never keep the
// process alive. `decode` reads TLS-RPT only (HTTPS intake: RFC 8460 §5.4; DMARC has no HTTPS delivery);
// `decodeAny` reads either kind, chosen by content (isDmarcInput; input of neither kind goes to the
// DMARC reader when it looks like XML or a zip, else to the TLS-RPT reader, whose error names it): a
// mailbox or a directory that receives both. `threads: 0` decodes on the calling thread instead (the behaviour before the pool:
// for the benchmark that measures the difference, bench/intake-hostile.ts).
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Problem } from '../common/errors.js';
import { DmarcError, type DmarcErrorCode } from '../dmarc/error.js';
import { type DecodedDmarcReports, decodeIfDmarc } from '../dmarc/parse.js';
import type { DmarcReport } from '../dmarc/report.js';
import { prepareDmarcReport } from '../store/dmarc-rules.js';
import type { StorableDmarcReport } from '../store/dmarc-types.js';
import { StoreError } from '../store/types.js';
import { TlsRptError, type TlsRptErrorCode } from '../tlsrpt/error.js';
import { type DecodedReports, decodeReports } from '../tlsrpt/parse.js';

export interface DecodeLimits {
  maxCompressedBytes: number;
  maxDecompressedBytes: number;
}

/**
 * What decodeAny read: TLS-RPT or DMARC reports, by the input's content. DMARC reports come prepared for
 * the store (prepareDmarcReport, in the thread), except one the store will refuse, which comes as read.
 */
export type DecodedInput =
  | ({ kind: 'tlsrpt' } & DecodedReports)
  | { kind: 'dmarc'; reports: StorableDmarcReport[]; warnings: DecodedDmarcReports['warnings'] };

/** Which kinds a job may read: TLS-RPT only (HTTPS) or either (mail, IMAP, import). */
export type DecodeKinds = 'tlsrpt' | 'any';

export interface ReportDecoder {
  /** decodeReports in a worker thread: its result, its TlsRptError, or a pool error (below). */
  decode(bytes: Uint8Array, limits: DecodeLimits): Promise<DecodedReports>;
  /** TLS-RPT or DMARC, by content: the result, TlsRptError or DmarcError, or a pool error. */
  decodeAny(bytes: Uint8Array, limits: DecodeLimits): Promise<DecodedInput>;
  /** Jobs being decoded now. */
  readonly running: number;
  /** True when one more job would be refused with DecoderBusyError. */
  readonly full: boolean;
  /** End the threads; jobs still running or waiting fail. */
  close(): Promise<void>;
}

/** The intake settings the decoder reads (ServeConfig['intake']); unset ones take DECODER_DEFAULTS. */
export interface DecoderSettings {
  decodeThreads?: number;
  decodeQueue?: number;
  decodeTimeoutSeconds?: number;
  /** Jobs sent to a thread ahead of its replies (DecoderPoolOptions.ahead); not a serve setting. */
  decodeAhead?: number;
}

export const DECODER_DEFAULTS = {
  threads: 1,
  queue: 8,
  timeoutSeconds: 10,
  /** V8 old-space limit per thread: a 10 MiB report of 200,000 failure rows needs well under 100. */
  maxHeapMiB: 256,
  idleMs: 60_000,
} as const;

/** Refused at once: `threads` jobs run and `queue` wait. Try again later, nothing was read. */
export class DecoderBusyError extends Error {
  override readonly name = 'DecoderBusyError';
  readonly code = 'INTAKE_BUSY';
  readonly statusCode = 503;
  /** A report takes well under a second to decode: the queue is soon free again. */
  readonly retryAfterSeconds = 10;

  constructor() {
    super('every report decoder is busy; try again later');
  }
}

/** The input took more time or memory to decode than allowed: a refusal of the input. */
export class DecodeLimitError extends Error {
  override readonly name = 'DecodeLimitError';

  constructor(
    readonly code: 'INTAKE_DECODE_TIMEOUT' | 'INTAKE_DECODE_MEMORY',
    message: string,
  ) {
    super(message);
  }
}

// ---- the job, as it crosses to the thread and back ----

export interface DecodeJob {
  id: number;
  bytes: Uint8Array;
  limits: DecodeLimits;
  /** Absent: 'tlsrpt'. */
  kinds?: DecodeKinds;
}

type SentError =
  | { kind: 'tlsrpt'; code: TlsRptErrorCode; message: string; where?: string; problems: Problem[] }
  | { kind: 'dmarc'; code: DmarcErrorCode; message: string; where?: string; problems: Problem[] }
  | { kind: 'other'; message: string };

export type DecodeReply =
  | { id: number; ok: true; decoded: DecodedInput }
  | { id: number; ok: false; error: SentError };

/** What a thread posts once it has loaded and can take jobs. */
export const DECODER_READY = 'mxguard:decoder-ready';

/** Run one job (in the thread; report-decoder-worker.ts). Never throws. */
export async function runDecodeJob(job: DecodeJob): Promise<DecodeReply> {
  try {
    return { id: job.id, ok: true, decoded: await decodeInput(job.bytes, job.limits, job.kinds ?? 'tlsrpt') };
  } catch (err) {
    if (err instanceof TlsRptError || err instanceof DmarcError) {
      // ProtocolError puts "where: " in front of the message; it is added back on the other side.
      const prefix = err.where ? `${err.where}: ` : '';
      const message = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
      const { where, problems } = err;
      const error: SentError =
        err instanceof DmarcError
          ? { kind: 'dmarc', code: err.code, message, where, problems }
          : { kind: 'tlsrpt', code: err.code, message, where, problems };
      return { id: job.id, ok: false, error };
    }
    return {
      id: job.id,
      ok: false,
      error: { kind: 'other', message: (err as Error)?.message ?? String(err) },
    };
  }
}

function errorFromReply(error: SentError): Error {
  if (error.kind === 'tlsrpt') {
    return new TlsRptError(error.code, error.message, { where: error.where, problems: error.problems });
  }
  if (error.kind === 'dmarc') {
    return new DmarcError(error.code, error.message, { where: error.where, problems: error.problems });
  }
  return new Error(`report decoder: ${error.message}`);
}

/** Decode `bytes` as the kinds allow; with 'any', the kind is found from the content. */
async function decodeInput(
  bytes: Uint8Array,
  limits: DecodeLimits,
  kinds: DecodeKinds,
): Promise<DecodedInput> {
  // decodeIfDmarc: isDmarcInput and decodeDmarcReports in one step (a gzip or zip inflated once).
  const dmarc = kinds === 'any' ? await decodeIfDmarc(bytes, limits) : undefined;
  if (dmarc) return { kind: 'dmarc', reports: dmarc.reports.map(preparedIfValid), warnings: dmarc.warnings };
  return { kind: 'tlsrpt', ...(await decodeReports(bytes, limits)) };
}

/**
 * The report prepared for the store here, off the thread that stores it; one the store refuses (counts
 * adding up past 2^53) is left as read, and refused with the same reason when it is saved.
 */
function preparedIfValid(report: DmarcReport): StorableDmarcReport {
  try {
    return prepareDmarcReport(report);
  } catch (err) {
    if (err instanceof StoreError && err.code === 'STORE_INVALID') return report;
    throw err;
  }
}

// ---- the pool ----

export interface DecoderPoolOptions {
  threads: number;
  /** Jobs a thread is sent before it answers the first (default 1). */
  ahead?: number;
  queue: number;
  timeoutMs: number;
  maxHeapMiB: number;
  idleMs: number;
  /** The thread's script (tests give their own); default report-decoder-worker.js next to this file. */
  workerUrl?: URL;
}

interface Pending {
  id: number;
  bytes: Uint8Array;
  limits: DecodeLimits;
  kinds: DecodeKinds;
  resolve(decoded: DecodedInput): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  /** Sent (or to be sent once ready), oldest first: the thread runs the first. */
  jobs: Pending[];
  timer?: NodeJS.Timeout;
}

// The same extension as this file: .js in dist/, .ts under tsx.
const DEFAULT_WORKER_URL = new URL(
  `./report-decoder-worker${extname(fileURLToPath(import.meta.url))}`,
  import.meta.url,
);

export class ReportDecoderPool implements ReportDecoder {
  private readonly slots: Slot[] = [];
  private readonly waiting: Pending[] = [];
  private nextId = 1;
  private closed = false;
  private readonly ahead: number;

  constructor(private readonly options: DecoderPoolOptions) {
    this.ahead = options.ahead ?? 1;
    if (
      !(
        options.threads >= 1 &&
        this.ahead >= 1 &&
        options.queue >= 0 &&
        options.timeoutMs > 0 &&
        options.maxHeapMiB > 0
      )
    ) {
      throw new RangeError(
        'ReportDecoderPool: threads >= 1, ahead >= 1, queue >= 0, timeoutMs and maxHeapMiB > 0',
      );
    }
  }

  /** Jobs sent to threads (each thread runs the first of its jobs). */
  get running(): number {
    return this.slots.reduce((sum, s) => sum + s.jobs.length, 0);
  }

  get full(): boolean {
    const canStart =
      this.slots.some((s) => s.jobs.length < this.ahead) || this.slots.length < this.options.threads;
    return !canStart && this.waiting.length >= this.options.queue;
  }

  async decode(bytes: Uint8Array, limits: DecodeLimits): Promise<DecodedReports> {
    const { kind: _tlsrpt, ...decoded } = (await this.submit(bytes, limits, 'tlsrpt')) as DecodedInput & {
      kind: 'tlsrpt';
    };
    return decoded;
  }

  decodeAny(bytes: Uint8Array, limits: DecodeLimits): Promise<DecodedInput> {
    return this.submit(bytes, limits, 'any');
  }

  private submit(bytes: Uint8Array, limits: DecodeLimits, kinds: DecodeKinds): Promise<DecodedInput> {
    if (this.closed) return Promise.reject(new Error('report decoder: closed'));
    return new Promise((resolve, reject) => {
      const job: Pending = { id: this.nextId++, bytes, limits, kinds, resolve, reject };
      const slot = this.freeSlot();
      if (slot) this.start(slot, job);
      else if (this.waiting.length < this.options.queue) this.waiting.push(job);
      else reject(new DecoderBusyError());
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.waiting.splice(0)) job.reject(new Error('report decoder: closed'));
    await Promise.all(
      [...this.slots].map((slot) => this.end(slot, new Error('report decoder: closed before the job ended'))),
    );
  }

  /** An idle thread, else a new one when there are fewer than `threads`, else the least busy with room. */
  private freeSlot(): Slot | undefined {
    const idle = this.slots.find((s) => s.jobs.length === 0);
    if (idle) return idle;
    if (this.slots.length < this.options.threads) return this.spawn();
    const least = this.slots.reduce<Slot | undefined>(
      (best, s) => (!best || s.jobs.length < best.jobs.length ? s : best),
      undefined,
    );
    return least && least.jobs.length < this.ahead ? least : undefined;
  }

  private spawn(): Slot {
    const worker = startWorker(this.options.workerUrl ?? DEFAULT_WORKER_URL, this.options.maxHeapMiB);
    const slot: Slot = { worker, ready: false, jobs: [] };
    worker.on('message', (message: DecodeReply | typeof DECODER_READY) => this.onMessage(slot, message));
    worker.on('error', (err: NodeJS.ErrnoException) => {
      const failure =
        err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? new DecodeLimitError(
              'INTAKE_DECODE_MEMORY',
              `decoding the report needed more than ${this.options.maxHeapMiB} MiB of memory`,
            )
          : new Error(`report decoder thread failed: ${err.message}`);
      void this.end(slot, failure);
    });
    worker.on('exit', (code) => {
      void this.end(slot, new Error(`report decoder thread exited with code ${code}`));
    });
    this.slots.push(slot);
    return slot;
  }

  private start(slot: Slot, job: Pending): void {
    if (slot.jobs.length === 0) clearTimeout(slot.timer); // the idle timer
    slot.jobs.push(job);
    slot.worker.ref();
    if (!slot.ready) return;
    this.send(slot, job);
    if (slot.jobs.length === 1) this.timeFirstJob(slot);
  }

  private send(slot: Slot, job: Pending): void {
    // A copy the thread can own (the caller's buffer may be a slice of a larger one).
    const bytes = new Uint8Array(job.bytes);
    slot.worker.postMessage({ id: job.id, bytes, limits: job.limits, kinds: job.kinds } satisfies DecodeJob, [
      bytes.buffer,
    ]);
  }

  /** The thread's first job (the one it runs) must be answered within timeoutMs. */
  private timeFirstJob(slot: Slot): void {
    clearTimeout(slot.timer);
    slot.timer = setTimeout(() => {
      const seconds = this.options.timeoutMs / 1000;
      void this.end(
        slot,
        new DecodeLimitError('INTAKE_DECODE_TIMEOUT', `decoding took more than ${seconds} s`),
      );
    }, this.options.timeoutMs);
  }

  private onMessage(slot: Slot, message: DecodeReply | typeof DECODER_READY): void {
    if (message === DECODER_READY) {
      slot.ready = true;
      for (const job of slot.jobs) this.send(slot, job);
      if (slot.jobs.length > 0) this.timeFirstJob(slot);
      return;
    }
    const index = slot.jobs.findIndex((job) => job.id === message.id);
    if (index === -1) return;
    const [job] = slot.jobs.splice(index, 1);
    if (index === 0) {
      clearTimeout(slot.timer);
      if (slot.jobs.length > 0) this.timeFirstJob(slot);
    }
    if (message.ok) job!.resolve(message.decoded);
    else job!.reject(errorFromReply(message.error));
    this.next(slot);
  }

  /** Give the thread waiting jobs up to `ahead`, or let it idle (it ends after idleMs). */
  private next(slot: Slot): void {
    while (slot.jobs.length < this.ahead && this.waiting.length > 0) this.start(slot, this.waiting.shift()!);
    if (slot.jobs.length > 0) return;
    slot.worker.unref();
    slot.timer = setTimeout(() => void this.end(slot), this.options.idleMs);
    slot.timer.unref();
  }

  /**
   * Take the thread out of the pool and terminate it; the job it was running, if any, fails with
   * `failure`, and the jobs sent after it (not begun: a thread runs one at a time) wait again.
   */
  private async end(slot: Slot, failure?: Error): Promise<void> {
    const index = this.slots.indexOf(slot);
    if (index === -1) return;
    this.slots.splice(index, 1);
    clearTimeout(slot.timer);
    const [running, ...notBegun] = slot.jobs.splice(0);
    if (running) running.reject(failure ?? new Error('report decoder: thread ended'));
    if (this.closed) for (const job of notBegun) job.reject(failure ?? new Error('report decoder: closed'));
    else this.waiting.unshift(...notBegun);
    // Jobs waiting for a thread get a new one.
    while (!this.closed && this.waiting.length > 0 && this.slots.length < this.options.threads) {
      this.next(this.spawn());
    }
    await slot.worker.terminate();
  }
}

/**
 * A thread's young generation: a decoded report is many short-lived objects (the XML's strings, the
 * element tree), and V8's default for a worker made every thread scavenge a quarter of its time.
 */
const YOUNG_GENERATION_MIB = 32;

/** A thread running `url` with a heap limit (and none of the process's Node options: it needs none). */
function startWorker(url: URL, maxHeapMiB: number): Worker {
  const options = {
    resourceLimits: { maxOldGenerationSizeMb: maxHeapMiB, maxYoungGenerationSizeMb: YOUNG_GENERATION_MIB },
    execArgv: [],
  };
  if (url.pathname.endsWith('.ts')) {
    // Under tsx (tests): in Node 20 the loader hooks of `--import tsx` do not apply to a worker's
    // entry file, so the thread registers tsx itself first.
    const tsx = import.meta.resolve('tsx/esm/api');
    const boot = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(url.href)}); })`;
    return new Worker(boot, { ...options, eval: true });
  }
  return new Worker(url, options);
}

/** Decoding on the calling thread (`threads: 0`): no queue, no time or memory limit of its own. */
export class InProcessDecoder implements ReportDecoder {
  running = 0;
  readonly full = false;

  async decode(bytes: Uint8Array, limits: DecodeLimits): Promise<DecodedReports> {
    this.running++;
    try {
      return await decodeReports(bytes, limits);
    } finally {
      this.running--;
    }
  }

  async decodeAny(bytes: Uint8Array, limits: DecodeLimits): Promise<DecodedInput> {
    this.running++;
    try {
      return await decodeInput(bytes, limits, 'any');
    } finally {
      this.running--;
    }
  }

  async close(): Promise<void> {}
}

export function createReportDecoder(settings: DecoderSettings): ReportDecoder {
  const threads = settings.decodeThreads ?? DECODER_DEFAULTS.threads;
  if (threads === 0) return new InProcessDecoder();
  return new ReportDecoderPool({
    threads,
    ahead: settings.decodeAhead ?? 1,
    queue: settings.decodeQueue ?? DECODER_DEFAULTS.queue,
    timeoutMs: (settings.decodeTimeoutSeconds ?? DECODER_DEFAULTS.timeoutSeconds) * 1000,
    maxHeapMiB: DECODER_DEFAULTS.maxHeapMiB,
    idleMs: DECODER_DEFAULTS.idleMs,
  });
}

const decoders = new WeakMap<DecoderSettings, ReportDecoder>();

/**
 * The process's decoder for these settings (one per settings object: every intake channel of a
 * `serve` process, which share `config.intake`, share one pool), made on first use.
 */
export function reportDecoderFor(settings: DecoderSettings): ReportDecoder {
  let decoder = decoders.get(settings);
  if (!decoder) {
    decoder = createReportDecoder(settings);
    decoders.set(settings, decoder);
  }
  return decoder;
}
