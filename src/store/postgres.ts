// The PostgreSQL store (issue 16): the Store's domains, reports, rejected input, fetch log, settings and
// authentication on a PostgreSQL database shared by several `serve` instances, through a `pg` Pool.
// Monitoring is in postgres-monitor.ts, DMARC reports in postgres-dmarc.ts, the SQL plumbing (placeholders,
// text escaping, failures) in postgres-sql.ts.
//
// Durability: every connection runs with synchronous_commit=on, and a method's promise resolves only
// after its transaction committed, so an acknowledged report or policy change is on disk. The fetch log
// is the exception, as in SQLite: it is written in batches by this store and those commits skip the
// WAL flush (SET LOCAL synchronous_commit = off), because nobody is told an entry was saved.
//
// Concurrency between instances:
// - a report is stored once: INSERT ... ON CONFLICT (organization, report_id) DO NOTHING;
// - domain changes lock the domain's row (SELECT ... FOR UPDATE), so policy ids only grow;
// - the login throttle and the API token cap count rows and then insert one. Row locks cannot lock rows
//   that do not exist yet, and SERIALIZABLE would abort (and make us retry) exactly under a login flood,
//   so these transactions take a transaction-level advisory lock (pg_advisory_xact_lock) per purpose:
//   one throttle decision at a time across every instance, as SQLite's IMMEDIATE transactions do;
// - a session is created under a FOR SHARE lock on the admin password row: a password change either
//   committed before (the login is refused) or waits and then deletes the new session with the others.
//
// Failures: a database that cannot be reached (refused, lost, shutting down: postgres-sql.ts isUnreachable)
// is STORE_UNAVAILABLE, anything else STORE_IO; the pool replaces broken connections by itself, so the
// next call after the server is back succeeds.
//
// Text: PostgreSQL text cannot hold NUL, which reports from the Internet may. Every string goes in
// through pgText and comes out through fromPgText, a reversible escape that leaves text without NUL
// and U+FFFE as it is (so clipping, ordering and lookups work unchanged). Text is ordered COLLATE "C",
// byte order as in SQLite, whatever the database's locale.
// Time ranges, pages and list views follow the same rules as the SQLite store (sqlite.ts header).
import pg from 'pg';
import { normalizeHost } from '../common/hostname.js';
import type { TlsReport } from '../tlsrpt/report.js';
import { count, timeBound } from './bounds.js';
import type { CheckQueue } from './check-queue-types.js';
import { describeDatabase } from './database-url.js';
import { REPORT_SOURCES } from './dmarc-rules.js';
import type {
  DmarcDailyCounts,
  DmarcReportFilter,
  DmarcReportSummary,
  DmarcSourceFilter,
  DmarcSourceRow,
  NewDmarcReport,
  StoredDmarcReport,
} from './dmarc-types.js';
import { domainKey, nextPolicyId, policyTextFor, validDomainName, validSettings } from './domain-rules.js';
import type {
  Alert,
  AlertFilter,
  CheckOutcome,
  CheckRun,
  CheckRunSummary,
  Delivery,
} from './monitor-types.js';
import { type OtherDomainRow, TLSRPT_NO_POLICY_DOMAIN, TLSRPT_OTHER_DOMAINS } from './other-domains.js';
import { clippedColumn, clipText, decodeCursor, encodeCursor, LIST_DOMAINS_MAX, takePage } from './paging.js';
import { PgCheckQueue } from './postgres-check-queue.js';
import { notifyDomainsChanged, PgCluster } from './postgres-cluster.js';
import { checkedIds, deleteByIds, deleteOldest } from './postgres-delete.js';
import { PgDmarcStore } from './postgres-dmarc.js';
import { migratePostgres } from './postgres-migrations.js';
import { PgMonitorStore } from './postgres-monitor.js';
import { type Db, one, type PgRunner, pgText, query, storeFailure } from './postgres-sql.js';
import { purgeSelection, TLSRPT_PURGE } from './purge-rules.js';
import { checkNewReport } from './report-rules.js';
import {
  type DomainRow,
  domainFromRow,
  type RejectedRow,
  type ReportSummaryRow,
  rejectedFromRow,
  reportSummary,
  watchOnlyFlag,
  withReportContent,
} from './sql-rows.js';
// The limits both stores keep (SQLite defines them, as the default store).
import {
  ACCOUNT_EXCESS_COUNTED,
  AUTH_ATTEMPTS_KEEP,
  AUTH_PURGE_BATCH,
  BREAKDOWN_COLUMNS,
  BREAKDOWN_MAX_ROWS,
  FETCH_BACKLOG_MAX,
  FETCH_BATCH,
  FETCH_FLUSH_MS,
  FETCH_LOG_KEEP,
  LIST_MAX,
  MAX_API_TOKENS,
  SESSIONS_KEEP,
  USER_AGENT_MAX,
} from './sqlite.js';
import {
  ADMIN_PASSWORD_SETTING,
  type ApiTokenInfo,
  type AuthAttemptKeys,
  type AuthAttemptLimits,
  type AuthReservation,
  type BreakdownKey,
  type BreakdownRow,
  type DailyCounts,
  type Domain,
  type DomainSettings,
  type DomainWatch,
  type HeldLock,
  type NewApiToken,
  type NewReport,
  type OversizedReport,
  type Page,
  type PageRequest,
  type PolicyFetch,
  type PolicyVersion,
  type PurgeFilter,
  type RejectedInput,
  type ReportFilter,
  type Store,
  type StoreDurability,
  type StoredReport,
  type StoredReportSummary,
  StoreError,
  storeInvalid,
} from './types.js';

