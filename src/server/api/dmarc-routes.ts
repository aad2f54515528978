// The API routes of DMARC aggregate reports (RFC 7489 §7.2, issue 15): the list with its filters, one
// report, delete; per domain the messages per day by result, the reporters and the next step, and the
// sending sources ranked with whether they look legitimate (src/server/dmarc-sources.ts).
import type { z } from 'zod';
import { dmarcCsvHeader } from '../../dmarc/csv.js';
import type { DmarcReportFilter, DmarcStore } from '../../store/dmarc-types.js';
import type { ServerContext } from '../context.js';
import {
  AuthorisedSenders,
  type JudgedSource,
  judgeSource,
  nextStep,
  PtrLookups,
  publishedDmarc,
} from '../dmarc-sources.js';
import { dmarcReportCsv } from '../report-csv.js';
import { sendCsv } from './csv-download.js';
import { ApiError, defineRoute } from './route.js';
import {
  ApiErrorBody,
  DayRangeQuery,
  DmarcOverview,
  DmarcReport,
  DmarcReportList,
  DmarcReportsCsvQuery,
  DmarcReportsQuery,
  DmarcSourceList,
  DmarcSourcesQuery,
  DomainParams,
  RANGE_DAYS_MAX,
  ReportParams,
} from './schemas.js';
import { DAY_MS, dayRange, existingDomain, otherDomainsFilter, reportIdParam, utcDay } from './views.js';

const notFound = { 404: { description: 'no such report', schema: ApiErrorBody } };
const noDomain = { 404: { description: 'no such domain', schema: ApiErrorBody } };

/** The store's DMARC methods (src/store/dmarc-types.ts). */
function dmarcStore(ctx: ServerContext): DmarcStore {
  return ctx.store;
}

/** One background reverse-DNS queue per server. */
const ptrQueues = new WeakMap<ServerContext, PtrLookups>();
export function ptrLookups(ctx: ServerContext): PtrLookups {
  let queue = ptrQueues.get(ctx);
  if (!queue) {
    queue = new PtrLookups(dmarcStore(ctx), ctx.resolver, () => ctx.now());
    ptrQueues.set(ctx, queue);
  }
  return queue;
}

/** What each domain authorises (MX addresses, SPF verdicts), kept per server for a while. */
const authorisedByServer = new WeakMap<ServerContext, AuthorisedSenders>();
function authorisedSenders(ctx: ServerContext): AuthorisedSenders {
  let senders = authorisedByServer.get(ctx);
  if (!senders) {
    senders = new AuthorisedSenders(ctx.resolver, () => ctx.now());
    authorisedByServer.set(ctx, senders);
  }
  return senders;
}

/** Reports read for the reporters table of one range at most (more: `reportersCut`). */
const REPORTERS_READ_MAX = 10_000;
/** Sources judged for the next step at most (the largest by volume). */
const STEP_SOURCES_MAX = 1000;

const DMARC_DAY = { pass: 0, fail: 0, quarantined: 0, rejected: 0 };

/** The sources of a page judged: reverse DNS names from the cache (others queued), legitimacy. */
async function judged(
  ctx: ServerContext,
  domain: string,
  rows: Awaited<ReturnType<DmarcStore['dmarcSources']>>['items'],
): Promise<JudgedSource[]> {
  if (rows.length === 0) return [];
  const [names, authorised] = await Promise.all([
    ptrLookups(ctx).names(rows.map((r) => r.sourceIp)),
    authorisedSenders(ctx).of(
      domain,
      rows.map((r) => r.sourceIp),
    ),
  ]);
  return rows.map((r) => {
    const ptr = r.ptr ?? names.get(r.sourceIp);
    return judgeSource(ptr ? { ...r, ptr } : r, authorised);
  });
}

/** The store's filter of a DMARC report list query (the JSON list and the CSV download). */
function dmarcListFilter(query: z.output<typeof DmarcReportsQuery>): DmarcReportFilter {
  const { limit, cursor, domain, since, until, organization, sourceIp, disposition } = query;
  return {
    limit,
    cursor,
    domain,
    since,
    until,
    organization,
    sourceIp,
    disposition,
    ...otherDomainsFilter(query),
  };
}

