// Pages of the store's lists (reports, rejected input, the policy fetch log) and of the API's: an
// opaque cursor, at most `limit` items, and never more than LIST_PAGE_MAX_BYTES of JSON, whatever
// the stored rows hold. List views cut long text to LIST_TEXT_MAX characters and mark it; the
// whole value is only in a report's detail view.
import { type Page, StoreError } from './types.js';

/** The largest JSON answer a list may make (its items plus the answer's few other fields). */
export const LIST_PAGE_MAX_BYTES = 1024 * 1024;
/**
 * Room kept for what an answer adds to the items: total, nextCursor, and the fetch log's `client`
 * per entry (at most 1,000 per API page) with the counts per client.
 */
const PAGE_OVERHEAD_BYTES = 64 * 1024;
/** Longest text in a list view, in characters; longer values end with CLIP_MARK. */
export const LIST_TEXT_MAX = 256;
export const CLIP_MARK = '…';
/** A list view shows at most this many of a report's policy domains. */
export const LIST_DOMAINS_MAX = 20;
/** A report's detail view (API, `reports show`) reads a report whole up to this many stored bytes. */
export const REPORT_DETAIL_MAX_BYTES = 8 * 1024 * 1024;

/** Kinds of cursor: a cursor of one list is refused by another. */
export type CursorKind =
  | 'reports'
  | 'rejected'
  | 'fetches'
  | 'domains'
  | 'checkRuns'
  | 'alerts'
  | 'deliveries'
  | 'dmarcReports'
  | 'dmarcSources';

/** The opaque cursor for the position after an item: base64url of its kind and sort key. */
export function encodeCursor(kind: CursorKind, key: ReadonlyArray<string | number>): string {
  return Buffer.from(JSON.stringify([kind, ...key])).toString('base64url');
}

/** The sort key in a cursor, checked against the kind and the types of its parts. */
export function decodeCursor(
  kind: 'reports' | 'checkRuns' | 'dmarcReports',
  cursor: string,
): [number, number];
export function decodeCursor(kind: 'dmarcSources', cursor: string): [number, string];
export function decodeCursor(
  kind: 'rejected' | 'fetches' | 'alerts' | 'deliveries',
  cursor: string,
): [number];
export function decodeCursor(kind: 'domains', cursor: string): [string];
export function decodeCursor(kind: CursorKind, cursor: string): Array<string | number> {
  const types = {
    reports: ['number', 'number'],
    rejected: ['number'],
    fetches: ['number'],
    domains: ['string'],
    checkRuns: ['number', 'number'],
    alerts: ['number'],
    deliveries: ['number'],
    dmarcReports: ['number', 'number'],
    dmarcSources: ['number', 'string'],
  }[kind];
  let parts: unknown;
  try {
    parts =
      typeof cursor === 'string' && /^[A-Za-z0-9_-]{1,400}$/.test(cursor)
        ? JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
        : undefined;
  } catch {
    parts = undefined;
  }
  const ok =
    Array.isArray(parts) &&
    parts.length === types.length + 1 &&
    parts[0] === kind &&
    types.every((t, i) => typeof parts[i + 1] === t) &&
    parts.slice(1).every((p) => typeof p !== 'number' || Number.isSafeInteger(p));
  if (!ok)
    throw new StoreError(
      'STORE_INVALID',
      `cursor: not a cursor of the ${kind} list (use nextCursor as given)`,
    );
  return (parts as Array<string | number>).slice(1);
}

/**
 * One page of `items` (at most the page's limit, in order; `more` when others follow them): items
 * while they fit in the byte budget, the first always (list items are clipped, so small).
 * `nextCursor` is the position after the last item taken (`cursorOf` its index), or null when
 * nothing follows.
 */
export function takePage<T>(
  items: T[],
  options: { more: boolean; total: number; cursorOf: (index: number) => string; maxBytes?: number },
): Page<T> {
  const maxBytes = options.maxBytes ?? LIST_PAGE_MAX_BYTES - PAGE_OVERHEAD_BYTES;
  const taken: T[] = [];
  let bytes = 2;
  for (const item of items) {
    bytes += Buffer.byteLength(JSON.stringify(item)) + 1;
    if (taken.length > 0 && bytes > maxBytes) break;
    taken.push(item);
  }
  const more = options.more || taken.length < items.length;
  return { items: taken, nextCursor: more ? options.cursorOf(taken.length - 1) : null, total: options.total };
}

/**
 * A list view of `text` (already cut by the query to LIST_TEXT_MAX + 1 characters or more): at most
 * LIST_TEXT_MAX characters, then CLIP_MARK; `clipped` is told the field's name when it was cut.
 */
export function clipText(text: string, field: string, clipped: string[]): string {
  if (text.length <= LIST_TEXT_MAX) return text;
  const chars = Array.from(text.slice(0, 2 * LIST_TEXT_MAX + 2));
  if (chars.length <= LIST_TEXT_MAX) return text;
  if (!clipped.includes(field)) clipped.push(field);
  return `${chars.slice(0, LIST_TEXT_MAX).join('')}${CLIP_MARK}`;
}

/** SQL for a text column as a list view reads it: never more than one character past the clip length. */
export function clippedColumn(column: string): string {
  return `substr(${column}, 1, ${LIST_TEXT_MAX + 1})`;
}
