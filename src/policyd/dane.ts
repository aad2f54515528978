// DANE discovery for the policy daemon: does DANE (RFC 7672) apply to a recipient domain, so that
// MTA-STS must step aside (RFC 8461 §2: MTA-STS must never override a failing DANE validation)?
//
// discoverDane does the lookups as an RFC 7672 §2.2 sender does: the MX RRset (§2.2.1; no MX = the
// domain itself, RFC 5321 §5.1), each MX host's A/AAAA, and, only when those are DNSSEC-secure
// (§2.2.2), the TLSA RRset at _25._tcp.<host> (§2.2.3). daneVerdict turns the per-host results into one
// verdict for the domain (the decision table in docs/policyd.md). Not covered: an MX host that is a
// CNAME (§2.2.2's expanded-name rule); the host name as published is used.

import { mapLimit } from '../common/limit.js';
import { formatTlsa, tlsaOwner } from '../dane/tlsa.js';
import { isUsableForSmtp } from '../dane/verify.js';
import type { DnsOutcome, DnsResult, Resolver } from '../dns/resolver.js';

/** What the lookups showed for one MX host. */
export type HostStatus =
  /** Secure TLSA RRset with at least one usable DANE-TA(2)/DANE-EE(3) record (RFC 7672 §3.1.3). */
  | 'usable'
  /** Secure TLSA RRset, no usable record: RFC 7672 §2.2 senders use TLS without authentication. */
  | 'unusable'
  /** Secure denial of TLSA records: DANE is not in use for this host. */
  | 'no-tlsa'
  /** The address records or the TLSA RRset are not DNSSEC-secure: DANE does not apply (§2.2.2). */
  | 'insecure'
  /** NXDOMAIN or NODATA for A and AAAA: the host receives no mail and does not count. */
  | 'no-address'
  /** The A/AAAA lookups failed (SERVFAIL, timeout, bogus): the host is unusable now, left out. */
  | 'unresolved'
  /** The TLSA lookup failed: RFC 7672 §2.2 senders must not deliver to this host. */
  | 'tlsa-failed';

export interface HostDane {
  host: string;
  status: HostStatus;
  /** One sentence on what was found. */
  detail: string;
  /** The TLSA records found, presentation format. */
  tlsa: string[];
}

export type MxStatus =
  /** A DNSSEC-secure MX RRset (or a secure NODATA: the domain is its own MX host). */
  | 'secure'
  /** MX RRset not DNSSEC-signed: RFC 7672 §2.2.1, DANE does not apply to the domain. */
  | 'insecure'
  | 'nxdomain'
  /** RFC 7505 null MX: the domain accepts no mail. */
  | 'null'
  /** SERVFAIL (bogus or not), timeout, refused... */
  | 'failed';

export interface MxDane {
  status: MxStatus;
  /** The MX hosts in preference order (for `insecure`, for information only). */
  hosts: string[];
  detail: string;
}

export type DaneVerdictKind =
  /** DANE does not apply: MTA-STS decides. */
  | 'none'
  /** Every MX host that counts has usable secure TLSA records. */
  | 'all-usable'
  /** Some MX hosts have usable secure TLSA records, others have none. */
  | 'some-usable'
  /** Secure TLSA records exist, but none is usable for SMTP. */
  | 'unusable-only'
  /** A lookup that decides whether DANE applies failed (MX, or TLSA of a secure host). */
  | 'indeterminate';

export interface DaneVerdict {
  kind: DaneVerdictKind;
  reason: string;
}

export interface DaneDiscovery {
  domain: string;
  mx: MxDane;
  hosts: HostDane[];
  verdict: DaneVerdict;
  /**
   * How long the verdict may be kept: the smallest TTL seen (5 minutes when no record came back),
   * within 1 minute and 1 hour; 1 minute after a failure.
   */
  ttlMs: number;
}

