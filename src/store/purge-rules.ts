// Which stored reports a purge deletes (PurgeFilter: a policy domain, a start before a date, a limit),
// written once as the WHERE terms both stores' deleteOldest run (sqlite-delete.ts, postgres-delete.ts), so
// that SQLite and PostgreSQL delete exactly the same reports.
import { count, timeBound } from './bounds.js';
import { domainKey } from './domain-rules.js';
import { type PurgeFilter, storeInvalid } from './types.js';

/** The oldest rows of `table` matching `where`, as deleteOldest deletes them. */
export interface OldestMatching {
  table: string;
  /** Conditions ANDed together, with their `?` parameters in order. */
  where: string[];
  params: unknown[];
  /** The column that says which rows are oldest (ties: lowest id first). */
  oldestBy: string;
  /** Delete at most this many (0: only count). */
  limit: number;
}

/** Where reports of one kind live: their table, the condition of a policy domain, their start column. */
export interface PurgeTarget {
  table: string;
  /** A condition with one `?`: the report covers this policy domain. */
  domainCondition: string;
  oldestBy: string;
}

export const TLSRPT_PURGE: PurgeTarget = {
  table: 'reports',
  domainCondition: 'id IN (SELECT report FROM report_policies WHERE domain = ?)',
  oldestBy: 'start_ms',
};

export const DMARC_PURGE: PurgeTarget = {
  table: 'dmarc_reports',
  domainCondition: 'domain = ?',
  oldestBy: 'begin_ms',
};

/** The reports `filter` names (at least a domain or a date: never every report at once), at most maxLimit. */
export function purgeSelection(filter: PurgeFilter, target: PurgeTarget, maxLimit: number): OldestMatching {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.domain !== undefined) {
    where.push(target.domainCondition);
    params.push(domainKey(filter.domain));
  }
  if (filter.before !== undefined) {
    where.push(`${target.oldestBy} < ?`);
    params.push(timeBound(filter.before, 'before', false));
  }
  if (where.length === 0) throw storeInvalid('purge: give domain or before (never every report at once)');
  const limit = count(filter.limit, 'limit', 0, maxLimit);
  return { table: target.table, where, params, oldestBy: target.oldestBy, limit };
}
