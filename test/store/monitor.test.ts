// Monitoring in the SQLite store, what only SQLite shows (the behaviour both stores share is the contract
// part test/store/contract-monitor.ts, run by sqlite.test.ts and postgres.test.ts): a failing trigger
// rolling back the whole outcome, the unique index seen through a second connection, four processes
// racing on one file, and upgrading databases that older versions left.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { MIGRATIONS, migrate, SCHEMA_VERSION } from '../../src/store/migrations.js';
import { DATABASE_FILE, openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';
import { rejectsWithStoreError, secondConnection } from '../helpers/store.js';
import { alert, outcome, run, SETTINGS, T0 } from './contract-monitor.js';

const root = mkdtempSync(join(tmpdir(), 'mxguard-store-monitor-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const RACER = fileURLToPath(new URL('../fixtures/store/monitor-racer.ts', import.meta.url));
const HOUR = 3_600_000;
const at = (ms: number) => new Date(T0.getTime() + ms);

async function withStore(work: (store: Store, dataDir: string) => Promise<void>): Promise<void> {
  const dataDir = join(root, `s${++dirs}`);
  const store = await openSqliteStore(dataDir);
  try {
    await store.addDomain('example.com', SETTINGS, T0);
    await store.addDomain('other.example', SETTINGS, T0);
    await work(store, dataDir);
  } finally {
    await store.close();
  }
}

const sqlite = secondConnection;

const rows = (dataDir: string, table: string, where = '1') =>
  sqlite(dataDir, (db) => db.prepare(`SELECT count(*) FROM ${table} WHERE ${where}`).pluck().get() as number);

const rejects = rejectsWithStoreError;

describe('recordCheck (SQLite)', () => {
  it('is one transaction: a failure while writing a delivery leaves no run and no alert behind', async () => {
    await withStore(async (store, dataDir) => {
      const open = await store.recordCheck(outcome(T0, [alert('old')]), T0);
      sqlite(dataDir, (db) =>
        db.exec(`CREATE TRIGGER fail_resolved BEFORE INSERT ON deliveries
                 WHEN NEW.event LIKE '%alert.resolved%' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`),
      );
      await rejects(
        store.recordCheck(outcome(at(HOUR), [alert('new')], [open.opened[0]!]), at(HOUR)),
        'STORE_IO',
        /disk on fire/,
      );
      assert.equal(rows(dataDir, 'check_runs'), 1, 'only the first run');
      assert.equal(rows(dataDir, 'alerts'), 1);
      assert.equal(rows(dataDir, 'alerts', 'resolved_at IS NULL'), 1, 'the old alert is still open');
      assert.equal(rows(dataDir, 'deliveries'), 1);
    });
  });
});

describe('one open alert per key (SQLite)', () => {
  it('the database refuses a second open alert for a key, whoever writes it', async () => {
    await withStore(async (store, dataDir) => {
      const { runId } = await store.recordCheck(outcome(T0, [alert('a', 'mx1')]), T0);
      const insert = `INSERT INTO alerts (domain, code, subject, severity, message, opened_at, opened_by)
                      VALUES ('example.com', 'a', 'mx1', 'fail', 'm', 'now', ${runId})`;
      assert.throws(() => sqlite(dataDir, (db) => db.exec(insert)), /UNIQUE constraint failed/);
    });
  });

  it('four processes recording the same alert keys at once open each key exactly once', async () => {
    const dataDir = join(root, `race-${++dirs}`);
    const setup = await openSqliteStore(dataDir);
    await setup.addDomain('race.example', { ...SETTINGS, mx: ['*.race.example'] }, T0);
    await setup.close();
    const ROUNDS = 40;
    const racers = Array.from({ length: 4 }, () => {
      const child = spawn(process.execPath, ['--import', 'tsx', RACER, dataDir, String(ROUNDS)], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => {
        out += c;
      });
      child.stderr.setEncoding('utf8').on('data', (c: string) => {
        err += c;
      });
      const ready = new Promise<void>((resolve) => {
        const poll = () => (out.startsWith('ready\n') ? resolve() : setTimeout(poll, 10));
        poll();
      });
      const done = new Promise<number[]>((resolve, reject) =>
        child.on('close', (code) =>
          code === 0 ? resolve(JSON.parse(out.slice('ready\n'.length)) as number[]) : reject(new Error(err)),
        ),
      );
      return { child, ready, done };
    });
    await Promise.all(racers.map((r) => r.ready));
    for (const r of racers) r.child.stdin.end('go\n');
    const opened = (await Promise.all(racers.map((r) => r.done))).flat();
    assert.equal(opened.length, ROUNDS, 'each key opened by exactly one of the racers');
    assert.equal(new Set(opened).size, ROUNDS);
    assert.equal(rows(dataDir, 'check_runs'), 4 * ROUNDS, 'every run is kept');
    assert.equal(rows(dataDir, 'alerts'), ROUNDS);
    assert.equal(rows(dataDir, 'deliveries'), ROUNDS, 'one notification per opened alert');
  });
});

describe('upgrading databases of older versions', () => {
  /** A database as schema version `version` left it, with a domain and a report in it. */
  function olderDatabase(version: number): string {
    const dataDir = join(root, `v${version}-${++dirs}`);
    mkdirSync(dataDir);
    const db = new Database(join(dataDir, DATABASE_FILE));
    migrate(db, MIGRATIONS.slice(0, version));
    db.prepare(
      `INSERT INTO domains (name, mode, mx, max_age, rua, policy_id, policy_text, created_at, updated_at)
       VALUES ('old.example', 'enforce', '["mx.old.example"]', 86400, '["mailto:r@old.example"]',
         '20250101000000', 'version: STSv1\nmode: enforce\nmx: mx.old.example\nmax_age: 86400\n',
         '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z')`,
    ).run();
    db.prepare(
      `INSERT INTO policy_versions (domain, policy_id, policy_text, created_at)
       VALUES ('old.example', '20250101000000', 'text', '2025-01-01T00:00:00.000Z')`,
    ).run();
    assert.equal(db.pragma('user_version', { simple: true }), version);
    db.close();
    return dataDir;
  }

  for (const version of [1, 2, SCHEMA_VERSION - 1]) {
    it(`from schema ${version}: existing domains keep working (not watch-only) and can be monitored`, async () => {
      const dataDir = olderDatabase(version);
      const store = await openSqliteStore(dataDir);
      try {
        const old = await store.getDomain('old.example');
        assert.equal(old?.policyId, '20250101000000');
        assert.equal(old?.watchOnly, undefined);
        assert.equal(
          sqlite(dataDir, (db) => db.pragma('user_version', { simple: true })),
          SCHEMA_VERSION,
        );
        assert.equal(rows(dataDir, 'domains', 'watch_only = 0'), 1);
        const { opened } = await store.recordCheck(
          outcome(T0, [alert('a', '', 'old.example')], [], run(T0, [], { domain: 'old.example' })),
          T0,
        );
        assert.equal(opened.length, 1);
        assert.equal((await store.updateDomain('old.example', { watchOnly: true }, T0)).watchOnly, true);
        assert.equal(await store.removeDomain('old.example'), true);
        assert.equal(rows(dataDir, 'alerts'), 0);
      } finally {
        await store.close();
      }
    });
  }
});
