// The authentication part of the SQLite store (src/store/sqlite.ts, migration 2): the admin password
// change that ends every session in the same transaction, sessions refused when the password changed
// while the login was checked, API tokens as rows, the login throttle (reserve before the password
// check, settle after; in-flight attempts count; bounded table, never cleared for everyone) and the
// upgrade of a schema-1 database whose sessions and tokens were JSON values in `settings`.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import {
  AUTH_ATTEMPTS_KEEP,
  AUTH_PURGE_BATCH,
  DATABASE_FILE,
  MAX_API_TOKENS,
  openSqliteStore,
  SESSIONS_KEEP,
} from '../../src/store/sqlite.js';
import {
  ADMIN_PASSWORD_SETTING,
  type AuthAttemptLimits,
  type Store,
  type StoreError,
} from '../../src/store/types.js';
import { secondConnection } from '../helpers/store.js';

const root = mkdtempSync(join(tmpdir(), 'mxguard-store-auth-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

const T0 = new Date('2026-03-01T12:00:00Z');
const LIMITS: AuthAttemptLimits = { windowMs: 15 * 60_000, clientMax: 10, accountMax: 50 };
const ADMIN = 'admin';

function at(ms: number): Date {
  return new Date(T0.getTime() + ms);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

async function withStore(work: (store: Store, dataDir: string) => Promise<void>): Promise<void> {
  const dataDir = join(root, `s${++dirs}`);
  const store = await openSqliteStore(dataDir);
  try {
    await work(store, dataDir);
  } finally {
    await store.close();
  }
}

/** Runs `sql` on the store's file through a second connection (as another process would). */
const sqlite = secondConnection;

describe('admin password and sessions', () => {
  it('a session is valid until it expires, and ends on logout', async () => {
    await withStore(async (store) => {
      await store.setAdminPassword('hash-1');
      assert.equal(await store.getSetting(ADMIN_PASSWORD_SETTING), 'hash-1');
      const session = { idHash: sha256('session-a'), expiresAt: at(60_000) };
      assert.equal(await store.createSession(session, 'hash-1', T0), true);
      assert.equal(await store.sessionValid(session.idHash, at(59_999)), true);
      assert.equal(await store.sessionValid(session.idHash, at(60_000)), false, 'expired');
      assert.equal(await store.sessionValid(sha256('other'), T0), false, 'unknown');
      await store.endSession(session.idHash);
      assert.equal(await store.sessionValid(session.idHash, T0), false, 'ended');
      await store.endSession(session.idHash); // ending twice is harmless
    });
  });

  it('changing the password ends every session in the same transaction', async () => {
    await withStore(async (store) => {
      await store.setAdminPassword('hash-1');
      const ids = ['a', 'b', 'c'].map(sha256);
      for (const idHash of ids) await store.createSession({ idHash, expiresAt: at(60_000) }, 'hash-1', T0);
      await store.setAdminPassword('hash-2');
      for (const idHash of ids) assert.equal(await store.sessionValid(idHash, T0), false);
    });
  });

  it('a login checked against the old password gets no session once the password changed', async () => {
    await withStore(async (store) => {
      await store.setAdminPassword('hash-1');
      await store.setAdminPassword('hash-2'); // committed while the login was running its scrypt
      const late = { idHash: sha256('late'), expiresAt: at(60_000) };
      assert.equal(await store.createSession(late, 'hash-1', T0), false);
      assert.equal(await store.sessionValid(late.idHash, T0), false);
      assert.equal(await store.createSession(late, 'hash-2', T0), true);
    });
  });

  it(`keeps at most ${SESSIONS_KEEP} sessions (the longest-lived), and drops expired ones`, async () => {
    await withStore(async (store, dataDir) => {
      await store.setAdminPassword('h');
      const expired = sha256('expired');
      await store.createSession({ idHash: expired, expiresAt: at(1) }, 'h', T0);
      for (let i = 0; i < SESSIONS_KEEP + 5; i++) {
        await store.createSession({ idHash: sha256(`s${i}`), expiresAt: at(10_000 + i) }, 'h', at(2));
      }
      const count = sqlite(dataDir, (db) => db.prepare('SELECT count(*) FROM sessions').pluck().get());
      assert.equal(count, SESSIONS_KEEP);
      assert.equal(await store.sessionValid(sha256('s0'), at(2)), false, 'the shortest-lived went first');
      assert.equal(await store.sessionValid(sha256(`s${SESSIONS_KEEP + 4}`), at(2)), true);
      assert.equal(
        sqlite(dataDir, (db) =>
          db.prepare('SELECT count(*) FROM sessions WHERE id_hash = ?').pluck().get(expired),
        ),
        0,
      );
    });
  });
});

describe('API tokens', () => {
  it('create, list, find by hash, delete', async () => {
    await withStore(async (store, dataDir) => {
      const a = { id: 'id-a', name: 'backup', createdAt: T0.toISOString(), hash: sha256('mxg_secret-a') };
      const b = { id: 'id-b', name: 'ci', createdAt: at(1000).toISOString(), hash: sha256('mxg_secret-b') };
      await store.createApiToken(a);
      await store.createApiToken(b);
      assert.deepEqual(await store.listApiTokens(), [
        { id: 'id-a', name: 'backup', createdAt: a.createdAt },
        { id: 'id-b', name: 'ci', createdAt: b.createdAt },
      ]);
      assert.equal(await store.findApiToken(a.hash), 'id-a');
      assert.equal(await store.findApiToken(sha256('mxg_other')), undefined);
      assert.equal(await store.deleteApiToken('id-a'), true);
      assert.equal(await store.deleteApiToken('id-a'), false);
      assert.equal(await store.findApiToken(a.hash), undefined, 'a deleted token is gone at once');
      assert.equal(await store.findApiToken(b.hash), 'id-b');
      const text = readFileSync(join(dataDir, DATABASE_FILE)).toString('latin1');
      assert.ok(!text.includes('mxg_secret'), 'no secret in the file');
    });
  });

  it(`at most MAX_API_TOKENS (${MAX_API_TOKENS}) at once: one more is refused until one is revoked`, async () => {
    await withStore(async (store) => {
      const token = (i: number) => ({
        id: `id-${i}`,
        name: `t${i}`,
        createdAt: T0.toISOString(),
        hash: sha256(`mxg_secret-${i}`),
      });
      for (let i = 0; i < MAX_API_TOKENS; i++) await store.createApiToken(token(i));
      await assert.rejects(store.createApiToken(token(MAX_API_TOKENS)), (err: StoreError) => {
        assert.equal(err.code, 'STORE_INVALID');
        assert.match(err.message, /revoke one/);
        return true;
      });
      assert.equal((await store.listApiTokens()).length, MAX_API_TOKENS);
      assert.equal(await store.findApiToken(token(MAX_API_TOKENS).hash), undefined);
      await store.deleteApiToken('id-0');
      await store.createApiToken(token(MAX_API_TOKENS));
      assert.equal(await store.findApiToken(token(MAX_API_TOKENS).hash), `id-${MAX_API_TOKENS}`);
    });
  });

  it('a second connection (another worker) sees a deletion at once', async () => {
    await withStore(async (store, dataDir) => {
      const other = await openSqliteStore(dataDir);
      try {
        const t = { id: 'x', name: 'n', createdAt: T0.toISOString(), hash: sha256('mxg_x') };
        await store.createApiToken(t);
        assert.equal(await other.findApiToken(t.hash), 'x');
        assert.equal(await other.deleteApiToken('x'), true);
        assert.equal(await store.findApiToken(t.hash), undefined);
      } finally {
        await other.close();
      }
    });
  });
});

describe('the login throttle', () => {
  const keys = (client: string) => ({ client, account: ADMIN });

  it('in-flight attempts count: the client key is refused at its limit before any check ends', async () => {
    await withStore(async (store) => {
      const ids: number[] = [];
      for (let i = 0; i < LIMITS.clientMax; i++) {
        const r = await store.reserveAuthAttempt(keys('192.0.2.1'), LIMITS, at(i * 1000));
        assert.ok(r.ok);
        ids.push(r.id);
      }
      const refused = await store.reserveAuthAttempt(keys('192.0.2.1'), LIMITS, at(20_000));
      assert.deepEqual(refused, { ok: false, retryAfterMs: LIMITS.windowMs - 20_000 });
      assert.ok((await store.reserveAuthAttempt(keys('192.0.2.2'), LIMITS, at(20_000))).ok, 'other key');
      // A success frees its slot; a failure keeps it until the window ends.
      await store.settleAuthAttempt(ids[0]!, true);
      await store.settleAuthAttempt(ids[1]!, false);
      assert.ok((await store.reserveAuthAttempt(keys('192.0.2.1'), LIMITS, at(21_000))).ok);
      assert.equal((await store.reserveAuthAttempt(keys('192.0.2.1'), LIMITS, at(21_000))).ok, false);
      // The second-oldest (failed, at 1 s) leaves the window first.
      assert.ok((await store.reserveAuthAttempt(keys('192.0.2.1'), LIMITS, at(LIMITS.windowMs + 1000))).ok);
    });
  });

  it('the account counts every client; beyond its limit the excess is reported, never a refusal', async () => {
    await withStore(async (store) => {
      for (let i = 0; i < LIMITS.accountMax; i++) {
        const r = await store.reserveAuthAttempt(keys(`198.51.100.${i}`), LIMITS, T0);
        assert.ok(r.ok && r.accountExcess === 0, `attempt ${i}`);
        await store.settleAuthAttempt(r.id, false);
      }
      const over = await store.reserveAuthAttempt(keys('203.0.113.1'), LIMITS, T0);
      assert.ok(over.ok && over.accountExcess === 1, JSON.stringify(over));
      const further = await store.reserveAuthAttempt(keys('203.0.113.2'), LIMITS, T0);
      assert.ok(further.ok && further.accountExcess === 2, JSON.stringify(further));
      const other = await store.reserveAuthAttempt({ client: '203.0.113.3', account: 'someone' }, LIMITS, T0);
      assert.ok(other.ok && other.accountExcess === 0);
    });
  });

  it('two connections on one file share the counts (as serve workers do)', async () => {
    await withStore(async (store, dataDir) => {
      const other = await openSqliteStore(dataDir);
      try {
        const stores = [store, other];
        const results = [];
        for (let i = 0; i < 2 * LIMITS.clientMax; i++) {
          results.push(await stores[i % 2]!.reserveAuthAttempt(keys('192.0.2.9'), LIMITS, T0));
        }
        assert.equal(results.filter((r) => r.ok).length, LIMITS.clientMax);
      } finally {
        await other.close();
      }
    });
  });

  it(`expired attempts are purged ${AUTH_PURGE_BATCH} at a time`, async () => {
    await withStore(async (store, dataDir) => {
      const old = T0.getTime() - LIMITS.windowMs - 1;
      sqlite(dataDir, (db) => {
        const insert = db.prepare(
          "INSERT INTO auth_attempts (client_key, account, state, at_ms) VALUES (?, 'admin', 'failed', ?)",
        );
        db.transaction(() => {
          for (let i = 0; i < 3 * AUTH_PURGE_BATCH; i++) insert.run(`10.0.${i >> 8}.${i & 255}`, old);
        })();
      });
      const count = () =>
        sqlite(dataDir, (db) => db.prepare('SELECT count(*) FROM auth_attempts').pluck().get());
      assert.ok((await store.reserveAuthAttempt(keys('192.0.2.1'), LIMITS, T0)).ok);
      assert.equal(count(), 2 * AUTH_PURGE_BATCH + 1);
      assert.ok((await store.reserveAuthAttempt(keys('192.0.2.1'), LIMITS, T0)).ok);
      assert.equal(count(), AUTH_PURGE_BATCH + 2);
    });
  });

  it(`at most ${AUTH_ATTEMPTS_KEEP} rows: the oldest go first, a recent client keeps its count`, async () => {
    await withStore(async (store, dataDir) => {
      // A locked client, then the table filled by many other keys within the window.
      for (let i = 0; i < LIMITS.clientMax; i++) {
        const r = await store.reserveAuthAttempt(keys('192.0.2.66'), LIMITS, at(1000));
        assert.ok(r.ok);
        await store.settleAuthAttempt(r.id, false);
      }
      sqlite(dataDir, (db) => {
        const insert = db.prepare(
          "INSERT INTO auth_attempts (client_key, account, state, at_ms) VALUES (?, 'admin', 'failed', ?)",
        );
        db.transaction(() => {
          for (let i = 0; i < AUTH_ATTEMPTS_KEEP; i++) insert.run(`k${i}`, T0.getTime() + 2000);
        })();
      });
      const count = () =>
        sqlite(dataDir, (db) => db.prepare('SELECT count(*) FROM auth_attempts').pluck().get());
      for (let i = 0; i < 20; i++) await store.reserveAuthAttempt(keys(`new${i}`), LIMITS, at(3000));
      assert.ok((count() as number) <= AUTH_ATTEMPTS_KEEP, `${count()} rows`);
      // The locked client's rows were the oldest: they went first (nobody else's state was cleared).
      assert.ok((await store.reserveAuthAttempt(keys('192.0.2.66'), LIMITS, at(3000))).ok);
      const kept = sqlite(dataDir, (db) =>
        db.prepare("SELECT count(*) FROM auth_attempts WHERE client_key LIKE 'k%'").pluck().get(),
      ) as number;
      assert.ok(kept >= AUTH_ATTEMPTS_KEEP - 40, `${kept} of the other keys' rows kept`);
    });
  });

  it('clearAuthAttempts forgets every client', async () => {
    await withStore(async (store) => {
      for (let i = 0; i < LIMITS.clientMax; i++)
        await store.reserveAuthAttempt(keys('192.0.2.1'), LIMITS, T0);
      assert.equal((await store.reserveAuthAttempt(keys('192.0.2.1'), LIMITS, T0)).ok, false);
      await store.clearAuthAttempts();
      assert.ok((await store.reserveAuthAttempt(keys('192.0.2.1'), LIMITS, T0)).ok);
    });
  });
});

describe('upgrading a schema-1 database (sessions and tokens in settings)', () => {
  const SCHEMA_1 = readFileSync(new URL('../fixtures/store/schema-1.sql', import.meta.url), 'utf8');

  function schema1Database(settings: Record<string, string>): string {
    const dataDir = join(root, `v1-${++dirs}`);
    mkdirSync(dataDir);
    const db = new Database(join(dataDir, DATABASE_FILE));
    db.exec(SCHEMA_1);
    const insert = db.prepare('INSERT INTO settings (key, value) VALUES (?, ?)');
    for (const [key, value] of Object.entries(settings)) insert.run(key, value);
    db.close();
    return dataDir;
  }

  it('moves the tokens and sessions into their tables: existing tokens keep working, nobody is logged out', async () => {
    const tokens = [
      { id: 't1', name: 'backup', createdAt: '2026-01-01T00:00:00.000Z', hash: sha256('mxg_one') },
      { id: 't2', name: 'ci', createdAt: '2026-01-02T00:00:00.000Z', hash: sha256('mxg_two') },
      { id: 5, name: 'damaged', createdAt: 'x', hash: 'y' },
      'not an object',
    ];
    const live = T0.getTime() + 3_600_000;
    const sessions = { [sha256('live')]: live, [sha256('gone')]: T0.getTime() - 1, odd: 'x' };
    const dataDir = schema1Database({
      [ADMIN_PASSWORD_SETTING]: 'scrypt$old',
      'api.tokens': JSON.stringify(tokens),
      'admin.sessions': JSON.stringify(sessions),
    });
    const store = await openSqliteStore(dataDir);
    try {
      assert.equal(await store.findApiToken(sha256('mxg_one')), 't1');
      assert.equal(await store.findApiToken(sha256('mxg_two')), 't2');
      assert.deepEqual(
        (await store.listApiTokens()).map((t) => t.id),
        ['t1', 't2'],
      );
      assert.equal(await store.sessionValid(sha256('live'), T0), true);
      assert.equal(await store.sessionValid(sha256('gone'), T0), false);
      assert.equal(await store.getSetting('api.tokens'), undefined, 'the old values are gone');
      assert.equal(await store.getSetting('admin.sessions'), undefined);
      assert.equal(await store.getSetting(ADMIN_PASSWORD_SETTING), 'scrypt$old', 'the password stays');
    } finally {
      await store.close();
    }
  });

  it('damaged JSON in the old settings does not stop the upgrade', async () => {
    for (const value of ['{not json', '42', '"text"', 'null', '[]', '{}']) {
      const dataDir = schema1Database({ 'api.tokens': value, 'admin.sessions': value });
      const store = await openSqliteStore(dataDir);
      try {
        assert.deepEqual(await store.listApiTokens(), [], value);
      } finally {
        await store.close();
      }
    }
  });
});
