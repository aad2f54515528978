// store copy (src/store/copy.ts) between a SQLite store and a real PostgreSQL 15 on loopback
// (test/lab/postgres.ts): a SQLite store filled through the Store API with every kind of row is copied to
// PostgreSQL and read back through the PostgreSQL store (everything equal, ids included; the admin
// password and an API token still work; sessions are not copied), copied again (nothing added), copied
// back to SQLite; refusals (a conflicting row, another unique key, schema versions, the same database);
// the count check noticing rows the target lost; both schemas' tables all accounted for.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { hashPassword, verifyPassword } from '../../src/server/auth.js';
import {
  type CopyLocation,
  type CopyProgress,
  type CopySummary,
  copyLocation,
  copyStore,
  StoreCopyError,
} from '../../src/store/copy.js';
import { COPIED_TABLES, copiedRowsWhere, NOT_COPIED } from '../../src/store/copy-tables.js';
import { MIGRATIONS, migrate } from '../../src/store/migrations.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { pgText } from '../../src/store/postgres-sql.js';
import { DATABASE_FILE, openSqliteStore } from '../../src/store/sqlite.js';
import { DOMAINS_VERSION_SETTING } from '../../src/store/sqlite-cluster.js';
import { ADMIN_PASSWORD_SETTING, type Store } from '../../src/store/types.js';
import { eventually } from '../fixtures/serve/helpers.js';
import { dmarcReport } from '../helpers/dmarc.js';
import { type LabPostgres, startPostgres } from '../lab/postgres.js';
import { newReport, policy, report, settings, T0 } from './contract.js';

let lab: LabPostgres;
let root: string;
let databases = 0;
const freshDatabase = () => lab.createDatabase(`copy_${++databases}`);
const freshDir = () => join(root, `data-${++databases}`);
const sqliteAt = (dir: string): CopyLocation => ({ kind: 'sqlite', file: join(dir, DATABASE_FILE) });
const postgresAt = (url: string): CopyLocation => ({ kind: 'postgres', url });

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'mxguard-copy-'));
  lab = await startPostgres();
});
after(async () => {
  await lab?.stop();
  rmSync(root, { recursive: true, force: true });
});

const PASSWORD = 'correct horse battery staple';
const TOKEN_HASH = 'aGFzaC1vZi10aGUtdG9rZW4tc2VjcmV0';
const SESSION_HASH = 'c2Vzc2lvbi1pZC1oYXNo';
const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);