const POOL_SIZE = 10;
/** How long a new connection may take before the database counts as unreachable. */
const CONNECT_TIMEOUT_MS = 10_000;
/** pg_advisory_xact_lock keys ("mxg" + a number; 1 is MIGRATION_LOCK): the throttle, the token cap. */
const AUTH_LOCK = 0x6d786702;
const TOKENS_LOCK = 0x6d786703;

/** pg's type id of BIGINT: read as a number (every value this store writes is a safe integer). */
const INT8_OID = 20;

/**
 * Open the store at `url` (postgres://user:pass@host:port/db?sslmode=...), check that it answers, and
 * bring its schema up to date (once, under an advisory lock, whoever starts at the same time).
 */
export async function openPostgresStore(url: string): Promise<Store> {
  const where = describeDatabase(url);
  const pool = new pg.Pool({
    connectionString: url,
    max: POOL_SIZE,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    options: '-c synchronous_commit=on',
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as never,
    },
  });
  // An idle client losing its connection must not crash the process: the next query reports it.
  pool.on('error', () => {});
  try {
    const client = await pool.connect();
    try {
      await migratePostgres(client, where);
    } finally {
      client.release();
    }
    return new PgStore(pool, where);
  } catch (err) {
    await pool.end().catch(() => {});
    throw storeFailure(err, where, 'cannot open the database');
  }
}

// ---- rows ----

interface SummaryRow extends ReportSummaryRow {
  start_ms: number;
}

interface ReportRow extends SummaryRow {
  submitter: string | null;
  warnings: string;
  report_json: string;
}

const SUMMARY_COLUMNS = `r.id, r.start_ms, ${clippedColumn('r.organization')} AS organization,
  ${clippedColumn('r.report_id')} AS report_id, r.start_at, r.end_at, r.successful, r.failed, r.source,
  r.dkim, r.received_at,
  ARRAY(SELECT DISTINCT ${clippedColumn('domain')} COLLATE "C" AS d FROM report_policies
     WHERE report = r.id AND domain <> '' ORDER BY d LIMIT ${LIST_DOMAINS_MAX + 1}) AS domains`;

class PgStore implements Store {
  private closed = false;
  private fetchQueue: PolicyFetch[] = [];
  private fetchTimer: NodeJS.Timeout | undefined;
  /** The flush in progress: flushes run one after another. */
  private flushing: Promise<void> = Promise.resolve();
  private readonly monitor: PgMonitorStore;
  private readonly dmarc: PgDmarcStore;
  private readonly checks: PgCheckQueue;

  private readonly cluster: PgCluster;

  constructor(
    private readonly pool: pg.Pool,
    private readonly where: string,
  ) {
    const runner: PgRunner = {
      pool,
      use: (work) => this.use(work),
      transaction: (work) => this.transaction(work),
      snapshot: (work) => this.snapshot(work),
    };
    this.monitor = new PgMonitorStore(runner);
    this.dmarc = new PgDmarcStore(runner);
    this.checks = new PgCheckQueue(runner);
    this.cluster = new PgCluster(pool.options, where);
  }

  // ---- several instances on one database (postgres-cluster.ts) ----

  watchDomains(listener: () => void): Promise<DomainWatch> {
    return this.cluster.watchDomains(listener);
  }

  tryLock(name: string): Promise<HeldLock | undefined> {
    return this.cluster.tryLock(name);
  }

  // ---- domains ----

  async listDomains(): Promise<Domain[]> {
    return this.use(async () =>
      (await query<DomainRow>(this.pool, 'SELECT * FROM domains ORDER BY name COLLATE "C"')).map(
        domainFromRow,
      ),
    );
  }

  async getDomain(name: string): Promise<Domain | undefined> {
    return this.use(() => readDomain(this.pool, domainKey(name)));
  }

  async addDomain(name: string, settings: DomainSettings, now: Date): Promise<Domain> {
    const key = validDomainName(name);
    const valid = validSettings(settings);
    const watchOnly = watchOnlyFlag(settings.watchOnly, false);
    return this.transaction(async (db) => {
      const exists = () => new StoreError('STORE_DOMAIN_EXISTS', `domain ${key} already exists`);
      if (await readDomain(db, key)) throw exists();
      const retired = await one<{ policy_id: string }>(
        db,
        'SELECT policy_id FROM retired_policy_ids WHERE domain = ?',
        [key],
      );
      const policyId = nextPolicyId(retired?.policy_id, now);
      const policyText = policyTextFor(valid);
      const at = now.toISOString();
      // Another instance adding the same name at the same moment: the primary key decides.
      const inserted = await query(
        db,
        `INSERT INTO domains (name, mode, mx, max_age, rua, policy_id, policy_text, created_at, updated_at,
           watch_only)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING name`,
        [
          key,
          valid.mode,
          JSON.stringify(valid.mx),
          valid.maxAge,
          JSON.stringify(valid.rua),
          policyId,
          policyText,
          at,
          at,
          watchOnly,
        ],
      );
      if (inserted.length === 0) throw exists();
      await insertPolicyVersion(db, key, policyId, policyText, at);
      await notifyDomainsChanged(db);
      return (await readDomain(db, key))!;
    });
  }

