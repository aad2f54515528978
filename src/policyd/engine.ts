// The policy daemon's cache and decisions: for each recipient domain, its DANE verdict and its MTA-STS
// policy (RFC 8461 §5 caching), and the socketmap reply that follows from them (decide.ts), kept as a
// ready Buffer so that a cached answer is one Map lookup (`cached`). Everything that needs the network
// happens in the background; only a domain seen for the first time (or whose policy expired) waits
// for its lookups, at most `answerTimeoutMs` (`resolve`).
//
// MTA-STS caching (RFC 8461 §3.3, §5, §10.2):
// - a fetched policy is used until fetchedAt + max_age, and written through to the PolicyStore;
// - the `_mta-sts` TXT id is checked at most every idCheckIntervalMs, in the background; a changed id
//   triggers a fetch; while it runs, and when it fails, the cached policy stays in force;
// - a failed fetch is not retried for the same id before a back-off (5 min, doubling up to 1 h);
// - a missing or failing TXT record never removes a cached policy: only expiry, a newer policy, or
//   `policyd purge` do;
// - "no MTA-STS" (no TXT record, or no policy could be fetched) is remembered for negativeTtlMs;
// - policies in use are refreshed proactively (about daily, and at half their max_age when that is
//   sooner) by `maintain`, with jitter and at most refreshConcurrency at a time.
// DANE verdicts are kept for the DNS TTL (1 min to 1 h); a failed re-check keeps the last definite
// verdict for up to an hour.

import { mapLimit } from '../common/limit.js';
import type { Resolver } from '../dns/resolver.js';
import { type DaneDiscovery, discoverDane } from '../sender/dane.js';
import {
  type Answer,
  type DaneMode,
  type DecideOptions,
  decideAnswer,
  type StsView,
  type TestingMode,
} from '../sender/decide.js';
import { lookupStsId, type PolicyFetcher, type StsIdLookup } from '../sender/sts.js';
import { type Clock, systemClock } from './clock.js';
import { type Logger, silentLogger } from './log.js';
import { makeReply, NOTFOUND_REPLY, type Reply } from './socketmap.js';
import type { CachedPolicy, PolicyStore } from './store.js';

/** A store that can tell cheaply whether another process changed it (SQLite: PRAGMA data_version). */
export interface ChangeAwareStore {
  changedElsewhere(): boolean;
}

export interface EngineEvents {
  /** A policy fetch ended: 'ok' or the failure code (MTASTS_FETCH_...). */
  fetched?(domain: string, result: string): void;
  /** A first lookup took longer than answerTimeoutMs: NOTFOUND was answered meanwhile. */
  answerTimeout?(domain: string): void;
  /** maxLookups lookups were under way: NOTFOUND without a lookup. */
  overloaded?(domain: string): void;
}

export interface EngineOptions {
  resolver: Resolver;
  store: PolicyStore;
  fetchPolicy: PolicyFetcher;
  clock?: Clock;
  /** For refresh jitter (default Math.random). */
  random?: () => number;
  daneMode?: DaneMode;
  testingMode?: TestingMode;
  /** Check the TXT id of a cached policy at most this often (default 60 s). */
  idCheckIntervalMs?: number;
  /** Longest wait for an answer that needs lookups (default 10 s); then NOTFOUND, the lookups go on. */
  answerTimeoutMs?: number;
  /** How long "no MTA-STS" is remembered (default 5 min). */
  negativeTtlMs?: number;
  /** Retry a failed TXT lookup after this long (default 1 min). */
  retryMs?: number;
  /** Back-off after a failed policy fetch, per id (default 5 min, RFC 8461 §3.3), doubling to maxBackoffMs. */
  backoffMs?: number;
  /** Default 1 h. */
  maxBackoffMs?: number;
  /** Proactive refresh of policies in use (default 24 h; half the max_age when that is sooner). */
  refreshIntervalMs?: number;
  /** Background refreshes at once (default 4). */
  refreshConcurrency?: number;
  /** Domains kept in memory (default 100000); the oldest idle one is dropped for a new one. */
  maxDomains?: number;
  /** Domains looked up at once (default 500); beyond that a new domain gets NOTFOUND, unlooked-up. */
  maxLookups?: number;
  /** Never write to the store (`policyd query`). */
  readOnly?: boolean;
  log?: Logger;
  events?: EngineEvents;
}

