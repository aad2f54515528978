// The "sending sources" view of a domain's DMARC aggregate reports (RFC 7489 §7.2, Appendix C): each
// source IP judged legitimate or not (the domain's own MX hosts, the addresses its SPF record names, a
// known provider by reverse DNS name, or a source whose mail passes DMARC alignment), reverse DNS looked up
// in the background through the configured resolver (bounded, cached in the store's PTR table), and the
// next step the data supports (RFC 7489 §6.3 p=none -> quarantine -> reject) with the record to publish.
//
// SPF: a source is SPF-authorised when the domain's SPF record gives it "pass" (RFC 7208 check_host(),
// src/spf/evaluate.ts: include: and redirect= followed, ip4/ip6/a/mx/exists matched, at most 10 DNS-querying
// terms). What the domain authorises is looked up with serve's resolver and kept per domain for a while
// (AuthorisedSenders: answers and verdicts cached, bounded in domains, addresses and DNS names).
import { BlockList, isIP } from 'node:net';
import { type DmarcRecord, formatDmarc, parseDmarc } from '../dmarc/record.js';
import type { Lookup, Resolver } from '../dns/resolver.js';
import { type SpfDns, type SpfDnsAnswer, SpfEvaluator, type SpfResult } from '../spf/evaluate.js';
import type { DmarcDailyCounts, DmarcSourceRow, DmarcStore } from '../store/dmarc-types.js';

export type Legitimacy = 'own-mx' | 'spf-authorised' | 'known-provider' | 'aligned' | 'unknown';

export interface JudgedSource extends DmarcSourceRow {
  legitimacy: Legitimacy;
  provider?: string;
}

/** Reverse DNS name suffixes of senders that send for many domains, and who they are. */
export const KNOWN_PROVIDERS: ReadonlyArray<readonly [suffix: string, provider: string]> = [
  ['google.com', 'Google'],
  ['googleusercontent.com', 'Google'],
  ['outlook.com', 'Microsoft'],
  ['protection.outlook.com', 'Microsoft'],
  ['amazonses.com', 'Amazon SES'],
  ['sendgrid.net', 'SendGrid'],
  ['mailgun.net', 'Mailgun'],
  ['mcsv.net', 'Mailchimp'],
  ['mandrillapp.com', 'Mailchimp'],
  ['sparkpostmail.com', 'SparkPost'],
  ['postmarkapp.com', 'Postmark'],
  ['zoho.com', 'Zoho'],
  ['zohomail.com', 'Zoho'],
  ['messagingengine.com', 'Fastmail'],
  ['mimecast.com', 'Mimecast'],
  ['pphosted.com', 'Proofpoint'],
  ['yahoo.com', 'Yahoo'],
  ['mail.ru', 'Mail.ru'],
];

/** The provider a reverse DNS name belongs to (the name equals a suffix or ends in ".suffix"). */
export function providerOf(ptr: string | undefined): string | undefined {
  if (!ptr) return undefined;
  const name = ptr.toLowerCase().replace(/\.$/, '');
  return KNOWN_PROVIDERS.find(([suffix]) => name === suffix || name.endsWith(`.${suffix}`))?.[1];
}

/** What the domain itself authorises to send: its MX addresses, and the source IPs its SPF record passes. */
export interface Authorised {
  mx: BlockList;
  /** Of the addresses asked about, those SPF gives "pass" (RFC 7208 §2.6.3). */
  spfPass: ReadonlySet<string>;
}

function addAddress(list: BlockList, ip: string): void {
  const family = isIP(ip);
  if (family !== 0) list.addAddress(ip, family === 4 ? 'ipv4' : 'ipv6');
}

/** At most this many MX hosts are resolved to addresses for one domain. */
const MX_HOSTS_MAX = 10;

async function addressesOf(resolver: Resolver, host: string): Promise<string[]> {
  const [a, aaaa] = await Promise.all([resolver.a(host), resolver.aaaa(host)]);
  return [...a.values, ...aaaa.values];
}

/** The addresses of the domain's MX hosts (the first MX_HOSTS_MAX by preference). */
async function mxAddresses(resolver: Resolver, domain: string): Promise<BlockList> {
  const mx = new BlockList();
  const lookup = await resolver.mx(domain);
  const hosts = lookup.values
    .map((r) => r.exchange)
    .filter((x) => x !== '.')
    .slice(0, MX_HOSTS_MAX);
  for (const ip of (await Promise.all(hosts.map((h) => addressesOf(resolver, h)))).flat()) addAddress(mx, ip);
  return mx;
}

