// Report retention for `mxguard serve`: reports whose date range starts more than
// `retention.reportDays` days ago (the instant the store files them under, see sqlite.ts) are
// deleted with their policy and failure rows, DMARC aggregate reports (by the begin of their date
// range) with their rows, and rejected input received that long ago.
// Monitoring's check runs older than `monitor.historyDays` go too (with the alerts resolved that
// long ago; a run an alert still points to stays, see the store's purgeCheckRuns).
// Deletion runs in small transactions with a pause between them, so intake and the dashboard keep
// their turn at the database; once at start and then every hour, in one process only (serve's
// primary, or the single process).
import { DEFAULT_MONITOR_SETTINGS } from '../monitor/settings.js';
import type { ServerContext } from './context.js';

const DAY_MS = 86_400_000;
/** Reports are kept this many days unless retention.reportDays says otherwise (0 = forever). */
export const DEFAULT_REPORT_RETENTION_DAYS = 400;
/** Check runs are kept this many days unless monitor.historyDays says otherwise (0 = forever). */
export const DEFAULT_CHECK_RUN_RETENTION_DAYS = DEFAULT_MONITOR_SETTINGS.historyDays;
/** Reports (or rejected entries, or check runs) per transaction. */
export const RETENTION_BATCH = 500;
/** The pause between two batches. */
const PAUSE_MS = 200;
/** How often retention runs after the first run at start. */
const INTERVAL_MS = 3_600_000;

export interface RetentionRun {
  /** TLS-RPT reports deleted. */
  reports: number;
  /** DMARC aggregate reports deleted. */
  dmarcReports: number;
  /** Rejected inputs deleted. */
  rejected: number;
  /** Check runs deleted. */
  checkRuns: number;
  /** Transactions that deleted something. */
  batches: number;
}

export interface RetentionOptions {
  /** Keep reports (and rejected input) this many days; 0 keeps them all. */
  reportDays: number;
  /** Keep check runs this many days (default DEFAULT_CHECK_RUN_RETENTION_DAYS); 0 keeps them all. */
  checkRunDays?: number;
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
  const run: RetentionRun = { reports: 0, dmarcReports: 0, rejected: 0, checkRuns: 0, batches: 0 };
  const limit = options.batchSize ?? RETENTION_BATCH;
  const pause = options.pause ?? (() => new Promise<void>((resolve) => setTimeout(resolve, PAUSE_MS)));
  const checkRunDays = options.checkRunDays ?? DEFAULT_CHECK_RUN_RETENTION_DAYS;
  // Reports first, then rejected input, then check runs; each until nothing older than its cutoff is left.
  const steps = [
    ['reports', options.reportDays, (o: Purge) => store.purgeReports(o)],
    ['dmarcReports', options.reportDays, (o: Purge) => store.purgeDmarcReports(o)],
    ['rejected', options.reportDays, (o: Purge) => store.purgeRejected(o)],
    ['checkRuns', checkRunDays, (o: Purge) => store.purgeCheckRuns(o)],
  ] as const;
  for (const [counted, days, purge] of steps) {
    if (days === 0) continue;
    const before = new Date(options.now.getTime() - days * DAY_MS).toISOString();
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

type Purge = { before: string; limit: number };

export interface RetentionJob {
  /** Ends the schedule; resolves once a run in progress stopped (after its current batch). */
  stop(): Promise<void>;
}

/**
 * Runs applyRetention now and then every `intervalMs` (an hour) with the context's clock, logging
 * what it deleted; a failed run is logged and tried again at the next interval. Nothing runs when
 * both reportDays (default DEFAULT_REPORT_RETENTION_DAYS) and checkRunDays (monitor.historyDays,
 * default DEFAULT_CHECK_RUN_RETENTION_DAYS) are 0.
 */
export function startRetention(
  ctx: Pick<ServerContext, 'store' | 'logger' | 'now'>,
  options: { reportDays?: number; checkRunDays?: number; intervalMs?: number; batchSize?: number } = {},
): RetentionJob {
  const logger = ctx.logger.child({ component: 'retention' });
  const reportDays = options.reportDays ?? DEFAULT_REPORT_RETENTION_DAYS;
  const checkRunDays = options.checkRunDays ?? DEFAULT_CHECK_RUN_RETENTION_DAYS;
  if (reportDays === 0) logger.info('retention: reports are kept forever (retention.reportDays is 0)');
  if (checkRunDays === 0) logger.info('retention: check runs are kept forever (monitor.historyDays is 0)');
  if (reportDays === 0 && checkRunDays === 0) return { stop: async () => {} };
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const runOnce = async () => {
    try {
      const run = await applyRetention(ctx.store, {
        reportDays,
        checkRunDays,
        now: ctx.now(),
        batchSize: options.batchSize,
        stopped: () => stopping,
      });
      const { checkRuns, ...reports } = run;
      if (run.reports > 0 || run.dmarcReports > 0 || run.rejected > 0) {
        logger.info({ ...reports, reportDays }, 'retention: deleted old reports');
      }
      if (checkRuns > 0) logger.info({ checkRuns, checkRunDays }, 'retention: deleted old check runs');
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
