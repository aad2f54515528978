// What `policyd query` adds to the answer (what Postfix then does with it); what `policyd list` shows: the
// stored policies, which of them are stale (expired, or, when DNS is asked, published under another id or no
// longer published); and `policyd purge`.

import { mapLimit } from '../common/limit.js';
import type { Resolver } from '../dns/resolver.js';
import type { StsView } from '../sender/decide.js';
import { type HostOutcome, senderOutcome } from '../sender/outcome.js';
import { lookupStsId, type StsIdLookup } from '../sender/sts.js';
import type { DomainSnapshot } from './engine.js';
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

/** What Postfix does with the daemon's answer, per MX host, from the daemon's own view of the domain. */
export interface PostfixConsequence {
  /** Per MX host: deliver with DANE, MTA-STS, TLS, plain text, or refuse (defer), and why. */
  hosts: HostOutcome[];
  /** Why no host is tried at all (null MX, failed MX lookup...). */
  none?: string;
  /** Postfix will not deliver: every host is refused, or none is tried. */
  stops: boolean;
}

/**
 * The consequence of the answer (src/sender/outcome.ts, the same code `check` predicts with): an enforced
 * policy that covers none of the MX hosts in DNS is answered `OK secure match=...`, and Postfix then defers.
 */
export function postfixConsequence(s: DomainSnapshot): PostfixConsequence | undefined {
  const dane = s.dane?.discovery;
  if (dane === undefined || s.answer === undefined) return undefined;
  const sts: StsView =
    s.policy !== undefined
      ? { kind: 'policy', id: s.policy.id, policy: s.policy.policy }
      : { kind: 'none', reason: s.noPolicy ?? 'no policy' };
  const outcome = senderOutcome('dane-mta-sts', { dane, sts, answer: s.answer });
  const stops = outcome.none !== undefined || outcome.hosts.every((h) => h.delivery === 'refuse');
  return { hosts: outcome.hosts, ...(outcome.none === undefined ? {} : { none: outcome.none }), stops };
}
