// The policy engine's cache rules (RFC 8461 §3.3, §5, §10.2) with a fake resolver, a fake policy fetch
// and a hand-moved clock: what is looked up when, what is kept when lookups fail, back-off, negative
// caching, expiry, proactive refresh, store loading and syncing, limits.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DnsRecord, DnsRecordType, DnsResult } from '../../src/dns/resolver.js';
import { ResolverBase } from '../../src/dns/resolver.js';
import type { StsPolicy } from '../../src/mtasts/policy.js';
import { ManualClock } from '../../src/policyd/clock.js';
import { type EngineOptions, PolicyEngine } from '../../src/policyd/engine.js';
import { MemoryPolicyStore } from '../../src/policyd/memory.js';
import type { Reply } from '../../src/policyd/socketmap.js';
import type { CachedPolicy } from '../../src/policyd/store.js';
import { discoverDane } from '../../src/sender/dane.js';
import type { PolicyFetchOutcome } from '../../src/sender/sts.js';
import { eventually } from '../fixtures/serve/helpers.js';

const START = Date.parse('2026-03-01T12:00:00Z');
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

type Answer = Pick<DnsResult, 'outcome' | 'secure'> & { answers?: DnsRecord[] };

/** DNS answers by "name TYPE"; anything else is NXDOMAIN. Records every query. */
class FakeDns extends ResolverBase {
  readonly table = new Map<string, Answer>();
  readonly queries: string[] = [];

  set(name: string, type: DnsRecordType, answer: Answer): void {
    this.table.set(`${name} ${type}`, answer);
  }

  async query(asked: string, type: DnsRecordType): Promise<DnsResult> {
    const name = asked.replace(/\.$/, '');
    this.queries.push(`${name} ${type}`);
    const a = this.table.get(`${name} ${type}`) ?? { outcome: 'nxdomain', secure: false };
    return {
      name,
      type,
      outcome: a.outcome,
      secure: a.secure,
      answers: a.answers ?? [],
      cnameChain: [],
      ede: [],
    };
  }

  /** An insecure domain with MX mx.<domain> and, when `id` is given, an MTA-STS TXT record. */
  domain(domain: string, id?: string): void {
    this.set(domain, 'MX', {
      outcome: 'ok',
      secure: false,
      answers: [{ name: domain, type: 'MX', ttl: 300, data: { preference: 10, exchange: `mx.${domain}` } }],
    });
    this.setTxt(domain, id);
  }

  setTxt(domain: string, id: string | undefined): void {
    const owner = `_mta-sts.${domain}`;
    if (id === undefined) this.table.delete(`${owner} TXT`);
    else
      this.set(owner, 'TXT', {
        outcome: 'ok',
        secure: false,
        answers: [{ name: owner, type: 'TXT', data: `v=STSv1; id=${id}` }],
      });
  }

  count(name: string, type: DnsRecordType): number {
    return this.queries.filter((q) => q === `${name} ${type}`).length;
  }
}

function policy(mx: string[], maxAge = 604800, mode: StsPolicy['mode'] = 'enforce'): StsPolicy {
  return { mode, maxAge, mx, extensions: [] };
}

/** Policy fetch answers by domain; counts calls; `hold` makes a fetch wait until released. */
class FakeFetch {
  readonly answers = new Map<string, PolicyFetchOutcome>();
  readonly calls: string[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private held: Array<() => void> | undefined;

  serve(domain: string, p: StsPolicy): void {
    this.answers.set(domain, { ok: true, policy: p, warnings: [] });
  }

  fail(domain: string, code = 'MTASTS_FETCH_STATUS'): void {
    this.answers.set(domain, { ok: false, code, message: `${domain}: failed` });
  }

  hold(): void {
    this.held = [];
  }

  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const go of held) go();
  }

  count(domain: string): number {
    return this.calls.filter((d) => d === domain).length;
  }

  readonly fetch = async (domain: string): Promise<PolicyFetchOutcome> => {
    this.calls.push(domain);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    if (this.held) await new Promise<void>((resolve) => this.held!.push(resolve));
    this.inFlight--;
    return this.answers.get(domain) ?? { ok: false, code: 'MTASTS_FETCH_CONNECT', message: 'no server' };
  };
}

