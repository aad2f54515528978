// Several processes on one database (src/store/sqlite-cluster.ts, src/store/postgres-cluster.ts): the
// domain change feed and the lock, the same tests on both stores. Two store objects opened on one
// database stand for two serve instances (separate connections, as separate processes have); a lock
// holder's death is a real one: a child process killed with SIGKILL (SQLite's lease runs out), or its
// session ended by the server (PostgreSQL pg_terminate_backend) for the PostgreSQL lock and feed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { openPostgresStore } from '../../src/store/postgres.js';
import { FEED_APPLICATION, LOCK_APPLICATION, LOCK_CLASS } from '../../src/store/postgres-cluster.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { LOCK_SETTING_PREFIX } from '../../src/store/sqlite-cluster.js';
import type { DomainSettings, Store } from '../../src/store/types.js';
import { eventually } from '../fixtures/serve/helpers.js';
import { rejectsWithStoreError } from '../helpers/store.js';
import { type LabPostgres, startPostgres } from '../lab/postgres.js';

type ClusterStore = Pick<
  Store,
  'watchDomains' | 'tryLock' | 'addDomain' | 'updateDomain' | 'removeDomain' | 'close'
>;

const SETTINGS: DomainSettings = {
  mode: 'enforce',
  mx: ['mx.example.test'],
  maxAge: 86400,
  rua: ['mailto:tlsrpt@example.test'],
};

/** A listener that counts its calls. */
function counter() {
  let calls = 0;
  return {
    listener: () => {
      calls++;
    },
    get calls() {
      return calls;
    },
  };
}

/** Resolves with true when `promise` settled, false when it is still pending after the queued work ran. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await new Promise((r) => setImmediate(r));
  return done;
}

/**
 * The tests every store passes. `database()` makes a new empty database and returns an opener for
 * it; each call of the opener is another instance on that database.
 */
