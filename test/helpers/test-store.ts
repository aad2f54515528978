// The store the serve tests run on (testContext in test/fixtures/serve/helpers.ts, openTestApp in
// test/helpers/browser.ts): SQLite in the test's data directory, or, with MXGUARD_TEST_STORE=postgres
// (`npm run test:postgres`), a fresh database per context on ONE lab PostgreSQL of this test process
// (test/lab/postgres.ts), started on first use and stopped by its PID after the file's last test.
// Tests that assert SQLite specifics (its file, WAL, a second connection) are not in the PostgreSQL pass.
import { join } from 'node:path';
import { after } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { openStore, type Store } from '../../src/store/index.js';
import { DATABASE_FILE } from '../../src/store/sqlite.js';
import { type LabPostgres, startPostgres } from '../lab/postgres.js';

/** Which store: "sqlite" (default) or "postgres". */
export const TEST_STORE = testStoreKind(process.env.MXGUARD_TEST_STORE);

function testStoreKind(value: string | undefined): 'sqlite' | 'postgres' {
  if (value === undefined || value === '' || value === 'sqlite') return 'sqlite';
  if (value === 'postgres') return 'postgres';
  throw new Error(`MXGUARD_TEST_STORE="${value}": expected sqlite or postgres`);
}

let lab: Promise<LabPostgres> | undefined;
/** The server once it runs, for the synchronous exit handler. */
let running: LabPostgres | undefined;
let databases = 0;

if (TEST_STORE === 'postgres') {
  // Registered when this module loads, i.e. on the test file's root: runs after its last test.
  after(async () => {
    const started = await lab?.catch(() => undefined);
    lab = undefined;
    running = undefined;
    await started?.stop();
  });
  // A file that dies before its hooks run must not leave the server behind.
  process.on('exit', () => {
    if (running === undefined) return;
    try {
      process.kill(running.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  });
}

/** The database URL of a new, empty database on this process's lab server (started on first use). */
export async function testDatabaseUrl(): Promise<string> {
  lab ??= startPostgres().then((server) => {
    running = server;
    return server;
  });
  return (await lab).createDatabase(`mxguard_test_${++databases}`);
}

/** The PostgreSQL database of each test store, by its data directory. */
const databaseOf = new Map<string, string>();

/** A fresh, empty store for one test context; `dataDir` holds it on SQLite (and certificates etc. on both). */
export async function openTestStore(dataDir: string): Promise<Store> {
  if (TEST_STORE === 'sqlite') return openStore(dataDir);
  const database = await testDatabaseUrl();
  databaseOf.set(dataDir, database);
  return openStore(dataDir, { database });
}

/** The store that openTestStore(dataDir) made, opened again (e.g. after a command wrote to it). */
export async function reopenTestStore(dataDir: string): Promise<Store> {
  const database = testStoreDatabaseUrl(dataDir);
  return database === undefined ? openStore(dataDir) : openStore(dataDir, { database });
}

/** `--database URL` for a command on the test store of `dataDir` (none on SQLite: its --data-dir holds it). */
export function testStoreDatabaseArgs(dataDir: string): string[] {
  const database = testStoreDatabaseUrl(dataDir);
  return database === undefined ? [] : ['--database', database];
}

/** The database URL of the PostgreSQL test store of `dataDir`, or undefined on SQLite. */
export function testStoreDatabaseUrl(dataDir: string): string | undefined {
  if (TEST_STORE === 'sqlite') return undefined;
  const url = databaseOf.get(dataDir);
  if (url === undefined) throw new Error(`${dataDir}: no PostgreSQL test store was opened for it`);
  return url;
}

/** A second, read-only connection to a test store's database, for tests that look at its rows. */
export interface TestStoreReader {
  /** The rows of one query without parameters (the table and column names are the same in both schemas). */
  rows<Row = Record<string, unknown>>(sql: string): Promise<Row[]>;
  close(): Promise<void>;
}

/** Opens a read-only connection to the store that openTestStore(dataDir) made, SQLite or PostgreSQL. */
export async function openTestStoreReader(dataDir: string): Promise<TestStoreReader> {
  const url = testStoreDatabaseUrl(dataDir);
  if (url === undefined) {
    const db = new Database(join(dataDir, DATABASE_FILE), { readonly: true });
    return {
      rows: async <Row>(sql: string) => db.prepare(sql).all() as Row[],
      close: async () => {
        db.close();
      },
    };
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('SET default_transaction_read_only = on');
  } catch (error) {
    await client.end();
    throw error;
  }
  return {
    rows: async <Row>(sql: string) => (await client.query(sql)).rows as Row[],
    close: () => client.end(),
  };
}

/** The rows of one read-only query on a test store's database (a connection just for it). */
export async function queryTestStore<Row = Record<string, unknown>>(
  dataDir: string,
  sql: string,
): Promise<Row[]> {
  const reader = await openTestStoreReader(dataDir);
  try {
    return await reader.rows<Row>(sql);
  } finally {
    await reader.close();
  }
}
