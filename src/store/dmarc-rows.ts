// Rows of the DMARC tables (dmarc_reports, dmarc_rows, ptr_names; SQLite and PostgreSQL share one layout)
// turned into the Store's objects (src/store/dmarc-types.ts), the bounds both stores keep, and the SQL
// conditions of the list filters, written once. Each store reads its rows its own way and hands them here.
import { timeBound } from './bounds.js';
import type {
  DmarcReportFilter,
  DmarcReportSummary,
  DmarcSourceFilter,
  DmarcSourceRow,
  NewDmarcReport,
  PreparedDmarcReport,
} from './dmarc-types.js';
import { describeValue, domainKey } from './domain-rules.js';
import { DMARC_OTHER_DOMAIN } from './other-domains.js';
import { clippedColumn, clipText } from './paging.js';
import { type ReportSource, storeInvalid } from './types.js';

/** Largest page of a DMARC list. */
export const DMARC_LIST_MAX = 10_000;
/** Distinct header_from domains listed per source. */
export const HEADER_FROM_MAX = 10;
/** IPs per getPtrNames call. */
export const PTR_LOOKUP_MAX = 1000;
/** Longest reverse DNS name kept (RFC 1035 §2.3.4: 255 octets). */
export const PTR_NAME_MAX = 255;

/** A row's DMARC pass: aligned SPF or aligned DKIM pass (RFC 7489 §6.6.2). */
export const DMARC_PASS = "(spf = 'pass' OR dkim = 'pass')";

/**
 * Storing a report (both stores, `?` parameters): once per organization + report id + domain (the
 * unique index dmarc_reports_same); RETURNING gives no row when it was stored before.
 */
export const INSERT_DMARC_REPORT = `INSERT INTO dmarc_reports (organization, report_id, domain, begin_at,
    end_at, begin_ms, messages, passed, rows, source, dkim, submitter, warnings, report_json, received_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (organization, report_id, domain) DO NOTHING RETURNING id`;

/** The parameters of INSERT_DMARC_REPORT for a prepared report. */
export function dmarcReportValues(p: PreparedDmarcReport, input: NewDmarcReport, now: Date): unknown[] {
  return [
    p.organization,
    p.reportId,
    p.domain,
    p.begin,
    p.end,
    p.beginMs,
    p.messages,
    p.passed,
    p.rows.sourceIp.length,
    input.source,
    input.dkim,
    input.submitter ?? null,
    JSON.stringify(input.warnings),
    p.json,
    now.toISOString(),
  ];
}

export interface DmarcSummaryRow {
  id: number;
  begin_ms: number;
  organization: string;
  report_id: string;
  domain: string;
  begin_at: string;
  end_at: string;
  messages: number;
  passed: number;
  rows: number;
  source: string;
  received_at: string;
}

export interface DmarcReportRow extends DmarcSummaryRow {
  submitter: string | null;
  warnings: string;
  report_json: string;
}

/** The columns of a list view (long text read cut, see paging.ts). */
export const DMARC_SUMMARY_COLUMNS = `id, begin_ms, ${clippedColumn('organization')} AS organization,
  ${clippedColumn('report_id')} AS report_id, ${clippedColumn('domain')} AS domain, begin_at, end_at,
  messages, passed, rows, source, received_at`;

export interface DmarcSourceSqlRow {
  source_ip: string;
  messages: number;
  spf_aligned: number;
  dkim_aligned: number;
  dmarc_pass: number;
  /** At most HEADER_FROM_MAX, read cut (clippedColumn). */
  header_from: string[];
  ptr: string | null;
}

export function dmarcSourceFromRow(row: DmarcSourceSqlRow): DmarcSourceRow {
  const out: DmarcSourceRow = {
    sourceIp: row.source_ip,
    messages: row.messages,
    spfAligned: row.spf_aligned,
    dkimAligned: row.dkim_aligned,
    dmarcPass: row.dmarc_pass,
    headerFrom: row.header_from.map((h) => clipText(h, 'headerFrom', [])),
  };
  if (row.ptr !== null) out.ptr = row.ptr;
  return out;
}

/** A report's summary; as a list view (`listView`) long text is cut and `clipped` names the fields. */
export function dmarcSummaryFromRow(row: DmarcSummaryRow, listView = false): DmarcReportSummary {
  const clipped: string[] = [];
  const field = (value: string, name: string) => (listView ? clipText(value, name, clipped) : value);
  const summary: DmarcReportSummary = {
    id: row.id,
    organization: field(row.organization, 'organization'),
    reportId: field(row.report_id, 'reportId'),
    domain: field(row.domain, 'domain'),
    begin: row.begin_at,
    end: row.end_at,
    messages: row.messages,
    passed: row.passed,
    rows: row.rows,
    source: row.source as ReportSource,
    receivedAt: row.received_at,
  };
  if (clipped.length > 0) summary.clipped = clipped;
  return summary;
}

