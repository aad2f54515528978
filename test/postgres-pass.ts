// Which test files `npm run test:postgres` runs again with MXGUARD_TEST_STORE=postgres (their
// testContext() / openTestApp() then stand on a lab PostgreSQL database: test/helpers/test-store.ts),
// and which files that build a context stay on SQLite, each with the reason. test/postgres-pass.test.ts
// keeps the two lists complete: a new serve test must be put in one of them.

/** The serve, intake, API and dashboard tests, run on both stores. */
export const POSTGRES_PASS: readonly string[] = [
  'test/server/acme.test.ts',
  'test/server/api-auth.test.ts',
  'test/server/api-csv.test.ts',
  'test/server/api-domains.test.ts',
  'test/server/api-monitor.test.ts',
  'test/server/api-openapi.test.ts',
  'test/server/api-other-domains.test.ts',
  'test/server/api-report-ranges.test.ts',
  'test/server/api-reports.test.ts',
  'test/server/api-route.test.ts',
  'test/server/app-proxy.test.ts',
  'test/server/app.test.ts',
  'test/server/dmarc-routes.test.ts',
  'test/server/dmarc-sources-spf.test.ts',
  'test/server/hosts.test.ts',
  'test/server/imap.test.ts',
  'test/server/ingest-dmarc.test.ts',
  'test/server/ingest.test.ts',
  'test/server/intake-caps.test.ts',
  'test/server/intake-dmarc.test.ts',
  'test/server/intake-https.test.ts',
  'test/server/mail-limits.test.ts',
  'test/server/mail.test.ts',
  'test/server/metrics-alerts.test.ts',
  'test/server/metrics.test.ts',
  'test/server/report-decoder.test.ts',
  'test/server/tls.test.ts',
  'test/server/web-dmarc.test.ts',
  'test/server/web-other-domains.test.ts',
  'test/server/web/dashboard.test.ts',
  'test/server/web/form-errors.test.ts',
  'test/server/web/monitoring.test.ts',
];

/** Files that build a test context but assert what only SQLite has; they run in the main pass only. */
export const SQLITE_ONLY: Readonly<Record<string, string>> = {
  // Rows of the era before report caps (test/helpers/legacy-reports.ts) hold megabyte organization
  // names and report ids, which PostgreSQL's unique index cannot hold (an index row is at most 8191
  // bytes): that era exists only in SQLite. These files hold only those tests; the rest of each
  // suite (the same name without -legacy) is in the pass.
  'test/server/api-openapi-legacy.test.ts': 'legacy megabyte rows (above)',
  'test/server/api-reports-legacy.test.ts': 'legacy megabyte rows (above)',
  'test/server/web/dashboard-legacy.test.ts': 'legacy megabyte rows (above)',
  'test/server/store-unavailable.test.ts':
    'a SQLite store behind a switch stands for the outage; the real one on PostgreSQL is store-unavailable-postgres.test.ts',
};
