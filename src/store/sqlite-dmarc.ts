// The SQLite store's DMARC aggregate reports (RFC 7489 Appendix C, RFC 9990; issue 15), beside TLS-RPT's
// in sqlite.ts and sharing its connection: tables dmarc_reports, dmarc_rows and ptr_names (migration 5).
//
// A report is written with its rows in one IMMEDIATE transaction, and the reports waiting to be saved
// share it (group commit: one fsync for all; each promise resolves only once the transaction committed,
// and fails with it): a lone save commits in the next turn of the event loop, and while saves keep
// coming (an import, a mailbox backlog) the next commit starts no sooner than COMMIT_SPACING_MS, or as
// long as the last commit took, after the last ended (commits take at most half the thread's time,
// however slow the disk; with pacing 'eager', for a bulk import that has nothing else to run on the
// thread, COMMIT_SPACING_MS only); the same report (organization + report id + policy domain)
// is stored once: INSERT ... ON CONFLICT DO NOTHING on a unique index, so two writers
// racing with the same report (two serve processes, a mailbox and an import) end with one row and the
// second is told `created: false`. A report belongs to the instant its date range begins (as TLS-RPT's
// start, see sqlite.ts): the daily chart, since/until and retention all use it.
//
// Outcomes per row, for the daily chart: DMARC pass (aligned SPF or DKIM pass, RFC 7489 §6.6.2) first;
// a row that failed counts by what the receiver did: none = "fail" (delivered), quarantine, reject.
import type Database from 'better-sqlite3';
import type { DmarcReport } from '../dmarc/report.js';
import { count, timeBound } from './bounds.js';
import {
  checkedPtrLookup,
  checkPtrName,
  DMARC_LIST_MAX,
  DMARC_PASS,
  DMARC_SUMMARY_COLUMNS,
  type DmarcReportRow,
  type DmarcSourceSqlRow,
  type DmarcSummaryRow,
  dmarcReportFilterWhere,
  dmarcReportValues,
  dmarcSourceFromRow,
  dmarcSourcesMatching,
  dmarcSummaryFromRow,
  HEADER_FROM_MAX,
  INSERT_DMARC_REPORT,
} from './dmarc-rows.js';
import { checkNewDmarcReport } from './dmarc-rules.js';
import type {
  DmarcDailyCounts,
  DmarcReportFilter,
  DmarcReportSummary,
  DmarcSourceFilter,
  DmarcSourceRow,
  DmarcStore,
  NewDmarcReport,
  PreparedDmarcReport,
  StoredDmarcReport,
} from './dmarc-types.js';
import { domainKey } from './domain-rules.js';
import { type OtherDomainRow, otherDomainFromRow, otherDomainsQueries } from './other-domains.js';
import { clippedColumn, decodeCursor, encodeCursor, takePage } from './paging.js';
import { DMARC_PURGE, purgeSelection } from './purge-rules.js';
import { withReportContent } from './sql-rows.js';
import { deleteByIds, deleteOldest } from './sqlite-delete.js';
import type { Page, PageRequest, PurgeFilter } from './types.js';

/**
 * Reports committed together at most (the rest wait for the next transaction): a commit of 500 small
 * reports takes ~70 ms (bench/dmarc-import.ts; with 100 at most, 10,000 reports took 4.8-5.3 s to import
 * against 4.3-4.4 s).
 */
const SAVE_BATCH_MAX = 500;
/**
 * The least time from the end of one commit to the start of the next while saves keep coming: the
 * saves of those milliseconds share one fsync (bench/dmarc-import.ts: 10,000 reports took 900
 * commits of 1-3 reports each before, 1-2 ms of blocked event loop each, 15-30 ms on a busy disk).
 */
const COMMIT_SPACING_MS = 10;

/** Runs a database step, turning SQLite failures into StoreError (SqliteStore's `use`). */
export type StoreStep = <T>(step: () => T) => T;

interface WaitingSave {
  input: NewDmarcReport;
  prepared: PreparedDmarcReport;
  now: Date;
  resolve(saved: { id: number; created: boolean }): void;
  reject(err: unknown): void;
}

interface InsertStatements {
  report: Database.Statement<unknown[], { id: number }>;
  existing: Database.Statement<[string, string, string], number>;
  row: Database.Statement<unknown[]>;
}

