// DMARC aggregate reports in the PostgreSQL store (RFC 7489 Appendix C, RFC 9990; issue 16), with the
// SQLite store's semantics (sqlite-dmarc.ts; rules in dmarc-rules.ts, rows in dmarc-rows.ts): tables
// dmarc_reports, dmarc_rows and ptr_names (postgres-migrations.ts step 5).
//
// A report is written with its rows in one transaction. The same report (organization + report id +
// policy domain) is stored once across every instance: INSERT ... ON CONFLICT DO NOTHING on the unique
// index dmarc_reports_same; an instance saving it while another's insert is not committed yet waits for
// that commit and is then told `created: false` with the stored id. A report belongs to the instant its
// date range begins, as in SQLite. Text is ordered COLLATE "C" (byte order, as SQLite).
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
import { checkedIds, deleteByIds, deleteOldest } from './postgres-delete.js';
import { countOf, type Db, one, type PgRunner, pgText, query } from './postgres-sql.js';
import { DMARC_PURGE, purgeSelection } from './purge-rules.js';
import { withReportContent } from './sql-rows.js';
import type { Page, PageRequest, PurgeFilter } from './types.js';

export class PgDmarcStore implements DmarcStore {
  constructor(private readonly run: PgRunner) {}

  async saveDmarcReport(input: NewDmarcReport, now: Date): Promise<{ id: number; created: boolean }> {
    const p = checkNewDmarcReport(input);
    return this.run.transaction(async (db) => {
      const inserted = await one<{ id: number }>(db, INSERT_DMARC_REPORT, dmarcReportValues(p, input, now));
      if (!inserted) {
        // Stored before, or by another instance whose transaction committed while this one waited.
        const existing = await one<{ id: number }>(
          db,
          'SELECT id FROM dmarc_reports WHERE organization = ? AND report_id = ? AND domain = ?',
          [p.organization, p.reportId, p.domain],
        );
        return { id: existing!.id, created: false };
      }
      await insertRows(db, inserted.id, p);
      return { id: inserted.id, created: true };
    });
  }

  async listDmarcReports(filter: DmarcReportFilter = {}): Promise<Page<DmarcReportSummary>> {
    const { where, params } = dmarcReportFilterWhere(filter);
    const limit = count(filter.limit, 'limit', 100, DMARC_LIST_MAX);
    const after = filter.cursor === undefined ? undefined : decodeCursor('dmarcReports', filter.cursor);
    const pageWhere = after ? [...where, '(begin_ms, id) < (?, ?)'] : where;
    const pageParams = after ? [...params, ...after] : params;
    return this.run.snapshot(async (db) => {
      const total = await countOf(
        db,
        `SELECT count(*) AS n FROM dmarc_reports WHERE ${where.join(' AND ')}`,
        params,
      );
      const rows = await query<DmarcSummaryRow>(
        db,
        `SELECT ${DMARC_SUMMARY_COLUMNS} FROM dmarc_reports WHERE ${pageWhere.join(' AND ')}
         ORDER BY begin_ms DESC, id DESC LIMIT ?`,
        [...pageParams, limit + 1],
      );
      return takePage(
        rows.slice(0, limit).map((row) => dmarcSummaryFromRow(row, true)),
        {
          more: rows.length > limit,
          total,
          cursorOf: (i) => encodeCursor('dmarcReports', [rows[i]!.begin_ms, rows[i]!.id]),
        },
      );
    });
  }

  async getDmarcReport(id: number): Promise<StoredDmarcReport | undefined> {
    if (!Number.isSafeInteger(id)) return undefined;
    return this.run.use(async () => {
      const row = await one<DmarcReportRow>(
        this.run.pool,
        `SELECT id, begin_ms, organization, report_id, domain, begin_at, end_at, messages, passed, rows,
           source, received_at, submitter, warnings, report_json
         FROM dmarc_reports WHERE id = ?`,
        [id],
      );
      if (!row) return undefined;
      return withReportContent<DmarcReportSummary, DmarcReport>(dmarcSummaryFromRow(row), row);
    });
  }

  async deleteDmarcReports(ids: number[]): Promise<number[]> {
    const unique = checkedIds(ids);
    // dmarc_rows go with the report (ON DELETE CASCADE).
    return this.run.transaction((db) => deleteByIds(db, 'dmarc_reports', unique));
  }

  async purgeDmarcReports(filter: PurgeFilter): Promise<{ deleted: number; remaining: number }> {
    const selection = purgeSelection(filter, DMARC_PURGE, DMARC_LIST_MAX);
    return this.run.transaction((db) => deleteOldest(db, selection));
  }

  async dmarcDailyCounts(domain: string, since: string, until: string): Promise<DmarcDailyCounts[]> {
    const from = timeBound(since, 'since', false) ?? Number.MIN_SAFE_INTEGER;
    const to = timeBound(until, 'until', true) ?? Number.MAX_SAFE_INTEGER;
    return this.run.use(() =>
      query<DmarcDailyCounts>(
        this.run.pool,
        `SELECT begin_day AS day,
           sum(CASE WHEN ${DMARC_PASS} THEN count ELSE 0 END)::bigint AS pass,
           sum(CASE WHEN NOT ${DMARC_PASS} AND disposition = 'none' THEN count ELSE 0 END)::bigint AS fail,
           sum(CASE WHEN NOT ${DMARC_PASS} AND disposition = 'quarantine' THEN count ELSE 0 END)::bigint
             AS quarantined,
           sum(CASE WHEN NOT ${DMARC_PASS} AND disposition = 'reject' THEN count ELSE 0 END)::bigint AS rejected
         FROM dmarc_rows WHERE domain = ? AND begin_ms >= ? AND begin_ms < ?
         GROUP BY begin_day ORDER BY begin_day COLLATE "C"`,
        [domainKey(domain), from, to],
      ),
    );
  }

