// `mxguard worker`: checks the domains of a batch in the store's check queue (issue 16; `mxguard check
// --enqueue` fills it), side by side with any number of other workers on any machine that reaches the same
// database. A worker claims a few domains at a time with a lease (src/store/check-queue.ts), checks them
// exactly as `check --file` would (src/cli/check-run.ts: the same options, presets and resolver flags),
// writes each result, and renews its lease while it works; a worker that dies stops renewing, and its
// domains go to the others once the lease has run out. It ends when the batch has nothing left to check
// (or keeps waiting with --wait). SIGTERM or Ctrl-C: the checks in progress are finished and written, the
// domains not started are handed back at once; a second signal hands back the ones in progress too.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Command } from 'commander';
import type { DomainCheck } from '../check/run.js';
import {
  type CheckBatchCounts,
  type CheckQueue,
  type ClaimedCheck,
  DEFAULT_BATCH,
  type FinishedCheck,
  RESULT_MAX_BYTES,
} from '../store/check-queue.js';
import { StoreError } from '../store/types.js';
import { batchOption } from './check-queue.js';
import {
  addCheckRunOptions,
  type CheckRun,
  type CheckRunOptions,
  prepareCheckRun,
  publicReport,
} from './check-run.js';
import { type StoreOptions, storeOptions, withStore } from './store-options.js';
import { intOption, printJson } from './util.js';

interface WorkerOptions extends CheckRunOptions, StoreOptions {
  batch?: string;
  lease: string;
  wait?: boolean;
  json?: boolean;
}

/** Results written together (one transaction), or every FLUSH_MS, whichever comes first. */
const FLUSH_AT = 50;
const FLUSH_MS = 500;
/** Progress on standard error this often. */
const PROGRESS_MS = 5000;
/** Longest wait between two attempts while the database cannot be reached. */
const RETRY_MAX_MS = 10_000;

export function register(program: Command): void {
  const command = program
    .command('worker')
    .description(
      'check the domains of a batch in the check queue of a database (filled by mxguard check --enqueue), beside other workers on any machine',
    )
    .option('--batch <name>', `the batch to work on (without it: "${DEFAULT_BATCH}", as check --enqueue)`)
    .option(
      '--lease <seconds>',
      "how long a claimed domain stays this worker's without a renewal (renewed every third of it): a worker that dies hands its domains over after this",
      '60',
    )
    .option(
      '--wait',
      'when the batch has nothing left, wait for more domains instead of ending (until SIGTERM)',
    )
    .option('--json', 'print the summary at the end as JSON');
  storeOptions(command);
  addCheckRunOptions(command).addHelpText(
    'after',
    `
Each domain is checked as \`mxguard check --file\` checks it, with the same options; its result is written to
the database as the NDJSON line check --file would print (read them with mxguard check --results). Every domain
is checked once: a worker holds the domains it claimed for --lease seconds and renews that while it works; one
that dies (kill -9, a lost machine) leaves its domains to the others once its lease has run out, and a result
is written only by the worker that holds the domain. The worker ends when no domain of the batch is left
queued or held by another worker (with --wait it keeps looking for new ones). Progress goes to standard error.
While the database cannot be reached, it keeps its finished results and tries again (every 0.5 s to 10 s).
SIGTERM / Ctrl-C: finishes the checks in progress and hands back the rest; a second signal hands back all.
Machines sharing a queue need clocks that agree to well within --lease (NTP).
Exit status: 0 the worker ran to the end (whatever the domains' results), 2 it could not run.

Examples:
  $ mxguard check --file domains.txt --enqueue --batch survey --database postgres://mxguard@db/mxguard
  $ mxguard worker --batch survey --database postgres://mxguard@db/mxguard --concurrency 64   # on each machine
  $ mxguard check --results --batch survey --database postgres://mxguard@db/mxguard > results.ndjson`,
  );
  command.action(async (opts: WorkerOptions) => runWorker(opts));
}

interface WorkerSummary {
  holder: string;
  batch: string;
  /** Domains this worker checked. */
  checked: number;
  /** Results it wrote. */
  written: number;
  /** Results not written: the lease had run out and another worker held the domain. */
  lost: number;
  /** Domains handed back unchecked (stopped by a signal). */
  handedBack: number;
  seconds: number;
  batchCounts: CheckBatchCounts;
}