/** A lookup as SPF sees it: NXDOMAIN and NODATA are void lookups, other failures DNS errors. */
function spfAnswer<T>(lookup: Lookup<T>, value: (v: T) => string): SpfDnsAnswer {
  if (lookup.outcome === 'ok' && lookup.values.length > 0)
    return { outcome: 'ok', values: lookup.values.map(value) };
  return lookup.outcome === 'ok' || lookup.outcome === 'nxdomain' || lookup.outcome === 'nodata'
    ? { outcome: 'void' }
    : { outcome: 'error' };
}

/** serve's resolver as the SPF evaluator asks it. */
export function spfDns(resolver: Resolver): SpfDns {
  const same = (v: string) => v;
  return {
    txt: async (name) => spfAnswer(await resolver.txt(name), same),
    a: async (name) => spfAnswer(await resolver.a(name), same),
    aaaa: async (name) => spfAnswer(await resolver.aaaa(name), same),
    mx: async (name) => spfAnswer(await resolver.mx(name), (r) => r.exchange),
  };
}

export interface AuthorisedSendersOptions {
  /** A domain's MX addresses and SPF answers are looked up again after this long. */
  ttlMs: number;
  /** Domains kept at most (the oldest go first). */
  maxDomains: number;
  /** SPF verdicts kept per domain at most (then forgotten together; the DNS answers stay). */
  maxVerdicts: number;
}

export const AUTHORISED_SENDERS_DEFAULTS: AuthorisedSendersOptions = {
  ttlMs: 10 * 60_000,
  maxDomains: 1000,
  maxVerdicts: 10_000,
};

interface DomainSenders {
  at: number;
  mx: Promise<BlockList>;
  spf: SpfEvaluator;
  verdicts: Map<string, Promise<SpfResult>>;
}

/**
 * What each domain authorises, looked up through `resolver` and kept for `ttlMs`: its MX addresses and an
 * SPF evaluator with its DNS answers, so judging a page of sources asks each name once.
 */
export class AuthorisedSenders {
  private readonly domains = new Map<string, DomainSenders>();

  constructor(
    private readonly resolver: Resolver,
    private readonly now: () => Date,
    private readonly options: AuthorisedSendersOptions = AUTHORISED_SENDERS_DEFAULTS,
  ) {}

  /** The domain's MX addresses, and which of `ips` its SPF record passes. */
  async of(domain: string, ips: readonly string[]): Promise<Authorised> {
    const senders = this.senders(domain);
    if (senders.verdicts.size + ips.length > this.options.maxVerdicts) senders.verdicts.clear();
    const verdicts = await Promise.all(
      ips.map((ip) => {
        let verdict = senders.verdicts.get(ip);
        if (!verdict) {
          verdict = senders.spf.check(ip, domain);
          senders.verdicts.set(ip, verdict);
        }
        return verdict;
      }),
    );
    const spfPass = new Set(ips.filter((_, i) => verdicts[i] === 'pass'));
    return { mx: await senders.mx, spfPass };
  }

  private senders(domain: string): DomainSenders {
    const now = this.now().getTime();
    const kept = this.domains.get(domain);
    if (kept && now - kept.at < this.options.ttlMs) return kept;
    this.domains.delete(domain);
    if (this.domains.size >= this.options.maxDomains) {
      this.domains.delete(this.domains.keys().next().value!);
    }
    const fresh: DomainSenders = {
      at: now,
      mx: mxAddresses(this.resolver, domain).catch(() => new BlockList()),
      spf: new SpfEvaluator(spfDns(this.resolver)),
      verdicts: new Map(),
    };
    this.domains.set(domain, fresh);
    return fresh;
  }
}

