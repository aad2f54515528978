// The SPF section of `mxguard check` (RFC 7208): the apex TXT record, its syntax, its `all`, and the
// processing limits of §4.6.4 counted RECURSIVELY through include: and redirect= — at most 10 terms
// that query DNS and at most 2 void lookups per evaluation, both permerror when exceeded.
//
// The count is the worst case over every term, as a receiver evaluating the record for a sender that
// matches nothing would see it; an evaluation that matches early stops sooner, but the record is
// broken for everyone else. Macros (%{...}) depend on the sender: such terms are counted, not followed.
import { normalizeName } from '../dns/names.js';
import type { DnsResult, Resolver } from '../dns/resolver.js';
import { SpfError } from '../spf/error.js';
import {
  formatSpf,
  parseSpf,
  SPF_MAX_DNS_LOOKUPS,
  SPF_MAX_MX_NAMES,
  SPF_MAX_VOID_LOOKUPS,
  type SpfRecord,
  type SpfTerm,
} from '../spf/record.js';
import { describeDnsFailure, lookupTxt, type TxtAnswer, txtLine } from './lookup.js';
import { type CheckEnvironment, type Finding, finding, type Status } from './types.js';

/** Our bounds, so a hostile zone cannot keep us querying: DNS queries per check, include/redirect depth. */
export const SPF_MAX_QUERIES = 50;
export const SPF_MAX_DEPTH = 12;
/** Past this many DNS-querying terms the record is long broken; stop following and say "at least". */
const STOP_COUNTING_AT = 2 * SPF_MAX_DNS_LOOKUPS;

/** RFC 7208 §4.5: SPF records are the TXT records that begin with "v=spf1" followed by a space or the end. */
export function spfRecords(txts: readonly string[]): string[] {
  return txts.filter((t) => /^v=spf1(?: |$)/i.test(t));
}