async function runWorker(opts: WorkerOptions): Promise<void> {
  const batch = batchOption(opts.batch);
  const leaseMs = intOption('--lease', opts.lease, 2, 86_400) * 1000;
  const run = await prepareCheckRun(opts, { bulk: true });
  const summary = await withStore(opts, (store) =>
    new QueueWorker(store.checkQueue(), run, batch, leaseMs, opts.wait === true).work(),
  );
  const { checked, written, lost, handedBack, seconds, batchCounts: c } = summary;
  process.stderr.write(
    `worker ${summary.holder}: ${checked} checked, ${written} written, ${lost} lost to another worker, ` +
      `${handedBack} handed back in ${seconds.toFixed(1)} s; batch ${batch}: ${c.queued} queued, ` +
      `${c.claimed} being checked, ${c.done} done\n`,
  );
  if (opts.json) printJson(summary);
}

/** This process's name in the queue: host, process id and a random part (a restarted process is another). */
function holderName(): string {
  const host =
    hostname()
      .replace(/[^\x21-\x7e]/g, '_')
      .slice(0, 100) || 'host';
  return `${host}/${process.pid}/${randomBytes(4).toString('hex')}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class QueueWorker {
  private readonly holder = holderName();
  private readonly started = Date.now();
  /** Claimed and not started, in list order. */
  private waiting: Array<{ job: ClaimedCheck; claimedAt: number }> = [];
  /** Being checked now. */
  private readonly inProgress = new Set<ClaimedCheck>();
  /** Checked, result not yet written. */
  private finished: FinishedCheck[] = [];
  /** Claimed by this worker and not yet written or handed back. */
  private holding = 0;
  private refilling: Promise<void> | undefined;
  private lookingAtCounts: Promise<boolean> | undefined;
  private writing: Promise<void> = Promise.resolve();
  private stopping = false;
  private checked = 0;
  private written = 0;
  private lost = 0;
  private handedBack = 0;

  constructor(
    private readonly queue: CheckQueue,
    private readonly run: CheckRun,
    private readonly batch: string,
    private readonly leaseMs: number,
    private readonly keepWaiting: boolean,
  ) {}

  async work(): Promise<WorkerSummary> {
    const timers = [
      setInterval(() => void this.renew(), this.leaseMs / 3),
      // A failed write stays in `writing`: the next flush awaited by a slot or at the end reports it.
      setInterval(() => void this.flush().catch(() => {}), FLUSH_MS),
      setInterval(() => void this.progress(), PROGRESS_MS),
    ];
    const onSignal = () => this.signalled();
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    try {
      // A slot that fails (the database refused a write) stops the others; the first failure is reported.
      let failure: unknown;
      const slots = Array.from({ length: this.run.concurrency }, () =>
        this.slot().catch((err: unknown) => {
          this.stopping = true;
          failure ??= err;
        }),
      );
      await Promise.all(slots);
      if (failure !== undefined) throw failure;
      await this.flush();
      await this.handBack(this.waiting.map((w) => w.job));
      this.waiting = [];
    } finally {
      for (const timer of timers) clearInterval(timer);
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    }
    return {
      holder: this.holder,
      batch: this.batch,
      checked: this.checked,
      written: this.written,
      lost: this.lost,
      handedBack: this.handedBack,
      seconds: (Date.now() - this.started) / 1000,
      batchCounts: await this.retrying(() => this.queue.counts(this.batch)),
    };
  }

  /** One of --concurrency loops: the next claimed domain, checked, its result queued for writing. */
  private async slot(): Promise<void> {
    while (!this.stopping) {
      const job = this.waiting.shift()?.job ?? (await this.refill());
      if (job === undefined) {
        if (await this.batchDone()) return;
        await sleep(Math.min(2000, this.leaseMs / 4));
        continue;
      }
      this.inProgress.add(job);
      const result = await this.run.check(job.domain);
      this.inProgress.delete(job);
      this.checked++;
      this.finished.push({ job, result: resultLine(result) });
      if (this.finished.length >= FLUSH_AT) await this.flush();
    }
  }

  /** Claims up to --concurrency more domains (one claim at a time for all slots); the next one, if any. */
  private async refill(): Promise<ClaimedCheck | undefined> {
    this.refilling ??= (async () => {
      const jobs = await this.retrying(() =>
        this.queue.claim(
          this.batch,
          this.holder,
          { limit: this.run.concurrency, leaseMs: this.leaseMs },
          new Date(),
        ),
      );
      this.holding += jobs.length;
      const claimedAt = Date.now();
      this.waiting.push(...jobs.map((job) => ({ job, claimedAt })));
    })().finally(() => {
      this.refilling = undefined;
    });
    await this.refilling;
    return this.stopping ? undefined : this.waiting.shift()?.job;
  }

  /**
   * Nothing left for this worker: nothing queued, and nothing held but by this worker (a domain another worker
   * holds may still come back to us when that worker dies). With --wait: never. Slots asking at the same time
   * share one look at the counts (one query, however many slots are idle).
   */
  private batchDone(): Promise<boolean> {
    if (this.keepWaiting) return Promise.resolve(false);
    this.lookingAtCounts ??= this.retrying(() => this.queue.counts(this.batch))
      .then((counts) => counts.queued === 0 && counts.claimed <= this.holding)
      .finally(() => {
        this.lookingAtCounts = undefined;
      });
    return this.lookingAtCounts;
  }

  /** Writes the finished results (one transaction), after any write still running. */
  private flush(): Promise<void> {
    const finished = this.finished;
    this.finished = [];
    if (finished.length === 0) return this.writing;
    this.writing = this.writing.then(async () => {
      const written = await this.retrying(() => this.queue.complete(this.holder, finished, new Date()));
      this.written += written.length;
      this.lost += finished.length - written.length;
      this.holding -= finished.length;
    });
    return this.writing;
  }

  /** Extends the lease of everything held; domains not started that another worker took over are dropped. */
  private async renew(): Promise<void> {
    if (this.holding === 0) return;
    const asked = Date.now();
    try {
      const held = new Set((await this.queue.renew(this.holder, this.leaseMs, new Date())).map((j) => j.id));
      const gone = this.waiting.filter((w) => w.claimedAt < asked && !held.has(w.job.id));
      if (gone.length === 0) return;
      this.waiting = this.waiting.filter((w) => !gone.includes(w));
      this.holding -= gone.length;
      this.lost += gone.length;
      process.stderr.write(
        `worker: ${gone.length} domains not started went to another worker (lease ran out)\n`,
      );
    } catch (err) {
      // The next renewal tries again; a lease that runs out meanwhile only means another worker may check it.
      process.stderr.write(`worker: could not renew the lease: ${(err as Error).message}\n`);
    }
  }

  private async handBack(jobs: ClaimedCheck[]): Promise<void> {
    if (jobs.length === 0) return;
    this.handedBack += await this.retrying(() => this.queue.release(this.holder, jobs));
    this.holding -= jobs.length;
  }

  /** First signal: finish what is in progress, hand back the rest. Second: hand back everything and leave. */
  private signalled(): void {
    if (!this.stopping) {
      this.stopping = true;
      process.stderr.write(
        `worker: stopping: finishing ${this.inProgress.size} checks in progress, handing back ${this.waiting.length} not started\n`,
      );
      return;
    }
    process.stderr.write(`worker: stopping now: handing back ${this.inProgress.size} checks in progress\n`);
    void (async () => {
      try {
        await this.flush();
        await this.handBack([...this.inProgress, ...this.waiting.map((w) => w.job)]);
      } finally {
        process.exit(130);
      }
    })();
  }

  private async progress(): Promise<void> {
    try {
      const c = await this.queue.counts(this.batch);
      const rate = this.checked / Math.max(0.001, (Date.now() - this.started) / 1000);
      process.stderr.write(
        `worker: ${this.checked} checked (${rate.toFixed(1)}/s), ${this.inProgress.size} in progress; ` +
          `batch ${this.batch}: ${c.queued} queued, ${c.claimed} being checked, ${c.done} done\n`,
      );
    } catch {
      // progress is best effort; the work's own calls report a database that cannot be reached
    }
  }

  /** Runs a queue call again while the database cannot be reached (STORE_UNAVAILABLE), waiting longer each time. */
  private async retrying<T>(call: () => Promise<T>): Promise<T> {
    for (let delay = 500; ; delay = Math.min(RETRY_MAX_MS, delay * 2)) {
      try {
        return await call();
      } catch (err) {
        if (!(err instanceof StoreError) || err.code !== 'STORE_UNAVAILABLE') throw err;
        process.stderr.write(
          `worker: database unreachable, trying again in ${delay / 1000} s: ${err.message}\n`,
        );
        await sleep(delay);
      }
    }
  }
}

/** The NDJSON line `check --file --json` prints for the domain; a result too large to keep says so instead. */
function resultLine(result: DomainCheck): string {
  const line = JSON.stringify(publicReport(result));
  if (Buffer.byteLength(line) <= RESULT_MAX_BYTES) return line;
  return JSON.stringify({
    domain: result.domain,
    status: 'error',
    findings: [],
    error: `the result is larger than ${RESULT_MAX_BYTES} bytes`,
  });
}