/** Every kind of row a store holds, written through the Store API (the one way serve writes them). */
async function fill(store: Store): Promise<void> {
  await store.addDomain('example.com', settings, at(0));
  await store.updateDomain('example.com', { mode: 'enforce' }, at(1)); // a second policy version
  await store.addDomain('watched.example', { ...settings, watchOnly: true }, at(2));
  await store.addDomain('gone.example', settings, at(3));
  await store.removeDomain('gone.example'); // its last id is retired
  for (let i = 0; i < 7; i++) {
    const failures = [
      { resultType: 'certificate-expired', count: i + 1, receivingMxHostname: 'mx.example.com' },
    ];
    await store.saveReport(
      newReport(report(`r-${i}`, at(i * 60).toISOString(), [policy('example.com', 100 + i, i, failures)]), {
        source: i % 2 === 0 ? 'https' : 'smtp',
        submitter: i % 2 === 0 ? undefined : 'reports@sender.example',
        warnings: i === 3 ? ['a warning'] : [],
      }),
      at(i),
    );
  }
  await store.saveRejected(
    { source: 'https', reason: 'not a TLS-RPT report', size: 12, submitter: '192.0.2.1' },
    at(10),
  );
  store.logFetch({
    at: at(11).toISOString(),
    domain: 'example.com',
    clientIp: '198.51.100.7',
    userAgent: 'fetcher/1',
  });
  store.logFetch({
    at: at(12).toISOString(),
    domain: 'example.com',
    clientIp: '198.51.100.8',
    userAgent: 'fetcher/2',
  });
  const passwordHash = await hashPassword(PASSWORD);
  await store.setAdminPassword(passwordHash);
  await store.createApiToken({ id: 'tok1', name: 'ci', hash: TOKEN_HASH, createdAt: at(13).toISOString() });
  await store.setSetting('monitor.custom', '{"a":1}');
  assert.equal(
    await store.createSession({ idHash: SESSION_HASH, expiresAt: at(10_000) }, passwordHash, at(14)),
    true,
  );

  // Monitoring: a failing run opens an alert with two deliveries; a later passing run resolves it.
  const finding = { section: 'tls', status: 'fail', code: 'TLS_EXPIRED', message: 'certificate expired' };
  const first = await store.recordCheck(
    {
      run: {
        domain: 'example.com',
        at: at(20).toISOString(),
        durationMs: 900,
        status: 'fail',
        findings: [finding],
        trigger: 'schedule',
      },
      open: [
        {
          alert: {
            domain: 'example.com',
            code: 'TLS_EXPIRED',
            subject: 'mx.example.com',
            severity: 'fail',
            message: 'expired',
          },
          deliveries: [
            { channel: 'webhook', target: 'https://hooks.example/x', event: alertEvent('alert.opened') },
            { channel: 'email', target: 'ops@example.com', event: alertEvent('alert.opened') },
          ],
        },
      ],
      resolve: [],
    },
    at(20),
  );
  const [delivery] = await store.dueDeliveries(at(21), 1);
  await store.settleDelivery(delivery!.id, { ok: false, error: 'HTTP 502', nextAttemptAt: at(30) }, at(21));
  await store.recordCheck(
    {
      run: {
        domain: 'example.com',
        at: at(40).toISOString(),
        durationMs: 800,
        status: 'pass',
        findings: [],
        trigger: 'manual',
      },
      open: [],
      resolve: [{ alertId: first.opened[0]!, deliveries: [] }],
    },
    at(40),
  );

  // DMARC reports and the PTR cache.
  for (const [i, day] of ['2026-12-01', '2026-12-02'].entries()) {
    const rows = [
      { sourceIp: '192.0.2.10', count: 5 + i },
      {
        sourceIp: '192.0.2.11',
        count: 1,
        dkim: 'fail' as const,
        spf: 'fail' as const,
        disposition: 'reject' as const,
      },
    ];
    const dmarc = dmarcReport({
      organization: 'google.com',
      reportId: `d-${i}`,
      domain: 'example.com',
      day,
      rows,
    });
    await store.saveDmarcReport({ report: dmarc, source: 'imap', dkim: 'pass', warnings: [] }, at(50 + i));
  }
  await store.setPtrName('192.0.2.10', 'mail.sender.example', at(60));
  await store.setPtrName('192.0.2.11', '', at(61));
}

function alertEvent(event: 'alert.opened' | 'alert.resolved') {
  return {
    event,
    domain: 'example.com',
    code: 'TLS_EXPIRED',
    severity: 'fail' as const,
    message: 'expired',
    openedAt: at(20).toISOString(),
  };
}

/** What a store holds, read through the Store API (lists, details, history, settings): equal stores, equal snapshots. */
async function snapshot(store: Store) {
  const domains = await store.listDomains();
  const reports = (await store.listReports({ limit: 1000 })).items;
  const dmarc = (await store.listDmarcReports({ limit: 1000 })).items;
  const alerts = (await store.listAlerts({ limit: 1000 })).items;
  const runs = (await store.listCheckRuns('example.com', { limit: 1000 })).items;
  return {
    domains,
    history: await Promise.all(domains.map((d) => store.policyHistory(d.name))),
    reports,
    reportDetails: await Promise.all(reports.map((r) => store.getReport(r.id))),
    daily: await store.dailyCounts('example.com', '2024-04-01', '2024-06-01'),
    breakdown: await store.failureBreakdown('example.com', 'resultType'),
    rejected: (await store.listRejected({ limit: 1000 })).items,
    fetches: (await store.listFetches('example.com', { limit: 1000 })).items,
    tokens: await store.listApiTokens(),
    customSetting: await store.getSetting('monitor.custom'),
    runs,
    runDetails: await Promise.all(runs.map((r) => store.getCheckRun(r.id))),
    alerts,
    deliveries: (await store.listDeliveries({ limit: 1000 })).items,
    dmarc,
    dmarcDetails: await Promise.all(dmarc.map((r) => store.getDmarcReport(r.id))),
    dmarcDaily: await store.dmarcDailyCounts('example.com', '2026-11-01', '2026-12-31'),
    ptr: [...(await store.getPtrNames(['192.0.2.10', '192.0.2.11', '192.0.2.99'])).entries()],
  };
}

