// `mxguard reports ...`: TLS-RPT (RFC 8460) and DMARC (RFC 7489) aggregate reports. `parse` reads report
// files (JSON, XML, gzip, zip or whole emails, found by content) and summarises them; `list` (both
// kinds, reports-list.ts; CSV export: src/server/report-csv.ts), `show`, `import` (both kinds), `delete`
// and `purge` work on the store of `mxguard serve`.
//
// Report fields are attacker-controlled: human output passes every one through terminalText
// (control and bidi characters escaped, long values cut); --json prints them as data.
import { type Dirent, readFileSync, type Stats, statSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Problem } from '../common/errors.js';
import { mxguardCommand } from '../common/invocation.js';
import { mapLimit } from '../common/limit.js';
import { terminalText } from '../common/text.js';
import { dmarcCsvHeader } from '../dmarc/csv.js';
import { DmarcError } from '../dmarc/error.js';
import { decodeDmarcReports, isDmarcInput } from '../dmarc/parse.js';
import type { DmarcReport } from '../dmarc/report.js';
import { ingestReport, recordRejected, type StoredRef } from '../server/ingest.js';
import { dmarcReportCsv, tlsrptReportCsv } from '../server/report-csv.js';
import type { DmarcReportSummary } from '../store/dmarc-types.js';
import { LIST_TEXT_MAX, REPORT_DETAIL_MAX_BYTES } from '../store/paging.js';
import {
  type Page,
  type PurgeFilter,
  type RejectedInput,
  type Store,
  type StoredReport,
  type StoredReportSummary,
  StoreError,
} from '../store/types.js';
import { tlsrptCsvHeader } from '../tlsrpt/csv.js';
import { TlsRptError } from '../tlsrpt/error.js';
import { DEFAULT_DECODE_LIMITS, decodeReports } from '../tlsrpt/parse.js';
import type { TlsFailure, TlsReport } from '../tlsrpt/report.js';
import { LIST_KINDS, type Listing, type ListKind, listReportsOfKind } from './reports-list.js';
import { type StoreOptions, storeOptions, withStore } from './store-options.js';
import { CliError, formatProblem, formatTable, intOption, printJson, readInputBytes } from './util.js';

export function register(program: Command): void {
  const reports = program
    .command('reports')
    .description('Work with TLS-RPT (RFC 8460) and DMARC (RFC 7489) aggregate reports')
    .addHelpText(
      'after',
      `
Examples:
  mxguard reports parse google.com!example.com!1725321600!1725407999!001.json.gz
  mxguard reports import ~/Maildir/.TLS-Reports --data-dir /var/lib/mxguard
  mxguard reports list --domain example.com --json
  mxguard reports purge --before 2024-01-01 --dry-run
`,
    );
  registerParse(reports);
  registerList(reports);
  registerShow(reports);
  registerImport(reports);
  registerDelete(reports);
  registerPurge(reports);
}

/** How much of a report value human output shows: table cells, and everything else. */
const CELL_MAX = 60;
const VALUE_MAX = 200;
/** Lists inside a value (MX hosts, domains) show this many entries, then "(+N more)". */
const LIST_SHOWN = 5;

/** Entries of a list for the terminal: each escaped and cut, at most LIST_SHOWN of them. */
function terminalList(values: string[], max = VALUE_MAX): string {
  const shown = values.slice(0, LIST_SHOWN).map((v) => terminalText(v, max));
  if (values.length > LIST_SHOWN) shown.push(`(+${values.length - LIST_SHOWN} more)`);
  return shown.join(', ');
}

function registerParse(reports: Command): void {
  reports
    .command('parse')
    .description(
      'Read TLS-RPT and DMARC aggregate reports (.json, .json.gz, .xml, .xml.gz, .zip or .eml; detected by content) and summarise them',
    )
    .argument('<file...>', 'report files; "-" reads standard input')
    .option('--json', 'print reports (each with "kind": "tlsrpt" or "dmarc"), warnings and errors as JSON')
    .addHelpText(
      'after',
      `
The kind of report (TLS-RPT, RFC 8460, or DMARC aggregate, RFC 7489 / RFC 9990) and its format
(JSON, XML, gzip, zip with one XML file, or a whole e-mail) are found from the content, not the
file name. A DMARC report is summarised with its organization, report id, date range, policy
domain and published policy, then one row per <record>: source IP, message count, disposition
and the DMARC-aligned DKIM and SPF results.

Examples:
  mxguard reports parse report.json.gz
  mxguard reports parse 'google.com!example.com!1714521600!1714607999.zip'
  mxguard reports parse --json saved-mail.eml other-report.json
  zcat report.json.gz | mxguard reports parse -

Exit status: 0 every file was read (warnings allowed), 1 a file is not a valid report,
2 a file could not be read. All files are processed either way.
`,
    )
    .action(async (files: string[], options: { json?: boolean }) => {
      const results: FileResult[] = [];
      for (const file of files) results.push(await parseFile(file));
      if (options.json) printJson(toJson(results));
      else printHuman(results);
      process.exitCode = Math.max(0, ...results.map((r) => r.exitCode));
    });
}

interface FileError {
  code: string;
  message: string;
}

interface FileResult {
  file: string;
  reports: TlsReport[];
  dmarcReports: DmarcReport[];
  warnings: Problem[];
  errors: FileError[];
  exitCode: 0 | 1 | 2;
}

