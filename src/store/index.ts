// The store `mxguard serve` and the state-keeping CLI commands use, chosen here without touching any
// caller: SQLite in the data directory (the default), a SQLite file named by `database`, or PostgreSQL
// (`database` = postgres://user:pass@host:port/db?sslmode=...). Which `database` wins (--database,
// MXGUARD_DATABASE_URL, the config file's `database`) is decided in chooseDatabase alone. The one place
// that decides whether opening may create a new, empty store.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';
import { describeDatabase, isPostgresUrl } from './database-url.js';
import { openPostgresStore } from './postgres.js';
import { storeFailure } from './postgres-sql.js';
import { DATABASE_FILE, openSqliteStore } from './sqlite.js';
import { type Store, StoreError, storeInvalid } from './types.js';

/** postgres:// or postgresql:// (store copy tells a URL from a path the same way). */
export { describeDatabase } from './database-url.js';
export type * from './types.js';
export { StoreError } from './types.js';

/** Where every command keeps its data when --data-dir is not given (relative to the working directory). */
export const DEFAULT_DATA_DIR = './data';

/** The environment variable naming the database, below --database and above the config file. */
export const DATABASE_ENV = 'MXGUARD_DATABASE_URL';

export interface OpenStoreOptions {
  /**
   * A postgres:// (or postgresql://) URL, or the path of a SQLite file; absent: `<dataDir>/mxguard.sqlite`.
   * chooseDatabase picks it from the option, the environment and the config file.
   */
  database?: string;
  /**
   * Refuse (StoreError STORE_MISSING, nothing created) when there is no mxguard database yet, instead
   * of creating an empty store: a mistyped --data-dir or database name must not look empty.
   */
  mustExist?: boolean;
  /**
   * The store is opened for a bulk import and nothing else runs on this thread (`reports import`): the
   * SQLite store commits waiting DMARC reports back to back instead of leaving the thread half its
   * time (sqlite-dmarc.ts). No effect on PostgreSQL.
   */
  bulk?: boolean;
}

/** Open the store: `database` when given, else `<dataDir>/mxguard.sqlite` (created when missing, unless mustExist). */
export async function openStore(dataDir: string, options: OpenStoreOptions = {}): Promise<Store> {
  const { database, mustExist = false, bulk = false } = options;
  if (database !== undefined) {
    const problem = databaseProblem(database);
    if (problem !== undefined) throw storeInvalid(`database: ${problem}`);
    if (isPostgresUrl(database)) return openPostgres(database, mustExist);
  }
  if (database === undefined) {
    if (mustExist && !existsSync(join(dataDir, DATABASE_FILE))) {
      throw new StoreError('STORE_MISSING', `${dataDir}: no mxguard database here (${DATABASE_FILE})`);
    }
    return openSqliteStore(dataDir, undefined, { bulk });
  }
  const file = resolve(database);
  if (mustExist && !existsSync(file)) {
    throw new StoreError('STORE_MISSING', `${database}: no mxguard database here (no such SQLite file)`);
  }
  return openSqliteStore(dirname(file), file, { bulk });
}

async function openPostgres(url: string, mustExist: boolean): Promise<Store> {
  if (mustExist && !(await holdsMxguardSchema(url))) {
    throw new StoreError(
      'STORE_MISSING',
      `${describeDatabase(url)}: no mxguard database here (no mxguard tables)`,
    );
  }
  return openPostgresStore(url);
}

/** How long the mustExist look waits for a connection (as the store's own pool does). */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Whether the database already holds the mxguard schema (its version table), looked at before
 * openPostgresStore would create every table in a mistyped database. Unreachable: STORE_UNAVAILABLE.
 */
async function holdsMxguardSchema(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ present: boolean }>(
      // mxguard_schema: the version table every migration run creates first (postgres-migrations.ts).
      `SELECT to_regclass('mxguard_schema') IS NOT NULL AS present`,
    );
    return rows[0]?.present === true;
  } catch (err) {
    // SQLSTATE 3D000 invalid_catalog_name: no database of that name on the server (a typo).
    if ((err as { code?: unknown }).code === '3D000') return false;
    throw storeFailure(err, describeDatabase(url), 'cannot open the database');
  } finally {
    await client.end().catch(() => {});
  }
}

export interface DatabaseChoices {
  /** --database, as given on the command line. */
  option?: string;
  /** The environment: DATABASE_ENV is read from it. */
  env?: Readonly<Record<string, string | undefined>>;
  /** The config file's `database` key (a relative SQLite path already resolved against the file's folder). */
  config?: string;
  /** The config file, to name it in a message about `config`. */
  configFile?: string;
}

/**
 * The database to open: --database > MXGUARD_DATABASE_URL > the config file's `database` > undefined
 * (the default, `<dataDir>/mxguard.sqlite`). Empty text counts as not given. A bad value is refused
 * with StoreError STORE_INVALID naming where it came from (never showing a password).
 */
export function chooseDatabase(choices: DatabaseChoices): string | undefined {
  const candidates: Array<[source: string, value: string | undefined]> = [
    ['--database', choices.option],
    [DATABASE_ENV, choices.env?.[DATABASE_ENV]],
    [choices.configFile === undefined ? 'database' : `${choices.configFile}: database`, choices.config],
  ];
  for (const [source, value] of candidates) {
    if (value === undefined || value.trim() === '') continue;
    const problem = databaseProblem(value);
    if (problem !== undefined) throw storeInvalid(`${source}: ${problem}`);
    return value;
  }
  return undefined;
}

/** A `database` read from a file or given relative: a SQLite path is made absolute against `base`, a URL stays. */
export function resolveDatabasePath(database: string, base: string): string {
  return URL_SCHEME.test(database) ? database : resolve(base, database);
}

/** "scheme://" at the start: a URL, never a file path. */
const URL_SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

/** pg's sslmode values (pg-connection-string); anything else would silently mean "no TLS". */
const SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'];

/** What is wrong with a `database` value, or undefined; never repeats a password. */
export function databaseProblem(text: string): string | undefined {
  if (text.trim() === '') return 'must not be empty';
  if (!isPostgresUrl(text)) {
    const scheme = URL_SCHEME.exec(text)?.[1];
    if (scheme !== undefined) {
      return `"${scheme}://" is not a database this store opens: expected postgres://user:pass@host:5432/db or the path of a SQLite file`;
    }
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'not a valid URL: expected postgres://user:pass@host:5432/db?sslmode=require';
  }
  if (url.hostname === '' && !url.searchParams.has('host')) {
    return `${describeDatabase(text)}: names no host: expected postgres://user:pass@host:5432/db`;
  }
  const sslmode = url.searchParams.get('sslmode');
  if (sslmode !== null && !SSL_MODES.includes(sslmode)) {
    return `${describeDatabase(text)}: sslmode "${sslmode}" is not one of ${SSL_MODES.join(', ')}`;
  }
  return undefined;
}
