// A caching Resolver for one bulk run (`mxguard check --file`): every answer is kept as long as its TTL allows
// (RFC 1035 §3.2.1: the smallest TTL of the answer's records), so thousands of domains on the same MX hosts
// ask for those hosts' A/AAAA/TLSA records once. Negative answers (NXDOMAIN, NODATA) are kept as RFC 2308 §5
// says (the SOA record's TTL or MINIMUM, whichever is smaller), or for a short default when the reply had no
// SOA; failures (SERVFAIL, timeout...) for a few seconds only. Queries already under way for the same question are merged, and the
// cache holds at most `maxEntries` answers (least recently used dropped first), so memory stays bounded.
// Not for long-running daemons: policyd has its own policy cache, and the monitor wants fresh answers.
import {
  type DnsOutcome,
  type DnsRecordType,
  type DnsResult,
  type QueryOptions,
  type Resolver,
  ResolverBase,
} from './resolver.js';

export interface DnsCacheOptions {
  /** At most this many answers kept (default 10,000: the shared MX hosts' answers stay, a domain's own age out). */
  maxEntries?: number;
  /** How long NXDOMAIN and NODATA answers without an SOA record are kept, in seconds (default 60). */
  negativeTtl?: number;
  /** How long SERVFAIL, REFUSED, timeouts and errors are kept, in seconds (default 5). */
  failureTtl?: number;
  /** No answer is kept longer than this, in seconds (default 3600). */
  maxTtl?: number;
  /** Milliseconds since some epoch; injected by tests. */
  now?: () => number;
}

export interface DnsCacheStats {
  /** Answers served from the cache. */
  hits: number;
  /** Queries merged into one already under way. */
  merged: number;
  /** Queries sent to the wrapped resolver. */
  misses: number;
  size: number;
}

interface Entry {
  result: DnsResult;
  expires: number;
}

const NEGATIVE: ReadonlySet<DnsOutcome> = new Set(['nxdomain', 'nodata']);

export class CachingResolver extends ResolverBase {
  private readonly entries = new Map<string, Entry>();
  private readonly pending = new Map<string, Promise<DnsResult>>();
  private readonly maxEntries: number;
  private readonly negativeTtl: number;
  private readonly failureTtl: number;
  private readonly maxTtl: number;
  private readonly now: () => number;
  private readonly counts = { hits: 0, merged: 0, misses: 0 };

  constructor(
    private readonly inner: Resolver,
    options: DnsCacheOptions = {},
  ) {
    super();
    this.maxEntries = Math.max(1, options.maxEntries ?? 10_000);
    this.negativeTtl = options.negativeTtl ?? 60;
    this.failureTtl = options.failureTtl ?? 5;
    this.maxTtl = options.maxTtl ?? 3600;
    this.now = options.now ?? Date.now;
  }

  async query(name: string, type: DnsRecordType, options: QueryOptions = {}): Promise<DnsResult> {
    const key = `${name.toLowerCase().replace(/\.$/, '')}\0${type}\0${options.cd ? 'cd' : ''}`;
    const cached = this.entries.get(key);
    if (cached !== undefined) {
      if (cached.expires > this.now()) {
        // Map order is insertion order: moving the entry to the end keeps the least recently used first.
        this.entries.delete(key);
        this.entries.set(key, cached);
        this.counts.hits++;
        return cached.result;
      }
      this.entries.delete(key);
    }
    const under = this.pending.get(key);
    if (under !== undefined) {
      this.counts.merged++;
      return under;
    }
    this.counts.misses++;
    const asked = this.inner.query(name, type, options).then(
      (result) => {
        this.pending.delete(key);
        this.store(key, result);
        return result;
      },
      (err: unknown) => {
        this.pending.delete(key);
        throw err;
      },
    );
    this.pending.set(key, asked);
    return asked;
  }

  stats(): DnsCacheStats {
    return { ...this.counts, size: this.entries.size };
  }

  /** Seconds this answer may be kept. */
  private ttlOf(result: DnsResult): number {
    if (result.outcome === 'ok') {
      const ttls = result.answers.map((r) => r.ttl ?? 0);
      return Math.min(this.maxTtl, ttls.length === 0 ? this.negativeTtl : Math.min(...ttls));
    }
    if (NEGATIVE.has(result.outcome)) return Math.min(this.maxTtl, result.negativeTtl ?? this.negativeTtl);
    return this.failureTtl;
  }

  private store(key: string, result: DnsResult): void {
    const ttl = this.ttlOf(result);
    if (ttl <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, { result, expires: this.now() + ttl * 1000 });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}