/** At most this many MX hosts are examined (in preference order). */
export const MAX_MX_HOSTS = 16;
const HOST_CONCURRENCY = 4;
const MIN_TTL_S = 60;
const MAX_TTL_S = 3600;
const DEFAULT_TTL_S = 300;
const ANSWERED: ReadonlySet<DnsOutcome> = new Set(['ok', 'nodata', 'nxdomain']);

/** The verdict for a domain from its MX lookup and the per-host results (docs/policyd.md, "DANE"). */
export function daneVerdict(domain: string, mx: MxDane, hosts: readonly HostDane[]): DaneVerdict {
  switch (mx.status) {
    case 'failed':
      return { kind: 'indeterminate', reason: `the MX lookup of ${domain} failed: ${mx.detail}` };
    case 'nxdomain':
      return { kind: 'none', reason: `${domain} does not exist (NXDOMAIN)` };
    case 'null':
      return { kind: 'none', reason: `${domain} has a null MX (RFC 7505): it accepts no mail` };
    case 'insecure':
      return {
        kind: 'none',
        reason: `the MX RRset of ${domain} is not DNSSEC-signed, so DANE does not apply (RFC 7672 §2.2.1)`,
      };
    case 'secure':
      break;
  }
  const names = (list: readonly HostDane[]) => list.map((h) => h.host).join(', ');
  const failed = hosts.filter((h) => h.status === 'tlsa-failed');
  if (failed.length > 0) {
    return {
      kind: 'indeterminate',
      reason: `the TLSA lookup failed for ${names(failed)}, so DANE may apply but cannot be checked`,
    };
  }
  const unresolved = hosts.filter((h) => h.status === 'unresolved');
  const counted = hosts.filter((h) => h.status !== 'unresolved' && h.status !== 'no-address');
  if (counted.length === 0) {
    return unresolved.length > 0
      ? { kind: 'indeterminate', reason: `no MX host of ${domain} could be resolved: ${names(unresolved)}` }
      : { kind: 'none', reason: `no MX host of ${domain} has an address` };
  }
  const usable = counted.filter((h) => h.status === 'usable');
  const without = counted.filter((h) => h.status !== 'usable');
  if (usable.length === counted.length && unresolved.length === 0) {
    return {
      kind: 'all-usable',
      reason: `every MX host (${names(usable)}) has DNSSEC-secure usable TLSA records`,
    };
  }
  if (usable.length > 0) {
    const others = [...without, ...unresolved];
    return {
      kind: 'some-usable',
      reason: `${names(usable)} ${usable.length === 1 ? 'has' : 'have'} DNSSEC-secure usable TLSA records, ${names(others)} ${others.length === 1 ? 'has' : 'have'} none`,
    };
  }
  if (counted.some((h) => h.status === 'unusable')) {
    return {
      kind: 'unusable-only',
      reason: `TLSA records are published but none is usable for SMTP (only DANE-TA(2)/DANE-EE(3) are, RFC 7672 §3.1.3)`,
    };
  }
  return { kind: 'none', reason: `no MX host of ${domain} has DNSSEC-secure TLSA records` };
}

