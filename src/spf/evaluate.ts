// SPF evaluation: RFC 7208 §4 check_host() for a client IP and a domain, following include: (§5.2) and
// redirect= (§6.1), matching ip4/ip6 (§5.6), a (§5.3), mx (§5.4) and exists (§5.7), with the processing
// limits of §4.6.4 (at most 10 DNS-querying terms, at most 2 void lookups, at most 10 MX names' addresses
// per mx). Checked against Debian's Mail::SPF (test/spf/interop-mail-spf.test.ts).
// DNS comes in through SpfDns (the resolver lives in a layer above); answers are kept per evaluator, so
// judging many addresses against one domain asks each name once, and an evaluator asks at most
// `maxQueries` names in all (past that: temperror), whatever the records say.
// The sender is taken to be postmaster@<domain> (RFC 7208 §4.3: the local-part when none is known), so
// macros (§7, src/spf/macro.ts) expand: %{i} %{d} %{o} %{s} %{l} %{v}. Not evaluated, as they need an SMTP
// session or a reverse lookup: a domain-spec with %{h} or %{p}, and ptr (§5.5, "SHOULD NOT be used"); such
// terms count toward the limit but never match. exp= is not read (it only explains a fail).
import { inNetwork, ipValue } from '../common/ip.js';
import { SpfError } from './error.js';
import { expandMacros } from './macro.js';
import {
  parseSpf,
  SPF_MAX_DNS_LOOKUPS,
  SPF_MAX_MX_NAMES,
  SPF_MAX_VOID_LOOKUPS,
  type SpfMechanism,
  type SpfRecord,
} from './record.js';

/** RFC 7208 §2.6: the results of check_host(). */
export type SpfResult = 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'permerror' | 'temperror';

/** One lookup's answer: the values, none (NXDOMAIN or NODATA: a void lookup), or a DNS failure. */
export type SpfDnsAnswer = { outcome: 'ok'; values: string[] } | { outcome: 'void' } | { outcome: 'error' };

/** The lookups an evaluation makes: TXT strings per record joined, addresses, MX exchange names. */
export interface SpfDns {
  txt(name: string): Promise<SpfDnsAnswer>;
  a(name: string): Promise<SpfDnsAnswer>;
  aaaa(name: string): Promise<SpfDnsAnswer>;
  mx(name: string): Promise<SpfDnsAnswer>;
}

/** Names one evaluator asks at most (a record tree within the limits asks far fewer). */
export const SPF_EVALUATOR_MAX_QUERIES = 100;

const RESULT_OF: Record<SpfMechanism['qualifier'], SpfResult> = {
  '+': 'pass',
  '-': 'fail',
  '~': 'softfail',
  '?': 'neutral',
};
/** RFC 7208 §4.6.4: the terms that count toward the limit of 10. */
const LOOKUP_TERMS: readonly string[] = ['include', 'a', 'mx', 'ptr', 'exists', 'redirect'];

/** Stops an evaluation with a result (a limit reached, a DNS failure). */
class Ended extends Error {
  constructor(readonly result: 'permerror' | 'temperror') {
    super(result);
  }
}

/** One check_host() run: the client, the sender's domain, the counters of RFC 7208 §4.6.4. */
interface Run {
  ip: string;
  family: 4 | 6;
  senderDomain: string;
  lookups: number;
  voids: number;
}

export class SpfEvaluator {
  private readonly answers = new Map<string, Promise<SpfDnsAnswer>>();

  constructor(
    private readonly dns: SpfDns,
    private readonly maxQueries = SPF_EVALUATOR_MAX_QUERIES,
  ) {}

  /** check_host(ip, domain) (RFC 7208 §4); an address that is not an IP gives permerror. */
  async check(ip: string, domain: string): Promise<SpfResult> {
    const parsed = ipValue(ip);
    if (!parsed) return 'permerror';
    const run: Run = { ip, family: parsed.family, senderDomain: normalize(domain), lookups: 0, voids: 0 };
    try {
      return await this.checkHost(run, run.senderDomain);
    } catch (err) {
      if (err instanceof Ended) return err.result;
      throw err;
    }
  }

  private async checkHost(run: Run, domain: string): Promise<SpfResult> {
    const record = await this.record(run, domain);
    if (typeof record === 'string') return record;
    // RFC 7208 §4.6.2: the mechanisms left to right; the first that matches gives its qualifier's result.
    for (const term of record.terms) {
      if (term.kind !== 'mechanism') continue;
      if (await this.matches(run, domain, term)) return RESULT_OF[term.qualifier];
    }
    // RFC 7208 §6.1: redirect= only when no mechanism matched (a record with "all" always matches).
    const redirect = record.terms.find((t) => t.kind === 'modifier' && t.name === 'redirect');
    if (redirect?.kind !== 'modifier') return 'neutral';
    this.countLookup(run);
    const target = this.expand(run, domain, redirect.value);
    if (target === undefined) return 'neutral';
    const result = await this.checkHost(run, target);
    return result === 'none' ? 'permerror' : result;
  }