  async updateDomain(name: string, patch: Partial<DomainSettings>, now: Date): Promise<Domain> {
    const key = domainKey(name);
    if (typeof patch !== 'object' || patch === null)
      throw new StoreError('STORE_INVALID', 'patch: must be an object');
    return this.transaction(async (db) => {
      const current = await readDomain(db, key, true);
      if (!current) throw unknownDomain(name);
      const merged = validSettings({
        mode: patch.mode ?? current.mode,
        mx: patch.mx ?? current.mx,
        maxAge: patch.maxAge ?? current.maxAge,
        rua: patch.rua ?? current.rua,
      });
      const wasWatchOnly = current.watchOnly === true;
      const watchOnly = watchOnlyFlag(patch.watchOnly, wasWatchOnly);
      const policyText = policyTextFor(merged);
      const policyChanged = policyText !== current.policyText;
      const ruaChanged = JSON.stringify(merged.rua) !== JSON.stringify(current.rua);
      if (!policyChanged && !ruaChanged && watchOnly === wasWatchOnly) return current;
      const at = now.toISOString();
      const policyId = policyChanged ? nextPolicyId(current.policyId, now) : current.policyId;
      await query(
        db,
        `UPDATE domains SET mode = ?, mx = ?, max_age = ?, rua = ?, policy_id = ?, policy_text = ?,
           updated_at = ?, watch_only = ? WHERE name = ?`,
        [
          merged.mode,
          JSON.stringify(merged.mx),
          merged.maxAge,
          JSON.stringify(merged.rua),
          policyId,
          policyText,
          at,
          watchOnly,
          key,
        ],
      );
      if (policyChanged) await insertPolicyVersion(db, key, policyId, policyText, at);
      await notifyDomainsChanged(db);
      return (await readDomain(db, key))!;
    });
  }

  async removeDomain(name: string): Promise<boolean> {
    const key = domainKey(name);
    return this.transaction(async (db) => {
      const current = await readDomain(db, key, true);
      if (!current) return false;
      await query(
        db,
        `INSERT INTO retired_policy_ids (domain, policy_id) VALUES (?, ?)
         ON CONFLICT (domain) DO UPDATE SET policy_id = excluded.policy_id`,
        [key, current.policyId],
      );
      await query(db, 'DELETE FROM domains WHERE name = ?', [key]);
      await notifyDomainsChanged(db);
      return true;
    });
  }

  async policyHistory(name: string): Promise<PolicyVersion[]> {
    return this.use(async () =>
      (
        await query<{ policy_id: string; policy_text: string; created_at: string }>(
          this.pool,
          `SELECT policy_id, policy_text, created_at FROM policy_versions WHERE domain = ?
           ORDER BY policy_id COLLATE "C" DESC`,
          [domainKey(name)],
        )
      ).map((row) => ({ policyId: row.policy_id, policyText: row.policy_text, createdAt: row.created_at })),
    );
  }

  // ---- reports ----

  async saveReport(input: NewReport, now: Date): Promise<{ id: number; created: boolean }> {
    const checked = checkNewReport(input);
    const { report } = input;
    return this.transaction(async (db) => {
      const inserted = await one<{ id: number }>(
        db,
        `INSERT INTO reports (organization, report_id, start_at, end_at, start_ms, successful, failed,
           source, dkim, submitter, warnings, report_json, received_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (organization, report_id) DO NOTHING RETURNING id`,
        [
          report.organization,
          report.reportId,
          report.start,
          report.end,
          checked.startMs,
          checked.successful,
          checked.failed,
          input.source,
          input.dkim,
          input.submitter ?? null,
          JSON.stringify(input.warnings),
          JSON.stringify(report),
          now.toISOString(),
        ],
      );
      if (!inserted) {
        // Stored before, or by another instance whose transaction committed while this one waited.
        const existing = await one<{ id: number }>(
          db,
          'SELECT id FROM reports WHERE organization = ? AND report_id = ?',
          [report.organization, report.reportId],
        );
        return { id: existing!.id, created: false };
      }
      await insertReportRows(db, inserted.id, report, checked.startMs);
      return { id: inserted.id, created: true };
    });
  }

  async listReports(filter: ReportFilter = {}): Promise<Page<StoredReportSummary>> {
    const where: string[] = ['r.start_ms >= ?', 'r.start_ms < ?'];
    const params: unknown[] = [
      timeBound(filter.since, 'since', false) ?? Number.MIN_SAFE_INTEGER,
      timeBound(filter.until, 'until', true) ?? Number.MAX_SAFE_INTEGER,
    ];
    if (filter.domain === '') where.push(TLSRPT_NO_POLICY_DOMAIN);
    else if (filter.domain !== undefined) {
      where.push('r.id IN (SELECT report FROM report_policies WHERE domain = ?)');
      params.push(domainKey(filter.domain));
    }
    if (filter.otherDomains === true) where.push(TLSRPT_OTHER_DOMAINS);
    if (filter.organization !== undefined) {
      if (typeof filter.organization !== 'string') throw storeInvalid('organization: must be a string');
      where.push('r.organization = ?');
      params.push(filter.organization);
    }
    const limit = count(filter.limit, 'limit', 100, LIST_MAX);
    const after = filter.cursor === undefined ? undefined : decodeCursor('reports', filter.cursor);
    const pageWhere = after ? [...where, '(r.start_ms, r.id) < (?, ?)'] : where;
    const pageParams = after ? [...params, ...after] : params;
    return this.snapshot(async (db) => {
      const total = await one<{ n: number }>(
        db,
        `SELECT count(*) AS n FROM reports r WHERE ${where.join(' AND ')}`,
        params,
      );
      const rows = await query<SummaryRow>(
        db,
        `SELECT ${SUMMARY_COLUMNS} FROM reports r WHERE ${pageWhere.join(' AND ')}
         ORDER BY r.start_ms DESC, r.id DESC LIMIT ?`,
        [...pageParams, limit + 1],
      );
      return takePage(
        rows.slice(0, limit).map((row) => reportSummary(row, true)),
        {
          more: rows.length > limit,
          total: total!.n,
          cursorOf: (i) => encodeCursor('reports', [rows[i]!.start_ms, rows[i]!.id]),
        },
      );
    });
  }

