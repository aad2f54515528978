// RedisPolicyStore against a real redis-server (test/lab/redis.ts; CI installs the Debian package).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import type { StsPolicy } from '../../src/mtasts/policy.js';
import { DEFAULT_KEY_PREFIX, decodeEntry, RedisPolicyStore } from '../../src/policyd/redis.js';
import type { CachedPolicy } from '../../src/policyd/store.js';
import { freePort, type LabRedis, startRedis } from '../lab/redis.js';

const POLICY: StsPolicy = {
  mode: 'enforce',
  maxAge: 86400,
  mx: ['mx1.example.test', '*.example.net'],
  extensions: [['x-note', 'hello']],
};

function entry(domain: string, overrides: Partial<CachedPolicy> = {}): CachedPolicy {
  const now = Date.now();
  return {
    domain,
    id: '20240101T000000',
    policy: POLICY,
    fetchedAt: now,
    expiresAt: now + POLICY.maxAge * 1000,
    checkedAt: now,
    ...overrides,
  };
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail(`still waiting for: ${what}`);
}

describe('RedisPolicyStore with a real redis-server', () => {
  let redis: LabRedis;
  let raw: Redis;
  const stores: RedisPolicyStore[] = [];
  const open = async (keyPrefix?: string) => {
    const store = await RedisPolicyStore.open({ url: redis.url, keyPrefix });
    stores.push(store);
    return store;
  };

  before(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url);
  });
  after(async () => {
    for (const store of stores) await store.close();
    await raw?.quit();
    await redis?.stop();
  });

  test('set then get returns the same entry; stored as JSON under the prefix with a TTL', async () => {
    const store = await open();
    const e = entry('roundtrip.example.test');
    await store.set(e);
    assert.deepEqual(await store.get('roundtrip.example.test'), e);
    const key = `${DEFAULT_KEY_PREFIX}roundtrip.example.test`;
    assert.deepEqual(JSON.parse((await raw.get(key)) ?? 'null'), e);
    const ttl = await raw.pttl(key);
    assert.ok(ttl > 0 && ttl <= POLICY.maxAge * 1000, `PTTL ${ttl}`);
  });

  test('an unknown domain is undefined', async () => {
    const store = await open();
    assert.equal(await store.get('never-set.example.test'), undefined);
  });

  test('a later set replaces the entry and its TTL', async () => {
    const store = await open();
    await store.set(entry('replace.example.test', { id: 'one' }));
    const later = entry('replace.example.test', { id: 'two', expiresAt: Date.now() + 60_000 });
    await store.set(later);
    assert.deepEqual(await store.get('replace.example.test'), later);
    const ttl = await raw.pttl(`${DEFAULT_KEY_PREFIX}replace.example.test`);
    assert.ok(ttl > 0 && ttl <= 60_000, `PTTL ${ttl}`);
  });

  test('Redis drops the entry once expiresAt has passed', async () => {
    const store = await open();
    await store.set(entry('short.example.test', { expiresAt: Date.now() + 300 }));
    await until(async () => (await store.get('short.example.test')) === undefined, 'the entry to expire');
    assert.equal(await raw.exists(`${DEFAULT_KEY_PREFIX}short.example.test`), 0);
  });

  test('setting an already expired entry stores nothing and removes the older copy', async () => {
    const store = await open();
    await store.set(entry('stale.example.test'));
    await store.set(entry('stale.example.test', { expiresAt: Date.now() - 1000 }));
    assert.equal(await store.get('stale.example.test'), undefined);
    assert.equal(await raw.exists(`${DEFAULT_KEY_PREFIX}stale.example.test`), 0);
  });

  test('delete says whether something was removed', async () => {
    const store = await open();
    await store.set(entry('gone.example.test'));
    assert.equal(await store.delete('gone.example.test'), true);
    assert.equal(await store.get('gone.example.test'), undefined);
    assert.equal(await store.delete('gone.example.test'), false);
  });

  test('all() returns every entry under its prefix and nothing else', async () => {
    const prefix = 'mxguard-test:all:';
    const store = await open(prefix);
    const domains = Array.from({ length: 1200 }, (_, i) => `d${i}.all.example.test`);
    for (const d of domains) await store.set(entry(d, { id: d }));
    await raw.set('unrelated:key', 'x');
    await raw.set(`${prefix}broken.example.test`, '{not json');
    await raw.set(`${prefix}foreign.example.test`, JSON.stringify({ domain: 'x' }));
    const all = await store.all();
    assert.deepEqual(all.map((e) => e.domain).sort(), [...domains].sort());
    for (const e of all) assert.equal(e.id, e.domain);
  });

  test('a prefix with glob characters only matches itself', async () => {
    const star = await open('mxguard-test:*:');
    const other = await open('mxguard-test:x:');
    await star.set(entry('star.example.test'));
    await other.set(entry('other.example.test'));
    assert.deepEqual(
      (await star.all()).map((e) => e.domain),
      ['star.example.test'],
    );
  });

  test('two stores on one server share entries; different prefixes do not', async () => {
    const a = await open('mxguard-test:shared:');
    const b = await open('mxguard-test:shared:');
    const c = await open('mxguard-test:other:');
    const e = entry('shared.example.test');
    await a.set(e);
    assert.deepEqual(await b.get('shared.example.test'), e);
    assert.equal(await c.get('shared.example.test'), undefined);
    assert.equal(await b.delete('shared.example.test'), true);
    assert.equal(await a.get('shared.example.test'), undefined);
    await b.set(entry('both.example.test', { id: 'from-b' }));
    assert.deepEqual(
      (await a.all()).map((x) => x.id),
      ['from-b'],
    );
  });

  test('open() fails naming the server when nothing listens there', async () => {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}/0`;
    await assert.rejects(RedisPolicyStore.open({ url, connectTimeoutMs: 1000 }), (err: Error) => {
      assert.match(err.message, new RegExp(`Redis at redis://127\\.0\\.0\\.1:${port}/0: connect failed`));
      return true;
    });
  });

  test('commands fail with the server named once it is gone, and close() still returns', async () => {
    const other = await startRedis();
    let stopped = false;
    try {
      const store = await RedisPolicyStore.open({ url: other.url, connectTimeoutMs: 500 });
      await store.set(entry('before.example.test'));
      await other.stop();
      stopped = true;
      await assert.rejects(
        store.get('before.example.test'),
        /Redis at redis:\/\/127\.0\.0\.1:\d+\/0: GET failed/,
      );
      await store.close();
    } finally {
      if (!stopped) await other.stop();
    }
  });
});

