// The MX step of the sending path (RFC 5321 §5.1): where a sender delivers mail for a domain. One set
// of rules for `check`, `policyd` and monitoring: the RFC 7505 null MX, the implicit MX (no MX records:
// the domain itself), one entry per host name at its best preference, at most MAX_MX_HOSTS hosts, and
// MX exchanges that are no host name (an IP address, a name that is not LDH) set apart.
import net from 'node:net';
import { hostnameProblem, normalizeName } from '../dns/names.js';
import type { DnsResult, MxRecord, Resolver } from '../dns/resolver.js';
import { answerTtls, classifyDnsFailure, type DnsFailure, isAnswered } from './dns-failure.js';

/** At most this many MX hosts are examined, by preference (a hostile zone could list hundreds). */
export const MAX_MX_HOSTS = 10;

/** One MX host as published. */
export interface MxName {
  host: string;
  preference: number;
  /**
   * `name`: a host name to look up; `ip-literal`: an address where a name belongs (RFC 5321 §5.1,
   * senders cannot use it); `invalid`: not a host name (RFC 5321 §2.3.5).
   */
  form: 'name' | 'ip-literal' | 'invalid';
  /** For `ip-literal`, the address; for `invalid`, why. */
  detail?: string;
}

export type MxStatus =
  /** MX records list the hosts. */
  | 'listed'
  /** No MX records: the domain itself is the one MX host (RFC 5321 §5.1). */
  | 'implicit'
  /** RFC 7505 null MX: the domain accepts no mail. */
  | 'null'
  | 'nxdomain'
  /** The lookup failed (SERVFAIL, bogus, timeout...): see `failure`. */
  | 'failed';

export interface MxView {
  domain: string;
  status: MxStatus;
  /** The MX RRset (or its denial) is DNSSEC-secure (RFC 7672 §2.2.1). */
  secure: boolean;
  /** The MX records as published, by preference (the null MX "." included). */
  records: MxRecord[];
  /** RFC 7505 §3: a null MX beside other MX records. */
  nullMixed: boolean;
  /** The hosts to deliver to, one per name at its best preference, at most MAX_MX_HOSTS. */
  hosts: MxName[];
  /** How many distinct hosts were published (more than `hosts.length` when capped). */
  published: number;
  failure?: DnsFailure;
  ttls: number[];
  result: DnsResult;
}

export async function gatherMx(resolver: Resolver, domain: string): Promise<MxView> {
  const name = normalizeName(domain);
  const lookup = await resolver.mx(name);
  const base = {
    domain: name,
    secure: lookup.secure,
    records: lookup.values,
    nullMixed: false,
    hosts: [] as MxName[],
    published: 0,
    ttls: answerTtls(lookup.result),
    result: lookup.result,
  };
  if (!isAnswered(lookup.outcome)) {
    return { ...base, status: 'failed', failure: await classifyDnsFailure(resolver, lookup.result) };
  }
  if (lookup.outcome === 'nxdomain') return { ...base, status: 'nxdomain' };
  if (lookup.nullMx) return { ...base, status: 'null' };
  if (lookup.values.length === 0) {
    return { ...base, status: 'implicit', hosts: [mxName(name, 0)], published: 1 };
  }
  // Values come sorted by preference: the first entry of a name carries its best preference.
  const exchanges = lookup.values.filter((v) => v.exchange !== '.');
  const unique = new Map<string, number>();
  for (const v of exchanges) if (!unique.has(v.exchange)) unique.set(v.exchange, v.preference);
  const hosts = [...unique.entries()].slice(0, MAX_MX_HOSTS).map(([host, pref]) => mxName(host, pref));
  return {
    ...base,
    status: 'listed',
    nullMixed: exchanges.length < lookup.values.length,
    hosts,
    published: unique.size,
  };
}

function mxName(host: string, preference: number): MxName {
  const literal = ipLiteral(host);
  if (literal !== undefined) return { host, preference, form: 'ip-literal', detail: literal };
  const problem = hostnameProblem(host);
  if (problem !== undefined) return { host, preference, form: 'invalid', detail: problem };
  return { host, preference, form: 'name' };
}

/** The address an MX exchange holds when it is an IP literal ("192.0.2.1", "[192.0.2.1]"), else undefined. */
export function ipLiteral(exchange: string): string | undefined {
  const bare = exchange.replace(/^\[(?:ipv6:)?(.*)\]$/i, '$1');
  return net.isIP(bare) === 0 ? undefined : bare;
}