async function parseFile(file: string): Promise<FileResult> {
  const result: FileResult = { file, reports: [], dmarcReports: [], warnings: [], errors: [], exitCode: 0 };
  let bytes: Buffer;
  try {
    bytes = readInputBytes(file);
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    const prefix = `${file}: `;
    const message = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
    result.errors.push({ code: 'CANNOT_READ', message });
    result.exitCode = 2;
    return result;
  }
  try {
    if (await isDmarcInput(bytes)) {
      const decoded = await decodeDmarcReports(bytes);
      result.dmarcReports = decoded.reports;
      result.warnings = decoded.warnings;
    } else {
      const decoded = await decodeReports(bytes);
      result.reports = decoded.reports;
      result.warnings = decoded.warnings;
    }
  } catch (err) {
    if (!(err instanceof TlsRptError || err instanceof DmarcError)) throw err;
    result.errors = err.problems.map((p) => ({
      code: p.code,
      message: p.where ? `${p.where}: ${p.message}` : p.message,
    }));
    result.exitCode = 1;
  }
  return result;
}

function toJson(results: FileResult[]) {
  return {
    reports: results.flatMap((r) => [
      ...r.reports.map((report) => ({
        file: r.file,
        kind: 'tlsrpt' as const,
        organization: report.organization,
        reportId: report.reportId,
        start: report.start,
        end: report.end,
        policies: report.policies.map((p) => ({
          type: p.type,
          domain: p.domain,
          mxHosts: p.mxHosts,
          successful: p.successful,
          failed: p.failed,
          failures: p.failures.map(failureJson),
        })),
      })),
      ...r.dmarcReports.map((report) => ({ file: r.file, ...report })),
    ]),
    warnings: results.flatMap((r) =>
      r.warnings.map((w) => ({
        file: r.file,
        severity: w.severity,
        code: w.code,
        message: w.message,
        ...(w.where === undefined ? {} : { where: w.where }),
      })),
    ),
    errors: results.flatMap((r) => r.errors.map((e) => ({ file: r.file, code: e.code, message: e.message }))),
  };
}

function failureJson(f: TlsFailure): TlsFailure {
  // resultType and count first, then whichever optional fields the sender gave.
  const { resultType, count, ...rest } = f;
  return { resultType, count, ...rest };
}

function printHuman(results: FileResult[]): void {
  const out: string[] = [];
  for (const r of results) {
    for (const report of r.reports) out.push(...describeReport(`${r.file}: report`, report));
    for (const report of r.dmarcReports) out.push(...describeDmarcReport(`${r.file}: DMARC report`, report));
    for (const w of r.warnings) out.push(terminalText(formatProblem(r.file, w), 4 * VALUE_MAX));
    for (const e of r.errors) {
      const line = formatProblem(r.file, { severity: 'error', code: e.code, message: e.message });
      process.stderr.write(`${terminalText(line, 4 * VALUE_MAX)}\n`);
    }
  }
  if (out.length > 0) process.stdout.write(`${out.join('\n')}\n`);
}

/** A report for the terminal: `title` then the report id on the first line, then its facts. */
function describeReport(title: string, report: TlsReport, received?: string): string[] {
  const t = (text: string) => terminalText(text, VALUE_MAX);
  const contact = report.contactInfo ? ` <${t(report.contactInfo)}>` : '';
  const lines = [
    `${title} ${t(report.reportId)}`,
    `  organization: ${t(report.organization)}${contact}`,
    `  period:       ${t(report.start)} to ${t(report.end)}`,
  ];
  if (received !== undefined) lines.push(`  received:     ${received}`);
  for (const p of report.policies.slice(0, LIST_SHOWN * 20)) {
    lines.push(`  policy ${t(p.type)} for ${p.domain ? t(p.domain) : '(no policy-domain)'}`);
    lines.push(`    mx hosts:   ${p.mxHosts.length > 0 ? terminalList(p.mxHosts) : '(none listed)'}`);
    lines.push(`    successful: ${p.successful}`);
    lines.push(`    failed:     ${p.failed}`);
    const byType = [...failuresByType(p.failures)];
    for (const [resultType, count] of byType.slice(0, LIST_SHOWN * 4))
      lines.push(`      ${t(resultType)}: ${count}`);
    if (byType.length > LIST_SHOWN * 4)
      lines.push(`      (+${byType.length - LIST_SHOWN * 4} more result types)`);
  }
  if (report.policies.length > LIST_SHOWN * 20) {
    lines.push(`  (+${report.policies.length - LIST_SHOWN * 20} more policies: see --json)`);
  }
  return lines;
}

/** A DMARC aggregate report for the terminal: its facts, then one row per record (at most LIST_SHOWN * 20). */
function describeDmarcReport(title: string, report: DmarcReport): string[] {
  const t = (text: string, max = VALUE_MAX) => terminalText(text, max);
  const contact = report.email ? ` <${t(report.email)}>` : '';
  const policy = report.policyPublished;
  const published = (['p', 'sp', 'np', 'pct', 'adkim', 'aspf', 'fo'] as const)
    .filter((tag) => policy[tag] !== undefined)
    .map((tag) => `${tag}=${t(String(policy[tag]))}`)
    .join(' ');
  const messages = report.records.reduce((sum, row) => sum + row.count, 0);
  const byDisposition = (['none', 'quarantine', 'reject'] as const).map(
    (d) =>
      `${d} ${report.records.filter((row) => row.disposition === d).reduce((sum, row) => sum + row.count, 0)}`,
  );
  const lines = [
    `${title} ${t(report.reportId)}`,
    `  organization: ${report.organization ? t(report.organization) : '(none given)'}${contact}`,
    `  period:       ${report.begin} to ${report.end}`,
    `  domain:       ${t(report.domain)}`,
    `  policy:       ${published}`,
    `  messages:     ${messages} in ${report.records.length} row${report.records.length === 1 ? '' : 's'} (${byDisposition.join(', ')})`,
  ];
  if (report.records.length === 0) return lines;
  const shown = report.records.slice(0, LIST_SHOWN * 20);
  const table = formatTable([
    ['SOURCE IP', 'COUNT', 'DISPOSITION', 'DKIM ALIGNED', 'SPF ALIGNED', 'HEADER FROM'],
    ...shown.map((row) => [
      t(row.sourceIp, CELL_MAX),
      String(row.count),
      row.disposition,
      row.dkim,
      row.spf,
      row.headerFrom ? t(row.headerFrom, CELL_MAX) : '-',
    ]),
  ]);
  lines.push(
    ...table
      .trimEnd()
      .split('\n')
      .map((line) => `    ${line}`),
  );
  if (report.records.length > shown.length) {
    lines.push(`    (+${report.records.length - shown.length} more rows: see --json)`);
  }
  return lines;
}