export async function checkSpf(domain: string, env: CheckEnvironment): Promise<Finding[]> {
  const name = normalizeName(domain);
  const out: Finding[] = [];
  const add = (status: Status, code: string, message: string, fix?: string) =>
    out.push(finding('spf', status, code, message, fix === undefined ? {} : { fix }));

  const answer = await lookupTxt(env.resolver, name);
  if (answer.kind === 'failed') {
    add('fail', 'SPF_DNS', `could not read the SPF record: ${answer.reason}; receivers get temperror`);
    return out;
  }
  const records = answer.kind === 'records' ? spfRecords(answer.records) : [];
  if (records.length === 0) {
    add(
      'warn',
      'SPF_NONE',
      `${name} has no SPF record (no TXT record beginning with "v=spf1"): receivers cannot tell forged senders`,
      `${txtLine(name, 'v=spf1 mx -all')}\n` +
        '(list every other server that sends as this domain before -all; a domain that sends no mail publishes "v=spf1 -all")',
    );
    return out;
  }
  if (records.length > 1) {
    add(
      'fail',
      'SPF_MULTIPLE',
      `${name} has ${records.length} SPF records; RFC 7208 §4.5: more than one is a permerror: ${records.map((r) => `"${r}"`).join(', ')}`,
      'merge them into one TXT record beginning with "v=spf1" and delete the others',
    );
    return out;
  }
  const text = records[0]!;
  let record: SpfRecord;
  try {
    const parsed = parseSpf(text);
    record = parsed.record;
    add('pass', 'SPF_RECORD', `SPF record: "${text}"`);
    for (const p of parsed.warnings) {
      const where = p.where ? `${p.where}: ` : '';
      switch (p.code) {
        case 'SPF_TOO_MANY_LOOKUPS':
          break; // counted below, through include and redirect
        case 'SPF_PASS_ALL':
          add('fail', 'SPF_PASS_ALL', `${where}${p.message}`, txtLine(name, endingInFail(record)));
          break;
        case 'SPF_NEUTRAL_ALL':
          add('warn', 'SPF_NEUTRAL_ALL', `${where}${p.message}`, txtLine(name, endingInFail(record)));
          break;
        case 'SPF_NO_ALL':
          add('warn', 'SPF_NO_ALL', p.message, txtLine(name, endingInFail(record)));
          break;
        case 'SPF_DOMAIN_NOT_FQDN':
          // RFC 7208 §7.1 wants a dot and a top-level label; strict receivers return permerror.
          add('fail', 'SPF_DOMAIN_NOT_FQDN', `${where}${p.message}`, 'write the full domain name');
          break;
        case 'SPF_PTR':
          add(
            'warn',
            'SPF_PTR',
            `${where}${p.message}`,
            'replace ptr with the ip4:/ip6: ranges or a: names of the senders',
          );
          break;
        default:
          add(
            p.severity === 'note' ? 'info' : 'warn',
            p.severity === 'note' ? 'SPF_NOTE' : 'SPF_WARNING',
            `${where}${p.message}`,
          );
      }
    }
  } catch (err) {
    if (!(err instanceof SpfError)) throw err;
    add(
      'fail',
      'SPF_SYNTAX',
      `the SPF record "${text}" is invalid, receivers return permerror: ${err.message}`,
    );
    return out;
  }

  const walk = new SpfWalk(env.resolver);
  await walk.record(name, record, [name]);
  out.push(...walk.findings);
  const total = walk.lookups.length;
  const atLeast = walk.truncated ? 'at least ' : '';
  if (total > SPF_MAX_DNS_LOOKUPS || walk.truncated) {
    add(
      'fail',
      'SPF_TOO_MANY_LOOKUPS',
      `evaluating the SPF record takes ${atLeast}${total} DNS-querying terms (include, a, mx, ptr, exists, redirect) ` +
        `counted through include and redirect; RFC 7208 §4.6.4 allows ${SPF_MAX_DNS_LOOKUPS}, receivers return permerror: ` +
        walk.breakdown(),
      `bring the count to ${SPF_MAX_DNS_LOOKUPS} or less: drop includes of services no longer used, replace a/mx/include ` +
        'terms with the ip4:/ip6: ranges they stand for, and do not use ptr',
    );
  }
  if (walk.voids.length > SPF_MAX_VOID_LOOKUPS) {
    add(
      'fail',
      'SPF_VOID_LOOKUPS',
      `${walk.voids.length} lookups find nothing (NXDOMAIN or no records): ${walk.voids.join(', ')}; ` +
        `RFC 7208 §4.6.4 allows ${SPF_MAX_VOID_LOOKUPS}, receivers return permerror`,
      'remove the terms whose names no longer exist or have no records',
    );
  }
  if (walk.macroTerms.length > 0) {
    add(
      'info',
      'SPF_MACROS',
      `terms with macros depend on the sender and were counted but not followed: ${walk.macroTerms.join(', ')}`,
    );
  }
  const withinLimits = total <= SPF_MAX_DNS_LOOKUPS && walk.voids.length <= SPF_MAX_VOID_LOOKUPS;
  // A loop is followed by receivers until the lookup limit: no pass on the count then.
  if (withinLimits && !walk.truncated && !walk.looped) {
    add(
      'pass',
      'SPF_LOOKUPS',
      `${total} of ${SPF_MAX_DNS_LOOKUPS} DNS lookups and ${walk.voids.length} of ${SPF_MAX_VOID_LOOKUPS} void lookups, ` +
        `counted through include and redirect${total > 0 ? `: ${walk.breakdown()}` : ''}`,
    );
  }
  return out;
}

/** One DNS-querying term met during the walk: the record (domain) it is in and the term as written. */
interface Place {
  domain: string;
  term: string;
}

/** Follows include: and redirect= depth first, in evaluation order, counting lookups and void lookups. */
class SpfWalk {
  readonly lookups: Place[] = [];
  readonly voids: string[] = [];
  readonly macroTerms: string[] = [];
  readonly findings: Finding[] = [];
  truncated = false;
  looped = false;
  private queries = 0;
  private readonly txtCache = new Map<string, Promise<TxtAnswer>>();

  constructor(private readonly resolver: Resolver) {}

