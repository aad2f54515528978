// A PostgreSQL database as one side of `mxguard store copy` (src/store/copy.ts), on one connection: the
// source reads from one REPEATABLE READ, READ ONLY snapshot; the target is migrated as the store would
// (postgres-migrations.ts), written in one transaction per batch (multi-row INSERT ... ON CONFLICT DO
// NOTHING RETURNING), and its identity sequences are set past the copied ids at the end.
// Text crosses as the store keeps it: pgText on the way in, fromPgText on the way out (NUL escaping).
import { randomInt } from 'node:crypto';
import pg from 'pg';
import {
  type CellValue,
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
import { describeDatabase } from './database-url.js';
import { notifyDomainsChanged } from './postgres-cluster.js';
import { migratePostgres } from './postgres-migrations.js';
import { fromPgText, pgText } from './postgres-sql.js';

/** pg's type id of BIGINT: read as a number (every value the store writes is a safe integer). */
const INT8_OID = 20;
/** Parameters in one statement stay well under PostgreSQL's 65535. */
const MAX_PARAMETERS = 30_000;
/** First half of the two-key advisory lock a target holds so the source can recognise it ("mxg" 0x20). */
const SAME_DATABASE_LOCK = 0x6d786720;

/** A value as PostgreSQL returns it, in the neutral form (booleans as 0/1, text unescaped). */
function fromPg(value: unknown): CellValue {
  if (typeof value === 'string') return fromPgText(value);
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value as CellValue;
}

/** A neutral value as a parameter (0/1 is accepted by a BOOLEAN column as it is). */
function toPg(value: CellValue): unknown {
  return typeof value === 'string' ? pgText(value) : value;
}

abstract class PostgresSide {
  private readonly types = new Map<string, Map<string, string>>();

  constructor(
    protected readonly client: pg.Client,
    readonly where: string,
  ) {}

  protected static async connect(url: string): Promise<{ client: pg.Client; where: string }> {
    const where = describeDatabase(url);
    const client = new pg.Client({
      connectionString: url,
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as never,
      },
    });
    client.on('error', () => {}); // a lost connection fails the next query, which names it
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => {});
      throw new StoreCopyError('COPY_LOCATION', `${where}: cannot connect: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return { client, where };
  }

  protected async run<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw copyIoError(this.where, err);
    }
  }

  protected async query(sql: string, params: unknown[] = []): Promise<unknown[][]> {
    try {
      return (await this.client.query({ text: sql, values: params, rowMode: 'array' })).rows as unknown[][];
    } catch (err) {
      throw copyIoError(this.where, err);
    }
  }

  async schemaVersion(): Promise<number> {
    const [exists] = await this.query(`SELECT to_regclass('mxguard_schema') IS NOT NULL`);
    if (exists?.[0] !== true) return 0;
    const [row] = await this.query('SELECT max(version) FROM mxguard_schema');
    return Number(row?.[0] ?? 0);
  }

  async columns(table: string): Promise<string[]> {
    return [...(await this.columnTypes(table)).keys()];
  }

  /** Column name -> data type, in schema order. */
  protected async columnTypes(table: string): Promise<Map<string, string>> {
    let types = this.types.get(table);
    if (types === undefined) {
      const rows = await this.query(
        `SELECT column_name, data_type FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`,
        [table],
      );
      types = new Map(rows.map(([name, type]) => [String(name), String(type)]));
      this.types.set(table, types);
    }
    return types;
  }

  /** `$n`, compared in byte order (COLLATE "C", as the store orders text) when the key is text. */
  protected async keyParameter(table: CopiedTable, n: number): Promise<string> {
    const type = (await this.columnTypes(table.name)).get(table.key);
    return type === 'text' ? `$${n} COLLATE "C"` : `$${n}`;
  }

  protected async orderByKey(table: CopiedTable): Promise<string> {
    const type = (await this.columnTypes(table.name)).get(table.key);
    return `${identifier(table.key)}${type === 'text' ? ' COLLATE "C"' : ''}`;
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => {});
  }
}

export class PostgresCopySource extends PostgresSide implements CopySource {
  static async open(url: string): Promise<PostgresCopySource> {
    const { client, where } = await PostgresSide.connect(url);
    return new PostgresCopySource(client, where);
  }

  async beginSnapshot(): Promise<void> {
    await this.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  }

  async count(table: CopiedTable): Promise<number> {
    const [row] = await this.query(
      `SELECT count(*) FROM ${identifier(table.name)} ${copiedRowsWhere(table, undefined)}`,
    );
    return Number(row?.[0]);
  }

  async readRows(
    table: CopiedTable,
    columns: string[],
    after: RowKey | undefined,
    limit: number,
    maxBytes: number,
  ): Promise<CopyRow[]> {
    const params: unknown[] = [];
    if (after !== undefined) params.push(toPg(after));
    const keyAbove = after === undefined ? undefined : await this.keyParameter(table, 1);
    let take = limit;
    if (table.big !== undefined) {
      // Sizes first, so a batch of whole reports stops at maxBytes (at least one row).
      const sizes = await this.query(
        `SELECT octet_length(${identifier(table.big)}) FROM ${identifier(table.name)}
         ${copiedRowsWhere(table, keyAbove)} ORDER BY ${await this.orderByKey(table)} LIMIT ${limit}`,
        params,
      );
      let bytes = 0;
      take = 0;
      while (take < sizes.length && bytes < maxBytes) bytes += Number(sizes[take++]![0]);
      take = Math.max(take, 1);
    }
    const rows = await this.query(
      `SELECT ${columns.map(identifier).join(', ')} FROM ${identifier(table.name)}
       ${copiedRowsWhere(table, keyAbove)} ORDER BY ${await this.orderByKey(table)} LIMIT ${take}`,
      params,
    );
    return rows.map((row) => row.map(fromPg));
  }

  async readKeys(table: CopiedTable, after: RowKey | undefined, limit: number): Promise<RowKey[]> {
    const keyAbove = after === undefined ? undefined : await this.keyParameter(table, 1);
    const rows = await this.query(
      `SELECT ${identifier(table.key)} FROM ${identifier(table.name)} ${copiedRowsWhere(table, keyAbove)}
       ORDER BY ${await this.orderByKey(table)} LIMIT ${limit}`,
      after === undefined ? [] : [toPg(after)],
    );
    return rows.map((row) => fromPg(row[0]) as RowKey);
  }

  async isSameDatabase(target: CopyTarget): Promise<boolean> {
    const lock = target.sameDatabaseMarker().advisoryLock;
    if (lock === undefined) return false;
    // The target's session holds this lock; the lock table of the server lists it with its database.
    const [row] = await this.query(
      `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND granted
         AND classid = $1::bigint::oid AND objid = $2::bigint::oid
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))`,
      lock,
    );
    return row?.[0] === true;
  }
}

export class PostgresCopyTarget extends PostgresSide implements CopyTarget {
  private readonly lock: [number, number] = [SAME_DATABASE_LOCK, randomInt(1, 2 ** 31 - 1)];

  /** Connects and brings the schema up to date, as the store does when it opens the database. */
  static async open(url: string): Promise<PostgresCopyTarget> {
    const { client, where } = await PostgresSide.connect(url);
    const target = new PostgresCopyTarget(client, where);
    try {
      await migratePostgres(client, where);
      await target.query('SELECT pg_advisory_lock($1, $2)', target.lock);
      return target;
    } catch (err) {
      await target.close();
      throw copyIoError(where, err);
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
    const perStatement = Math.max(1, Math.floor(MAX_PARAMETERS / columns.length));
    await this.query('BEGIN');
    try {
      const inserted = new Set<RowKey>();
      for (let start = 0; start < rows.length; start += perStatement) {
        const part = rows.slice(start, start + perStatement);
        const values = part.map(
          (_, r) => `(${columns.map((_, c) => `$${r * columns.length + c + 1}`).join(', ')})`,
        );
        const returned = await this.query(
          `INSERT INTO ${name} (${columns.map(identifier).join(', ')}) VALUES ${values.join(', ')}
           ON CONFLICT DO NOTHING RETURNING ${key}`,
          part.flat().map(toPg),
        );
        for (const [k] of returned) inserted.add(fromPg(k) as RowKey);
      }
      const skipped = rows.filter((row) => !inserted.has(row[keyIndex] as RowKey));
      if (skipped.length > 0) {
        const there = await this.query(
          `SELECT ${columns.map(identifier).join(', ')} FROM ${name} WHERE ${key} = ANY($1)`,
          [skipped.map((row) => toPg(row[keyIndex]!))],
        );
        check(skipped, new Map(there.map((row) => [fromPg(row[keyIndex]) as RowKey, row.map(fromPg)])));
      }
      await this.query('COMMIT');
      return inserted.size;
    } catch (err) {
      await this.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }

  async countPresent(table: CopiedTable, keys: RowKey[]): Promise<number> {
    const [row] = await this.query(
      `SELECT count(*) FROM ${identifier(table.name)} WHERE ${identifier(table.key)} = ANY($1)`,
      [keys.map(toPg)],
    );
    return Number(row?.[0]);
  }

  async finish(tables: readonly CopiedTable[], domainsChanged: boolean): Promise<void> {
    // serve instances already running on the target reload their domains (postgres-cluster.ts).
    if (domainsChanged) await this.run(() => notifyDomainsChanged(this.client));
    for (const table of tables) {
      if ((await this.columnTypes(table.name)).get(table.key) !== 'bigint') continue;
      const name = identifier(table.name);
      // Only identity columns have a sequence; it is moved forward, never back.
      await this.query(
        `SELECT setval(s.seq::regclass, s.top) FROM (
           SELECT pg_get_serial_sequence($1, $2) AS seq, (SELECT max(${identifier(table.key)}) FROM ${name}) AS top
         ) s
         WHERE s.seq IS NOT NULL AND s.top IS NOT NULL
           AND s.top > coalesce(pg_sequence_last_value(s.seq::regclass), 0)`,
        [name, table.key],
      );
    }
  }

  sameDatabaseMarker(): { advisoryLock: [number, number] } {
    return { advisoryLock: this.lock };
  }
}
