// The bulk-check queue (check-queue-types.ts): the rules both stores apply to what callers hand in
// (batch names, domains, holders, leases, results, all checked and capped before any SQL), and the SQLite
// queue on table check_jobs (migration 6). Each call is one IMMEDIATE transaction, so two processes on
// one file never claim the same job: the second waits for the first's commit and then sees the job taken.
import type Database from 'better-sqlite3';
import { count } from './bounds.js';
import type {
  CheckBatchCounts,
  CheckQueue,
  CheckResultPage,
  CheckResultRow,
  ClaimedCheck,
  FinishedCheck,
} from './check-queue-types.js';
import { describeValue, validDomainName } from './domain-rules.js';
import { storeInvalid } from './types.js';

export type * from './check-queue-types.js';

/** Batch names: what a person types on a command line, no spaces or quotes. */
const BATCH_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** The batch `check --enqueue`, `worker` and `check --results` use without --batch. */
export const DEFAULT_BATCH = 'default';
/** Domains per enqueue call (callers enqueue a long list in chunks, each one transaction). */
export const ENQUEUE_MAX = 1000;
/** Jobs per claim. */
export const CLAIM_MAX = 1000;
/** Finished jobs per complete call. */
export const COMPLETE_MAX = 1000;
/** Longest lease: a day (a worker renews far more often). */
export const LEASE_MAX_MS = 86_400_000;
/** Longest result line stored (a domain's check result is a few kB; a hostile zone may try for more). */
export const RESULT_MAX_BYTES = 1024 * 1024;
/** Results per page at most. */
export const RESULTS_PAGE_MAX = 1000;
/** A job whose lease ran out this many times (each holder died on it) is done with an error result. */
export const MAX_CLAIMS = 5;
/** Longest holder name (host name, process id, a random part). */
const HOLDER_MAX = 200;

export function checkedBatch(batch: string): string {
  if (typeof batch !== 'string' || !BATCH_NAME.test(batch))
    throw storeInvalid(
      `batch ${describeValue(batch)}: use 1 to 64 letters, digits, dots, dashes and underscores`,
    );
  return batch;
}

/** The domains normalised as the store keeps them; throws STORE_INVALID naming the first bad one. */
export function checkedDomains(domains: readonly string[]): string[] {
  if (!Array.isArray(domains) || domains.length > ENQUEUE_MAX)
    throw storeInvalid(`domains: give a list of at most ${ENQUEUE_MAX} per call`);
  return domains.map(validDomainName);
}

export function checkedHolder(holder: string): string {
  if (
    typeof holder !== 'string' ||
    holder.length === 0 ||
    holder.length > HOLDER_MAX ||
    /[^\x21-\x7e]/.test(holder)
  )
    throw storeInvalid(`holder ${describeValue(holder)}: 1 to ${HOLDER_MAX} printable characters`);
  return holder;
}

export function checkedLease(lease: { limit: number; leaseMs: number }): { limit: number; leaseMs: number } {
  const limit = count(lease.limit, 'limit', 1, CLAIM_MAX);
  if (!Number.isSafeInteger(lease.leaseMs) || lease.leaseMs < 1 || lease.leaseMs > LEASE_MAX_MS)
    throw storeInvalid(
      `leaseMs: ${describeValue(lease.leaseMs)} is not a whole number from 1 to ${LEASE_MAX_MS}`,
    );
  return { limit, leaseMs: lease.leaseMs };
}

/** Claimed jobs handed back: at most CLAIM_MAX, each with the id and attempt of its claim. */
export function checkedJobs(jobs: readonly ClaimedCheck[]): readonly ClaimedCheck[] {
  if (!Array.isArray(jobs) || jobs.length > CLAIM_MAX)
    throw storeInvalid(`jobs: give a list of at most ${CLAIM_MAX} per call`);
  for (const job of jobs)
    if (!Number.isSafeInteger(job?.id) || !Number.isSafeInteger(job?.attempt))
      throw storeInvalid('jobs: each needs the id and attempt of its claim');
  return jobs;
}

/** A claim's arguments checked, with the times it is made at. */
export function checkedClaim(
  batch: string,
  holder: string,
  lease: { limit: number; leaseMs: number },
  now: Date,
): { name: string; who: string; limit: number; leaseMs: number; nowMs: number; at: string } {
  return {
    name: checkedBatch(batch),
    who: checkedHolder(holder),
    ...checkedLease(lease),
    nowMs: now.getTime(),
    at: now.toISOString(),
  };
}

