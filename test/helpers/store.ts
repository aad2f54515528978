// Helpers of the store tests (test/store/): the typed refusal a store call must end in, and a second
// connection to a store's file, as another process would open it.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DATABASE_FILE } from '../../src/store/sqlite.js';
import { StoreError } from '../../src/store/types.js';

/** `promise` rejects with a StoreError of `code` (and a message matching `message`, when given). */
export async function rejectsWithStoreError(
  promise: Promise<unknown>,
  code: StoreError['code'],
  message?: RegExp,
): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected StoreError, got ${err}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

/** Runs `use` on the store's file in `dataDir` through a second connection, closed afterwards. */
export function secondConnection<T>(dataDir: string, use: (db: Database.Database) => T): T {
  const db = new Database(join(dataDir, DATABASE_FILE), { timeout: 10_000 });
  try {
    return use(db);
  } finally {
    db.close();
  }
}
