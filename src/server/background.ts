// The work of `mxguard serve` that must run once across every instance on one database (the monitor's
// schedule and the alert deliverer, ACME renewal, report retention, IMAP polling): it runs in the
// instance holding the store's lock BACKGROUND_LOCK (Store.tryLock). The others are on standby and ask
// again every LOCK_RETRY_MS; when the holder stops or dies (kill -9: PostgreSQL frees its session lock
// at once, SQLite's lease runs out) one of them takes over. A holder that loses the lock (its
// connection dropped) stops the work at once and goes back to asking.
import type { Logger } from 'pino';
import type { HeldLock, Store } from '../store/types.js';

/** The lock's name in the store. */
export const BACKGROUND_LOCK = 'background';
/** How often an instance on standby asks for the lock again. */
export const LOCK_RETRY_MS = 5000;

/** Work that is running and can be stopped. */
export interface Running {
  stop(): Promise<void>;
}

export interface BackgroundOptions {
  store: Pick<Store, 'tryLock'>;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Starts the work (each time this instance takes the lock); stopped when the lock goes. */
  start(): Promise<Running[]>;
  retryMs?: number;
}

/** Runs the once-work whenever this instance holds BACKGROUND_LOCK. */
export class BackgroundWork {
  private lock: HeldLock | undefined;
  private work: Running[] = [];
  private timer: NodeJS.Timeout | undefined;
  private attempt: Promise<void> | undefined;
  private said: 'this instance' | 'standby' | undefined;
  private stopping = false;

  constructor(private readonly options: BackgroundOptions) {}

  /** True while this instance holds the lock (and runs the work). */
  get active(): boolean {
    return this.lock !== undefined;
  }

  /**
   * The first try: when the lock is free, the work starts before this resolves (a failure to start it
   * rejects, as serve's start does); else this instance is on standby and keeps asking.
   */
  async begin(): Promise<void> {
    this.attempt = this.take(true);
    await this.attempt;
  }

  /** Stops the work (if this instance runs it), frees the lock, stops asking. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    await this.attempt?.catch(() => undefined);
    await this.stopWork();
    const lock = this.lock;
    this.lock = undefined;
    await lock?.release();
  }

  private async take(first: boolean): Promise<void> {
    if (this.stopping) return;
    let lock: HeldLock | undefined;
    try {
      lock = await this.options.store.tryLock(BACKGROUND_LOCK);
    } catch (err) {
      this.options.logger.warn(
        { err: (err as Error).message },
        'background work: cannot ask the store for the lock; trying again',
      );
      return this.retry();
    }
    if (lock === undefined) {
      this.say('standby', 'background work: standby (another instance runs it)');
      return this.retry();
    }
    if (this.stopping) return lock.release();
    this.lock = lock;
    this.say('this instance', 'background work: this instance');
    try {
      this.work = await this.options.start();
    } catch (err) {
      this.lock = undefined;
      await lock.release();
      if (first) throw err;
      this.options.logger.error(
        { err: (err as Error).message },
        'background work: cannot start it; trying again',
      );
      this.said = undefined;
      return this.retry();
    }
    lock.lost.then(() => this.lost(lock));
  }

  private async lost(lock: HeldLock): Promise<void> {
    if (this.lock !== lock || this.stopping) return;
    this.lock = undefined;
    this.said = undefined;
    this.options.logger.warn('background work: the lock was lost (database connection?); stopping it');
    await this.stopWork();
    this.retry();
  }

  private async stopWork(): Promise<void> {
    const work = this.work;
    this.work = [];
    const results = await Promise.allSettled(work.map((w) => w.stop()));
    for (const r of results) {
      if (r.status === 'rejected')
        this.options.logger.error(
          { err: (r.reason as Error)?.message },
          'background work: error while stopping',
        );
    }
  }

  private retry(): void {
    if (this.stopping) return;
    this.timer = setTimeout(() => {
      this.attempt = this.take(false).catch((err: Error) =>
        this.options.logger.error({ err: err.message }, 'background work: taking over failed'),
      );
    }, this.options.retryMs ?? LOCK_RETRY_MS);
    this.timer.unref();
  }

  /** Logs a change of role once (not on every retry). */
  private say(role: 'this instance' | 'standby', message: string): void {
    if (this.said === role) return;
    this.said = role;
    this.options.logger.info({ background: role }, message);
  }
}
