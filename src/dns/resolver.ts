// The Resolver interface every lookup in mxguard goes through, its result types, and the typed
// lookups (TXT, MX, A, AAAA, CNAME, TLSA) and DNSSEC helpers built on top of a single `query`.
// DnsClient (client.ts) is the real implementation; tests can extend ResolverBase with a fake `query`.
import type { Answer, OptAnswer, RecordType } from 'dns-packet';
import { normalizeName } from './names.js';

export type DnsRecordType = RecordType;

/** A resource record as dns-packet decodes it (never the OPT pseudo-record). */
export type DnsRecord = Exclude<Answer, OptAnswer>;

/**
 * What became of a query. `nodata`: the name exists but has no record of the type (NOERROR, empty
 * answer); `timeout`: no server answered in time; `error`: the name cannot be queried, every server
 * was unreachable, or a server answered with another RCODE (FORMERR, NOTIMP...).
 */
export type DnsOutcome = 'ok' | 'nxdomain' | 'nodata' | 'servfail' | 'refused' | 'timeout' | 'error';

export interface DnsServer {
  host: string;
  port: number;
}

/** RFC 8914 Extended DNS Error: INFO-CODE and the optional EXTRA-TEXT. */
export interface ExtendedDnsError {
  code: number;
  text?: string;
}

export interface QueryOptions {
  /** Set the CD (checking disabled) bit: the resolver returns data even when DNSSEC validation fails. */
  cd?: boolean;
}

export interface DnsResult {
  /** The name asked for, normalised (lower case, no trailing dot; the root is "."). */
  name: string;
  type: DnsRecordType;
  outcome: DnsOutcome;
  /** RCODE mnemonic of the reply ("NOERROR", "SERVFAIL"...); absent when no server replied. */
  rcode?: string;
  /** The AD flag: the resolver validated the answer (or the denial) with DNSSEC. */
  secure: boolean;
  /** Records of the asked type at the end of the CNAME chain (RRSIGs and CNAMEs left out). */
  answers: DnsRecord[];
  /** Names the CNAME chain led to, in order (empty when `name` had no CNAME). */
  cnameChain: string[];
  ede: ExtendedDnsError[];
  /** The server whose reply this is, and how it came. */
  server?: DnsServer;
  transport?: 'udp' | 'tcp';
  /** Why, for `timeout` and `error`. */
  error?: string;
  /**
   * For `nxdomain` and `nodata`: how long the denial may be cached, in seconds, from the SOA record in the
   * authority section (RFC 2308 §5: the smaller of its TTL and its MINIMUM field); absent without one.
   */
  negativeTtl?: number;
}

/** A typed lookup: the outcome and AD flag of the query, the decoded values, and the full result. */
export interface Lookup<T> {
  outcome: DnsOutcome;
  secure: boolean;
  values: T[];
  result: DnsResult;
}

export interface MxRecord {
  preference: number;
  /** Normalised exchange host; "." for the root (null MX). */
  exchange: string;
}

export interface MxLookup extends Lookup<MxRecord> {
  /** RFC 7505 §3: the only MX record is the null MX (exchange "."): the domain accepts no mail. */
  nullMx: boolean;
}

export interface TlsaRecord {
  usage: number;
  selector: number;
  matchingType: number;
  data: Buffer;
}

export interface ValidatingCheck {
  /** The root DNSKEY came back with AD: the resolver validates DNSSEC. */
  validating: boolean;
  result: DnsResult;
}

/**
 * `bogus`: the data fails DNSSEC validation (the CD query succeeds, or the resolver gave a DNSSEC
 * Extended DNS Error); `servfail`: the resolver or the zone is broken; `not-servfail`: the query
 * did not give SERVFAIL, nothing to classify.
 */
export interface FailureClassification {
  verdict: 'bogus' | 'servfail' | 'not-servfail';
  result: DnsResult;
  /** The repeat with the CD bit, made when `result` was SERVFAIL. */
  cdResult?: DnsResult;
}

export interface Resolver {
  query(name: string, type: DnsRecordType, options?: QueryOptions): Promise<DnsResult>;
  txt(name: string): Promise<Lookup<string>>;
  mx(name: string): Promise<MxLookup>;
  a(name: string): Promise<Lookup<string>>;
  aaaa(name: string): Promise<Lookup<string>>;
  cname(name: string): Promise<Lookup<string>>;
  tlsa(name: string): Promise<Lookup<TlsaRecord>>;
  checkValidating(): Promise<ValidatingCheck>;
  classifyFailure(name: string, type: DnsRecordType): Promise<FailureClassification>;
}

