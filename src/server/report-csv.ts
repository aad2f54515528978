// Stored reports as CSV, in parsedmarc's columns (src/dmarc/csv.ts, src/tlsrpt/csv.ts): each report read
// whole from the store, one at a time, so that `mxguard reports list --format csv` and the API's
// GET /api/reports.csv and /api/dmarc/reports.csv write the same lines with bounded memory.
import { dmarcCsvLines } from '../dmarc/csv.js';
import { PTR_LOOKUP_MAX } from '../store/dmarc-rows.js';
import type { Store } from '../store/types.js';
import { tlsrptCsvLines } from '../tlsrpt/csv.js';

/**
 * The CSV lines of DMARC report `id` (one per record), with the reverse DNS names serve's background
 * lookups cached; undefined when it is gone (deleted since it was listed).
 */
export async function dmarcReportCsv(store: Store, id: number): Promise<string | undefined> {
  const stored = await store.getDmarcReport(id);
  if (!stored) return undefined;
  const ips = [...new Set(stored.report.records.map((r) => r.sourceIp))];
  const names = new Map<string, string>();
  for (let i = 0; i < ips.length; i += PTR_LOOKUP_MAX) {
    for (const [ip, found] of await store.getPtrNames(ips.slice(i, i + PTR_LOOKUP_MAX)))
      names.set(ip, found.name);
  }
  return dmarcCsvLines(stored.report, names);
}

/** The CSV lines of TLS-RPT report `id` (per policy a summary line, then a line per failure detail). */
export async function tlsrptReportCsv(store: Store, id: number): Promise<string | undefined> {
  const stored = await store.getReport(id);
  return stored ? tlsrptCsvLines(stored.report) : undefined;
}