function setup(options: Partial<EngineOptions> = {}) {
  const dns = new FakeDns();
  const fetch = new FakeFetch();
  const clock = new ManualClock(START);
  const store = new MemoryPolicyStore();
  const engine = new PolicyEngine({
    resolver: dns,
    store,
    fetchPolicy: fetch.fetch,
    clock,
    random: () => 0,
    ...options,
  });
  /** A query as the server makes it: the cache, else a lookup. */
  const ask = async (domain: string): Promise<string> => {
    const reply: Reply = engine.cached(domain) ?? (await engine.resolve(domain));
    return reply.text;
  };
  return { dns, fetch, clock, store, engine, ask };
}

const SECURE = 'OK secure match=mx.example.com servername=hostname';

describe('first lookup and the cache', () => {
  it('fetches once, then answers from memory without DNS or fetch', async () => {
    const { dns, fetch, engine, ask } = setup();
    dns.domain('example.com', '1');
    fetch.serve('example.com', policy(['mx.example.com']));
    assert.equal(engine.cached('example.com'), undefined);
    assert.equal(await ask('example.com'), SECURE);
    await engine.idle();
    const queries = dns.queries.length;
    for (let i = 0; i < 10; i++) assert.equal(engine.cached('example.com')?.text, SECURE);
    assert.equal(dns.queries.length, queries);
    assert.equal(fetch.count('example.com'), 1);
  });

  it('writes the fetched policy through to the store', async () => {
    const { dns, fetch, engine, store, ask } = setup();
    dns.domain('example.com', '1');
    fetch.serve('example.com', policy(['mx.example.com'], 86400));
    await ask('example.com');
    await engine.idle();
    const stored = await store.get('example.com');
    assert.equal(stored?.id, '1');
    assert.equal(stored?.fetchedAt, START);
    assert.equal(stored?.expiresAt, START + 86400 * SECOND);
    assert.equal(stored?.checkedAt, START);
  });

  it('answers NOTFOUND after answerTimeoutMs, and the policy once the fetch ends', async () => {
    const { dns, fetch, engine, ask } = setup({ answerTimeoutMs: 20 });
    let timeouts = 0;
    const slow = setup({ answerTimeoutMs: 20, events: { answerTimeout: () => timeouts++ } });
    for (const s of [{ dns, fetch }, slow]) {
      s.dns.domain('example.com', '1');
      s.fetch.serve('example.com', policy(['mx.example.com']));
      s.fetch.hold();
    }
    assert.equal(await slow.ask('example.com'), 'NOTFOUND ');
    assert.equal(timeouts, 1);
    slow.fetch.release();
    await slow.engine.idle();
    assert.equal(slow.engine.cached('example.com')?.text, SECURE);
    fetch.release();
    assert.equal(await ask('example.com'), SECURE);
    await engine.idle();
  });

  it('one lookup per domain however many queries wait for it', async () => {
    const { dns, fetch, engine } = setup();
    dns.domain('example.com', '1');
    fetch.serve('example.com', policy(['mx.example.com']));
    fetch.hold();
    const waiting = Array.from({ length: 20 }, () => engine.resolve('example.com'));
    await eventually(() => fetch.inFlight > 0 || undefined, 'the policy fetch');
    fetch.release();
    for (const reply of await Promise.all(waiting)) assert.equal(reply.text, SECURE);
    assert.equal(fetch.count('example.com'), 1);
    assert.equal(dns.count('_mta-sts.example.com', 'TXT'), 1);
  });

  it('beyond maxLookups a new domain gets NOTFOUND without lookup', async () => {
    let overloaded = 0;
    const { dns, fetch, engine } = setup({ maxLookups: 1, events: { overloaded: () => overloaded++ } });
    dns.domain('a.example', '1');
    dns.domain('b.example', '1');
    fetch.hold();
    const first = engine.resolve('a.example');
    assert.equal((await engine.resolve('b.example')).text, 'NOTFOUND ');
    assert.equal(overloaded, 1);
    fetch.release();
    await first;
    await engine.idle();
    assert.equal(fetch.count('b.example'), 0);
  });

  it('keeps at most maxDomains in memory, dropping the oldest', async () => {
    const { dns, engine, ask } = setup({ maxDomains: 2 });
    for (const d of ['a.example', 'b.example', 'c.example']) {
      dns.domain(d);
      await ask(d);
      await engine.idle();
    }
    assert.equal(engine.size, 2);
    assert.equal(engine.inspect('a.example'), undefined);
    assert.ok(engine.inspect('c.example'));
  });
});

