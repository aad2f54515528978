// DMARC aggregate reports (RFC 7489 Appendix C) as parsedmarc's flat aggregate CSV: one line per
// <record>, the report's facts repeated on each, so spreadsheets and scripts written for parsedmarc's
// output read ours. Filled: what the report says, the reverse DNS name when serve's background lookup
// cached one (source_reverse_dns) and its registrable domain (source_base_domain, Public Suffix List).
// Left empty: xml_schema and errors (not kept), org_extra_contact_info, source_country (no GeoIP data).
// Booleans are "True"/"False" and lists are joined with "|", as parsedmarc writes them. Times are UTC,
// "YYYY-MM-DD HH:MM:SS". Cells are written by src/common/csv.ts (RFC 4180, formulas defused: report
// values are whatever the reporter wrote).
import { getDomain } from 'tldts';
import { csvRecord, csvRow } from '../common/csv.js';
import type { DmarcRecordRow, DmarcReport } from './report.js';

export const DMARC_CSV_COLUMNS = [
  'xml_schema',
  'org_name',
  'org_email',
  'org_extra_contact_info',
  'report_id',
  'begin_date',
  'end_date',
  'errors',
  'domain',
  'adkim',
  'aspf',
  'p',
  'sp',
  'pct',
  'fo',
  'source_ip_address',
  'source_country',
  'source_reverse_dns',
  'source_base_domain',
  'count',
  'spf_aligned',
  'dkim_aligned',
  'dmarc_aligned',
  'disposition',
  'policy_override_reasons',
  'policy_override_comments',
  'envelope_from',
  'header_from',
  'envelope_to',
  'dkim_domains',
  'dkim_selectors',
  'dkim_results',
  'spf_domains',
  'spf_scopes',
  'spf_results',
] as const;

type Column = (typeof DMARC_CSV_COLUMNS)[number];

/** The header line, CRLF-terminated (RFC 4180 §2). */
export function dmarcCsvHeader(): string {
  return csvRow(DMARC_CSV_COLUMNS);
}

/** One CSV line per record of `report`; `ptrNames` maps source IPs to cached reverse DNS names. */
export function dmarcCsvLines(
  report: DmarcReport,
  ptrNames: ReadonlyMap<string, string> = new Map(),
): string {
  return report.records
    .map((row) => csvRecord(DMARC_CSV_COLUMNS, cells(report, row, ptrNames.get(row.sourceIp) ?? '')))
    .join('');
}

function cells(report: DmarcReport, row: DmarcRecordRow, ptr: string): Record<Column, string> {
  const policy = report.policyPublished;
  const optional = (value: string | number | undefined) => (value === undefined ? '' : String(value));
  return {
    xml_schema: '',
    org_name: report.organization,
    org_email: optional(report.email),
    org_extra_contact_info: '',
    report_id: report.reportId,
    begin_date: csvTime(report.begin),
    end_date: csvTime(report.end),
    errors: '',
    domain: report.domain,
    adkim: optional(policy.adkim),
    aspf: optional(policy.aspf),
    p: policy.p,
    sp: optional(policy.sp),
    pct: optional(policy.pct),
    fo: optional(policy.fo),
    source_ip_address: row.sourceIp,
    source_country: '',
    source_reverse_dns: ptr,
    source_base_domain: ptr === '' ? '' : (getDomain(ptr) ?? ''),
    count: String(row.count),
    spf_aligned: pyBool(row.spf === 'pass'),
    dkim_aligned: pyBool(row.dkim === 'pass'),
    dmarc_aligned: pyBool(row.spf === 'pass' || row.dkim === 'pass'),
    disposition: row.disposition,
    policy_override_reasons: row.reasons.map((r) => r.type).join('|'),
    policy_override_comments: row.reasons.map((r) => r.comment ?? '').join('|'),
    envelope_from: optional(row.envelopeFrom),
    header_from: row.headerFrom,
    envelope_to: optional(row.envelopeTo),
    dkim_domains: row.dkimResults.map((d) => d.domain).join('|'),
    dkim_selectors: row.dkimResults.map((d) => d.selector ?? '').join('|'),
    dkim_results: row.dkimResults.map((d) => d.result).join('|'),
    spf_domains: row.spfResults.map((s) => s.domain).join('|'),
    spf_scopes: row.spfResults.map((s) => s.scope ?? '').join('|'),
    spf_results: row.spfResults.map((s) => s.result).join('|'),
  };
}

/** UTC "YYYY-MM-DD HH:MM:SS", as parsedmarc writes times. */
export function csvTime(iso: string): string {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? iso : new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

function pyBool(value: boolean): string {
  return value ? 'True' : 'False';
}