function failuresByType(failures: TlsFailure[]): Map<string, number> {
  const byType = new Map<string, number>();
  for (const f of failures) byType.set(f.resultType, (byType.get(f.resultType) ?? 0) + f.count);
  return byType;
}

// ---------------------------------------------------------------------------------------------
// reports list / reports import: the store `mxguard serve` keeps reports in.

interface StoreCommandOptions extends StoreOptions {
  json?: boolean;
}

function registerList(reports: Command): void {
  storeOptions(
    reports
      .command('list')
      .description('list the reports stored by `mxguard serve` or `reports import`, newest first')
      .option('--kind <kind>', 'tlsrpt, dmarc or all (both, merged by date)', 'all')
      .option('--domain <domain>', 'only reports about this policy domain')
      .option('--since <date>', 'only reports starting at or after this ISO date/time (UTC)')
      .option('--until <date>', 'only reports starting before this ISO date/time (a date: up to its end)')
      .option('--limit <n>', 'at most this many reports (a page also ends at 1 MiB)', '100')
      .option('--all', 'every matching report (page after page), instead of --limit')
      .option('--cursor <cursor>', 'continue after an earlier listing (its nextCursor)')
      .option('--other-domains', 'only reports about domains that are not configured ("other domains")')
      .option('--rejected', 'list the rejected input (not reports, with the reason) instead'),
  )
    .option('--json', 'print the list as JSON, with kind per report, total, nextCursor and cut')
    .option(
      '--format <format>',
      "table (default), json (as --json) or csv (parsedmarc's columns of the --kind)",
    )
    .addHelpText(
      'after',
      `
TLS-RPT and DMARC reports are numbered apart: "kind" (JSON) or the KIND column tells them apart.
Without --all, a listing that stops before the last matching report says so on stderr (and
"cut": true in JSON) with the cursor of the next page. --format csv needs --kind tlsrpt or
--kind dmarc and writes parsedmarc's flat CSV of that kind: TLS-RPT one row per policy of a report
plus one per failure detail (parsedmarc's smtp_tls columns), DMARC one line per record (its
aggregate columns; see docs/dmarc-reports.md for the columns left empty).
--other-domains lists the reports about domains serve does not host (the dashboard's "Other
domains"); with --kind tlsrpt, those none of whose policy domains is configured.
Values longer than 256 characters are cut in lists (ending in "…", named in "clipped");
\`mxguard reports show ID --json\` prints a report whole. On the terminal, control and bidi
characters in report values are escaped (\\x1b, \\u{202e}) and long values cut.

Examples:
  mxguard reports list --domain example.com
  mxguard reports list --since 2024-05-01 --until 2024-05-31 --json
  mxguard reports list --limit 50 --cursor WyJyZXBvcnRzIiwxNzE0NTIxNjAwMDAwLDQxXQ
  mxguard reports list --kind dmarc --domain example.com --all --format csv > dmarc.csv
  mxguard reports list --kind tlsrpt --since 2026-01-01 --all --format csv > tlsrpt.csv
  mxguard reports list --other-domains
  mxguard reports list --rejected

Exit status: 0 listed (also when empty), 2 usage error or the data directory cannot be used.
`,
    )
    .action(
      async (
        options: StoreCommandOptions & {
          domain?: string;
          since?: string;
          until?: string;
          limit: string;
          cursor?: string;
          rejected?: boolean;
          kind: string;
          all?: boolean;
          format?: string;
          otherDomains?: boolean;
        },
      ) => {
        const limit = intOption('--limit', options.limit, 1, 10_000);
        const kind = listKindOption(options.kind);
        const format = listFormatOption(options.format, options.json === true);
        if (format === 'csv' && kind === 'all') {
          throw new CliError(
            2,
            "--format csv: give --kind tlsrpt or --kind dmarc (each kind has parsedmarc's columns of its own)",
          );
        }
        if (options.all && options.cursor !== undefined) throw new CliError(2, '--all: not with --cursor');
        await withStore(options, async (store) => {
          if (options.rejected) {
            const page = await store.listRejected({ limit, cursor: options.cursor });
            if (format === 'json')
              printJson({ rejected: page.items, total: page.total, nextCursor: page.nextCursor });
            else printRejected(page);
            return;
          }
          const listing = await listReportsOfKind(store, {
            kind,
            domain: options.domain,
            since: options.since,
            until: options.until,
            limit: options.all ? 1000 : limit,
            cursor: options.cursor,
            all: options.all === true,
            otherDomains: options.otherDomains === true,
          });
          if (format === 'json') printJson(listing);
          else if (format === 'csv' && kind === 'tlsrpt') await printTlsrptCsv(store, listing);
          else if (format === 'csv') await printDmarcCsv(store, listing);
          else printListing(listing);
          if (listing.cut) {
            process.stderr.write(
              `mxguard: reports list: ${listing.reports.length} of ${listing.total} reports listed; ` +
                `--all lists every one, --cursor ${listing.nextCursor} the next ones\n`,
            );
          }
        });
      },
    );
}