describe('decodeEntry', () => {
  const good = entry('good.example.test');
  const bad: Array<[string, unknown]> = [
    ['not an object', 'just a string'],
    ['an array', [good]],
    ['null', null],
    ['no policy', { ...good, policy: undefined }],
    ['numeric domain', { ...good, domain: 5 }],
    ['no id', { ...good, id: undefined }],
    ['fetchedAt as string', { ...good, fetchedAt: '2024' }],
    ['expiresAt missing', { ...good, expiresAt: undefined }],
    ['checkedAt NaN (null in JSON)', { ...good, checkedAt: Number.NaN }],
    ['unknown mode', { ...good, policy: { ...POLICY, mode: 'enforcing' } }],
    ['negative max_age', { ...good, policy: { ...POLICY, maxAge: -1 } }],
    ['fractional max_age', { ...good, policy: { ...POLICY, maxAge: 1.5 } }],
    ['mx not a list', { ...good, policy: { ...POLICY, mx: 'mx.example.test' } }],
    ['mx with a number', { ...good, policy: { ...POLICY, mx: ['a', 1] } }],
    ['extension not a pair', { ...good, policy: { ...POLICY, extensions: [['a']] } }],
  ];
  for (const [name, value] of bad) {
    test(`rejects: ${name}`, () => {
      assert.equal(decodeEntry(JSON.stringify(value)), undefined);
    });
  }

  test('rejects text that is not JSON', () => {
    assert.equal(decodeEntry('{"domain":'), undefined);
    assert.equal(decodeEntry(''), undefined);
  });

  test('round trip: decodeEntry(JSON.stringify(x)) is x for generated entries', () => {
    const name = fc.stringMatching(/^[a-z0-9-]{1,20}(\.[a-z0-9-]{1,20}){0,3}$/);
    const time = fc.integer({ min: 0, max: 4_000_000_000_000 });
    const arbitrary = fc.record(
      {
        domain: name,
        id: fc.stringMatching(/^[A-Za-z0-9]{1,32}$/),
        policy: fc.record(
          {
            mode: fc.constantFrom('enforce' as const, 'testing' as const, 'none' as const),
            maxAge: fc.integer({ min: 0, max: 31557600 }),
            mx: fc.array(name, { maxLength: 5 }),
            extensions: fc.array(fc.tuple(fc.string(), fc.string()), { maxLength: 3 }),
          },
          { noNullPrototype: true },
        ),
        fetchedAt: time,
        expiresAt: time,
        checkedAt: time,
      },
      { noNullPrototype: true },
    );
    fc.assert(
      fc.property(arbitrary, (x) => {
        assert.deepEqual(decodeEntry(JSON.stringify(x)), x);
      }),
    );
  });

  test('fuzz: random text is never an entry and never throws', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        assert.equal(decodeEntry(text), undefined);
      }),
    );
    fc.assert(
      fc.property(fc.json(), (text) => {
        const decoded = decodeEntry(text);
        if (decoded !== undefined) assert.equal(typeof decoded.domain, 'string');
      }),
    );
  });
});