  /** RFC 7208 §4.6: mechanisms in order, then redirect= (ignored when the record has "all", §6.1). */
  async record(domain: string, record: SpfRecord, path: string[]): Promise<void> {
    const hasAll = record.terms.some((t) => t.kind === 'mechanism' && t.name === 'all');
    for (const term of record.terms) {
      if (term.kind === 'mechanism') await this.lookupTerm(domain, term, path);
    }
    const redirect = record.terms.find((t) => t.kind === 'modifier' && t.name === 'redirect');
    if (redirect && !hasAll) await this.lookupTerm(domain, redirect, path);
  }

  /** "example.com 3 (include:a, mx, a); a 2 (...)" in the order the records were met. */
  breakdown(): string {
    const byDomain = new Map<string, string[]>();
    for (const l of this.lookups) byDomain.set(l.domain, [...(byDomain.get(l.domain) ?? []), l.term]);
    return [...byDomain].map(([d, terms]) => `${d} ${terms.length} (${terms.join(', ')})`).join('; ');
  }

  private fail(code: string, message: string, fix?: string): void {
    this.findings.push(finding('spf', 'fail', code, message, fix === undefined ? {} : { fix }));
  }

  /** Can we still send a query? Past our bounds the walk stops (and the result says "at least"). */
  private mayQuery(cost: number): boolean {
    if (this.lookups.length > STOP_COUNTING_AT || this.queries + cost > SPF_MAX_QUERIES) {
      this.truncated = true;
      return false;
    }
    this.queries += cost;
    return true;
  }

  /** A mechanism, or the redirect= modifier: counted if it queries DNS, then followed or looked up. */
  private async lookupTerm(domain: string, term: SpfTerm, path: string[]): Promise<void> {
    if (!LOOKUP_TERMS.includes(term.name)) return;
    const place: Place = { domain, term: termText(term) };
    this.lookups.push(place);
    if (term.name === 'ptr') return; // needs the sender's address: counted, never queried here
    const spec = term.kind === 'mechanism' ? term.domainSpec : term.value;
    if (spec?.includes('%')) {
      this.macroTerms.push(label(place));
      return;
    }
    const target = normalizeName(spec ?? domain);
    switch (term.name) {
      case 'include':
      case 'redirect':
        return this.follow(target, place, path);
      case 'mx':
        return this.mx(target, place);
      default:
        // a: A and AAAA (the receiver asks for the sender's family); exists: A only (RFC 7208 §5.7).
        return this.address(target, place, term.name === 'a');
    }
  }

  private txt(name: string): Promise<TxtAnswer> {
    let answer = this.txtCache.get(name);
    if (!answer) {
      answer = lookupTxt(this.resolver, name);
      this.txtCache.set(name, answer);
    }
    return answer;
  }

  /** include: / redirect=: the target must have exactly one valid SPF record (RFC 7208 §5.2, §6.1). */
  private async follow(target: string, place: Place, path: string[]): Promise<void> {
    const where = `${place.term} in the SPF record of ${place.domain}`;
    if (path.includes(target)) {
      this.looped = true;
      this.fail(
        'SPF_LOOP',
        `${where} loops back: ${[...path, target].join(' -> ')}; receivers run into the lookup limit and return permerror`,
        `remove ${place.term} from the SPF record of ${place.domain}`,
      );
      return;
    }
    if (path.length >= SPF_MAX_DEPTH || !this.mayQuery(1)) {
      this.truncated = true;
      return;
    }
    const answer = await this.txt(target);
    if (answer.kind === 'failed') {
      this.fail('SPF_TARGET_DNS', `${where}: ${answer.reason}; receivers get temperror`);
      return;
    }
    if (answer.kind === 'empty') this.voids.push(label(place));
    const records = answer.kind === 'records' ? spfRecords(answer.records) : [];
    if (records.length === 0) {
      const why =
        answer.kind === 'empty' ? answer.outcome.toUpperCase() : 'no TXT record beginning with "v=spf1"';
      this.fail(
        'SPF_TARGET_MISSING',
        `${where}: ${target} has no SPF record (${why}); receivers return permerror (RFC 7208 §5.2, §6.1)`,
        `remove ${place.term} from the SPF record of ${place.domain}, or correct the name to the one the provider documents`,
      );
      return;
    }
    if (records.length > 1) {
      this.fail(
        'SPF_TARGET_INVALID',
        `${where}: ${target} has ${records.length} SPF records; receivers return permerror (RFC 7208 §4.5)`,
      );
      return;
    }
    let record: SpfRecord;
    try {
      ({ record } = parseSpf(records[0]!));
    } catch (err) {
      if (!(err instanceof SpfError)) throw err;
      this.fail(
        'SPF_TARGET_INVALID',
        `${where}: the SPF record of ${target} is invalid, receivers return permerror: ${err.message}`,
      );
      return;
    }
    const all = record.terms.find((t) => t.kind === 'mechanism' && t.name === 'all');
    if (all?.kind === 'mechanism' && all.qualifier === '+') {
      this.fail(
        'SPF_PASS_ALL',
        `${where}: the record of ${target} has "+all", so every host on the internet passes through it`,
        `remove ${place.term} from the SPF record of ${place.domain}`,
      );
    }
    await this.record(target, record, [...path, target]);
  }

