// Report rows as an older mxguard stored them, before report fields had size caps: written with
// plain SQL into the database file (the Store's own checks would refuse them today), so that tests
// can show that list views, the detail view, deletion and the CLI stay bounded on databases that
// already hold megabyte strings. SQLite only (the era before caps never existed on PostgreSQL): the
// serve tests that use it are the *-legacy.test.ts files, outside the PostgreSQL pass (test/postgres-pass.ts).
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DATABASE_FILE } from '../../src/store/sqlite.js';

export interface LegacyFailure {
  resultType: string;
  count: number;
  sendingMtaIp?: string;
  receivingMxHostname?: string;
}

export interface LegacyReport {
  organization: string;
  reportId: string;
  /** ISO start of the date range; the end is a day later. */
  start: string;
  domain: string;
  successful?: number;
  failures?: LegacyFailure[];
  submitter?: string;
  receivedAt?: string;
}

/** One MiB of text. */
export const MIB = 1024 * 1024;

/** Insert reports as rows of the schema in `dataDir`'s database; returns their ids. */
export function insertLegacyReports(dataDir: string, reports: LegacyReport[]): number[] {
  const db = new Database(join(dataDir, DATABASE_FILE), { timeout: 10_000 });
  try {
    db.pragma('foreign_keys = ON');
    const insertReport = db.prepare<unknown[], { id: number }>(
      `INSERT INTO reports (organization, report_id, start_at, end_at, start_ms, successful, failed, source,
         dkim, submitter, warnings, report_json, received_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'https', 'none', ?, '[]', ?, ?) RETURNING id`,
    );
    const insertPolicy = db.prepare<unknown[], { id: number }>(
      `INSERT INTO report_policies (report, type, domain, start_ms, start_day, organization, successful, failed)
       VALUES (?, 'sts', ?, ?, ?, ?, ?, ?) RETURNING id`,
    );
    const insertFailure = db.prepare(
      `INSERT INTO failures (policy, domain, start_ms, result_type, count, sending_mta_ip, receiving_mx_hostname)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    return db.transaction(() =>
      reports.map((r) => {
        const startMs = Date.parse(r.start);
        const end = new Date(startMs + 86_400_000 - 1000).toISOString();
        const failures = r.failures ?? [];
        const failed = failures.reduce((n, f) => n + f.count, 0);
        const successful = r.successful ?? 1;
        const report = {
          organization: r.organization,
          reportId: r.reportId,
          start: r.start,
          end,
          policies: [
            {
              type: 'sts',
              domain: r.domain,
              policyStrings: [],
              mxHosts: [],
              successful,
              failed,
              failures,
            },
          ],
        };
        const { id } = insertReport.get(
          r.organization,
          r.reportId,
          r.start,
          end,
          startMs,
          successful,
          failed,
          r.submitter ?? null,
          JSON.stringify(report),
          r.receivedAt ?? new Date(startMs + 86_400_000).toISOString(),
        )!;
        const policy = insertPolicy.get(
          id,
          r.domain,
          startMs,
          new Date(startMs).toISOString().slice(0, 10),
          r.organization,
          successful,
          failed,
        )!;
        for (const f of failures) {
          insertFailure.run(
            policy.id,
            r.domain,
            startMs,
            f.resultType,
            f.count,
            f.sendingMtaIp ?? null,
            f.receivingMxHostname ?? null,
          );
        }
        return id;
      }),
    )();
  } finally {
    db.close();
  }
}

/** Rows of each table that belong to report `id` (the report, its policies, their failures). */
export function rowsOfReport(
  dataDir: string,
  id: number,
): { reports: number; policies: number; failures: number } {
  const db = new Database(join(dataDir, DATABASE_FILE), { readonly: true });
  try {
    const count = (sql: string) => db.prepare(sql).pluck().get(id) as number;
    return {
      reports: count('SELECT count(*) FROM reports WHERE id = ?'),
      policies: count('SELECT count(*) FROM report_policies WHERE report = ?'),
      failures: count(
        'SELECT count(*) FROM failures WHERE policy IN (SELECT id FROM report_policies WHERE report = ?)',
      ),
    };
  } finally {
    db.close();
  }
}