function listKindOption(value: string): ListKind {
  if (!(LIST_KINDS as readonly string[]).includes(value)) {
    throw new CliError(
      2,
      `--kind: expected ${LIST_KINDS.join(', ')}, got "${terminalText(value, CELL_MAX)}"`,
    );
  }
  return value as ListKind;
}

function listFormatOption(value: string | undefined, json: boolean): 'table' | 'json' | 'csv' {
  if (value === undefined) return json ? 'json' : 'table';
  if (value !== 'table' && value !== 'json' && value !== 'csv') {
    throw new CliError(2, `--format: expected table, json or csv, got "${terminalText(value, CELL_MAX)}"`);
  }
  if (json && value !== 'json') throw new CliError(2, `--json: not with --format ${value}`);
  return value;
}

/** A table per kind (the TLS-RPT one first); "no reports stored" when there is none. */
function printListing(listing: Listing): void {
  const tlsrpt = listing.reports.flatMap((r) => (r.kind === 'tlsrpt' ? [r] : []));
  const dmarc = listing.reports.flatMap((r) => (r.kind === 'dmarc' ? [r] : []));
  if (tlsrpt.length === 0 && dmarc.length === 0) {
    process.stdout.write('no reports stored\n');
    return;
  }
  const both = tlsrpt.length > 0 && dmarc.length > 0;
  if (tlsrpt.length > 0) {
    if (both) process.stdout.write('TLS-RPT reports:\n');
    printReportList(tlsrpt);
  }
  if (dmarc.length > 0) {
    if (both) process.stdout.write('DMARC reports:\n');
    printDmarcList(dmarc);
  }
}

function printDmarcList(items: DmarcReportSummary[]): void {
  const cell = (r: DmarcReportSummary, field: 'organization' | 'reportId' | 'domain') =>
    r[field] === ''
      ? '-'
      : r.clipped?.includes(field)
        ? terminalText(r[field], CELL_MAX, `over ${LIST_TEXT_MAX}`)
        : terminalText(r[field], CELL_MAX);
  const rows = items.map((r) => [
    String(r.id),
    `${r.begin} to ${r.end}`,
    cell(r, 'organization'),
    cell(r, 'reportId'),
    cell(r, 'domain'),
    String(r.messages),
    String(r.passed),
    String(r.rows),
    r.source,
  ]);
  const header = [
    'ID',
    'PERIOD',
    'ORGANIZATION',
    'REPORT ID',
    'DOMAIN',
    'MESSAGES',
    'DMARC PASS',
    'ROWS',
    'SOURCE',
  ];
  process.stdout.write(formatTable([header, ...rows]));
}

/** The listed DMARC reports read whole, one CSV line per record, with cached reverse DNS names. */
async function printDmarcCsv(store: Store, listing: Listing): Promise<void> {
  process.stdout.write(dmarcCsvHeader());
  for (const listed of listing.reports) {
    if (listed.kind !== 'dmarc') continue;
    process.stdout.write((await dmarcReportCsv(store, listed.id)) ?? ''); // '': deleted meanwhile
  }
}

/** The listed TLS-RPT reports read whole: per policy a summary row, then a row per failure detail. */
async function printTlsrptCsv(store: Store, listing: Listing): Promise<void> {
  process.stdout.write(tlsrptCsvHeader());
  for (const listed of listing.reports) {
    if (listed.kind !== 'tlsrpt') continue;
    process.stdout.write((await tlsrptReportCsv(store, listed.id)) ?? ''); // '': deleted meanwhile
  }
}

function printReportList(items: StoredReportSummary[]): void {
  // A value the list view cut (see paging.ts) is longer than shown here too.
  const cell = (r: StoredReportSummary, field: 'organization' | 'reportId') =>
    r.clipped?.includes(field)
      ? terminalText(r[field], CELL_MAX, `over ${LIST_TEXT_MAX}`)
      : terminalText(r[field], CELL_MAX);
  const rows = items.map((r) => [
    String(r.id),
    `${terminalText(r.start, CELL_MAX)} to ${terminalText(r.end, CELL_MAX)}`,
    cell(r, 'organization'),
    cell(r, 'reportId'),
    r.domains.length > 0 ? terminalList(r.domains, CELL_MAX) : '-',
    String(r.successful),
    String(r.failed),
    r.source,
    r.dkim,
  ]);
  const header = ['ID', 'PERIOD', 'ORGANIZATION', 'REPORT ID', 'DOMAINS', 'OK', 'FAILED', 'SOURCE', 'DKIM'];
  process.stdout.write(formatTable([header, ...rows]));
}

function printRejected(rejected: Page<RejectedInput>): void {
  if (rejected.items.length === 0) {
    process.stdout.write('no rejected input\n');
    return;
  }
  for (const r of rejected.items) {
    const text = (field: 'submitter' | 'reason', value: string, max: number) =>
      r.clipped?.includes(field)
        ? terminalText(value, max, `over ${LIST_TEXT_MAX}`)
        : terminalText(value, max);
    const from = r.submitter === undefined ? '' : ` from ${text('submitter', r.submitter, VALUE_MAX / 2)}`;
    process.stdout.write(
      `#${r.id} ${r.receivedAt} ${r.source}${from}, ${r.size} bytes: ${text('reason', r.reason, VALUE_MAX)}\n`,
    );
  }
  printMore(rejected, 'entries');
}