  /** RFC 7208 §4.6.4: more than 10 MX names for one mx mechanism is a permerror. */
  private async mx(target: string, place: Place): Promise<void> {
    if (!this.mayQuery(1)) return;
    const found = await this.resolver.mx(target);
    if (found.values.length > 0) {
      if (found.values.length > SPF_MAX_MX_NAMES) {
        this.fail(
          'SPF_MX_TOO_MANY',
          `${place.term} in the SPF record of ${place.domain}: ${target} has ${found.values.length} MX records; ` +
            `RFC 7208 §4.6.4 allows ${SPF_MAX_MX_NAMES} per mx mechanism, receivers return permerror`,
          'list the sending servers with ip4:/ip6: instead of mx',
        );
      }
      return;
    }
    await this.noRecords(place, [found]);
  }

  private async address(target: string, place: Place, bothFamilies: boolean): Promise<void> {
    if (!this.mayQuery(bothFamilies ? 2 : 1)) return;
    const found = await Promise.all(
      bothFamilies ? [this.resolver.a(target), this.resolver.aaaa(target)] : [this.resolver.a(target)],
    );
    if (found.some((l) => l.values.length > 0)) return;
    await this.noRecords(place, found);
  }

  /** Lookups that found nothing: a void lookup (RFC 7208 §4.6.4), or a DNS failure (temperror). */
  private async noRecords(place: Place, found: Array<{ outcome: string; result: DnsResult }>): Promise<void> {
    const failed = found.find((l) => !ANSWERED.includes(l.outcome));
    if (failed === undefined) {
      this.voids.push(label(place));
      return;
    }
    const reason = await describeDnsFailure(this.resolver, failed.result);
    this.fail(
      'SPF_TARGET_DNS',
      `${place.term} in the SPF record of ${place.domain}: ${reason}; receivers get temperror`,
    );
  }
}

/** RFC 7208 §4.6.4: the terms that cause DNS lookups and count toward the limit of 10. */
const LOOKUP_TERMS: readonly string[] = ['include', 'a', 'mx', 'ptr', 'exists', 'redirect'];
const ANSWERED: readonly string[] = ['ok', 'nxdomain', 'nodata'];

function label(place: Place): string {
  return `${place.term} (in ${place.domain})`;
}

function termText(term: SpfTerm): string {
  return formatSpf({ terms: [term] }).slice('v=spf1 '.length);
}

/** The record with its first "all" made "-all", or "-all" appended when it has none (and no redirect). */
function endingInFail(record: SpfRecord): string {
  const at = record.terms.findIndex((t) => t.kind === 'mechanism' && t.name === 'all');
  const all: SpfTerm = { kind: 'mechanism', qualifier: '-', name: 'all' };
  const terms = at < 0 ? [...record.terms, all] : record.terms.map((t, i) => (i === at ? all : t));
  return formatSpf({ terms });
}
