// Several processes on one SQLite store (serve's workers, the `domain` CLI, a second serve on the same
// file): the domain change feed and the cross-process lock of the Store interface (types.ts).
//
// Change feed: every domain write bumps a counter row in `settings` (DOMAINS_VERSION_SETTING) in the
// same transaction; watchers read that one row every WATCH_POLL_MS and call their listener when it
// moved. (PRAGMA data_version also moves with every report and fetch-log commit, so it cannot say
// "the domains changed"; one primary-key read is as cheap.)
//
// Lock: a lease row `cluster.lock.<name>` in `settings` holding {holder, until, host, pid}: taken in an
// IMMEDIATE transaction when absent or expired, renewed every renewMs while held, deleted on release
// or close. A holder that dies stops renewing, and the lease is free once `until` passes (leaseMs at
// most); at once when the holder was a process on this machine that no longer exists (a serve
// restarted after kill -9 need not wait for its own old lease).
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type Database from 'better-sqlite3';
import { type DomainWatch, type HeldLock, storeInvalid } from './types.js';

/** The settings row counting domain changes. */
export const DOMAINS_VERSION_SETTING = 'cluster.domainsVersion';
/** Lease rows: this prefix and the lock's name. */
export const LOCK_SETTING_PREFIX = 'cluster.lock.';
/** How often a watcher reads the counter. */
export const WATCH_POLL_MS = 250;

export interface LeaseTiming {
  /** How long a lease lasts without renewal: how long a dead holder keeps the lock. */
  leaseMs: number;
  /** How often the holder renews it (well under leaseMs). */
  renewMs: number;
}

export const SQLITE_LEASE: LeaseTiming = { leaseMs: 15_000, renewMs: 5_000 };

/** Lock names: what both stores accept (types.ts tryLock). */
const LOCK_NAME = /^[a-z0-9._-]{1,64}$/;

/** The name checked, as the stores' tryLock takes it. */
export function validLockName(name: string): string {
  if (typeof name !== 'string' || !LOCK_NAME.test(name))
    throw storeInvalid(`lock name ${JSON.stringify(name)}: use 1-64 characters of [a-z0-9._-]`);
  return name;
}

/** Inside the transaction of a domain write: tell the watchers of every process. */
export function bumpDomainsVersion(db: Database.Database): void {
  db.prepare(
    `INSERT INTO settings (key, value) VALUES (?, '1')
     ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1`,
  ).run(DOMAINS_VERSION_SETTING);
}

interface Lease {
  holder: string;
  until: number;
  host?: string;
  pid?: number;
}

/** Whether the process `pid` exists (EPERM: it does, as another user's). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A lease nobody holds any more: run out, or its holder, on this machine, is gone. */
function leaseFree(lease: Lease, now: number): boolean {
  if (lease.until <= now) return true;
  return lease.host === hostname() && Number.isInteger(lease.pid) && !processExists(lease.pid as number);
}

/** The change feed and the locks of one SqliteStore; close() ends them before the database closes. */
export class SqliteCluster {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly held = new Set<{ end(asLost: boolean): Promise<void> }>();

  constructor(
    private readonly db: Database.Database,
    /** The store's guard: throws STORE_IO when the store is closed or SQLite fails. */
    private readonly use: <T>(step: () => T) => T,
    private readonly timing: LeaseTiming = SQLITE_LEASE,
    private readonly clock: () => number = Date.now,
  ) {}

  async watchDomains(listener: () => void): Promise<DomainWatch> {
    let seen = this.domainsVersion();
    const timer = setInterval(() => {
      let now: string | undefined;
      try {
        now = this.domainsVersion();
      } catch {
        return; // closed or busy: the next poll tries again
      }
      if (now !== seen) {
        seen = now;
        listener();
      }
    }, WATCH_POLL_MS);
    timer.unref();
    this.timers.add(timer);
    return {
      stop: async () => {
        clearInterval(timer);
        this.timers.delete(timer);
      },
    };
  }

  async tryLock(name: string): Promise<HeldLock | undefined> {
    const key = LOCK_SETTING_PREFIX + validLockName(name);
    const holder = randomUUID();
    const taken = this.use(() =>
      this.db
        .transaction(() => {
          const lease = this.readLease(key);
          if (lease && !leaseFree(lease, this.clock())) return false;
          this.writeLease(key, holder);
          return true;
        })
        .immediate(),
    );
    if (!taken) return undefined;

    let markLost: () => void = () => undefined;
    const lost = new Promise<void>((resolve) => {
      markLost = resolve;
    });
    let until = this.clock() + this.timing.leaseMs;
    let done = false;
    const finish = () => {
      done = true;
      clearInterval(timer);
      this.timers.delete(timer);
      this.held.delete(entry);
    };
    const drop = () => {
      if (done) return;
      finish();
      markLost();
    };
    const renew = () => {
      if (done) return;
      try {
        const mine = this.use(() =>
          this.db
            .transaction(() => {
              if (this.readLease(key)?.holder !== holder) return false;
              this.writeLease(key, holder);
              return true;
            })
            .immediate(),
        );
        if (!mine) return drop();
        until = this.clock() + this.timing.leaseMs;
      } catch {
        // Busy or closed: still ours until the lease runs out, then another process may take it.
        if (this.clock() >= until) drop();
      }
    };
    const timer = setInterval(renew, this.timing.renewMs);
    timer.unref();
    this.timers.add(timer);
    /** Ends the lock and deletes its lease row; `asLost` when the store closes under the holder. */
    const end = async (asLost: boolean) => {
      if (done) return;
      finish();
      if (asLost) markLost();
      try {
        this.use(() =>
          this.db
            .transaction(() => {
              if (this.readLease(key)?.holder === holder)
                this.db.prepare('DELETE FROM settings WHERE key = ?').run(key);
            })
            .immediate(),
        );
      } catch {
        // The lease runs out by itself.
      }
    };
    const entry = { end };
    this.held.add(entry);
    return { lost, release: () => end(false) };
  }

  /**
   * Before the database closes: held locks freed (the others need not wait for the lease) and their
   * `lost` resolved, watchers ended.
   */
  async close(): Promise<void> {
    for (const lock of [...this.held]) await lock.end(true);
    for (const timer of this.timers) clearInterval(timer);
    this.timers.clear();
  }

  private domainsVersion(): string {
    return this.use(
      () =>
        this.db
          .prepare<[string], string>('SELECT value FROM settings WHERE key = ?')
          .pluck()
          .get(DOMAINS_VERSION_SETTING) ?? '0',
    );
  }

  private readLease(key: string): Lease | undefined {
    const value = this.db
      .prepare<[string], string>('SELECT value FROM settings WHERE key = ?')
      .pluck()
      .get(key);
    if (value === undefined) return undefined;
    try {
      const lease = JSON.parse(value) as Lease;
      return typeof lease.holder === 'string' && Number.isFinite(lease.until) ? lease : undefined;
    } catch {
      return undefined; // not a lease (written by hand?): free to take
    }
  }

  private writeLease(key: string, holder: string): void {
    const lease: Lease = {
      holder,
      until: this.clock() + this.timing.leaseMs,
      host: hostname(),
      pid: process.pid,
    };
    this.db
      .prepare(
        'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      )
      .run(key, JSON.stringify(lease));
  }
}