/** A policy fetch that failed, for the back-off of its id. */
export interface FetchFailure {
  id: string;
  code: string;
  message: string;
  at: number;
  attempts: number;
  /** No new fetch for this id before this time. */
  retryAt: number;
}

export interface DaneState {
  discovery: DaneDiscovery;
  checkedAt: number;
  dueAt: number;
  /** The last re-check, when it failed and the previous verdict was kept. */
  failedRecheck?: DaneDiscovery;
}

/** What the engine knows about one domain (a copy, for `policyd query` and tests). */
export interface DomainSnapshot {
  domain: string;
  answer?: Answer;
  /** The unexpired policy in force. */
  policy?: CachedPolicy;
  /** Where the policy in force came from: the store, or a fetch by this process. */
  policySource?: 'store' | 'fetch';
  /** The last policy, once it expired. */
  expired?: CachedPolicy;
  /** Why there is no policy in force (when there is none and the MTA-STS state is known). */
  noPolicy?: string;
  /** The last TXT lookup. */
  dnsId?: StsIdLookup;
  failure?: FetchFailure;
  dane?: DaneState;
  /** When the TXT id is looked at next. */
  stsDueAt: number;
  /** When the policy is refreshed next (if in use). */
  refreshAt: number;
}

interface DomainState {
  readonly domain: string;
  /** The store was read for this domain. */
  loaded: boolean;
  policy?: CachedPolicy;
  policySource?: 'store' | 'fetch';
  expired?: CachedPolicy;
  /** A policy is in force, or it is known that none is. */
  stsKnown: boolean;
  noPolicy: string;
  stsDueAt: number;
  dnsId?: StsIdLookup;
  failure?: FetchFailure;
  dane?: DaneState;
  answer?: Answer;
  reply?: Reply;
  /** Background work is due (min of stsDueAt and the DANE due time). */
  dueAt: number;
  /** The reply must be recomputed after this (the policy's expiry). */
  hardAt: number;
  work?: Promise<void>;
  waiters: Array<(reply: Reply) => void>;
  /** Queried since the policy was last fetched: only such policies are refreshed proactively. */
  used: boolean;
  refreshAt: number;
  /** Store writes under way, and the sequence number of the last one started. */
  writes: number;
  writeSeq: number;
}

const DANE_KEEP_MS = 3_600_000;
const MIN_REFRESH_MS = 60_000;
const WARM_UP_CONCURRENCY = 8;

export class PolicyEngine {
  private readonly states = new Map<string, DomainState>();
  private readonly running = new Set<Promise<void>>();
  private readonly refreshQueue: string[] = [];
  private readonly queued = new Set<string>();
  private refreshing = 0;
  private writeSeq = 0;
  private stopped = false;

  private readonly resolver: Resolver;
  private readonly store: PolicyStore;
  private readonly fetchPolicy: PolicyFetcher;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly decide: DecideOptions;
  private readonly idCheckMs: number;
  private readonly answerTimeoutMs: number;
  private readonly negativeTtlMs: number;
  private readonly retryMs: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly refreshMs: number;
  private readonly refreshConcurrency: number;
  private readonly maxDomains: number;
  private readonly maxLookups: number;
  private readonly readOnly: boolean;
  private readonly log: Logger;
  private readonly events: EngineEvents;

  constructor(options: EngineOptions) {
    this.resolver = options.resolver;
    this.store = options.store;
    this.fetchPolicy = options.fetchPolicy;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.decide = { daneMode: options.daneMode ?? 'dane-only', testingMode: options.testingMode ?? 'ignore' };
    this.idCheckMs = options.idCheckIntervalMs ?? 60_000;
    this.answerTimeoutMs = options.answerTimeoutMs ?? 10_000;
    this.negativeTtlMs = options.negativeTtlMs ?? 300_000;
    this.retryMs = options.retryMs ?? 60_000;
    this.backoffMs = options.backoffMs ?? 300_000;
    this.maxBackoffMs = options.maxBackoffMs ?? 3_600_000;
    this.refreshMs = options.refreshIntervalMs ?? 86_400_000;
    this.refreshConcurrency = options.refreshConcurrency ?? 4;
    this.maxDomains = options.maxDomains ?? 100_000;
    this.maxLookups = options.maxLookups ?? 500;
    this.readOnly = options.readOnly ?? false;
    this.log = options.log ?? silentLogger;
    this.events = options.events ?? {};
  }

