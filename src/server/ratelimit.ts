// Per-client token buckets for the HTTPS TLS-RPT intake (RFC 8460 §5.4 reports come a few a day per
// sender; a client posting faster is refused with 429 and Retry-After, RFC 6585 §4).
//
// Each key (client IP) gets a bucket of `perMinute` tokens that refills continuously at perMinute / 60
// per second; a request takes one token. Memory is bounded: at most `maxClients` buckets are kept, the
// least recently used one is forgotten first (a forgotten client starts again with a full bucket).

export interface RateLimiterOptions {
  /** Requests per key per minute, also the burst size. */
  perMinute: number;
  /** Milliseconds clock (default Date.now), injectable for tests. */
  now?: () => number;
  /** Most keys remembered (default 10000). */
  maxClients?: number;
}

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly perMinute: number;
  private readonly now: () => number;
  private readonly maxClients: number;
  /** Insertion order = least recently used first. */
  private readonly buckets = new Map<string, Bucket>();

  constructor(options: RateLimiterOptions) {
    if (!(options.perMinute > 0)) throw new RangeError('perMinute must be greater than 0');
    this.perMinute = options.perMinute;
    this.now = options.now ?? Date.now;
    this.maxClients = options.maxClients ?? 10_000;
  }

  /** Take a token for `key` if one is there. */
  take(key: string): RateDecision {
    const now = this.now();
    const bucket = this.refill(this.buckets.get(key), now);
    this.buckets.delete(key);
    this.buckets.set(key, bucket);
    this.evict();
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    const msPerToken = 60_000 / this.perMinute;
    return {
      allowed: false,
      retryAfterSeconds: Math.max(1, Math.ceil(((1 - bucket.tokens) * msPerToken) / 1000)),
    };
  }

  /** How many keys are remembered. */
  get size(): number {
    return this.buckets.size;
  }

  private refill(bucket: Bucket | undefined, now: number): Bucket {
    if (!bucket) return { tokens: this.perMinute, at: now };
    const elapsed = Math.max(0, now - bucket.at);
    return { tokens: Math.min(this.perMinute, bucket.tokens + (elapsed * this.perMinute) / 60_000), at: now };
  }

  private evict(): void {
    while (this.buckets.size > this.maxClients) {
      const oldest = this.buckets.keys().next().value;
      if (oldest === undefined) return;
      this.buckets.delete(oldest);
    }
  }
}
