// Bounds the SQLite store's queries take from callers: since/until/before times and counts (page
// limits), checked and turned into numbers, with STORE_INVALID naming the field otherwise.
import { describeValue } from './domain-rules.js';
import { StoreError } from './types.js';

const DAY_MS = 86_400_000;

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$/i;

/**
 * A since/until bound as epoch milliseconds (undefined when not given). ISO dates or timestamps;
 * a timestamp without a zone is UTC; a date as `until` means the end of that day.
 */
export function timeBound(value: string | undefined, field: string, isUntil: boolean): number | undefined {
  if (value === undefined) return undefined;
  let ms = Number.NaN;
  if (typeof value === 'string' && DATE_ONLY.test(value)) {
    ms = Date.parse(`${value}T00:00:00Z`) + (isUntil ? DAY_MS : 0);
  } else if (typeof value === 'string') {
    const m = DATE_TIME.exec(value);
    if (m) ms = Date.parse(m[1] ? value : `${value}Z`);
  }
  if (Number.isNaN(ms))
    throw new StoreError(
      'STORE_INVALID',
      `${field}: ${describeValue(value)} is not an ISO date or timestamp`,
    );
  return ms;
}

export function count(
  value: number | undefined,
  field: string,
  fallback: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0)
    throw new StoreError('STORE_INVALID', `${field}: ${describeValue(value)} is not a whole number`);
  return Math.min(value, max);
}
