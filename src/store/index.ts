// The store `mxguard serve` and the state-keeping CLI commands use: SQLite in the data directory.
// A PostgreSQL store would be chosen here (by config) without touching any caller.
import { openSqliteStore } from './sqlite.js';
import type { Store } from './types.js';

export type * from './types.js';
export { StoreError } from './types.js';

/** Open the default store in `dataDir` (created when missing): `<dataDir>/mxguard.sqlite`. */
export function openStore(dataDir: string): Promise<Store> {
  return openSqliteStore(dataDir);
}