describe('the id check (RFC 8461 §3.3)', () => {
  it('looks at the TXT id at most every idCheckIntervalMs, in the background', async () => {
    const { dns, fetch, clock, engine, ask } = setup({ idCheckIntervalMs: MINUTE });
    dns.domain('example.com', '1');
    fetch.serve('example.com', policy(['mx.example.com']));
    await ask('example.com');
    await engine.idle();
    const txt = () => dns.count('_mta-sts.example.com', 'TXT');
    assert.equal(txt(), 1);
    clock.advance(MINUTE - 1);
    engine.cached('example.com');
    await engine.idle();
    assert.equal(txt(), 1);
    clock.advance(1);
    assert.equal(engine.cached('example.com')?.text, SECURE);
    await engine.idle();
    assert.equal(txt(), 2);
    assert.equal(engine.inspect('example.com')?.policy?.checkedAt, clock.now());
    assert.equal(fetch.count('example.com'), 1, 'same id: no fetch');
  });

  it('a changed id is fetched in the background; the cached answer is given meanwhile', async () => {
    const { dns, fetch, clock, engine, ask } = setup();
    dns.domain('example.com', '1');
    fetch.serve('example.com', policy(['mx.example.com']));
    await ask('example.com');
    await engine.idle();
    dns.setTxt('example.com', '2');
    fetch.serve('example.com', policy(['mx2.example.com']));
    fetch.hold();
    clock.advance(MINUTE);
    assert.equal(engine.cached('example.com')?.text, SECURE);
    await eventually(() => fetch.inFlight > 0 || undefined, 'the background fetch');
    assert.equal(engine.cached('example.com')?.text, SECURE, 'still the cached policy while fetching');
    fetch.release();
    await engine.idle();
    assert.equal(engine.cached('example.com')?.text, 'OK secure match=mx2.example.com servername=hostname');
    assert.equal(engine.inspect('example.com')?.policy?.id, '2');
  });

  it('a failed refetch keeps the policy; back-off 5 min per id, doubling up to 1 h', async () => {
    const { dns, fetch, clock, engine, ask } = setup();
    dns.domain('example.com', '1');
    fetch.serve('example.com', policy(['mx.example.com']));
    await ask('example.com');
    await engine.idle();
    dns.setTxt('example.com', '2');
    fetch.fail('example.com');
    const expected = [5, 10, 20, 40, 60, 60].map((m) => m * MINUTE);
    for (const [attempt, backoff] of expected.entries()) {
      clock.advance(attempt === 0 ? MINUTE : expected[attempt - 1]!);
      assert.equal(engine.cached('example.com')?.text, SECURE);
      await engine.idle();
      const failure = engine.inspect('example.com')?.failure;
      assert.equal(failure?.attempts, attempt + 1);
      assert.equal(failure?.retryAt, clock.now() + backoff);
      assert.equal(fetch.count('example.com'), attempt + 2);
      // Id checks within the back-off do not fetch.
      clock.advance(backoff - MINUTE);
      engine.cached('example.com');
      await engine.idle();
      assert.equal(fetch.count('example.com'), attempt + 2);
      clock.advance(-(backoff - MINUTE));
    }
    assert.equal(engine.inspect('example.com')?.policy?.id, '1', 'never downgraded');
  });

  it('a new id is fetched at the next id check, even during the back-off of another id', async () => {
    const { dns, fetch, clock, engine, ask } = setup();
    dns.domain('example.com', '1');
    fetch.fail('example.com');
    assert.equal(await ask('example.com'), 'NOTFOUND ');
    await engine.idle();
    assert.equal(fetch.count('example.com'), 1);
    clock.advance(MINUTE);
    assert.equal(await ask('example.com'), 'NOTFOUND ');
    await engine.idle();
    assert.equal(dns.count('_mta-sts.example.com', 'TXT'), 2, 'the id is checked each minute');
    assert.equal(fetch.count('example.com'), 1, 'same id, within the back-off: no fetch');
    dns.setTxt('example.com', '2');
    fetch.serve('example.com', policy(['mx.example.com']));
    clock.advance(MINUTE);
    assert.equal(engine.cached('example.com')?.text, 'NOTFOUND ');
    await engine.idle();
    assert.equal(fetch.count('example.com'), 2);
    assert.equal(engine.cached('example.com')?.text, SECURE);
  });

  it('a TXT record that disappears or fails does not remove the cached policy', async () => {
    const { dns, fetch, clock, engine, ask } = setup();
    dns.domain('example.com', '1');
    fetch.serve('example.com', policy(['mx.example.com'], 2 * 3600));
    await ask('example.com');
    await engine.idle();
    dns.setTxt('example.com', undefined);
    clock.advance(MINUTE);
    engine.cached('example.com');
    await engine.idle();
    assert.equal(engine.cached('example.com')?.text, SECURE);
    assert.equal(engine.inspect('example.com')?.dnsId?.kind, 'none');
    dns.set('_mta-sts.example.com', 'TXT', { outcome: 'servfail', secure: false });
    clock.advance(MINUTE);
    engine.cached('example.com');
    await engine.idle();
    assert.equal(engine.cached('example.com')?.text, SECURE);
    assert.equal(engine.inspect('example.com')?.dnsId?.kind, 'failed');
  });
});

