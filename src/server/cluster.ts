// The node:cluster side of `mxguard serve`: the messages between primary and workers, and the primary's
// WorkerPool that forks the HTTP workers, replaces each one that dies after a pause that doubles from
// 1 s to 30 s while they keep dying (RestartBackoff), gives up after RESTART.maxInARow deaths in a row
// or when a worker reports that it cannot start, and stops them gracefully.
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';

/** A worker listens (with its URLs). */
export const CLUSTER_LISTENING = 'mxguard:listening';
/** A worker cannot start (with the message, and whether it is a StartError). */
export const CLUSTER_FAILED = 'mxguard:failed';
/** The primary asks a worker to shut down gracefully. */
export const CLUSTER_SHUTDOWN = 'mxguard:shutdown';

/** Serve cannot start or keep going, for a reason no restart helps (port taken, store unreadable): exit status 2. */
export class StartError extends Error {}

/** How serve restarts workers that die (RestartBackoff). */
export const RESTART = {
  /** The first pause before a restart; it doubles with each death in a row... */
  firstMs: 1000,
  /** ...up to this. */
  maxMs: 30_000,
  /** Deaths at least this far apart are not "in a row" (the workers stayed up a while). */
  stableMs: 60_000,
  /** Restarts in a row before serve gives up (pauses 1+2+4+8+16+30+30+30 s: two minutes of trying). */
  maxInARow: 8,
} as const;

/** The pause before restarting a worker that died, or undefined to give up. */
export class RestartBackoff {
  private inARow = 0;
  private lastDeathMs: number | undefined;

  /** Counts a death at `nowMs`; the pause before the restart, or undefined after too many in a row. */
  next(nowMs: number): number | undefined {
    if (this.lastDeathMs !== undefined && nowMs - this.lastDeathMs >= RESTART.stableMs) this.inARow = 0;
    this.lastDeathMs = nowMs;
    this.inARow++;
    if (this.inARow > RESTART.maxInARow) return undefined;
    return Math.min(RESTART.maxMs, RESTART.firstMs * 2 ** (this.inARow - 1));
  }

  get deathsInARow(): number {
    return this.inARow;
  }
}

interface WorkerMessage {
  type?: string;
  urls?: { http: string; https?: string };
  message?: string;
  usage?: boolean;
}

/**
 * The cluster workers: started together, each replaced when it dies (RestartBackoff), stopped
 * gracefully. A worker that reports CLUSTER_FAILED cannot start (port taken, store unreadable), so
 * the pool gives up at once: start() rejects, or `failed` resolves, with that message.
 */
export class WorkerPool {
  private stopping = false;
  private gaveUp = false;
  private readonly listening = new Set<number>();
  private readonly backoff = new RestartBackoff();
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  private started: ((urls: { http: string; https?: string }) => void) | undefined;
  private startFailed: ((err: Error) => void) | undefined;
  private failWith: ((err: Error) => void) | undefined;
  /** Resolves with the reason when the pool gives up after start(). */
  readonly failed: Promise<Error>;

  /** `graceMs`: how long a worker gets to finish its requests on stop() before it is killed. */
  constructor(
    private readonly size: number,
    private readonly logger: Logger,
    private readonly graceMs: number,
  ) {
    this.failed = new Promise((resolve) => {
      this.failWith = resolve;
    });
    // IPC to a worker that is exiting fails with EPIPE: nothing to do about it but note it.
    cluster.on('fork', (worker: Worker) =>
      worker.on('error', (err: Error) =>
        this.logger.debug({ err: err.message, workerPid: worker.process.pid }, 'IPC error'),
      ),
    );
    cluster.on('exit', (worker: Worker, code, signal) => this.exited(worker, code, signal));
  }

  /** Fork every worker; resolves when all listen, rejects when the pool gives up first. */
  start(): Promise<{ http: string; https?: string }> {
    return new Promise((resolve, reject) => {
      this.started = resolve;
      this.startFailed = reject;
      for (let i = 0; i < this.size; i++) this.fork();
    });
  }

  private fork(): void {
    const worker = cluster.fork();
    this.logger.info({ workerPid: worker.process.pid }, 'worker started');
    worker.on('message', (message: WorkerMessage) => {
      if (message?.type === CLUSTER_LISTENING && message.urls) {
        this.listening.add(worker.id);
        this.logger.info({ workerPid: worker.process.pid }, 'worker listening');
        if (this.listening.size === this.size && this.started) {
          this.started(message.urls);
          this.started = undefined;
          this.startFailed = undefined;
        }
      } else if (message?.type === CLUSTER_FAILED) {
        // The worker cannot start: another one would fail the same way.
        const text = message.message ?? 'a worker process could not start';
        this.giveUp(message.usage ? new StartError(text) : new Error(text));
      }
    });
  }

  private exited(worker: Worker, code: number | null, signal: string | null): void {
    this.listening.delete(worker.id);
    if (this.stopping || this.gaveUp) return;
    const pid = worker.process.pid;
    const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
    const pause = this.backoff.next(Date.now());
    if (pause === undefined) {
      this.giveUp(
        new StartError(
          `serve: worker processes keep dying (${this.backoff.deathsInARow} in a row, the last one, ${pid}, ${how}); giving up`,
        ),
      );
      return;
    }
    this.logger.error(
      { workerPid: pid, code, signal, deathsInARow: this.backoff.deathsInARow, restartInMs: pause },
      `worker died; starting another in ${pause / 1000} s`,
    );
    // Not unref'd: with every worker gone, this timer is what keeps the primary going.
    const timer = setTimeout(() => {
      this.restartTimers.delete(timer);
      if (!this.stopping && !this.gaveUp) this.fork();
    }, pause);
    this.restartTimers.add(timer);
  }

  private giveUp(err: Error): void {
    if (this.gaveUp || this.stopping) return;
    this.gaveUp = true;
    for (const timer of this.restartTimers) clearTimeout(timer);
    this.logger.error({ err: err.message }, 'giving up on the worker processes');
    if (this.startFailed) this.startFailed(err);
    else this.failWith?.(err);
  }

  /** Ask every worker to shut down gracefully; kill those still there after the grace period. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const timer of this.restartTimers) clearTimeout(timer);
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.isDead()) return resolve();
            const timer = setTimeout(() => worker.kill('SIGKILL'), this.graceMs + 5000);
            worker.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            if (worker.isConnected()) worker.send({ type: CLUSTER_SHUTDOWN });
            else worker.kill('SIGTERM');
          }),
      ),
    );
  }
}
