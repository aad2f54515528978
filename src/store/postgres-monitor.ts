// Monitoring in the PostgreSQL store (issue 16; src/store/monitor-types.ts, migration 4): check runs with
// their bounded findings, alerts and their deliveries, with the SQLite store's semantics (sqlite.ts
// section "monitoring"; shared rules in monitor-rules.ts, rows in monitor-rows.ts).
//
// A check's outcome is one transaction. One open alert per (domain, code, subject) across every
// instance: the partial unique index alerts_one_open with INSERT ... ON CONFLICT DO NOTHING, so a
// second instance opening the same key waits for the first one's commit and then skips it (never a
// read-then-write). Findings are stored once each (unique hash); a run's new findings are upserted in
// hash order, so two runs sharing findings lock them in the same order and never deadlock.
import { createHash } from 'node:crypto';
import { count, timeBound } from './bounds.js';
import { domainKey } from './domain-rules.js';
import {
  type AlertRow,
  alertFilterWhere,
  alertFromRow,
  type CheckRunRow,
  type DeliveryRow,
  deliveryFilterWhere,
  deliveryFromRow,
  FINDINGS_PER_RUN_SWEPT,
  LONG_LIST_MAX,
  RUN_COLUMNS,
  runSummaryFromRow,
} from './monitor-rows.js';
import { checkedOutcome, clipStored } from './monitor-rules.js';
import {
  type Alert,
  type AlertFilter,
  type CheckOutcome,
  type CheckRun,
  type CheckRunSummary,
  type Delivery,
  MAX_DELIVERY_ERROR,
  MAX_RECENT_CHECK_RUNS,
  type MonitorStore,
  type NewDelivery,
  type StoredFinding,
} from './monitor-types.js';
import { clippedColumn, decodeCursor, encodeCursor, takePage } from './paging.js';
import { countOf, type Db, one, type PgRunner, pgText, query } from './postgres-sql.js';
import { LIST_MAX } from './sqlite.js';
import { type Page, type PageRequest, StoreError, storeInvalid } from './types.js';

export class PgMonitorStore implements MonitorStore {
  constructor(private readonly run: PgRunner) {}

