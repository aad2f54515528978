// The per-host steps of the sending path: an MX host's addresses (A and AAAA, both asked: RFC 7672
// §2.2.2 needs both to be secure for DANE) and its TLSA RRset at _25._tcp.<host> (RFC 7672 §2.2.3),
// with the CNAME rule of RFC 7672 §2.2.2: when the host name is an alias whose expansion is
// DNSSEC-secure, the TLSA base domain is the expanded name first, then the name as published.

import { tlsaOwner } from '../dane/tlsa.js';
import type { Lookup, Resolver, TlsaRecord } from '../dns/resolver.js';
import { answerTtls, classifyDnsFailure, type DnsFailure, isAnswered } from './dns-failure.js';
import type { MxName } from './mx.js';

/** The port of the TLSA owner name for SMTP (RFC 7672 §2.2.3), whatever port a lab probes. */
const SMTP_TLSA_PORT = 25;

export interface HostAddresses {
  /** A then AAAA values. */
  all: string[];
  /** Both the A and the AAAA answers (or their denials) are DNSSEC-secure. */
  secure: boolean;
  /** Both lookups said NXDOMAIN. */
  nxdomain: boolean;
  /** Where the host name's CNAME chain ends, when it is an alias. */
  cnameTarget?: string;
  /** The A or AAAA lookups that were not answered. */
  failures: DnsFailure[];
}

/**
 * `secure`: the answer (records, or their absence) is DNSSEC-validated; `insecure`: unsigned zone;
 * `bogus`: fails validation; `failed`: no answer (SERVFAIL not caused by DNSSEC, timeout, refused).
 */
export type TlsaStatus = 'secure' | 'insecure' | 'bogus' | 'failed';

export interface TlsaView {
  /** `_25._tcp.<host>.` */
  owner: string;
  status: TlsaStatus;
  /** The records that came back (also when insecure; empty when none or on failure). */
  records: TlsaRecord[];
  /** For `bogus` and `failed`. */
  failure?: DnsFailure;
  /** For `failed`: what went wrong, in one phrase. */
  error?: string;
  /** Set when the owner is under the host's CNAME-expanded name (RFC 7672 §2.2.2), to that name. */
  baseDomain?: string;
}

export interface HostView {
  mx: MxName;
  /** Absent for MX names that are no host name (nothing is looked up). */
  addresses?: HostAddresses;
  /** Looked up when the host has an address (and, for a sender, only when the addresses are secure). */
  tlsa?: TlsaView;
  ttls: number[];
}

/** Addresses, then TLSA records, of one MX host. Never rejects. */
export async function gatherHost(
  resolver: Resolver,
  mx: MxName,
  options: { tlsaOfInsecureHost: boolean },
): Promise<HostView> {
  const ttls: number[] = [];
  if (mx.form !== 'name') return { mx, ttls };
  const addresses = await lookupAddresses(resolver, mx.host, ttls);
  if (addresses.all.length === 0) return { mx, addresses, ttls };
  // RFC 7672 §2.2.2: a sender looks TLSA records up only for hosts whose address records are secure.
  if (!addresses.secure && !options.tlsaOfInsecureHost) return { mx, addresses, ttls };
  const tlsa = await tlsaForHost(resolver, mx.host, addresses, ttls);
  return { mx, addresses, tlsa, ttls };
}

/** A and AAAA of `host`, both asked. */
export async function lookupAddresses(
  resolver: Resolver,
  host: string,
  ttls: number[] = [],
): Promise<HostAddresses> {
  const [a, aaaa] = await Promise.all([resolver.a(host), resolver.aaaa(host)]);
  const lookups: Array<Lookup<string>> = [a, aaaa];
  for (const l of lookups) ttls.push(...answerTtls(l.result));
  const failures = await Promise.all(
    lookups.filter((l) => !isAnswered(l.outcome)).map((l) => classifyDnsFailure(resolver, l.result)),
  );
  const chain = a.result.cnameChain.length > 0 ? a.result.cnameChain : aaaa.result.cnameChain;
  const addresses: HostAddresses = {
    all: [...a.values, ...aaaa.values],
    // RFC 7672 §2.2.2: DANE needs secure address records; both answers (records or denial) must be.
    secure: a.secure && aaaa.secure,
    nxdomain: a.outcome === 'nxdomain' && aaaa.outcome === 'nxdomain',
    failures,
  };
  const target = chain[chain.length - 1];
  if (target !== undefined) addresses.cnameTarget = target;
  return addresses;
}

/**
 * The addresses to connect to for `host` (a policy host, RFC 8461 §3.3), for fetchers: throws with the
 * classified failure when there is none because a lookup failed.
 */
export async function resolveHostAddresses(resolver: Resolver, host: string): Promise<string[]> {
  const addresses = await lookupAddresses(resolver, host);
  const failed = addresses.failures[0];
  if (addresses.all.length === 0 && failed !== undefined) {
    throw new Error(`${failed.query}: ${failed.summary}`);
  }
  return addresses.all;
}

/**
 * RFC 7672 §2.2.2: for an MX host whose CNAME expansion is DNSSEC-secure, the TLSA base domain is the expanded
 * name; when no secure TLSA records are found there, the original name is tried. A bogus or failed lookup at
 * the expanded name stands (a DANE sender defers there).
 */
async function tlsaForHost(
  resolver: Resolver,
  host: string,
  addresses: HostAddresses,
  ttls: number[],
): Promise<TlsaView> {
  const target = addresses.cnameTarget;
  if (target === undefined || !addresses.secure) return lookupTlsa(resolver, host, ttls);
  const expanded = await lookupTlsa(resolver, target, ttls);
  if (expanded.status === 'bogus' || expanded.status === 'failed') return expanded;
  if (expanded.status === 'secure' && expanded.records.length > 0) return { ...expanded, baseDomain: target };
  return lookupTlsa(resolver, host, ttls);
}

async function lookupTlsa(resolver: Resolver, host: string, ttls: number[]): Promise<TlsaView> {
  let owner: string;
  try {
    owner = tlsaOwner(host, SMTP_TLSA_PORT);
  } catch (err) {
    return { owner: `_25._tcp.${host}.`, status: 'failed', records: [], error: (err as Error).message };
  }
  const lookup = await resolver.tlsa(owner);
  ttls.push(...answerTtls(lookup.result));
  if (isAnswered(lookup.outcome)) {
    return { owner, status: lookup.secure ? 'secure' : 'insecure', records: lookup.values };
  }
  const failure = await classifyDnsFailure(resolver, lookup.result);
  return failure.kind === 'bogus'
    ? { owner, status: 'bogus', records: [], failure }
    : { owner, status: 'failed', records: [], failure, error: failure.summary };
}
