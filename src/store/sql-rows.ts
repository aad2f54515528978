// Rows of the SQL stores (SQLite and PostgreSQL share one table layout) turned into the Store's objects:
// domains, report summaries (list views clipped, see paging.ts), rejected input; and the watchOnly flag
// as callers give it. Each store reads its rows its own way and hands them here in this shape.
import { describeValue } from './domain-rules.js';
import { clipText, LIST_DOMAINS_MAX } from './paging.js';
import {
  type DkimVerdict,
  type Domain,
  type RejectedInput,
  type ReportSource,
  type StoredReportSummary,
  StoreError,
} from './types.js';

export interface DomainRow {
  name: string;
  mode: string;
  /** JSON arrays. */
  mx: string;
  rua: string;
  max_age: number;
  policy_id: string;
  policy_text: string;
  created_at: string;
  updated_at: string;
  /** SQLite: 0 or 1; PostgreSQL: a boolean. */
  watch_only: number | boolean;
}

/** A domain from its row; `watchOnly` only when true (DomainSettings: absent means false). */
export function domainFromRow(row: DomainRow): Domain {
  const domain: Domain = {
    name: row.name,
    mode: row.mode as Domain['mode'],
    mx: JSON.parse(row.mx) as string[],
    maxAge: row.max_age,
    rua: JSON.parse(row.rua) as string[],
    policyId: row.policy_id,
    policyText: row.policy_text,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
  if (row.watch_only === 1 || row.watch_only === true) domain.watchOnly = true;
  return domain;
}

/** DomainSettings.watchOnly as given, or `fallback` when absent. */
export function watchOnlyFlag(value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw new StoreError('STORE_INVALID', `watchOnly: ${describeValue(value)} is not true or false`);
  }
  return value;
}

export interface ReportSummaryRow {
  id: number;
  organization: string;
  report_id: string;
  start_at: string;
  end_at: string;
  successful: number;
  failed: number;
  source: string;
  dkim: string;
  received_at: string;
  /** The report's policy domains (a list view reads at most LIST_DOMAINS_MAX + 1). */
  domains: string[];
}

/**
 * A report's summary from its row; as a list view (`listView`, text read cut by clippedColumn) long
 * text is cut and `clipped` names the fields.
 */
export function reportSummary(row: ReportSummaryRow, listView = false): StoredReportSummary {
  const clipped: string[] = [];
  const text = (value: string, field: string) => (listView ? clipText(value, field, clipped) : value);
  const organization = text(row.organization, 'organization');
  const reportId = text(row.report_id, 'reportId');
  let domains = row.domains;
  if (listView && domains.length > LIST_DOMAINS_MAX) {
    domains = domains.slice(0, LIST_DOMAINS_MAX);
    clipped.push('domains');
  }
  domains = domains.map((d) => text(d, 'domains')).sort();
  const summary: StoredReportSummary = {
    id: row.id,
    organization,
    reportId,
    start: row.start_at,
    end: row.end_at,
    domains,
    successful: row.successful,
    failed: row.failed,
    source: row.source as ReportSource,
    dkim: row.dkim as DkimVerdict,
    receivedAt: row.received_at,
  };
  if (clipped.length > 0) summary.clipped = clipped;
  return summary;
}

export interface RejectedRow {
  id: number;
  source: string;
  submitter: string | null;
  reason: string;
  size: number;
  received_at: string;
}

/** Rejected input as list views show it (submitter and reason read cut by clippedColumn). */
export function rejectedFromRow(row: RejectedRow): RejectedInput {
  const clipped: string[] = [];
  const out: RejectedInput = {
    id: row.id,
    source: row.source as ReportSource,
    reason: '',
    size: row.size,
    receivedAt: row.received_at,
  };
  if (row.submitter !== null) out.submitter = clipText(row.submitter, 'submitter', clipped);
  out.reason = clipText(row.reason, 'reason', clipped);
  if (clipped.length > 0) out.clipped = clipped;
  return out;
}

/** The stored content columns of a report row (either kind): the report as JSON, its warnings, who sent it. */
export interface ReportContentRow {
  report_json: string;
  warnings: string;
  submitter: string | null;
}

/** A whole stored report: its summary with the report, warnings and (when known) submitter read back. */
export function withReportContent<S, R>(
  summary: S,
  row: ReportContentRow,
): S & { report: R; warnings: string[]; submitter?: string } {
  const stored: S & { report: R; warnings: string[]; submitter?: string } = {
    ...summary,
    report: JSON.parse(row.report_json) as R,
    warnings: JSON.parse(row.warnings) as string[],
  };
  if (row.submitter !== null) stored.submitter = row.submitter;
  return stored;
}