  /** Domains in memory. */
  get size(): number {
    return this.states.size;
  }

  /**
   * The hot path: the ready reply for a normalised domain, or undefined when it needs lookups first.
   * Synchronous, allocates nothing; background work is started when due.
   */
  cached(domain: string): Reply | undefined {
    const s = this.states.get(domain);
    if (s === undefined || s.reply === undefined) return undefined;
    const now = this.clock.now();
    if (now >= s.dueAt) {
      if (now > s.hardAt) {
        this.recompute(s);
        if (s.reply === undefined) return undefined;
      }
      this.startWork(s, false);
    }
    s.used = true;
    return s.reply;
  }

  /** The reply for a normalised domain, looking it up if needed (at most answerTimeoutMs). */
  resolve(domain: string): Promise<Reply> {
    const hit = this.cached(domain);
    if (hit !== undefined) return Promise.resolve(hit);
    const s = this.stateFor(domain);
    s.used = true;
    if (this.startWork(s, false) === undefined) {
      this.events.overloaded?.(domain);
      return Promise.resolve(NOTFOUND_REPLY);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.events.answerTimeout?.(domain);
        resolve(NOTFOUND_REPLY);
      }, this.answerTimeoutMs);
      s.waiters.push((reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
    });
  }

  /** Look a domain up completely (no answer time limit) and say what is known (`policyd query`). */
  async explain(domain: string): Promise<DomainSnapshot> {
    const s = this.stateFor(domain);
    await this.startWork(s, false);
    // A policy read from the store was used without looking at DNS: show the live id too.
    if (s.dnsId === undefined) s.dnsId = await lookupStsId(this.resolver, domain);
    return this.snapshot(s);
  }

  /** What is known about a domain, or undefined when it is not in memory. */
  inspect(domain: string): DomainSnapshot | undefined {
    const s = this.states.get(domain);
    return s === undefined ? undefined : this.snapshot(s);
  }

  /** Load every stored policy into memory (at start). Returns how many entries there were. */
  async load(): Promise<number> {
    const entries = await this.store.all();
    const now = this.clock.now();
    for (const entry of entries) {
      if (this.states.has(entry.domain) || this.states.size >= this.maxDomains) continue;
      const s = this.newState(entry.domain);
      s.loaded = true;
      this.adopt(s, entry, now);
      this.recompute(s);
    }
    return entries.length;
  }

  /** Look up DANE (and check ids when due) for every domain in memory, a few at a time. */
  async warmUp(): Promise<void> {
    await mapLimit([...this.states.values()], WARM_UP_CONCURRENCY, async (s) => {
      if (!this.stopped) await this.startWork(s, false);
    });
  }

  /**
   * Proactive refresh (RFC 8461 §10.2): queue the policies in use whose refresh time has come and run
   * at most refreshConcurrency at a time. Call it every so often; returns at once.
   */
  maintain(): void {
    const now = this.clock.now();
    for (const s of this.states.values()) {
      if (s.policy !== undefined && s.used && now >= s.refreshAt && !this.queued.has(s.domain)) {
        this.queued.add(s.domain);
        this.refreshQueue.push(s.domain);
      }
    }
    this.pumpRefreshes();
  }

  /**
   * Take in what other processes did to the store: a policy that disappeared was purged (`policyd
   * purge`), so the domain is forgotten and looked up afresh on its next query; a newer policy
   * (another MTA sharing the store) is adopted.
   */
  async syncStore(): Promise<void> {
    const aware = this.store as Partial<ChangeAwareStore>;
    if (typeof aware.changedElsewhere === 'function' && !aware.changedElsewhere()) return;
    const seq = this.writeSeq;
    const stored = new Map((await this.store.all()).map((e) => [e.domain, e]));
    const now = this.clock.now();
    for (const [domain, s] of this.states) {
      if (!s.loaded || s.work !== undefined || s.writes > 0 || s.writeSeq > seq) continue;
      const entry = stored.get(domain);
      const mine = s.policy ?? s.expired;
      if (entry === undefined) {
        if (mine !== undefined) this.states.delete(domain);
        continue;
      }
      if (mine === undefined || entry.fetchedAt > mine.fetchedAt || entry.checkedAt > mine.checkedAt) {
        this.adopt(s, entry, now);
        this.recompute(s);
      }
    }
  }

  /** Wait until no lookup is under way (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Start no new work; wait for what runs, at most `waitMs`. */
  async stop(waitMs = 5000): Promise<void> {
    this.stopped = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
  }

  // -------------------------------------------------------------------------------------------------

  private newState(domain: string): DomainState {
    const s: DomainState = {
      domain,
      loaded: false,
      stsKnown: false,
      noPolicy: '',
      stsDueAt: 0,
      dueAt: 0,
      hardAt: Number.POSITIVE_INFINITY,
      waiters: [],
      used: false,
      refreshAt: Number.POSITIVE_INFINITY,
      writes: 0,
      writeSeq: 0,
    };
    this.states.set(domain, s);
    return s;
  }

  /** The domain's state, created (dropping the oldest idle domain when full). */
  private stateFor(domain: string): DomainState {
    const existing = this.states.get(domain);
    if (existing !== undefined) return existing;
    if (this.states.size >= this.maxDomains) {
      for (const [name, old] of this.states) {
        if (old.work === undefined && old.writes === 0) {
          this.states.delete(name);
          break;
        }
      }
    }
    return this.newState(domain);
  }

  /** Run the due lookups for a domain (one run at a time per domain); undefined when overloaded. */
  private startWork(s: DomainState, refresh: boolean): Promise<void> | undefined {
    if (s.work !== undefined) return s.work;
    if (this.stopped || this.running.size >= this.maxLookups) return undefined;
    const work = this.revalidate(s, refresh)
      .catch((err: unknown) => {
        this.log('error', 'lookup failed', {
          domain: s.domain,
          error: (err as Error)?.message ?? String(err),
        });
      })
      .finally(() => {
        s.work = undefined;
        this.running.delete(work);
        this.recompute(s);
        // Whoever still waits gets what there is: no answer means no policy to apply.
        const waiters = s.waiters.splice(0);
        for (const wake of waiters) wake(s.reply ?? NOTFOUND_REPLY);
      });
    s.work = work;
    this.running.add(work);
    return work;
  }

  private async revalidate(s: DomainState, refresh: boolean): Promise<void> {
    const now = this.clock.now();
    const jobs: Array<Promise<void>> = [];
    if (s.dane === undefined || now >= s.dane.dueAt) {
      jobs.push(this.checkDane(s).then(() => this.recompute(s)));
    }
    if (refresh || !s.stsKnown || now >= s.stsDueAt) {
      jobs.push(this.checkSts(s, refresh).then(() => this.recompute(s)));
    }
    await Promise.all(jobs);
  }

  private async checkDane(s: DomainState): Promise<void> {
    const discovery = await discoverDane(this.resolver, s.domain);
    const now = this.clock.now();
    const previous = s.dane;
    if (
      discovery.verdict.kind === 'indeterminate' &&
      previous !== undefined &&
      previous.discovery.verdict.kind !== 'indeterminate' &&
      now - previous.checkedAt < DANE_KEEP_MS
    ) {
      // A re-check that fails keeps the last definite verdict for up to an hour.
      previous.dueAt = now + discovery.ttlMs;
      previous.failedRecheck = discovery;
      return;
    }
    s.dane = { discovery, checkedAt: now, dueAt: now + discovery.ttlMs };
  }

  private async checkSts(s: DomainState, refresh: boolean): Promise<void> {
    if (!s.loaded) {
      s.loaded = true;
      const stored = await this.readStore(s.domain);
      if (stored !== undefined) {
        this.adopt(s, stored, this.clock.now());
        if (s.policy !== undefined && !refresh) return;
      }
    }
    const txt = await lookupStsId(this.resolver, s.domain);
    s.dnsId = txt;
    let now = this.clock.now();
    if (txt.kind !== 'id') {
      // RFC 8461 §3.3: when no live policy can be discovered, a cached unexpired policy still applies.
      if (s.policy === undefined) this.noPolicy(s, txt.reason);
      s.stsDueAt =
        now + (txt.kind === 'failed' ? this.retryMs : s.policy ? this.idCheckMs : this.negativeTtlMs);
      return;
    }
    if (s.policy !== undefined && s.policy.id === txt.id && !refresh) {
      s.policy = { ...s.policy, checkedAt: now };
      this.persist(s, s.policy);
      s.stsDueAt = now + this.idCheckMs;
      return;
    }
    // A policy to fetch: a new domain, a changed id (RFC 8461 §3.3), or a proactive refresh.
    const failure = s.failure;
    if (failure !== undefined && failure.id === txt.id && now < failure.retryAt) {
      // RFC 8461 §3.3: a failed fetch is not retried for the same id for five minutes or more.
      if (s.policy === undefined) this.noPolicy(s, failureReason(failure));
      s.stsDueAt = Math.min(now + this.idCheckMs, s.policy ? Number.POSITIVE_INFINITY : failure.retryAt);
      return;
    }
    const fetched = await this.fetchPolicy(s.domain);
    now = this.clock.now();
    this.events.fetched?.(s.domain, fetched.ok ? 'ok' : fetched.code);
    if (fetched.ok) {
      const entry: CachedPolicy = {
        domain: s.domain,
        id: txt.id,
        policy: fetched.policy,
        fetchedAt: now,
        expiresAt: now + fetched.policy.maxAge * 1000,
        checkedAt: now,
      };
      s.policy = entry;
      s.policySource = 'fetch';
      s.expired = undefined;
      s.failure = undefined;
      s.stsKnown = true;
      s.noPolicy = '';
      s.stsDueAt = now + this.idCheckMs;
      s.refreshAt = this.refreshTime(entry);
      // "In use" from now on means queried after this fetch.
      s.used = false;
      this.persist(s, entry);
      return;
    }
    const attempts = failure?.id === txt.id ? failure.attempts + 1 : 1;
    const backoff = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** (attempts - 1));
    const next: FetchFailure = {
      id: txt.id,
      code: fetched.code,
      message: fetched.message,
      at: now,
      attempts,
      retryAt: now + backoff,
    };
    s.failure = next;
    this.log('warn', 'policy fetch failed', {
      domain: s.domain,
      id: txt.id,
      code: fetched.code,
      error: fetched.message,
      keeping: s.policy ? `cached policy id ${s.policy.id}` : 'no policy',
      retryInSeconds: Math.round(backoff / 1000),
    });
    // Never downgrade: a cached policy stays until it expires (RFC 8461 §3.3).
    if (s.policy === undefined) this.noPolicy(s, failureReason(next));
    else s.refreshAt = Math.max(s.refreshAt, next.retryAt);
    // The TXT id is still looked at every idCheckIntervalMs: a new id is fetched without waiting.
    s.stsDueAt = Math.min(now + this.idCheckMs, s.policy ? Number.POSITIVE_INFINITY : next.retryAt);
  }

  private noPolicy(s: DomainState, reason: string): void {
    s.stsKnown = true;
    s.noPolicy = reason;
  }

  /** Take a stored entry as the domain's policy (or as its expired one). */
  private adopt(s: DomainState, entry: CachedPolicy, now: number): void {
    if (now > entry.expiresAt) {
      s.expired = entry;
      return;
    }
    s.policy = entry;
    s.policySource = 'store';
    s.stsKnown = true;
    s.noPolicy = '';
    s.stsDueAt = entry.checkedAt + this.idCheckMs;
    s.refreshAt = this.refreshTime(entry);
  }

  private async readStore(domain: string): Promise<CachedPolicy | undefined> {
    try {
      return await this.store.get(domain);
    } catch (err) {
      this.log('error', 'policy store read failed', {
        domain,
        error: (err as Error)?.message ?? String(err),
      });
      return undefined;
    }
  }

  private persist(s: DomainState, entry: CachedPolicy): void {
    if (this.readOnly) return;
    s.writes++;
    s.writeSeq = ++this.writeSeq;
    this.store
      .set(entry)
      .catch((err: unknown) => {
        this.log('error', 'policy store write failed', {
          domain: entry.domain,
          error: (err as Error)?.message ?? String(err),
        });
      })
      .finally(() => {
        s.writes--;
      });
  }

  /** About daily, or at half the max_age when that is sooner; never within a minute; 0-10% early. */
  private refreshTime(entry: CachedPolicy): number {
    const interval = Math.max(
      MIN_REFRESH_MS,
      Math.min(this.refreshMs, (entry.expiresAt - entry.fetchedAt) / 2),
    );
    return entry.fetchedAt + interval * (1 - 0.1 * this.random());
  }

  private pumpRefreshes(): void {
    while (this.refreshing < this.refreshConcurrency && this.refreshQueue.length > 0 && !this.stopped) {
      const domain = this.refreshQueue.shift()!;
      this.queued.delete(domain);
      const s = this.states.get(domain);
      if (s === undefined || s.work !== undefined) continue;
      const work = this.startWork(s, true);
      if (work === undefined) return;
      this.refreshing++;
      void work.finally(() => {
        this.refreshing--;
        this.pumpRefreshes();
      });
    }
  }

  /** Derive the answer and the reply from the state (after any change, and when the policy expires). */
  private recompute(s: DomainState): void {
    const now = this.clock.now();
    if (s.policy !== undefined && now > s.policy.expiresAt) {
      // RFC 8461 §5: a policy is not used after max_age: look again as for a new domain.
      s.expired = s.policy;
      s.policy = undefined;
      s.stsKnown = false;
      s.noPolicy = 'the cached policy expired';
      s.stsDueAt = now;
    }
    const sts: StsView | undefined = !s.stsKnown
      ? undefined
      : s.policy !== undefined
        ? { kind: 'policy', id: s.policy.id, policy: s.policy.policy }
        : { kind: 'none', reason: s.noPolicy };
    const answer = decideAnswer(s.dane?.discovery.verdict, sts, this.decide);
    s.answer = answer;
    if (answer === undefined) s.reply = undefined;
    else if (s.reply === undefined || s.reply.text !== answer.text)
      s.reply = makeReply(answer.kind, answer.text);
    s.hardAt = s.policy?.expiresAt ?? Number.POSITIVE_INFINITY;
    // The hot path looks at hardAt only once dueAt has come: the expiry makes the entry due too.
    s.dueAt = Math.min(s.stsDueAt, s.dane?.dueAt ?? now, s.hardAt + 1);
    if (s.reply !== undefined && s.waiters.length > 0) {
      const reply = s.reply;
      for (const wake of s.waiters.splice(0)) wake(reply);
    }
  }

  private snapshot(s: DomainState): DomainSnapshot {
    const snap: DomainSnapshot = { domain: s.domain, stsDueAt: s.stsDueAt, refreshAt: s.refreshAt };
    if (s.answer !== undefined) snap.answer = s.answer;
    if (s.policy !== undefined) {
      snap.policy = s.policy;
      if (s.policySource !== undefined) snap.policySource = s.policySource;
    }
    if (s.expired !== undefined) snap.expired = s.expired;
    if (s.stsKnown && s.policy === undefined) snap.noPolicy = s.noPolicy;
    if (s.dnsId !== undefined) snap.dnsId = s.dnsId;
    if (s.failure !== undefined) snap.failure = s.failure;
    if (s.dane !== undefined) snap.dane = s.dane;
    return snap;
  }
}

function failureReason(failure: FetchFailure): string {
  return (
    `the policy fetch for id ${failure.id} failed (${failure.code}: ${failure.message}); ` +
    `next attempt after ${new Date(failure.retryAt).toISOString()}`
  );
}
