// The policy cache in Redis, for several MTAs sharing one cache (RFC 8461 §5: a sender caches a policy
// until its max_age expires). One key per recipient domain, `<prefix><domain>`, holding the entry as JSON
// with a Redis TTL of expiresAt - now, so Redis itself drops a policy once it may no longer be used.
//
//   const store = await RedisPolicyStore.open({ url: 'redis://127.0.0.1:6379/0' });
//   await store.set(entry); await store.get('example.com'); await store.close();
//
// Store errors reject the promise with a message naming the server; the daemon keeps its memory cache and
// goes on answering (a cache outage must never turn into deferred mail).
import { Redis } from 'ioredis';
import type { StsMode } from '../mtasts/policy.js';
import type { CachedPolicy, PolicyStore } from './store.js';

export const DEFAULT_KEY_PREFIX = 'mxguard:policy:';

export interface RedisStoreOptions {
  /** `redis://[:password@]host[:port][/db]` (default redis://127.0.0.1:6379/0). */
  url?: string;
  /** Prepended to every key (default "mxguard:policy:"); MTAs sharing a cache must use the same one. */
  keyPrefix?: string;
  /** Milliseconds to wait for a connection (default 5000). */
  connectTimeoutMs?: number;
  /** The clock, for TTLs (default Date.now). */
  now?: () => number;
}

const SCAN_BATCH = 500;
const MODES: readonly StsMode[] = ['enforce', 'testing', 'none'];

export class RedisPolicyStore implements PolicyStore {
  readonly keyPrefix: string;
  private readonly client: Redis;
  private readonly where: string;
  private readonly now: () => number;
  private lastError: Error | undefined;

  constructor(options: RedisStoreOptions = {}) {
    const url = options.url ?? 'redis://127.0.0.1:6379/0';
    this.keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    this.now = options.now ?? Date.now;
    this.where = `Redis at ${redactPassword(url)}`;
    this.client = new Redis(url, {
      lazyConnect: true,
      connectTimeout: options.connectTimeoutMs ?? 5000,
      // Fail a command quickly while the server is away instead of queueing it for a long time:
      // the caller has its memory cache.
      maxRetriesPerRequest: 1,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    });
    // Without a listener ioredis prints every connection error; remember the last one for messages.
    this.client.on('error', (err: Error) => {
      this.lastError = err;
    });
  }

  /** A connected store; rejects, naming the server, when it cannot be reached. */
  static async open(options: RedisStoreOptions = {}): Promise<RedisPolicyStore> {
    const store = new RedisPolicyStore(options);
    try {
      await store.client.connect();
      await store.client.ping();
    } catch (err) {
      store.client.disconnect();
      throw store.failure('connect', err);
    }
    return store;
  }

  async get(domain: string): Promise<CachedPolicy | undefined> {
    const value = await this.call('GET', () => this.client.get(this.key(domain)));
    return value === null ? undefined : decodeEntry(value);
  }

  async set(entry: CachedPolicy): Promise<void> {
    const key = this.key(entry.domain);
    const ttlMs = Math.ceil(entry.expiresAt - this.now());
    // An entry past its max_age must not be used (RFC 8461 §5): drop any older copy instead.
    if (ttlMs <= 0) {
      await this.call('DEL', () => this.client.del(key));
      return;
    }
    await this.call('SET', () => this.client.set(key, JSON.stringify(entry), 'PX', ttlMs));
  }

  async delete(domain: string): Promise<boolean> {
    const removed = await this.call('DEL', () => this.client.del(this.key(domain)));
    return removed > 0;
  }

  /** Every entry under the prefix (SCAN, so the server is never blocked); unreadable values are skipped. */
  async all(): Promise<CachedPolicy[]> {
    const entries: CachedPolicy[] = [];
    const match = `${escapeGlob(this.keyPrefix)}*`;
    let cursor = '0';
    do {
      const [next, keys] = await this.call('SCAN', () =>
        this.client.scan(cursor, 'MATCH', match, 'COUNT', SCAN_BATCH),
      );
      cursor = next;
      if (keys.length === 0) continue;
      // A key may expire between SCAN and MGET: its value is then null.
      const values = await this.call('MGET', () => this.client.mget(...keys));
      for (const value of values) {
        const entry = value === null ? undefined : decodeEntry(value);
        if (entry !== undefined) entries.push(entry);
      }
    } while (cursor !== '0');
    return entries;
  }

  async close(): Promise<void> {
    if (this.client.status === 'ready') {
      try {
        await this.client.quit();
        return;
      } catch {
        // fall through: drop the connection
      }
    }
    this.client.disconnect();
  }

  private key(domain: string): string {
    return this.keyPrefix + domain;
  }

  private async call<T>(command: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw this.failure(command, err);
    }
  }

  private failure(command: string, err: unknown): Error {
    const reason = err instanceof Error ? err.message : String(err);
    const last = this.lastError && this.lastError.message !== reason ? ` (${this.lastError.message})` : '';
    return new Error(`${this.where}: ${command} failed: ${reason}${last}`, { cause: err });
  }
}

/**
 * A stored entry, or undefined when the value is not one (written by something else, or by a version of
 * mxguard with another format): such a value is a cache miss, never a policy.
 */
export function decodeEntry(value: string): CachedPolicy | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (!isRecord(parsed) || !isRecord(parsed.policy)) return undefined;
  const { domain, id, fetchedAt, expiresAt, checkedAt, policy } = parsed;
  const { mode, maxAge, mx, extensions } = policy;
  const valid =
    typeof domain === 'string' &&
    typeof id === 'string' &&
    isTime(fetchedAt) &&
    isTime(expiresAt) &&
    isTime(checkedAt) &&
    typeof mode === 'string' &&
    (MODES as readonly string[]).includes(mode) &&
    typeof maxAge === 'number' &&
    Number.isInteger(maxAge) &&
    maxAge >= 0 &&
    Array.isArray(mx) &&
    mx.every((m) => typeof m === 'string') &&
    Array.isArray(extensions) &&
    extensions.every(
      (e) => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && typeof e[1] === 'string',
    );
  if (!valid) return undefined;
  return {
    domain,
    id,
    fetchedAt,
    expiresAt,
    checkedAt,
    policy: {
      mode: mode as StsMode,
      maxAge,
      mx: [...(mx as string[])],
      extensions: (extensions as Array<[string, string]>).map(([k, v]) => [k, v]),
    },
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isTime(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** SCAN MATCH is a glob: a prefix holding *, ?, [ or \ must match itself only. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

function redactPassword(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
