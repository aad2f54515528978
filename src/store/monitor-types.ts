// What the store keeps for monitoring (issue 12): each check of a watched domain (its findings, bounded),
// the alerts derived from them, and the notifications to deliver. Plain data, no behaviour: the rules
// live in src/monitor/. Findings are kept in the shape of `mxguard check --json` (src/check/types.ts
// Finding), declared here structurally because the store sits below `check`.

/** A finding as `mxguard check --json` writes it. */
export interface StoredFinding {
  section: string;
  status: string;
  code: string;
  message: string;
  host?: string;
  fix?: string;
  sender?: string;
  answer?: string;
  cause?: string;
}

export type CheckRunStatus = 'pass' | 'warn' | 'fail' | 'error';

/** One check of a watched domain. */
export interface CheckRun {
  id: number;
  domain: string;
  /** ISO time the check started. */
  at: string;
  /** How long it took, in milliseconds. */
  durationMs: number;
  status: CheckRunStatus;
  /** Why the check could not run, with status `error`. */
  error?: string;
  /**
   * At most MAX_STORED_FINDINGS (and MAX_STORED_FINDINGS_BYTES of JSON), each text clipped to
   * MAX_STORED_FINDING_TEXT characters (ending in CLIP_MARK, src/store/paging.ts).
   */
  findings: StoredFinding[];
  /** How many findings of the check were not stored (beyond the bounds); absent when none. */
  omittedFindings?: number;
  /** What started it. */
  trigger: 'schedule' | 'start' | 'manual';
}

export type NewCheckRun = Omit<CheckRun, 'id'>;

/** List views of the history leave the findings out. */
export type CheckRunSummary = Omit<CheckRun, 'findings'> & {
  /** Findings per status, counted over all the check's findings (stored or not). */
  counts: Record<'pass' | 'warn' | 'fail', number>;
  /** `error` cut to LIST_TEXT_MAX characters (see src/store/paging.ts); absent when nothing was cut. */
  clipped?: string[];
};

/** Bounds on what one check run stores (a hostile zone could make thousands of findings). */
export const MAX_STORED_FINDINGS = 500;
export const MAX_STORED_FINDING_TEXT = 4096;
/** The stored findings of one run take at most this much JSON: two runs side by side (a diff) fit 1 MiB. */
export const MAX_STORED_FINDINGS_BYTES = 512 * 1024;
/** recentCheckRuns returns at most this many runs. */
export const MAX_RECENT_CHECK_RUNS = 50;
/** A delivery's lastError is clipped to this many characters. */
export const MAX_DELIVERY_ERROR = 1024;

export type AlertSeverity = 'fail' | 'warn';

/**
 * An alert: a condition (code, and the host or address it is about) that went bad for a domain. The
 * key (domain, code, subject) has at most one open alert at a time.
 */
export interface Alert {
  id: number;
  domain: string;
  code: string;
  /** The MX host, address or policy host the alert is about; '' for the domain as a whole. */
  subject: string;
  severity: AlertSeverity;
  message: string;
  fix?: string;
  openedAt: string;
  /** Absent while open. */
  resolvedAt?: string;
  /** The check run that opened it, and the one that resolved it. */
  openedBy: number;
  resolvedBy?: number;
}

export interface NewAlert {
  domain: string;
  code: string;
  subject: string;
  severity: AlertSeverity;
  message: string;
  fix?: string;
}

export interface AlertFilter {
  domain?: string;
  /** Default: both. */
  state?: 'open' | 'resolved';
  limit?: number;
  cursor?: string;
}

/** The JSON a webhook receives (and what an e-mail says), one per alert state change. */
export interface AlertEvent {
  event: 'alert.opened' | 'alert.resolved';
  domain: string;
  code: string;
  severity: AlertSeverity;
  message: string;
  host?: string;
  fix?: string;
  openedAt: string;
  resolvedAt?: string;
  dashboardUrl?: string;
}

export type DeliveryChannel = 'webhook' | 'email';

/** One notification to one target, retried until delivered or given up (after a day). */
export interface Delivery {
  id: number;
  alertId: number;
  channel: DeliveryChannel;
  /** The webhook URL, or the e-mail recipient(s) joined with ", ". */
  target: string;
  event: AlertEvent;
  state: 'pending' | 'delivered' | 'abandoned';
  attempts: number;
  createdAt: string;
  /** When the next attempt is due (pending only). */
  nextAttemptAt?: string;
  lastAttemptAt?: string;
  /** Why the last attempt failed, clipped. */
  lastError?: string;
  deliveredAt?: string;
}

export type NewDelivery = Pick<Delivery, 'channel' | 'target' | 'event'>;

/**
 * What one check run changes, written in ONE transaction: the run itself, the alerts it opens (each
 * with its deliveries) and the alerts it resolves (each with its deliveries). An alert key that is
 * already open is not opened twice (the store skips it: two serve workers cannot both open it).
 */
export interface CheckOutcome {
  run: NewCheckRun;
  open: Array<{ alert: NewAlert; deliveries: NewDelivery[] }>;
  resolve: Array<{ alertId: number; deliveries: NewDelivery[] }>;
}

/** Store methods of monitoring (part of Store, src/store/types.ts). */
export interface MonitorStore {
  /** Writes the outcome in one transaction; returns the run's id and the ids of the alerts opened. */
  recordCheck(outcome: CheckOutcome, now: Date): Promise<{ runId: number; opened: number[] }>;
  /** A domain's history, newest first, without findings. */
  listCheckRuns(
    domain: string,
    page?: { limit?: number; cursor?: string },
  ): Promise<import('./types.js').Page<CheckRunSummary>>;
  getCheckRun(id: number): Promise<CheckRun | undefined>;
  /** The newest `count` runs of a domain with their findings, newest first (flap damping, diffs). */
  recentCheckRuns(domain: string, count: number): Promise<CheckRun[]>;
  /**
   * Deletes up to `limit` runs older than `before` (ISO), oldest first, never one an alert points to.
   * Alerts resolved before `before` whose deliveries are all settled go first (with their deliveries),
   * so the runs they held go too. `remaining`: runs still older than `before` that no alert holds.
   */
  purgeCheckRuns(filter: { before: string; limit: number }): Promise<{ deleted: number; remaining: number }>;
  /** Newest first (by id); at most 1,000 per page. */
  listAlerts(filter?: AlertFilter): Promise<import('./types.js').Page<Alert>>;
  /** Open alerts of every domain (oldest first): the input of each check's comparison and of the metrics. */
  openAlerts(domain?: string): Promise<Alert[]>;
  /** Pending deliveries due at `now`, oldest first. */
  dueDeliveries(now: Date, limit: number): Promise<Delivery[]>;
  /** After an attempt: delivered, or failed with the next attempt time (absent: abandoned). */
  settleDelivery(
    id: number,
    result: { ok: true } | { ok: false; error: string; nextAttemptAt?: Date },
    now: Date,
  ): Promise<void>;
  /** Newest first (by id); at most 1,000 per page. */
  listDeliveries(filter: {
    alertId?: number;
    state?: Delivery['state'];
    limit?: number;
    cursor?: string;
  }): Promise<import('./types.js').Page<Delivery>>;
}
