// The monitor as `serve` runs it: the scheduler (scheduler.ts) driving monitored checks (monitor.ts) of
// every watched domain. Every serve process has one for on-demand checks (the API's "check now", which
// runs where it is asked for, one at a time per domain within the process); the schedule runs in one
// process only (serve's primary, or the single process: startSchedule).
import type { Logger } from 'pino';
import { domainKey } from '../store/domain-rules.js';
import type { CheckRun } from '../store/monitor-types.js';
import { type CheckTrigger, Monitor, type MonitorControl, type MonitorDeps } from './monitor.js';
import { Scheduler, type SchedulerClock } from './scheduler.js';

export interface MonitorService extends MonitorControl {
  /** Starts the schedule (unless monitor.enabled is false); `recorded` is called after each stored run. */
  startSchedule(hooks?: { recorded?: (run: CheckRun) => void }): void;
  /** Ends the schedule; resolves once the checks under way are done. */
  stop(): Promise<void>;
}

export interface MonitorServiceOptions extends MonitorDeps {
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  clock?: SchedulerClock;
  random?: () => number;
}

export function createMonitor(options: MonitorServiceOptions): MonitorService {
  const { settings, logger } = options;
  let recorded = options.recorded;
  const monitor = new Monitor({ ...options, recorded: (run) => recorded?.(run) });
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
  return {
    checkNow: (domain) => scheduler.checkNow(domainKey(domain)),
    liveCheck: (domain) => monitor.liveCheck(domain),
    startSchedule(hooks = {}) {
      if (hooks.recorded) recorded = hooks.recorded;
      if (!settings.enabled) {
        logger.info('monitor: scheduled checks off (monitor.enabled is false); on-demand checks only');
        return;
      }
      scheduler.start();
      logger.info(
        { intervalSeconds: settings.intervalSeconds, concurrency: settings.concurrency },
        'monitor: checking every watched domain now, then on schedule',
      );
    },
    stop: () => scheduler.stop(),
  };
}
