// What the bulk-check queue keeps (issue 16): `mxguard check --enqueue` puts the domains of a list in a
// named batch, `mxguard worker` processes (any number, on any machine sharing the database) claim them
// with a lease, check them and write each result, and `mxguard check --results` reads the results back in
// the order the domains were enqueued. Plain data and the interface; no behaviour (check-queue.ts holds the
// rules and the SQLite queue, postgres-check-queue.ts the PostgreSQL one).
//
// A job is claimed for a lease; the holder renews it while it works. A holder that dies stops renewing,
// and once the lease has run out the job is claimed again by anyone. Each claim has a number (`attempt`),
// and a result is written only with the holder and attempt of the current claim, so a holder that lost
// its lease (it stalled, another took the job over) cannot overwrite the result of the one that has it.
// Times are the workers' clocks (`now`): machines sharing a queue keep their clocks within much less than
// a lease of each other (NTP).

export type CheckJobState = 'queued' | 'claimed' | 'done';

/** A job as its holder sees it. */
export interface ClaimedCheck {
  id: number;
  batch: string;
  /** Normalised domain (lower case, A-labels, no trailing dot). */
  domain: string;
  /** The claim's number (1 for the first claim of the job): with the holder, it names this claim. */
  attempt: number;
}

export interface FinishedCheck {
  job: ClaimedCheck;
  /** The domain's result as one line of `check --file --json` (JSON, no line break). */
  result: string;
}

export interface CheckBatchCounts {
  queued: number;
  /** Held by a worker, or held by one whose lease has run out and not yet claimed again. */
  claimed: number;
  done: number;
}

export interface CheckResultRow {
  id: number;
  domain: string;
  /** The domain's result as one line of `check --file --json` (JSON, no line break). */
  result: string;
}

export interface CheckResultPage {
  items: CheckResultRow[];
  /** Pass as `after` for the next page; null on the last page. */
  next: number | null;
}

export interface CheckQueue {
  /**
   * Adds the domains (at most ENQUEUE_MAX per call) to the batch, in their order; a domain already in the
   * batch, in whatever state, stays as it is (enqueueing a list twice adds nothing). `added` counts the new.
   */
  enqueue(batch: string, domains: readonly string[], now: Date): Promise<{ added: number }>;
  /**
   * Claims up to `limit` jobs of the batch for `holder` until now + leaseMs: first jobs whose lease ran out
   * (their holder stopped), then queued ones, oldest first. A job whose lease ran out after MAX_CLAIMS
   * claims is not handed out again: it is done with an error result. No job is held by two claims at once.
   */
  claim(
    batch: string,
    holder: string,
    lease: { limit: number; leaseMs: number },
    now: Date,
  ): Promise<ClaimedCheck[]>;
  /** Extends to now + leaseMs the lease of every job `holder` still holds; returns those jobs. */
  renew(holder: string, leaseMs: number, now: Date): Promise<ClaimedCheck[]>;
  /**
   * Stores each finished job's result and marks it done, if its claim (holder and attempt) still holds the
   * job; returns the ids written. A job whose lease ran out and another worker claimed gets nothing written.
   */
  complete(holder: string, finished: readonly FinishedCheck[], now: Date): Promise<number[]>;
  /** Hands jobs this claim holds back to the queue (a worker stopping); returns how many. */
  release(holder: string, jobs: readonly ClaimedCheck[]): Promise<number>;
  /** How many jobs of the batch are in each state (all zero for a batch that does not exist). */
  counts(batch: string): Promise<CheckBatchCounts>;
  /** The batch's results, in the order the domains were enqueued, `limit` (at most RESULTS_PAGE_MAX) at a time. */
  results(batch: string, page?: { after?: number; limit?: number }): Promise<CheckResultPage>;
}