function listed(list: BlockList, ip: string): boolean {
  const family = isIP(ip);
  return family !== 0 && list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

/** Why a source looks legitimate: own MX, SPF-authorised, known provider, mostly aligned; else unknown. */
export function judgeSource(row: DmarcSourceRow, authorised: Authorised): JudgedSource {
  const provider = providerOf(row.ptr);
  const legitimacy: Legitimacy = listed(authorised.mx, row.sourceIp)
    ? 'own-mx'
    : authorised.spfPass.has(row.sourceIp)
      ? 'spf-authorised'
      : provider
        ? 'known-provider'
        : // More than half of its mail passes DMARC: it holds the domain's DKIM key or SPF authorisation.
          row.dmarcPass * 2 > row.messages
          ? 'aligned'
          : 'unknown';
  return { ...row, legitimacy, ...(provider ? { provider } : {}) };
}

// ---- reverse DNS in the background ----

/** The in-addr.arpa / ip6.arpa name of an address (RFC 1035 §3.5, RFC 3596 §2.5); undefined if not an IP. */
export function reverseName(ip: string): string | undefined {
  const family = isIP(ip);
  if (family === 4) return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
  if (family !== 6) return undefined;
  const [head = '', tail = ''] = ip.includes('::') ? ip.split('::') : [ip, ''];
  const groups = (text: string) => (text === '' ? [] : text.split(':'));
  let left = groups(head);
  let right = groups(tail);
  // An embedded IPv4 tail (::ffff:192.0.2.1) is two groups.
  const v4 = (parts: string[]) => {
    const last = parts.at(-1);
    if (last === undefined || !last.includes('.')) return parts;
    const b = last.split('.').map(Number);
    return [...parts.slice(0, -1), ((b[0]! << 8) | b[1]!).toString(16), ((b[2]! << 8) | b[3]!).toString(16)];
  };
  if (right.length > 0) right = v4(right);
  else left = v4(left);
  const middle = Array<string>(8 - left.length - right.length).fill('0');
  const nibbles = [...left, ...(ip.includes('::') ? middle : []), ...right]
    .map((g) => g.padStart(4, '0'))
    .join('')
    .toLowerCase();
  return `${[...nibbles].reverse().join('.')}.ip6.arpa`;
}

export interface PtrLookupOptions {
  /** Lookups under way at once. */
  concurrency: number;
  /** Addresses waiting at most; more requested are dropped until the queue drains (asked again later). */
  maxQueued: number;
  /** A name found (or none) is looked up again after this long. */
  refreshMs: number;
}

export const PTR_LOOKUP_DEFAULTS: PtrLookupOptions = {
  concurrency: 4,
  maxQueued: 1000,
  refreshMs: 7 * 86_400_000,
};

/**
 * Looks up reverse DNS names of source IPs in the background and keeps them in the store's PTR cache:
 * `request` returns at once; at most `concurrency` lookups run, at most `maxQueued` wait.
 */
export class PtrLookups {
  private readonly queue: string[] = [];
  private readonly pending = new Set<string>();
  private running = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly store: Pick<DmarcStore, 'getPtrNames' | 'setPtrName'>,
    private readonly resolver: Resolver,
    private readonly now: () => Date,
    private readonly options: PtrLookupOptions = PTR_LOOKUP_DEFAULTS,
  ) {}

  /** Cached names of `ips` (absent: not looked up yet, or none found) and lookups queued for the rest. */
  async names(ips: string[]): Promise<Map<string, string>> {
    const cached = await this.store.getPtrNames(ips);
    const out = new Map<string, string>();
    const stale = this.now().getTime() - this.options.refreshMs;
    for (const ip of ips) {
      const hit = cached.get(ip);
      if (hit?.name) out.set(ip, hit.name);
      if (!hit || Date.parse(hit.at) < stale) this.request(ip);
    }
    return out;
  }

  /** Queues a lookup of `ip` unless it is queued, running, not an address, or the queue is full. */
  request(ip: string): void {
    if (this.pending.has(ip) || reverseName(ip) === undefined) return;
    if (this.queue.length >= this.options.maxQueued) return;
    this.pending.add(ip);
    this.queue.push(ip);
    this.pump();
  }

  /** Resolves when nothing is queued or running (tests, shutdown). */
  idle(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.running < this.options.concurrency && this.queue.length > 0) {
      const ip = this.queue.shift()!;
      this.running++;
      void this.lookup(ip).finally(() => {
        this.running--;
        this.pending.delete(ip);
        this.pump();
        if (this.running === 0 && this.queue.length === 0) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          for (const w of waiters) w();
        }
      });
    }
  }

  private async lookup(ip: string): Promise<void> {
    try {
      const result = await this.resolver.query(reverseName(ip)!, 'PTR');
      // A DNS failure is not cached: the next view asks again.
      if (result.outcome !== 'ok' && result.outcome !== 'nxdomain' && result.outcome !== 'nodata') return;
      const ptr = result.answers.find((r) => r.type === 'PTR');
      const name = ptr && typeof ptr.data === 'string' ? ptr.data.toLowerCase().replace(/\.$/, '') : '';
      await this.store.setPtrName(ip, name, this.now());
    } catch {
      // A lookup that throws (resolver closed) is retried by a later view.
    }
  }
}