  getReport(id: number): Promise<StoredReport | undefined>;
  getReport(id: number, limits: { maxBytes: number }): Promise<StoredReport | OversizedReport | undefined>;
  async getReport(
    id: number,
    limits?: { maxBytes: number },
  ): Promise<StoredReport | OversizedReport | undefined> {
    if (!Number.isSafeInteger(id)) return undefined;
    return this.snapshot(async (db) => {
      if (limits) {
        const size = await one<{ bytes: number }>(
          db,
          `SELECT (octet_length(report_json) + octet_length(warnings) + coalesce(octet_length(submitter), 0))::bigint
             AS bytes FROM reports WHERE id = ?`,
          [id],
        );
        if (size === undefined) return undefined;
        if (size.bytes > limits.maxBytes) {
          const row = await one<SummaryRow>(db, `SELECT ${SUMMARY_COLUMNS} FROM reports r WHERE r.id = ?`, [
            id,
          ]);
          if (!row) return undefined;
          return { ...reportSummary(row, true), tooLarge: { bytes: size.bytes, maxBytes: limits.maxBytes } };
        }
      }
      const row = await one<ReportRow>(
        db,
        `SELECT r.*, ARRAY(SELECT DISTINCT domain FROM report_policies WHERE report = r.id AND domain <> '')
           AS domains
         FROM reports r WHERE r.id = ?`,
        [id],
      );
      if (!row) return undefined;
      return withReportContent<StoredReportSummary, TlsReport>(reportSummary(row), row);
    });
  }

  async deleteReports(ids: number[]): Promise<number[]> {
    const unique = checkedIds(ids);
    // report_policies and failures go with the report (ON DELETE CASCADE).
    return this.transaction((db) => deleteByIds(db, 'reports', unique));
  }

  async purgeReports(filter: PurgeFilter): Promise<{ deleted: number; remaining: number }> {
    const selection = purgeSelection(filter, TLSRPT_PURGE, LIST_MAX);
    return this.transaction((db) => deleteOldest(db, selection));
  }

  async saveRejected(input: Omit<RejectedInput, 'id' | 'receivedAt'>, now: Date): Promise<number> {
    if (!REPORT_SOURCES.includes(input.source))
      throw storeInvalid(`source: "${String(input.source)}" is not a report source`);
    if (typeof input.reason !== 'string') throw storeInvalid('reason: must be a string');
    if (!Number.isSafeInteger(input.size) || input.size < 0) throw storeInvalid('size: must be a byte count');
    return this.use(
      async () =>
        (await one<{ id: number }>(
          this.pool,
          'INSERT INTO rejected (source, submitter, reason, size, received_at) VALUES (?, ?, ?, ?, ?) RETURNING id',
          [input.source, input.submitter ?? null, input.reason, input.size, now.toISOString()],
        ))!.id,
    );
  }

  async listRejected(page: PageRequest = {}): Promise<Page<RejectedInput>> {
    const limit = count(page.limit, 'limit', 100, LIST_MAX);
    const after = page.cursor === undefined ? undefined : decodeCursor('rejected', page.cursor);
    return this.snapshot(async (db) => {
      const total = await one<{ n: number }>(db, 'SELECT count(*) AS n FROM rejected');
      const rows = await query<RejectedRow>(
        db,
        `SELECT id, source, ${clippedColumn('submitter')} AS submitter, ${clippedColumn('reason')} AS reason,
           size, received_at
         FROM rejected WHERE id < ? ORDER BY id DESC LIMIT ?`,
        [after?.[0] ?? Number.MAX_SAFE_INTEGER, limit + 1],
      );
      const items = rows.slice(0, limit).map(rejectedFromRow);
      return takePage(items, {
        more: rows.length > limit,
        total: total!.n,
        cursorOf: (i) => encodeCursor('rejected', [rows[i]!.id]),
      });
    });
  }

  async purgeRejected(filter: {
    before: string;
    limit: number;
  }): Promise<{ deleted: number; remaining: number }> {
    const before = new Date(timeBound(filter.before ?? '', 'before', false)!).toISOString();
    const limit = count(filter.limit, 'limit', 0, LIST_MAX);
    return this.transaction((db) =>
      deleteOldest(db, {
        table: 'rejected',
        where: ['received_at < ?'],
        params: [before],
        oldestBy: 'received_at',
        limit,
      }),
    );
  }

  async dailyCounts(domain: string, since: string, until: string): Promise<DailyCounts[]> {
    const from = timeBound(since, 'since', false) ?? Number.MIN_SAFE_INTEGER;
    const to = timeBound(until, 'until', true) ?? Number.MAX_SAFE_INTEGER;
    return this.use(() =>
      query<DailyCounts>(
        this.pool,
        `SELECT start_day AS day, sum(successful)::bigint AS successful, sum(failed)::bigint AS failed
         FROM report_policies WHERE domain = ? AND start_ms >= ? AND start_ms < ?
         GROUP BY start_day ORDER BY start_day COLLATE "C"`,
        [domainKey(domain), from, to],
      ),
    );
  }

