// What `policyd list` shows: the stored policies, which of them are stale (expired, or, when DNS is
// asked, published under another id or no longer published), and `policyd purge`.

import { mapLimit } from '../common/limit.js';
import type { Resolver } from '../dns/resolver.js';
import { lookupStsId, type StsIdLookup } from '../sender/sts.js';
import type { CachedPolicy, PolicyStore } from './store.js';

export interface ListedPolicy {
  entry: CachedPolicy;
  expired: boolean;
  /** The live TXT lookup, when DNS was asked. */
  dns?: StsIdLookup;
  /** Expired, or DNS shows another id or no MTA-STS record: `policyd purge` it (or let it refresh). */
  stale: boolean;
  /** Why it is stale (when it is). */
  why?: string;
}

const DNS_CONCURRENCY = 16;

/** Every stored policy with its staleness; with a resolver, each domain's TXT id is looked up. */
export async function listPolicies(
  store: PolicyStore,
  options: { now: number; resolver?: Resolver },
): Promise<ListedPolicy[]> {
  const entries = await store.all();
  const lookups = options.resolver
    ? await mapLimit(entries, DNS_CONCURRENCY, (e) => lookupStsId(options.resolver!, e.domain))
    : [];
  return entries.map((entry, index) => {
    const expired = options.now > entry.expiresAt;
    const dns = lookups[index];
    const listed: ListedPolicy = { entry, expired, stale: false };
    if (dns !== undefined) listed.dns = dns;
    const why = expired
      ? `expired ${new Date(entry.expiresAt).toISOString()}`
      : dns?.kind === 'id' && dns.id !== entry.id
        ? `DNS now publishes id ${dns.id}`
        : dns?.kind === 'none'
          ? `no MTA-STS in DNS: ${dns.reason}`
          : undefined;
    if (why !== undefined) {
      listed.stale = true;
      listed.why = why;
    }
    return listed;
  });
}

/** Remove one domain's policy, or all of them; returns the domains removed. */
export async function purgePolicies(
  store: PolicyStore,
  target: { domain: string } | 'all',
): Promise<string[]> {
  if (target !== 'all') return (await store.delete(target.domain)) ? [target.domain] : [];
  const purged: string[] = [];
  for (const entry of await store.all()) {
    if (await store.delete(entry.domain)) purged.push(entry.domain);
  }
  return purged;
}