/** Look up what RFC 7672 §2.2 needs and give the verdict. Never rejects. */
export async function discoverDane(resolver: Resolver, domain: string): Promise<DaneDiscovery> {
  const ttls: number[] = [];
  const lookup = await resolver.mx(domain);
  ttls.push(...answerTtls(lookup.result));
  let mx: MxDane;
  let hosts: HostDane[] = [];
  if (!ANSWERED.has(lookup.outcome)) {
    mx = { status: 'failed', hosts: [], detail: await describeFailure(resolver, lookup.result) };
  } else if (lookup.outcome === 'nxdomain') {
    mx = { status: 'nxdomain', hosts: [], detail: 'NXDOMAIN' };
  } else if (lookup.nullMx) {
    mx = { status: 'null', hosts: [], detail: 'null MX' };
  } else {
    // RFC 5321 §5.1: without MX records the domain itself is the one MX host.
    const names = lookup.values.length > 0 ? lookup.values.map((r) => r.exchange) : [domain];
    const unique = [...new Set(names)].filter((n) => n !== '.');
    const listed = unique.slice(0, MAX_MX_HOSTS);
    const more = unique.length > listed.length ? ` (only the first ${MAX_MX_HOSTS} examined)` : '';
    if (!lookup.secure) {
      mx = { status: 'insecure', hosts: listed, detail: `MX ${unique.join(', ')}, not DNSSEC-signed` };
    } else {
      mx = { status: 'secure', hosts: listed, detail: `MX ${unique.join(', ')}, DNSSEC-secure${more}` };
      hosts = await mapLimit(listed, HOST_CONCURRENCY, (host) => hostDane(resolver, host, ttls));
    }
  }
  const verdict = daneVerdict(domain, mx, hosts);
  const shortLived = verdict.kind === 'indeterminate' || hosts.some((h) => h.status === 'unresolved');
  const smallest = ttls.length > 0 ? Math.min(...ttls) : DEFAULT_TTL_S;
  const ttl = shortLived ? MIN_TTL_S : Math.min(MAX_TTL_S, Math.max(MIN_TTL_S, smallest));
  return { domain, mx, hosts, verdict, ttlMs: ttl * 1000 };
}

async function hostDane(resolver: Resolver, host: string, ttls: number[]): Promise<HostDane> {
  const result = (status: HostStatus, detail: string, tlsa: string[] = []): HostDane => ({
    host,
    status,
    detail,
    tlsa,
  });
  const addresses = await Promise.all([resolver.a(host), resolver.aaaa(host)]);
  for (const a of addresses) ttls.push(...answerTtls(a.result));
  const found = addresses.filter((a) => a.outcome === 'ok' && a.values.length > 0);
  if (found.length === 0) {
    const failed = addresses.find((a) => !ANSWERED.has(a.outcome));
    return failed
      ? result('unresolved', `the address lookup failed: ${await describeFailure(resolver, failed.result)}`)
      : result('no-address', 'no A or AAAA record');
  }
  // RFC 7672 §2.2.2: TLSA records are only looked up for hosts whose address records are secure.
  if (!found.some((a) => a.secure)) return result('insecure', 'the address records are not DNSSEC-signed');
  let owner: string;
  try {
    owner = tlsaOwner(host, 25);
  } catch {
    return result('unresolved', 'not a valid host name for a TLSA lookup');
  }
  const tlsa = await resolver.tlsa(owner);
  ttls.push(...answerTtls(tlsa.result));
  if (!ANSWERED.has(tlsa.outcome)) {
    return result('tlsa-failed', `TLSA ${owner}: ${await describeFailure(resolver, tlsa.result)}`);
  }
  const records = tlsa.values.map((r) => formatTlsa(r));
  if (!tlsa.secure) return result('insecure', `the TLSA RRset at ${owner} is not DNSSEC-signed`, records);
  if (tlsa.values.length === 0) return result('no-tlsa', `no TLSA records at ${owner} (secure denial)`);
  const usable = tlsa.values.filter(isUsableForSmtp).length;
  return usable > 0
    ? result('usable', `${usable} of ${tlsa.values.length} TLSA records at ${owner} usable`, records)
    : result('unusable', `none of the ${tlsa.values.length} TLSA records at ${owner} is usable`, records);
}

function answerTtls(result: DnsResult): number[] {
  return result.answers.map((r) => r.ttl).filter((t): t is number => typeof t === 'number');
}

/** Why a lookup failed; a SERVFAIL is classified as DNSSEC-bogus or not (one more query, with CD). */
async function describeFailure(resolver: Resolver, result: DnsResult): Promise<string> {
  if (result.outcome === 'servfail') {
    const classified = await resolver.classifyFailure(result.name, result.type);
    return classified.verdict === 'bogus' ? 'DNSSEC validation failed (bogus)' : 'SERVFAIL';
  }
  return result.outcome === 'timeout' ? 'timeout' : (result.error ?? result.rcode ?? result.outcome);
}