// ---- the next step ----

export interface NextStep {
  code: 'NO_REPORTS' | 'FIX_SOURCES' | 'WAIT' | 'MOVE_TO_QUARANTINE' | 'MOVE_TO_REJECT' | 'AT_REJECT';
  message: string;
  record?: { name: string; type: 'TXT'; value: string };
}

/** Days of reports, all aligned, before the view suggests a stricter policy. */
export const STEP_DAYS = 30;

/**
 * What the data supports next for `domain`: fix legitimate sources that fail, wait for more days of
 * reports, or tighten p= (RFC 7489 §6.3, §10.1: move gradually) with the record, based on the domain's
 * published DMARC record (`published`, as looked up now) or the p= the newest report saw.
 */
export function nextStep(input: {
  domain: string;
  daily: DmarcDailyCounts[];
  sources: JudgedSource[];
  published?: DmarcRecord;
  reportedPolicy?: string;
}): NextStep {
  const { domain, daily, sources } = input;
  const reported = daily.filter((d) => d.pass + d.fail + d.quarantined + d.rejected > 0);
  if (reported.length === 0) {
    return {
      code: 'NO_REPORTS',
      message: `No DMARC reports for ${domain} in this range: check that the _dmarc record has rua= pointing here.`,
    };
  }
  const failing = sources.filter((s) => s.legitimacy !== 'unknown' && s.dmarcPass < s.messages);
  if (failing.length > 0) {
    const names = failing
      .slice(0, 3)
      .map((s) => (s.ptr ? `${s.sourceIp} (${s.ptr})` : s.sourceIp))
      .join(', ');
    return {
      code: 'FIX_SOURCES',
      message: `${failing.length} legitimate-looking source(s) send mail that fails DMARC (${names}): align their SPF or DKIM with ${domain} before tightening the policy.`,
    };
  }
  const policy = input.published?.policy ?? input.reportedPolicy;
  if (policy === 'reject') {
    return { code: 'AT_REJECT', message: `${domain} is at p=reject: keep watching the failing sources.` };
  }
  // The reports must span STEP_DAYS days (first to last day with a report) before p= gets stricter.
  const span = (Date.parse(reported.at(-1)!.day) - Date.parse(reported[0]!.day)) / 86_400_000 + 1;
  if (span < STEP_DAYS) {
    return {
      code: 'WAIT',
      message: `Reports of ${domain} span ${span} day(s) so far: tighten the policy after ${STEP_DAYS} days in which every legitimate source is aligned.`,
    };
  }
  const target = policy === 'quarantine' ? 'reject' : 'quarantine';
  const base: DmarcRecord = input.published ?? { version: 'DMARC1', unknownTags: [] };
  const record = formatDmarc({ ...base, policy: target });
  return {
    code: target === 'reject' ? 'MOVE_TO_REJECT' : 'MOVE_TO_QUARANTINE',
    message: `All legitimate sources aligned for ${STEP_DAYS} days (unaligned mail only from unknown sources): move to p=${target}.`,
    record: { name: `_dmarc.${domain}`, type: 'TXT', value: record },
  };
}

/** The domain's published DMARC record (RFC 7489 §6.1: TXT at _dmarc.<domain>), or undefined. */
export async function publishedDmarc(resolver: Resolver, domain: string): Promise<DmarcRecord | undefined> {
  const txt = await resolver.txt(`_dmarc.${domain}`);
  const records = txt.values.filter((v) => /^v=DMARC1(\s*;|\s*$)/i.test(v));
  if (records.length !== 1) return undefined;
  try {
    return parseDmarc(records[0]!).record;
  } catch {
    return undefined;
  }
}
