// The Store: everything `mxguard serve` keeps (domains and their policies, TLS-RPT reports, rejected
// input, the policy fetch log, settings). SQLite (better-sqlite3) is the embedded default; the interface
// is kept narrow and async so that a PostgreSQL store can be added without touching callers.
// Every write that acknowledges a client (a stored report, a changed policy) is committed when the
// promise resolves: callers acknowledge only after `await`.
import type { StsMode } from '../mtasts/policy.js';
import type { TlsReport } from '../tlsrpt/report.js';
import type { CheckQueue } from './check-queue-types.js';
import type { DmarcStore } from './dmarc-types.js';
import type { MonitorStore } from './monitor-types.js';

export interface DomainSettings {
  mode: StsMode;
  /** Policy `mx` patterns (RFC 8461 §3.2). */
  mx: string[];
  /** Policy max_age in seconds. */
  maxAge: number;
  /** TLS-RPT `rua` URIs to publish in `_smtp._tls` (RFC 8460 §3). */
  rua: string[];
  /**
   * Watched only: the policy is hosted elsewhere (GitHub Pages, a Worker, IIS); serve hosts nothing for
   * the domain and only monitors it (`domain add --watch-only`). Absent: false.
   */
  watchOnly?: boolean;
}

export interface Domain extends DomainSettings {
  /** Normalised mail domain (lower case, no trailing dot). */
  name: string;
  /** The current `_mta-sts` id: a UTC timestamp YYYYMMDDHHMMSS, bumped on every policy change. */
  policyId: string;
  /** The policy text served at https://mta-sts.<name>/.well-known/mta-sts.txt. */
  policyText: string;
  createdAt: string;
  updatedAt: string;
}

/** One version of a domain's policy, newest first in `policyHistory`. */
export interface PolicyVersion {
  policyId: string;
  policyText: string;
  createdAt: string;
}

export type ReportSource = 'https' | 'smtp' | 'imap' | 'import';
/** RFC 8460 §3: reports by mail must carry a valid DKIM signature of the reporting domain. */
export type DkimVerdict = 'pass' | 'fail' | 'none' | 'unverified';

export interface NewReport {
  report: TlsReport;
  source: ReportSource;
  dkim: DkimVerdict;
  /** Who sent it: client IP (HTTPS), envelope sender / From (mail), file path (import). */
  submitter?: string;
  /** Parser warnings (quirks of the report), kept with it. */
  warnings: string[];
}

export interface StoredReportSummary {
  id: number;
  organization: string;
  reportId: string;
  start: string;
  end: string;
  /** Policy domains the report covers. */
  domains: string[];
  successful: number;
  failed: number;
  source: ReportSource;
  dkim: DkimVerdict;
  receivedAt: string;
  /**
   * List views only: the fields cut to LIST_TEXT_MAX characters (ending in CLIP_MARK, see paging.ts)
   * or, for `domains`, also to LIST_DOMAINS_MAX entries; absent when nothing was cut.
   */
  clipped?: string[];
}

/** What getReport with `maxBytes` gives for a report stored larger: its list view summary. */
export interface OversizedReport extends StoredReportSummary {
  tooLarge: { bytes: number; maxBytes: number };
}

export interface StoredReport extends StoredReportSummary {
  report: TlsReport;
  submitter?: string;
  warnings: string[];
}

export interface RejectedInput {
  id: number;
  source: ReportSource;
  submitter?: string;
  reason: string;
  /** Size of the input in bytes. */
  size: number;
  receivedAt: string;
  /** List views: `submitter` or `reason` cut to LIST_TEXT_MAX characters (see StoredReportSummary). */
  clipped?: string[];
}

export interface PolicyFetch {
  at: string;
  domain: string;
  clientIp: string;
  userAgent: string;
}

/** Sessions per UTC day for one policy domain, for the chart. */
export interface DailyCounts {
  day: string;
  successful: number;
  failed: number;
}

export type BreakdownKey = 'resultType' | 'organization' | 'receivingMxHostname' | 'sendingMtaIp';

export interface BreakdownRow {
  /** Cut to LIST_TEXT_MAX characters (ending in CLIP_MARK, `clipped` set) when longer. */
  key: string;
  count: number;
  clipped?: true;
}

/** Which page of a list: see src/store/paging.ts. */
export interface PageRequest {
  /** At most this many items (default 100, at most 10,000); fewer when the byte cap is reached. */
  limit?: number;
  /** `nextCursor` of the page before; absent for the first page. */
  cursor?: string;
}

/** One page of a list, in the list's order. */
export interface Page<T> {
  items: T[];
  /** Where the next page starts (pass it as `cursor`); null on the last page. */
  nextCursor: string | null;
  /** How many items match, on every page together. */
  total: number;
}