/**
 * RFC 8914 §4: the INFO-CODEs about DNSSEC (1-2 unsupported algorithm/digest, 5 indeterminate,
 * 6 bogus, 7-8 signature expired/not yet valid, 9 DNSKEY missing, 10 RRSIGs missing,
 * 11 no zone key bit, 12 NSEC missing). 3 (stale answer) and 4 (forged answer) are not.
 */
export const DNSSEC_EDE_CODES: ReadonlySet<number> = new Set([1, 2, 5, 6, 7, 8, 9, 10, 11, 12]);

const ANSWERED: ReadonlySet<DnsOutcome> = new Set(['ok', 'nodata', 'nxdomain']);

/** The typed lookups and DNSSEC helpers, for any `query`. */
export abstract class ResolverBase implements Resolver {
  abstract query(name: string, type: DnsRecordType, options?: QueryOptions): Promise<DnsResult>;

  /** RFC 7208 §3.3 / RFC 8461 §3.1: the strings of one TXT record are joined with nothing between. */
  async txt(name: string): Promise<Lookup<string>> {
    return this.lookup(name, 'TXT', (r) => (r.type === 'TXT' ? [joinTxt(r.data)] : []));
  }

  /** MX records sorted by preference (then exchange, so the order is stable). */
  async mx(name: string): Promise<MxLookup> {
    const found = await this.lookup(name, 'MX', (r) =>
      r.type === 'MX'
        ? [{ preference: r.data.preference ?? 0, exchange: normalizeName(r.data.exchange) }]
        : [],
    );
    found.values.sort((x, y) => x.preference - y.preference || x.exchange.localeCompare(y.exchange));
    const nullMx = found.values.length === 1 && found.values[0]!.exchange === '.';
    return { ...found, nullMx };
  }

  async a(name: string): Promise<Lookup<string>> {
    return this.lookup(name, 'A', (r) => (r.type === 'A' ? [r.data] : []));
  }

  async aaaa(name: string): Promise<Lookup<string>> {
    return this.lookup(name, 'AAAA', (r) => (r.type === 'AAAA' ? [r.data] : []));
  }

  /** The target of the CNAME at `name` itself (not followed). */
  async cname(name: string): Promise<Lookup<string>> {
    return this.lookup(name, 'CNAME', (r) => (r.type === 'CNAME' ? [normalizeName(r.data)] : []));
  }

  async tlsa(name: string): Promise<Lookup<TlsaRecord>> {
    return this.lookup(name, 'TLSA', (r) =>
      r.type === 'TLSA'
        ? [
            {
              usage: r.data.usage,
              selector: r.data.selector,
              matchingType: r.data.matchingType,
              data: r.data.certificate,
            },
          ]
        : [],
    );
  }

  /** Ask for the root DNSKEY: a validating resolver sets AD on it (RFC 4035 §3.2.3). */
  async checkValidating(): Promise<ValidatingCheck> {
    const result = await this.query('.', 'DNSKEY');
    return { validating: result.outcome === 'ok' && result.secure, result };
  }

  /**
   * Tell DNSSEC failure from a broken resolver or zone: repeat a SERVFAIL query with CD
   * (RFC 4035 §3.2.2). If the data comes back, or the resolver named a DNSSEC Extended DNS Error
   * (RFC 8914), the data is bogus; otherwise the SERVFAIL has another cause.
   */
  async classifyFailure(name: string, type: DnsRecordType): Promise<FailureClassification> {
    const result = await this.query(name, type);
    if (result.outcome !== 'servfail') return { verdict: 'not-servfail', result };
    const cdResult = await this.query(name, type, { cd: true });
    const dnssecEde = [...result.ede, ...cdResult.ede].some((e) => DNSSEC_EDE_CODES.has(e.code));
    const bogus = ANSWERED.has(cdResult.outcome) || dnssecEde;
    return { verdict: bogus ? 'bogus' : 'servfail', result, cdResult };
  }

  private async lookup<T>(
    name: string,
    type: DnsRecordType,
    values: (record: DnsRecord) => T[],
  ): Promise<Lookup<T>> {
    const result = await this.query(name, type);
    return { outcome: result.outcome, secure: result.secure, values: result.answers.flatMap(values), result };
  }
}

/** One TXT record's character-strings, concatenated, as UTF-8 text. */
export function joinTxt(data: string | Buffer | Array<string | Buffer>): string {
  const parts = Array.isArray(data) ? data : [data];
  const bytes = parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p));
  return Buffer.concat(bytes).toString('utf8');
}
