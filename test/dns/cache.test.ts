// CachingResolver (src/dns/cache.ts) over a scripted resolver and an injected clock: answers kept by their
// smallest TTL, negative answers and failures kept briefly, queries under way merged, the LRU bound; and over
// DnsClient against the lab DNS server: a denial kept as its zone's SOA says (RFC 2308 §5).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CachingResolver } from '../../src/dns/cache.js';
import { DnsClient } from '../../src/dns/client.js';
import {
  type DnsOutcome,
  type DnsRecordType,
  type DnsResult,
  type QueryOptions,
  ResolverBase,
} from '../../src/dns/resolver.js';
import { type LabDnsServer, startDnsServer } from '../lab/dns-server.js';

/** Answers A queries with 127.0.0.1 and the given TTLs (or the given outcome); counts what it is asked. */
class Scripted extends ResolverBase {
  asked: string[] = [];
  release?: () => void;
  constructor(
    private readonly ttls: number[] = [300],
    private readonly outcome: DnsOutcome = 'ok',
    private readonly gate?: Promise<void>,
  ) {
    super();
  }
  async query(name: string, type: DnsRecordType, options: QueryOptions = {}): Promise<DnsResult> {
    this.asked.push(`${name} ${type}${options.cd ? ' cd' : ''}`);
    if (this.gate) await this.gate;
    const answers =
      this.outcome === 'ok'
        ? this.ttls.map((ttl) => ({ name, type: 'A' as const, ttl, class: 'IN' as const, data: '127.0.0.1' }))
        : [];
    return { name, type, outcome: this.outcome, secure: false, answers, cnameChain: [], ede: [] };
  }
}

function clock(): { now: () => number; advance: (seconds: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (s) => (t += s * 1000) };
}

describe('CachingResolver', () => {
  it('keeps an answer for the smallest TTL of its records, then asks again', async () => {
    const inner = new Scripted([300, 60, 120]);
    const c = clock();
    const cache = new CachingResolver(inner, { now: c.now });
    await cache.a('mx.example.test');
    c.advance(59);
    await cache.a('MX.example.test.');
    assert.equal(
      inner.asked.length,
      1,
      'the same question (any case, trailing dot) is answered from the cache',
    );
    c.advance(2);
    await cache.a('mx.example.test');
    assert.equal(inner.asked.length, 2, 'after 61 s the 60 s record has expired');
  });

  it('keeps the CD query apart from the plain one', async () => {
    const inner = new Scripted();
    const cache = new CachingResolver(inner);
    await cache.query('x.test', 'A');
    await cache.query('x.test', 'A', { cd: true });
    await cache.query('x.test', 'AAAA');
    assert.deepEqual(inner.asked, ['x.test A', 'x.test A cd', 'x.test AAAA']);
  });

  it('keeps NXDOMAIN for the negative TTL and SERVFAIL for the failure TTL only', async () => {
    const c = clock();
    const nx = new Scripted([], 'nxdomain');
    const nxCache = new CachingResolver(nx, { now: c.now, negativeTtl: 30, failureTtl: 5 });
    await nxCache.a('gone.test');
    c.advance(29);
    await nxCache.a('gone.test');
    assert.equal(nx.asked.length, 1);
    c.advance(2);
    await nxCache.a('gone.test');
    assert.equal(nx.asked.length, 2);

    const sf = new Scripted([], 'servfail');
    const sfCache = new CachingResolver(sf, { now: c.now, negativeTtl: 30, failureTtl: 5 });
    await sfCache.a('broken.test');
    c.advance(4);
    await sfCache.a('broken.test');
    assert.equal(sf.asked.length, 1);
    c.advance(2);
    await sfCache.a('broken.test');
    assert.equal(
      sf.asked.length,
      2,
      'a failure is retried after a few seconds, not kept for the negative TTL',
    );
  });

  it('does not keep an answer with TTL 0', async () => {
    const inner = new Scripted([0]);
    const cache = new CachingResolver(inner);
    await cache.a('zero.test');
    await cache.a('zero.test');
    assert.equal(inner.asked.length, 2);
  });

  it('merges queries under way for the same question into one', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const inner = new Scripted([300], 'ok', gate);
    const cache = new CachingResolver(inner);
    const all = Promise.all(Array.from({ length: 50 }, () => cache.a('busy.test')));
    open();
    const results = await all;
    assert.equal(inner.asked.length, 1);
    assert.ok(results.every((r) => r.values[0] === '127.0.0.1'));
    assert.equal(cache.stats().merged, 49);
  });

  it('holds at most maxEntries answers, dropping the least recently used', async () => {
    const inner = new Scripted();
    const cache = new CachingResolver(inner, { maxEntries: 2 });
    await cache.a('a.test');
    await cache.a('b.test');
    await cache.a('a.test'); // a is now the most recently used
    await cache.a('c.test'); // drops b
    assert.equal(cache.stats().size, 2);
    inner.asked = [];
    await cache.a('a.test');
    await cache.a('c.test');
    assert.deepEqual(inner.asked, []);
    await cache.a('b.test');
    assert.deepEqual(inner.asked, ['b.test A']);
  });

  it('does not keep a query that threw, and the next one asks again', async () => {
    let fail = true;
    const inner = new (class extends Scripted {
      override async query(name: string, type: DnsRecordType, options?: QueryOptions): Promise<DnsResult> {
        if (fail) {
          fail = false;
          throw new Error('socket closed');
        }
        return super.query(name, type, options);
      }
    })();
    const cache = new CachingResolver(inner);
    await assert.rejects(cache.a('flaky.test'), /socket closed/);
    assert.equal((await cache.a('flaky.test')).values[0], '127.0.0.1');
  });
});

describe('CachingResolver over DnsClient and the lab DNS server', () => {
  let lab: LabDnsServer;
  before(async () => {
    lab = await startDnsServer([
      {
        origin: 'neg.test',
        records: [
          { name: 'neg.test', type: 'A', data: '127.0.0.1' },
          {
            name: 'neg.test',
            type: 'SOA',
            ttl: 600,
            data: {
              mname: 'ns.neg.test',
              rname: 'hostmaster.neg.test',
              serial: 1,
              refresh: 3600,
              retry: 600,
              expire: 86400,
              minimum: 30,
            },
          },
        ],
      },
    ]);
  });
  after(() => lab?.stop());

  it('keeps NXDOMAIN and NODATA for the smaller of the SOA TTL and MINIMUM, not the default', async () => {
    const c = clock();
    const client = new DnsClient({ servers: [{ host: lab.host, port: lab.port }] });
    const cache = new CachingResolver(client, { now: c.now, negativeTtl: 3600 });
    const asked = () => lab.queries.filter((q) => q.name.endsWith('neg.test')).length;
    const gone = await cache.a('gone.neg.test');
    assert.equal(gone.outcome, 'nxdomain');
    assert.equal(gone.result.negativeTtl, 30);
    await cache.aaaa('neg.test'); // NODATA
    const first = asked();
    c.advance(29);
    await cache.a('gone.neg.test');
    await cache.aaaa('neg.test');
    assert.equal(asked(), first, 'both denials answered from the cache for 30 s');
    c.advance(2);
    await cache.a('gone.neg.test');
    await cache.aaaa('neg.test');
    assert.equal(asked(), first + 2, 'asked again after 30 s, although the default would keep them an hour');
  });
});
