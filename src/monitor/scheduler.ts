// When watched domains are checked (issue 12): every domain on start, then each again every interval
// (shortened by up to 10 % at random, so a thousand domains added at once drift apart), at most
// `concurrency` checks at once, never two checks of one domain at the same time, and on demand
// (checkNow, ahead of the scheduled ones). The domain list is read again at least once a minute, so
// domains added or removed while serve runs are picked up. Time comes from an injected clock: the tests
// drive it by hand, nothing waits for real.

/** The clock the scheduler reads and sets its one timer with. */
export interface SchedulerClock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const SYSTEM_CLOCK: SchedulerClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** At most this long between two readings of the domain list. */
export const DOMAIN_LIST_REFRESH_MS = 60_000;
/** The interval is shortened by up to this fraction, at random, for each check. */
export const JITTER = 0.1;

export type Trigger = 'start' | 'schedule' | 'manual';

export interface SchedulerOptions<R> {
  /** The watched domains (store.listDomains()). */
  domains(): Promise<string[]>;
  check(domain: string, trigger: Trigger): Promise<R>;
  intervalMs: number;
  concurrency: number;
  clock?: SchedulerClock;
  /** In [0, 1); default Math.random. */
  random?: () => number;
  /** A scheduled check or a domain-list reading that failed (the schedule goes on). */
  onError?(error: unknown, domain?: string): void;
}

interface Slot {
  /** When the next scheduled check is due. */
  due: number;
  /** The first check of a domain seen at start is `start`, later ones `schedule`. */
  trigger: Trigger;
  /** The check under way (settles, never rejects). */
  running?: Promise<void>;
  /** On-demand checks of the domain asked for and not started yet: no scheduled one meanwhile. */
  manualWaiting: number;
  /** Settles when the last on-demand check asked for is done. */
  tail?: Promise<void>;
}

export class SchedulerStopped extends Error {
  constructor() {
    super('the monitor is stopping');
    this.name = 'SchedulerStopped';
  }
}

export class Scheduler<R> {
  private readonly clock: SchedulerClock;
  private readonly random: () => number;
  private readonly slots = new Map<string, Slot>();
  /** On-demand checks waiting for a free place, served before scheduled ones. */
  private readonly manual: Array<() => void> = [];
  private active = 0;
  private timer: unknown;
  private listedAt = Number.NEGATIVE_INFINITY;
  private listing: Promise<void> | undefined;
  private started = false;
  private stopping = false;
  private readonly running = new Set<Promise<unknown>>();

  constructor(private readonly options: SchedulerOptions<R>) {
    this.clock = options.clock ?? SYSTEM_CLOCK;
    this.random = options.random ?? Math.random;
  }

  /** Reads the domains and starts checking them all (trigger `start`), then on schedule. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.wake();
  }

  /** Checks the domain now, after any check of it under way or asked for; resolves with this check's result. */
  async checkNow(domain: string): Promise<R> {
    if (this.stopping) throw new SchedulerStopped();
    let slot = this.slots.get(domain);
    if (!slot) {
      // Not listed (yet): checked now, then on schedule if the next reading of the list has it.
      slot = { due: Number.POSITIVE_INFINITY, trigger: 'schedule', manualWaiting: 0 };
      this.slots.set(domain, slot);
    }
    slot.manualWaiting++;
    const prior = slot.tail;
    const mine = (async () => {
      try {
        // Never two checks of one domain at once: after the one under way (its result may predate a fix).
        await prior;
        while (slot.running) await slot.running;
        await this.place();
      } finally {
        slot.manualWaiting--;
      }
      if (this.stopping) {
        this.release();
        throw new SchedulerStopped();
      }
      return this.run(domain, 'manual', slot);
    })();
    slot.tail = mine.then(
      () => undefined,
      () => undefined,
    );
    return mine;
  }

  /** Ends the schedule; resolves once the checks under way are done (waiting on-demand checks are refused). */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    for (const waiting of this.manual.splice(0)) waiting();
    await this.listing?.catch(() => undefined);
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Checks under way (for tests and metrics). */
  get inFlight(): number {
    return this.active;
  }

  // ---- internals ----

  /** A place among `concurrency`; on-demand checks take the next free one before scheduled ones. */
  private place(): Promise<void> {
    if (this.stopping || this.active < this.options.concurrency) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.manual.push(() => {
        this.active++;
        resolve();
      });
    });
  }

  private release(): void {
    this.active--;
    const next = this.manual.shift();
    if (next) next();
    else this.pump();
  }

  /** Runs one check in a place already taken, then schedules the domain's next one. */
  private run(domain: string, trigger: Trigger, slot: Slot): Promise<R> {
    const promise = Promise.resolve().then(() => this.options.check(domain, trigger));
    const tracked = promise.then(
      () => undefined,
      (err) => {
        if (trigger !== 'manual') this.options.onError?.(err, domain);
      },
    );
    slot.running = tracked;
    this.running.add(tracked);
    void tracked.finally(() => {
      this.running.delete(tracked);
      slot.running = undefined;
      slot.trigger = 'schedule';
      slot.due = this.clock.now() + this.nextInterval();
      this.release();
      this.arm();
    });
    return promise;
  }

  private nextInterval(): number {
    return Math.round(this.options.intervalMs * (1 - JITTER * this.random()));
  }

  /** Starts every due domain there is a place for, the longest overdue first. */
  private pump(): void {
    if (this.stopping || !this.started) return;
    const now = this.clock.now();
    const due = [...this.slots.entries()]
      .filter(([, s]) => s.running === undefined && s.manualWaiting === 0 && s.due <= now)
      .sort((a, b) => a[1].due - b[1].due);
    for (const [domain, slot] of due) {
      if (this.active >= this.options.concurrency || this.manual.length > 0) break;
      this.active++;
      void this.run(domain, slot.trigger, slot).catch(() => undefined);
    }
  }

  /** The timer: at the next due check, or the next reading of the domain list. */
  private arm(): void {
    if (this.stopping || !this.started) return;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    const now = this.clock.now();
    let next = this.listedAt + Math.min(DOMAIN_LIST_REFRESH_MS, this.options.intervalMs);
    // With every place taken, the next check starts when one frees up (release), not on a timer.
    if (this.active < this.options.concurrency) {
      for (const s of this.slots.values()) {
        if (s.running === undefined && s.manualWaiting === 0) next = Math.min(next, s.due);
      }
    }
    this.timer = this.clock.setTimeout(() => this.wake(), Math.max(0, next - now));
  }

  private wake(): void {
    this.timer = undefined;
    if (this.stopping) return;
    const now = this.clock.now();
    if (now >= this.listedAt + Math.min(DOMAIN_LIST_REFRESH_MS, this.options.intervalMs) && !this.listing) {
      this.listing = this.refresh(now).finally(() => {
        this.listing = undefined;
        this.pump();
        this.arm();
      });
      return;
    }
    this.pump();
    this.arm();
  }

  /** Adds new domains (due now) and forgets removed ones. */
  private async refresh(now: number): Promise<void> {
    this.listedAt = now;
    let domains: string[];
    try {
      domains = await this.options.domains();
    } catch (err) {
      this.options.onError?.(err);
      return;
    }
    const first = !this.everListed;
    this.everListed = true;
    const keep = new Set(domains);
    for (const d of domains) {
      if (!this.slots.has(d))
        this.slots.set(d, { due: now, trigger: first ? 'start' : 'schedule', manualWaiting: 0 });
    }
    for (const [d, s] of this.slots) {
      if (!keep.has(d) && s.running === undefined && s.manualWaiting === 0) this.slots.delete(d);
    }
  }

  private everListed = false;
}
