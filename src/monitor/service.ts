// The monitor as `serve` runs it: the scheduler (scheduler.ts) driving monitored checks (monitor.ts) of
// every watched domain, in one process only (serve's primary, or the single process). Other processes
// (serve's HTTP workers, the CLI) get a control without a schedule: their on-demand checks run where
// they are asked for, one at a time per domain within the process.
import type { Logger } from 'pino';
import { domainKey } from '../store/domain-rules.js';
import { type CheckTrigger, Monitor, type MonitorControl, type MonitorDeps } from './monitor.js';
import { Scheduler, type SchedulerClock } from './scheduler.js';

export interface MonitorService extends MonitorControl {
  /** Ends the schedule; resolves once the checks under way are done. */
  stop(): Promise<void>;
}

export interface MonitorServiceOptions extends MonitorDeps {
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Run the schedule (one process only); false: on-demand checks only. */
  schedule: boolean;
  clock?: SchedulerClock;
  random?: () => number;
}

export function startMonitor(options: MonitorServiceOptions): MonitorService {
  const { settings, logger } = options;
  const monitor = new Monitor(options);
  const scheduler = new Scheduler({
    domains: async () => (await options.store.listDomains()).map((d) => d.name),
    check: async (domain: string, trigger: CheckTrigger) => {
      const run = await monitor.check(domain, trigger);
      if (run.status === 'error') logger.warn({ domain, error: run.error }, 'monitor: check could not run');
      return run;
    },
    intervalMs: settings.intervalSeconds * 1000,
    concurrency: settings.concurrency,
    clock: options.clock,
    random: options.random,
    onError: (err, domain) =>
      logger.error({ domain, err: (err as Error)?.message }, 'monitor: check failed; trying again later'),
  });
  if (options.schedule && settings.enabled) {
    scheduler.start();
    logger.info(
      { intervalSeconds: settings.intervalSeconds, concurrency: settings.concurrency },
      'monitor: checking every watched domain now and on schedule',
    );
  } else if (options.schedule) {
    logger.info('monitor: scheduled checks off (monitor.enabled is false); on-demand checks only');
  }
  return {
    checkNow: (domain) => scheduler.checkNow(domainKey(domain)),
    stop: () => scheduler.stop(),
  };
}