  async failureBreakdown(
    domain: string,
    by: BreakdownKey,
    since?: string,
    until?: string,
  ): Promise<BreakdownRow[]> {
    if (by !== 'organization' && !Object.hasOwn(BREAKDOWN_COLUMNS, by)) {
      throw storeInvalid(`by: "${String(by)}" is not a breakdown key`);
    }
    const from = timeBound(since, 'since', false) ?? Number.MIN_SAFE_INTEGER;
    const to = timeBound(until, 'until', true) ?? Number.MAX_SAFE_INTEGER;
    // As in SQLite: "organization" sums the failed sessions of each summary, the others the
    // failure-details entries ("" for a detail the sender left out); keys grouped clipped.
    const grouped =
      by === 'organization'
        ? `SELECT ${clippedColumn('organization')} AS key, sum(failed)::bigint AS n FROM report_policies
           WHERE domain = ? AND start_ms >= ? AND start_ms < ? AND failed > 0 GROUP BY 1`
        : `SELECT coalesce(${clippedColumn(BREAKDOWN_COLUMNS[by])}, '') AS key, sum(count)::bigint AS n
           FROM failures WHERE domain = ? AND start_ms >= ? AND start_ms < ? GROUP BY 1`;
    return this.use(async () =>
      (
        await query<{ key: string; n: number }>(
          this.pool,
          `SELECT key, n FROM (${grouped}) g ORDER BY n DESC, key COLLATE "C" LIMIT ?`,
          [domainKey(domain), from, to, BREAKDOWN_MAX_ROWS],
        )
      ).map((row) => {
        const clipped: string[] = [];
        const key = clipText(row.key, 'key', clipped);
        return clipped.length > 0 ? { key, count: row.n, clipped: true } : { key, count: row.n };
      }),
    );
  }

  // ---- DMARC aggregate reports (postgres-dmarc.ts) ----

  saveDmarcReport(input: NewDmarcReport, now: Date): Promise<{ id: number; created: boolean }> {
    return this.dmarc.saveDmarcReport(input, now);
  }
  listDmarcReports(filter?: DmarcReportFilter): Promise<Page<DmarcReportSummary>> {
    return this.dmarc.listDmarcReports(filter);
  }
  getDmarcReport(id: number): Promise<StoredDmarcReport | undefined> {
    return this.dmarc.getDmarcReport(id);
  }
  deleteDmarcReports(ids: number[]): Promise<number[]> {
    return this.dmarc.deleteDmarcReports(ids);
  }
  purgeDmarcReports(filter: PurgeFilter): Promise<{ deleted: number; remaining: number }> {
    return this.dmarc.purgeDmarcReports(filter);
  }
  dmarcDailyCounts(domain: string, since: string, until: string): Promise<DmarcDailyCounts[]> {
    return this.dmarc.dmarcDailyCounts(domain, since, until);
  }
  dmarcSources(filter: DmarcSourceFilter): Promise<Page<DmarcSourceRow>> {
    return this.dmarc.dmarcSources(filter);
  }
  listOtherDomains(page?: PageRequest): Promise<Page<OtherDomainRow>> {
    return this.dmarc.listOtherDomains(page);
  }
  getPtrNames(ips: string[]): Promise<Map<string, { name: string; at: string }>> {
    return this.dmarc.getPtrNames(ips);
  }
  setPtrName(ip: string, name: string, now: Date): Promise<void> {
    return this.dmarc.setPtrName(ip, name, now);
  }

  // ---- monitoring (postgres-monitor.ts) ----

  recordCheck(outcome: CheckOutcome, now: Date): Promise<{ runId: number; opened: number[] }> {
    return this.monitor.recordCheck(outcome, now);
  }
  listCheckRuns(domain: string, page?: PageRequest): Promise<Page<CheckRunSummary>> {
    return this.monitor.listCheckRuns(domain, page);
  }
  getCheckRun(id: number): Promise<CheckRun | undefined> {
    return this.monitor.getCheckRun(id);
  }
  recentCheckRuns(domain: string, howMany: number): Promise<CheckRun[]> {
    return this.monitor.recentCheckRuns(domain, howMany);
  }
  purgeCheckRuns(filter: { before: string; limit: number }): Promise<{ deleted: number; remaining: number }> {
    return this.monitor.purgeCheckRuns(filter);
  }
  listAlerts(filter?: AlertFilter): Promise<Page<Alert>> {
    return this.monitor.listAlerts(filter);
  }
  openAlerts(domain?: string): Promise<Alert[]> {
    return this.monitor.openAlerts(domain);
  }
  dueDeliveries(now: Date, limit: number): Promise<Delivery[]> {
    return this.monitor.dueDeliveries(now, limit);
  }
  settleDelivery(
    id: number,
    result: { ok: true } | { ok: false; error: string; nextAttemptAt?: Date },
    now: Date,
  ): Promise<void> {
    return this.monitor.settleDelivery(id, result, now);
  }
  listDeliveries(filter: {
    alertId?: number;
    state?: Delivery['state'];
    limit?: number;
    cursor?: string;
  }): Promise<Page<Delivery>> {
    return this.monitor.listDeliveries(filter);
  }

  // ---- policy fetch log ----