/** A filter's text value, checked. */
function filterText(value: unknown, field: string): string {
  if (typeof value !== 'string') throw storeInvalid(`${field}: must be a string`);
  return value;
}

/**
 * SQL conditions (ANDed, with their `?` parameters) of a listDmarcReports filter, on table dmarc_reports
 * (no alias); the range and paging are the caller's.
 */
export function dmarcReportFilterWhere(filter: DmarcReportFilter): { where: string[]; params: unknown[] } {
  const where: string[] = ['begin_ms >= ?', 'begin_ms < ?'];
  const params: unknown[] = [
    timeBound(filter.since, 'since', false) ?? Number.MIN_SAFE_INTEGER,
    timeBound(filter.until, 'until', true) ?? Number.MAX_SAFE_INTEGER,
  ];
  if (filter.domain !== undefined) {
    where.push('domain = ?');
    params.push(filter.domain === '' ? '' : domainKey(filter.domain));
  }
  if (filter.otherDomains === true) where.push(DMARC_OTHER_DOMAIN);
  if (filter.organization !== undefined) {
    where.push('organization = ?');
    params.push(filterText(filter.organization, 'organization'));
  }
  const rowFilters: string[] = [];
  if (filter.sourceIp !== undefined) {
    rowFilters.push('source_ip = ?');
    params.push(filterText(filter.sourceIp, 'sourceIp'));
  }
  if (filter.disposition !== undefined) {
    if (!['none', 'quarantine', 'reject'].includes(filter.disposition)) {
      throw storeInvalid(
        `disposition: ${describeValue(filter.disposition)} is not none, quarantine or reject`,
      );
    }
    rowFilters.push('disposition = ?');
    params.push(filter.disposition);
  }
  if (rowFilters.length > 0) {
    where.push(`id IN (SELECT report FROM dmarc_rows WHERE ${rowFilters.join(' AND ')})`);
  }
  return { where, params };
}

/**
 * The rows a dmarcSources filter counts: `matchingIn(t)` is the SQL condition for table alias `t`, taking
 * `params` in order.
 */
export function dmarcSourcesMatching(filter: DmarcSourceFilter): {
  params: unknown[];
  matchingIn(t: string): string;
} {
  if (typeof filter?.domain !== 'string') throw storeInvalid('domain: must be a string');
  if (filter.verdict !== undefined && filter.verdict !== 'pass' && filter.verdict !== 'fail') {
    throw storeInvalid(`verdict: ${describeValue(filter.verdict)} is not pass or fail`);
  }
  const params: unknown[] = [
    domainKey(filter.domain),
    timeBound(filter.since, 'since', false) ?? Number.MIN_SAFE_INTEGER,
    timeBound(filter.until, 'until', true) ?? Number.MAX_SAFE_INTEGER,
  ];
  const matchingIn = (t: string) => {
    const where = [`${t}.domain = ?`, `${t}.begin_ms >= ?`, `${t}.begin_ms < ?`];
    const pass = `(${t}.spf = 'pass' OR ${t}.dkim = 'pass')`;
    if (filter.verdict !== undefined) where.push(filter.verdict === 'pass' ? pass : `NOT ${pass}`);
    return where.join(' AND ');
  };
  return { params, matchingIn };
}

/** The IPs of a getPtrNames call, checked. */
export function checkedPtrLookup(ips: unknown): string[] {
  if (!Array.isArray(ips) || ips.some((ip) => typeof ip !== 'string')) {
    throw storeInvalid('ips: must be a list of strings');
  }
  if (ips.length > PTR_LOOKUP_MAX) throw storeInvalid(`ips: at most ${PTR_LOOKUP_MAX} at once`);
  return [...new Set(ips as string[])];
}

/** A setPtrName call, checked. */
export function checkPtrName(ip: unknown, name: unknown): void {
  if (typeof ip !== 'string' || ip === '') throw storeInvalid('ip: must be an address');
  if (typeof name !== 'string' || name.length > PTR_NAME_MAX) {
    throw storeInvalid(`name: must be a host name of at most ${PTR_NAME_MAX} characters ('' for none)`);
  }
}