export const DMARC_ROUTES = [
  defineRoute({
    method: 'GET',
    path: '/api/dmarc/reports',
    summary:
      'Stored DMARC aggregate reports, newest first, filtered by domain, range, reporter, source IP, disposition',
    tag: 'reports',
    query: DmarcReportsQuery,
    responses: {
      200: { description: 'a page of the reports, long values clipped', schema: DmarcReportList },
    },
  }).handle(async ({ query, ctx }) => {
    const page = await dmarcStore(ctx).listDmarcReports(dmarcListFilter(query));
    const { limit } = query;
    return {
      status: 200,
      body: { reports: page.items, total: page.total, nextCursor: page.nextCursor, limit },
    };
  }),

  defineRoute({
    method: 'GET',
    path: '/api/dmarc/reports.csv',
    summary:
      "The stored DMARC reports the filters select, newest first, as CSV in parsedmarc's aggregate columns",
    tag: 'reports',
    query: DmarcReportsCsvQuery,
    responses: {
      200: {
        description:
          'CSV (RFC 4180): a line per record, with cached reverse DNS names; X-Total-Count: the reports the filters match; Link rel="next": the next file',
        mediaType: 'text/csv',
      },
    },
  }).handle(async ({ query, ctx, req, reply }) => {
    const page = await dmarcStore(ctx).listDmarcReports(dmarcListFilter(query));
    return sendCsv(req, reply, page, {
      filename: 'dmarc-reports.csv',
      header: dmarcCsvHeader(),
      linesOf: (id) => dmarcReportCsv(ctx.store, id),
    });
  }),

  defineRoute({
    method: 'GET',
    path: '/api/dmarc/reports/{id}',
    summary: 'One stored DMARC report with every row',
    tag: 'reports',
    params: ReportParams,
    responses: { 200: { description: 'the report', schema: DmarcReport }, ...notFound },
  }).handle(async ({ params, ctx }) => {
    const id = reportIdParam(params.id);
    const report = id === undefined ? undefined : await dmarcStore(ctx).getDmarcReport(id);
    if (!report) throw new ApiError(404, `no DMARC report ${params.id}`);
    const { clipped: _clipped, ...whole } = report;
    return { status: 200, body: whole };
  }),

  defineRoute({
    method: 'DELETE',
    path: '/api/dmarc/reports/{id}',
    summary: 'Delete a DMARC report with its rows (the per-domain views no longer count it)',
    tag: 'reports',
    params: ReportParams,
    responses: { 204: { description: 'deleted' }, ...notFound },
  }).handle(async ({ params, ctx }) => {
    const id = reportIdParam(params.id);
    const deleted = id === undefined ? [] : await dmarcStore(ctx).deleteDmarcReports([id]);
    if (deleted.length === 0) throw new ApiError(404, `no DMARC report ${params.id}`);
    return { status: 204 };
  }),

  defineRoute({
    method: 'GET',
    path: '/api/domains/{name}/dmarc',
    summary: 'DMARC picture of a domain: messages per UTC day by result, the reporters and the next step',
    tag: 'reports',
    params: DomainParams,
    query: DayRangeQuery,
    responses: { 200: { description: 'the overview', schema: DmarcOverview }, ...noDomain },
  }).handle(async ({ params, query, ctx }) => {
    const d = await existingDomain(ctx, params.name);
    const { since, until, days } = dayRange(query, ctx.now(), RANGE_DAYS_MAX);
    const store = dmarcStore(ctx);
    const [counts, reporters, sources, published] = await Promise.all([
      store.dmarcDailyCounts(d.name, since, until),
      reportersOf(store, d.name, since, until),
      store.dmarcSources({ domain: d.name, since, until, limit: STEP_SOURCES_MAX }),
      publishedDmarc(ctx.resolver, d.name),
    ]);
    const byDay = new Map(counts.map((c) => [c.day, c]));
    const start = Date.parse(`${since}T00:00:00Z`);
    const daily = Array.from({ length: days }, (_, i) => {
      const day = utcDay(new Date(start + i * DAY_MS));
      const c = byDay.get(day);
      return { ...DMARC_DAY, ...c, day };
    });
    const totals = { ...DMARC_DAY };
    for (const c of daily) {
      totals.pass += c.pass;
      totals.fail += c.fail;
      totals.quarantined += c.quarantined;
      totals.rejected += c.rejected;
    }
    const judgedSources = await judged(ctx, d.name, sources.items);
    const newest =
      reporters.newestId === undefined ? undefined : await store.getDmarcReport(reporters.newestId);
    const policy = newest?.report.policyPublished.p;
    return {
      status: 200,
      body: {
        domain: d.name,
        since,
        until,
        daily,
        totals,
        reporters: reporters.rows,
        reportersCut: reporters.cut,
        ...(policy ? { policy } : {}),
        nextStep: nextStep({
          domain: d.name,
          daily,
          sources: judgedSources,
          published,
          reportedPolicy: policy,
        }),
      },
    };
  }),

  defineRoute({
    method: 'GET',
    path: '/api/domains/{name}/dmarc/sources',
    summary:
      'Sending sources of a domain ranked by messages, with SPF/DKIM alignment and whether they look legitimate',
    tag: 'reports',
    params: DomainParams,
    query: DmarcSourcesQuery,
    responses: { 200: { description: 'a page of the sources', schema: DmarcSourceList }, ...noDomain },
  }).handle(async ({ params, query, ctx }) => {
    const d = await existingDomain(ctx, params.name);
    const { since, until } = dayRange(query, ctx.now(), RANGE_DAYS_MAX);
    const page = await dmarcStore(ctx).dmarcSources({
      domain: d.name,
      since,
      until,
      verdict: query.verdict,
      limit: query.limit,
      cursor: query.cursor,
    });
    return {
      status: 200,
      body: {
        domain: d.name,
        since,
        until,
        sources: await judged(ctx, d.name, page.items),
        total: page.total,
        nextCursor: page.nextCursor,
        limit: query.limit,
      },
    };
  }),
];

/** Reporters of a domain's reports in the range, most messages first; the newest report's id. */
async function reportersOf(
  store: DmarcStore,
  domain: string,
  since: string,
  until: string,
): Promise<{
  rows: { organization: string; reports: number; messages: number }[];
  cut: boolean;
  newestId?: number;
}> {
  const by = new Map<string, { organization: string; reports: number; messages: number }>();
  let cursor: string | undefined;
  let read = 0;
  let newestId: number | undefined;
  do {
    const page = await store.listDmarcReports({ domain, since, until, limit: 1000, cursor });
    newestId ??= page.items[0]?.id;
    for (const r of page.items) {
      const row = by.get(r.organization) ?? { organization: r.organization, reports: 0, messages: 0 };
      row.reports += 1;
      row.messages += r.messages;
      by.set(r.organization, row);
    }
    read += page.items.length;
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined && read < REPORTERS_READ_MAX);
  const rows = [...by.values()].sort(
    (a, b) => b.messages - a.messages || (a.organization < b.organization ? -1 : 1),
  );
  return { rows, cut: cursor !== undefined, ...(newestId === undefined ? {} : { newestId }) };
}