  logFetch(entry: PolicyFetch): void {
    if (this.closed) return;
    this.fetchQueue.push({
      at: entry.at,
      domain: domainKey(String(entry.domain)),
      clientIp: String(entry.clientIp),
      userAgent: String(entry.userAgent).slice(0, USER_AGENT_MAX),
    });
    if (this.fetchQueue.length >= FETCH_BATCH) void this.flushFetches();
    else this.fetchTimer ??= setTimeout(() => void this.flushFetches(), FETCH_FLUSH_MS).unref();
  }

  async listFetches(domain: string, page: PageRequest = {}): Promise<Page<PolicyFetch>> {
    const limit = count(page.limit, 'limit', 100, LIST_MAX);
    const after = page.cursor === undefined ? undefined : decodeCursor('fetches', page.cursor);
    const key = domainKey(domain);
    if (this.closed) return this.use(async () => ({ items: [], nextCursor: null, total: 0 }));
    await this.flushFetches();
    return this.snapshot(async (db) => {
      const total = await one<{ n: number }>(db, 'SELECT count(*) AS n FROM fetches WHERE domain = ?', [key]);
      const rows = await query<{
        id: number;
        at: string;
        domain: string;
        client_ip: string;
        user_agent: string;
      }>(
        db,
        `SELECT id, at, domain, client_ip, substr(user_agent, 1, ${USER_AGENT_MAX}) AS user_agent
         FROM fetches WHERE domain = ? AND id < ? ORDER BY id DESC LIMIT ?`,
        [key, after?.[0] ?? Number.MAX_SAFE_INTEGER, limit + 1],
      );
      return takePage(
        rows.slice(0, limit).map((row) => ({
          at: row.at,
          domain: row.domain,
          clientIp: row.client_ip,
          userAgent: row.user_agent,
        })),
        {
          more: rows.length > limit,
          total: total!.n,
          cursorOf: (i) => encodeCursor('fetches', [rows[i]!.id]),
        },
      );
    });
  }

  /** Write the queued entries in one transaction, after any flush still running; on failure keep them. */
  private flushFetches(): Promise<void> {
    clearTimeout(this.fetchTimer);
    this.fetchTimer = undefined;
    this.flushing = this.flushing.then(async () => {
      if (this.fetchQueue.length === 0) return;
      const batch = this.fetchQueue;
      this.fetchQueue = [];
      try {
        await this.transaction(async (db) => {
          // Not acknowledged to anyone: no WAL flush for this commit (see the header comment).
          await db.query('SET LOCAL synchronous_commit = off');
          await query(
            db,
            `INSERT INTO fetches (at, domain, client_ip, user_agent)
             SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[])`,
            [
              batch.map((f) => pgText(f.at)),
              batch.map((f) => pgText(f.domain)),
              batch.map((f) => pgText(f.clientIp)),
              batch.map((f) => pgText(f.userAgent)),
            ],
          );
          // The newest FETCH_LOG_KEEP stay; at most twice the batch is deleted per flush.
          await query(
            db,
            `DELETE FROM fetches WHERE id IN (SELECT id FROM fetches
               WHERE id <= (SELECT max(id) FROM fetches) - ? ORDER BY id LIMIT ?)`,
            [FETCH_LOG_KEEP, 2 * batch.length],
          );
        }, true);
      } catch {
        // Unreachable database: retry with the next batch, keeping memory bounded.
        this.fetchQueue = [...batch, ...this.fetchQueue].slice(-FETCH_BACKLOG_MAX);
        if (!this.closed)
          this.fetchTimer ??= setTimeout(() => void this.flushFetches(), FETCH_FLUSH_MS).unref();
      }
    });
    return this.flushing;
  }

  // ---- the bulk-check queue (postgres-check-queue.ts) ----

  checkQueue(): CheckQueue {
    return this.checks;
  }

  // ---- settings ----

  async getSetting(key: string): Promise<string | undefined> {
    return this.use(
      async () =>
        (await one<{ value: string }>(this.pool, 'SELECT value FROM settings WHERE key = ?', [key]))?.value,
    );
  }

  async setSetting(key: string, value: string): Promise<void> {
    if (typeof key !== 'string' || key === '') throw storeInvalid('key: must be a non-empty string');
    if (typeof value !== 'string') throw storeInvalid(`${key}: the value must be a string`);
    await this.use(() =>
      query(
        this.pool,
        'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        [key, value],
      ),
    );
  }

  // ---- authentication ----

  async setAdminPassword(hash: string): Promise<void> {
    if (typeof hash !== 'string' || hash === '')
      throw storeInvalid('password hash: must be a non-empty string');
    await this.transaction(async (db) => {
      await query(
        db,
        'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        [ADMIN_PASSWORD_SETTING, hash],
      );
      await query(db, 'DELETE FROM sessions');
    });
  }

  async createSession(
    session: { idHash: string; expiresAt: Date },
    issuedUnder: string,
    now: Date,
  ): Promise<boolean> {
    const expires = session.expiresAt.getTime();
    return this.transaction(async (db) => {
      // FOR SHARE: a password change waits for this commit (and then ends this session too), or
      // committed before and is read here.
      const current = await one<{ value: string }>(db, 'SELECT value FROM settings WHERE key = ? FOR SHARE', [
        ADMIN_PASSWORD_SETTING,
      ]);
      if (current?.value !== issuedUnder) return false;
      await query(
        db,
        'DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions WHERE expires_ms <= ? LIMIT ?)',
        [now.getTime(), AUTH_PURGE_BATCH],
      );
      await query(
        db,
        `INSERT INTO sessions (id_hash, expires_ms) VALUES (?, ?)
         ON CONFLICT (id_hash) DO UPDATE SET expires_ms = excluded.expires_ms`,
        [session.idHash, expires],
      );
      await query(
        db,
        `DELETE FROM sessions WHERE id_hash IN
           (SELECT id_hash FROM sessions ORDER BY expires_ms DESC, id_hash COLLATE "C" OFFSET ?)`,
        [SESSIONS_KEEP],
      );
      return true;
    });
  }