describe('expiry and negative caching', () => {
  it('a policy is not used after max_age (RFC 8461 §5)', async () => {
    const { dns, fetch, clock, engine, ask } = setup();
    dns.domain('example.com', '1');
    fetch.serve('example.com', policy(['mx.example.com'], 3600));
    await ask('example.com');
    await engine.idle();
    fetch.fail('example.com');
    clock.advance(3600 * SECOND);
    assert.equal(engine.cached('example.com')?.text, SECURE, 'valid up to its expiry');
    await engine.idle();
    clock.advance(1);
    // No background refresh succeeded: the hot path gives nothing, the lookup answers NOTFOUND.
    assert.equal(engine.cached('example.com'), undefined);
    assert.equal(await ask('example.com'), 'NOTFOUND ');
    await engine.idle();
    assert.equal(engine.inspect('example.com')?.policy, undefined);
    assert.equal(engine.inspect('example.com')?.expired?.id, '1');
  });

  it('an expired policy is fetched again on its next query', async () => {
    const { dns, fetch, clock, engine, ask } = setup();
    dns.domain('example.com', '1');
    fetch.serve('example.com', policy(['mx.example.com'], 600));
    await ask('example.com');
    await engine.idle();
    clock.advance(601 * SECOND);
    assert.equal(await ask('example.com'), SECURE);
    assert.equal(fetch.count('example.com'), 2);
  });

  it('"no MTA-STS" is remembered for negativeTtlMs', async () => {
    const { dns, fetch, clock, engine, ask } = setup({ negativeTtlMs: 5 * MINUTE });
    dns.domain('example.com');
    assert.equal(await ask('example.com'), 'NOTFOUND ');
    await engine.idle();
    const txt = () => dns.count('_mta-sts.example.com', 'TXT');
    assert.equal(txt(), 1);
    clock.advance(5 * MINUTE - 1);
    assert.equal(engine.cached('example.com')?.text, 'NOTFOUND ');
    await engine.idle();
    assert.equal(txt(), 1);
    // The domain publishes a policy; it is found once the negative entry is due.
    dns.setTxt('example.com', '1');
    fetch.serve('example.com', policy(['mx.example.com']));
    clock.advance(1);
    assert.equal(engine.cached('example.com')?.text, 'NOTFOUND ');
    await engine.idle();
    assert.equal(txt(), 2);
    assert.equal(engine.cached('example.com')?.text, SECURE);
  });

  it('a failed TXT lookup is retried after retryMs', async () => {
    const { dns, clock, engine, ask } = setup({ retryMs: MINUTE });
    dns.domain('example.com');
    dns.set('_mta-sts.example.com', 'TXT', { outcome: 'timeout', secure: false });
    assert.equal(await ask('example.com'), 'NOTFOUND ');
    await engine.idle();
    assert.match(
      engine.inspect('example.com')?.noPolicy ?? '',
      /TXT lookup of _mta-sts\.example\.com failed/,
    );
    clock.advance(MINUTE);
    engine.cached('example.com');
    await engine.idle();
    assert.equal(dns.count('_mta-sts.example.com', 'TXT'), 2);
  });
});