async function filledSqlite(): Promise<{ dir: string; expected: Awaited<ReturnType<typeof snapshot>> }> {
  const dir = freshDir();
  const store = await openSqliteStore(dir);
  try {
    await fill(store);
    await store.close(); // flushes the fetch log
    const reopened = await openSqliteStore(dir);
    try {
      return { dir, expected: await snapshot(reopened) };
    } finally {
      await reopened.close();
    }
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** Every copied table's copied rows as SQLite holds them, in key order. */
function rawRows(dir: string): Record<string, unknown[]> {
  const db = new Database(join(dir, DATABASE_FILE), { readonly: true });
  try {
    return Object.fromEntries(
      COPIED_TABLES.map((t) => [
        t.name,
        db.prepare(`SELECT * FROM ${t.name} ${copiedRowsWhere(t, undefined)} ORDER BY ${t.key}`).all(),
      ]),
    );
  } finally {
    db.close();
  }
}

async function withStore<T>(open: Promise<Store>, use: (store: Store) => Promise<T>): Promise<T> {
  const store = await open;
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

async function rejectsWithCopyError(
  promise: Promise<unknown>,
  code: StoreCopyError['code'],
  message?: RegExp,
) {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof StoreCopyError, `expected StoreCopyError, got ${err}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

const added = (summary: CopySummary) => Object.fromEntries(summary.tables.map((t) => [t.table, t.inserted]));

describe('store copy: SQLite -> PostgreSQL -> SQLite', () => {
  it('copies every kind of row with its id; the PostgreSQL store reads back the same; a second run adds nothing', async () => {
    const { dir, expected } = await filledSqlite();
    const url = await freshDatabase();
    const progress: CopyProgress[] = [];
    // Batches of two rows, reports one at a time (1 byte): every table is read in several batches.
    const summary = await copyStore(sqliteAt(dir), postgresAt(url), {
      batchRows: 2,
      batchBytes: 1,
      onProgress: (p) => progress.push(p),
    });
    assert.equal(summary.ok, true, JSON.stringify(summary.tables));
    for (const t of summary.tables) {
      assert.equal(t.present, t.source, t.table);
      assert.equal(t.inserted, t.source, t.table);
    }
    assert.equal(added(summary).reports, 7);
    assert.equal(added(summary).sessions, undefined);
    assert.equal(
      progress.filter((p) => p.table === 'reports' && p.phase === 'copy').length,
      1 + 7,
      'one batch per report (batchBytes 1), after the start',
    );

    await withStore(openPostgresStore(url), async (copied) => {
      assert.deepEqual(await snapshot(copied), expected);
      // The admin password still logs in, the API token still opens the API; sessions: log in again.
      const hash = await copied.getSetting(ADMIN_PASSWORD_SETTING);
      assert.equal(await verifyPassword(PASSWORD, hash!), true);
      assert.equal(await copied.findApiToken(TOKEN_HASH), 'tok1');
      assert.equal(await copied.sessionValid(SESSION_HASH, at(15)), false);
      // New rows get ids after the copied ones (the identity sequences were moved).
      const maxId = Math.max(...expected.reports.map((r) => r.id));
      const saved = await copied.saveReport(
        newReport(report('after-copy', at(70).toISOString(), [])),
        at(70),
      );
      assert.ok(saved.created && saved.id > maxId, `new id ${saved.id} after ${maxId}`);
      await copied.removeDomain('watched.example');
    });

    // Run again: the rows the target lost meanwhile come back, nothing else is added.
    const again = await copyStore(sqliteAt(dir), postgresAt(url));
    assert.equal(again.ok, true);
    assert.deepEqual(Object.fromEntries(Object.entries(added(again)).filter(([, n]) => n !== 0)), {
      domains: 1,
      policy_versions: 1,
    });
  });

  it('a second run adds nothing, and PostgreSQL -> SQLite brings everything back', async () => {
    const { dir, expected } = await filledSqlite();
    const url = await freshDatabase();
    assert.equal((await copyStore(sqliteAt(dir), postgresAt(url))).ok, true);
    const again = await copyStore(sqliteAt(dir), postgresAt(url));
    assert.equal(again.ok, true);
    assert.deepEqual(
      again.tables.filter((t) => t.inserted !== 0 || t.alreadyPresent !== t.source),
      [],
      'every row already there',
    );

    const back = freshDir();
    const home = await copyStore(postgresAt(url), sqliteAt(back), { batchRows: 3 });
    assert.equal(home.ok, true);
    await withStore(openSqliteStore(back), async (store) => {
      assert.deepEqual(await snapshot(store), expected);
      assert.equal(await store.findApiToken(TOKEN_HASH), 'tok1');
    });
    assert.deepEqual(rawRows(back), rawRows(dir), 'every copied table, row by row, byte for byte');
  });

  it('text with NUL and U+FFFE crosses both ways unchanged, stored in PostgreSQL as its store keeps it', async () => {
    const dir = freshDir();
    const organization = 'Org\u0000NUL \uFFFE';
    const id = await withStore(openSqliteStore(dir), async (store) => {
      const r = report('nul\u0000id', at(9).toISOString(), [policy('example.com', 1, 0)], organization);
      return (await store.saveReport(newReport(r), at(9))).id;
    });
    const url = await freshDatabase();
    assert.equal((await copyStore(sqliteAt(dir), postgresAt(url))).ok, true);
    const stored = await withClient(
      url,
      async (c) => (await c.query('SELECT organization FROM reports')).rows,
    );
    assert.deepEqual(stored, [{ organization: pgText(organization) }]);
    await withStore(openPostgresStore(url), async (store) => {
      const read = await store.getReport(id);
      assert.deepEqual([read?.organization, read?.reportId], [organization, 'nul\u0000id']);
    });
    // Copied again: the escaped key is found, nothing doubled; and back to SQLite exactly.
    assert.deepEqual(added(await copyStore(sqliteAt(dir), postgresAt(url))).reports, 0);
    const back = freshDir();
    assert.equal((await copyStore(postgresAt(url), sqliteAt(back))).ok, true);
    assert.deepEqual(rawRows(back), rawRows(dir));
  });

  it('serve instances already running on the target hear of the copied domains (both kinds of target)', async () => {
    const { dir } = await filledSqlite();
    const url = await freshDatabase();
    const back = freshDir();
    for (const [target, open] of [
      [postgresAt(url), () => openPostgresStore(url)],
      [sqliteAt(back), () => openSqliteStore(back)],
    ] as const) {
      await withStore(open(), async (running) => {
        let heard = 0;
        const watch = await running.watchDomains(() => {
          heard++;
        });
        try {
          assert.equal((await copyStore(sqliteAt(dir), target)).ok, true);
          await eventually(() => (heard > 0 ? true : undefined), `a domain change notice on ${target.kind}`);
          assert.equal((await running.listDomains()).length, 2);
        } finally {
          await watch.stop();
        }
      });
    }
  });

  it('leaves the change counter and lock leases of the running processes behind', async () => {
    const { dir } = await filledSqlite();
    const db = new Database(join(dir, DATABASE_FILE));
    db.prepare(
      "INSERT OR REPLACE INTO settings (key, value) VALUES (?, '41'), ('cluster.lock.background', '{}')",
    ).run(DOMAINS_VERSION_SETTING);
    db.close();
    const url = await freshDatabase();
    assert.equal((await copyStore(sqliteAt(dir), postgresAt(url))).ok, true);
    const keys = await withClient(
      url,
      async (c) => (await c.query("SELECT key FROM settings WHERE key LIKE 'cluster.%'")).rows,
    );
    assert.deepEqual(keys, []);
  });
});

describe('store copy: refusals', () => {
  it('a target holding a different row under a key of the source: COPY_CONFLICT naming the table, that batch not written', async () => {
    const { dir } = await filledSqlite();
    const url = await freshDatabase();
    await withStore(openPostgresStore(url), (store) =>
      store.addDomain('example.com', { ...settings, mode: 'none' }, at(0)),
    );
    await rejectsWithCopyError(
      copyStore(sqliteAt(dir), postgresAt(url)),
      'COPY_CONFLICT',
      /table domains: the row name="example.com" differs in the target \(mode, .*policy_id/,
    );
    const names = await withClient(url, async (c) => (await c.query('SELECT name FROM domains')).rows);
    assert.deepEqual(names, [{ name: 'example.com' }], 'the batch with the conflict was rolled back');
  });

  it('the same report under another id (a unique key other than the id): COPY_CONFLICT', async () => {
    const { dir } = await filledSqlite();
    const url = await freshDatabase();
    await withStore(openPostgresStore(url), (store) =>
      store.saveReport(newReport(report('r-0', at(0).toISOString(), [])), at(0)),
    );
    // r-0 has id 1 in the source; the target holds it under id 100 and nothing under id 1.
    await withClient(url, (c) => c.query('UPDATE reports SET id = 100 WHERE id = 1'));
    await rejectsWithCopyError(
      copyStore(sqliteAt(dir), postgresAt(url)),
      'COPY_CONFLICT',
      /table reports: the row id=1 collides with a different row of the target on another unique column/,
    );
  });

  it('a source of another schema version: COPY_SCHEMA_MISMATCH, the source untouched', async () => {
    const older = join(root, `older-${++databases}.sqlite`);
    const db = new Database(older);
    migrate(db, MIGRATIONS.slice(0, 4));
    db.close();
    await rejectsWithCopyError(
      copyStore({ kind: 'sqlite', file: older }, { kind: 'sqlite', file: join(freshDir(), 'x.sqlite') }),
      'COPY_SCHEMA_MISMATCH',
      /has schema version 4, .* has \d+: open .* once with this mxguard/,
    );
    const version = new Database(older, { readonly: true });
    assert.equal(version.pragma('user_version', { simple: true }), 4);
    version.close();
  });

  it('the same database on both sides: COPY_SAME_DATABASE (SQLite by any path, PostgreSQL by any URL)', async () => {
    const { dir } = await filledSqlite();
    await rejectsWithCopyError(
      copyStore(copyLocation(dir, '--from'), copyLocation(join(dir, '.', DATABASE_FILE), '--to')),
      'COPY_SAME_DATABASE',
    );
    const url = await freshDatabase();
    assert.equal((await copyStore(sqliteAt(dir), postgresAt(url))).ok, true);
    await rejectsWithCopyError(copyStore(postgresAt(url), postgresAt(url)), 'COPY_SAME_DATABASE', /are both/);
    const sameByAnotherName = `${url}?application_name=another`;
    await rejectsWithCopyError(
      copyStore(postgresAt(url), postgresAt(sameByAnotherName)),
      'COPY_SAME_DATABASE',
    );
    // Another database of the same server is not the same database.
    const other = await freshDatabase();
    assert.equal((await copyStore(postgresAt(url), postgresAt(other))).ok, true);
  });

  it('a missing source or one that is not an mxguard database: COPY_LOCATION, nothing created', async () => {
    const target = freshDir();
    await rejectsWithCopyError(
      copyStore(sqliteAt(freshDir()), sqliteAt(target)),
      'COPY_LOCATION',
      /no such database file/,
    );
    const empty = await freshDatabase();
    await rejectsWithCopyError(
      copyStore(postgresAt(empty), sqliteAt(target)),
      'COPY_LOCATION',
      /not an mxguard database/,
    );
    assert.equal(existsSync(target), false);
  });
});

describe('store copy: --from and --to', () => {
  it('a URL, a directory (its mxguard.sqlite), an existing file, a new .sqlite/.db file, else a new data directory', () => {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'some-file');
    writeFileSync(file, '');
    assert.deepEqual(copyLocation('postgresql://u@db.example/x', '--to'), {
      kind: 'postgres',
      url: 'postgresql://u@db.example/x',
    });
    assert.deepEqual(copyLocation(dir, '--from'), { kind: 'sqlite', file: join(dir, DATABASE_FILE) });
    assert.deepEqual(copyLocation(file, '--from'), { kind: 'sqlite', file });
    assert.deepEqual(copyLocation(join(dir, 'new.db'), '--to'), {
      kind: 'sqlite',
      file: join(dir, 'new.db'),
    });
    assert.deepEqual(copyLocation(join(dir, 'new'), '--to'), {
      kind: 'sqlite',
      file: join(dir, 'new', DATABASE_FILE),
    });
    assert.throws(
      () => copyLocation('mysql://u@h/db', '--to'),
      (err: unknown) =>
        err instanceof StoreCopyError && err.code === 'COPY_LOCATION' && /^--to: /.test(err.message),
    );
  });
});

describe('store copy: the count check', () => {
  it('notices rows the target lost after taking them (a trigger deleting every fetch)', async () => {
    const { dir } = await filledSqlite();
    const url = await freshDatabase();
    await withStore(openPostgresStore(url), async () => {});
    await withClient(url, async (c) => {
      await c.query(`CREATE FUNCTION drop_fetch() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN DELETE FROM fetches WHERE id = NEW.id; RETURN NULL; END $$`);
      await c.query(
        'CREATE TRIGGER drop_fetch AFTER INSERT ON fetches FOR EACH ROW EXECUTE FUNCTION drop_fetch()',
      );
    });
    const summary = await copyStore(sqliteAt(dir), postgresAt(url));
    assert.equal(summary.ok, false);
    const fetches = summary.tables.find((t) => t.table === 'fetches')!;
    assert.deepEqual(
      { ok: fetches.ok, source: fetches.source, present: fetches.present },
      { ok: false, source: 2, present: 0 },
    );
    assert.ok(summary.tables.filter((t) => t.table !== 'fetches').every((t) => t.ok));
  });
});

describe('store copy: the two schemas', () => {
  it('every table of both schemas is copied or named as not copied, with the same columns on both sides', async () => {
    const dir = freshDir();
    await withStore(openSqliteStore(dir), async () => {});
    const db = new Database(join(dir, DATABASE_FILE), { readonly: true });
    const sqliteTables = new Map(
      (
        db
          .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
          .pluck()
          .all() as string[]
      ).map((t) => [
        t,
        (db.prepare(`PRAGMA table_info(${t})`).all() as { name: string }[]).map((c) => c.name).sort(),
      ]),
    );
    db.close();
    const url = await freshDatabase();
    await withStore(openPostgresStore(url), async () => {});
    const pgTables = await withClient(url, async (c) => {
      const rows = (
        await c.query(
          `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' ORDER BY column_name`,
        )
      ).rows as { table_name: string; column_name: string }[];
      const tables = new Map<string, string[]>();
      for (const r of rows) tables.set(r.table_name, [...(tables.get(r.table_name) ?? []), r.column_name]);
      tables.delete('mxguard_schema'); // PostgreSQL's schema version (SQLite: PRAGMA user_version)
      return tables;
    });
    const accounted = [...COPIED_TABLES.map((t) => t.name), ...Object.keys(NOT_COPIED)].sort();
    assert.deepEqual([...sqliteTables.keys()].sort(), accounted);
    assert.deepEqual([...pgTables.keys()].sort(), accounted);
    for (const table of COPIED_TABLES)
      assert.deepEqual(pgTables.get(table.name), sqliteTables.get(table.name), table.name);
  });
});