  async sessionValid(idHash: string, now: Date): Promise<boolean> {
    return this.use(
      async () =>
        (await one(this.pool, 'SELECT 1 FROM sessions WHERE id_hash = ? AND expires_ms > ?', [
          idHash,
          now.getTime(),
        ])) !== undefined,
    );
  }

  async endSession(idHash: string): Promise<void> {
    await this.use(() => query(this.pool, 'DELETE FROM sessions WHERE id_hash = ?', [idHash]));
  }

  async createApiToken(token: NewApiToken): Promise<void> {
    await this.transaction(async (db) => {
      // Count, then insert: one decision at a time across instances (see the header comment).
      await db.query('SELECT pg_advisory_xact_lock($1)', [TOKENS_LOCK]);
      const tokens = await one<{ n: number }>(db, 'SELECT count(*) AS n FROM api_tokens');
      if (tokens!.n >= MAX_API_TOKENS) {
        throw storeInvalid(
          `there are already ${MAX_API_TOKENS} API tokens; revoke one before creating another`,
        );
      }
      await query(db, 'INSERT INTO api_tokens (id, name, hash, created_at) VALUES (?, ?, ?, ?)', [
        token.id,
        token.name,
        token.hash,
        token.createdAt,
      ]);
    });
  }

  async listApiTokens(): Promise<ApiTokenInfo[]> {
    return this.use(async () =>
      (
        await query<{ id: string; name: string; created_at: string }>(
          this.pool,
          'SELECT id, name, created_at FROM api_tokens ORDER BY created_at COLLATE "C", id COLLATE "C"',
        )
      ).map((row) => ({ id: row.id, name: row.name, createdAt: row.created_at })),
    );
  }

  async findApiToken(hash: string): Promise<string | undefined> {
    return this.use(
      async () =>
        (await one<{ id: string }>(this.pool, 'SELECT id FROM api_tokens WHERE hash = ?', [hash]))?.id,
    );
  }

  async deleteApiToken(id: string): Promise<boolean> {
    return this.use(
      async () =>
        (await query(this.pool, 'DELETE FROM api_tokens WHERE id = ? RETURNING id', [id])).length > 0,
    );
  }

  async reserveAuthAttempt(
    keys: AuthAttemptKeys,
    limits: AuthAttemptLimits,
    now: Date,
  ): Promise<AuthReservation> {
    const nowMs = now.getTime();
    return this.transaction(async (db): Promise<AuthReservation> => {
      // Count, then insert: one throttle decision at a time across instances (see the header comment).
      await db.query('SELECT pg_advisory_xact_lock($1)', [AUTH_LOCK]);
      await query(
        db,
        'DELETE FROM auth_attempts WHERE id IN (SELECT id FROM auth_attempts WHERE at_ms <= ? ORDER BY at_ms LIMIT ?)',
        [nowMs - limits.windowMs, AUTH_PURGE_BATCH],
      );
      const refused = await clientRefusal(db, keys.client, limits, nowMs);
      if (refused) return refused;
      const account = await one<{ n: number }>(
        db,
        'SELECT count(*) AS n FROM (SELECT 1 FROM auth_attempts WHERE account = ? AND at_ms > ? LIMIT ?) a',
        [keys.account, nowMs - limits.windowMs, limits.accountMax + ACCOUNT_EXCESS_COUNTED],
      );
      const inserted = await one<{ id: number }>(
        db,
        "INSERT INTO auth_attempts (client_key, account, state, at_ms) VALUES (?, ?, 'checking', ?) RETURNING id",
        [keys.client, keys.account, nowMs],
      );
      // Bounded: beyond AUTH_ATTEMPTS_KEEP rows the oldest attempts go first, a few at a time.
      await query(
        db,
        `DELETE FROM auth_attempts WHERE id IN (SELECT id FROM auth_attempts
           WHERE id <= (SELECT max(id) FROM auth_attempts) - ? ORDER BY id LIMIT ?)`,
        [AUTH_ATTEMPTS_KEEP, AUTH_PURGE_BATCH],
      );
      return { ok: true, id: inserted!.id, accountExcess: Math.max(0, account!.n + 1 - limits.accountMax) };
    });
  }

  async authAttemptAllowed(
    keys: AuthAttemptKeys,
    limits: AuthAttemptLimits,
    now: Date,
  ): Promise<{ ok: true } | { ok: false; retryAfterMs: number }> {
    return this.use(
      async () => (await clientRefusal(this.pool, keys.client, limits, now.getTime())) ?? { ok: true },
    );
  }

  async settleAuthAttempt(id: number, success: boolean): Promise<void> {
    if (!Number.isSafeInteger(id)) return;
    await this.use(() =>
      success
        ? query(this.pool, 'DELETE FROM auth_attempts WHERE id = ?', [id])
        : query(this.pool, "UPDATE auth_attempts SET state = 'failed' WHERE id = ?", [id]),
    );
  }

  async clearAuthAttempts(): Promise<void> {
    await this.use(() => query(this.pool, 'DELETE FROM auth_attempts'));
  }

