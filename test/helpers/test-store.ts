// The store the serve tests run on (testContext in test/fixtures/serve/helpers.ts, openTestApp in
// test/helpers/browser.ts): SQLite in the test's data directory, or, with MXGUARD_TEST_STORE=postgres
// (`npm run test:postgres`), a fresh database per context on ONE lab PostgreSQL of this test process
// (test/lab/postgres.ts), started on first use and stopped by its PID after the file's last test.
// Tests that assert SQLite specifics (its file, WAL, a second connection) are not in the PostgreSQL pass.
import { after } from 'node:test';
import { openStore, type Store } from '../../src/store/index.js';
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

/** A fresh, empty store for one test context; `dataDir` holds it on SQLite (and certificates etc. on both). */
export async function openTestStore(dataDir: string): Promise<Store> {
  if (TEST_STORE === 'sqlite') return openStore(dataDir);
  return openStore(dataDir, { database: await testDatabaseUrl() });
}
