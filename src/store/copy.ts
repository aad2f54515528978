// `mxguard store copy`: moves an installation between databases (SQLite -> PostgreSQL, and back), table by
// table with ids, times and history as they were, rather than through the Store's methods (which would
// give new ids and times). The tables and the differences of the two schemas: copy-tables.ts.
//
// - The target is created or migrated first, as the store does when it opens it; the two schema versions
//   and each table's columns must then be equal (an older source is upgraded by opening it once with
//   this mxguard).
// - The source is read from one snapshot, in key order, in batches bounded in rows and bytes (a large
//   database is never held in memory); each batch is written in one transaction with ON CONFLICT DO
//   NOTHING, so a second run adds only what is new. A row the target already holds must be equal to the
//   source's: a different row under the same key (or under another unique key) stops the copy
//   (COPY_CONFLICT, naming the table and the key), that batch rolled back.
// - At the end, every key of the source is looked up in the target again: the count check.
import { existsSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PostgresCopySource, PostgresCopyTarget } from './copy-postgres.js';
import { SqliteCopySource, SqliteCopyTarget } from './copy-sqlite.js';
import {
  COPIED_TABLES,
  type CopiedTable,
  type CopyRow,
  type CopySource,
  type CopyTarget,
  NOT_COPIED,
  type RowKey,
  StoreCopyError,
} from './copy-tables.js';
import { describeDatabase, isPostgresUrl } from './database-url.js';
import { databaseProblem } from './index.js';
import { DATABASE_FILE } from './sqlite.js';

export { NOT_COPIED, StoreCopyError } from './copy-tables.js';

/** Rows per batch, and bytes of whole reports per batch (the batch ends at whichever comes first). */
export const COPY_BATCH_ROWS = 1000;
export const COPY_BATCH_BYTES = 4 * 1024 * 1024;
/** Keys looked up per query of the count check. */
const CHECK_BATCH_KEYS = 5000;

/** Where a side is: a PostgreSQL URL, or a SQLite file. */
export type CopyLocation = { kind: 'postgres'; url: string } | { kind: 'sqlite'; file: string };

/**
 * --from / --to as given: a postgres:// URL; a directory (a data directory: its mxguard.sqlite); a file
 * that exists, or a new path ending in .sqlite, .sqlite3 or .db (a SQLite file); any other new path is a
 * data directory to create.
 */
export function copyLocation(text: string, option: string): CopyLocation {
  const problem = databaseProblem(text);
  if (problem !== undefined) throw new StoreCopyError('COPY_LOCATION', `${option}: ${problem}`);
  if (isPostgresUrl(text)) return { kind: 'postgres', url: text };
  const isDirectory = existsSync(text) ? statSync(text).isDirectory() : !/\.(sqlite3?|db)$/i.test(text);
  return { kind: 'sqlite', file: isDirectory ? join(text, DATABASE_FILE) : text };
}

export function describeLocation(location: CopyLocation): string {
  return location.kind === 'postgres' ? describeDatabase(location.url) : location.file;
}

export interface TableCopy {
  table: string;
  /** Rows of the source when the copy began (its snapshot). */
  source: number;
  /** Rows this run added to the target. */
  inserted: number;
  /** Rows the target held already, equal to the source's. */
  alreadyPresent: number;
  /** The count check: keys of the source looked up again, and how many the target holds. */
  checked: number;
  present: number;
  ok: boolean;
}

export interface CopySummary {
  from: string;
  to: string;
  schemaVersion: number;
  tables: TableCopy[];
  notCopied: Array<{ table: string; reason: string }>;
  /** Every table passed the count check. */
  ok: boolean;
}

export interface CopyProgress {
  table: string;
  done: number;
  total: number;
  phase: 'copy' | 'check';
}

export interface CopyOptions {
  onProgress?: (progress: CopyProgress) => void;
  batchRows?: number;
  batchBytes?: number;
}