/**
 * How commits are spaced while saves keep coming: 'shared' leaves the thread at least half its time
 * for other work (serve); 'eager' commits again COMMIT_SPACING_MS after the last (a bulk import: with
 * 'shared', 10,000 reports took 4.4-4.6 s against 4.0-4.1 s in bench/dmarc-import.ts).
 */
export type CommitPacing = 'shared' | 'eager';

/**
 * How long to wait before the next commit (ms; 0 or less: at once), the last one having ended at
 * `lastEnd` after `lastMs` (performance.now() times).
 */
export function commitDelay(pacing: CommitPacing, lastEnd: number, lastMs: number, now: number): number {
  const spacing = pacing === 'eager' ? COMMIT_SPACING_MS : Math.max(COMMIT_SPACING_MS, lastMs);
  return lastEnd + spacing - now;
}

export class SqliteDmarcStore implements DmarcStore {
  private readonly waiting: WaitingSave[] = [];
  /** When the last commit ended (performance.now()), and how long it took (ms). */
  private lastCommit = Number.NEGATIVE_INFINITY;
  private lastCommitMs = 0;
  private statements?: InsertStatements;

  constructor(
    private readonly db: Database.Database,
    private readonly use: StoreStep,
    private readonly pacing: CommitPacing = 'shared',
  ) {}

  async saveDmarcReport(input: NewDmarcReport, now: Date): Promise<{ id: number; created: boolean }> {
    const prepared = checkNewDmarcReport(input);
    return new Promise((resolve, reject) => {
      this.waiting.push({ input, prepared, now, resolve, reject });
      if (this.waiting.length === 1) this.scheduleCommit();
    });
  }

  /** The next commit: in the next turn, or spaced from the last one (see the header). */
  private scheduleCommit(): void {
    const wait = commitDelay(this.pacing, this.lastCommit, this.lastCommitMs, performance.now());
    if (wait > 0) setTimeout(() => this.commitWaiting(), wait);
    else setImmediate(() => this.commitWaiting());
  }

  /** Group commit: the reports waiting (up to SAVE_BATCH_MAX), in one transaction. */
  private commitWaiting(): void {
    const batch = this.waiting.splice(0, SAVE_BATCH_MAX);
    const started = performance.now();
    let saved: Array<{ id: number; created: boolean }> | undefined;
    let failure: unknown;
    try {
      saved = this.use(() =>
        this.db.transaction(() => batch.map((job) => this.insertReport(job))).immediate(),
      );
    } catch (err) {
      failure = err;
    }
    this.lastCommit = performance.now();
    this.lastCommitMs = this.lastCommit - started;
    if (this.waiting.length > 0) this.scheduleCommit();
    for (const [i, job] of batch.entries()) {
      if (saved) job.resolve(saved[i]!);
      else job.reject(failure);
    }
  }