describe('proactive refresh (RFC 8461 §10.2)', () => {
  it('refreshes a policy in use about daily, even with the same id; not one out of use', async () => {
    const { dns, fetch, clock, engine, ask } = setup({ refreshIntervalMs: 24 * HOUR });
    for (const d of ['used.example', 'idle.example']) {
      dns.domain(d, '1');
      fetch.serve(d, policy([`mx.${d}`]));
      await ask(d);
    }
    await engine.idle();
    clock.advance(24 * HOUR - 1);
    engine.cached('used.example');
    engine.maintain();
    await engine.idle();
    assert.equal(fetch.count('used.example'), 1, 'not yet');
    clock.advance(1);
    engine.cached('used.example');
    await engine.idle();
    engine.maintain();
    await engine.idle();
    assert.equal(fetch.count('used.example'), 2);
    assert.equal(engine.inspect('used.example')?.policy?.fetchedAt, clock.now(), 'expiry pushed back');
    assert.equal(fetch.count('idle.example'), 1);
  });

  it('refreshes at half the max_age when that is sooner than a day', async () => {
    const { dns, fetch, clock, engine, ask } = setup();
    dns.domain('example.com', '1');
    fetch.serve('example.com', policy(['mx.example.com'], 2 * 3600));
    await ask('example.com');
    await engine.idle();
    clock.advance(HOUR);
    engine.cached('example.com');
    await engine.idle();
    engine.maintain();
    await engine.idle();
    assert.equal(fetch.count('example.com'), 2);
  });

  it('jitters the refresh time by up to 10% earlier', async () => {
    const { dns, fetch, engine, ask } = setup({ random: () => 1, refreshIntervalMs: 24 * HOUR });
    dns.domain('example.com', '1');
    fetch.serve('example.com', policy(['mx.example.com']));
    await ask('example.com');
    await engine.idle();
    assert.equal(engine.inspect('example.com')?.refreshAt, START + 0.9 * 24 * HOUR);
  });

  it('runs at most refreshConcurrency refreshes at once', async () => {
    const { dns, fetch, clock, engine, ask } = setup({ refreshConcurrency: 2 });
    const domains = Array.from({ length: 6 }, (_, i) => `d${i}.example`);
    for (const d of domains) {
      dns.domain(d, '1');
      fetch.serve(d, policy([`mx.${d}`]));
      await ask(d);
    }
    await engine.idle();
    fetch.maxInFlight = 0;
    clock.advance(24 * HOUR);
    for (const d of domains) engine.cached(d);
    await engine.idle();
    fetch.hold();
    engine.maintain();
    await eventually(() => fetch.inFlight >= 2 || undefined, 'two refreshes');
    assert.equal(fetch.inFlight, 2);
    fetch.release();
    await eventually(() => fetch.calls.length >= 12 || undefined, 'all six refreshes');
    await engine.idle();
    assert.equal(fetch.maxInFlight, 2);
    for (const d of domains) assert.equal(fetch.count(d), 2);
  });
});

