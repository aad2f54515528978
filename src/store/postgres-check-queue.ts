// The bulk-check queue (check-queue-types.ts) on PostgreSQL, table check_jobs (migration 6): workers on
// several machines claim jobs with SELECT ... FOR UPDATE SKIP LOCKED, so two claims running at once take
// different jobs without waiting for each other, and the UPDATE that follows marks them claimed with a
// lease in the same statement. Under READ COMMITTED a row another claim changed in the meantime is checked
// again against the WHERE clause before it is locked, so a job is never held by two claims. A result is
// written only by the claim (holder and attempt) that holds the job. The same rules as the SQLite queue
// (check-queue.ts) apply to everything handed in.
import {
  byId,
  CLAIM_MAX,
  checkedBatch,
  checkedClaim,
  checkedDomains,
  checkedFinished,
  checkedHolder,
  checkedJobs,
  checkedLease,
  checkedResultPage,
  claimedFromRow,
  gaveUpResult,
  type JobRow,
  MAX_CLAIMS,
  resultPage,
} from './check-queue.js';
import type {
  CheckBatchCounts,
  CheckQueue,
  CheckResultPage,
  ClaimedCheck,
  FinishedCheck,
} from './check-queue-types.js';
import { type Db, type PgRunner, query } from './postgres-sql.js';

/** Claims the jobs `pick` selects (locked, others' locked rows skipped) for the holder until leaseUntil. */
async function claimPicked(
  db: Db,
  pick: string,
  params: unknown[],
  holder: string,
  leaseUntilMs: number,
  at: string,
): Promise<ClaimedCheck[]> {
  const rows = await query<JobRow>(
    db,
    `WITH picked AS (${pick} FOR UPDATE SKIP LOCKED)
     UPDATE check_jobs j SET state = 'claimed', holder = ?, attempts = j.attempts + 1, lease_until_ms = ?,
       claimed_at = ?
     FROM picked WHERE j.id = picked.id
     RETURNING j.id, j.batch, j.domain, j.attempts`,
    [...params, holder, leaseUntilMs, at],
  );
  return rows.map(claimedFromRow).sort(byId);
}

export class PgCheckQueue implements CheckQueue {
  constructor(private readonly db: PgRunner) {}

  async enqueue(batch: string, domains: readonly string[], now: Date): Promise<{ added: number }> {
    const name = checkedBatch(batch);
    const keys = checkedDomains(domains);
    if (keys.length === 0) return { added: 0 };
    // unnest WITH ORDINALITY keeps the list's order in the ids (results come back in that order).
    const rows = await this.db.use(() =>
      query<{ id: number }>(
        this.db.pool,
        `INSERT INTO check_jobs (batch, domain, state, attempts, enqueued_at)
         SELECT ?, d, 'queued', 0, ? FROM unnest(?::text[]) WITH ORDINALITY AS t(d, n) ORDER BY n
         ON CONFLICT (batch, domain) DO NOTHING RETURNING id`,
        [name, now.toISOString(), keys],
      ),
    );
    return { added: rows.length };
  }

  async claim(
    batch: string,
    holder: string,
    lease: { limit: number; leaseMs: number },
    now: Date,
  ): Promise<ClaimedCheck[]> {
    const { name, who, limit, leaseMs, nowMs, at } = checkedClaim(batch, holder, lease, now);
    return this.db.transaction(async (db) => {
      await this.giveUp(db, name, nowMs, at);
      // Jobs whose holder stopped first (they have waited longest), then queued ones in list order.
      const expired = await claimPicked(
        db,
        `SELECT id FROM check_jobs WHERE batch = ? AND state = 'claimed' AND lease_until_ms <= ?
         ORDER BY lease_until_ms, id LIMIT ?`,
        [name, nowMs, limit],
        who,
        nowMs + leaseMs,
        at,
      );
      if (expired.length === limit) return expired;
      const queued = await claimPicked(
        db,
        `SELECT id FROM check_jobs WHERE batch = ? AND state = 'queued' ORDER BY id LIMIT ?`,
        [name, limit - expired.length],
        who,
        nowMs + leaseMs,
        at,
      );
      return [...expired, ...queued];
    });
  }