  private prepared(): InsertStatements {
    this.statements ??= {
      report: this.db.prepare(INSERT_DMARC_REPORT),
      existing: this.db
        .prepare<[string, string, string], number>(
          'SELECT id FROM dmarc_reports WHERE organization = ? AND report_id = ? AND domain = ?',
        )
        .pluck(),
      row: this.db.prepare(
        `INSERT INTO dmarc_rows (report, domain, begin_ms, begin_day, organization, source_ip, count,
           disposition, dkim, spf, header_from)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
    };
    return this.statements;
  }

  private insertReport({ input, prepared: p, now }: WaitingSave): { id: number; created: boolean } {
    const statements = this.prepared();
    const inserted = statements.report.get(...dmarcReportValues(p, input, now));
    if (!inserted) {
      const id = statements.existing.get(p.organization, p.reportId, p.domain)!;
      return { id, created: false };
    }
    const insert = statements.row;
    const { rows } = p;
    for (let i = 0; i < rows.sourceIp.length; i++) {
      insert.run(
        inserted.id,
        p.domain,
        p.beginMs,
        p.beginDay,
        p.organization,
        rows.sourceIp[i],
        rows.count[i],
        rows.disposition[i],
        rows.dkim[i],
        rows.spf[i],
        rows.headerFrom[i],
      );
    }
    return { id: inserted.id, created: true };
  }

  async listDmarcReports(filter: DmarcReportFilter = {}): Promise<Page<DmarcReportSummary>> {
    const { where, params } = dmarcReportFilterWhere(filter);
    const limit = count(filter.limit, 'limit', 100, DMARC_LIST_MAX);
    const after = filter.cursor === undefined ? undefined : decodeCursor('dmarcReports', filter.cursor);
    const pageWhere = after ? [...where, '(begin_ms, id) < (?, ?)'] : where;
    const pageParams = after ? [...params, ...after] : params;
    return this.use(() =>
      this.db.transaction(() => {
        const total = this.db
          .prepare<unknown[], number>(`SELECT count(*) FROM dmarc_reports WHERE ${where.join(' AND ')}`)
          .pluck()
          .get(...params)!;
        const rows = this.db
          .prepare<unknown[], DmarcSummaryRow>(
            `SELECT ${DMARC_SUMMARY_COLUMNS} FROM dmarc_reports WHERE ${pageWhere.join(' AND ')}
             ORDER BY begin_ms DESC, id DESC LIMIT ?`,
          )
          .all(...pageParams, limit + 1);
        const items = rows.slice(0, limit).map((row) => dmarcSummaryFromRow(row, true));
        return takePage(items, {
          more: rows.length > limit,
          total,
          cursorOf: (i) => encodeCursor('dmarcReports', [rows[i]!.begin_ms, rows[i]!.id]),
        });
      })(),
    );
  }

  async getDmarcReport(id: number): Promise<StoredDmarcReport | undefined> {
    if (!Number.isSafeInteger(id)) return undefined;
    return this.use(() => {
      const row = this.db
        .prepare<[number], DmarcReportRow>(
          `SELECT id, begin_ms, organization, report_id, domain, begin_at, end_at, messages, passed, rows,
             source, received_at, submitter, warnings, report_json
           FROM dmarc_reports WHERE id = ?`,
        )
        .get(id);
      if (!row) return undefined;
      return withReportContent<DmarcReportSummary, DmarcReport>(dmarcSummaryFromRow(row), row);
    });
  }

  async deleteDmarcReports(ids: number[]): Promise<number[]> {
    // dmarc_rows go with the report (ON DELETE CASCADE).
    return this.use(() => deleteByIds(this.db, 'dmarc_reports', ids));
  }

  async purgeDmarcReports(filter: PurgeFilter): Promise<{ deleted: number; remaining: number }> {
    const selection = purgeSelection(filter, DMARC_PURGE, DMARC_LIST_MAX);
    return this.use(() => deleteOldest(this.db, selection));
  }

  async dmarcDailyCounts(domain: string, since: string, until: string): Promise<DmarcDailyCounts[]> {
    const from = timeBound(since, 'since', false) ?? Number.MIN_SAFE_INTEGER;
    const to = timeBound(until, 'until', true) ?? Number.MAX_SAFE_INTEGER;
    return this.use(() =>
      this.db
        .prepare<[string, number, number], DmarcDailyCounts>(
          `SELECT begin_day AS day,
             sum(CASE WHEN ${DMARC_PASS} THEN count ELSE 0 END) AS pass,
             sum(CASE WHEN NOT ${DMARC_PASS} AND disposition = 'none' THEN count ELSE 0 END) AS fail,
             sum(CASE WHEN NOT ${DMARC_PASS} AND disposition = 'quarantine' THEN count ELSE 0 END) AS quarantined,
             sum(CASE WHEN NOT ${DMARC_PASS} AND disposition = 'reject' THEN count ELSE 0 END) AS rejected
           FROM dmarc_rows WHERE domain = ? AND begin_ms >= ? AND begin_ms < ?
           GROUP BY begin_day ORDER BY begin_day`,
        )
        .all(domainKey(domain), from, to),
    );
  }

  async dmarcSources(filter: DmarcSourceFilter): Promise<Page<DmarcSourceRow>> {
    const { params, matchingIn } = dmarcSourcesMatching(filter);
    const limit = count(filter.limit, 'limit', 100, DMARC_LIST_MAX);
    const after = filter.cursor === undefined ? undefined : decodeCursor('dmarcSources', filter.cursor);
    // Ranked by messages (desc), then IP: the cursor is the last (messages, IP) seen.
    const having = after ? 'HAVING messages < ? OR (messages = ? AND source_ip > ?)' : '';
    const havingParams = after ? [after[0], after[0], after[1]] : [];
    return this.use(() =>
      this.db.transaction(() => {
        const total = this.db
          .prepare<unknown[], number>(
            `SELECT count(DISTINCT source_ip) FROM dmarc_rows g WHERE ${matchingIn('g')}`,
          )
          .pluck()
          .get(...params)!;
        const rows = this.db
          .prepare<unknown[], SourceJsonRow>(
            `SELECT source_ip, sum(count) AS messages,
               sum(CASE WHEN spf = 'pass' THEN count ELSE 0 END) AS spf_aligned,
               sum(CASE WHEN dkim = 'pass' THEN count ELSE 0 END) AS dkim_aligned,
               sum(CASE WHEN ${DMARC_PASS} THEN count ELSE 0 END) AS dmarc_pass,
               (SELECT json_group_array(h) FROM (SELECT DISTINCT ${clippedColumn('header_from')} AS h
                  FROM dmarc_rows x WHERE x.source_ip = g.source_ip AND ${matchingIn('x')}
                  ORDER BY h LIMIT ${HEADER_FROM_MAX})) AS header_from,
               (SELECT name FROM ptr_names p WHERE p.ip = g.source_ip AND name <> '') AS ptr
             FROM dmarc_rows g WHERE ${matchingIn('g')}
             GROUP BY source_ip ${having} ORDER BY messages DESC, source_ip LIMIT ?`,
          )
          .all(...params, ...params, ...havingParams, limit + 1);
        const items = rows
          .slice(0, limit)
          .map((row) => dmarcSourceFromRow({ ...row, header_from: JSON.parse(row.header_from) }));
        return takePage(items, {
          more: rows.length > limit,
          total,
          cursorOf: (i) => encodeCursor('dmarcSources', [rows[i]!.messages, rows[i]!.source_ip]),
        });
      })(),
    );
  }

  async listOtherDomains(page: PageRequest = {}): Promise<Page<OtherDomainRow>> {
    const limit = count(page.limit, 'limit', 100, DMARC_LIST_MAX);
    const after = page.cursor === undefined ? undefined : decodeCursor('domains', page.cursor);
    const queries = otherDomainsQueries(() => '?', after !== undefined);
    return this.use(() =>
      this.db.transaction(() => {
        const rows = this.db
          .prepare<unknown[], Parameters<typeof otherDomainFromRow>[0] & { total: number }>(queries.page)
          .all(...(after ?? []), limit + 1);
        const total = rows[0]?.total ?? this.db.prepare<[], number>(queries.total).pluck().get()!;
        const items = rows.slice(0, limit).map(otherDomainFromRow);
        return takePage(items, {
          more: rows.length > limit,
          total,
          cursorOf: (i) => encodeCursor('domains', [items[i]!.domain]),
        });
      })(),
    );
  }

  async getPtrNames(ips: string[]): Promise<Map<string, { name: string; at: string }>> {
    const wanted = checkedPtrLookup(ips);
    return this.use(() => {
      const found = new Map<string, { name: string; at: string }>();
      const read = this.db.prepare<[string], { name: string; at: string }>(
        'SELECT name, at FROM ptr_names WHERE ip = ?',
      );
      for (const ip of wanted) {
        const row = read.get(ip);
        if (row) found.set(ip, { name: row.name, at: row.at });
      }
      return found;
    });
  }

  async setPtrName(ip: string, name: string, now: Date): Promise<void> {
    checkPtrName(ip, name);
    this.use(() =>
      this.db
        .prepare(
          `INSERT INTO ptr_names (ip, name, at) VALUES (?, ?, ?)
           ON CONFLICT (ip) DO UPDATE SET name = excluded.name, at = excluded.at`,
        )
        .run(ip, name, now.toISOString()),
    );
  }
}

/** A source as SQLite reads it: header_from as a JSON array (json_group_array). */
type SourceJsonRow = Omit<DmarcSourceSqlRow, 'header_from'> & { header_from: string };