describe('DANE verdicts', () => {
  function daneDomain(dns: FakeDns, domain: string): void {
    const host = `mx.${domain}`;
    dns.set(domain, 'MX', {
      outcome: 'ok',
      secure: true,
      answers: [{ name: domain, type: 'MX', ttl: 300, data: { preference: 10, exchange: host } }],
    });
    dns.set(host, 'A', {
      outcome: 'ok',
      secure: true,
      answers: [{ name: host, type: 'A', ttl: 300, data: '192.0.2.1' }],
    });
    dns.set(host, 'AAAA', { outcome: 'nodata', secure: true });
    dns.set(`_25._tcp.${host}`, 'TLSA', {
      outcome: 'ok',
      secure: true,
      answers: [
        {
          name: `_25._tcp.${host}`,
          type: 'TLSA',
          ttl: 300,
          data: { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.alloc(32, 1) },
        },
      ],
    });
  }

  it('answers DANE without waiting for MTA-STS', async () => {
    const { dns, fetch, engine } = setup();
    daneDomain(dns, 'example.com');
    dns.setTxt('example.com', '1');
    fetch.hold();
    assert.equal((await engine.resolve('example.com')).text, 'OK dane-only');
    fetch.release();
    await engine.idle();
  });

  it('a failed re-check keeps the last definite verdict for up to an hour', async () => {
    const { dns, clock, engine, ask } = setup();
    daneDomain(dns, 'example.com');
    assert.equal(await ask('example.com'), 'OK dane-only');
    await engine.idle();
    dns.set('_25._tcp.mx.example.com', 'TLSA', { outcome: 'timeout', secure: false });
    dns.set('_25._tcp.mx.example.com', 'TLSA', { outcome: 'timeout', secure: false });
    // Remove the TLSA records meanwhile: after an hour the failure is the verdict.
    for (let t = 5 * MINUTE; t < HOUR; t += 5 * MINUTE) {
      clock.advance(5 * MINUTE);
      engine.cached('example.com');
      await engine.idle();
      assert.equal(engine.inspect('example.com')?.dane?.discovery.verdict.kind, 'all-usable');
      assert.equal(engine.inspect('example.com')?.dane?.failedRecheck?.verdict.kind, 'indeterminate');
    }
    clock.advance(5 * MINUTE);
    engine.cached('example.com');
    await engine.idle();
    assert.equal(engine.inspect('example.com')?.dane?.discovery.verdict.kind, 'indeterminate');
    assert.equal(engine.cached('example.com')?.text, 'OK dane-only');
  });

  it('re-checks DANE when its TTL ends: a domain that drops TLSA falls back to MTA-STS', async () => {
    const { dns, fetch, clock, engine, ask } = setup();
    daneDomain(dns, 'example.com');
    dns.setTxt('example.com', '1');
    fetch.serve('example.com', policy(['mx.example.com']));
    assert.equal(await ask('example.com'), 'OK dane-only');
    await engine.idle();
    dns.set('_25._tcp.mx.example.com', 'TLSA', { outcome: 'nodata', secure: true });
    clock.advance(300 * SECOND);
    assert.equal(engine.cached('example.com')?.text, 'OK dane-only');
    await engine.idle();
    assert.equal(engine.cached('example.com')?.text, SECURE);
  });
});