  /** RFC 7208 §4.4-§4.6: the one SPF record of `domain`, or the result when there is none or it is broken. */
  private async record(run: Run, domain: string): Promise<SpfRecord | SpfResult> {
    const answer = await this.ask('txt', domain);
    if (answer.outcome === 'error') return 'temperror';
    if (answer.outcome === 'void') {
      this.countVoid(run);
      return 'none';
    }
    const records = answer.values.filter((v) => /^v=spf1(?: |$)/i.test(v));
    if (records.length === 0) return 'none';
    if (records.length > 1) return 'permerror';
    try {
      return parseSpf(records[0]!).record;
    } catch (err) {
      if (err instanceof SpfError) return 'permerror';
      throw err;
    }
  }

  private async matches(run: Run, domain: string, term: SpfMechanism): Promise<boolean> {
    if (LOOKUP_TERMS.includes(term.name)) this.countLookup(run);
    if (term.name === 'ptr') return false;
    const target = term.domainSpec ? this.expand(run, domain, term.domainSpec) : domain;
    if (target === undefined) return false;
    switch (term.name) {
      case 'all':
        return true;
      case 'ip4':
      case 'ip6':
        return term.ip !== undefined && inNetwork(run.ip, term.ip, this.prefix(run, term));
      case 'include': {
        // RFC 7208 §5.2: pass matches; fail, softfail, neutral do not; errors and none end the evaluation.
        const result = await this.checkHost(run, target);
        if (result === 'temperror') throw new Ended('temperror');
        if (result === 'permerror' || result === 'none') throw new Ended('permerror');
        return result === 'pass';
      }
      case 'a':
        return this.inAddresses(run, await this.addresses(run, target, true), term);
      case 'mx': {
        const mx = await this.values(run, 'mx', target, true);
        for (const [i, exchange] of mx.entries()) {
          // RFC 7208 §4.6.4: an mx mechanism MUST NOT query more than 10 address records: the 11th is
          // permerror (a match among the first ten ends it before). Not counted as void lookups.
          if (i === SPF_MAX_MX_NAMES) throw new Ended('permerror');
          if (this.inAddresses(run, await this.addresses(run, normalize(exchange), false), term)) return true;
        }
        return false;
      }
      case 'exists':
        // RFC 7208 §5.7: an A query whatever the client's family; any answer matches.
        return (await this.values(run, 'a', target, true)).length > 0;
      default:
        return false;
    }
  }

  /** A domain-spec with its macros expanded (RFC 7208 §7), or undefined when it needs %{h} or %{p}. */
  private expand(run: Run, domain: string, spec: string): string | undefined {
    if (!spec.includes('%')) return normalize(spec);
    const name = expandMacros(spec, {
      local: 'postmaster',
      senderDomain: run.senderDomain,
      domain,
      ip: run.ip,
      family: run.family,
    });
    return name === undefined ? undefined : normalize(name);
  }

  /** RFC 7208 §5.6: the prefix of the client's family (ip4 /32 and ip6 /128 when none is given). */
  private prefix(run: Run, term: SpfMechanism): number {
    return run.family === 4 ? (term.cidr4 ?? 32) : (term.cidr6 ?? 128);
  }

  private inAddresses(run: Run, addresses: string[], term: SpfMechanism): boolean {
    return addresses.some((a) => inNetwork(run.ip, a, this.prefix(run, term)));
  }

  /** RFC 7208 §5.3: A for an IPv4 client, AAAA for an IPv6 one. */
  private addresses(run: Run, name: string, countVoid: boolean): Promise<string[]> {
    return this.values(run, run.family === 4 ? 'a' : 'aaaa', name, countVoid);
  }

  private async values(run: Run, type: keyof SpfDns, name: string, countVoid: boolean): Promise<string[]> {
    const answer = await this.ask(type, name);
    // RFC 7208 §5: a DNS failure (SERVFAIL, timeout) ends check_host() with temperror.
    if (answer.outcome === 'error') throw new Ended('temperror');
    if (answer.outcome === 'void') {
      if (countVoid) this.countVoid(run);
      return [];
    }
    return answer.values;
  }

  private countLookup(run: Run): void {
    run.lookups += 1;
    if (run.lookups > SPF_MAX_DNS_LOOKUPS) throw new Ended('permerror');
  }

  private countVoid(run: Run): void {
    run.voids += 1;
    if (run.voids > SPF_MAX_VOID_LOOKUPS) throw new Ended('permerror');
  }

  /** One answer per (type, name) for the evaluator's life; past maxQueries names: a DNS failure. */
  private ask(type: keyof SpfDns, name: string): Promise<SpfDnsAnswer> {
    const key = `${type} ${name}`;
    let answer = this.answers.get(key);
    if (!answer) {
      if (this.answers.size >= this.maxQueries) return Promise.resolve({ outcome: 'error' });
      answer = this.dns[type](name).catch((): SpfDnsAnswer => ({ outcome: 'error' }));
      this.answers.set(key, answer);
    }
    return answer;
  }
}

/** Names compare in lower case without the root dot. */
function normalize(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}