  /** Jobs of the batch whose lease ran out after MAX_CLAIMS claims become done with gaveUpResult. */
  private async giveUp(db: Db, batch: string, nowMs: number, at: string): Promise<void> {
    const stuck = await query<JobRow>(
      db,
      `SELECT id, batch, domain, attempts FROM check_jobs
       WHERE batch = ? AND state = 'claimed' AND lease_until_ms <= ? AND attempts >= ?
       LIMIT ? FOR UPDATE SKIP LOCKED`,
      [batch, nowMs, MAX_CLAIMS, CLAIM_MAX],
    );
    if (stuck.length === 0) return;
    await query(
      db,
      `UPDATE check_jobs j SET state = 'done', result = g.result, holder = NULL, lease_until_ms = NULL,
         done_at = ?
       FROM unnest(?::bigint[], ?::text[]) AS g(id, result) WHERE j.id = g.id`,
      [at, stuck.map((r) => r.id), stuck.map((r) => gaveUpResult(r.domain, r.attempts))],
    );
  }

  async renew(holder: string, leaseMs: number, now: Date): Promise<ClaimedCheck[]> {
    const who = checkedHolder(holder);
    const lease = checkedLease({ limit: 1, leaseMs }).leaseMs;
    const rows = await this.db.use(() =>
      query<JobRow>(
        this.db.pool,
        `UPDATE check_jobs SET lease_until_ms = ? WHERE holder = ? AND state = 'claimed'
         RETURNING id, batch, domain, attempts`,
        [now.getTime() + lease, who],
      ),
    );
    return rows.map(claimedFromRow).sort(byId);
  }

  async complete(holder: string, finished: readonly FinishedCheck[], now: Date): Promise<number[]> {
    const who = checkedHolder(holder);
    const checked = checkedFinished(finished);
    if (checked.length === 0) return [];
    // Result lines are JSON as JSON.stringify writes it: \u0000 escaped, never a raw NUL (pgText not needed).
    const rows = await this.db.use(() =>
      query<{ id: number }>(
        this.db.pool,
        `UPDATE check_jobs j SET state = 'done', result = f.result, holder = NULL, lease_until_ms = NULL,
           done_at = ?
         FROM unnest(?::bigint[], ?::bigint[], ?::text[]) AS f(id, attempt, result)
         WHERE j.id = f.id AND j.state = 'claimed' AND j.holder = ? AND j.attempts = f.attempt
         RETURNING j.id`,
        [
          now.toISOString(),
          checked.map((f) => f.job.id),
          checked.map((f) => f.job.attempt),
          checked.map((f) => f.result),
          who,
        ],
      ),
    );
    return rows.map((r) => r.id).sort((a, b) => a - b);
  }

  async release(holder: string, jobs: readonly ClaimedCheck[]): Promise<number> {
    const who = checkedHolder(holder);
    const list = checkedJobs(jobs);
    if (list.length === 0) return 0;
    const rows = await this.db.use(() =>
      query<{ id: number }>(
        this.db.pool,
        `UPDATE check_jobs j SET state = 'queued', holder = NULL, lease_until_ms = NULL
         FROM unnest(?::bigint[], ?::bigint[]) AS r(id, attempt)
         WHERE j.id = r.id AND j.state = 'claimed' AND j.holder = ? AND j.attempts = r.attempt
         RETURNING j.id`,
        [list.map((j) => j.id), list.map((j) => j.attempt), who],
      ),
    );
    return rows.length;
  }

  async counts(batch: string): Promise<CheckBatchCounts> {
    const name = checkedBatch(batch);
    // One count per state, each read from that state's partial index, in one snapshot.
    return this.db.snapshot(async (db) => {
      const of = async (state: string) =>
        (
          await query<{ n: number }>(
            db,
            `SELECT count(*) AS n FROM check_jobs WHERE batch = ? AND state = '${state}'`,
            [name],
          )
        )[0]!.n;
      return { queued: await of('queued'), claimed: await of('claimed'), done: await of('done') };
    });
  }

  async results(batch: string, page: { after?: number; limit?: number } = {}): Promise<CheckResultPage> {
    const name = checkedBatch(batch);
    const { after, limit } = checkedResultPage(page);
    const rows = await this.db.use(() =>
      query<{ id: number; domain: string; result: string }>(
        this.db.pool,
        `SELECT id, domain, result FROM check_jobs WHERE batch = ? AND state = 'done' AND id > ?
         ORDER BY id LIMIT ?`,
        [name, after, limit + 1],
      ),
    );
    return resultPage(rows, limit);
  }
}
