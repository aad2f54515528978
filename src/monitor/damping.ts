// Flap damping (issue 12): when the conditions of a check run open or resolve alerts. A condition opens
// an alert once it has held for monitor.failChecks consecutive checks (fails, default 1) or
// monitor.warnChecks (warnings, default 2); an open alert resolves in the first check without its
// condition. A check that could not run (status `error`) changes nothing and is skipped when counting.
// Pure: the caller hands in the runs before this one (store.recentCheckRuns) and the open alerts.
import type { Alert, CheckRunStatus, StoredFinding } from '../store/monitor-types.js';
import { type Condition, conditionKey, conditionsOf } from './conditions.js';
import type { MonitorSettings } from './settings.js';

export type DampingSettings = Pick<MonitorSettings, 'failChecks' | 'warnChecks'>;

/** A run of the history as damping reads it. */
export interface PastRun {
  status: CheckRunStatus;
  findings: StoredFinding[];
}

export interface AlertChanges {
  open: Condition[];
  resolve: Alert[];
}

/** How many runs before this one damping needs to read (error runs are skipped, so a few more). */
export function historyNeeded(settings: DampingSettings): number {
  const longest = Math.max(settings.failChecks, settings.warnChecks);
  return longest <= 1 ? 0 : longest - 1 + 3;
}

/**
 * The alerts this run opens and resolves. `previous`: the runs before it, newest first; `open`: the
 * domain's open alerts.
 */
export function alertChanges(
  run: PastRun,
  previous: readonly PastRun[],
  open: readonly Alert[],
  settings: DampingSettings,
): AlertChanges {
  if (run.status === 'error') return { open: [], resolve: [] };
  const current = conditionsOf(run.findings);
  const openKeys = new Set(open.map((a) => conditionKey(a.code, a.subject)));
  const currentKeys = new Set(current.map((c) => conditionKey(c.code, c.subject)));
  const history = previous
    .filter((r) => r.status !== 'error')
    .map((r) => new Set(conditionsOf(r.findings).map((c) => conditionKey(c.code, c.subject))));
  const opening = current.filter((c) => {
    const key = conditionKey(c.code, c.subject);
    if (openKeys.has(key)) return false;
    const needed = c.severity === 'fail' ? settings.failChecks : settings.warnChecks;
    let held = 1;
    for (const keys of history) {
      if (held >= needed || !keys.has(key)) break;
      held++;
    }
    return held >= needed;
  });
  const resolving = open.filter((a) => !currentKeys.has(conditionKey(a.code, a.subject)));
  return { open: opening, resolve: resolving };
}
