// What `mxguard reports list` reads: TLS-RPT reports, DMARC reports or both (newest first by the start
// of their date range, as the store files them), a page at a time or --all, and whether the listing was
// cut. Both kinds together are merged from the store's two lists; their cursor holds one position per
// list ("both:" + base64url JSON), so that a page never repeats or skips a report of either kind.
import type { DmarcReportFilter, DmarcReportSummary } from '../store/dmarc-types.js';
import { encodeCursor } from '../store/paging.js';
import type { Page, ReportFilter, Store, StoredReportSummary } from '../store/types.js';
import { CliError } from './util.js';

export const LIST_KINDS = ['tlsrpt', 'dmarc', 'all'] as const;
export type ListKind = (typeof LIST_KINDS)[number];

export type ListedReport =
  | ({ kind: 'tlsrpt' } & StoredReportSummary)
  | ({ kind: 'dmarc' } & DmarcReportSummary);

export interface ListRequest {
  kind: ListKind;
  domain?: string;
  since?: string;
  until?: string;
  /** Reports per page (with --all: per store call). */
  limit: number;
  cursor?: string;
  /** Every matching report, page after page. */
  all: boolean;
  /** Only reports about domains that are not configured (src/store/other-domains.ts). */
  otherDomains?: boolean;
}

export interface Listing {
  reports: ListedReport[];
  total: number;
  nextCursor: string | null;
  /** True when more reports match than were listed (no --all, and a next page exists). */
  cut: boolean;
}

/** The reports `request` asks for. Throws CliError 2 for a cursor that is not one of this listing. */
export async function listReportsOfKind(store: Store, request: ListRequest): Promise<Listing> {
  let cursor = request.cursor;
  const reports: ListedReport[] = [];
  for (;;) {
    const page = await onePage(store, request, cursor);
    reports.push(...page.items);
    if (!request.all || page.nextCursor === null) {
      return { reports, total: page.total, nextCursor: page.nextCursor, cut: page.nextCursor !== null };
    }
    cursor = page.nextCursor;
  }
}

async function onePage(
  store: Store,
  request: ListRequest,
  cursor: string | undefined,
): Promise<Page<ListedReport>> {
  const filter = {
    domain: request.domain,
    since: request.since,
    until: request.until,
    limit: request.limit,
    ...(request.otherDomains ? { otherDomains: true } : {}),
  };
  if (request.kind === 'tlsrpt') return tagged(await store.listReports({ ...filter, cursor }), 'tlsrpt');
  if (request.kind === 'dmarc') return tagged(await store.listDmarcReports({ ...filter, cursor }), 'dmarc');
  return mergedPage(store, filter, cursor === undefined ? { tlsrpt: '', dmarc: '' } : decodeBoth(cursor));
}

function tagged<K extends ListedReport['kind'], T>(page: Page<T>, kind: K): Page<{ kind: K } & T> {
  return { ...page, items: page.items.map((item) => ({ kind, ...item })) };
}

/** Where each list stands: '' = from its start, a store cursor, or null = nothing more. */
interface BothPositions {
  tlsrpt: string | null;
  dmarc: string | null;
}

type Key = [ms: number, kindRank: number, id: number];

function keyOf(item: ListedReport): Key {
  return item.kind === 'tlsrpt' ? [Date.parse(item.start), 1, item.id] : [Date.parse(item.begin), 0, item.id];
}

/** Newest first: the order of both store lists (start, then id, descending). */
function newerFirst(a: Key, b: Key): number {
  return b[0] - a[0] || b[1] - a[1] || b[2] - a[2];
}

async function mergedPage(
  store: Store,
  filter: ReportFilter & DmarcReportFilter,
  at: BothPositions,
): Promise<Page<ListedReport>> {
  // A list already at its end is still asked (one item) for its total.
  const read = async <K extends ListedReport['kind']>(
    kind: K,
    list: (f: ReportFilter & DmarcReportFilter) => Promise<Page<StoredReportSummary | DmarcReportSummary>>,
  ) => {
    const position = at[kind];
    const page = await list({
      ...filter,
      ...(position === null ? { limit: 1 } : {}),
      cursor: position || undefined,
    });
    return position === null
      ? { items: [], nextCursor: null, total: page.total }
      : (tagged(page, kind) as Page<ListedReport>);
  };
  const pages = {
    tlsrpt: await read('tlsrpt', (f) => store.listReports(f)),
    dmarc: await read('dmarc', (f) => store.listDmarcReports(f)),
  };
  // Items newer than the oldest one either list could still have between pages are safe to show.
  const merged = [...pages.tlsrpt.items, ...pages.dmarc.items].sort((a, b) => newerFirst(keyOf(a), keyOf(b)));
  let bound: Key | undefined;
  for (const page of Object.values(pages)) {
    const last = page.items.at(-1);
    if (page.nextCursor !== null && last && (!bound || newerFirst(keyOf(last), bound) < 0))
      bound = keyOf(last);
  }
  const taken = merged.filter((item) => !bound || newerFirst(keyOf(item), bound) <= 0).slice(0, filter.limit);
  const next: BothPositions = { ...at };
  for (const kind of ['tlsrpt', 'dmarc'] as const) {
    const page = pages[kind];
    const last = taken.filter((item) => item.kind === kind).at(-1);
    if (page.items.length === 0) next[kind] = page.nextCursor;
    else if (last === page.items.at(-1)) next[kind] = page.nextCursor;
    else if (last) {
      const [ms, , id] = keyOf(last);
      next[kind] = encodeCursor(kind === 'tlsrpt' ? 'reports' : 'dmarcReports', [ms, id]);
    }
  }
  const total = pages.tlsrpt.total + pages.dmarc.total;
  const more = next.tlsrpt !== null || next.dmarc !== null;
  return { items: taken, total, nextCursor: more ? encodeBoth(next) : null };
}

const BOTH_PREFIX = 'both:';

function encodeBoth(at: BothPositions): string {
  return BOTH_PREFIX + Buffer.from(JSON.stringify([at.tlsrpt, at.dmarc])).toString('base64url');
}

function decodeBoth(cursor: string): BothPositions {
  const wrong = () =>
    new CliError(
      2,
      '--cursor: not a cursor of a listing of both kinds (use nextCursor as given, with the same --kind)',
    );
  if (!cursor.startsWith(BOTH_PREFIX) || cursor.length > 2000) throw wrong();
  let parts: unknown;
  try {
    parts = JSON.parse(Buffer.from(cursor.slice(BOTH_PREFIX.length), 'base64url').toString('utf8'));
  } catch {
    throw wrong();
  }
  if (
    !Array.isArray(parts) ||
    parts.length !== 2 ||
    !parts.every((p) => p === null || typeof p === 'string')
  ) {
    throw wrong();
  }
  const [tlsrpt = null, dmarc = null] = parts as Array<string | null>;
  return { tlsrpt, dmarc };
}
