// The default PolicyStore: one SQLite file (better-sqlite3) in the data directory, in WAL mode so that
// `policyd list/purge/query` can read and write it while the daemon runs. The daemon notices what
// they did through changedElsewhere() (PRAGMA data_version changes when another connection commits).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { isMode, type StsPolicy } from '../mtasts/policy.js';
import type { ChangeAwareStore } from './engine.js';
import type { CachedPolicy, PolicyStore } from './store.js';

export const STORE_FILE = 'policyd.sqlite';

const SCHEMA_VERSION = 1;

interface Row {
  domain: string;
  id: string;
  policy: string;
  fetched_at: number;
  expires_at: number;
  checked_at: number;
}

export interface SqliteStoreOptions {
  /** Open an existing file only (admin commands); otherwise the directory and file are created. */
  mustExist?: boolean;
}

export class SqlitePolicyStore implements PolicyStore, ChangeAwareStore {
  private readonly db: Database.Database;
  private readonly getRow: Database.Statement<[string], Row>;
  private readonly allRows: Database.Statement<[], Row>;
  private readonly upsert: Database.Statement<Row>;
  private readonly remove: Database.Statement<[string]>;
  private dataVersion: number;

  private constructor(
    readonly path: string,
    options: SqliteStoreOptions,
  ) {
    this.db = new Database(path, { fileMustExist: options.mustExist === true });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      this.db.close();
      throw new Error(
        `${path}: written by a newer mxguard (schema ${version}, this one knows ${SCHEMA_VERSION})`,
      );
    }
    this.db.exec(`CREATE TABLE IF NOT EXISTS policies (
      domain TEXT PRIMARY KEY,
      id TEXT NOT NULL,
      policy TEXT NOT NULL,
      fetched_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL,
      checked_at INTEGER NOT NULL
    ) WITHOUT ROWID`);
    if (version < SCHEMA_VERSION) this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    this.getRow = this.db.prepare('SELECT * FROM policies WHERE domain = ?');
    this.allRows = this.db.prepare('SELECT * FROM policies ORDER BY domain');
    this.upsert = this.db.prepare(
      `INSERT INTO policies (domain, id, policy, fetched_at, expires_at, checked_at)
       VALUES (@domain, @id, @policy, @fetched_at, @expires_at, @checked_at)
       ON CONFLICT (domain) DO UPDATE SET id = excluded.id, policy = excluded.policy,
         fetched_at = excluded.fetched_at, expires_at = excluded.expires_at, checked_at = excluded.checked_at`,
    );
    this.remove = this.db.prepare('DELETE FROM policies WHERE domain = ?');
    this.dataVersion = this.readDataVersion();
  }

  /** Open (and create) `<dir>/policyd.sqlite`. */
  static open(dataDir: string, options: SqliteStoreOptions = {}): SqlitePolicyStore {
    if (options.mustExist !== true) mkdirSync(dataDir, { recursive: true });
    return new SqlitePolicyStore(join(dataDir, STORE_FILE), options);
  }

  async get(domain: string): Promise<CachedPolicy | undefined> {
    const row = this.getRow.get(domain);
    return row === undefined ? undefined : fromRow(row);
  }

  async set(entry: CachedPolicy): Promise<void> {
    this.upsert.run({
      domain: entry.domain,
      id: entry.id,
      policy: JSON.stringify(entry.policy),
      fetched_at: entry.fetchedAt,
      expires_at: entry.expiresAt,
      checked_at: entry.checkedAt,
    });
  }

  async delete(domain: string): Promise<boolean> {
    return this.remove.run(domain).changes > 0;
  }

  /** Every readable entry; a row that does not decode (hand-edited, damaged) is left out. */
  async all(): Promise<CachedPolicy[]> {
    return this.allRows.all().flatMap((row) => {
      const entry = fromRow(row);
      return entry === undefined ? [] : [entry];
    });
  }

  changedElsewhere(): boolean {
    const version = this.readDataVersion();
    const changed = version !== this.dataVersion;
    this.dataVersion = version;
    return changed;
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    // Fold the WAL back into the database file so the file alone holds everything.
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }

  private readDataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }
}

function fromRow(row: Row): CachedPolicy | undefined {
  let policy: unknown;
  try {
    policy = JSON.parse(row.policy);
  } catch {
    return undefined;
  }
  if (!isStsPolicy(policy)) return undefined;
  return {
    domain: row.domain,
    id: row.id,
    policy,
    fetchedAt: row.fetched_at,
    expiresAt: row.expires_at,
    checkedAt: row.checked_at,
  };
}

function isStsPolicy(value: unknown): value is StsPolicy {
  if (typeof value !== 'object' || value === null) return false;
  const p = value as Record<string, unknown>;
  return (
    typeof p.mode === 'string' &&
    isMode(p.mode) &&
    typeof p.maxAge === 'number' &&
    Array.isArray(p.mx) &&
    p.mx.every((m) => typeof m === 'string') &&
    Array.isArray(p.extensions)
  );
}
