// A SQLite file as one side of `mxguard store copy` (src/store/copy.ts): the source is opened read-only
// and read from one snapshot (a read transaction held for the whole copy); the target is created and
// migrated as the store would (WAL, migrations.ts) and written in one transaction per batch.
import { existsSync, mkdirSync, realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  type CopiedTable,
  type CopyRow,
  type CopySource,
  type CopyTarget,
  copiedRowsWhere,
  copyIoError,
  identifier,
  type RowKey,
  StoreCopyError,
} from './copy-tables.js';
import { migrate } from './migrations.js';
import { bumpDomainsVersion } from './sqlite-cluster.js';
import { StoreError } from './types.js';

const BUSY_TIMEOUT_MS = 10_000;

abstract class SqliteSide {
  constructor(
    protected readonly db: Database.Database,
    readonly where: string,
  ) {}

  protected run<T>(work: () => T): T {
    try {
      return work();
    } catch (err) {
      throw copyIoError(this.where, err);
    }
  }

  async schemaVersion(): Promise<number> {
    return this.run(() => this.db.pragma('user_version', { simple: true }) as number);
  }

  async columns(table: string): Promise<string[]> {
    return this.run(() =>
      (this.db.prepare(`PRAGMA table_info(${identifier(table)})`).all() as { name: string }[]).map(
        (c) => c.name,
      ),
    );
  }

  /** The file itself (symbolic links resolved), to tell whether two paths are one database. */
  file(): string {
    return realpathSync(this.db.name);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

export class SqliteCopySource extends SqliteSide implements CopySource {
  /** Opens `path` read-only; nothing is created or changed. */
  static open(path: string): SqliteCopySource {
    if (!existsSync(path)) throw new StoreCopyError('COPY_LOCATION', `${path}: no such database file`);
    try {
      const db = new Database(path, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
      return new SqliteCopySource(db, path);
    } catch (err) {
      throw new StoreCopyError('COPY_LOCATION', `${path}: cannot open: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  async beginSnapshot(): Promise<void> {
    // A read transaction sees one snapshot of the WAL until it ends (the first read starts it).
    this.run(() => {
      this.db.exec('BEGIN');
      this.db.prepare('SELECT count(*) FROM sqlite_master').get();
    });
  }

  async count(table: CopiedTable): Promise<number> {
    const sql = `SELECT count(*) FROM ${identifier(table.name)} ${copiedRowsWhere(table, undefined)}`;
    return this.run(() => this.db.prepare(sql).pluck().get() as number);
  }

  async readRows(
    table: CopiedTable,
    columns: string[],
    after: RowKey | undefined,
    limit: number,
    maxBytes: number,
  ): Promise<CopyRow[]> {
    const where = copiedRowsWhere(table, after === undefined ? undefined : '?');
    const sql = `SELECT ${columns.map(identifier).join(', ')} FROM ${identifier(table.name)} ${where} ORDER BY ${identifier(table.key)} LIMIT ?`;
    const params = after === undefined ? [limit] : [after, limit];
    const bigIndex = table.big === undefined ? -1 : columns.indexOf(table.big);
    return this.run(() => {
      const rows: CopyRow[] = [];
      let bytes = 0;
      // Rows are taken one by one, so a batch of whole reports stops at maxBytes (at least one row).
      for (const row of this.db
        .prepare(sql)
        .raw()
        .iterate(...params) as IterableIterator<CopyRow>) {
        rows.push(row);
        const big = bigIndex < 0 ? undefined : row[bigIndex];
        bytes += typeof big === 'string' ? big.length : 0;
        if (bytes >= maxBytes) break;
      }
      return rows;
    });
  }

  async readKeys(table: CopiedTable, after: RowKey | undefined, limit: number): Promise<RowKey[]> {
    const key = identifier(table.key);
    const where = copiedRowsWhere(table, after === undefined ? undefined : '?');
    const sql = `SELECT ${key} FROM ${identifier(table.name)} ${where} ORDER BY ${key} LIMIT ?`;
    return this.run(
      () =>
        this.db
          .prepare(sql)
          .pluck()
          .all(...(after === undefined ? [limit] : [after, limit])) as RowKey[],
    );
  }

  async isSameDatabase(target: CopyTarget): Promise<boolean> {
    const file = target.sameDatabaseMarker().file;
    return file !== undefined && file === this.file();
  }
}

export class SqliteCopyTarget extends SqliteSide implements CopyTarget {
  /** Opens (creating when missing) the file at `path` and brings its schema up to date, as the store does. */
  static open(path: string): SqliteCopyTarget {
    let db: Database.Database | undefined;
    try {
      mkdirSync(dirname(path), { recursive: true });
      db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      migrate(db);
      return new SqliteCopyTarget(db, path);
    } catch (err) {
      db?.close();
      if (err instanceof StoreError) throw err;
      throw new StoreCopyError('COPY_LOCATION', `${path}: cannot open: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  async insertRows(
    table: CopiedTable,
    columns: string[],
    rows: CopyRow[],
    check: (skipped: CopyRow[], existing: Map<RowKey, CopyRow>) => void,
  ): Promise<number> {
    const name = identifier(table.name);
    const key = identifier(table.key);
    const keyIndex = columns.indexOf(table.key);
    const insert = this.db.prepare(
      `INSERT INTO ${name} (${columns.map(identifier).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})
       ON CONFLICT DO NOTHING RETURNING ${key}`,
    );
    const existing = this.db
      .prepare(
        `SELECT ${columns.map(identifier).join(', ')} FROM ${name} WHERE ${key} IN (SELECT value FROM json_each(?))`,
      )
      .raw();
    const batch = this.db.transaction(() => {
      const skipped = rows.filter((row) => insert.get(...row) === undefined);
      if (skipped.length > 0) {
        const there = existing.all(JSON.stringify(skipped.map((row) => row[keyIndex]))) as CopyRow[];
        check(skipped, new Map(there.map((row) => [row[keyIndex] as RowKey, row])));
      }
      return rows.length - skipped.length;
    });
    return this.run(() => batch.immediate());
  }

  async countPresent(table: CopiedTable, keys: RowKey[]): Promise<number> {
    const sql = `SELECT count(*) FROM ${identifier(table.name)} WHERE ${identifier(table.key)} IN (SELECT value FROM json_each(?))`;
    return this.run(() => this.db.prepare(sql).pluck().get(JSON.stringify(keys)) as number);
  }

  /** Integer primary keys continue after the largest id by themselves; running serves hear of new domains. */
  async finish(_tables: readonly CopiedTable[], domainsChanged: boolean): Promise<void> {
    if (domainsChanged) this.run(() => bumpDomainsVersion(this.db));
  }

  sameDatabaseMarker(): { file: string } {
    return { file: this.file() };
  }
}