  async durability(): Promise<StoreDurability> {
    return this.use(async () => {
      const row = await one<{ sync: string }>(
        this.pool,
        "SELECT current_setting('synchronous_commit') AS sync",
      );
      return { journalMode: 'postgresql-wal', synchronous: row!.sync.toUpperCase() };
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.cluster.close();
    await this.flushFetches();
    this.closed = true;
    clearTimeout(this.fetchTimer);
    this.fetchTimer = undefined;
    await this.pool.end();
  }

  // ---- plumbing ----

  /**
   * Run database work; database failures become STORE_UNAVAILABLE (cannot be reached) or STORE_IO,
   * naming the database (never its password).
   */
  private async use<T>(work: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError('STORE_IO', `${this.where}: the store is closed`);
    try {
      return await work();
    } catch (err) {
      throw storeFailure(err, this.where);
    }
  }

  /** One READ COMMITTED transaction on one pooled connection; rolled back when `work` throws. */
  private transaction<T>(work: (db: pg.PoolClient) => Promise<T>, internal = false): Promise<T> {
    return this.within('BEGIN', work, internal);
  }

  /** A read-only snapshot: every query of `work` sees the same committed state (counts match pages). */
  private snapshot<T>(work: (db: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.within('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', work);
  }

  private within<T>(begin: string, work: (db: pg.PoolClient) => Promise<T>, internal = false): Promise<T> {
    const run = async () => {
      const client = await this.pool.connect();
      let broken: Error | undefined;
      // The pool stops listening for a client's 'error' while it is checked out: a connection that
      // ends between two queries (a server restart) would be an unhandled 'error' event and end the
      // process. Kept instead: the next query fails as STORE_UNAVAILABLE and the client is discarded.
      const lost = (err: Error) => {
        broken = err;
      };
      client.on('error', lost);
      try {
        await client.query(begin);
        const result = await work(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackFailed: Error) => {
          broken = rollbackFailed;
        });
        throw err;
      } finally {
        client.off('error', lost);
        client.release(broken);
      }
    };
    // The fetch log's own flush runs during close(), after `closed` may be set.
    return internal ? run() : this.use(run);
  }
}

async function readDomain(db: Db, key: string, forUpdate = false): Promise<Domain | undefined> {
  const row = await one<DomainRow>(
    db,
    `SELECT * FROM domains WHERE name = ?${forUpdate ? ' FOR UPDATE' : ''}`,
    [key],
  );
  return row && domainFromRow(row);
}

async function insertPolicyVersion(db: Db, domain: string, policyId: string, policyText: string, at: string) {
  await query(
    db,
    'INSERT INTO policy_versions (domain, policy_id, policy_text, created_at) VALUES (?, ?, ?, ?)',
    [domain, policyId, policyText, at],
  );
}

/** A report's policy rows and their failure rows; one INSERT of the failures per policy. */
async function insertReportRows(db: Db, reportId: number, report: TlsReport, startMs: number): Promise<void> {
  const startDay = new Date(startMs).toISOString().slice(0, 10);
  for (const p of report.policies) {
    const domain = domainKey(p.domain);
    const policyRow = await one<{ id: number }>(
      db,
      `INSERT INTO report_policies (report, type, domain, start_ms, start_day, organization, successful, failed)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
      [reportId, p.type, domain, startMs, startDay, report.organization, p.successful, p.failed],
    );
    if (p.failures.length === 0) continue;
    const column = <T>(pick: (f: (typeof p.failures)[number]) => T) => p.failures.map(pick);
    const text = (value: string | undefined) => (value === undefined ? null : pgText(value));
    await query(
      db,
      `INSERT INTO failures (policy, domain, start_ms, result_type, count, sending_mta_ip,
         receiving_mx_hostname, receiving_mx_helo, receiving_ip, additional_information, failure_reason_code)
       SELECT ?::bigint, ?::text, ?::bigint, * FROM unnest(?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[],
         ?::text[], ?::text[])`,
      [
        policyRow!.id,
        domain,
        startMs,
        column((f) => pgText(f.resultType)),
        column((f) => f.count),
        column((f) => text(f.sendingMtaIp)),
        column((f) =>
          text(f.receivingMxHostname === undefined ? undefined : normalizeHost(f.receivingMxHostname)),
        ),
        column((f) => text(f.receivingMxHelo)),
        column((f) => text(f.receivingIp)),
        column((f) => text(f.additionalInformation)),
        column((f) => text(f.failureReasonCode)),
      ],
    );
  }
}

/** The refusal when the client key has clientMax failed or in-flight attempts in the window. */
async function clientRefusal(
  db: Db,
  client: string,
  limits: AuthAttemptLimits,
  nowMs: number,
): Promise<{ ok: false; retryAfterMs: number } | undefined> {
  const recent = await one<{ n: number; oldest: number | null }>(
    db,
    `SELECT count(*) AS n, min(at_ms) AS oldest FROM
       (SELECT at_ms FROM auth_attempts WHERE client_key = ? AND at_ms > ? ORDER BY at_ms LIMIT ?) a`,
    [client, nowMs - limits.windowMs, limits.clientMax],
  );
  if (recent!.n < limits.clientMax) return undefined;
  return { ok: false, retryAfterMs: Math.max(1, recent!.oldest! + limits.windowMs - nowMs) };
}

function unknownDomain(name: string): StoreError {
  return new StoreError('STORE_DOMAIN_UNKNOWN', `domain ${domainKey(name)} is not configured`);
}
