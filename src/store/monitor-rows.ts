// Rows of the monitoring tables (check_runs, alerts, deliveries; SQLite and PostgreSQL share one layout)
// turned into the Store's objects (src/store/monitor-types.ts), and the list bounds both stores keep.
// Each store reads its rows its own way and hands them here in this shape; the SQL conditions of the
// alert and delivery list filters are written here once.
import { describeValue, domainKey } from './domain-rules.js';
import type {
  Alert,
  AlertEvent,
  AlertFilter,
  AlertSeverity,
  CheckRun,
  CheckRunStatus,
  CheckRunSummary,
  Delivery,
  DeliveryChannel,
} from './monitor-types.js';
import { clipText } from './paging.js';
import { storeInvalid } from './types.js';

/** Findings no run needs any more, deleted per check run purgeCheckRuns may delete. */
export const FINDINGS_PER_RUN_SWEPT = 10;
/** Lists whose items carry text up to MAX_STORED_FINDING_TEXT (alerts, deliveries) read fewer rows per page. */
export const LONG_LIST_MAX = 1000;

export interface CheckRunRow {
  id: number;
  domain: string;
  at_ms: number;
  duration_ms: number;
  status: string;
  error: string | null;
  started_by: string;
  pass_count: number;
  warn_count: number;
  fail_count: number;
  omitted_findings: number;
  finding_ids?: string;
}

/** A run without its error and findings. */
export const RUN_COLUMNS = `id, domain, at_ms, duration_ms, status, started_by, pass_count, warn_count, fail_count,
  omitted_findings`;

export interface AlertRow {
  id: number;
  domain: string;
  code: string;
  subject: string;
  severity: string;
  message: string;
  fix: string | null;
  opened_at: string;
  opened_by: number;
  resolved_at: string | null;
  resolved_by: number | null;
}

export interface DeliveryRow {
  id: number;
  alert: number;
  channel: string;
  target: string;
  event: string;
  state: string;
  attempts: number;
  created_at: string;
  next_attempt_at: string | null;
  last_attempt_at: string | null;
  last_error: string | null;
  delivered_at: string | null;
}

export const DELIVERY_STATES: readonly string[] = ['pending', 'delivered', 'abandoned'];

/** A run's summary; as a list view (`listView`) its error is cut to LIST_TEXT_MAX. */
export function runSummaryFromRow(row: CheckRunRow, listView = false): CheckRunSummary {
  const clipped: string[] = [];
  const summary: CheckRunSummary = {
    id: row.id,
    domain: row.domain,
    at: new Date(row.at_ms).toISOString(),
    durationMs: row.duration_ms,
    status: row.status as CheckRunStatus,
    trigger: row.started_by as CheckRun['trigger'],
    counts: { pass: row.pass_count, warn: row.warn_count, fail: row.fail_count },
  };
  if (row.error !== null) summary.error = listView ? clipText(row.error, 'error', clipped) : row.error;
  if (row.omitted_findings > 0) summary.omittedFindings = row.omitted_findings;
  if (clipped.length > 0) summary.clipped = clipped;
  return summary;
}

export function alertFromRow(row: AlertRow): Alert {
  const alert: Alert = {
    id: row.id,
    domain: row.domain,
    code: row.code,
    subject: row.subject,
    severity: row.severity as AlertSeverity,
    message: row.message,
    openedAt: row.opened_at,
    openedBy: row.opened_by,
  };
  if (row.fix !== null) alert.fix = row.fix;
  if (row.resolved_at !== null) alert.resolvedAt = row.resolved_at;
  if (row.resolved_by !== null) alert.resolvedBy = row.resolved_by;
  return alert;
}

export function deliveryFromRow(row: DeliveryRow): Delivery {
  const delivery: Delivery = {
    id: row.id,
    alertId: row.alert,
    channel: row.channel as DeliveryChannel,
    target: row.target,
    event: JSON.parse(row.event) as AlertEvent,
    state: row.state as Delivery['state'],
    attempts: row.attempts,
    createdAt: row.created_at,
  };
  if (row.next_attempt_at !== null) delivery.nextAttemptAt = row.next_attempt_at;
  if (row.last_attempt_at !== null) delivery.lastAttemptAt = row.last_attempt_at;
  if (row.last_error !== null) delivery.lastError = row.last_error;
  if (row.delivered_at !== null) delivery.deliveredAt = row.delivered_at;
  return delivery;
}

/** SQL conditions (ANDed, with their `?` parameters) of a listAlerts filter. */
export function alertFilterWhere(filter: AlertFilter): { where: string[]; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.domain !== undefined) {
    where.push('domain = ?');
    params.push(domainKey(filter.domain));
  }
  if (filter.state !== undefined) {
    if (filter.state !== 'open' && filter.state !== 'resolved') {
      throw storeInvalid(`state: ${describeValue(filter.state)} is not open or resolved`);
    }
    where.push(filter.state === 'open' ? 'resolved_at IS NULL' : 'resolved_at IS NOT NULL');
  }
  return { where, params };
}

/** SQL conditions (ANDed, with their `?` parameters) of a listDeliveries filter. */
export function deliveryFilterWhere(filter: { alertId?: number; state?: Delivery['state'] }): {
  where: string[];
  params: unknown[];
} {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.alertId !== undefined) {
    if (!Number.isSafeInteger(filter.alertId)) throw storeInvalid('alertId: must be an alert id');
    where.push('alert = ?');
    params.push(filter.alertId);
  }
  if (filter.state !== undefined) {
    if (!DELIVERY_STATES.includes(filter.state)) {
      throw storeInvalid(`state: ${describeValue(filter.state)} is not a delivery state`);
    }
    where.push('state = ?');
    params.push(filter.state);
  }
  return { where, params };
}