describe('the store', () => {
  const entry = (domain: string, at: number, maxAge = 86400): CachedPolicy => ({
    domain,
    id: '1',
    policy: policy([`mx.${domain}`], maxAge),
    fetchedAt: at,
    expiresAt: at + maxAge * SECOND,
    checkedAt: at,
  });

  it('load() takes stored policies: answered after the DANE lookup, without a fetch', async () => {
    const { dns, fetch, store, engine, ask } = setup();
    await store.set(entry('example.com', START - HOUR));
    dns.domain('example.com', '1');
    assert.equal(await engine.load(), 1);
    assert.equal(engine.cached('example.com'), undefined, 'DANE not known yet');
    assert.equal(await ask('example.com'), SECURE);
    assert.equal(fetch.count('example.com'), 0);
  });

  it('an expired stored policy counts as none', async () => {
    const { dns, fetch, store, engine, ask } = setup();
    await store.set(entry('example.com', START - 2 * 86400 * SECOND));
    dns.domain('example.com', '1');
    fetch.fail('example.com');
    await engine.load();
    assert.equal(await ask('example.com'), 'NOTFOUND ');
    assert.equal(fetch.count('example.com'), 1);
  });

  it('a domain not in memory is read from the store before anything is fetched', async () => {
    const { dns, fetch, store, engine, ask } = setup();
    dns.domain('example.com', '1');
    await store.set(entry('example.com', START));
    assert.equal(await ask('example.com'), SECURE);
    await engine.idle();
    assert.equal(fetch.count('example.com'), 0);
  });

  it('syncStore(): a purged policy is forgotten and fetched afresh on the next query', async () => {
    const { dns, fetch, store, engine, ask } = setup();
    dns.domain('example.com', '1');
    fetch.serve('example.com', policy(['mx.example.com']));
    await ask('example.com');
    await engine.idle();
    await store.delete('example.com');
    await engine.syncStore();
    assert.equal(engine.inspect('example.com'), undefined);
    fetch.serve('example.com', policy(['other.example.com']));
    assert.equal(await ask('example.com'), 'OK secure match=other.example.com servername=hostname');
    assert.equal(fetch.count('example.com'), 2);
  });

  it('syncStore(): a newer policy written by another MTA is adopted', async () => {
    const { dns, fetch, store, clock, engine, ask } = setup();
    dns.domain('example.com', '1');
    fetch.serve('example.com', policy(['mx.example.com']));
    await ask('example.com');
    await engine.idle();
    clock.advance(HOUR);
    await store.set({
      ...entry('example.com', clock.now()),
      id: '2',
      policy: policy(['shared.example.com']),
    });
    await engine.syncStore();
    assert.equal(
      engine.cached('example.com')?.text,
      'OK secure match=shared.example.com servername=hostname',
    );
  });

  it('readOnly: explain() fetches but writes nothing', async () => {
    const { dns, fetch, store, engine } = setup({ readOnly: true });
    dns.domain('example.com', '1');
    fetch.serve('example.com', policy(['mx.example.com']));
    const snapshot = await engine.explain('example.com');
    assert.equal(snapshot.answer?.text, SECURE);
    assert.equal(snapshot.dane?.discovery.verdict.kind, 'none');
    assert.deepEqual(snapshot.dnsId, { kind: 'id', id: '1' });
    assert.deepEqual(await store.all(), []);
  });

  it('a store that fails to write does not stop answers', async () => {
    const { dns, fetch, engine, store, ask } = setup();
    store.set = async () => {
      throw new Error('disk full');
    };
    dns.domain('example.com', '1');
    fetch.serve('example.com', policy(['mx.example.com']));
    assert.equal(await ask('example.com'), SECURE);
    await engine.idle();
    assert.equal(engine.cached('example.com')?.text, SECURE);
  });
});