/** After a page that is not the last: how many there are and how to go on. */
function printMore(page: Page<unknown>, what: string): void {
  if (page.nextCursor === null) return;
  process.stdout.write(
    `${page.items.length} of ${page.total} ${what}; the next ones: --cursor ${page.nextCursor}\n`,
  );
}

// ---- show / delete / purge ----

/** A report id on the command line: a whole number from 1. */
function reportIdArgument(text: string): number {
  if (!/^[1-9]\d{0,15}$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new CliError(
      2,
      `"${terminalText(text, CELL_MAX)}" is not a report id (see ${mxguardCommand()} reports list)`,
    );
  }
  return Number(text);
}

function registerShow(reports: Command): void {
  storeOptions(
    reports
      .command('show')
      .description('show one stored report: its facts, policies and failures by result type')
      .argument('<id>', 'the report id (the ID column of `mxguard reports list`)')
      .option('--kind <kind>', 'tlsrpt or dmarc: which list the id is from', 'tlsrpt'),
  )
    .option('--json', 'print the whole report as JSON: every value whole, every failure detail')
    .addHelpText(
      'after',
      `
On the terminal, control and bidi characters in report values are escaped and long values cut;
--json prints them whole. A report stored with more than ${REPORT_DETAIL_MAX_BYTES / 1024 / 1024} MiB (an older mxguard kept
megabyte strings) is summarised; --json still prints it whole.

Examples:
  mxguard reports show 42
  mxguard reports show 42 --json --data-dir /var/lib/mxguard
  mxguard reports show --kind dmarc 7

Exit status: 0 shown, 1 no such report, 2 usage error or the data directory cannot be used.
`,
    )
    .action(async (idText: string, options: StoreCommandOptions & { kind: string }) => {
      const id = reportIdArgument(idText);
      const kind = storedKindOption(options.kind);
      await withStore(options, async (store) => {
        if (kind === 'dmarc') {
          const dmarc = await store.getDmarcReport(id);
          if (!dmarc) throw new CliError(1, `reports show: no DMARC report ${id}`);
          if (options.json) printJson({ kind, ...dmarc });
          else {
            const received = `  received:     ${dmarc.receivedAt} via ${dmarc.source}`;
            const lines = describeDmarcReport(`DMARC report #${id}:`, dmarc.report);
            process.stdout.write(`${[...lines.slice(0, 2), received, ...lines.slice(2)].join('\n')}\n`);
          }
          return;
        }
        const report = options.json
          ? await store.getReport(id)
          : await store.getReport(id, { maxBytes: REPORT_DETAIL_MAX_BYTES });
        if (!report) throw new CliError(1, `reports show: no report ${id}`);
        if (options.json) {
          printJson(report);
          return;
        }
        const received = `${report.receivedAt} via ${report.source}, DKIM ${report.dkim}`;
        if ('tooLarge' in report) {
          const t = (text: string) => terminalText(text, VALUE_MAX);
          process.stdout.write(
            [
              `report #${id}: ${t(report.reportId)}`,
              `  organization: ${t(report.organization)}`,
              `  period:       ${t(report.start)} to ${t(report.end)}`,
              `  received:     ${received}`,
              `  domains:      ${terminalList(report.domains)}`,
              `  successful:   ${report.successful}`,
              `  failed:       ${report.failed}`,
              `  stored with ${report.tooLarge.bytes} bytes, too large to show here: --json prints it whole`,
              '',
            ].join('\n'),
          );
          return;
        }
        process.stdout.write(
          `${describeReport(`report #${id}:`, report.report, receivedLine(report, received)).join('\n')}\n`,
        );
      });
    });
}

/** --kind of show and delete: which numbered list an id is from. */
function storedKindOption(value: string): 'tlsrpt' | 'dmarc' {
  if (value !== 'tlsrpt' && value !== 'dmarc') {
    throw new CliError(2, `--kind: expected tlsrpt or dmarc, got "${terminalText(value, CELL_MAX)}"`);
  }
  return value;
}

function receivedLine(report: StoredReport, received: string): string {
  return report.submitter === undefined
    ? received
    : `${received}, from ${terminalText(report.submitter, VALUE_MAX)}`;
}

function registerDelete(reports: Command): void {
  storeOptions(
    reports
      .command('delete')
      .description(
        'delete stored reports with their policy and failure rows (the charts no longer count them)',
      )
      .argument('<id...>', 'report ids (the ID column of `mxguard reports list`)')
      .option('--kind <kind>', 'tlsrpt or dmarc: which list the ids are from', 'tlsrpt'),
  )
    .option('--json', 'print {"deleted": [ids], "notFound": [ids]}')
    .addHelpText(
      'after',
      `
Works while \`mxguard serve\` runs on the same data directory.

Examples:
  mxguard reports delete 42
  mxguard reports delete 42 43 44 --data-dir /var/lib/mxguard
  mxguard reports delete --kind dmarc 7

Exit status: 0 every report deleted, 1 some id was not found (the others are deleted),
2 usage error or the data directory cannot be used.
`,
    )
    .action(async (idTexts: string[], options: StoreCommandOptions & { kind: string }) => {
      const ids = idTexts.map(reportIdArgument);
      const kind = storedKindOption(options.kind);
      const deleted = await withStore(options, (store) =>
        kind === 'dmarc' ? store.deleteDmarcReports(ids) : store.deleteReports(ids),
      );
      const notFound = [...new Set(ids)].filter((id) => !deleted.includes(id));
      const what = kind === 'dmarc' ? 'DMARC report' : 'report';
      if (options.json) printJson({ deleted, notFound });
      else {
        for (const id of deleted) process.stdout.write(`deleted ${what} ${id}\n`);
        for (const id of notFound) process.stderr.write(`mxguard: reports delete: no ${what} ${id}\n`);
      }
      process.exitCode = notFound.length > 0 ? 1 : 0;
    });
}

