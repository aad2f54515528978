// MTA-STS discovery for the policy daemon (RFC 8461): the policy id from the `_mta-sts` TXT record
// (§3.1) and the policy fetch (§3.3) with the parser's sender rules (§3.2), reduced to what the cache
// needs: an id or why there is none, a policy or why the fetch failed.
import type { Problem } from '../common/errors.js';
import type { Resolver } from '../dns/resolver.js';
import { fetchAndParsePolicy } from '../fetch/policy.js';
import { MtaStsError } from '../mtasts/error.js';
import type { StsPolicy } from '../mtasts/policy.js';
import { parseStsRecord, selectStsRecord } from '../mtasts/record.js';
import { policyUrl } from '../mtasts/url.js';

export type StsIdLookup =
  | { kind: 'id'; id: string }
  /** The domain has no (usable) MTA-STS TXT record. */
  | { kind: 'none'; reason: string }
  /** The lookup failed: nothing can be said. */
  | { kind: 'failed'; reason: string };

/** RFC 8461 §3.1: exactly one TXT record at _mta-sts.<domain> starting "v=STSv1;", with a valid id. */
export async function lookupStsId(resolver: Resolver, domain: string): Promise<StsIdLookup> {
  const owner = `_mta-sts.${domain}`;
  const found = await resolver.txt(owner);
  switch (found.outcome) {
    case 'ok':
    case 'nodata':
    case 'nxdomain':
      break;
    default:
      return {
        kind: 'failed',
        reason: `the TXT lookup of ${owner} failed (${found.result.error ?? found.result.rcode ?? found.outcome})`,
      };
  }
  const selection = selectStsRecord(found.values);
  if (selection.kind === 'none') return { kind: 'none', reason: `no "v=STSv1" TXT record at ${owner}` };
  if (selection.kind === 'many') {
    return {
      kind: 'none',
      reason: `${selection.records.length} "v=STSv1" TXT records at ${owner}; RFC 8461 §3.1 wants exactly one`,
    };
  }
  try {
    return { kind: 'id', id: parseStsRecord(selection.record).record.id };
  } catch (err) {
    if (!(err instanceof MtaStsError)) throw err;
    return { kind: 'none', reason: `the TXT record at ${owner} is invalid: ${err.message}` };
  }
}

export type PolicyFetchOutcome =
  | { ok: true; policy: StsPolicy; warnings: Problem[] }
  | { ok: false; code: string; message: string };

export type PolicyFetcher = (domain: string) => Promise<PolicyFetchOutcome>;

export interface FetcherSettings {
  resolver: Resolver;
  /** HTTPS port of the policy hosts (labs; default 443). */
  port?: number;
  /** Extra trust anchors (PEM). */
  ca?: readonly string[];
  allowPrivate?: boolean;
  /** For the whole fetch. */
  timeoutMs?: number;
}

/** The real fetch: HTTPS per RFC 8461 §3.3, addresses from the daemon's resolver. */
export function policyFetcher(settings: FetcherSettings): PolicyFetcher {
  const ca = settings.ca === undefined ? undefined : [...settings.ca];
  return async (domain) => {
    const fetched = await fetchAndParsePolicy(domain, {
      resolveHost: (host) => resolveAddresses(settings.resolver, host),
      port: settings.port,
      ca,
      allowPrivate: settings.allowPrivate,
      timeoutMs: settings.timeoutMs,
      connectTimeoutMs: settings.timeoutMs === undefined ? undefined : Math.min(settings.timeoutMs, 10_000),
    });
    if (!fetched.ok) return { ok: false, code: fetched.code, message: fetched.message };
    // A repeated version/mode/max_age makes the policy ambiguous ("mode: enforce" then "mode:
    // testing"): refuse it rather than guess, so no answer rests on a field the domain contradicts.
    const repeated = fetched.warnings.find((w) => w.code === 'MTASTS_POLICY_DUPLICATE');
    if (repeated !== undefined) {
      return {
        ok: false,
        code: 'MTASTS_FETCH_POLICY_INVALID',
        message:
          `the policy at ${policyUrl(domain)} is refused as ambiguous: ${repeated.where ?? 'a line'} repeats a ` +
          'field that may appear once (version, mode, max_age)',
      };
    }
    return { ok: true, policy: fetched.policy, warnings: fetched.warnings };
  };
}

async function resolveAddresses(resolver: Resolver, host: string): Promise<string[]> {
  const lookups = await Promise.all([resolver.a(host), resolver.aaaa(host)]);
  const addresses = lookups.flatMap((l) => l.values);
  if (addresses.length > 0) return addresses;
  const failed = lookups.find((l) => !['ok', 'nxdomain', 'nodata'].includes(l.outcome));
  if (failed)
    throw new Error(`${failed.result.type} ${host}: ${failed.result.error ?? failed.result.outcome}`);
  return [];
}