/** Finished jobs with a result each that is one line, at most RESULT_MAX_BYTES. */
export function checkedFinished(finished: readonly FinishedCheck[]): readonly FinishedCheck[] {
  if (!Array.isArray(finished) || finished.length > COMPLETE_MAX)
    throw storeInvalid(`finished: give a list of at most ${COMPLETE_MAX} per call`);
  checkedJobs(finished.map((f) => f.job));
  for (const { job, result } of finished) {
    if (typeof result !== 'string' || /[\r\n]/.test(result))
      throw storeInvalid(`result of job ${job.id}: must be one line of text`);
    if (Buffer.byteLength(result) > RESULT_MAX_BYTES)
      throw storeInvalid(`result of job ${job.id}: longer than ${RESULT_MAX_BYTES} bytes`);
  }
  return finished;
}

/** The result a job gets when MAX_CLAIMS holders in a row stopped without finishing it. */
export function gaveUpResult(domain: string, claims: number): string {
  return JSON.stringify({
    domain,
    status: 'error',
    findings: [],
    error: `not checked: ${claims} workers in a row stopped while holding it`,
  });
}

/** A results page request checked: after (an id, 0 = from the start) and limit (1 to RESULTS_PAGE_MAX). */
export function checkedResultPage(page: { after?: number; limit?: number }): {
  after: number;
  limit: number;
} {
  return {
    after: count(page.after, 'after', 0),
    limit: Math.max(1, count(page.limit, 'limit', 100, RESULTS_PAGE_MAX)),
  };
}

/** The page of `rows` (read with LIMIT limit + 1: one more tells whether a next page exists). */
export function resultPage(rows: CheckResultRow[], limit: number): CheckResultPage {
  const items = rows.slice(0, limit);
  return { items, next: rows.length > limit ? items[items.length - 1]!.id : null };
}

/** A job row as both stores read it back for its claim. */
export interface JobRow {
  id: number;
  batch: string;
  domain: string;
  attempts: number;
}

export const claimedFromRow = (row: JobRow): ClaimedCheck => ({
  id: row.id,
  batch: row.batch,
  domain: row.domain,
  attempt: row.attempts,
});

/** Claims in list order (the order of their ids). */
export const byId = (a: ClaimedCheck, b: ClaimedCheck) => a.id - b.id;

export class SqliteCheckQueue implements CheckQueue {
  constructor(
    private readonly db: Database.Database,
    private readonly use: <T>(step: () => T) => T,
  ) {}

  async enqueue(batch: string, domains: readonly string[], now: Date): Promise<{ added: number }> {
    const name = checkedBatch(batch);
    const keys = checkedDomains(domains);
    const at = now.toISOString();
    return this.use(() =>
      this.db
        .transaction(() => {
          const insert = this.db.prepare(
            `INSERT INTO check_jobs (batch, domain, state, attempts, enqueued_at) VALUES (?, ?, 'queued', 0, ?)
             ON CONFLICT (batch, domain) DO NOTHING`,
          );
          let added = 0;
          for (const key of keys) added += insert.run(name, key, at).changes;
          return { added };
        })
        .immediate(),
    );
  }

  async claim(
    batch: string,
    holder: string,
    lease: { limit: number; leaseMs: number },
    now: Date,
  ): Promise<ClaimedCheck[]> {
    const { name, who, limit, leaseMs, nowMs, at } = checkedClaim(batch, holder, lease, now);
    return this.use(() =>
      this.db
        .transaction(() => {
          const claimWhere = (where: string, order: string) =>
            this.db.prepare<unknown[], JobRow>(
              `UPDATE check_jobs SET state = 'claimed', holder = ?, attempts = attempts + 1,
                 lease_until_ms = ?, claimed_at = ?
               WHERE id IN (SELECT id FROM check_jobs WHERE batch = ? AND ${where} ORDER BY ${order} LIMIT ?)
               RETURNING id, batch, domain, attempts`,
            );
          const claimedBy = [who, nowMs + leaseMs, at, name];
          this.giveUp(name, nowMs, at);
          // Jobs whose holder stopped first (they have waited longest), then queued ones in list order.
          const expired = claimWhere("state = 'claimed' AND lease_until_ms <= ?", 'lease_until_ms, id')
            .all(...claimedBy, nowMs, limit)
            .map(claimedFromRow)
            .sort(byId);
          const queued =
            expired.length < limit
              ? claimWhere("state = 'queued'", 'id')
                  .all(...claimedBy, limit - expired.length)
                  .map(claimedFromRow)
                  .sort(byId)
              : [];
          return [...expired, ...queued];
        })
        .immediate(),
    );
  }

