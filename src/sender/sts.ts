// The MTA-STS steps of the sending path (RFC 8461): the policy id from the `_mta-sts` TXT record
// (§3.1) and the policy fetch (§3.3) with the parser's sender rules (§3.2), and the one rule a sender
// adds on top: a policy that repeats version, mode or max_age is refused as ambiguous. `policyd`
// caches what these give (§5); `check` reports on them and predicts the daemon from the same code.
import type { Problem } from '../common/errors.js';
import type { Resolver } from '../dns/resolver.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  fetchAndParsePolicy,
  type PolicyFetchAndParseResult,
} from '../fetch/policy.js';
import { MtaStsError } from '../mtasts/error.js';
import type { StsPolicy } from '../mtasts/policy.js';
import { parseStsRecord, selectStsRecord } from '../mtasts/record.js';
import { policyUrl } from '../mtasts/url.js';
import type { StsView } from './decide.js';
import { classifyDnsFailure, type DnsFailure, failurePhrase } from './dns-failure.js';
import { resolveHostAddresses } from './host.js';

/** What the `_mta-sts` TXT lookup showed, with what `check` needs to explain it. */
export type StsRecordLookup =
  | { kind: 'id'; id: string; record: string; warnings: Problem[] }
  /** No "v=STSv1" record: the domain has no MTA-STS. `lookalike` is a record that is nearly one ("v=STSv10"). */
  | { kind: 'absent'; reason: string; lookalike?: string }
  /** Several "v=STSv1" records: senders act as if there were none (§3.1). */
  | { kind: 'many'; reason: string; records: string[] }
  /** One record, invalid: senders ignore it. */
  | { kind: 'invalid'; reason: string; record: string; error: string }
  /** The lookup failed: nothing can be said. */
  | { kind: 'failed'; reason: string; failure: DnsFailure };

/** What the policy daemon keeps of it: an id, no (usable) record, or a failed lookup. */
export type StsIdLookup =
  | { kind: 'id'; id: string }
  | { kind: 'none'; reason: string }
  | { kind: 'failed'; reason: string };

/** RFC 8461 §3.1: exactly one TXT record at _mta-sts.<domain> starting "v=STSv1;", with a valid id. */
export async function lookupStsRecord(resolver: Resolver, domain: string): Promise<StsRecordLookup> {
  const owner = `_mta-sts.${domain}`;
  const found = await resolver.txt(owner);
  switch (found.outcome) {
    case 'ok':
    case 'nodata':
    case 'nxdomain':
      break;
    default: {
      const failure = await classifyDnsFailure(resolver, found.result);
      return {
        kind: 'failed',
        reason: `the TXT lookup of ${owner} failed (${failurePhrase(failure)})`,
        failure,
      };
    }
  }
  const selection = selectStsRecord(found.values);
  if (selection.kind === 'many') {
    return {
      kind: 'many',
      reason: `${selection.records.length} "v=STSv1" TXT records at ${owner}; RFC 8461 §3.1 wants exactly one`,
      records: selection.records,
    };
  }
  if (selection.kind === 'none') {
    const lookalike = selection.ignored.find((r) => /^v=sts/i.test(r));
    const reason = `no "v=STSv1" TXT record at ${owner}`;
    return lookalike === undefined ? { kind: 'absent', reason } : { kind: 'absent', reason, lookalike };
  }
  try {
    const { record, warnings } = parseStsRecord(selection.record);
    return { kind: 'id', id: record.id, record: selection.record, warnings };
  } catch (err) {
    if (!(err instanceof MtaStsError)) throw err;
    return {
      kind: 'invalid',
      reason: `the TXT record at ${owner} is invalid: ${err.message}`,
      record: selection.record,
      error: err.message,
    };
  }
}

/** The TXT lookup as the daemon keeps it. */
export async function lookupStsId(resolver: Resolver, domain: string): Promise<StsIdLookup> {
  return stsIdOf(await lookupStsRecord(resolver, domain));
}

export function stsIdOf(lookup: StsRecordLookup): StsIdLookup {
  switch (lookup.kind) {
    case 'id':
      return { kind: 'id', id: lookup.id };
    case 'failed':
      return { kind: 'failed', reason: lookup.reason };
    default:
      return { kind: 'none', reason: lookup.reason };
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

/** Fetch and parse the policy as a sender does (§3.3), addresses from the given resolver. */
export function fetchPolicy(domain: string, settings: FetcherSettings): Promise<PolicyFetchAndParseResult> {
  return fetchAndParsePolicy(domain, {
    resolveHost: (host) => resolveHostAddresses(settings.resolver, host),
    port: settings.port,
    // The same array each time: fetch/policy.ts keeps one TLS context per trust-anchor array (no copy here).
    ca: settings.ca,
    allowPrivate: settings.allowPrivate,
    timeoutMs: settings.timeoutMs,
    connectTimeoutMs:
      settings.timeoutMs === undefined ? undefined : Math.min(settings.timeoutMs, DEFAULT_CONNECT_TIMEOUT_MS),
  });
}

/** The real fetch for the daemon: HTTPS per RFC 8461 §3.3, then the sender's acceptance rule. */
export function policyFetcher(settings: FetcherSettings): PolicyFetcher {
  return async (domain) => acceptPolicy(domain, await fetchPolicy(domain, settings));
}

/**
 * What a sender makes of a fetch: the policy, or why there is none. A repeated version/mode/max_age
 * makes the policy ambiguous ("mode: enforce" then "mode: testing"): it is refused rather than
 * guessed, so no answer rests on a field the domain contradicts.
 */
export function acceptPolicy(domain: string, fetched: PolicyFetchAndParseResult): PolicyFetchOutcome {
  if (!fetched.ok) return { ok: false, code: fetched.code, message: fetched.message };
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
}

/** What a sender learned of a domain's MTA-STS on one visit: the id lookup, then the accepted fetch. */
export interface StsSeen {
  id: StsIdLookup;
  /** Absent when the TXT lookup gave no id (a sender then does not fetch, RFC 8461 §3.3). */
  policy?: PolicyFetchOutcome;
}

/** The MTA-STS state a sender without a cached policy acts on (RFC 8461 §3.3, §5). */
export function stsViewOf(seen: StsSeen): StsView {
  if (seen.id.kind !== 'id') return { kind: 'none', reason: seen.id.reason };
  if (seen.policy === undefined) return { kind: 'none', reason: 'the policy was not fetched' };
  if (!seen.policy.ok) {
    return { kind: 'none', reason: `the policy fetch failed (${seen.policy.code}: ${seen.policy.message})` };
  }
  return { kind: 'policy', id: seen.id.id, policy: seen.policy.policy };
}