export interface ReportFilter extends PageRequest {
  /** Reports with a policy for this domain; '' for the reports that name no policy domain. */
  domain?: string;
  /** Only reports none of whose policy domains is configured (src/store/other-domains.ts). */
  otherDomains?: boolean;
  /** ISO timestamps bounding the report's date range. */
  since?: string;
  until?: string;
  /** Only reports from this sending organization (exactly as stored: a row of the failure table). */
  organization?: string;
}

/** Which reports purgeReports deletes: at least one of `domain` and `before`. */
export interface PurgeFilter {
  /** Reports covering this policy domain (as listReports' `domain`). */
  domain?: string;
  /** Reports whose date range starts before this ISO date (its 00:00 UTC) or timestamp. */
  before?: string;
  /** Delete at most this many, oldest first, in one transaction (0: only count). */
  limit: number;
}

// ---- authentication (sessions, API tokens, the login throttle) ----

/** The setting that holds the admin password's scrypt hash (src/server/auth.ts formats it). */
export const ADMIN_PASSWORD_SETTING = 'admin.passwordHash';

/** An API token as listed: the secret itself is never stored. */
export interface ApiTokenInfo {
  id: string;
  name: string;
  createdAt: string;
}

export interface NewApiToken extends ApiTokenInfo {
  /** SHA-256 of the secret, base64url. */
  hash: string;
}

/** Who a password attempt counts against: the client key (client-key.ts) and the account. */
export interface AuthAttemptKeys {
  client: string;
  account: string;
}

export interface AuthAttemptLimits {
  /** Attempts older than this no longer count. */
  windowMs: number;
  /** Failed plus in-flight attempts of one client key within the window before it is refused. */
  clientMax: number;
  /** Failed plus in-flight attempts of the account within the window before `accountExcess` > 0. */
  accountMax: number;
}

export type AuthReservation =
  | {
      ok: true;
      /** Pass to settleAuthAttempt once the password was checked. */
      id: number;
      /** How many attempts of the account in the window are beyond accountMax (0 = none; counted up to 1000). */
      accountExcess: number;
    }
  | { ok: false; retryAfterMs: number };

/** A typed store failure with a literal code (ARCHITECTURE.md: one error class per module). */
export class StoreError extends Error {
  constructor(
    readonly code:
      | 'STORE_DOMAIN_EXISTS'
      | 'STORE_DOMAIN_UNKNOWN'
      | 'STORE_INVALID'
      | 'STORE_IO'
      /** The database cannot be reached (connection refused or lost): try again later (HTTP 503). */
      | 'STORE_UNAVAILABLE'
      /** openStore with mustExist: the data directory holds no database. */
      | 'STORE_MISSING',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StoreError';
  }
}

/** The store refuses input that breaks its rules (a bad name, a count out of range): STORE_INVALID. */
export function storeInvalid(message: string): StoreError {
  return new StoreError('STORE_INVALID', message);
}

/** A lock this process holds (Store.tryLock): no other process on the database holds it meanwhile. */
export interface HeldLock {
  /**
   * Resolves when the lock is gone without release() (its connection dropped, its lease expired or was
   * taken over, the store closed): stop the work it guards at once. Never resolves after release().
   */
  lost: Promise<void>;
  /** Frees the lock for the others; idempotent. */
  release(): Promise<void>;
}

/** A watchDomains subscription. */
export interface DomainWatch {
  stop(): Promise<void>;
}

export interface Store extends MonitorStore, DmarcStore {
  // ---- several processes on one database (postgres-cluster.ts, sqlite-cluster.ts) ----

  /**
   * Calls `listener` soon after any process on the database added, changed or removed a domain (this
   * one included), and whenever changes may have been missed (after a lost connection came back).
   * Calls may be merged; the listener re-reads what it needs.
   */
  watchDomains(listener: () => void): Promise<DomainWatch>;
  /**
   * Takes the lock `name` ([a-z0-9._-], 1-64 characters) unless another holder has it: undefined
   * then. A holder that dies (kill -9) frees it: PostgreSQL at once (a session advisory lock), SQLite
   * at once when it was a process on this machine, else when its lease runs out.
   */
  tryLock(name: string): Promise<HeldLock | undefined>;

  listDomains(): Promise<Domain[]>;
  getDomain(name: string): Promise<Domain | undefined>;
  /** Creates the domain with a first policy version (throws STORE_DOMAIN_EXISTS). */
  addDomain(name: string, settings: DomainSettings, now: Date): Promise<Domain>;
  /**
   * Changes settings; when the policy text changes, a new policyId (UTC timestamp of `now`, made
   * strictly greater than the previous one) and a history entry are written in the same transaction.
   */
  updateDomain(name: string, patch: Partial<DomainSettings>, now: Date): Promise<Domain>;
  removeDomain(name: string): Promise<boolean>;
  policyHistory(name: string): Promise<PolicyVersion[]>;

