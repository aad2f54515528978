// Versioned schema of the SQLite store. `PRAGMA user_version` holds how many migrations ran;
// each migration runs in its own transaction together with the version bump, so a crash leaves
// the database either before or after a migration, never half way. Never edit a migration that
// has shipped: append a new one.
import type Database from 'better-sqlite3';
import { StoreError } from './types.js';

// Tables are STRICT (types enforced). Lists (mx, rua, warnings) are JSON arrays in TEXT columns;
// the report itself is kept whole as JSON next to the rows the dashboard queries.
// Exported for the tests that build a database as an older mxguard left it (migrate with a prefix).
export const MIGRATIONS: readonly string[] = [
  // 1: the first schema.
  `
  CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;

  CREATE TABLE domains (
    name TEXT PRIMARY KEY,
    mode TEXT NOT NULL,
    mx TEXT NOT NULL,
    max_age INTEGER NOT NULL,
    rua TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    policy_text TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  ) STRICT;

  CREATE TABLE policy_versions (
    id INTEGER PRIMARY KEY,
    domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,
    policy_id TEXT NOT NULL,
    policy_text TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (domain, policy_id)
  ) STRICT;

  -- The last policy id of a removed domain: adding it again must publish a greater id, or senders
  -- holding the old policy in cache would not notice the new one (RFC 8461 §3.1: id).
  CREATE TABLE retired_policy_ids (
    domain TEXT PRIMARY KEY,
    policy_id TEXT NOT NULL
  ) STRICT;

  CREATE TABLE reports (
    id INTEGER PRIMARY KEY,
    organization TEXT NOT NULL,
    report_id TEXT NOT NULL,
    start_at TEXT NOT NULL,
    end_at TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    successful INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    source TEXT NOT NULL,
    dkim TEXT NOT NULL,
    submitter TEXT,
    warnings TEXT NOT NULL,
    report_json TEXT NOT NULL,
    received_at TEXT NOT NULL,
    UNIQUE (organization, report_id)
  ) STRICT;
  CREATE INDEX reports_start ON reports (start_ms);

  -- One row per policy result of a report; organization and start are copied from the report so
  -- the per-domain daily chart and the per-organization breakdown need no join.
  CREATE TABLE report_policies (
    id INTEGER PRIMARY KEY,
    report INTEGER NOT NULL REFERENCES reports(id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    domain TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    start_day TEXT NOT NULL,
    organization TEXT NOT NULL,
    successful INTEGER NOT NULL,
    failed INTEGER NOT NULL
  ) STRICT;
  -- Covers dailyCounts: one range scan per domain, sums read from the index.
  CREATE INDEX report_policies_domain_start
    ON report_policies (domain, start_ms, start_day, successful, failed);
  CREATE INDEX report_policies_report ON report_policies (report);

  CREATE TABLE failures (
    id INTEGER PRIMARY KEY,
    policy INTEGER NOT NULL REFERENCES report_policies(id) ON DELETE CASCADE,
    domain TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    result_type TEXT NOT NULL,
    count INTEGER NOT NULL,
    sending_mta_ip TEXT,
    receiving_mx_hostname TEXT,
    receiving_mx_helo TEXT,
    receiving_ip TEXT,
    additional_information TEXT,
    failure_reason_code TEXT
  ) STRICT;
  CREATE INDEX failures_domain_start ON failures (domain, start_ms);
  CREATE INDEX failures_policy ON failures (policy);

  CREATE TABLE rejected (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    submitter TEXT,
    reason TEXT NOT NULL,
    size INTEGER NOT NULL,
    received_at TEXT NOT NULL
  ) STRICT;

  CREATE TABLE fetches (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    domain TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    user_agent TEXT NOT NULL
  ) STRICT;
  CREATE INDEX fetches_domain ON fetches (domain, id);
  `,
  // 2: sessions, API tokens and authentication throttle counters as rows (changed in transactions).
  `
  -- Dashboard sessions: the SHA-256 of the cookie's session id (base64url), never the id itself.
  CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    expires_ms INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX sessions_expires ON sessions (expires_ms);

  -- API tokens: the SHA-256 of the secret (base64url); the secret is shown once and never stored.
  CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
  ) STRICT;

  -- Password attempts (login, bearer password) being checked or failed, for the throttle: counted
  -- per client key and per account within a window; a successful attempt's row is deleted.
  -- AUTOINCREMENT: an id handed to a worker is never reused by another attempt.
  CREATE TABLE auth_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    client_key TEXT NOT NULL,
    account TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('checking', 'failed')),
    at_ms INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX auth_attempts_client ON auth_attempts (client_key, at_ms);
  CREATE INDEX auth_attempts_account ON auth_attempts (account, at_ms);
  CREATE INDEX auth_attempts_at ON auth_attempts (at_ms);

  -- Schema 1 kept the tokens and sessions as JSON values in settings: move them into the tables
  -- (existing tokens keep working, nobody is logged out). Damaged values are skipped, never fatal.
  INSERT OR IGNORE INTO api_tokens (id, name, hash, created_at)
    SELECT json_extract(o, '$.id'), json_extract(o, '$.name'), json_extract(o, '$.hash'),
      json_extract(o, '$.createdAt')
    FROM (
      SELECT CASE WHEN t.type = 'object' THEN t.value ELSE '{}' END AS o
      FROM settings s,
        json_each(CASE WHEN json_valid(s.value) THEN
          CASE WHEN json_type(s.value) = 'array' THEN s.value END END) t
      WHERE s.key = 'api.tokens'
    )
    WHERE json_type(o, '$.id') = 'text' AND json_type(o, '$.name') = 'text'
      AND json_type(o, '$.hash') = 'text' AND json_type(o, '$.createdAt') = 'text';

  INSERT OR IGNORE INTO sessions (id_hash, expires_ms)
    SELECT t.key, CAST(t.value AS INTEGER)
    FROM settings s,
      json_each(CASE WHEN json_valid(s.value) THEN
        CASE WHEN json_type(s.value) = 'object' THEN s.value END END) t
    WHERE s.key = 'admin.sessions' AND t.type IN ('integer', 'real');

  DELETE FROM settings WHERE key IN ('api.tokens', 'admin.sessions');
  `,
  // 3: report retention and deletion. Reports are purged by start_ms (index reports_start) and
  // their policy and failure rows go by ON DELETE CASCADE (indexes on report and policy); rejected
  // input is purged by the time it came.
  `
  CREATE INDEX rejected_received ON rejected (received_at);
  `,
  // 4: monitoring (issue 12, src/store/monitor-types.ts): watch-only domains, check runs, alerts and
  // their deliveries. A domain's runs and alerts go with it (ON DELETE CASCADE), deliveries with their
  // alert; a run an alert points to cannot be deleted (no action on opened_by / resolved_by).
  `
  ALTER TABLE domains ADD COLUMN watch_only INTEGER NOT NULL DEFAULT 0 CHECK (watch_only IN (0, 1));

  -- Each distinct finding once (its JSON as stored, bounded when the run is built): one check is
  -- mostly the findings of the one before. hash: the first 16 bytes of the SHA-256 of json;
  -- last_ms: the newest run holding it, so retention can tell which ones no run needs any more.
  CREATE TABLE findings (
    id INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    json TEXT NOT NULL,
    last_ms INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX findings_last ON findings (last_ms);

  -- finding_ids: the run's findings as a JSON array of findings ids, in order; counts are over
  -- every finding of the check, stored or not.
  CREATE TABLE check_runs (
    id INTEGER PRIMARY KEY,
    domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,
    at_ms INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pass', 'warn', 'fail', 'error')),
    error TEXT,
    started_by TEXT NOT NULL CHECK (started_by IN ('schedule', 'start', 'manual')),
    pass_count INTEGER NOT NULL,
    warn_count INTEGER NOT NULL,
    fail_count INTEGER NOT NULL,
    omitted_findings INTEGER NOT NULL,
    finding_ids TEXT NOT NULL
  ) STRICT;
  -- A domain's history page by page; retention by age.
  CREATE INDEX check_runs_domain ON check_runs (domain, at_ms, id);
  CREATE INDEX check_runs_at ON check_runs (at_ms, id);

  CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,
    code TEXT NOT NULL,
    subject TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('fail', 'warn')),
    message TEXT NOT NULL,
    fix TEXT,
    opened_at TEXT NOT NULL,
    opened_by INTEGER NOT NULL REFERENCES check_runs(id),
    resolved_at TEXT,
    resolved_by INTEGER REFERENCES check_runs(id),
    CHECK ((resolved_at IS NULL) = (resolved_by IS NULL))
  ) STRICT;
  -- At most one open alert per (domain, code, subject), whichever process writes it.
  CREATE UNIQUE INDEX alerts_one_open ON alerts (domain, code, subject) WHERE resolved_at IS NULL;
  CREATE INDEX alerts_domain ON alerts (domain, id);
  CREATE INDEX alerts_resolved ON alerts (resolved_at) WHERE resolved_at IS NOT NULL;
  -- Deleting a run looks up the alerts pointing to it.
  CREATE INDEX alerts_opened_by ON alerts (opened_by);
  CREATE INDEX alerts_resolved_by ON alerts (resolved_by) WHERE resolved_by IS NOT NULL;

  -- event: the AlertEvent JSON sent; next_attempt_at (ISO, UTC) is set while pending.
  CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    alert INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    channel TEXT NOT NULL CHECK (channel IN ('webhook', 'email')),
    target TEXT NOT NULL,
    event TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'abandoned')),
    attempts INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    next_attempt_at TEXT,
    last_attempt_at TEXT,
    last_error TEXT,
    delivered_at TEXT
  ) STRICT;
  -- The deliverer's question: which pending ones are due (few rows, however many were sent).
  CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE state = 'pending';
  CREATE INDEX deliveries_alert ON deliveries (alert, id);
  `,
  // 5: DMARC aggregate reports (issue 15, src/store/dmarc-types.ts) beside TLS-RPT's: the report whole as
  // JSON, one row per <record> for the dashboard's sums (its rows go with it by ON DELETE CASCADE), and
  // the reverse DNS cache of source IPs. The same report (organization + report id + policy domain) is
  // stored once (unique index; writers use INSERT ... ON CONFLICT DO NOTHING).
  `
  CREATE TABLE dmarc_reports (
    id INTEGER PRIMARY KEY,
    organization TEXT NOT NULL,
    report_id TEXT NOT NULL,
    domain TEXT NOT NULL,
    begin_at TEXT NOT NULL,
    end_at TEXT NOT NULL,
    begin_ms INTEGER NOT NULL,
    messages INTEGER NOT NULL,
    passed INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    source TEXT NOT NULL,
    dkim TEXT NOT NULL,
    submitter TEXT,
    warnings TEXT NOT NULL,
    report_json TEXT NOT NULL,
    received_at TEXT NOT NULL
  ) STRICT;
  CREATE UNIQUE INDEX dmarc_reports_same ON dmarc_reports (organization, report_id, domain);
  CREATE INDEX dmarc_reports_begin ON dmarc_reports (begin_ms, id);
  CREATE INDEX dmarc_reports_domain ON dmarc_reports (domain, begin_ms, id);

  CREATE TABLE dmarc_rows (
    id INTEGER PRIMARY KEY,
    report INTEGER NOT NULL REFERENCES dmarc_reports(id) ON DELETE CASCADE,
    domain TEXT NOT NULL,
    begin_ms INTEGER NOT NULL,
    begin_day TEXT NOT NULL,
    organization TEXT NOT NULL,
    source_ip TEXT NOT NULL,
    count INTEGER NOT NULL,
    disposition TEXT NOT NULL CHECK (disposition IN ('none', 'quarantine', 'reject')),
    dkim TEXT NOT NULL CHECK (dkim IN ('pass', 'fail')),
    spf TEXT NOT NULL CHECK (spf IN ('pass', 'fail')),
    header_from TEXT NOT NULL
  ) STRICT;
  CREATE INDEX dmarc_rows_report ON dmarc_rows (report);
  CREATE INDEX dmarc_rows_domain ON dmarc_rows (domain, begin_ms);
  CREATE INDEX dmarc_rows_source ON dmarc_rows (source_ip);

  -- name '' = looked up, none found.
  CREATE TABLE ptr_names (
    ip TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    at TEXT NOT NULL
  ) STRICT;
  `,
  // 6: the bulk-check queue (issue 16, src/store/check-queue.ts): one job per (batch, domain), queued, then
  // claimed by a worker (holder) until lease_until_ms (epoch ms), then done with its result (one NDJSON
  // line). attempts counts the claims. Each state has its own partial index: claims, counts and results
  // read only the rows of their state.
  `
  CREATE TABLE check_jobs (
    id INTEGER PRIMARY KEY,
    batch TEXT NOT NULL,
    domain TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'claimed', 'done')),
    attempts INTEGER NOT NULL,
    holder TEXT,
    lease_until_ms INTEGER,
    result TEXT,
    enqueued_at TEXT NOT NULL,
    claimed_at TEXT,
    done_at TEXT,
    UNIQUE (batch, domain),
    CHECK ((state = 'claimed') = (holder IS NOT NULL AND lease_until_ms IS NOT NULL)),
    CHECK ((state = 'done') = (result IS NOT NULL))
  ) STRICT;
  CREATE INDEX check_jobs_queued ON check_jobs (batch, id) WHERE state = 'queued';
  CREATE INDEX check_jobs_leased ON check_jobs (batch, lease_until_ms) WHERE state = 'claimed';
  CREATE INDEX check_jobs_holder ON check_jobs (holder) WHERE state = 'claimed';
  CREATE INDEX check_jobs_done ON check_jobs (batch, id) WHERE state = 'done';
  `,
];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Bring the database up to SCHEMA_VERSION. Safe when two processes open the same new database at
 * once: the version is read again inside each write transaction.
 */
export function migrate(db: Database.Database, migrations: readonly string[] = MIGRATIONS): void {
  const readVersion = () => db.pragma('user_version', { simple: true }) as number;
  const initial = readVersion();
  if (initial > migrations.length) {
    throw new StoreError(
      'STORE_IO',
      `${db.name}: database schema version ${initial} is newer than this mxguard understands (${migrations.length}); upgrade mxguard`,
    );
  }
  for (let version = initial; version < migrations.length; version++) {
    const step = db.transaction(() => {
      if (readVersion() !== version) return; // another process ran it meanwhile
      db.exec(migrations[version]!);
      db.pragma(`user_version = ${version + 1}`);
    });
    step.immediate();
  }
}