  /** Jobs of the batch whose lease ran out after MAX_CLAIMS claims become done with gaveUpResult. */
  private giveUp(batch: string, nowMs: number, at: string): void {
    const stuck = this.db
      .prepare<[string, number, number, number], JobRow>(
        `SELECT id, batch, domain, attempts FROM check_jobs
         WHERE batch = ? AND state = 'claimed' AND lease_until_ms <= ? AND attempts >= ? LIMIT ?`,
      )
      .all(batch, nowMs, MAX_CLAIMS, CLAIM_MAX);
    const done = this.db.prepare(
      `UPDATE check_jobs SET state = 'done', result = ?, holder = NULL, lease_until_ms = NULL, done_at = ?
       WHERE id = ?`,
    );
    for (const row of stuck) done.run(gaveUpResult(row.domain, row.attempts), at, row.id);
  }

  async renew(holder: string, leaseMs: number, now: Date): Promise<ClaimedCheck[]> {
    const who = checkedHolder(holder);
    const lease = checkedLease({ limit: 1, leaseMs }).leaseMs;
    return this.use(() =>
      this.db
        .prepare<[number, string], JobRow>(
          `UPDATE check_jobs SET lease_until_ms = ? WHERE holder = ? AND state = 'claimed'
           RETURNING id, batch, domain, attempts`,
        )
        .all(now.getTime() + lease, who)
        .map(claimedFromRow)
        .sort(byId),
    );
  }

  async complete(holder: string, finished: readonly FinishedCheck[], now: Date): Promise<number[]> {
    const who = checkedHolder(holder);
    const checked = checkedFinished(finished);
    const at = now.toISOString();
    return this.use(() =>
      this.db
        .transaction(() => {
          const done = this.db.prepare(
            `UPDATE check_jobs SET state = 'done', result = ?, holder = NULL, lease_until_ms = NULL, done_at = ?
             WHERE id = ? AND state = 'claimed' AND holder = ? AND attempts = ?`,
          );
          return checked
            .filter(({ job, result }) => done.run(result, at, job.id, who, job.attempt).changes === 1)
            .map(({ job }) => job.id);
        })
        .immediate(),
    );
  }

  async release(holder: string, jobs: readonly ClaimedCheck[]): Promise<number> {
    const who = checkedHolder(holder);
    const list = checkedJobs(jobs);
    return this.use(() =>
      this.db
        .transaction(() => {
          const back = this.db.prepare(
            `UPDATE check_jobs SET state = 'queued', holder = NULL, lease_until_ms = NULL
             WHERE id = ? AND state = 'claimed' AND holder = ? AND attempts = ?`,
          );
          let released = 0;
          for (const job of list) released += back.run(job.id, who, job.attempt).changes;
          return released;
        })
        .immediate(),
    );
  }

  async counts(batch: string): Promise<CheckBatchCounts> {
    const name = checkedBatch(batch);
    // One count per state, each read from that state's partial index.
    const of = (state: string) =>
      this.db
        .prepare<[string], number>(`SELECT count(*) FROM check_jobs WHERE batch = ? AND state = '${state}'`)
        .pluck()
        .get(name)!;
    return this.use(() =>
      this.db.transaction(() => ({ queued: of('queued'), claimed: of('claimed'), done: of('done') }))(),
    );
  }

  async results(batch: string, page: { after?: number; limit?: number } = {}): Promise<CheckResultPage> {
    const name = checkedBatch(batch);
    const { after, limit } = checkedResultPage(page);
    const rows = this.use(() =>
      this.db
        .prepare<[string, number, number], { id: number; domain: string; result: string }>(
          `SELECT id, domain, result FROM check_jobs WHERE batch = ? AND state = 'done' AND id > ?
           ORDER BY id LIMIT ?`,
        )
        .all(name, after, limit + 1),
    );
    return resultPage(rows, limit);
  }
}
