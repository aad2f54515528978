// What `mxguard store copy` (src/store/copy.ts) copies, table by table, and the shape of the two sides it
// copies between (a SQLite file: copy-sqlite.ts; a PostgreSQL database: copy-postgres.ts).
//
// Both schemas have the same tables and columns, step by step (migrations.ts, postgres-migrations.ts).
// Where they differ, a side converts on its own so rows cross in one neutral form (SQLite's values):
// - domains.watch_only is INTEGER 0/1 in SQLite, BOOLEAN in PostgreSQL (read back as 0/1);
// - findings.hash is a BLOB / BYTEA (a Buffer on both sides);
// - integers are INTEGER / BIGINT (read as numbers: every value the stores write is a safe integer);
// - ids are rowid aliases / identity columns: copied as they are, PostgreSQL's sequences set past them;
// - PostgreSQL text holds no NUL: postgres.ts escapes it (pgText), so a PostgreSQL side escapes and
//   unescapes exactly as the store does;
// - the schema version is PRAGMA user_version / the table mxguard_schema.
import { DOMAINS_VERSION_SETTING, LOCK_SETTING_PREFIX } from './sqlite-cluster.js';
import { StoreError } from './types.js';

/** A table copied, in an order that puts every parent before its children (foreign keys). */
export interface CopiedTable {
  name: string;
  /** The primary key: one column in every copied table; rows are read in its order. */
  key: string;
  /** The migration step that created the table (a side of an older schema does not have it). */
  since: number;
  /** A column that may hold megabytes (a whole report): batches are cut by its size too. */
  big?: string;
  /** Rows whose key starts with one of these are not copied (state of the running processes). */
  skipKeyPrefixes?: readonly string[];
}

export const COPIED_TABLES: readonly CopiedTable[] = [
  // The change counter and lock leases of sqlite-cluster.ts belong to the processes on the source.
  { name: 'settings', key: 'key', since: 1, skipKeyPrefixes: [DOMAINS_VERSION_SETTING, LOCK_SETTING_PREFIX] },
  { name: 'domains', key: 'name', since: 1 },
  { name: 'policy_versions', key: 'id', since: 1 },
  { name: 'retired_policy_ids', key: 'domain', since: 1 },
  { name: 'reports', key: 'id', since: 1, big: 'report_json' },
  { name: 'report_policies', key: 'id', since: 1 },
  { name: 'failures', key: 'id', since: 1 },
  { name: 'rejected', key: 'id', since: 1 },
  { name: 'fetches', key: 'id', since: 1 },
  { name: 'api_tokens', key: 'id', since: 2 },
  { name: 'findings', key: 'id', since: 4 },
  { name: 'check_runs', key: 'id', since: 4 },
  { name: 'alerts', key: 'id', since: 4 },
  { name: 'deliveries', key: 'id', since: 4 },
  { name: 'dmarc_reports', key: 'id', since: 5, big: 'report_json' },
  { name: 'dmarc_rows', key: 'id', since: 5 },
  { name: 'ptr_names', key: 'ip', since: 5 },
];

/** Tables of the schema deliberately left behind, and why (--help and the JSON summary say so). */
export const NOT_COPIED: Readonly<Record<string, string>> = {
  sessions: 'dashboard sessions; everyone logs in again',
  auth_attempts: 'the login throttle, which starts empty',
  check_jobs: 'the bulk-check queue of check --enqueue; enqueue the list again on the new database',
};

/** A value as it crosses between the sides (SQLite's types). */
export type CellValue = string | number | Buffer | null;
export type CopyRow = CellValue[];
export type RowKey = string | number;

/** One side of a copy. Rows are arrays of values in the order of `columns(table)`. */
export interface CopySide {
  /** The database, for messages (a path, or a URL without its password). */
  readonly where: string;
  /** How many migration steps the database has (0 = not an mxguard database). */
  schemaVersion(): Promise<number>;
  /** Column names of a table in schema order; empty when the table does not exist. */
  columns(table: string): Promise<string[]>;
  close(): Promise<void>;
}

export interface CopySource extends CopySide {
  /** Read everything from one consistent snapshot from now on (until close). */
  beginSnapshot(): Promise<void>;
  count(table: CopiedTable): Promise<number>;
  /** Up to `limit` rows with a key above `after`, in key order, stopping early past `maxBytes` of `big`. */
  readRows(
    table: CopiedTable,
    columns: string[],
    after: RowKey | undefined,
    limit: number,
    maxBytes: number,
  ): Promise<CopyRow[]>;
  /** Up to `limit` keys above `after`, in key order. */
  readKeys(table: CopiedTable, after: RowKey | undefined, limit: number): Promise<RowKey[]>;
  /** True when `target` is this same database (seen from this side's connection). */
  isSameDatabase(target: CopyTarget): Promise<boolean>;
}

export interface CopyTarget extends CopySide {
  /**
   * Insert the rows that are not there (by any unique key), in one transaction, then call `check` with
   * the rows that were not inserted and what the target holds under their keys; `check` throwing rolls the
   * batch back. Returns how many rows were inserted.
   */
  insertRows(
    table: CopiedTable,
    columns: string[],
    rows: CopyRow[],
    check: (skipped: CopyRow[], existing: Map<RowKey, CopyRow>) => void,
  ): Promise<number>;
  /** How many of `keys` the table holds. */
  countPresent(table: CopiedTable, keys: RowKey[]): Promise<number>;
  /**
   * After the rows: new rows get ids above the copied ones (PostgreSQL's sequences); when domains or
   * policies were added, serve instances already running on the target are told (as a domain write does).
   */
  finish(tables: readonly CopiedTable[], domainsChanged: boolean): Promise<void>;
  /** A marker the source can look for to tell whether both are one database (PostgreSQL). */
  sameDatabaseMarker(): { file?: string; advisoryLock?: [number, number] };
}

/** A copy refused or failed, with what to do about it. */
export class StoreCopyError extends Error {
  constructor(
    readonly code: /** --from or --to cannot be used (missing file, not an mxguard database, unreachable). */
      | 'COPY_LOCATION'
      /** --from and --to are one database. */
      | 'COPY_SAME_DATABASE'
      /** The two schemas differ (versions or columns). */
      | 'COPY_SCHEMA_MISMATCH'
      /** The target holds a different row under a key of the source. */
      | 'COPY_CONFLICT',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StoreCopyError';
  }
}

/** A database failure while copying, naming the database (a StoreError passes through). */
export function copyIoError(where: string, err: unknown): Error {
  if (err instanceof StoreCopyError || err instanceof StoreError) return err;
  return new StoreError('STORE_IO', `${where}: ${(err as Error).message}`, { cause: err });
}

/** SQL (both dialects) keeping the rows of `table` that are copied: '' or 'WHERE ...'. */
export function copiedRowsWhere(table: CopiedTable, keyAbove: string | undefined): string {
  const key = identifier(table.key);
  const conditions = (table.skipKeyPrefixes ?? []).map(
    (prefix) => `substr(${key}, 1, ${prefix.length}) <> '${prefix.replace(/'/g, "''")}'`,
  );
  if (keyAbove !== undefined) conditions.push(`${key} > ${keyAbove}`);
  return conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
}

/** Column and table names go into SQL text: only plain lower-case identifiers are accepted. */
export function identifier(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain SQL identifier: ${name}`);
  return name;
}
