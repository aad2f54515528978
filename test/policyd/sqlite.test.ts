// The SQLite policy store: round trips, persistence across reopen, two connections at once (the daemon
// and an admin command, WAL), changedElsewhere() for the daemon's store sync, damaged rows, schema.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { listPolicies, purgePolicies } from '../../src/policyd/admin.js';
import { SqlitePolicyStore, STORE_FILE } from '../../src/policyd/sqlite.js';
import type { CachedPolicy } from '../../src/policyd/store.js';

const dirs: string[] = [];
function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'mxguard-policyd-sqlite-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const T = Date.parse('2026-03-01T12:00:00Z');
const entry = (domain: string, id = '1', mx = [`mx.${domain}`]): CachedPolicy => ({
  domain,
  id,
  policy: { mode: 'enforce', maxAge: 86400, mx, extensions: [['ext', 'value']] },
  fetchedAt: T,
  expiresAt: T + 86_400_000,
  checkedAt: T + 5,
});

describe('SqlitePolicyStore', () => {
  it('sets, gets, lists, deletes; survives a reopen', async () => {
    const d = dir();
    const store = SqlitePolicyStore.open(join(d, 'nested'));
    await store.set(entry('b.example'));
    await store.set(entry('a.example'));
    await store.set(entry('a.example', '2', ['mx2.a.example']));
    assert.deepEqual(await store.get('a.example'), entry('a.example', '2', ['mx2.a.example']));
    assert.equal(await store.get('c.example'), undefined);
    assert.deepEqual(
      (await store.all()).map((e) => e.domain),
      ['a.example', 'b.example'],
    );
    assert.equal(await store.delete('b.example'), true);
    assert.equal(await store.delete('b.example'), false);
    await store.close();
    const again = SqlitePolicyStore.open(join(d, 'nested'), { mustExist: true });
    assert.deepEqual(await again.all(), [entry('a.example', '2', ['mx2.a.example'])]);
    await again.close();
  });

  it('round-trips any entry', async () => {
    const store = SqlitePolicyStore.open(dir());
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          domain: fc.domain(),
          id: fc.stringMatching(/^[A-Za-z0-9]{1,32}$/),
          policy: fc.record({
            mode: fc.constantFrom('enforce' as const, 'testing' as const, 'none' as const),
            maxAge: fc.nat({ max: 31557600 }),
            mx: fc.array(fc.domain()),
            extensions: fc.array(fc.tuple(fc.string(), fc.string())),
          }),
          fetchedAt: fc.nat(),
          expiresAt: fc.nat(),
          checkedAt: fc.nat(),
        }),
        async (e) => {
          await store.set(e);
          assert.deepEqual(await store.get(e.domain), JSON.parse(JSON.stringify(e)));
        },
      ),
    );
    await store.close();
  });

  it('changedElsewhere() sees commits of another connection, not its own', async () => {
    const d = dir();
    const daemon = SqlitePolicyStore.open(d);
    const admin = SqlitePolicyStore.open(d, { mustExist: true });
    assert.equal(daemon.changedElsewhere(), false);
    await daemon.set(entry('a.example'));
    assert.equal(daemon.changedElsewhere(), false, 'own writes');
    assert.deepEqual(await admin.get('a.example'), entry('a.example'), 'the other connection reads it');
    await purgePolicies(admin, { domain: 'a.example' });
    assert.equal(daemon.changedElsewhere(), true);
    assert.equal(daemon.changedElsewhere(), false, 'reported once');
    assert.equal(await daemon.get('a.example'), undefined);
    await admin.close();
    await daemon.close();
  });

  it('leaves out rows that do not decode', async () => {
    const d = dir();
    const store = SqlitePolicyStore.open(d);
    await store.set(entry('good.example'));
    const raw = new Database(join(d, STORE_FILE));
    raw
      .prepare('INSERT INTO policies VALUES (?, ?, ?, ?, ?, ?)')
      .run('bad.example', '1', '{"mode":"sometimes"}', 0, 0, 0);
    raw
      .prepare('INSERT INTO policies VALUES (?, ?, ?, ?, ?, ?)')
      .run('worse.example', '1', 'not json', 0, 0, 0);
    raw.close();
    assert.deepEqual(
      (await store.all()).map((e) => e.domain),
      ['good.example'],
    );
    assert.equal(await store.get('bad.example'), undefined);
    await store.close();
  });

  it('refuses a file from a newer schema, and a missing file with mustExist', () => {
    const d = dir();
    const raw = new Database(join(d, STORE_FILE));
    raw.pragma('user_version = 99');
    raw.close();
    assert.throws(() => SqlitePolicyStore.open(d), /newer mxguard \(schema 99/);
    assert.throws(() => SqlitePolicyStore.open(join(d, 'none'), { mustExist: true }));
  });
});

describe('list and purge', () => {
  it('lists stale entries: expired, and (with DNS) id changed or withdrawn', async () => {
    const store = SqlitePolicyStore.open(dir());
    await store.set(entry('fresh.example'));
    await store.set({ ...entry('old.example'), expiresAt: T - 1 });
    await store.set(entry('moved.example'));
    await store.set(entry('gone.example'));
    const plain = await listPolicies(store, { now: T });
    assert.deepEqual(
      plain.map((l) => [l.entry.domain, l.stale, l.why ?? null]),
      [
        ['fresh.example', false, null],
        ['gone.example', false, null],
        ['moved.example', false, null],
        ['old.example', true, `expired ${new Date(T - 1).toISOString()}`],
      ],
    );
    const txt: Record<string, string | undefined> = {
      'fresh.example': 'v=STSv1; id=1',
      'moved.example': 'v=STSv1; id=2',
      'old.example': 'v=STSv1; id=1',
    };
    const resolver = {
      txt: async (name: string) => {
        const value = txt[name.replace(/^_mta-sts\./, '')];
        return {
          outcome: value ? 'ok' : 'nxdomain',
          secure: false,
          values: value ? [value] : [],
          result: {
            name,
            type: 'TXT',
            outcome: value ? 'ok' : 'nxdomain',
            secure: false,
            answers: [],
            cnameChain: [],
            ede: [],
          },
        };
      },
    } as unknown as Parameters<typeof listPolicies>[1]['resolver'];
    const checked = await listPolicies(store, { now: T, resolver });
    assert.deepEqual(
      checked.filter((l) => l.stale).map((l) => [l.entry.domain, l.why]),
      [
        ['gone.example', 'no MTA-STS in DNS: no "v=STSv1" TXT record at _mta-sts.gone.example'],
        ['moved.example', 'DNS now publishes id 2'],
        ['old.example', `expired ${new Date(T - 1).toISOString()}`],
      ],
    );
    assert.deepEqual(await purgePolicies(store, 'all'), [
      'fresh.example',
      'gone.example',
      'moved.example',
      'old.example',
    ]);
    assert.deepEqual(await store.all(), []);
    await store.close();
  });
});
