// Does DANE (RFC 7672) apply to a recipient domain, so that MTA-STS must step aside (RFC 8461 §2:
// MTA-STS never overrides a failing DANE validation)? Shared by `policyd` (its answer) and `check`
// (its "senders" section), so the two cannot disagree.
//
// daneDiscovery reads a gathered sending path (path.ts) as an RFC 7672 §2.2 sender does: the MX RRset
// (§2.2.1; no MX = the domain itself, RFC 5321 §5.1), each MX host's A/AAAA, and, only when those are
// DNSSEC-secure (§2.2.2), the TLSA RRset at _25._tcp.<host> (§2.2.3; at the CNAME target first when the
// host is a secure alias). daneVerdict turns the per-host results into one verdict for the domain (the
// decision table in docs/policyd.md).

import { formatTlsa } from '../dane/tlsa.js';
import { isUsableForSmtp } from '../dane/verify.js';
import type { Resolver } from '../dns/resolver.js';
import { failurePhrase } from './dns-failure.js';
import type { HostView } from './host.js';
import { MAX_MX_HOSTS } from './mx.js';
import { gatherSendingPath, type SendingPath } from './path.js';

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

export type MxDaneStatus =
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
  status: MxDaneStatus;
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

const MIN_TTL_S = 60;
const MAX_TTL_S = 3600;
const DEFAULT_TTL_S = 300;

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
  return daneDiscovery(await gatherSendingPath(resolver, domain, { scope: 'sender' }));
}

/** The DANE view of a gathered sending path: the MX status, each host's status, the verdict, the TTL. */
export function daneDiscovery(path: SendingPath): DaneDiscovery {
  const { mx: view } = path;
  const names = view.hosts.map((h) => h.host);
  const more = view.published > names.length ? ` (only the first ${MAX_MX_HOSTS} examined)` : '';
  let mx: MxDane;
  let hosts: HostDane[] = [];
  switch (view.status) {
    case 'failed':
      mx = { status: 'failed', hosts: [], detail: failurePhrase(view.failure!) };
      break;
    case 'nxdomain':
      mx = { status: 'nxdomain', hosts: [], detail: 'NXDOMAIN' };
      break;
    case 'null':
      mx = { status: 'null', hosts: [], detail: 'null MX' };
      break;
    default:
      if (!view.secure) {
        mx = { status: 'insecure', hosts: names, detail: `MX ${names.join(', ')}, not DNSSEC-signed${more}` };
      } else {
        mx = { status: 'secure', hosts: names, detail: `MX ${names.join(', ')}, DNSSEC-secure${more}` };
        hosts = path.hosts.map(hostDane);
      }
  }
  const verdict = daneVerdict(view.domain, mx, hosts);
  const ttls = [...view.ttls, ...path.hosts.flatMap((h) => h.ttls)];
  const shortLived = verdict.kind === 'indeterminate' || hosts.some((h) => h.status === 'unresolved');
  const smallest = ttls.length > 0 ? Math.min(...ttls) : DEFAULT_TTL_S;
  const ttl = shortLived ? MIN_TTL_S : Math.min(MAX_TTL_S, Math.max(MIN_TTL_S, smallest));
  return { domain: view.domain, mx, hosts, verdict, ttlMs: ttl * 1000 };
}

/** What RFC 7672 §2.2 makes of one MX host's lookups. */
function hostDane(view: HostView): HostDane {
  const host = view.mx.host;
  const result = (status: HostStatus, detail: string, tlsa: string[] = []): HostDane => ({
    host,
    status,
    detail,
    tlsa,
  });
  if (view.mx.form === 'ip-literal') return result('no-address', 'an IP address, not a host name');
  if (view.mx.form === 'invalid') return result('no-address', `not a host name: ${view.mx.detail}`);
  const addresses = view.addresses!;
  if (addresses.all.length === 0) {
    const failed = addresses.failures[0];
    return failed
      ? result('unresolved', `the address lookup failed: ${failurePhrase(failed)}`)
      : result('no-address', 'no A or AAAA record');
  }
  // RFC 7672 §2.2.2: TLSA records are only used for hosts whose address records are secure.
  if (!addresses.secure) return result('insecure', 'the address records are not DNSSEC-signed');
  const tlsa = view.tlsa!;
  const { owner } = tlsa;
  const records = tlsa.records.map((r) => formatTlsa(r));
  const via = tlsa.baseDomain === undefined ? '' : ` (the CNAME target of ${host}, RFC 7672 §2.2.2)`;
  switch (tlsa.status) {
    case 'bogus':
    case 'failed':
      return tlsa.failure === undefined
        ? result('unresolved', `not a valid host name for a TLSA lookup: ${tlsa.error}`)
        : result('tlsa-failed', `TLSA ${owner}: ${failurePhrase(tlsa.failure)}`);
    case 'insecure':
      return result('insecure', `the TLSA RRset at ${owner} is not DNSSEC-signed`, records);
    case 'secure':
      break;
  }
  if (tlsa.records.length === 0) return result('no-tlsa', `no TLSA records at ${owner} (secure denial)`);
  const usable = tlsa.records.filter(isUsableForSmtp).length;
  return usable > 0
    ? result('usable', `${usable} of ${tlsa.records.length} TLSA records at ${owner}${via} usable`, records)
    : result(
        'unusable',
        `none of the ${tlsa.records.length} TLSA records at ${owner}${via} is usable`,
        records,
      );
}