describe('discoverDane', () => {
  const a = (name: string, ttl = 300): Answer => ({
    outcome: 'ok',
    secure: true,
    answers: [{ name, type: 'A', ttl, data: '192.0.2.1' }],
  });
  const tlsa = (name: string, usage: number, ttl = 300): Answer => ({
    outcome: 'ok',
    secure: true,
    answers: [
      {
        name,
        type: 'TLSA',
        ttl,
        data: { usage, selector: 1, matchingType: 1, certificate: Buffer.alloc(32) },
      },
    ],
  });

  it('a secure NODATA MX makes the domain its own MX host (RFC 5321 §5.1)', async () => {
    const dns = new FakeDns();
    dns.set('example.com', 'MX', { outcome: 'nodata', secure: true });
    dns.set('example.com', 'A', a('example.com'));
    dns.set('example.com', 'AAAA', { outcome: 'nodata', secure: true });
    dns.set('_25._tcp.example.com', 'TLSA', tlsa('_25._tcp.example.com', 3));
    const d = await discoverDane(dns, 'example.com');
    assert.deepEqual(
      d.hosts.map((h) => [h.host, h.status]),
      [['example.com', 'usable']],
    );
    assert.equal(d.verdict.kind, 'all-usable');
  });

  it('null MX and NXDOMAIN: DANE does not apply', async () => {
    const dns = new FakeDns();
    dns.set('null.example', 'MX', {
      outcome: 'ok',
      secure: true,
      answers: [{ name: 'null.example', type: 'MX', data: { preference: 0, exchange: '.' } }],
    });
    assert.equal((await discoverDane(dns, 'null.example')).mx.status, 'null');
    assert.equal((await discoverDane(dns, 'nothing.example')).mx.status, 'nxdomain');
  });

  it('host statuses, TLSA only for secure addresses, the smallest TTL', async () => {
    const dns = new FakeDns();
    const hosts = ['usable', 'unusable', 'notlsa', 'insecure', 'noaddr', 'unresolved', 'insecuretlsa'].map(
      (h) => `${h}.example.net`,
    );
    dns.set('example.com', 'MX', {
      outcome: 'ok',
      secure: true,
      answers: hosts.map((exchange, i) => ({
        name: 'example.com',
        type: 'MX' as const,
        ttl: 3000,
        data: { preference: i, exchange },
      })),
    });
    dns.set('usable.example.net', 'A', a('usable.example.net', 120));
    dns.set('usable.example.net', 'AAAA', { outcome: 'nodata', secure: true });
    dns.set('_25._tcp.usable.example.net', 'TLSA', tlsa('_25._tcp.usable.example.net', 2));
    dns.set('unusable.example.net', 'A', a('unusable.example.net'));
    dns.set('unusable.example.net', 'AAAA', { outcome: 'nodata', secure: true });
    dns.set('_25._tcp.unusable.example.net', 'TLSA', tlsa('_25._tcp.unusable.example.net', 0));
    dns.set('notlsa.example.net', 'A', a('notlsa.example.net'));
    dns.set('notlsa.example.net', 'AAAA', { outcome: 'nodata', secure: true });
    dns.set('_25._tcp.notlsa.example.net', 'TLSA', { outcome: 'nxdomain', secure: true });
    dns.set('insecure.example.net', 'A', { ...a('insecure.example.net'), secure: false });
    dns.set('noaddr.example.net', 'A', { outcome: 'nodata', secure: true });
    dns.set('noaddr.example.net', 'AAAA', { outcome: 'nodata', secure: true });
    dns.set('unresolved.example.net', 'A', { outcome: 'timeout', secure: false });
    dns.set('insecuretlsa.example.net', 'A', a('insecuretlsa.example.net'));
    dns.set('insecuretlsa.example.net', 'AAAA', { outcome: 'nodata', secure: true });
    dns.set('_25._tcp.insecuretlsa.example.net', 'TLSA', {
      ...tlsa('_25._tcp.insecuretlsa.example.net', 3),
      secure: false,
    });
    const d = await discoverDane(dns, 'example.com');
    assert.deepEqual(
      d.hosts.map((h) => h.status),
      ['usable', 'unusable', 'no-tlsa', 'insecure', 'no-address', 'unresolved', 'insecure'],
    );
    assert.equal(
      dns.count('_25._tcp.insecure.example.net', 'TLSA'),
      0,
      'no TLSA lookup for insecure addresses',
    );
    assert.equal(d.verdict.kind, 'some-usable');
    assert.equal(d.ttlMs, 60 * SECOND, 'an unresolved host: re-check in a minute');
    dns.table.delete('unresolved.example.net A');
    const again = await discoverDane(dns, 'example.com');
    assert.equal(again.ttlMs, 120 * SECOND, 'the smallest TTL');
  });

  it('classifies a failed TLSA lookup as bogus when the CD query succeeds', async () => {
    const dns = new FakeDns();
    dns.set('example.com', 'MX', {
      outcome: 'ok',
      secure: true,
      answers: [
        { name: 'example.com', type: 'MX', ttl: 300, data: { preference: 10, exchange: 'mx.example.com' } },
      ],
    });
    dns.set('mx.example.com', 'A', a('mx.example.com'));
    dns.set('mx.example.com', 'AAAA', { outcome: 'nodata', secure: true });
    dns.set('_25._tcp.mx.example.com', 'TLSA', { outcome: 'servfail', secure: false });
    const servfail = await discoverDane(dns, 'example.com');
    assert.equal(servfail.verdict.kind, 'indeterminate');
    assert.match(servfail.hosts[0]!.detail, /SERVFAIL$/);
    const bogus = new (class extends FakeDns {
      override async query(
        name: string,
        type: DnsRecordType,
        options?: { cd?: boolean },
      ): Promise<DnsResult> {
        const result = await super.query(name, type);
        return options?.cd && type === 'TLSA' ? { ...result, outcome: 'nodata' } : result;
      }
    })();
    for (const [key, value] of dns.table) bogus.table.set(key, value);
    const classified = await discoverDane(bogus, 'example.com');
    assert.match(classified.hosts[0]!.detail, /DNSSEC validation failed \(bogus\)/);
    assert.equal(classified.ttlMs, 60 * SECOND);
  });
});