  /** Idempotent on (organization, reportId): `created` is false when it was already stored. */
  saveReport(input: NewReport, now: Date): Promise<{ id: number; created: boolean }>;
  /** Newest start first (ties: newest id first); summaries clipped as list views (see paging.ts). */
  listReports(filter?: ReportFilter): Promise<Page<StoredReportSummary>>;
  getReport(id: number): Promise<StoredReport | undefined>;
  /**
   * With `maxBytes`: a report whose stored JSON, warnings and submitter take more bytes is not read
   * whole; its clipped summary comes back with `tooLarge`.
   */
  getReport(id: number, limits: { maxBytes: number }): Promise<StoredReport | OversizedReport | undefined>;
  /** Deletes the reports with their policy and failure rows; returns the ids that existed. */
  deleteReports(ids: number[]): Promise<number[]>;
  /** Deletes up to `limit` matching reports; `remaining` is how many still match afterwards. */
  purgeReports(filter: PurgeFilter): Promise<{ deleted: number; remaining: number }>;
  saveRejected(input: Omit<RejectedInput, 'id' | 'receivedAt'>, now: Date): Promise<number>;
  /** Newest first, clipped as list views. */
  listRejected(page?: PageRequest): Promise<Page<RejectedInput>>;
  /** Deletes up to `limit` entries received before the ISO time `before`, oldest first. */
  purgeRejected(filter: { before: string; limit: number }): Promise<{ deleted: number; remaining: number }>;
  dailyCounts(domain: string, since: string, until: string): Promise<DailyCounts[]>;
  /** Failures by key of the reports starting from `since` and before the end of `until` (as dailyCounts). */
  failureBreakdown(domain: string, by: BreakdownKey, since?: string, until?: string): Promise<BreakdownRow[]>;

  /** Policy fetches are logged in batches; a lost entry on a crash is acceptable (not acknowledged). */
  logFetch(entry: PolicyFetch): void;
  /** The domain's fetch log, newest first. */
  listFetches(domain: string, page?: PageRequest): Promise<Page<PolicyFetch>>;

  // ---- authentication ----
  // Each method is one transaction on rows, so a change is seen by every serve worker at once.
  // Secrets never reach the store: sessions and API tokens are kept as their SHA-256 (base64url).

  /** Sets the admin password hash (ADMIN_PASSWORD_SETTING) and ends every session, in one transaction. */
  setAdminPassword(hash: string): Promise<void>;
  /**
   * Starts a session, unless the admin password hash is no longer `issuedUnder` (it changed while the
   * login was being checked): then nothing is stored and the result is false.
   */
  createSession(
    session: { idHash: string; expiresAt: Date },
    issuedUnder: string,
    now: Date,
  ): Promise<boolean>;
  /** True when the session exists and expires after `now`. */
  sessionValid(idHash: string, now: Date): Promise<boolean>;
  endSession(idHash: string): Promise<void>;
  createApiToken(token: NewApiToken): Promise<void>;
  listApiTokens(): Promise<ApiTokenInfo[]>;
  /** The id of the API token whose secret has this SHA-256, if any. */
  findApiToken(hash: string): Promise<string | undefined>;
  deleteApiToken(id: string): Promise<boolean>;
  /**
   * The login throttle, before a password is checked: in one IMMEDIATE transaction counts the failed
   * and in-flight attempts of the client key and of the account within the window, refuses when the
   * client key is at its limit, else records an in-flight attempt. Shared by every process on the store.
   */
  reserveAuthAttempt(keys: AuthAttemptKeys, limits: AuthAttemptLimits, now: Date): Promise<AuthReservation>;
  /**
   * The same refusal as reserveAuthAttempt, read-only and without recording anything: for a password
   * known to be right without a check (auth.ts caches the last verified one), which needs no slot.
   */
  authAttemptAllowed(
    keys: AuthAttemptKeys,
    limits: AuthAttemptLimits,
    now: Date,
  ): Promise<{ ok: true } | { ok: false; retryAfterMs: number }>;
  /** After the check: a success forgets the attempt, a failure keeps counting until the window ends. */
  settleAuthAttempt(id: number, success: boolean): Promise<void>;
  /** Forgets every attempt of every client (mxguard admin reset-password / unlock). */
  clearAuthAttempts(): Promise<void>;

  /** The bulk-check queue on this database (check --enqueue, worker, check --results; check-queue.ts). */
  checkQueue(): CheckQueue;

  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;
  /** Read-only diagnostics: how this connection commits (for the durability tests and support). */
  durability(): Promise<StoreDurability>;
  close(): Promise<void>;
}

/** The journal and sync mode in force on a store connection, as the database reports them. */
export interface StoreDurability {
  /** SQLite: 'wal'. */
  journalMode: string;
  /** SQLite: 'OFF' | 'NORMAL' | 'FULL' | 'EXTRA'. */
  synchronous: string;
}