function clusterContract(name: string, database: () => Promise<() => Promise<ClusterStore>>) {
  describe(`${name}: several instances on one database`, () => {
    async function two(): Promise<[ClusterStore, ClusterStore]> {
      const open = await database();
      return [await open(), await open()];
    }

    it('a domain added, changed or removed through one instance wakes the watcher of the other', async () => {
      const [a, b] = await two();
      const seen = counter();
      const watch = await b.watchDomains(seen.listener);
      try {
        await a.addDomain('example.test', SETTINGS, new Date());
        await eventually(() => (seen.calls >= 1 ? true : undefined), 'a wake-up after addDomain');
        const afterAdd = seen.calls;
        await a.updateDomain('example.test', { mode: 'testing' }, new Date(Date.now() + 2000));
        await eventually(() => (seen.calls > afterAdd ? true : undefined), 'a wake-up after updateDomain');
        const afterUpdate = seen.calls;
        await a.removeDomain('example.test');
        await eventually(() => (seen.calls > afterUpdate ? true : undefined), 'a wake-up after removeDomain');
      } finally {
        await watch.stop();
        await a.close();
        await b.close();
      }
    });

    it('the writing instance is woken too, and a stopped watch is not', async () => {
      const [a, b] = await two();
      const own = counter();
      const stopped = counter();
      const ownWatch = await a.watchDomains(own.listener);
      const stoppedWatch = await a.watchDomains(stopped.listener);
      await stoppedWatch.stop();
      try {
        await a.addDomain('one.example.test', SETTINGS, new Date());
        await eventually(() => (own.calls >= 1 ? true : undefined), 'the writer woken');
        // A later change through the other instance: once the live watch saw it, the stopped one was due too.
        const before = own.calls;
        await b.addDomain('two.example.test', SETTINGS, new Date());
        await eventually(() => (own.calls > before ? true : undefined), 'the writer woken by the other');
        assert.equal(stopped.calls, 0);
      } finally {
        await ownWatch.stop();
        await a.close();
        await b.close();
      }
    });

    it('a lock held by one instance is refused to the other until released', async () => {
      const [a, b] = await two();
      try {
        const held = await a.tryLock('background');
        assert.ok(held, 'the first instance takes the free lock');
        assert.equal(await b.tryLock('background'), undefined);
        assert.equal(await a.tryLock('background'), undefined, 'not even the holder takes it twice');
        assert.ok(await b.tryLock('other'), 'another name is another lock');
        await held.release();
        await held.release(); // idempotent
        const next = await b.tryLock('background');
        assert.ok(next, 'released: the other instance takes it');
        assert.equal(await settled(held.lost), false, 'a released lock is not "lost"');
        await next.release();
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('closing the holder frees the lock and resolves its `lost`', async () => {
      const [a, b] = await two();
      try {
        const held = await a.tryLock('background');
        assert.ok(held);
        await a.close();
        await held.lost;
        assert.ok(await b.tryLock('background'));
      } finally {
        await b.close();
      }
    });

    it('instances racing for a free lock: exactly one gets it', async () => {
      const open = await database();
      const stores = await Promise.all(Array.from({ length: 4 }, () => open()));
      try {
        const attempts = await Promise.all(
          stores.flatMap((store) => [store.tryLock('race'), store.tryLock('race')]),
        );
        assert.equal(attempts.filter((lock) => lock !== undefined).length, 1);
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    });

    it('refuses a lock name outside [a-z0-9._-]{1,64}', async () => {
      const [a, b] = await two();
      try {
        for (const bad of ['', 'Background', 'a b', 'x'.repeat(65), 'lock;drop']) {
          await rejectsWithStoreError(a.tryLock(bad), 'STORE_INVALID', /lock name/);
        }
      } finally {
        await a.close();
        await b.close();
      }
    });
  });
}

// ---- SQLite: two store objects on one file ----

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function newDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mxguard-cluster-'));
  dirs.push(dir);
  return dir;
}

clusterContract('sqlite', async () => {
  const dir = newDataDir();
  return () => openSqliteStore(dir);
});

describe('sqlite: a lock holder that dies', () => {
  it('on this machine (killed with SIGKILL): its lease is free at once, though far from run out', async () => {
    const dir = newDataDir();
    await (await openSqliteStore(dir)).close();
    // The holder: another process with a ten-minute lease, renewed every 200 ms until it is killed.
    const holder = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `import Database from 'better-sqlite3';
         import { SqliteCluster } from ${JSON.stringify(join(process.cwd(), 'src/store/sqlite-cluster.ts'))};
         const db = new Database(${JSON.stringify(join(dir, 'mxguard.sqlite'))}, { timeout: 5000 });
         const cluster = new SqliteCluster(db, (step) => step(), { leaseMs: 600000, renewMs: 200 });
         const lock = await cluster.tryLock('background');
         process.stdout.write(lock ? 'held\\n' : 'refused\\n');
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise((resolve) => holder.once('exit', resolve));
    try {
      const said = await new Promise<string>((resolve) =>
        holder.stdout.once('data', (d) => resolve(String(d))),
      );
      assert.equal(said.trim(), 'held');
      const store = await openSqliteStore(dir);
      try {
        // Renewed by a live holder: refused however long we look (several renewals here).
        for (let i = 0; i < 3; i++) {
          assert.equal(await store.tryLock('background'), undefined);
          await new Promise((r) => setTimeout(r, 300));
        }
        holder.kill('SIGKILL');
        await exited;
        const lock = await store.tryLock('background');
        assert.ok(lock, 'the dead holder’s lease is free');
        await lock.release();
      } finally {
        await store.close();
      }
    } finally {
      if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
    }
  });

  it('elsewhere (a lease written on another machine): free once it ran out, not before', async () => {
    const dir = newDataDir();
    const store = await openSqliteStore(dir);
    try {
      const until = Date.now() + 1500;
      await store.setSetting(
        `${LOCK_SETTING_PREFIX}background`,
        JSON.stringify({
          holder: 'on-another-machine',
          until,
          host: 'elsewhere.example',
          pid: process.pid + 1,
        }),
      );
      assert.equal(await store.tryLock('background'), undefined);
      const lock = await eventually(() => store.tryLock('background'), 'the lease to run out');
      assert.ok(Date.now() >= until, 'taken before the lease ran out');
      await lock.release();
    } finally {
      await store.close();
    }
  });
});

// ---- PostgreSQL: two store objects on one database of a lab server ----

let lab: LabPostgres | undefined;
let databases = 0;
before(async () => {
  lab = await startPostgres();
});
after(async () => {
  await lab?.stop();
});

async function freshDatabase(): Promise<string> {
  assert.ok(lab);
  return lab.createDatabase(`mxguard_cluster_${++databases}`);
}

clusterContract('postgres', async () => {
  const url = await freshDatabase();
  return () => openPostgresStore(url);
});

/** Ends the server sessions of `url`'s database that match `where` (pg_stat_activity / pg_locks). */
async function terminate(url: string, where: string): Promise<number> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    const result = await admin.query<{ n: number }>(
      `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid() AND ${where}`,
    );
    return result.rows[0]?.n ?? 0;
  } finally {
    await admin.end();
  }
}

describe('postgres: connections that drop', () => {
  it('a holder whose session ends loses the lock (`lost`), and the other instance takes it', async () => {
    const url = await freshDatabase();
    const a = await openPostgresStore(url);
    const b = await openPostgresStore(url);
    try {
      const held = await a.tryLock('background');
      assert.ok(held);
      assert.equal(await b.tryLock('background'), undefined);
      const ended = await terminate(
        url,
        `application_name = '${LOCK_APPLICATION}' AND pid IN
           (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = ${LOCK_CLASS})`,
      );
      assert.equal(ended, 1, 'the holder’s lock session');
      await held.lost;
      const next = await eventually(() => b.tryLock('background'), 'the freed lock');
      await next.release();
      // The holder's other work goes on: its pool was not the lock's connection.
      await a.addDomain('still.example.test', SETTINGS, new Date());
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('the change feed comes back after its connection was ended and wakes its listener', async () => {
    const url = await freshDatabase();
    const a = await openPostgresStore(url);
    const b = await openPostgresStore(url);
    const seen = counter();
    const watch = await b.watchDomains(seen.listener);
    try {
      const ended = await terminate(url, `application_name = '${FEED_APPLICATION}'`);
      assert.equal(ended, 1, 'the LISTEN session');
      // Back: it calls the listener once (changes may have been missed), then hears new changes again.
      await eventually(() => (seen.calls >= 1 ? true : undefined), 'the wake-up after reconnecting');
      const before = seen.calls;
      await a.addDomain('example.test', SETTINGS, new Date());
      await eventually(() => (seen.calls > before ? true : undefined), 'a change heard after reconnecting');
    } finally {
      await watch.stop();
      await a.close();
      await b.close();
    }
  });
});