export async function copyStore(
  from: CopyLocation,
  to: CopyLocation,
  options: CopyOptions = {},
): Promise<CopySummary> {
  refuseSameDatabase(from, to);
  const source = await openSource(from);
  try {
    const version = await source.schemaVersion();
    if (version === 0) {
      throw new StoreCopyError(
        'COPY_LOCATION',
        `${source.where}: not an mxguard database (no schema version)`,
      );
    }
    const target = await openTarget(to);
    try {
      if (await source.isSameDatabase(target)) {
        throw new StoreCopyError(
          'COPY_SAME_DATABASE',
          `${source.where} and ${target.where} are the same database`,
        );
      }
      const targetVersion = await target.schemaVersion();
      if (targetVersion !== version)
        throw versionMismatch(source.where, version, target.where, targetVersion);
      await source.beginSnapshot();
      const tables = COPIED_TABLES.filter((t) => t.since <= version);
      const results: TableCopy[] = [];
      for (const table of tables) results.push(await copyTable(source, target, table, options));
      const domainTables = new Set(['domains', 'policy_versions', 'retired_policy_ids']);
      await target.finish(
        tables,
        results.some((r) => domainTables.has(r.table) && r.inserted > 0),
      );
      for (const [i, table] of tables.entries())
        await countCheck(source, target, table, results[i]!, options);
      return {
        from: source.where,
        to: target.where,
        schemaVersion: version,
        tables: results,
        notCopied: Object.entries(NOT_COPIED).map(([table, reason]) => ({ table, reason })),
        ok: results.every((r) => r.ok),
      };
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}

/**
 * Two paths naming one SQLite file, or one URL given twice, are refused before the target is opened
 * (which would migrate it); other names of one PostgreSQL database are found once both are open.
 */
function refuseSameDatabase(from: CopyLocation, to: CopyLocation): void {
  if (from.kind === 'postgres' && to.kind === 'postgres' && from.url === to.url) {
    throw new StoreCopyError('COPY_SAME_DATABASE', `--from and --to are both ${describeDatabase(from.url)}`);
  }
  if (from.kind !== 'sqlite' || to.kind !== 'sqlite' || !existsSync(from.file) || !existsSync(to.file))
    return;
  if (realpathSync(from.file) === realpathSync(to.file)) {
    throw new StoreCopyError('COPY_SAME_DATABASE', `${from.file} and ${to.file} are the same database`);
  }
}

function openSource(location: CopyLocation): Promise<CopySource> {
  return location.kind === 'postgres'
    ? PostgresCopySource.open(location.url)
    : Promise.resolve(SqliteCopySource.open(location.file));
}

function openTarget(location: CopyLocation): Promise<CopyTarget> {
  return location.kind === 'postgres'
    ? PostgresCopyTarget.open(location.url)
    : Promise.resolve(SqliteCopyTarget.open(location.file));
}

function versionMismatch(from: string, version: number, to: string, targetVersion: number): StoreCopyError {
  const what =
    version < targetVersion
      ? `open ${from} once with this mxguard (any command that reads it, e.g. \`mxguard domain list\`) to upgrade it, then copy`
      : `this mxguard brings ${to} only to version ${targetVersion}: upgrade mxguard`;
  return new StoreCopyError(
    'COPY_SCHEMA_MISMATCH',
    `${from} has schema version ${version}, ${to} has ${targetVersion}: ${what}`,
  );
}

/** The source's columns of `table`, after checking that the target has the same ones. */
async function sharedColumns(source: CopySource, target: CopyTarget, table: CopiedTable): Promise<string[]> {
  const columns = await source.columns(table.name);
  const targetColumns = await target.columns(table.name);
  const missing = columns.filter((c) => !targetColumns.includes(c));
  const extra = targetColumns.filter((c) => !columns.includes(c));
  if (columns.length === 0 || missing.length > 0 || extra.length > 0) {
    const differences = [
      columns.length === 0 ? `${source.where} has no such table` : '',
      targetColumns.length === 0 ? `${target.where} has no such table` : '',
      missing.length > 0 && targetColumns.length > 0 ? `only ${source.where} has ${missing.join(', ')}` : '',
      extra.length > 0 && columns.length > 0 ? `only ${target.where} has ${extra.join(', ')}` : '',
    ].filter((d) => d !== '');
    throw new StoreCopyError('COPY_SCHEMA_MISMATCH', `table ${table.name}: ${differences.join('; ')}`);
  }
  return columns;
}

async function copyTable(
  source: CopySource,
  target: CopyTarget,
  table: CopiedTable,
  options: CopyOptions,
): Promise<TableCopy> {
  const columns = await sharedColumns(source, target, table);
  const keyIndex = columns.indexOf(table.key);
  const total = await source.count(table);
  const result: TableCopy = {
    table: table.name,
    source: total,
    inserted: 0,
    alreadyPresent: 0,
    checked: 0,
    present: 0,
    ok: false,
  };
  const report = (done: number) => options.onProgress?.({ table: table.name, done, total, phase: 'copy' });
  report(0);
  let after: RowKey | undefined;
  for (;;) {
    const rows = await source.readRows(
      table,
      columns,
      after,
      options.batchRows ?? COPY_BATCH_ROWS,
      options.batchBytes ?? COPY_BATCH_BYTES,
    );
    if (rows.length === 0) break;
    const inserted = await target.insertRows(table, columns, rows, (skipped, existing) =>
      refuseDifferent(table, columns, skipped, existing, target.where),
    );
    result.inserted += inserted;
    result.alreadyPresent += rows.length - inserted;
    after = rows[rows.length - 1]![keyIndex] as RowKey;
    report(result.inserted + result.alreadyPresent);
  }
  return result;
}

/** Rows not inserted must be in the target as they are in the source. */
function refuseDifferent(
  table: CopiedTable,
  columns: string[],
  skipped: CopyRow[],
  existing: Map<RowKey, CopyRow>,
  where: string,
): void {
  const keyIndex = columns.indexOf(table.key);
  for (const row of skipped) {
    const key = row[keyIndex] as RowKey;
    const there = existing.get(key);
    const name = `table ${table.name}: the row ${table.key}=${JSON.stringify(key)}`;
    const advice = `${where} holds other data: copy into an empty database (or drop the one holding other data)`;
    if (there === undefined) {
      throw new StoreCopyError(
        'COPY_CONFLICT',
        `${name} collides with a different row of the target on another unique column; ${advice}`,
      );
    }
    const differing = columns.filter((_, i) => !sameValue(row[i]!, there[i]!));
    if (differing.length > 0) {
      throw new StoreCopyError(
        'COPY_CONFLICT',
        `${name} differs in the target (${differing.join(', ')}); ${advice}`,
      );
    }
  }
}

function sameValue(a: CopyRow[number], b: CopyRow[number]): boolean {
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  return a === b;
}

/** Every key of the source looked up in the target: the copy is complete when all are there. */
async function countCheck(
  source: CopySource,
  target: CopyTarget,
  table: CopiedTable,
  result: TableCopy,
  options: CopyOptions,
): Promise<void> {
  let after: RowKey | undefined;
  for (;;) {
    const keys = await source.readKeys(table, after, CHECK_BATCH_KEYS);
    if (keys.length === 0) break;
    result.checked += keys.length;
    result.present += await target.countPresent(table, keys);
    after = keys[keys.length - 1];
    options.onProgress?.({ table: table.name, done: result.checked, total: result.source, phase: 'check' });
  }
  result.ok = result.checked === result.source && result.present === result.checked;
}
