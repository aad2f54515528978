// The policy fetches of access logs, counted per UTC day, per fetcher (src/mtasts/fetcher.ts) and per
// policy host when the log records it: how many, with which status codes, and how many failed for the
// sender. RFC 8461 §3.3: senders fetch https://mta-sts.<domain>/.well-known/mta-sts.txt, follow no
// redirect and need a 200, so any other status (3xx included) is a failed fetch.
import { classifyUserAgent, type FetcherLabel } from '../mtasts/fetcher.js';
import { POLICY_PATH } from '../mtasts/url.js';
import type { AccessEntry } from './parse.js';

/** At most this many (day, fetcher, host) rows; later new rows are counted in `droppedRows`. */
export const MAX_ROWS = 100_000;
/** Malformed lines kept as examples. */
const SAMPLES = 5;

export interface FetchRow {
  day: string;
  fetcher: FetcherLabel;
  /** The policy host, when the log records it. */
  host?: string;
  fetches: number;
  /** Count per HTTP status code. */
  statuses: Record<string, number>;
  /** Fetches a sender could not use (status other than 200). */
  failed: number;
}

export interface FetchTallyResult {
  lines: number;
  /** Requests read (every path). */
  requests: number;
  /** Policy fetches among them. */
  fetches: number;
  failed: number;
  malformed: number;
  malformedSamples: Array<{ where: string; reason: string }>;
  droppedRows: number;
  /** By day, then fetcher, then host. */
  rows: FetchRow[];
}

export class FetchTally {
  private readonly rows = new Map<string, FetchRow>();
  private readonly counts = { lines: 0, requests: 0, fetches: 0, failed: 0, malformed: 0, droppedRows: 0 };
  private readonly samples: Array<{ where: string; reason: string }> = [];

  line(): void {
    this.counts.lines++;
  }

  malformed(where: string, reason: string): void {
    this.counts.malformed++;
    if (this.samples.length < SAMPLES) this.samples.push({ where, reason });
  }

  /** Count one request; true when it is a policy fetch. */
  entry(e: AccessEntry): boolean {
    this.counts.requests++;
    if (e.path !== POLICY_PATH || (e.method !== 'GET' && e.method !== 'HEAD')) return false;
    this.counts.fetches++;
    const ok = e.status === 200;
    if (!ok) this.counts.failed++;
    const day = e.at.slice(0, 10);
    const fetcher = classifyUserAgent(e.userAgent);
    const key = JSON.stringify([day, fetcher, e.host ?? null]);
    let row = this.rows.get(key);
    if (row === undefined) {
      if (this.rows.size >= MAX_ROWS) {
        this.counts.droppedRows++;
        return true;
      }
      row = { day, fetcher, fetches: 0, statuses: {}, failed: 0 };
      if (e.host !== undefined) row.host = e.host;
      this.rows.set(key, row);
    }
    row.fetches++;
    row.statuses[e.status] = (row.statuses[e.status] ?? 0) + 1;
    if (!ok) row.failed++;
    return true;
  }

  result(): FetchTallyResult {
    const rows = [...this.rows.values()].sort(
      (a, b) =>
        a.day.localeCompare(b.day) ||
        a.fetcher.localeCompare(b.fetcher) ||
        (a.host ?? '').localeCompare(b.host ?? ''),
    );
    return { ...this.counts, malformedSamples: [...this.samples], rows };
  }
}
