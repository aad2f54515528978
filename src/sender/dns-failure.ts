// Why a lookup on the sending path got no usable answer: the one failure classifier that `check`,
// `policyd` and monitoring share. A SERVFAIL is asked again with the CD bit (RFC 4035 §3.2.2) to tell
// data that fails DNSSEC validation (bogus: a DANE or MTA-STS sender defers, RFC 7672 §2.1.1) from a
// broken server or zone.
import type { DnsOutcome, DnsResult, Resolver } from '../dns/resolver.js';

export type DnsFailureKind = 'bogus' | 'servfail' | 'timeout' | 'refused' | 'error';

export interface DnsFailure {
  kind: DnsFailureKind;
  /** "MX example.com" */
  query: string;
  /** RCODE, Extended DNS Errors and server, or the transport error: "SERVFAIL (EDE 6 DNSSEC Bogus) from 127.0.0.1:53". */
  summary: string;
  /** The result the summary describes. */
  result: DnsResult;
}

const ANSWERED: ReadonlySet<DnsOutcome> = new Set(['ok', 'nodata', 'nxdomain']);

/** The query was answered: records, NODATA or NXDOMAIN (each possibly DNSSEC-secure). */
export function isAnswered(outcome: DnsOutcome): boolean {
  return ANSWERED.has(outcome);
}

/** Classify a lookup that was not answered. Never rejects. */
export async function classifyDnsFailure(resolver: Resolver, result: DnsResult): Promise<DnsFailure> {
  const query = `${result.type} ${result.name}`;
  switch (result.outcome) {
    case 'servfail': {
      const classified = await resolver.classifyFailure(result.name, result.type);
      return classified.verdict === 'bogus'
        ? { kind: 'bogus', query, summary: dnsResultSummary(result), result }
        : { kind: 'servfail', query, summary: dnsResultSummary(result), result };
    }
    case 'timeout':
      return { kind: 'timeout', query, summary: dnsResultSummary(result), result };
    case 'refused':
      return { kind: 'refused', query, summary: dnsResultSummary(result), result };
    default:
      return { kind: 'error', query, summary: dnsResultSummary(result), result };
  }
}

/** A short phrase for a failure: "DNSSEC validation failed (bogus)", "SERVFAIL", "timeout"... */
export function failurePhrase(failure: DnsFailure): string {
  switch (failure.kind) {
    case 'bogus':
      return 'DNSSEC validation failed (bogus)';
    case 'servfail':
      return 'SERVFAIL';
    case 'timeout':
      return 'timeout';
    case 'refused':
      return 'REFUSED';
    case 'error':
      return failure.result.error ?? failure.result.rcode ?? 'error';
  }
}

/** One sentence on why the lookup got no answer, naming the query. */
export function failureSentence(failure: DnsFailure): string {
  const what = failure.query;
  switch (failure.kind) {
    case 'bogus':
      return `the answer for ${what} fails DNSSEC validation (bogus)`;
    case 'servfail':
      return `the resolver answered SERVFAIL for ${what}`;
    case 'timeout':
      return `no answer for ${what} (timeout)`;
    case 'refused':
      return `the resolver refused the query for ${what}`;
    case 'error':
      return `the lookup of ${what} failed: ${failure.result.error ?? failure.result.rcode ?? 'no usable answer'}`;
  }
}

/** Why the resolver gave no usable answer, e.g. "SERVFAIL (EDE 6 DNSSEC Bogus) from 127.0.0.1:53". */
export function dnsResultSummary(result: DnsResult): string {
  const ede = result.ede.map((e) => ` (EDE ${e.code}${e.text ? ` ${e.text}` : ''})`).join('');
  const head = `${result.rcode ?? result.outcome}${ede}`;
  if (result.error) return `${head}: ${result.error}`;
  return result.server ? `${head} from ${result.server.host}:${result.server.port}` : head;
}

/** TTLs of the records a result carries (for how long a verdict built on them may be kept). */
export function answerTtls(result: DnsResult): number[] {
  return result.answers.map((r) => r.ttl).filter((t): t is number => typeof t === 'number');
}
