// The API routes of TLS-RPT reports: the list, one report, delete, the import of a report file, and
// the input that was refused.
import { REPORT_DETAIL_MAX_BYTES } from '../../store/paging.js';
import { tlsrptCsvHeader } from '../../tlsrpt/csv.js';
import { ingestDeps, ingestReport, refusedForSize } from '../ingest.js';
import { tlsrptReportCsv } from '../report-csv.js';
import { DecoderBusyError } from '../report-decoder.js';
import { sendCsv } from './csv-download.js';
import { ApiError, defineRoute, errorBody } from './route.js';
import {
  ApiErrorBody,
  DecoderBusy,
  IMPORT_CONTENT_TYPES,
  ImportQuery,
  ImportRejected,
  ImportResult,
  OtherDomainList,
  PageQuery,
  RejectedList,
  Report,
  ReportList,
  ReportParams,
  ReportsCsvQuery,
  ReportsQuery,
  ReportTooLarge,
} from './schemas.js';
import { otherDomainsFilter, reportIdParam } from './views.js';

const notFound = { 404: { description: 'no such report', schema: ApiErrorBody } };

export const REPORT_ROUTES = [
  defineRoute({
    method: 'GET',
    path: '/api/reports',
    summary: 'Stored TLS-RPT reports, newest first',
    tag: 'reports',
    query: ReportsQuery,
    responses: { 200: { description: 'a page of the reports, long values clipped', schema: ReportList } },
  }).handle(async ({ query, ctx }) => {
    const { otherDomains, noPolicyDomain, ...filter } = query;
    const page = await ctx.store.listReports({ ...filter, ...otherDomainsFilter(query) });
    return {
      status: 200,
      body: { reports: page.items, total: page.total, nextCursor: page.nextCursor, limit: query.limit },
    };
  }),

  defineRoute({
    method: 'GET',
    path: '/api/reports.csv',
    summary:
      "The stored TLS-RPT reports the filters select, newest first, as CSV in parsedmarc's smtp_tls columns",
    tag: 'reports',
    query: ReportsCsvQuery,
    responses: {
      200: {
        description:
          'CSV (RFC 4180): per policy a summary line, then a line per failure detail; X-Total-Count: the reports the filters match; Link rel="next": the next file',
        mediaType: 'text/csv',
      },
    },
  }).handle(async ({ query, ctx, req, reply }) => {
    const { otherDomains, noPolicyDomain, ...filter } = query;
    const page = await ctx.store.listReports({ ...filter, ...otherDomainsFilter(query) });
    return sendCsv(req, reply, page, {
      filename: 'tlsrpt-reports.csv',
      header: tlsrptCsvHeader(),
      linesOf: (id) => tlsrptReportCsv(ctx.store, id),
    });
  }),

  defineRoute({
    method: 'GET',
    path: '/api/other-domains',
    summary:
      'Policy domains of stored reports (TLS-RPT and DMARC) that are not configured, with counts, and intake.otherDomains',
    tag: 'reports',
    query: PageQuery,
    responses: { 200: { description: 'a page of the other domains, by name', schema: OtherDomainList } },
  }).handle(async ({ query, ctx }) => {
    const page = await ctx.store.listOtherDomains(query);
    return {
      status: 200,
      body: {
        domains: page.items,
        setting: ctx.config.intake.otherDomains ?? 'keep',
        total: page.total,
        nextCursor: page.nextCursor,
        limit: query.limit,
      },
    };
  }),

  defineRoute({
    method: 'GET',
    path: '/api/reports/{id}',
    summary: 'One stored report with every failure detail and whole values',
    tag: 'reports',
    params: ReportParams,
    responses: {
      200: { description: 'the report', schema: Report },
      ...notFound,
      413: {
        description: `stored with more than ${REPORT_DETAIL_MAX_BYTES} bytes: the clipped summary; delete it or use the CLI`,
        schema: ReportTooLarge,
      },
    },
  }).handle(async ({ params, ctx }) => {
    const id = reportIdParam(params.id);
    const report =
      id === undefined ? undefined : await ctx.store.getReport(id, { maxBytes: REPORT_DETAIL_MAX_BYTES });
    if (!report) throw new ApiError(404, `no report ${params.id}`);
    if ('tooLarge' in report) {
      const { tooLarge, ...summary } = report;
      return {
        status: 413,
        body: {
          ...errorBody(
            413,
            `report ${id} is stored with ${tooLarge.bytes} bytes, more than the ${tooLarge.maxBytes} this view shows; delete it, or read it with: mxguard reports show ${id} --json`,
          ),
          code: 'REPORT_TOO_LARGE',
          bytes: tooLarge.bytes,
          maxBytes: tooLarge.maxBytes,
          report: summary,
        },
      };
    }
    return { status: 200, body: report };
  }),

  defineRoute({
    method: 'DELETE',
    path: '/api/reports/{id}',
    summary: 'Delete a report with its policy and failure rows (the statistics no longer count it)',
    tag: 'reports',
    params: ReportParams,
    responses: { 204: { description: 'deleted' }, ...notFound },
  }).handle(async ({ params, ctx }) => {
    const id = reportIdParam(params.id);
    const deleted = id === undefined ? [] : await ctx.store.deleteReports([id]);
    if (deleted.length === 0) throw new ApiError(404, `no report ${params.id}`);
    return { status: 204 };
  }),

  defineRoute({
    method: 'POST',
    path: '/api/reports/import',
    summary: 'Import a report file: JSON, gzip or a whole email (stored with dkim "unverified")',
    tag: 'reports',
    query: ImportQuery,
    raw: {
      types: IMPORT_CONTENT_TYPES,
      description: 'the file as it is',
      maxBytes: (ctx) => ctx.config.intake.maxBytes,
    },
    responses: {
      200: { description: 'stored (or already known)', schema: ImportResult },
      400: {
        description: 'not a TLS-RPT report (kept in the rejected list: rejectedId), or an invalid query',
        schema: ImportRejected.or(ApiErrorBody),
      },
      413: {
        description:
          'larger than the intake limit, or a decoded report past a cap (field length, decode time or memory)',
        schema: ImportRejected.or(ApiErrorBody),
      },
      503: { description: 'every report decoder is busy (Retry-After)', schema: DecoderBusy },
    },
  }).handle(async ({ query, body, reply, ctx }) => {
    let result: Awaited<ReturnType<typeof ingestReport>>;
    try {
      result = await ingestReport(ingestDeps(ctx), body, {
        source: 'import',
        dkim: 'unverified',
        submitter: query.filename ?? 'dashboard upload',
      });
    } catch (err) {
      if (!(err instanceof DecoderBusyError)) throw err;
      reply.header('retry-after', String(err.retryAfterSeconds));
      return { status: 503, body: { ...errorBody(503, err.message), code: err.code } };
    }
    if ('rejected' in result) {
      // The same answers as POST /tlsrpt: 413 for a cap (size, field length, decode time/memory).
      const status = refusedForSize(result.code) ? 413 : 400;
      return {
        status,
        body: { ...errorBody(status, result.rejected), code: result.code, rejectedId: result.rejectedId },
      };
    }
    return { status: 200, body: result };
  }),

  defineRoute({
    method: 'GET',
    path: '/api/rejected',
    summary: 'Input that was refused (malformed reports, unsigned mail), newest first',
    tag: 'reports',
    query: PageQuery,
    responses: { 200: { description: 'a page of the rejected inputs', schema: RejectedList } },
  }).handle(async ({ query, ctx }) => {
    const page = await ctx.store.listRejected(query);
    return {
      status: 200,
      body: { rejected: page.items, total: page.total, nextCursor: page.nextCursor, limit: query.limit },
    };
  }),
];