  async recordCheck(outcome: CheckOutcome, now: Date): Promise<{ runId: number; opened: number[] }> {
    const { bounded, open, resolve } = checkedOutcome(outcome);
    const at = now.toISOString();
    return this.run.transaction(async (db) => {
      // FOR KEY SHARE: the domain cannot be removed before this commits.
      if (!(await one(db, 'SELECT 1 FROM domains WHERE name = ? FOR KEY SHARE', [bounded.domain]))) {
        throw new StoreError('STORE_DOMAIN_UNKNOWN', `domain ${bounded.domain} is not configured`);
      }
      const findingIds = await upsertFindings(db, bounded.findingsJson, bounded.atMs);
      const { run, counts } = bounded;
      const inserted = await one<{ id: number }>(
        db,
        `INSERT INTO check_runs (domain, at_ms, duration_ms, status, error, started_by, pass_count,
           warn_count, fail_count, omitted_findings, finding_ids)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
        [
          bounded.domain,
          bounded.atMs,
          run.durationMs,
          run.status,
          run.error ?? null,
          run.trigger,
          counts.pass,
          counts.warn,
          counts.fail,
          bounded.omitted,
          JSON.stringify(findingIds),
        ],
      );
      const runId = inserted!.id;
      const opened: number[] = [];
      for (const { alert, deliveries } of open) {
        // An open key is skipped, whoever opened it (the partial unique index alerts_one_open).
        const row = await one<{ id: number }>(
          db,
          `INSERT INTO alerts (domain, code, subject, severity, message, fix, opened_at, opened_by)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (domain, code, subject) WHERE resolved_at IS NULL DO NOTHING RETURNING id`,
          [
            alert.domain,
            alert.code,
            alert.subject,
            alert.severity,
            alert.message,
            alert.fix ?? null,
            at,
            runId,
          ],
        );
        if (row === undefined) continue;
        opened.push(row.id);
        await insertDeliveries(db, row.id, deliveries, at);
      }
      for (const { alertId, deliveries } of resolve) {
        // Only an alert of this domain still open is resolved (and notified), once.
        const row = await one(
          db,
          `UPDATE alerts SET resolved_at = ?, resolved_by = ?
           WHERE id = ? AND domain = ? AND resolved_at IS NULL RETURNING id`,
          [at, runId, alertId, bounded.domain],
        );
        if (row !== undefined) await insertDeliveries(db, alertId, deliveries, at);
      }
      return { runId, opened };
    });
  }

  async listCheckRuns(domain: string, page: PageRequest = {}): Promise<Page<CheckRunSummary>> {
    const key = domainKey(domain);
    const limit = count(page.limit, 'limit', 100, LIST_MAX);
    const after = page.cursor === undefined ? undefined : decodeCursor('checkRuns', page.cursor);
    return this.run.snapshot(async (db) => {
      const total = await countOf(db, 'SELECT count(*) AS n FROM check_runs WHERE domain = ?', [key]);
      const rows = await query<CheckRunRow>(
        db,
        `SELECT ${RUN_COLUMNS}, ${clippedColumn('error')} AS error FROM check_runs
         WHERE domain = ? AND (at_ms, id) < (?, ?) ORDER BY at_ms DESC, id DESC LIMIT ?`,
        [key, after?.[0] ?? Number.MAX_SAFE_INTEGER, after?.[1] ?? 0, limit + 1],
      );
      return takePage(
        rows.slice(0, limit).map((row) => runSummaryFromRow(row, true)),
        {
          more: rows.length > limit,
          total,
          cursorOf: (i) => encodeCursor('checkRuns', [rows[i]!.at_ms, rows[i]!.id]),
        },
      );
    });
  }

  async getCheckRun(id: number): Promise<CheckRun | undefined> {
    if (!Number.isSafeInteger(id)) return undefined;
    return this.run.snapshot(async (db) => {
      const row = await one<CheckRunRow>(
        db,
        `SELECT ${RUN_COLUMNS}, error, finding_ids FROM check_runs WHERE id = ?`,
        [id],
      );
      return row && runWithFindings(db, row);
    });
  }

  async recentCheckRuns(domain: string, howMany: number): Promise<CheckRun[]> {
    const limit = count(howMany, 'count', 0, MAX_RECENT_CHECK_RUNS);
    return this.run.snapshot(async (db) => {
      const rows = await query<CheckRunRow>(
        db,
        `SELECT ${RUN_COLUMNS}, error, finding_ids FROM check_runs WHERE domain = ?
         ORDER BY at_ms DESC, id DESC LIMIT ?`,
        [domainKey(domain), limit],
      );
      const runs: CheckRun[] = [];
      for (const row of rows) runs.push(await runWithFindings(db, row));
      return runs;
    });
  }

  async purgeCheckRuns(filter: {
    before: string;
    limit: number;
  }): Promise<{ deleted: number; remaining: number }> {
    const beforeMs = timeBound(filter?.before ?? '', 'before', false)!;
    const before = new Date(beforeMs).toISOString();
    const limit = count(filter.limit, 'limit', 0, LIST_MAX);
    // Runs no alert points to: the others stay as long as their alert (the evidence of its change).
    const unheld = `at_ms < ? AND NOT EXISTS (SELECT 1 FROM alerts WHERE opened_by = r.id)
      AND NOT EXISTS (SELECT 1 FROM alerts WHERE resolved_by = r.id)`;
    return this.run.transaction(async (db) => {
      // Alerts resolved before the cutoff whose notifications are settled, with their deliveries.
      await query(
        db,
        `DELETE FROM alerts WHERE id IN (SELECT id FROM alerts a WHERE resolved_at < ?
           AND NOT EXISTS (SELECT 1 FROM deliveries WHERE alert = a.id AND state = 'pending')
           ORDER BY resolved_at, id LIMIT ?)`,
        [before, limit],
      );
      const deleted = (
        await query(
          db,
          `DELETE FROM check_runs WHERE id IN
             (SELECT id FROM check_runs r WHERE ${unheld} ORDER BY at_ms, id LIMIT ?) RETURNING id`,
          [beforeMs, limit],
        )
      ).length;
      const remaining = await countOf(db, `SELECT count(*) AS n FROM check_runs r WHERE ${unheld}`, [
        beforeMs,
      ]);
      // Once only held runs are older than the cutoff: findings no run needs any more (every run
      // holding one is older than its last_ms, so only those runs can still hold it).
      if (remaining === 0) {
        await query(
          db,
          `DELETE FROM findings WHERE id IN (SELECT id FROM findings f WHERE last_ms < ? AND NOT EXISTS
             (SELECT 1 FROM check_runs r, jsonb_array_elements_text(r.finding_ids::jsonb) j(v)
              WHERE r.at_ms < ? AND j.v::bigint = f.id)
           ORDER BY last_ms LIMIT ?)`,
          [beforeMs, beforeMs, limit * FINDINGS_PER_RUN_SWEPT],
        );
      }
      return { deleted, remaining };
    });
  }

  async listAlerts(filter: AlertFilter = {}): Promise<Page<Alert>> {
    return this.newestFirst('alerts', alertFilterWhere(filter), filter, alertFromRow);
  }

  async openAlerts(domain?: string): Promise<Alert[]> {
    return this.run.use(async () =>
      (domain === undefined
        ? await query<AlertRow>(this.run.pool, 'SELECT * FROM alerts WHERE resolved_at IS NULL ORDER BY id')
        : await query<AlertRow>(
            this.run.pool,
            'SELECT * FROM alerts WHERE resolved_at IS NULL AND domain = ? ORDER BY id',
            [domainKey(domain)],
          )
      ).map(alertFromRow),
    );
  }

  async dueDeliveries(now: Date, limit: number): Promise<Delivery[]> {
    const max = count(limit, 'limit', 0, LONG_LIST_MAX);
    return this.run.use(async () =>
      (
        await query<DeliveryRow>(
          this.run.pool,
          `SELECT * FROM deliveries WHERE state = 'pending' AND next_attempt_at <= ?
           ORDER BY next_attempt_at, id LIMIT ?`,
          [now.toISOString(), max],
        )
      ).map(deliveryFromRow),
    );
  }

  async settleDelivery(
    id: number,
    result: { ok: true } | { ok: false; error: string; nextAttemptAt?: Date },
    now: Date,
  ): Promise<void> {
    if (!Number.isSafeInteger(id)) throw storeInvalid('id: must be a delivery id');
    const at = now.toISOString();
    // Only a pending delivery changes: a settled one stays as it ended.
    if (result.ok) {
      await this.run.use(() =>
        query(
          this.run.pool,
          `UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, last_attempt_at = ?,
             delivered_at = ?, next_attempt_at = NULL WHERE id = ? AND state = 'pending'`,
          [at, at, id],
        ),
      );
      return;
    }
    const next = result.nextAttemptAt;
    if (next !== undefined && Number.isNaN(next.getTime())) throw storeInvalid('nextAttemptAt: not a time');
    await this.run.use(() =>
      query(
        this.run.pool,
        `UPDATE deliveries SET state = ?, attempts = attempts + 1, last_attempt_at = ?, last_error = ?,
           next_attempt_at = ? WHERE id = ? AND state = 'pending'`,
        [
          next === undefined ? 'abandoned' : 'pending',
          at,
          clipStored(String(result.error), MAX_DELIVERY_ERROR),
          next === undefined ? null : next.toISOString(),
          id,
        ],
      ),
    );
  }

  async listDeliveries(filter: {
    alertId?: number;
    state?: Delivery['state'];
    limit?: number;
    cursor?: string;
  }): Promise<Page<Delivery>> {
    return this.newestFirst('deliveries', deliveryFilterWhere(filter), filter, deliveryFromRow);
  }

  /**
   * A page of the alerts or deliveries matching `where` (all true), newest id first: keyset on id, at
   * most LONG_LIST_MAX rows read (their text is up to MAX_STORED_FINDING_TEXT long).
   */
  private newestFirst<Row extends { id: number }, T>(
    table: 'alerts' | 'deliveries',
    { where, params }: { where: string[]; params: unknown[] },
    page: PageRequest,
    fromRow: (row: Row) => T,
  ): Promise<Page<T>> {
    const limit = count(page.limit, 'limit', 100, LONG_LIST_MAX);
    const after = page.cursor === undefined ? undefined : decodeCursor(table, page.cursor);
    const matching = where.length > 0 ? where.join(' AND ') : 'true';
    return this.run.snapshot(async (db) => {
      const total = await countOf(db, `SELECT count(*) AS n FROM ${table} WHERE ${matching}`, params);
      const rows = await query<Row>(
        db,
        `SELECT * FROM ${table} WHERE ${matching} AND id < ? ORDER BY id DESC LIMIT ?`,
        [...params, after?.[0] ?? Number.MAX_SAFE_INTEGER, limit + 1],
      );
      return takePage(rows.slice(0, limit).map(fromRow), {
        more: rows.length > limit,
        total,
        cursorOf: (i) => encodeCursor(table, [rows[i]!.id]),
      });
    });
  }
}

/**
 * Each distinct finding stored once (by the SHA-256 of its JSON), its last_ms raised to the run's; the
 * ids of `findingsJson` in order. One statement, rows in hash order (see the header comment).
 */
async function upsertFindings(db: Db, findingsJson: string[], atMs: number): Promise<number[]> {
  if (findingsJson.length === 0) return [];
  const byHash = new Map<string, string>();
  const hashes = findingsJson.map((json) => {
    const hash = createHash('sha256').update(json).digest('hex');
    byHash.set(hash, json);
    return hash;
  });
  const unique = [...byHash.keys()].sort();
  const rows = await query<{ id: number; hash: string }>(
    db,
    `INSERT INTO findings (hash, json, last_ms)
     SELECT decode(h, 'hex'), j, ?::bigint FROM unnest(?::text[], ?::text[]) AS u(h, j) ORDER BY h
     ON CONFLICT (hash) DO UPDATE SET last_ms = greatest(findings.last_ms, excluded.last_ms)
     RETURNING id, encode(hash, 'hex') AS hash`,
    [atMs, unique, unique.map((hash) => pgText(byHash.get(hash)!))],
  );
  const ids = new Map(rows.map((row) => [row.hash, row.id]));
  return hashes.map((hash) => ids.get(hash)!);
}

async function insertDeliveries(db: Db, alertId: number, deliveries: NewDelivery[], at: string) {
  if (deliveries.length === 0) return;
  await query(
    db,
    `INSERT INTO deliveries (alert, channel, target, event, state, attempts, created_at, next_attempt_at)
     SELECT ?::bigint, c, t, e, 'pending', 0, ?::text, ?::text FROM unnest(?::text[], ?::text[], ?::text[])
       WITH ORDINALITY AS d(c, t, e, n) ORDER BY n`,
    [
      alertId,
      at,
      at,
      deliveries.map((d) => d.channel),
      deliveries.map((d) => pgText(d.target)),
      deliveries.map((d) => pgText(JSON.stringify(d.event))),
    ],
  );
}

/** A whole run: its summary and its findings, in order. */
async function runWithFindings(db: Db, row: CheckRunRow): Promise<CheckRun> {
  const { counts: _counts, clipped: _clipped, ...run } = runSummaryFromRow(row);
  const findings = await query<{ json: string }>(
    db,
    `SELECT f.json FROM jsonb_array_elements_text(?::jsonb) WITH ORDINALITY AS j(v, n)
     JOIN findings f ON f.id = j.v::bigint ORDER BY j.n`,
    [row.finding_ids ?? '[]'],
  );
  return { ...run, findings: findings.map((f) => JSON.parse(f.json) as StoredFinding) };
}
