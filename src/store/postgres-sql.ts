// How the PostgreSQL store talks to the database (issue 16), shared by its parts (postgres.ts,
// postgres-monitor.ts, postgres-dmarc.ts): SQL written with `?` placeholders as in the SQLite store,
// text escaped so that NUL fits (PostgreSQL text cannot hold it), BIGINT read as numbers, and a failure
// turned into the StoreError that says what the caller can do: STORE_UNAVAILABLE when the database
// cannot be reached (try again later; HTTP 503), STORE_IO for anything else the database refused.
import type pg from 'pg';
import { StoreError } from './types.js';

export type Db = pg.Pool | pg.PoolClient;

/** What a part of the store runs its work through (PgStore's pool, closed state and transactions). */
export interface PgRunner {
  readonly pool: pg.Pool;
  /** Database work on the pool; failures become StoreError naming the database. */
  use<T>(work: () => Promise<T>): Promise<T>;
  /** One READ COMMITTED transaction on one pooled connection; rolled back when `work` throws. */
  transaction<T>(work: (db: pg.PoolClient) => Promise<T>): Promise<T>;
  /** A read-only snapshot: every query of `work` sees the same committed state (counts match pages). */
  snapshot<T>(work: (db: pg.PoolClient) => Promise<T>): Promise<T>;
}

// ---- text escaping (NUL) ----

const ESCAPE = '\uFFFE';

/** Text as stored: NUL becomes ESCAPE + "0", ESCAPE itself is doubled. */
export function pgText(text: string): string {
  return /[\u0000\uFFFE]/.test(text)
    ? text.replace(/[\u0000\uFFFE]/g, (c) => (c === ESCAPE ? ESCAPE + ESCAPE : `${ESCAPE}0`))
    : text;
}

/** The text pgText stored (a lone ESCAPE, as substr may leave at the end, stays as it is). */
export function fromPgText(text: string): string {
  return text.includes(ESCAPE)
    ? text.replace(/\uFFFE([\uFFFE0])/g, (_m, c: string) => (c === '0' ? '\u0000' : ESCAPE))
    : text;
}

function fromPgValue(value: unknown): unknown {
  if (typeof value === 'string') return fromPgText(value);
  if (Array.isArray(value)) return value.map(fromPgValue);
  return value;
}

/** SQL written with `?` placeholders (as in the SQLite store) in pg's numbered form. */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** Rows of `sql`; string parameters go in through pgText (arrays: map pgText yourself), text comes out unescaped. */
export async function query<R>(db: Db, sql: string, params: unknown[] = []): Promise<R[]> {
  const result = await db.query(
    numbered(sql),
    params.map((p) => (typeof p === 'string' ? pgText(p) : p)),
  );
  return result.rows.map((row: Record<string, unknown>) => {
    for (const key of Object.keys(row)) row[key] = fromPgValue(row[key]);
    return row as R;
  });
}

export async function one<R>(db: Db, sql: string, params: unknown[] = []): Promise<R | undefined> {
  return (await query<R>(db, sql, params))[0];
}

/** count(*) of `sql` (a query selecting `count(*) AS n`). */
export async function countOf(db: Db, sql: string, params: unknown[] = []): Promise<number> {
  return (await one<{ n: number }>(db, sql, params))!.n;
}

// ---- failures ----

/** Socket errors of a server that is down, restarting or out of reach. */
const UNREACHABLE_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
/** SQLSTATE 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now (starting up). */
const UNAVAILABLE_SQLSTATE = new Set(['57P01', '57P02', '57P03']);
/** What pg says when the socket closed under it or no connection came in time. */
const UNREACHABLE_MESSAGE =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Connection closed/i;

/** Whether `err` says the database cannot be reached (as opposed to refusing what was asked). */
export function isUnreachable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (UNREACHABLE_ERRNO.has(code) || UNAVAILABLE_SQLSTATE.has(code)) return true;
    // SQLSTATE class 08: connection exception.
    if (/^08[0-9A-Z]{3}$/.test(code)) return true;
  }
  // Node's connect to every address of a name (happy eyeballs) fails with all the attempts' errors.
  if (err instanceof AggregateError && err.errors.some(isUnreachable)) return true;
  return err instanceof Error && UNREACHABLE_MESSAGE.test(err.message);
}

/** A database failure as the StoreError callers handle, naming the database (`where`, no password). */
export function storeFailure(err: unknown, where: string, doing?: string): StoreError {
  if (err instanceof StoreError) return err;
  const message = `${where}: ${doing === undefined ? '' : `${doing}: `}${(err as Error)?.message ?? String(err)}`;
  return new StoreError(isUnreachable(err) ? 'STORE_UNAVAILABLE' : 'STORE_IO', message, { cause: err });
}