/** Reports deleted per transaction: short ones, so that serve's own writes get in between. */
const PURGE_BATCH = 500;

function registerPurge(reports: Command): void {
  storeOptions(
    reports
      .command('purge')
      .description('delete every report about a domain, or starting before a date, or both')
      .option('--domain <domain>', 'reports covering this policy domain (as `reports list --domain`)')
      .option('--before <date>', 'reports whose date range starts before this ISO date (00:00 UTC) or time')
      .option('--kind <kind>', 'tlsrpt, dmarc or all (both)', 'all')
      .option('--dry-run', 'only count the reports that would be deleted'),
  )
    .option('--json', 'print {"dryRun": false, "reports": N, "tlsrpt": N, "dmarc": N}')
    .addHelpText(
      'after',
      `
Give --domain, --before or both (then a report must match both). Reports are deleted with their
policy and failure rows (DMARC: their records), ${PURGE_BATCH} per transaction, oldest first; this works while
\`mxguard serve\` runs on the same data directory. --kind all (the default) purges both kinds: a DMARC report
matches --domain by its policy domain and --before by the start of its date range. \`serve\` also deletes old reports by itself: see
retention.reportDays in docs/serve.md.

Examples:
  mxguard reports purge --domain old-domain.example --dry-run
  mxguard reports purge --before 2024-01-01 --data-dir /var/lib/mxguard
  mxguard reports purge --domain example.com --before 2024-06-01T00:00:00Z --json
  mxguard reports purge --kind dmarc --before 2025-01-01

Exit status: 0 done (also when nothing matched), 2 usage error or the data directory cannot be used.
`,
    )
    .action(
      async (
        options: StoreCommandOptions & { domain?: string; before?: string; kind: string; dryRun?: boolean },
      ) => {
        if (options.domain === undefined && options.before === undefined) {
          throw new CliError(2, 'reports purge: give --domain or --before (or both)');
        }
        const kind = listKindOption(options.kind);
        const filter = { domain: options.domain, before: options.before };
        type Purge = (f: PurgeFilter) => Promise<{ deleted: number; remaining: number }>;
        /** Deleted (or, with --dry-run, matching) reports of one kind, in batches. */
        const purgeAll = async (purge: Purge): Promise<number> => {
          if (options.dryRun) return (await purge({ ...filter, limit: 0 })).remaining;
          let deleted = 0;
          for (;;) {
            const batch = await purge({ ...filter, limit: PURGE_BATCH });
            deleted += batch.deleted;
            if (batch.remaining === 0 || batch.deleted === 0) return deleted;
          }
        };
        const counts = await withStore(options, async (store) => ({
          tlsrpt: kind === 'dmarc' ? 0 : await purgeAll((f) => store.purgeReports(f)),
          dmarc: kind === 'tlsrpt' ? 0 : await purgeAll((f) => store.purgeDmarcReports(f)),
        }));
        const count = counts.tlsrpt + counts.dmarc;
        const dryRun = options.dryRun === true;
        if (options.json) printJson({ dryRun, reports: count, ...counts });
        else if (dryRun) {
          process.stdout.write(
            `${count} report${count === 1 ? '' : 's'} would be deleted (dry run: nothing deleted)\n`,
          );
        } else process.stdout.write(`deleted ${count} report${count === 1 ? '' : 's'}\n`);
      },
    );
}

// ---- import ----

/** File names a directory walk picks up; files named on the command line are read whatever their name. */
const REPORT_FILE_NAME = /\.(?:json|json\.gz|gz|eml|xml|zip)$/i;
/**
 * Files under way at once (read, decoded in a thread, waiting for their turn, stored), and decoder
 * threads: decoding the next files overlaps the store's commits, which are spaced out while saves keep
 * coming, so the files of one spacing share a commit. Each thread is sent IMPORT_DECODE_AHEAD files at
 * once, enough to keep decoding through a commit of the store's largest batch (~70 ms); with 4 they ran
 * dry in every commit (bench/dmarc-import.ts: 6.6 s for 10,000 reports, against 5.4 s with 128). The
 * decoder queue holds them all, so none is refused as busy. IMPORT_BYTES_IN_FLIGHT bounds their memory:
 * large files are taken fewer at a time.
 */
const IMPORT_CONCURRENCY = 512;
const IMPORT_BYTES_IN_FLIGHT = 64 * 1024 * 1024;
const IMPORT_DECODE_THREADS = 2;
const IMPORT_DECODE_AHEAD = 128;
/** How deep a directory walk goes. */
const MAX_WALK_DEPTH = 16;

type ImportStatus = 'stored' | 'rejected' | 'unreadable' | 'skipped';

interface ImportResult {
  path: string;
  status: ImportStatus;
  reports?: StoredRef[];
  code?: string;
  reason?: string;
}

