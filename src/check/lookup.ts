// DNS lookups shared by the check sections: TXT records with failures classified, and record lines for fixes.
import { quoteTxt } from '../common/txt.js';
import { normalizeName } from '../dns/names.js';
import type { DnsResult, Resolver } from '../dns/resolver.js';
import { classifyDnsFailure, failureSentence } from '../sender/dns-failure.js';

/** What a TXT lookup gave: the records, nothing at the name (NXDOMAIN / NODATA), or a failure to say. */
export type TxtAnswer =
  | { kind: 'records'; records: string[]; result: DnsResult }
  | { kind: 'empty'; outcome: 'nxdomain' | 'nodata'; result: DnsResult }
  | { kind: 'failed'; reason: string; result: DnsResult };

/** Look up the TXT records at `name`; a SERVFAIL is classified (DNSSEC bogus or broken server). */
export async function lookupTxt(resolver: Resolver, name: string): Promise<TxtAnswer> {
  const found = await resolver.txt(name);
  if (found.outcome === 'ok' && found.values.length > 0) {
    return { kind: 'records', records: found.values, result: found.result };
  }
  if (found.outcome === 'ok' || found.outcome === 'nodata') {
    return { kind: 'empty', outcome: 'nodata', result: found.result };
  }
  if (found.outcome === 'nxdomain') return { kind: 'empty', outcome: 'nxdomain', result: found.result };
  return { kind: 'failed', reason: await describeDnsFailure(resolver, found.result), result: found.result };
}

/** One sentence on why a lookup got no answer, naming the query (the shared classifier). */
export async function describeDnsFailure(resolver: Resolver, result: DnsResult): Promise<string> {
  return failureSentence(await classifyDnsFailure(resolver, result));
}

/** A zone-file line for a TXT record: `name. IN TXT "..."` (split into 255-octet strings). */
export function txtLine(name: string, value: string): string {
  return `${normalizeName(name)}. IN TXT ${quoteTxt(value)}`;
}
