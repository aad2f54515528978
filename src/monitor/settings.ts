// The settings of monitoring (`serve`'s `monitor.*` keys, read and validated in src/server/config.ts):
// what is checked how often, when an alert opens, and where notifications go.

export interface WebhookTarget {
  url: string;
  /** Shared secret: each POST carries X-Mxguard-Signature: sha256=<hex HMAC-SHA256 of the body>. */
  secret?: string;
}

export interface EmailTarget {
  /** SMTP submission server. */
  host: string;
  port: number;
  /** `starttls` (port 587, the default), `tls` (implicit TLS, port 465) or `none` (labs only). */
  security: 'starttls' | 'tls' | 'none';
  user?: string;
  password?: string;
  from: string;
  to: string[];
}

export interface MonitorSettings {
  /** Off: no scheduled checks (on-demand checks still work). Default on. */
  enabled: boolean;
  /** Seconds between two checks of a domain (default 3600), jittered by up to 10 %. */
  intervalSeconds: number;
  /** Domains checked at the same time (default 4). */
  concurrency: number;
  /** Check runs are kept this many days (default 90). */
  historyDays: number;
  /** Consecutive bad checks before an alert opens: fails (default 1) and warnings (default 2). */
  failChecks: number;
  warnChecks: number;
  /** A certificate (MX or policy host) expiring within this many days is an alert (default 21). */
  expiryDays: number;
  /** TLS-RPT: a policy domain's failure rate over the last 24 h above this fraction (default 0.01)... */
  tlsrptFailureRate: number;
  /** ...counted only with at least this many sessions (default 100). */
  tlsrptMinSessions: number;
  webhooks: WebhookTarget[];
  email?: EmailTarget;
  /** Base URL of the dashboard, for `dashboardUrl` in notifications (absent: left out). */
  dashboardUrl?: string;
}

export const DEFAULT_MONITOR_SETTINGS: MonitorSettings = {
  enabled: true,
  intervalSeconds: 3600,
  concurrency: 4,
  historyDays: 90,
  failChecks: 1,
  warnChecks: 2,
  expiryDays: 21,
  tlsrptFailureRate: 0.01,
  tlsrptMinSessions: 100,
  webhooks: [],
};
