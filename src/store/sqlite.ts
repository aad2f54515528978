// The embedded default Store: one SQLite file, <dataDir>/mxguard.sqlite, through better-sqlite3.
//
// Durability: WAL journal with synchronous=FULL, so every commit is fsynced before the call
// returns; a method's promise resolves only after its transaction committed, so an acknowledged
// report or policy change survives kill -9 and power loss, and a crash never leaves half a report
// (each report is one transaction). The fetch log is the exception: it is written in batches and
// its commits skip the fsync (synchronous=NORMAL for that transaction only; WAL keeps that safe
// against corruption, and a later FULL commit syncs it too), because nobody is told it was saved.
//
// Concurrency: several processes may open the same file (`serve` and the `domain`/`reports` CLI
// commands): WAL lets readers run beside a writer, write transactions start IMMEDIATE and wait up
// to BUSY_TIMEOUT_MS for each other.
//
// Time ranges: a report belongs to the instant its date range starts (RFC 8460 §4.4
// start-datetime). A report spanning several days counts on its start day, in the daily chart and
// in every since/until filter. `since` is inclusive, `until` exclusive; a date without a time
// (YYYY-MM-DD) as `until` means the end of that day. Purging and retention use the same instant:
// `before` is exclusive, and a date as `before` means the start of that day.
//
// Lists (reports, rejected input, the fetch log) are pages (src/store/paging.ts): keyset on
// (start_ms, id) for reports and on id for the others, so a page never repeats or skips an item
// when rows arrive between pages; each page has a byte cap, and list views read long text only up
// to the clip length, so rows of any size (an older mxguard stored megabyte strings) stay cheap.
// Check runs page on (at_ms, id), alerts and deliveries on id.
//
// Monitoring (src/store/monitor-types.ts): a check's outcome (run, opened and resolved alerts, their
// deliveries) is one IMMEDIATE transaction; the partial unique index alerts_one_open keeps one open
// alert per (domain, code, subject) whichever serve process writes, and a key already open is
// skipped. Findings are bounded while the row is built (monitor-rules.ts) and each distinct one is
// stored once (table findings); a run lists their ids.
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { normalizeHost } from '../common/hostname.js';
import type { TlsReport } from '../tlsrpt/report.js';
import { count, timeBound } from './bounds.js';
import { type CheckQueue, SqliteCheckQueue } from './check-queue.js';
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
import { migrate } from './migrations.js';
import {
  type AlertRow,
  alertFilterWhere,
  alertFromRow,
  type CheckRunRow,
  type DeliveryRow,
  deliveryFilterWhere,
  deliveryFromRow,
  FINDINGS_PER_RUN_SWEPT,
  LONG_LIST_MAX,
  RUN_COLUMNS,
  runSummaryFromRow,
} from './monitor-rows.js';
import { checkedOutcome, clipStored } from './monitor-rules.js';
import {
  type Alert,
  type AlertFilter,
  type CheckOutcome,
  type CheckRun,
  type CheckRunSummary,
  type Delivery,
  MAX_DELIVERY_ERROR,
  MAX_RECENT_CHECK_RUNS,
  type NewDelivery,
  type StoredFinding,
} from './monitor-types.js';
import { type OtherDomainRow, TLSRPT_NO_POLICY_DOMAIN, TLSRPT_OTHER_DOMAINS } from './other-domains.js';
import { clippedColumn, clipText, decodeCursor, encodeCursor, LIST_DOMAINS_MAX, takePage } from './paging.js';
import { purgeSelection, TLSRPT_PURGE } from './purge-rules.js';
import { checkNewReport } from './report-rules.js';
import {
  type DomainRow,
  domainFromRow,
  type RejectedRow,
  type ReportContentRow,
  type ReportSummaryRow,
  rejectedFromRow,
  reportSummary,
  watchOnlyFlag,
  withReportContent,
} from './sql-rows.js';
import { bumpDomainsVersion, SqliteCluster } from './sqlite-cluster.js';
import { deleteByIds, deleteOldest } from './sqlite-delete.js';
import { SqliteDmarcStore } from './sqlite-dmarc.js';
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

export const DATABASE_FILE = 'mxguard.sqlite';
const BUSY_TIMEOUT_MS = 10_000;
/** Fetch log batching: written every second, or at once when this many entries wait. */
export const FETCH_BATCH = 100;
export const FETCH_FLUSH_MS = 1000;
/** Entries kept in memory while the database refuses writes; the oldest go first beyond this. */
export const FETCH_BACKLOG_MAX = 10_000;
/** The fetch log keeps this many newest entries (pruned at most once a minute). */
export const FETCH_LOG_KEEP = 200_000;
/** Longest User-Agent kept: it is whatever the client sent. */
export const USER_AGENT_MAX = 512;
/**
 * Rows of a breakdown: the biggest groups first (sending IPs are attacker-chosen and unbounded).
 * With keys clipped to LIST_TEXT_MAX, the four breakdowns of the statistics stay under 1 MiB.
 */
export const BREAKDOWN_MAX_ROWS = 100;
export const LIST_MAX = 10_000;
/** Most API tokens at once. */
export const MAX_API_TOKENS = 100;

/** PRAGMA synchronous reads back as a number: 0..3. */
const SYNCHRONOUS_NAMES = ['OFF', 'NORMAL', 'FULL', 'EXTRA'];

/**
 * Open (creating when needed) the store in `dataDir` (its file `path`, by default DATABASE_FILE there)
 * and bring its schema up to date.
 */
