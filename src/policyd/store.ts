// The policy cache's persistent store (RFC 8461 §5: a policy is cached until its max_age expires).
// The daemon keeps every entry in memory for the hot path and writes through to one PolicyStore:
// SQLite (default, survives restarts) or Redis (several MTAs sharing one cache).
import type { StsPolicy } from '../mtasts/policy.js';

export interface CachedPolicy {
  /** Normalised recipient domain (lower case, no trailing dot). */
  domain: string;
  /** The `_mta-sts` TXT id the policy was fetched under. */
  id: string;
  policy: StsPolicy;
  /** When the policy was fetched (ms since the epoch). */
  fetchedAt: number;
  /** fetchedAt + max_age: the policy must not be used after this (ms since the epoch). */
  expiresAt: number;
  /** When the TXT id was last seen unchanged in DNS (ms since the epoch). */
  checkedAt: number;
}

export interface PolicyStore {
  get(domain: string): Promise<CachedPolicy | undefined>;
  set(entry: CachedPolicy): Promise<void>;
  /** True when an entry was removed. */
  delete(domain: string): Promise<boolean>;
  /** Every entry (for `policyd list` and for loading the memory cache at start). */
  all(): Promise<CachedPolicy[]>;
  close(): Promise<void>;
}
