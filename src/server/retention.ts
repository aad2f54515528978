// Report retention for `mxguard serve`: reports whose date range starts more than
// `retention.reportDays` days ago (the instant the store files them under, see sqlite.ts) are
// deleted with their policy and failure rows, and so is rejected input received that long ago.
// Deletion runs in small transactions with a pause between them, so intake and the dashboard keep
// their turn at the database; once at start and then every hour, in one process only (serve's
// primary, or the single process).
import type { ServerContext } from './context.js';

const DAY_MS = 86_400_000;
/** Reports are kept this many days unless retention.reportDays says otherwise (0 = forever). */
export const DEFAULT_REPORT_RETENTION_DAYS = 400;
/** Reports (or rejected entries) per transaction. */
export const RETENTION_BATCH = 500;
/** The pause between two batches. */
const PAUSE_MS = 200;
/** How often retention runs after the first run at start. */
const INTERVAL_MS = 3_600_000;

export interface RetentionRun {
  /** Reports deleted. */
  reports: number;
  /** Rejected inputs deleted. */
  rejected: number;
  /** Transactions that deleted something. */
  batches: number;
}

export interface RetentionOptions {
  /** Keep reports this many days; 0 keeps everything. */
  reportDays: number;
  now: Date;
  batchSize?: number;
  /** Between two batches (default: wait PAUSE_MS). */
  pause?: () => Promise<void>;
  /** Checked before each batch: true ends the run early (serve is stopping). */
  stopped?: () => boolean;
}

/** One retention run: deletes batch after batch until nothing older than the cutoff is left. */
export async function applyRetention(
  store: ServerContext['store'],
  options: RetentionOptions,
): Promise<RetentionRun> {
  const run: RetentionRun = { reports: 0, rejected: 0, batches: 0 };
  if (options.reportDays === 0) return run;
  const before = new Date(options.now.getTime() - options.reportDays * DAY_MS).toISOString();
  const limit = options.batchSize ?? RETENTION_BATCH;
  const pause = options.pause ?? (() => new Promise<void>((resolve) => setTimeout(resolve, PAUSE_MS)));
  // Reports first, then rejected input; each until nothing older than the cutoff is left.
  const steps = [
    ['reports', (o: { before: string; limit: number }) => store.purgeReports(o)],
    ['rejected', (o: { before: string; limit: number }) => store.purgeRejected(o)],
  ] as const;
  for (const [counted, purge] of steps) {
    for (;;) {
      if (options.stopped?.()) return run;
      const { deleted, remaining } = await purge({ before, limit });
      run[counted] += deleted;
      if (deleted > 0) run.batches++;
      if (remaining === 0 || deleted === 0) break;
      await pause();
    }
  }
  return run;
}

export interface RetentionJob {
  /** Ends the schedule; resolves once a run in progress stopped (after its current batch). */
  stop(): Promise<void>;
}

/**
 * Runs applyRetention now and then every `intervalMs` (an hour) with the context's clock, logging
 * what it deleted; a failed run is logged and tried again at the next interval. Nothing runs when
 * reportDays (default DEFAULT_REPORT_RETENTION_DAYS) is 0.
 */
export function startRetention(
  ctx: Pick<ServerContext, 'store' | 'logger' | 'now'>,
  options: { reportDays?: number; intervalMs?: number; batchSize?: number } = {},
): RetentionJob {
  const logger = ctx.logger.child({ component: 'retention' });
  const reportDays = options.reportDays ?? DEFAULT_REPORT_RETENTION_DAYS;
  if (reportDays === 0) {
    logger.info('retention: off (retention.reportDays is 0), reports are kept forever');
    return { stop: async () => {} };
  }
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const runOnce = async () => {
    try {
      const run = await applyRetention(ctx.store, {
        reportDays,
        now: ctx.now(),
        batchSize: options.batchSize,
        stopped: () => stopping,
      });
      if (run.reports > 0 || run.rejected > 0) {
        logger.info({ ...run, reportDays }, 'retention: deleted old reports');
      }
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'retention: run failed; trying again later');
    }
    if (!stopping) timer = setTimeout(schedule, options.intervalMs ?? INTERVAL_MS).unref();
  };
  const schedule = () => {
    running = runOnce();
  };
  schedule();
  return {
    async stop() {
      stopping = true;
      clearTimeout(timer);
      await running;
    },
  };
}