export async function openSqliteStore(
  dataDir: string,
  path = join(dataDir, DATABASE_FILE),
  { bulk = false }: { bulk?: boolean } = {},
): Promise<Store> {
  let db: Database.Database | undefined;
  try {
    mkdirSync(dirname(path), { recursive: true });
    db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
    // WAL is a property of the file; setting it again is a no-op.
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new Error(`cannot switch to WAL journal mode (got ${String(mode)})`);
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    migrate(db);
    return new SqliteStore(db, path, bulk);
  } catch (err) {
    db?.close();
    if (err instanceof StoreError) throw err;
    throw new StoreError('STORE_IO', `${path}: cannot open the database: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** A report as list views read it (SUMMARY_COLUMNS): clipped text, at most LIST_DOMAINS_MAX + 1 domains, as JSON. */
interface SummaryRow extends Omit<ReportSummaryRow, 'domains'> {
  start_ms: number;
  domains: string;
}

type ReportRow = SummaryRow & ReportContentRow;

const SUMMARY_COLUMNS = `r.id, r.start_ms, ${clippedColumn('r.organization')} AS organization,
  ${clippedColumn('r.report_id')} AS report_id, r.start_at, r.end_at, r.successful, r.failed, r.source,
  r.dkim, r.received_at,
  (SELECT json_group_array(d) FROM (SELECT DISTINCT ${clippedColumn('domain')} AS d FROM report_policies
     WHERE report = r.id AND domain <> '' ORDER BY d LIMIT ${LIST_DOMAINS_MAX + 1})) AS domains`;

/** Sessions kept at most (the ones expiring last); only the admin creates them, by logging in. */
export const SESSIONS_KEEP = 1000;
/** Rows of the login throttle kept at most: beyond this the oldest attempts are forgotten first. */
export const AUTH_ATTEMPTS_KEEP = 100_000;
/** Expired (or surplus) throttle rows deleted per reservation: small steps, never one long delete. */
export const AUTH_PURGE_BATCH = 100;
/** How far beyond accountMax the account's attempts are counted (bounds the count's index scan). */
export const ACCOUNT_EXCESS_COUNTED = 1000;

class SqliteStore implements Store {
  private closed = false;
  private fetchQueue: PolicyFetch[] = [];
  private fetchTimer: NodeJS.Timeout | undefined;
  private readonly dmarc: SqliteDmarcStore;
  private readonly cluster: SqliteCluster;

  constructor(
    private readonly db: Database.Database,
    private readonly path: string,
    bulk: boolean,
  ) {
    this.dmarc = new SqliteDmarcStore(db, (step) => this.use(step), bulk ? 'eager' : 'shared');
    this.cluster = new SqliteCluster(db, (step) => this.use(step));
  }

  // ---- several processes on one file (sqlite-cluster.ts) ----

  watchDomains(listener: () => void): Promise<DomainWatch> {
    return this.cluster.watchDomains(listener);
  }

  tryLock(name: string): Promise<HeldLock | undefined> {
    return this.cluster.tryLock(name);
  }

  // ---- domains ----

  async listDomains(): Promise<Domain[]> {
    return this.use(() =>
      this.db.prepare<[], DomainRow>('SELECT * FROM domains ORDER BY name').all().map(domainFromRow),
    );
  }

  async getDomain(name: string): Promise<Domain | undefined> {
    return this.use(() => this.readDomain(domainKey(name)));
  }

  async addDomain(name: string, settings: DomainSettings, now: Date): Promise<Domain> {
    const key = validDomainName(name);
    const valid = validSettings(settings);
    const watchOnly = watchOnlyFlag(settings.watchOnly, false);
    return this.use(() =>
      this.db
        .transaction(() => {
          if (this.readDomain(key))
            throw new StoreError('STORE_DOMAIN_EXISTS', `domain ${key} already exists`);
          const retired = this.db
            .prepare<[string], string>('SELECT policy_id FROM retired_policy_ids WHERE domain = ?')
            .pluck()
            .get(key);
          const policyId = nextPolicyId(retired, now);
          const policyText = policyTextFor(valid);
          const at = now.toISOString();
          this.db
            .prepare(
              `INSERT INTO domains (name, mode, mx, max_age, rua, policy_id, policy_text, created_at, updated_at,
                 watch_only)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            )
            .run(
              key,
              valid.mode,
              JSON.stringify(valid.mx),
              valid.maxAge,
              JSON.stringify(valid.rua),
              policyId,
              policyText,
              at,
              at,
              watchOnly ? 1 : 0,
            );
          this.insertPolicyVersion(key, policyId, policyText, at);
          bumpDomainsVersion(this.db);
          return this.readDomain(key)!;
        })
        .immediate(),
    );
  }

  async updateDomain(name: string, patch: Partial<DomainSettings>, now: Date): Promise<Domain> {
    const key = domainKey(name);
    if (typeof patch !== 'object' || patch === null)
      throw new StoreError('STORE_INVALID', 'patch: must be an object');
    return this.use(() =>
      this.db
        .transaction(() => {
          const current = this.readDomain(key);
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
          const watchChanged = watchOnly !== wasWatchOnly;
          if (!policyChanged && !ruaChanged && !watchChanged) return current;
          const at = now.toISOString();
          const policyId = policyChanged ? nextPolicyId(current.policyId, now) : current.policyId;
          this.db
            .prepare(
              `UPDATE domains SET mode = ?, mx = ?, max_age = ?, rua = ?, policy_id = ?, policy_text = ?,
               updated_at = ?, watch_only = ? WHERE name = ?`,
            )
            .run(
              merged.mode,
              JSON.stringify(merged.mx),
              merged.maxAge,
              JSON.stringify(merged.rua),
              policyId,
              policyText,
              at,
              watchOnly ? 1 : 0,
              key,
            );
          if (policyChanged) this.insertPolicyVersion(key, policyId, policyText, at);
          bumpDomainsVersion(this.db);
          return this.readDomain(key)!;
        })
        .immediate(),
    );
  }

  async removeDomain(name: string): Promise<boolean> {
    const key = domainKey(name);
    return this.use(() =>
      this.db
        .transaction(() => {
          const current = this.readDomain(key);
          if (!current) return false;
          this.db
            .prepare(
              `INSERT INTO retired_policy_ids (domain, policy_id) VALUES (?, ?)
               ON CONFLICT (domain) DO UPDATE SET policy_id = excluded.policy_id`,
            )
            .run(key, current.policyId);
          // Its check runs, alerts and deliveries go with it (ON DELETE CASCADE, migration 4).
          this.db.prepare('DELETE FROM domains WHERE name = ?').run(key);
          bumpDomainsVersion(this.db);
          return true;
        })
        .immediate(),
    );
  }

  async policyHistory(name: string): Promise<PolicyVersion[]> {
    return this.use(() =>
      this.db
        .prepare<[string], PolicyVersion>(
          `SELECT policy_id AS policyId, policy_text AS policyText, created_at AS createdAt
           FROM policy_versions WHERE domain = ? ORDER BY policy_id DESC`,
        )
        .all(domainKey(name)),
    );
  }

  private readDomain(key: string): Domain | undefined {
    const row = this.db.prepare<[string], DomainRow>('SELECT * FROM domains WHERE name = ?').get(key);
    return row && domainFromRow(row);
  }

  private insertPolicyVersion(domain: string, policyId: string, policyText: string, at: string): void {
    this.db
      .prepare('INSERT INTO policy_versions (domain, policy_id, policy_text, created_at) VALUES (?, ?, ?, ?)')
      .run(domain, policyId, policyText, at);
  }

  // ---- reports ----

  async saveReport(input: NewReport, now: Date): Promise<{ id: number; created: boolean }> {
    const checked = checkNewReport(input);
    const { report } = input;
    return this.use(() =>
      this.db
        .transaction(() => {
          const inserted = this.db
            .prepare<unknown[], { id: number }>(
              `INSERT INTO reports (organization, report_id, start_at, end_at, start_ms, successful, failed,
                 source, dkim, submitter, warnings, report_json, received_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (organization, report_id) DO NOTHING RETURNING id`,
            )
            .get(
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
            );
          if (!inserted) {
            const id = this.db
              .prepare<[string, string], number>(
                'SELECT id FROM reports WHERE organization = ? AND report_id = ?',
              )
              .pluck()
              .get(report.organization, report.reportId)!;
            return { id, created: false };
          }
          this.insertReportRows(inserted.id, report, checked.startMs);
          return { id: inserted.id, created: true };
        })
        .immediate(),
    );
  }

  private insertReportRows(reportId: number, report: TlsReport, startMs: number): void {
    const startDay = new Date(startMs).toISOString().slice(0, 10);
    const insertPolicy = this.db.prepare<unknown[], { id: number }>(
      `INSERT INTO report_policies (report, type, domain, start_ms, start_day, organization, successful, failed)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    );
    const insertFailure = this.db.prepare(
      `INSERT INTO failures (policy, domain, start_ms, result_type, count, sending_mta_ip,
         receiving_mx_hostname, receiving_mx_helo, receiving_ip, additional_information, failure_reason_code)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const p of report.policies) {
      const domain = domainKey(p.domain);
      const policyRow = insertPolicy.get(
        reportId,
        p.type,
        domain,
        startMs,
        startDay,
        report.organization,
        p.successful,
        p.failed,
      )!;
      for (const f of p.failures) {
        insertFailure.run(
          policyRow.id,
          domain,
          startMs,
          f.resultType,
          f.count,
          f.sendingMtaIp ?? null,
          f.receivingMxHostname === undefined ? null : normalizeHost(f.receivingMxHostname),
          f.receivingMxHelo ?? null,
          f.receivingIp ?? null,
          f.additionalInformation ?? null,
          f.failureReasonCode ?? null,
        );
      }
    }
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
    return this.use(() =>
      this.db.transaction(() => {
        const total = this.db
          .prepare<unknown[], number>(`SELECT count(*) FROM reports r WHERE ${where.join(' AND ')}`)
          .pluck()
          .get(...params)!;
        const rows = this.db
          .prepare<unknown[], SummaryRow>(
            `SELECT ${SUMMARY_COLUMNS} FROM reports r WHERE ${pageWhere.join(' AND ')}
             ORDER BY r.start_ms DESC, r.id DESC LIMIT ?`,
          )
          .all(...pageParams, limit + 1);
        const items = rows.slice(0, limit).map((row) => summaryFromRow(row, true));
        return takePage(items, {
          more: rows.length > limit,
          total,
          cursorOf: (i) => encodeCursor('reports', [rows[i]!.start_ms, rows[i]!.id]),
        });
      })(),
    );
  }

  getReport(id: number): Promise<StoredReport | undefined>;
  getReport(id: number, limits: { maxBytes: number }): Promise<StoredReport | OversizedReport | undefined>;
  async getReport(
    id: number,
    limits?: { maxBytes: number },
  ): Promise<StoredReport | OversizedReport | undefined> {
    if (!Number.isSafeInteger(id)) return undefined;
    return this.use(() => {
      if (limits) {
        // octet_length reads the sizes from the row, not the values (SQLite 3.43+).
        const bytes = this.db
          .prepare<[number], number>(
            `SELECT octet_length(report_json) + octet_length(warnings) + coalesce(octet_length(submitter), 0)
             FROM reports WHERE id = ?`,
          )
          .pluck()
          .get(id);
        if (bytes === undefined) return undefined;
        if (bytes > limits.maxBytes) {
          const row = this.db
            .prepare<[number], SummaryRow>(`SELECT ${SUMMARY_COLUMNS} FROM reports r WHERE r.id = ?`)
            .get(id);
          if (!row) return undefined;
          return { ...summaryFromRow(row, true), tooLarge: { bytes, maxBytes: limits.maxBytes } };
        }
      }
      const row = this.db
        .prepare<[number], ReportRow>(
          `SELECT r.*, (SELECT json_group_array(DISTINCT domain) FROM report_policies
                          WHERE report = r.id AND domain <> '') AS domains
           FROM reports r WHERE r.id = ?`,
        )
        .get(id);
      if (!row) return undefined;
      return withReportContent<StoredReportSummary, TlsReport>(summaryFromRow(row), row);
    });
  }

  async deleteReports(ids: number[]): Promise<number[]> {
    // report_policies and failures go with the report (ON DELETE CASCADE).
    return this.use(() => deleteByIds(this.db, 'reports', ids));
  }

  async purgeReports(filter: PurgeFilter): Promise<{ deleted: number; remaining: number }> {
    const selection = purgeSelection(filter, TLSRPT_PURGE, LIST_MAX);
    return this.use(() => deleteOldest(this.db, selection));
  }

  async saveRejected(input: Omit<RejectedInput, 'id' | 'receivedAt'>, now: Date): Promise<number> {
    if (!REPORT_SOURCES.includes(input.source))
      throw storeInvalid(`source: "${String(input.source)}" is not a report source`);
    if (typeof input.reason !== 'string') throw storeInvalid('reason: must be a string');
    if (!Number.isSafeInteger(input.size) || input.size < 0) throw storeInvalid('size: must be a byte count');
    return this.use(() =>
      Number(
        this.db
          .prepare(
            'INSERT INTO rejected (source, submitter, reason, size, received_at) VALUES (?, ?, ?, ?, ?)',
          )
          .run(input.source, input.submitter ?? null, input.reason, input.size, now.toISOString())
          .lastInsertRowid,
      ),
    );
  }

  async listRejected(page: PageRequest = {}): Promise<Page<RejectedInput>> {
    const limit = count(page.limit, 'limit', 100, LIST_MAX);
    const after = page.cursor === undefined ? undefined : decodeCursor('rejected', page.cursor);
    return this.use(() =>
      this.db.transaction(() => {
        const total = this.db.prepare<[], number>('SELECT count(*) FROM rejected').pluck().get()!;
        const rows = this.db
          .prepare<unknown[], RejectedRow>(
            `SELECT id, source, ${clippedColumn('submitter')} AS submitter, ${clippedColumn('reason')} AS reason,
               size, received_at
             FROM rejected WHERE id < ? ORDER BY id DESC LIMIT ?`,
          )
          .all(after?.[0] ?? Number.MAX_SAFE_INTEGER, limit + 1);
        const items = rows.slice(0, limit).map(rejectedFromRow);
        return takePage(items, {
          more: rows.length > limit,
          total,
          cursorOf: (i) => encodeCursor('rejected', [rows[i]!.id]),
        });
      })(),
    );
  }

  async purgeRejected(filter: {
    before: string;
    limit: number;
  }): Promise<{ deleted: number; remaining: number }> {
    const before = new Date(timeBound(filter.before ?? '', 'before', false)!).toISOString();
    const limit = count(filter.limit, 'limit', 0, LIST_MAX);
    return this.use(() =>
      deleteOldest(this.db, {
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
      this.db
        .prepare<[string, number, number], DailyCounts>(
          `SELECT start_day AS day, sum(successful) AS successful, sum(failed) AS failed
           FROM report_policies WHERE domain = ? AND start_ms >= ? AND start_ms < ?
           GROUP BY start_day ORDER BY start_day`,
        )
        .all(domainKey(domain), from, to),
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
    // "organization" counts the failed sessions of each sender's summaries (every failure, with or
    // without failure-details); the others sum the failure-details entries. A detail the sender
    // left out is grouped under the key "".
    // Keys are grouped and shown clipped: stored by an older mxguard, they may be megabytes long.
    const sql =
      by === 'organization'
        ? `SELECT ${clippedColumn('organization')} AS key, sum(failed) AS count FROM report_policies
           WHERE domain = ? AND start_ms >= ? AND start_ms < ? AND failed > 0 GROUP BY key`
        : `SELECT coalesce(${clippedColumn(BREAKDOWN_COLUMNS[by])}, '') AS key, sum(count) AS count FROM failures
           WHERE domain = ? AND start_ms >= ? AND start_ms < ? GROUP BY key`;
    return this.use(() =>
      this.db
        .prepare<[string, number, number, number], BreakdownRow>(`${sql} ORDER BY count DESC, key LIMIT ?`)
        .all(domainKey(domain), from, to, BREAKDOWN_MAX_ROWS)
        .map((row) => {
          const clipped: string[] = [];
          const key = clipText(row.key, 'key', clipped);
          return clipped.length > 0 ? { key, count: row.count, clipped: true } : row;
        }),
    );
  }

  // ---- DMARC aggregate reports (sqlite-dmarc.ts) ----

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
  getPtrNames(ips: string[]): Promise<Map<string, { name: string; at: string }>> {
    return this.dmarc.getPtrNames(ips);
  }
  setPtrName(ip: string, name: string, now: Date): Promise<void> {
    return this.dmarc.setPtrName(ip, name, now);
  }
  listOtherDomains(page?: PageRequest): Promise<Page<OtherDomainRow>> {
    return this.dmarc.listOtherDomains(page);
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
    if (this.fetchQueue.length >= FETCH_BATCH) this.flushFetches();
    else this.fetchTimer ??= setTimeout(() => this.flushFetches(), FETCH_FLUSH_MS).unref();
  }

  async listFetches(domain: string, page: PageRequest = {}): Promise<Page<PolicyFetch>> {
    const limit = count(page.limit, 'limit', 100, LIST_MAX);
    const after = page.cursor === undefined ? undefined : decodeCursor('fetches', page.cursor);
    const key = domainKey(domain);
    return this.use(() => {
      this.flushFetches();
      return this.db.transaction(() => {
        const total = this.db
          .prepare<[string], number>('SELECT count(*) FROM fetches WHERE domain = ?')
          .pluck()
          .get(key)!;
        const rows = this.db
          .prepare<[string, number, number], PolicyFetch & { id: number }>(
            `SELECT id, at, domain, client_ip AS clientIp, substr(user_agent, 1, ${USER_AGENT_MAX}) AS userAgent
             FROM fetches WHERE domain = ? AND id < ? ORDER BY id DESC LIMIT ?`,
          )
          .all(key, after?.[0] ?? Number.MAX_SAFE_INTEGER, limit + 1);
        return takePage(
          rows.slice(0, limit).map(({ id: _id, ...fetch }) => fetch),
          { more: rows.length > limit, total, cursorOf: (i) => encodeCursor('fetches', [rows[i]!.id]) },
        );
      })();
    });
  }

  /** Write the queued fetch log entries in one transaction; on failure keep them for the next try. */
  private flushFetches(): void {
    clearTimeout(this.fetchTimer);
    this.fetchTimer = undefined;
    if (this.fetchQueue.length === 0 || !this.db.open) return;
    const batch = this.fetchQueue;
    this.fetchQueue = [];
    try {
      // Not acknowledged to anyone: no fsync for this commit (see the header comment).
      this.db.pragma('synchronous = NORMAL');
      try {
        const insert = this.db.prepare(
          'INSERT INTO fetches (at, domain, client_ip, user_agent) VALUES (?, ?, ?, ?)',
        );
        this.db.transaction(() => {
          for (const f of batch) insert.run(f.at, f.domain, f.clientIp, f.userAgent);
          this.pruneFetches(batch.length);
        })();
      } finally {
        this.db.pragma('synchronous = FULL');
      }
    } catch {
      // Busy or failing disk: retry with the next batch, keeping memory bounded.
      this.fetchQueue = [...batch, ...this.fetchQueue].slice(-FETCH_BACKLOG_MAX);
      if (!this.closed) this.fetchTimer ??= setTimeout(() => this.flushFetches(), FETCH_FLUSH_MS).unref();
    }
  }

  /**
   * Keep the newest FETCH_LOG_KEEP entries. Each flush deletes at most twice what it inserted, so the work
   * per flush stays small under load and the table still converges to the cap.
   */
  private pruneFetches(inserted: number): void {
    this.db
      .prepare(
        'DELETE FROM fetches WHERE id IN (SELECT id FROM fetches WHERE id <= (SELECT max(id) FROM fetches) - ? ORDER BY id LIMIT ?)',
      )
      .run(FETCH_LOG_KEEP, 2 * inserted);
  }

  // ---- monitoring ----

  async recordCheck(outcome: CheckOutcome, now: Date): Promise<{ runId: number; opened: number[] }> {
    const { bounded, open, resolve } = checkedOutcome(outcome);
    const at = now.toISOString();
    return this.use(() =>
      this.db
        .transaction(() => {
          if (!this.readDomain(bounded.domain)) throw unknownDomain(bounded.domain);
          const { run, counts } = bounded;
          // Each distinct finding is stored once; the run lists their ids in order.
          const upsertFinding = this.db
            .prepare<[Buffer, string, number], number>(
              `INSERT INTO findings (hash, json, last_ms) VALUES (?, ?, ?)
               ON CONFLICT (hash) DO UPDATE SET last_ms = max(last_ms, excluded.last_ms) RETURNING id`,
            )
            .pluck();
          const findingIds = bounded.findingsJson.map(
            (json) => upsertFinding.get(createHash('sha256').update(json).digest(), json, bounded.atMs)!,
          );
          const runId = Number(
            this.db
              .prepare(
                `INSERT INTO check_runs (domain, at_ms, duration_ms, status, error, started_by, pass_count,
                   warn_count, fail_count, omitted_findings, finding_ids)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
              )
              .run(
                bounded.domain,
                bounded.atMs,
                run.durationMs,
                run.status,
                run.error ?? null,
                run.trigger,
                counts.pass,
                counts.warn,
                counts.fail,
                bounded.omitted,
                JSON.stringify(findingIds),
              ).lastInsertRowid,
          );
          // An open key is skipped, whoever opened it (the partial unique index alerts_one_open).
          const insertAlert = this.db
            .prepare<unknown[], number>(
              `INSERT INTO alerts (domain, code, subject, severity, message, fix, opened_at, opened_by)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (domain, code, subject) WHERE resolved_at IS NULL DO NOTHING RETURNING id`,
            )
            .pluck();
          const opened: number[] = [];
          for (const { alert, deliveries } of open) {
            const id = insertAlert.get(
              alert.domain,
              alert.code,
              alert.subject,
              alert.severity,
              alert.message,
              alert.fix ?? null,
              at,
              runId,
            );
            if (id === undefined) continue;
            opened.push(id);
            this.insertDeliveries(id, deliveries, at);
          }
          // Only an alert of this domain still open is resolved (and notified), once.
          const resolveAlert = this.db
            .prepare<unknown[], number>(
              `UPDATE alerts SET resolved_at = ?, resolved_by = ?
               WHERE id = ? AND domain = ? AND resolved_at IS NULL RETURNING id`,
            )
            .pluck();
          for (const { alertId, deliveries } of resolve) {
            if (resolveAlert.get(at, runId, alertId, bounded.domain) === undefined) continue;
            this.insertDeliveries(alertId, deliveries, at);
          }
          return { runId, opened };
        })
        .immediate(),
    );
  }

  private insertDeliveries(alertId: number, deliveries: NewDelivery[], at: string): void {
    const insert = this.db.prepare(
      `INSERT INTO deliveries (alert, channel, target, event, state, attempts, created_at, next_attempt_at)
       VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)`,
    );
    for (const d of deliveries) insert.run(alertId, d.channel, d.target, JSON.stringify(d.event), at, at);
  }

  async listCheckRuns(domain: string, page: PageRequest = {}): Promise<Page<CheckRunSummary>> {
    const key = domainKey(domain);
    const limit = count(page.limit, 'limit', 100, LIST_MAX);
    const after = page.cursor === undefined ? undefined : decodeCursor('checkRuns', page.cursor);
    return this.use(() =>
      this.db.transaction(() => {
        const total = this.db
          .prepare<[string], number>('SELECT count(*) FROM check_runs WHERE domain = ?')
          .pluck()
          .get(key)!;
        const rows = this.db
          .prepare<unknown[], CheckRunRow>(
            `SELECT ${RUN_COLUMNS}, ${clippedColumn('error')} AS error FROM check_runs
             WHERE domain = ? AND (at_ms, id) < (?, ?) ORDER BY at_ms DESC, id DESC LIMIT ?`,
          )
          .all(key, after?.[0] ?? Number.MAX_SAFE_INTEGER, after?.[1] ?? 0, limit + 1);
        return takePage(
          rows.slice(0, limit).map((row) => runSummaryFromRow(row, true)),
          {
            more: rows.length > limit,
            total,
            cursorOf: (i) => encodeCursor('checkRuns', [rows[i]!.at_ms, rows[i]!.id]),
          },
        );
      })(),
    );
  }

  async getCheckRun(id: number): Promise<CheckRun | undefined> {
    if (!Number.isSafeInteger(id)) return undefined;
    return this.use(() => {
      const row = this.db
        .prepare<[number], CheckRunRow>(
          `SELECT ${RUN_COLUMNS}, error, finding_ids FROM check_runs WHERE id = ?`,
        )
        .get(id);
      return row && this.runWithFindings(row);
    });
  }

  async recentCheckRuns(domain: string, howMany: number): Promise<CheckRun[]> {
    const limit = count(howMany, 'count', 0, MAX_RECENT_CHECK_RUNS);
    return this.use(() =>
      this.db
        .prepare<[string, number], CheckRunRow>(
          `SELECT ${RUN_COLUMNS}, error, finding_ids FROM check_runs WHERE domain = ?
           ORDER BY at_ms DESC, id DESC LIMIT ?`,
        )
        .all(domainKey(domain), limit)
        .map((row) => this.runWithFindings(row)),
    );
  }

  /** A whole run: its summary and its findings, in order. */
  private runWithFindings(row: CheckRunRow): CheckRun {
    const { counts: _counts, clipped: _clipped, ...run } = runSummaryFromRow(row);
    const findings = this.db
      .prepare<[string], string>(
        'SELECT f.json FROM json_each(?) j JOIN findings f ON f.id = j.value ORDER BY j.key',
      )
      .pluck()
      .all(row.finding_ids ?? '[]');
    return { ...run, findings: JSON.parse(`[${findings.join(',')}]`) as StoredFinding[] };
  }

  async purgeCheckRuns(filter: {
    before: string;
    limit: number;
  }): Promise<{ deleted: number; remaining: number }> {
    const beforeMs = timeBound(filter?.before ?? '', 'before', false)!;
    const before = new Date(beforeMs).toISOString();
    const limit = count(filter.limit, 'limit', 0, LIST_MAX);
    // Runs no alert points to: the others stay as long as their alert (the evidence of its change).
    const unheld = `at_ms < ? AND NOT EXISTS (SELECT 1 FROM alerts WHERE opened_by = r.id)
      AND NOT EXISTS (SELECT 1 FROM alerts WHERE resolved_by = r.id)`;
    return this.use(() =>
      this.db
        .transaction(() => {
          // Alerts resolved before the cutoff whose notifications are settled, with their deliveries.
          this.db
            .prepare(
              `DELETE FROM alerts WHERE id IN (SELECT id FROM alerts a WHERE resolved_at < ?
                 AND NOT EXISTS (SELECT 1 FROM deliveries WHERE alert = a.id AND state = 'pending')
                 ORDER BY resolved_at, id LIMIT ?)`,
            )
            .run(before, limit);
          const deleted = this.db
            .prepare(
              `DELETE FROM check_runs WHERE id IN
                 (SELECT id FROM check_runs r WHERE ${unheld} ORDER BY at_ms, id LIMIT ?)`,
            )
            .run(beforeMs, limit).changes;
          const remaining = this.db
            .prepare<[number], number>(`SELECT count(*) FROM check_runs r WHERE ${unheld}`)
            .pluck()
            .get(beforeMs)!;
          // Once only held runs are older than the cutoff: findings no run needs any more (every run
          // holding one is older than its last_ms, so only those runs can still hold it).
          if (remaining === 0) {
            this.db
              .prepare(
                `DELETE FROM findings WHERE id IN (SELECT id FROM findings WHERE last_ms < ? AND id NOT IN
                   (SELECT j.value FROM check_runs r, json_each(r.finding_ids) j WHERE r.at_ms < ?)
                 ORDER BY last_ms LIMIT ?)`,
              )
              .run(beforeMs, beforeMs, limit * FINDINGS_PER_RUN_SWEPT);
          }
          return { deleted, remaining };
        })
        .immediate(),
    );
  }

  async listAlerts(filter: AlertFilter = {}): Promise<Page<Alert>> {
    return this.newestFirst('alerts', alertFilterWhere(filter), filter, alertFromRow);
  }

  async openAlerts(domain?: string): Promise<Alert[]> {
    return this.use(() =>
      (domain === undefined
        ? this.db.prepare<[], AlertRow>('SELECT * FROM alerts WHERE resolved_at IS NULL ORDER BY id').all()
        : this.db
            .prepare<[string], AlertRow>(
              'SELECT * FROM alerts WHERE resolved_at IS NULL AND domain = ? ORDER BY id',
            )
            .all(domainKey(domain))
      ).map(alertFromRow),
    );
  }

  async dueDeliveries(now: Date, limit: number): Promise<Delivery[]> {
    const max = count(limit, 'limit', 0, LONG_LIST_MAX);
    return this.use(() =>
      this.db
        .prepare<[string, number], DeliveryRow>(
          `SELECT * FROM deliveries WHERE state = 'pending' AND next_attempt_at <= ?
           ORDER BY next_attempt_at, id LIMIT ?`,
        )
        .all(now.toISOString(), max)
        .map(deliveryFromRow),
    );
  }

  async settleDelivery(
    id: number,
    result: { ok: true } | { ok: false; error: string; nextAttemptAt?: Date },
    now: Date,
  ): Promise<void> {
    if (!Number.isSafeInteger(id)) throw storeInvalid('id: must be a delivery id');
    const at = now.toISOString();
    this.use(() => {
      // Only a pending delivery changes: a settled one stays as it ended.
      if (result.ok) {
        this.db
          .prepare(
            `UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, last_attempt_at = ?,
               delivered_at = ?, next_attempt_at = NULL WHERE id = ? AND state = 'pending'`,
          )
          .run(at, at, id);
        return;
      }
      const next = result.nextAttemptAt;
      if (next !== undefined && Number.isNaN(next.getTime())) throw storeInvalid('nextAttemptAt: not a time');
      this.db
        .prepare(
          `UPDATE deliveries SET state = ?, attempts = attempts + 1, last_attempt_at = ?, last_error = ?,
             next_attempt_at = ? WHERE id = ? AND state = 'pending'`,
        )
        .run(
          next === undefined ? 'abandoned' : 'pending',
          at,
          clipStored(String(result.error), MAX_DELIVERY_ERROR),
          next === undefined ? null : next.toISOString(),
          id,
        );
    });
  }

  async listDeliveries(filter: {
    alertId?: number;
    state?: Delivery['state'];
    limit?: number;
    cursor?: string;
  }): Promise<Page<Delivery>> {
    return this.newestFirst('deliveries', deliveryFilterWhere(filter), filter, deliveryFromRow);
  }

  /**
   * A page of the alerts or deliveries matching `where` (all true), newest id first: keyset on id, at
   * most LONG_LIST_MAX rows read (their text is up to MAX_STORED_FINDING_TEXT long).
   */
  private newestFirst<Row extends { id: number }, T>(
    table: 'alerts' | 'deliveries',
    { where, params }: { where: string[]; params: unknown[] },
    page: PageRequest,
    fromRow: (row: Row) => T,
  ): Page<T> {
    const limit = count(page.limit, 'limit', 100, LONG_LIST_MAX);
    const after = page.cursor === undefined ? undefined : decodeCursor(table, page.cursor);
    const matching = where.length > 0 ? where.join(' AND ') : '1';
    return this.use(() =>
      this.db.transaction(() => {
        const total = this.db
          .prepare<unknown[], number>(`SELECT count(*) FROM ${table} WHERE ${matching}`)
          .pluck()
          .get(...params)!;
        const rows = this.db
          .prepare<unknown[], Row>(
            `SELECT * FROM ${table} WHERE ${matching} AND id < ? ORDER BY id DESC LIMIT ?`,
          )
          .all(...params, after?.[0] ?? Number.MAX_SAFE_INTEGER, limit + 1);
        return takePage(rows.slice(0, limit).map(fromRow), {
          more: rows.length > limit,
          total,
          cursorOf: (i) => encodeCursor(table, [rows[i]!.id]),
        });
      })(),
    );
  }

  // ---- the bulk-check queue (check-queue.ts) ----

  checkQueue(): CheckQueue {
    return new SqliteCheckQueue(this.db, (step) => this.use(step));
  }

  // ---- settings ----

  async getSetting(key: string): Promise<string | undefined> {
    return this.use(() =>
      this.db.prepare<[string], string>('SELECT value FROM settings WHERE key = ?').pluck().get(key),
    );
  }

  async setSetting(key: string, value: string): Promise<void> {
    if (typeof key !== 'string' || key === '') throw storeInvalid('key: must be a non-empty string');
    if (typeof value !== 'string') throw storeInvalid(`${key}: the value must be a string`);
    this.use(() => {
      this.db
        .prepare(
          'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        )
        .run(key, value);
    });
  }

  // ---- authentication ----

  async setAdminPassword(hash: string): Promise<void> {
    if (typeof hash !== 'string' || hash === '')
      throw storeInvalid('password hash: must be a non-empty string');
    this.use(() =>
      this.db
        .transaction(() => {
          this.db
            .prepare(
              'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
            )
            .run(ADMIN_PASSWORD_SETTING, hash);
          this.db.prepare('DELETE FROM sessions').run();
        })
        .immediate(),
    );
  }

  async createSession(
    session: { idHash: string; expiresAt: Date },
    issuedUnder: string,
    now: Date,
  ): Promise<boolean> {
    const expires = session.expiresAt.getTime();
    return this.use(() =>
      this.db
        .transaction(() => {
          // Read under the write lock: a password change either committed before (refused here)
          // or commits after and deletes this row with every other session.
          const current = this.db
            .prepare<[string], string>('SELECT value FROM settings WHERE key = ?')
            .pluck()
            .get(ADMIN_PASSWORD_SETTING);
          if (current !== issuedUnder) return false;
          this.db
            .prepare(
              'DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions WHERE expires_ms <= ? LIMIT ?)',
            )
            .run(now.getTime(), AUTH_PURGE_BATCH);
          this.db
            .prepare('INSERT OR REPLACE INTO sessions (id_hash, expires_ms) VALUES (?, ?)')
            .run(session.idHash, expires);
          this.db
            .prepare(
              'DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions ORDER BY expires_ms DESC LIMIT -1 OFFSET ?)',
            )
            .run(SESSIONS_KEEP);
          return true;
        })
        .immediate(),
    );
  }

  async sessionValid(idHash: string, now: Date): Promise<boolean> {
    return this.use(
      () =>
        this.db
          .prepare<[string, number], number>('SELECT 1 FROM sessions WHERE id_hash = ? AND expires_ms > ?')
          .pluck()
          .get(idHash, now.getTime()) !== undefined,
    );
  }

  async endSession(idHash: string): Promise<void> {
    this.use(() => this.db.prepare('DELETE FROM sessions WHERE id_hash = ?').run(idHash));
  }

  async createApiToken(token: NewApiToken): Promise<void> {
    this.use(() =>
      this.db
        .transaction(() => {
          // Bounded, so that the token list (API, dashboard) stays small whoever holds a session.
          const count = this.db.prepare<[], number>('SELECT count(*) FROM api_tokens').pluck().get()!;
          if (count >= MAX_API_TOKENS) {
            throw storeInvalid(
              `there are already ${MAX_API_TOKENS} API tokens; revoke one before creating another`,
            );
          }
          this.db
            .prepare('INSERT INTO api_tokens (id, name, hash, created_at) VALUES (?, ?, ?, ?)')
            .run(token.id, token.name, token.hash, token.createdAt);
        })
        .immediate(),
    );
  }

  async listApiTokens(): Promise<ApiTokenInfo[]> {
    return this.use(() =>
      this.db
        .prepare<[], { id: string; name: string; created_at: string }>(
          'SELECT id, name, created_at FROM api_tokens ORDER BY created_at, id',
        )
        .all()
        .map((row) => ({ id: row.id, name: row.name, createdAt: row.created_at })),
    );
  }

  async findApiToken(hash: string): Promise<string | undefined> {
    return this.use(() =>
      this.db.prepare<[string], string>('SELECT id FROM api_tokens WHERE hash = ?').pluck().get(hash),
    );
  }

  async deleteApiToken(id: string): Promise<boolean> {
    return this.use(() => this.db.prepare('DELETE FROM api_tokens WHERE id = ?').run(id).changes > 0);
  }

  async reserveAuthAttempt(
    keys: AuthAttemptKeys,
    limits: AuthAttemptLimits,
    now: Date,
  ): Promise<AuthReservation> {
    const nowMs = now.getTime();
    return this.use(() =>
      this.db
        .transaction((): AuthReservation => {
          this.db
            .prepare(
              'DELETE FROM auth_attempts WHERE id IN (SELECT id FROM auth_attempts WHERE at_ms <= ? ORDER BY at_ms LIMIT ?)',
            )
            .run(nowMs - limits.windowMs, AUTH_PURGE_BATCH);
          const refused = this.clientRefusal(keys.client, limits, nowMs);
          if (refused) return refused;
          const account = this.db
            .prepare<[string, number, number], number>(
              'SELECT count(*) FROM (SELECT 1 FROM auth_attempts WHERE account = ? AND at_ms > ? LIMIT ?)',
            )
            .pluck()
            .get(keys.account, nowMs - limits.windowMs, limits.accountMax + ACCOUNT_EXCESS_COUNTED)!;
          const id = Number(
            this.db
              .prepare(
                "INSERT INTO auth_attempts (client_key, account, state, at_ms) VALUES (?, ?, 'checking', ?)",
              )
              .run(keys.client, keys.account, nowMs).lastInsertRowid,
          );
          // Bounded: beyond AUTH_ATTEMPTS_KEEP rows the oldest attempts go first, a few at a time.
          this.db
            .prepare(
              `DELETE FROM auth_attempts WHERE id IN (SELECT id FROM auth_attempts
                 WHERE id <= (SELECT max(id) FROM auth_attempts) - ? ORDER BY id LIMIT ?)`,
            )
            .run(AUTH_ATTEMPTS_KEEP, AUTH_PURGE_BATCH);
          return { ok: true, id, accountExcess: Math.max(0, account + 1 - limits.accountMax) };
        })
        .immediate(),
    );
  }

  async authAttemptAllowed(
    keys: AuthAttemptKeys,
    limits: AuthAttemptLimits,
    now: Date,
  ): Promise<{ ok: true } | { ok: false; retryAfterMs: number }> {
    return this.use(() => this.clientRefusal(keys.client, limits, now.getTime()) ?? { ok: true });
  }

  /** The refusal when the client key has clientMax failed or in-flight attempts in the window. */
  private clientRefusal(
    client: string,
    limits: AuthAttemptLimits,
    nowMs: number,
  ): { ok: false; retryAfterMs: number } | undefined {
    const recent = this.db
      .prepare<[string, number, number], { count: number; oldest: number | null }>(
        `SELECT count(*) AS count, min(at_ms) AS oldest FROM
           (SELECT at_ms FROM auth_attempts WHERE client_key = ? AND at_ms > ? ORDER BY at_ms LIMIT ?)`,
      )
      .get(client, nowMs - limits.windowMs, limits.clientMax)!;
    if (recent.count < limits.clientMax) return undefined;
    return { ok: false, retryAfterMs: Math.max(1, recent.oldest! + limits.windowMs - nowMs) };
  }

  async settleAuthAttempt(id: number, success: boolean): Promise<void> {
    this.use(() =>
      success
        ? this.db.prepare('DELETE FROM auth_attempts WHERE id = ?').run(id)
        : this.db.prepare("UPDATE auth_attempts SET state = 'failed' WHERE id = ?").run(id),
    );
  }

  async clearAuthAttempts(): Promise<void> {
    this.use(() => this.db.prepare('DELETE FROM auth_attempts').run());
  }

  async durability(): Promise<StoreDurability> {
    return this.use(() => ({
      journalMode: String(this.db.pragma('journal_mode', { simple: true })),
      synchronous: SYNCHRONOUS_NAMES[Number(this.db.pragma('synchronous', { simple: true }))] ?? 'unknown',
    }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.cluster.close();
    this.flushFetches();
    this.closed = true;
    clearTimeout(this.fetchTimer);
    this.fetchTimer = undefined;
    this.db.close();
  }

  /** Run a database step; SQLite failures become STORE_IO naming the file. */
  private use<T>(step: () => T): T {
    if (this.closed) throw new StoreError('STORE_IO', `${this.path}: the store is closed`);
    try {
      return step();
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError('STORE_IO', `${this.path}: ${(err as Error).message}`, { cause: err });
    }
  }
}

export const BREAKDOWN_COLUMNS: Record<Exclude<BreakdownKey, 'organization'>, string> = {
  resultType: 'result_type',
  receivingMxHostname: 'receiving_mx_hostname',
  sendingMtaIp: 'sending_mta_ip',
};

/** A report's summary from its row (domains as the JSON array the query builds). */
function summaryFromRow(row: Omit<SummaryRow, 'start_ms'>, listView = false): StoredReportSummary {
  return reportSummary({ ...row, domains: JSON.parse(row.domains) as string[] }, listView);
}

function unknownDomain(name: string): StoreError {
  return new StoreError('STORE_DOMAIN_UNKNOWN', `domain ${domainKey(name)} is not configured`);
}
