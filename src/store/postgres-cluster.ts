// Several `serve` instances on one PostgreSQL database: the domain change feed and the cross-instance
// lock of the Store interface (types.ts), each on a dedicated connection outside the pool (a LISTEN
// and a session advisory lock belong to one session, and a pooled connection changes hands).
//
// Change feed: every domain write runs NOTIFY mxguard_domains inside its transaction, so the
// notification goes out when (and only if) the change commits. Each watchDomains() LISTENs on its own
// connection; when that connection drops it reconnects after a pause that doubles (FEED_RETRY) and
// then calls the listener once, since notifications sent meanwhile are lost.
//
// Lock: pg_try_advisory_lock(LOCK_CLASS, hashtext(name)) on a connection of its own, held as long as
// that session lives. A holder killed with -9 (or whose connection is ended) frees it at once; the
// holder learns it lost it when the connection errors, ends, or a heartbeat query fails (`lost`).
import pg from 'pg';
import { storeFailure } from './postgres-sql.js';
import { validLockName } from './sqlite-cluster.js';
import { type DomainWatch, type HeldLock, StoreError } from './types.js';

/** The channel of domain changes. */
export const DOMAINS_CHANNEL = 'mxguard_domains';
/** First key of the two-key advisory locks ("mxg" + 0x10; one-key locks live in another key space). */
export const LOCK_CLASS = 0x6d786710;
/** How long the change feed waits before reconnecting: first, then doubling up to max. */
export const FEED_RETRY = { firstMs: 250, maxMs: 10_000 } as const;
/** The application_name of the dedicated connections. */
export const FEED_APPLICATION = 'mxguard domain feed';
export const LOCK_APPLICATION = 'mxguard lock';
/** How often a dedicated connection is asked `SELECT 1` (a silent network loss shows up there). */
export const HEARTBEAT_MS = 5_000;

/** Inside the transaction of a domain write: wakes every instance's watchers when it commits. */
export async function notifyDomainsChanged(db: pg.ClientBase): Promise<void> {
  await db.query(`NOTIFY ${DOMAINS_CHANNEL}`);
}

const ignore = () => undefined;

/** The change feeds and locks of one PgStore; close() ends them before the pool ends. */
export class PgCluster {
  private readonly open = new Set<{ end(): Promise<void> }>();
  private closed = false;

  /** `config`: the pool's connection settings, used for the dedicated connections. */
  constructor(
    private readonly config: pg.ClientConfig,
    private readonly where: string,
  ) {}

  async watchDomains(listener: () => void): Promise<DomainWatch> {
    this.refuseWhenClosed();
    const feed = new ChangeFeed(this.connection('feed'), listener);
    const entry = { end: () => feed.stop() };
    this.open.add(entry);
    await feed.start();
    return {
      stop: async () => {
        this.open.delete(entry);
        await feed.stop();
      },
    };
  }

  async tryLock(name: string): Promise<HeldLock | undefined> {
    validLockName(name);
    this.refuseWhenClosed();
    const client = new pg.Client(this.connection('lock'));
    client.on('error', ignore);
    try {
      await client.connect();
      const result = await client.query<{ ok: boolean }>(
        'SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok',
        [LOCK_CLASS, name],
      );
      if (result.rows[0]?.ok !== true) {
        await client.end().catch(ignore);
        return undefined;
      }
    } catch (err) {
      await client.end().catch(ignore);
      throw storeFailure(err, this.where, `taking the lock ${name}`);
    }

    let markLost: () => void = ignore;
    const lost = new Promise<void>((resolve) => {
      markLost = resolve;
    });
    let done = false;
    const finish = () => {
      done = true;
      clearInterval(heartbeat);
      this.open.delete(entry);
    };
    /** The session is gone or in doubt: the lock may be someone else's now. */
    const drop = () => {
      if (done) return;
      finish();
      markLost();
      client.end().catch(ignore);
    };
    client.on('error', drop);
    client.on('end', drop);
    const heartbeat = setInterval(() => {
      client.query('SELECT 1').catch(drop);
    }, HEARTBEAT_MS);
    heartbeat.unref();
    const release = async () => {
      if (done) return;
      finish();
      // Unlocked before the session ends, so whoever tries next gets it at once.
      await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [LOCK_CLASS, name]).catch(ignore);
      await client.end().catch(ignore);
    };
    const entry = {
      end: async () => {
        if (done) return;
        markLost();
        await release();
      },
    };
    this.open.add(entry);
    return { lost, release };
  }

  /** Before the pool ends: watchers stopped, held locks freed (their `lost` resolved). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.open].map((o) => o.end()));
    this.open.clear();
  }

  /** `application_name` says what the connection is for, in pg_stat_activity. */
  private connection(purpose: 'feed' | 'lock'): pg.ClientConfig {
    // A query that hangs (a dead peer not yet noticed by TCP) counts as a failure after a heartbeat.
    return {
      ...this.config,
      keepAlive: true,
      query_timeout: HEARTBEAT_MS,
      application_name: purpose === 'feed' ? FEED_APPLICATION : LOCK_APPLICATION,
    };
  }

  private refuseWhenClosed(): void {
    if (this.closed) throw new StoreError('STORE_IO', `${this.where}: the store is closed`);
  }
}

/** One LISTEN connection that comes back after it drops. */
class ChangeFeed {
  private client: pg.Client | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private retryMs: number = FEED_RETRY.firstMs;
  private stopped = false;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly listener: () => void,
  ) {}

  /** The first connection: resolves once it listens, or once it failed (retrying in the background). */
  start(): Promise<void> {
    return this.connect(false);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeat);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(ignore);
  }

  private async connect(again: boolean): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client(this.config);
    this.client = client;
    client.on('error', () => this.dropped(client));
    client.on('end', () => this.dropped(client));
    client.on('notification', (message) => {
      if (message.channel === DOMAINS_CHANNEL) this.listener();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${DOMAINS_CHANNEL}`);
    } catch {
      this.dropped(client);
      return;
    }
    if (this.client !== client) return; // stopped or dropped meanwhile
    this.retryMs = FEED_RETRY.firstMs;
    this.heartbeat = setInterval(() => {
      client.query('SELECT 1').catch(() => this.dropped(client));
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
    // Changes made while we were away sent notifications nobody heard.
    if (again) this.listener();
  }

  private dropped(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    clearInterval(this.heartbeat);
    client.end().catch(ignore);
    if (this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect(true);
    }, this.retryMs);
    this.retryTimer.unref();
    this.retryMs = Math.min(this.retryMs * 2, FEED_RETRY.maxMs);
  }
}
