// A CSV download of stored reports (GET /api/reports.csv, /api/dmarc/reports.csv): one page of a list
// (at most CSV_REPORTS_MAX reports, chosen by the list's filters and cursor), each report read whole and
// written as it is read (src/server/report-csv.ts), so that memory stays bounded however large the
// reports are. The page is described in headers sent before the body: X-Total-Count (the reports the
// filters match) and, when more follow, a Link to the next page (RFC 8288, rel="next"). A store failure
// after the first line ends the response without its last chunk, which HTTP clients report as an
// incomplete download.
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Page } from '../../store/types.js';

/** Reports in one CSV download at most (the stores' longest list page). */
export const CSV_REPORTS_MAX = 10_000;

export interface CsvFile {
  /** The file name offered to save it as. */
  filename: string;
  header: string;
  /** A report's lines; undefined when it is gone (deleted since it was listed). */
  linesOf(id: number): Promise<string | undefined>;
}

/** Sends the reports of `page` (a page of a report list) as `file`, each report's lines as they are read. */
export function sendCsv(
  req: FastifyRequest,
  reply: FastifyReply,
  page: Page<{ id: number }>,
  file: CsvFile,
): FastifyReply {
  reply.header('content-type', 'text/csv; charset=utf-8');
  reply.header('content-disposition', `attachment; filename="${file.filename}"`);
  reply.header('x-total-count', String(page.total));
  if (page.nextCursor !== null) reply.header('link', `<${withCursor(req.url, page.nextCursor)}>; rel="next"`);
  async function* lines(): AsyncGenerator<string> {
    yield file.header;
    for (const { id } of page.items) {
      const text = await file.linesOf(id);
      if (text) yield text;
    }
  }
  return reply.code(200).send(Readable.from(lines()));
}

/** The request's path and query with `cursor` set (the next page). */
function withCursor(requestUrl: string, cursor: string): string {
  const url = new URL(requestUrl, 'http://mxguard.invalid');
  url.searchParams.set('cursor', cursor);
  return `${url.pathname}${url.search}`;
}
