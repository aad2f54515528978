// The bulk output of `mxguard check --file`: one CSV row per domain (the overall status and each section's,
// as checkdmarc's CSV has one row per domain), and --resume: which domains an earlier output file already has.
// CSV as src/common/csv.ts writes it (RFC 4180, formulas defused).
import { closeSync, createReadStream, existsSync, openSync, readSync, statSync, truncateSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { type DomainReport, type Finding, SECTIONS, type Section } from '../check/types.js';
import { csvRow as csvLine } from '../common/csv.js';

export const BULK_FORMATS = ['ndjson', 'csv'] as const;
export type BulkFormat = (typeof BULK_FORMATS)[number];

export const CSV_COLUMNS = ['domain', 'status', ...SECTIONS, 'fail_codes', 'warn_codes', 'error'] as const;

export function csvHeader(): string {
  return `${CSV_COLUMNS.join(',')}\r\n`;
}

/**
 * A section's status: fail if a finding fails, else warn if one warns, else pass if one passes, else info or
 * skip; empty when the section has no finding (the check stopped before it).
 */
export function sectionStatus(findings: readonly Finding[], section: Section): string {
  const statuses = new Set(findings.filter((f) => f.section === section).map((f) => f.status));
  return ['fail', 'warn', 'pass', 'info', 'skip'].find((s) => statuses.has(s as Finding['status'])) ?? '';
}

export function csvRow(report: DomainReport): string {
  const codes = (status: Finding['status']) => [
    ...new Set(report.findings.filter((f) => f.status === status).map((f) => f.code)),
  ];
  const cells = [
    report.domain,
    report.status,
    ...SECTIONS.map((s) => sectionStatus(report.findings, s)),
    codes('fail').join(' '),
    codes('warn').join(' '),
    report.error ?? '',
  ];
  return csvLine(cells);
}

/**
 * The domains an earlier output file already holds (NDJSON: each line's "domain"; CSV: the first field of
 * each row after the header). A last line without its line break was cut by the interruption: it is removed
 * from the file, so that domain is checked again and the file stays well-formed. Read as a stream.
 */
export async function doneDomains(path: string, format: BulkFormat): Promise<Set<string>> {
  const done = new Set<string>();
  if (!existsSync(path)) return done;
  dropPartialLine(path);
  const input = createReadStream(path);
  let first = true;
  for await (const line of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
    if (format === 'csv') {
      if (first) {
        first = false;
        continue;
      }
      const domain = firstCsvField(line);
      if (domain) done.add(domain);
      continue;
    }
    try {
      const parsed = JSON.parse(line) as { domain?: unknown };
      if (typeof parsed.domain === 'string') done.add(parsed.domain);
    } catch {
      // not a result line: ignored
    }
  }
  return done;
}

/** The file holds something (a CSV file then already has its header). */
export function hasContent(path: string): boolean {
  return existsSync(path) && statSync(path).size > 0;
}

/** The first field of a CSV row as csvCell wrote it (unquoted, the formula guard taken off). */
function firstCsvField(line: string): string {
  let field = '';
  if (!line.startsWith('"')) field = line.split(',')[0]!;
  else {
    for (let i = 1; i < line.length; i++) {
      if (line[i] !== '"') field += line[i];
      else if (line[i + 1] === '"') field += line[i++];
      else break;
    }
  }
  return /^'[=+\-@\t\r]/.test(field) ? field.slice(1) : field;
}

/** Cut the file after its last line break (a write the interruption cut short). */
function dropPartialLine(path: string): void {
  const size = statSync(path).size;
  if (size === 0) return;
  const fd = openSync(path, 'r');
  try {
    const chunk = Buffer.alloc(64 * 1024);
    for (let end = size; end > 0; ) {
      const start = Math.max(0, end - chunk.length);
      const read = readSync(fd, chunk, 0, end - start, start);
      const at = chunk.subarray(0, read).lastIndexOf(0x0a);
      if (at >= 0) {
        if (start + at + 1 < size) truncateSync(path, start + at + 1);
        return;
      }
      end = start;
    }
    truncateSync(path, 0);
  } finally {
    closeSync(fd);
  }
}