function registerImport(reports: Command): void {
  storeOptions(
    reports
      .command('import')
      .description('store TLS-RPT and DMARC report files, emails and Maildir folders (as if received)')
      .argument(
        '<path...>',
        'files (.json, .json.gz, .xml, .xml.gz, .zip, .eml: kind and format found by content), Maildir folders, or directories',
      ),
  )
    .option('--json', 'print what happened to each file as JSON')
    .addHelpText(
      'after',
      `
A Maildir (a folder with cur/ or new/) is read message by message from cur/ and new/ (tmp/ and
subfolders are left alone, nothing is moved). Any other folder is walked (hidden names and symbolic
links to folders skipped): Maildirs inside it are read as above, and files named *.json, *.json.gz,
*.xml, *.gz, *.zip or *.eml are imported; other files are skipped and counted. Each file may hold a
TLS-RPT report (RFC 8460) or a DMARC aggregate report (RFC 7489), told apart by content. Reports are
stored with source "import" and DKIM "unverified" (nothing is checked offline); a report already
stored (same organization and report-id, for DMARC also the same policy domain) is reported as
"already stored". Input that is not a report is kept in the rejected list with the reason (see
\`mxguard reports list --rejected\`) and printed.

Examples:
  mxguard reports import google.com!example.com!1725321600!1725407999!001.json.gz
  mxguard reports import ~/Maildir/.TLS-Reports /srv/saved-reports --data-dir /var/lib/mxguard
  mxguard reports import 'google.com!example.com!1549929600!1550015999.zip'

Exit status: 0 everything stored or already stored, 1 some input was rejected (not a report),
2 some path could not be read, or a usage error. All paths are processed either way. A data
directory without a database is refused (exit 2, nothing imported): \`serve\` or \`domain add\`
create it.
`,
    )
    .action(async (paths: string[], options: StoreCommandOptions) => {
      const results: ImportResult[] = [];
      const files: string[] = [];
      for (const path of paths) await gatherFiles(path, files, results, true, 0);
      await withStore(
        options,
        async (store) => {
          // Decoded several at once, stored in the order given: file i stores once file i - 1 has handed
          // all its reports to the store (not once they are committed: consecutive files share commits).
          const handedOver = files.map(() => {
            let resolve = () => {};
            const promise = new Promise<void>((r) => {
              resolve = r;
            });
            return { promise, resolve };
          });
          const indexes = files.map((_, i) => i);
          const budget = new InOrderBudget(IMPORT_BYTES_IN_FLIGHT);
          const imported = await mapLimit(indexes, IMPORT_CONCURRENCY, async (i) => {
            const turn = {
              wait: () => (i === 0 ? Promise.resolve() : handedOver[i - 1]!.promise),
              pass: handedOver[i]!.resolve,
            };
            const info = statOf(files[i]!);
            const release = await budget.take(async () => (info instanceof Error ? 0 : info.size));
            try {
              return await importFile(store, files[i]!, info, turn);
            } finally {
              turn.pass();
              release();
            }
          });
          results.push(...imported);
        },
        // Nothing but the import runs on this thread: commits may follow each other closely (`bulk`).
        { bulk: true },
      );
      const summary = summarize(results);
      if (options.json) printJson({ files: results, summary });
      else printImport(results, summary);
      process.exitCode = summary.unreadable > 0 ? 2 : summary.rejected > 0 ? 1 : 0;
    });
}

/** Add `path` (a file, a Maildir, or a folder to walk) to `files`; what cannot be read goes to `results`. */
async function gatherFiles(
  path: string,
  files: string[],
  results: ImportResult[],
  named: boolean,
  depth: number,
): Promise<void> {
  let info: Stats;
  try {
    info = await stat(path);
  } catch (err) {
    results.push({ path, status: 'unreadable', reason: fsReason(err) });
    return;
  }
  if (info.isFile()) {
    takeFile(path, files, results, named);
    return;
  }
  if (!info.isDirectory()) {
    results.push({ path, status: named ? 'unreadable' : 'skipped', reason: 'not a file or folder' });
    return;
  }
  if (depth > MAX_WALK_DEPTH) {
    results.push({ path, status: 'skipped', reason: `more than ${MAX_WALK_DEPTH} folders deep` });
    return;
  }
  let entries: Dirent[];
  try {
    entries = await readdir(path, { withFileTypes: true });
  } catch (err) {
    results.push({ path, status: 'unreadable', reason: fsReason(err) });
    return;
  }
  const isMaildir = entries.some((e) => e.isDirectory() && (e.name === 'cur' || e.name === 'new'));
  if (isMaildir) {
    for (const sub of ['new', 'cur']) {
      if (!entries.some((e) => e.isDirectory() && e.name === sub)) continue;
      await gatherMaildirMessages(join(path, sub), files, results);
    }
    return;
  }
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (entry.name.startsWith('.')) continue;
    const child = join(path, entry.name);
    if (entry.isFile()) {
      // Known from the directory listing: no stat per file (10,000 of them cost the walk most of a second).
      takeFile(child, files, results, false);
      continue;
    }
    if (entry.isSymbolicLink()) {
      const target = await stat(child).catch(() => undefined);
      if (target?.isDirectory()) {
        results.push({ path: child, status: 'skipped', reason: 'symbolic link to a folder, not followed' });
        continue;
      }
    }
    await gatherFiles(child, files, results, false, depth + 1);
  }
}

/** A file found by the walk (`named`: on the command line) is imported when named, or named like a report. */
function takeFile(path: string, files: string[], results: ImportResult[], named: boolean): void {
  if (named || REPORT_FILE_NAME.test(path)) files.push(path);
  else {
    const reason = 'name is not *.json, *.json.gz, *.xml, *.gz, *.zip or *.eml';
    results.push({ path, status: 'skipped', reason });
  }
}

/** Every message of a Maildir's cur/ or new/ folder, whatever its name (RFC-less but de facto: one file each). */
async function gatherMaildirMessages(dir: string, files: string[], results: ImportResult[]): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    results.push({ path: dir, status: 'unreadable', reason: fsReason(err) });
    return;
  }
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (entry.name.startsWith('.') || entry.isDirectory()) continue;
    files.push(join(dir, entry.name));
  }
}

