// The store `mxguard serve` and the state-keeping CLI commands use: SQLite in the data directory.
// A PostgreSQL store would be chosen here (by config) without touching any caller.
// The one place that decides whether opening may create a new, empty store.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DATABASE_FILE, openSqliteStore } from './sqlite.js';
import { type Store, StoreError } from './types.js';

export type * from './types.js';
export { StoreError } from './types.js';

/** Where every command keeps its data when --data-dir is not given (relative to the working directory). */
export const DEFAULT_DATA_DIR = './data';

export interface OpenStoreOptions {
  /**
   * Refuse (StoreError STORE_MISSING, nothing created on disk) when `dataDir` holds no database,
   * instead of creating the folder and an empty store: a mistyped --data-dir must not look empty.
   */
  mustExist?: boolean;
}

/** Open the default store in `dataDir`: `<dataDir>/mxguard.sqlite` (created when missing, unless mustExist). */
export async function openStore(dataDir: string, options: OpenStoreOptions = {}): Promise<Store> {
  if (options.mustExist === true && !existsSync(join(dataDir, DATABASE_FILE))) {
    throw new StoreError('STORE_MISSING', `${dataDir}: no mxguard database here (${DATABASE_FILE})`);
  }
  return openSqliteStore(dataDir);
}