  async dmarcSources(filter: DmarcSourceFilter): Promise<Page<DmarcSourceRow>> {
    const { params, matchingIn } = dmarcSourcesMatching(filter);
    const limit = count(filter.limit, 'limit', 100, DMARC_LIST_MAX);
    const after = filter.cursor === undefined ? undefined : decodeCursor('dmarcSources', filter.cursor);
    // Ranked by messages (desc), then IP (byte order): the cursor is the last (messages, IP) seen.
    const having = after ? 'HAVING sum(count) < ? OR (sum(count) = ? AND source_ip COLLATE "C" > ?)' : '';
    const havingParams = after ? [after[0], after[0], after[1]] : [];
    return this.run.snapshot(async (db) => {
      const total = await countOf(
        db,
        `SELECT count(DISTINCT source_ip) AS n FROM dmarc_rows g WHERE ${matchingIn('g')}`,
        params,
      );
      const rows = await query<DmarcSourceSqlRow>(
        db,
        `SELECT source_ip, sum(count)::bigint AS messages,
           sum(CASE WHEN spf = 'pass' THEN count ELSE 0 END)::bigint AS spf_aligned,
           sum(CASE WHEN dkim = 'pass' THEN count ELSE 0 END)::bigint AS dkim_aligned,
           sum(CASE WHEN ${DMARC_PASS} THEN count ELSE 0 END)::bigint AS dmarc_pass,
           ARRAY(SELECT DISTINCT ${clippedColumn('header_from')} COLLATE "C" AS h
              FROM dmarc_rows x WHERE x.source_ip = g.source_ip AND ${matchingIn('x')}
              ORDER BY h LIMIT ${HEADER_FROM_MAX}) AS header_from,
           (SELECT name FROM ptr_names p WHERE p.ip = g.source_ip AND name <> '') AS ptr
         FROM dmarc_rows g WHERE ${matchingIn('g')}
         GROUP BY source_ip ${having} ORDER BY messages DESC, source_ip COLLATE "C" LIMIT ?`,
        [...params, ...params, ...havingParams, limit + 1],
      );
      return takePage(rows.slice(0, limit).map(dmarcSourceFromRow), {
        more: rows.length > limit,
        total,
        cursorOf: (i) => encodeCursor('dmarcSources', [rows[i]!.messages, rows[i]!.source_ip]),
      });
    });
  }

  async listOtherDomains(page: PageRequest = {}): Promise<Page<OtherDomainRow>> {
    const limit = count(page.limit, 'limit', 100, DMARC_LIST_MAX);
    const after = page.cursor === undefined ? undefined : decodeCursor('domains', page.cursor);
    const queries = otherDomainsQueries(() => '?', after !== undefined);
    return this.run.snapshot(async (db) => {
      const total = (await one<{ total: number }>(db, queries.total))!.total;
      const rows = await query<Parameters<typeof otherDomainFromRow>[0]>(db, queries.page, [
        ...(after ?? []),
        limit + 1,
      ]);
      const items = rows.slice(0, limit).map(otherDomainFromRow);
      return takePage(items, {
        more: rows.length > limit,
        total,
        cursorOf: (i) => encodeCursor('domains', [items[i]!.domain]),
      });
    });
  }

  async getPtrNames(ips: string[]): Promise<Map<string, { name: string; at: string }>> {
    const wanted = checkedPtrLookup(ips);
    return this.run.use(async () => {
      const rows = await query<{ ip: string; name: string; at: string }>(
        this.run.pool,
        'SELECT ip, name, at FROM ptr_names WHERE ip = ANY(?::text[])',
        [wanted.map(pgText)],
      );
      return new Map(rows.map((row) => [row.ip, { name: row.name, at: row.at }]));
    });
  }

  async setPtrName(ip: string, name: string, now: Date): Promise<void> {
    checkPtrName(ip, name);
    await this.run.use(() =>
      query(
        this.run.pool,
        `INSERT INTO ptr_names (ip, name, at) VALUES (?, ?, ?)
         ON CONFLICT (ip) DO UPDATE SET name = excluded.name, at = excluded.at`,
        [ip, name, now.toISOString()],
      ),
    );
  }
}

/** A report's rows, in their order, in one INSERT. */
async function insertRows(db: Db, reportId: number, p: PreparedDmarcReport): Promise<void> {
  const { rows } = p;
  if (rows.sourceIp.length === 0) return;
  await query(
    db,
    `INSERT INTO dmarc_rows (report, domain, begin_ms, begin_day, organization, source_ip, count,
       disposition, dkim, spf, header_from)
     SELECT ?::bigint, ?::text, ?::bigint, ?::text, ?::text, ip, n, d, k, s, h
     FROM unnest(?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[])
       WITH ORDINALITY AS r(ip, n, d, k, s, h, i) ORDER BY i`,
    [
      reportId,
      p.domain,
      p.beginMs,
      p.beginDay,
      p.organization,
      rows.sourceIp.map(pgText),
      rows.count,
      rows.disposition,
      rows.dkim,
      rows.spf,
      rows.headerFrom.map(pgText),
    ],
  );
}
