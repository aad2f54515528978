// Reports about domains that are not configured ("other domains", issue 15), for both report kinds: the
// SQL conditions the report lists filter with and the per-domain summary, written once for the SQL
// stores (SQLite and PostgreSQL share the table layout: domains, reports + report_policies, dmarc_reports).
// A policy domain is stored as domainKey gives it, '' when the report names none (RFC 8460 §4.4
// policy-domain left out, RFC 7489 Appendix C <domain> empty).

/** One policy domain that is not configured, with how many reports of each kind are about it. */
export interface OtherDomainRow {
  /** '' for reports that name no policy domain. */
  domain: string;
  /** TLS-RPT reports with a policy for this domain ('': with no named policy domain at all). */
  tlsrptReports: number;
  dmarcReports: number;
  /** The newest report's range start, ISO. */
  lastReportAt: string;
}

/**
 * A TLS-RPT report (alias `r` of `reports`) none of whose policy domains is configured; a report that
 * names no policy domain is one of them.
 */
export const TLSRPT_OTHER_DOMAINS =
  'NOT EXISTS (SELECT 1 FROM report_policies op JOIN domains od ON od.name = op.domain WHERE op.report = r.id)';

/** A TLS-RPT report (alias `r`) that names no policy domain: no policy, or none with a policy-domain. */
export const TLSRPT_NO_POLICY_DOMAIN =
  "NOT EXISTS (SELECT 1 FROM report_policies np WHERE np.report = r.id AND np.domain <> '')";

/** A DMARC report (table `dmarc_reports`) whose policy domain is not configured ('' included). */
export const DMARC_OTHER_DOMAIN = 'dmarc_reports.domain NOT IN (SELECT name FROM domains)';

/** Every other domain with its counts: columns domain, tlsrpt_reports, dmarc_reports, last_ms. */
const OTHER_DOMAINS = `SELECT domain, sum(tlsrpt) AS tlsrpt_reports, sum(dmarc) AS dmarc_reports, max(last_ms) AS last_ms
  FROM (
    SELECT domain, count(DISTINCT report) AS tlsrpt, 0 AS dmarc, max(start_ms) AS last_ms
      FROM report_policies WHERE domain <> '' AND domain NOT IN (SELECT name FROM domains) GROUP BY domain
    UNION ALL
    SELECT '' AS domain, count(*) AS tlsrpt, 0 AS dmarc, max(r.start_ms) AS last_ms
      FROM reports r WHERE ${TLSRPT_NO_POLICY_DOMAIN} HAVING count(*) > 0
    UNION ALL
    SELECT domain, 0 AS tlsrpt, count(*) AS dmarc, max(begin_ms) AS last_ms
      FROM dmarc_reports WHERE ${DMARC_OTHER_DOMAIN} GROUP BY domain
  ) other
  GROUP BY domain`;

/**
 * The queries of one page of other domains, in name order ('' first). `placeholder(n)` writes the n-th
 * parameter (SQLite `?`, PostgreSQL `$n`); the page query takes (cursor domain, limit) with a cursor,
 * (limit) without. Its rows carry `total` too (a window count over every other domain, so one pass
 * serves both); `total` alone is for a page that came back empty.
 * Cost: the reports naming no policy domain are found by a scan of every TLS-RPT report (a report
 * with no policy has no row to index), about 0.1 s per 100,000 reports on SQLite.
 */
export function otherDomainsQueries(
  placeholder: (n: number) => string,
  afterCursor: boolean,
): { total: string; page: string } {
  const after = afterCursor ? `WHERE domain > ${placeholder(1)}` : '';
  return {
    total: `SELECT count(*) AS total FROM (${OTHER_DOMAINS}) counted`,
    page: `SELECT * FROM (SELECT o.*, count(*) OVER () AS total FROM (${OTHER_DOMAINS}) o) listed ${after}
      ORDER BY domain LIMIT ${placeholder(afterCursor ? 2 : 1)}`,
  };
}

/** A row of the page query as the Store gives it (PostgreSQL's bigint sums arrive as strings). */
export function otherDomainFromRow(row: {
  domain: string;
  tlsrpt_reports: number | string;
  dmarc_reports: number | string;
  last_ms: number | string;
}): OtherDomainRow {
  return {
    domain: row.domain,
    tlsrptReports: Number(row.tlsrpt_reports),
    dmarcReports: Number(row.dmarc_reports),
    lastReportAt: new Date(Number(row.last_ms)).toISOString(),
  };
}
