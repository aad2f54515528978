// What the store keeps for DMARC aggregate reports (issue 15), beside TLS-RPT reports: the report, its rows,
// and the aggregates the dashboard and API ask for. Plain data, no behaviour. The report type is the one
// src/dmarc/report.ts reads (layer 1, below the store).
import type { DmarcDisposition, DmarcReport, DmarcVerdict } from '../dmarc/report.js';

// Inline imports from types.ts (as monitor-types.ts does): types.ts's Store extends DmarcStore, so a
// static import back would be an import circle (test/architecture.test.ts).
type DkimVerdict = import('./types.js').DkimVerdict;
type Page<T> = import('./types.js').Page<T>;
type PageRequest = import('./types.js').PageRequest;
type PurgeFilter = import('./types.js').PurgeFilter;
type ReportSource = import('./types.js').ReportSource;
type OtherDomainRow = import('./other-domains.js').OtherDomainRow;

/**
 * A DMARC report made ready for a store by prepareDmarcReport: checked, with the sums it is listed by,
 * its rows as columns (one entry per <record>) and the report whole as JSON. Intake prepares reports in
 * its decoder threads (server/report-decoder.ts), so that the thread that writes to the store only
 * writes: a prepared report crosses threads as strings and flat lists, not as a tree of objects.
 */
export interface PreparedDmarcReport {
  kind: 'dmarc-prepared';
  organization: string;
  reportId: string;
  /** The policy domain as stored (domainKey; '' when the report names none). */
  domain: string;
  begin: string;
  end: string;
  beginMs: number;
  /** The UTC day of beginMs, YYYY-MM-DD: the daily chart's bucket. */
  beginDay: string;
  messages: number;
  /** Messages with a DMARC pass: aligned SPF or aligned DKIM pass (RFC 7489 §3.1, §6.6.2). */
  passed: number;
  rows: DmarcRowColumns;
  /** JSON.stringify of the DmarcReport: what the report's detail view reads back. */
  json: string;
}

/** The rows of a report as columns; headerFrom as stored (domainKey, '' when absent). */
export interface DmarcRowColumns {
  sourceIp: string[];
  count: number[];
  disposition: string[];
  dkim: string[];
  spf: string[];
  headerFrom: string[];
}

/** A report as a store takes it: as the parser read it, or already prepared. */
export type StorableDmarcReport = DmarcReport | PreparedDmarcReport;

export interface NewDmarcReport {
  report: StorableDmarcReport;
  source: ReportSource;
  /** DKIM of the e-mail that carried the report (as for TLS-RPT); 'unverified' for files. */
  dkim: DkimVerdict;
  submitter?: string;
  warnings: string[];
}

export interface DmarcReportSummary {
  id: number;
  organization: string;
  reportId: string;
  domain: string;
  begin: string;
  end: string;
  /** Sum of the rows' counts. */
  messages: number;
  /** Messages whose DMARC result is pass (aligned SPF or DKIM pass). */
  passed: number;
  /** Rows (source IP + results). */
  rows: number;
  source: ReportSource;
  receivedAt: string;
  /** List views: fields cut to LIST_TEXT_MAX characters (see paging.ts); absent when nothing was cut. */
  clipped?: string[];
}

export interface StoredDmarcReport extends DmarcReportSummary {
  report: DmarcReport;
  submitter?: string;
  warnings: string[];
}

export interface DmarcReportFilter extends PageRequest {
  /** '' for the reports that name no policy domain. */
  domain?: string;
  /** Only reports whose policy domain is not configured (src/store/other-domains.ts). */
  otherDomains?: boolean;
  /** ISO times bounding the report's date range (begin). */
  since?: string;
  until?: string;
  organization?: string;
  sourceIp?: string;
  disposition?: DmarcDisposition;
}

/** Messages per UTC day (by report begin) for one domain, by DMARC outcome. */
export interface DmarcDailyCounts {
  day: string;
  /** DMARC pass (aligned SPF or DKIM). */
  pass: number;
  /** DMARC fail and delivered (disposition none). */
  fail: number;
  quarantined: number;
  rejected: number;
}

/** One sending source (IP) over a time range, ranked by volume. */
export interface DmarcSourceRow {
  sourceIp: string;
  messages: number;
  /** Messages with aligned SPF pass / aligned DKIM pass / DMARC pass. */
  spfAligned: number;
  dkimAligned: number;
  dmarcPass: number;
  /** Distinct header_from domains seen for it (at most 10). */
  headerFrom: string[];
  /** Reverse DNS name when looked up (the background resolver fills it), else absent. */
  ptr?: string;
}

export interface DmarcSourceFilter extends PageRequest {
  domain: string;
  since?: string;
  until?: string;
  /** Only rows with this DMARC outcome. */
  verdict?: DmarcVerdict;
}

export interface DmarcStore {
  /** Idempotent on (organization, reportId, domain): `created` is false when it was already stored. */
  saveDmarcReport(input: NewDmarcReport, now: Date): Promise<{ id: number; created: boolean }>;
  /** Newest begin first (ties: newest id first), with total. */
  listDmarcReports(filter?: DmarcReportFilter): Promise<Page<DmarcReportSummary>>;
  getDmarcReport(id: number): Promise<StoredDmarcReport | undefined>;
  deleteDmarcReports(ids: number[]): Promise<number[]>;
  /**
   * Deletes up to `limit` reports of the policy domain `domain` and/or whose range begins before `before`, oldest
   * first, in one transaction (0: only count); `remaining` is how many still match afterwards (as purgeReports).
   */
  purgeDmarcReports(filter: PurgeFilter): Promise<{ deleted: number; remaining: number }>;
  dmarcDailyCounts(domain: string, since: string, until: string): Promise<DmarcDailyCounts[]>;
  /** Sources ranked by messages (desc), paged, with total. */
  dmarcSources(filter: DmarcSourceFilter): Promise<Page<DmarcSourceRow>>;
  /** Reverse DNS cache for source IPs: names found (or '' for none) with the time they were looked up. */
  getPtrNames(ips: string[]): Promise<Map<string, { name: string; at: string }>>;
  setPtrName(ip: string, name: string, now: Date): Promise<void>;
  /**
   * Policy domains of stored reports of both kinds (TLS-RPT and DMARC) that are not configured, by name
   * ('' first: reports naming none), with counts, paged with total. Here beside DMARC as issue 15's view.
   */
  listOtherDomains(page?: PageRequest): Promise<Page<OtherDomainRow>>;
}
