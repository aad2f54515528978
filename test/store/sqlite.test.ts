// The SQLite store (src/store/sqlite.ts): the store contract (test/store/contract.ts) on a fresh data
// directory, plus what only SQLite has: the file and migrations, query plans, legacy rows written with
// plain SQL, the fetch log's batches and cap, two connections at once, WAL and durability.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { openStore } from '../../src/store/index.js';
import { SCHEMA_VERSION } from '../../src/store/migrations.js';
import { CLIP_MARK, LIST_PAGE_MAX_BYTES, LIST_TEXT_MAX } from '../../src/store/paging.js';
import { DATABASE_FILE, FETCH_LOG_KEEP, openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';
import { eventually } from '../fixtures/serve/helpers.js';
import { insertLegacyReports, MIB, rowsOfReport } from '../helpers/legacy-reports.js';
import { rejectsWithStoreError, secondConnection } from '../helpers/store.js';
import {
  allPages,
  FROM,
  fetch,
  many,
  newReport,
  policy,
  report,
  type StoreFixture,
  settings,
  storeContract,
  T0,
} from './contract.js';
import { dmarcContract } from './contract-dmarc.js';
import { monitorContract } from './contract-monitor.js';

let root: string;
let counter = 0;
/** A fresh, empty data directory (that does not exist yet). */
const freshDir = () => join(root, `data-${++counter}`, 'nested');

before(() => {
  root = mkdtempSync(join(tmpdir(), 'mxguard-store-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

async function withFreshStore(work: (store: Store, dir: string) => Promise<void>): Promise<void> {
  const dir = freshDir();
  const store = await openSqliteStore(dir);
  try {
    await work(store, dir);
  } finally {
    await store.close();
  }
}

const rejects = rejectsWithStoreError;

storeContract('sqlite', () => openSqliteStore(freshDir()));

/** The contract parts' fixture on a fresh data directory: another instance is another connection to the file. */
async function sqliteFixture(): Promise<StoreFixture> {
  const dir = freshDir();
  const store = await openSqliteStore(dir);
  const others: Store[] = [];
  return {
    store,
    another: async () => {
      const other = await openSqliteStore(dir);
      others.push(other);
      return other;
    },
    rows: async (table, where) =>
      secondConnection(
        dir,
        (db) =>
          db
            .prepare(`SELECT count(*) FROM ${table}${where === undefined ? '' : ` WHERE ${where}`}`)
            .pluck()
            .get() as number,
      ),
    column: async (sql) => secondConnection(dir, (db) => db.prepare(sql).pluck().all()),
    close: async () => {
      await Promise.all([store, ...others].map((s) => s.close()));
    },
  };
}

monitorContract('sqlite', sqliteFixture);
dmarcContract('sqlite', sqliteFixture);

describe('opening and migrations', () => {
  it('creates the data directory and the database file, at the current schema version', async () => {
    const dir = freshDir();
    assert.equal(existsSync(dir), false);
    const store = await openStore(dir);
    await store.close();
    const db = new Database(join(dir, DATABASE_FILE), { readonly: true });
    try {
      assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      const tables = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .pluck()
        .all();
      for (const t of [
        'domains',
        'policy_versions',
        'reports',
        'report_policies',
        'failures',
        'rejected',
        'fetches',
        'settings',
      ]) {
        assert.ok(tables.includes(t), `table ${t}`);
      }
    } finally {
      db.close();
    }
  });

  it('re-opens an existing database and keeps its data', async () => {
    const dir = freshDir();
    let store = await openSqliteStore(dir);
    await store.addDomain('example.com', settings, T0);
    await store.setSetting('k', 'v');
    await store.close();
    store = await openSqliteStore(dir);
    try {
      assert.equal((await store.getDomain('example.com'))?.policyId, '20240501100000');
      assert.equal(await store.getSetting('k'), 'v');
    } finally {
      await store.close();
    }
  });

  it('two processes-worth of connections opening a new database at once both succeed', async () => {
    const dir = freshDir();
    const [a, b] = await Promise.all([openSqliteStore(dir), openSqliteStore(dir)]);
    await a.close();
    await b.close();
  });

  it('refuses a database from a newer mxguard', async () => {
    const dir = freshDir();
    (await openSqliteStore(dir)).close();
    const db = new Database(join(dir, DATABASE_FILE));
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    await rejects(openSqliteStore(dir), 'STORE_IO', /newer than this mxguard/);
  });

  it('refuses a file that is not a database, naming it', async () => {
    const dir = freshDir();
    (await openSqliteStore(dir)).close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(join(dir, DATABASE_FILE + suffix), { force: true });
    writeFileSync(join(dir, DATABASE_FILE), 'this is not SQLite, just text that is long enough '.repeat(100));
    await rejects(openSqliteStore(dir), 'STORE_IO', new RegExp(DATABASE_FILE));
  });

  it('refuses a data directory that cannot be created', async () => {
    const file = join(root, `plain-file-${++counter}`);
    writeFileSync(file, 'x');
    await rejects(openSqliteStore(join(file, 'sub')), 'STORE_IO', /cannot open the database/);
  });
});

describe('reports (SQLite only)', () => {
  it('the dashboard queries use the indexes', async () => {
    await withFreshStore(async (store, dir) => {
      await store.saveReport(
        newReport(
          report('r1', '2024-05-01T00:00:00Z', [policy('x.example', 1, 1, [{ resultType: 'x', count: 1 }])]),
        ),
        T0,
      );
      const db = new Database(join(dir, DATABASE_FILE), { readonly: true });
      try {
        const plan = (sql: string) =>
          (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as Array<{ detail: string }>)
            .map((r) => r.detail)
            .join('\n');
        assert.match(
          plan(
            "SELECT start_day, sum(successful), sum(failed) FROM report_policies WHERE domain = 'x' AND start_ms >= 0 AND start_ms < 1 GROUP BY start_day",
          ),
          /COVERING INDEX report_policies_domain_start/,
        );
        assert.match(
          plan(
            "SELECT result_type, sum(count) FROM failures WHERE domain = 'x' AND start_ms >= 0 GROUP BY result_type",
          ),
          /INDEX failures_domain_start/,
        );
        // the report list's keyset page, purging by date, retention of rejected input
        assert.match(
          plan(
            'SELECT id FROM reports r WHERE r.start_ms >= 0 AND r.start_ms < 9 AND (r.start_ms, r.id) < (3, 4) ORDER BY r.start_ms DESC, r.id DESC LIMIT 5',
          ),
          /^SEARCH r USING COVERING INDEX reports_start \(start_ms>\? AND start_ms<\?\)$/,
        );
        assert.match(
          plan('SELECT id FROM reports WHERE start_ms < 5 ORDER BY start_ms, id LIMIT 500'),
          /COVERING INDEX reports_start/,
        );
        assert.match(
          plan("SELECT id FROM rejected WHERE received_at < 'x' ORDER BY received_at, id LIMIT 500"),
          /COVERING INDEX rejected_received/,
        );
      } finally {
        db.close();
      }
    });
  });

  it('list views clip long values with a marker and name the clipped fields; a page stays under the byte cap', async () => {
    await withFreshStore(async (store, dir) => {
      await many(store, 3, 'n');
      const giant = insertLegacyReports(dir, [
        {
          organization: `\u202eEvil ${'o'.repeat(2 * MIB)}`,
          reportId: 'r'.repeat(MIB),
          start: '2024-05-02T00:00:00Z',
          domain: `${'d'.repeat(MIB)}.example`,
          submitter: 's'.repeat(MIB),
        },
        ...Array.from({ length: 5 }, (_, i) => ({
          organization: `${i}${'\u0001'.repeat(MIB)}`,
          reportId: `legacy-${i}`,
          start: '2024-05-02T01:00:00Z',
          domain: 'example.com',
        })),
      ]);
      const page = await store.listReports({ limit: 1000 });
      assert.equal(page.total, 9);
      assert.equal(page.items.length, 9);
      assert.ok(Buffer.byteLength(JSON.stringify(page)) <= LIST_PAGE_MAX_BYTES);
      assert.equal(page.nextCursor, null);
      const big = page.items.find((r) => r.id === giant[0])!;
      assert.deepEqual(big.clipped, ['organization', 'reportId', 'domains']);
      assert.equal(big.organization, `\u202eEvil ${'o'.repeat(LIST_TEXT_MAX - 6)}${CLIP_MARK}`);
      assert.equal(big.reportId, `${'r'.repeat(LIST_TEXT_MAX)}${CLIP_MARK}`);
      assert.equal(big.domains[0], `${'d'.repeat(LIST_TEXT_MAX)}${CLIP_MARK}`);
      const small = page.items.find((r) => r.reportId === 'n0')!;
      assert.equal(small.clipped, undefined, 'nothing clipped: no clipped field');
      assert.equal(small.organization, 'Sender A');
    });
  });

  it('a page holds only what fits in the byte cap; the rest follows on the next pages', async () => {
    await withFreshStore(async (store, dir) => {
      // 1000 rows whose clipped values are all control characters: about 3 KB of JSON each
      insertLegacyReports(
        dir,
        Array.from({ length: 1000 }, (_, i) => ({
          organization: `${'\u0001'.repeat(400)}${i}`,
          reportId: `${'\u0002'.repeat(400)}${i}`,
          start: new Date(FROM + i * 60_000).toISOString(),
          domain: 'example.com',
        })),
      );
      const first = await store.listReports({ limit: 1000 });
      assert.ok(first.items.length < 1000, `${first.items.length} items on the first page`);
      assert.ok(first.items.length > 100);
      assert.notEqual(first.nextCursor, null);
      assert.ok(Buffer.byteLength(JSON.stringify(first)) <= LIST_PAGE_MAX_BYTES);
      assert.equal(first.total, 1000);
      const ids = await allPages(store, { limit: 1000 });
      assert.equal(new Set(ids).size, 1000);
    });
  });

  it('getReport with maxBytes: a report stored larger comes back as its clipped summary, marked tooLarge', async () => {
    await withFreshStore(async (store, dir) => {
      const [id] = insertLegacyReports(dir, [
        {
          organization: 'o'.repeat(3 * MIB),
          reportId: 'big',
          start: '2024-05-02T00:00:00Z',
          domain: 'example.com',
        },
      ]);
      const summary = await store.getReport(id!, { maxBytes: MIB });
      assert.ok(summary && 'tooLarge' in summary);
      assert.ok(summary.tooLarge.bytes > 3 * MIB);
      assert.equal(summary.tooLarge.maxBytes, MIB);
      assert.equal(summary.organization, `${'o'.repeat(LIST_TEXT_MAX)}${CLIP_MARK}`);
      assert.equal(summary.reportId, 'big');
      assert.equal('report' in summary, false);
      // without a limit (the CLI's --json), the whole report
      const whole = await store.getReport(id!);
      assert.equal(whole?.organization.length, 3 * MIB);
      const { id: small } = await store.saveReport(newReport(report('s', '2024-05-01T00:00:00Z', [])), T0);
      assert.equal((await store.getReport(small, { maxBytes: MIB }))?.reportId, 's');
      assert.ok('report' in (await store.getReport(small, { maxBytes: MIB }))!);
    });
  });

  it('deleting a legacy giant report works like any other', async () => {
    await withFreshStore(async (store, dir) => {
      const [id] = insertLegacyReports(dir, [
        {
          organization: 'o'.repeat(4 * MIB),
          reportId: 'giant',
          start: '2024-05-02T00:00:00Z',
          domain: 'example.com',
          failures: [{ resultType: 'x'.repeat(MIB), count: 3, receivingMxHostname: 'm'.repeat(MIB) }],
        },
      ]);
      assert.deepEqual(await store.deleteReports([id!]), [id!]);
      assert.deepEqual(rowsOfReport(dir, id!), { reports: 0, policies: 0, failures: 0 });
    });
  });

  it('failureBreakdown clips long keys (legacy rows) and says so', async () => {
    await withFreshStore(async (store, dir) => {
      insertLegacyReports(dir, [
        {
          organization: 'O'.repeat(MIB),
          reportId: 'b1',
          start: '2024-05-02T00:00:00Z',
          domain: 'example.com',
          failures: [
            {
              resultType: 'x',
              count: 2,
              receivingMxHostname: 'm'.repeat(MIB),
              sendingMtaIp: 'i'.repeat(MIB),
            },
          ],
        },
      ]);
      for (const by of ['organization', 'receivingMxHostname', 'sendingMtaIp'] as const) {
        const [row] = await store.failureBreakdown('example.com', by);
        assert.equal(row?.key.length, LIST_TEXT_MAX + CLIP_MARK.length, by);
        assert.equal(row?.clipped, true, by);
        assert.equal(row?.count, 2);
      }
    });
  });
});

/** Wait (bounded, no timing assertion) until `reader` sees an entry of the timer-driven fetch-log flush. */
const untilFetchLogged = (reader: Store) =>
  eventually(
    async () => ((await reader.listFetches('example.com')).items.length > 0 ? true : undefined),
    'the fetch log entry',
  );

describe('policy fetch log', () => {
  it('a batch of 100 is written at once, and close writes the rest', async () => {
    const dir = freshDir();
    const store = await openSqliteStore(dir);
    const other = await openSqliteStore(dir); // sees only what was committed
    try {
      for (let i = 0; i < 100; i++) store.logFetch(fetch(i));
      assert.equal((await other.listFetches('example.com', { limit: 1000 })).items.length, 100);
      store.logFetch(fetch(100));
      assert.equal((await other.listFetches('example.com', { limit: 1000 })).items.length, 100);
      await store.close();
      assert.equal((await other.listFetches('example.com', { limit: 1000 })).items.length, 101);
    } finally {
      await store.close();
      await other.close();
    }
  });

  it('keeps the newest FETCH_LOG_KEEP entries, deleting at most twice the batch per flush', async () => {
    const dir = freshDir();
    const store = await openSqliteStore(dir);
    const raw = new Database(join(dir, DATABASE_FILE));
    try {
      const insert = raw.prepare(
        'INSERT INTO fetches (at, domain, client_ip, user_agent) VALUES (?, ?, ?, ?)',
      );
      raw.transaction(() => {
        for (let i = 0; i < FETCH_LOG_KEEP + 10; i++)
          insert.run(fetch(0).at, 'old.example', '192.0.2.1', 'x');
      })();
      const count = () => raw.prepare('SELECT count(*) FROM fetches').pluck().get() as number;
      for (let i = 0; i < 3; i++) store.logFetch(fetch(i));
      await store.listFetches('example.com'); // flushes the batch of 3
      assert.equal(count(), FETCH_LOG_KEEP + 13 - 6, 'the flush of 3 deleted 6 of the oldest');
      for (let i = 0; i < 10; i++) store.logFetch(fetch(i));
      await store.listFetches('example.com');
      assert.equal(count(), FETCH_LOG_KEEP, 'back at the cap');
      assert.equal(
        (await store.listFetches('example.com', { limit: 100 })).items.length,
        13,
        'the newest entries survive',
      );
    } finally {
      raw.close();
      await store.close();
    }
  });

  it('entries are written within about a second without any other call', async () => {
    const dir = freshDir();
    const store = await openSqliteStore(dir);
    const other = await openSqliteStore(dir);
    try {
      store.logFetch(fetch(1));
      await untilFetchLogged(other);
    } finally {
      await store.close();
      await other.close();
    }
  });
});

describe('two connections on one database (the CLI while serve runs)', () => {
  it('each sees what the other committed', async () => {
    const dir = freshDir();
    const serve = await openSqliteStore(dir);
    const cli = await openSqliteStore(dir);
    try {
      await cli.addDomain('example.com', settings, T0);
      assert.equal((await serve.getDomain('example.com'))?.policyId, '20240501100000');
      await serve.updateDomain('example.com', { mode: 'enforce' }, T0);
      const viaCli = await cli.updateDomain('example.com', { maxAge: 86400 }, T0);
      assert.equal(viaCli.policyId, '20240501100002'); // strictly after serve's change
      const saved = await serve.saveReport(
        newReport(report('x', '2024-05-01T00:00:00Z', [policy('example.com', 1, 0)])),
        T0,
      );
      assert.deepEqual(await cli.saveReport(newReport(report('x', '2024-05-01T00:00:00Z', [])), T0), {
        id: saved.id,
        created: false,
      });
      assert.equal((await cli.listReports({ domain: 'example.com' })).items[0]?.id, saved.id);
    } finally {
      await serve.close();
      await cli.close();
    }
  });

  it('a reader is not blocked while another connection holds a write transaction (WAL)', async () => {
    const dir = freshDir();
    const store = await openSqliteStore(dir);
    await store.addDomain('example.com', settings, T0);
    const writer = new Database(join(dir, DATABASE_FILE));
    try {
      writer.exec('BEGIN IMMEDIATE');
      writer.prepare("UPDATE domains SET mode = 'enforce'").run();
      assert.equal((await store.getDomain('example.com'))?.mode, 'testing');
      writer.exec('COMMIT');
      assert.equal((await store.getDomain('example.com'))?.mode, 'enforce');
    } finally {
      writer.close();
      await store.close();
    }
  });
});

// The power-loss promise (src/store/sqlite.ts header): a SIGKILL keeps the page cache, so the crash
// test cannot see a missing fsync; these read the mode in force on the store's own connections.
describe('durability: every store connection commits in WAL mode with synchronous=FULL', () => {
  const FULL = { journalMode: 'wal', synchronous: 'FULL' };

  it('a fresh store, the same file opened again, and a second connection beside the first', async () => {
    const dir = freshDir();
    const first = await openStore(dir);
    assert.deepEqual(await first.durability(), FULL, 'fresh file');
    const second = await openStore(dir);
    try {
      assert.deepEqual(await second.durability(), FULL, 'second connection while the first is open');
      assert.deepEqual(await first.durability(), FULL, 'the first, after the second opened');
    } finally {
      await first.close();
      await second.close();
    }
    const reopened = await openStore(dir);
    try {
      assert.deepEqual(await reopened.durability(), FULL, 'existing file opened again');
    } finally {
      await reopened.close();
    }
  });

  it('FULL is back in force after each kind of fetch-log flush (those commits use NORMAL)', async () => {
    const dir = freshDir();
    const store = await openStore(dir);
    const other = await openStore(dir);
    try {
      for (let i = 0; i < 100; i++) store.logFetch(fetch(i, 'batch.example'));
      assert.equal((await other.listFetches('batch.example', { limit: 1000 })).items.length, 100);
      assert.deepEqual(await store.durability(), FULL, 'after a full batch');
      store.logFetch(fetch(1));
      await untilFetchLogged(other);
      assert.deepEqual(await store.durability(), FULL, 'after the timer flush');
      store.logFetch(fetch(2));
      await store.listFetches('example.com');
      assert.deepEqual(await store.durability(), FULL, 'after the flush before a list');
      await store.addDomain('example.com', settings, T0);
      assert.deepEqual(await store.durability(), FULL, 'after an ordinary write');
    } finally {
      await store.close();
      await other.close();
    }
  });

  it('serve and the CLI open the store only through openStore (nothing else opens mxguard.sqlite)', () => {
    const files = readdirSync('src', { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => join('src', f));
    const using = (pattern: RegExp) => files.filter((f) => pattern.test(readFileSync(f, 'utf8'))).sort();
    // better-sqlite3 is opened by the store, by `store copy` (a table-by-table copy of a whole file,
    // src/store/copy-sqlite.ts) and by policyd's own cache file, nowhere else.
    assert.deepEqual(using(/new Database\(/), [
      'src/policyd/sqlite.ts',
      'src/store/copy-sqlite.ts',
      'src/store/sqlite.ts',
    ]);
    assert.deepEqual(using(/\bopenSqliteStore\(/), ['src/store/index.ts', 'src/store/sqlite.ts']);
    assert.deepEqual(using(/\bopenPostgresStore\(/), ['src/store/index.ts', 'src/store/postgres.ts']);
    // serve, and every CLI command through its shared store options.
    for (const caller of ['src/server/start.ts', 'src/cli/store-options.ts'])
      assert.match(readFileSync(caller, 'utf8'), /\bopenStore\(/, caller);
  });
});