const IMPORT_LIMITS = {
  maxBytes: DEFAULT_DECODE_LIMITS.maxCompressedBytes,
  maxDecompressedBytes: DEFAULT_DECODE_LIMITS.maxDecompressedBytes,
  ratePerMinute: 0,
  acceptUnsigned: true,
  decodeThreads: IMPORT_DECODE_THREADS,
  decodeAhead: IMPORT_DECODE_AHEAD,
  decodeQueue: IMPORT_CONCURRENCY,
};

/**
 * A file's stat, or why it cannot be had (importFile says so): taken once, for the budget and the cap,
 * synchronously (a local stat takes microseconds; the asynchronous one is a thread-pool round trip).
 */
function statOf(path: string): Stats | Error {
  try {
    return statSync(path);
  } catch (err) {
    return err as Error;
  }
}

/**
 * A budget of bytes granted in the order asked: a file waits until the files before it leave it room
 * (one larger than the whole budget gets it all). In order, so that a file never waits for room held
 * by a later one, which would wait for its turn to store.
 */
class InOrderBudget {
  private free: number;
  private granted: Promise<void> = Promise.resolve();
  private released: Array<() => void> = [];

  constructor(private readonly total: number) {
    this.free = total;
  }

  /** Wait for `size()` bytes; the returned function gives them back. */
  take(size: () => Promise<number>): Promise<() => void> {
    const grant = this.granted.then(async () => {
      const wanted = Math.min(await size(), this.total);
      while (this.free < wanted) await new Promise<void>((resolve) => this.released.push(resolve));
      this.free -= wanted;
      return wanted;
    });
    this.granted = grant.then(() => undefined);
    return grant.then((bytes) => () => {
      this.free += bytes;
      for (const wake of this.released.splice(0)) wake();
    });
  }
}

/** A file's turn to store: wait for the file before it, pass the turn on once its reports are handed over. */
interface StoreTurn {
  wait(): Promise<void>;
  pass(): void;
}

async function importFile(
  store: Store,
  path: string,
  info: Stats | Error,
  turn: StoreTurn,
): Promise<ImportResult> {
  const deps = {
    store,
    limits: IMPORT_LIMITS,
    now: () => new Date(),
    storeTurn: turn,
  };
  const meta = { source: 'import' as const, dkim: 'unverified' as const, submitter: path };
  let bytes: Buffer;
  try {
    if (info instanceof Error) throw info;
    if (info.size > IMPORT_LIMITS.maxBytes) {
      // Not read at all: too large to be a report (the same cap as the other intake channels).
      const reason = `the input is ${info.size} bytes, more than the limit of ${IMPORT_LIMITS.maxBytes}`;
      await recordRejected(deps, { ...meta, reason, size: info.size, code: 'TLSRPT_TOO_LARGE' });
      return { path, status: 'rejected', code: 'TLSRPT_TOO_LARGE', reason };
    }
    // In one synchronous call (open, read, close): a report file is small, and the asynchronous
    // readFile's four thread-pool round trips cost the import's busiest thread more than the read.
    bytes = readFileSync(path);
  } catch (err) {
    if (err instanceof StoreError) throw err;
    return { path, status: 'unreadable', reason: fsReason(err) };
  }
  const result = await ingestReport(deps, bytes, meta);
  if ('rejected' in result) return { path, status: 'rejected', code: result.code, reason: result.rejected };
  return { path, status: 'stored', reports: result.stored };
}

interface ImportSummary {
  stored: number;
  alreadyStored: number;
  rejected: number;
  unreadable: number;
  skipped: number;
}

function summarize(results: ImportResult[]): ImportSummary {
  const reportsOf = (created: boolean) =>
    results.flatMap((r) => r.reports ?? []).filter((s) => s.created === created).length;
  const count = (status: ImportStatus) => results.filter((r) => r.status === status).length;
  return {
    stored: reportsOf(true),
    alreadyStored: reportsOf(false),
    rejected: count('rejected'),
    unreadable: count('unreadable'),
    skipped: count('skipped'),
  };
}

function printImport(results: ImportResult[], summary: ImportSummary): void {
  for (const r of results) {
    if (r.status === 'stored') {
      for (const s of r.reports ?? []) {
        const label = s.kind === 'dmarc' ? 'DMARC report' : 'report';
        const what = `${label} "${terminalText(s.reportId, VALUE_MAX)}" from ${terminalText(s.organization, VALUE_MAX)} (id ${s.id})`;
        process.stdout.write(`${r.path}: ${s.created ? 'stored' : 'already stored:'} ${what}\n`);
      }
    } else if (r.status === 'rejected') {
      process.stderr.write(
        `${r.path}: rejected [${r.code}]: ${terminalText(r.reason ?? '', 4 * VALUE_MAX)}\n`,
      );
    } else if (r.status === 'unreadable') {
      process.stderr.write(`${r.path}: cannot read: ${r.reason}\n`);
    }
  }
  const parts = [
    `${summary.stored} stored`,
    `${summary.alreadyStored} already stored`,
    `${summary.rejected} rejected`,
    `${summary.unreadable} unreadable`,
  ];
  if (summary.skipped > 0) parts.push(`${summary.skipped} skipped (not named like a report)`);
  process.stdout.write(`${parts.join(', ')}\n`);
}

function fsReason(err: unknown): string {
  switch ((err as NodeJS.ErrnoException)?.code) {
    case 'ENOENT':
      return 'no such file or folder';
    case 'EACCES':
      return 'permission denied';
    case 'EISDIR':
      return 'is a folder';
    default:
      return (err as Error)?.message ?? String(err);
  }
}
