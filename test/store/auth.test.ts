// The authentication part of the SQLite store (src/store/sqlite.ts, migration 2) beyond the store contract
// (test/store/contract-auth.ts, run by sqlite.test.ts): the bounded sessions and throttle tables, secrets
// absent from the file, a second connection seeing changes and sharing the counts, and the upgrade of a
// schema-1 database whose sessions and tokens were JSON values in `settings`.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import {
  AUTH_ATTEMPTS_KEEP,
  AUTH_PURGE_BATCH,
  DATABASE_FILE,
  openSqliteStore,
  SESSIONS_KEEP,
} from '../../src/store/sqlite.js';
import { ADMIN_PASSWORD_SETTING, type Store } from '../../src/store/types.js';
import { secondConnection } from '../helpers/store.js';
import { ADMIN, at, LIMITS, sha256, T0 } from './contract-auth.js';

const root = mkdtempSync(join(tmpdir(), 'mxguard-store-auth-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

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
  it('the secrets of API tokens are not in the database file (only their SHA-256)', async () => {
    await withStore(async (store, dataDir) => {
      await store.createApiToken({
        id: 'id-a',
        name: 'backup',
        createdAt: T0.toISOString(),
        hash: sha256('mxg_secret-a'),
      });
      // The committed row is in the WAL until a checkpoint: read the database file and its WAL.
      const text = ['', '-wal']
        .map((suffix) => readFileSync(join(dataDir, DATABASE_FILE + suffix)).toString('latin1'))
        .join('');
      assert.ok(text.includes('id-a'), 'the token is in the files');
      assert.ok(!text.includes('mxg_secret'), 'no secret in the files');
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
