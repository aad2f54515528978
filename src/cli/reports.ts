// `mxguard reports ...`: TLS-RPT (RFC 8460) aggregate reports. `parse` reads report files
// (JSON, gzip or whole emails, found by content) and summarises them; `list` and `import` work on
// the store of `mxguard serve`.
import type { Dirent, Stats } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Problem } from '../common/errors.js';
import { ingestReport, recordRejected, type StoredRef } from '../server/ingest.js';
import { type RejectedInput, type Store, type StoredReportSummary, StoreError } from '../store/types.js';
import { TlsRptError } from '../tlsrpt/error.js';
import { DEFAULT_DECODE_LIMITS, decodeReports } from '../tlsrpt/parse.js';
import type { TlsFailure, TlsReport } from '../tlsrpt/report.js';
import { DEFAULT_DATA_DIR, withStore } from './domain.js';
import { CliError, formatProblem, formatTable, intOption, printJson, readInputBytes } from './util.js';

export function register(program: Command): void {
  const reports = program
    .command('reports')
    .description('Work with TLS-RPT (RFC 8460) aggregate reports')
    .addHelpText(
      'after',
      `
Examples:
  mxguard reports parse google.com!example.com!1725321600!1725407999!001.json.gz
  mxguard reports import ~/Maildir/.TLS-Reports --data-dir /var/lib/mxguard
  mxguard reports list --domain example.com --json
`,
    );
  registerParse(reports);
  registerList(reports);
  registerImport(reports);
}

function registerParse(reports: Command): void {
  reports
    .command('parse')
    .description('Read TLS-RPT reports (.json, .json.gz or .eml; detected by content) and summarise them')
    .argument('<file...>', 'report files; "-" reads standard input')
    .option('--json', 'print reports, warnings and errors as JSON')
    .addHelpText(
      'after',
      `
Examples:
  mxguard reports parse report.json.gz
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
  warnings: Problem[];
  errors: FileError[];
  exitCode: 0 | 1 | 2;
}

async function parseFile(file: string): Promise<FileResult> {
  const result: FileResult = { file, reports: [], warnings: [], errors: [], exitCode: 0 };
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
    const decoded = await decodeReports(bytes);
    result.reports = decoded.reports;
    result.warnings = decoded.warnings;
  } catch (err) {
    if (!(err instanceof TlsRptError)) throw err;
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
    reports: results.flatMap((r) =>
      r.reports.map((report) => ({
        file: r.file,
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
    ),
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
    for (const report of r.reports) out.push(...describeReport(r.file, report));
    for (const w of r.warnings) out.push(formatProblem(r.file, w));
    for (const e of r.errors) {
      process.stderr.write(
        `${formatProblem(r.file, { severity: 'error', code: e.code, message: e.message })}\n`,
      );
    }
  }
  if (out.length > 0) process.stdout.write(`${out.join('\n')}\n`);
}

function describeReport(file: string, report: TlsReport): string[] {
  const lines = [
    `${file}: report ${report.reportId}`,
    `  organization: ${report.organization}${report.contactInfo ? ` <${report.contactInfo}>` : ''}`,
    `  period:       ${report.start} to ${report.end}`,
  ];
  for (const p of report.policies) {
    lines.push(`  policy ${p.type} for ${p.domain || '(no policy-domain)'}`);
    lines.push(`    mx hosts:   ${p.mxHosts.length > 0 ? p.mxHosts.join(', ') : '(none listed)'}`);
    lines.push(`    successful: ${p.successful}`);
    lines.push(`    failed:     ${p.failed}`);
    for (const [resultType, count] of failuresByType(p.failures)) lines.push(`      ${resultType}: ${count}`);
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

interface StoreCommandOptions {
  dataDir: string;
  json?: boolean;
}

function registerList(reports: Command): void {
  reports
    .command('list')
    .description('list the reports stored by `mxguard serve` or `reports import`, newest first')
    .option('--domain <domain>', 'only reports about this policy domain')
    .option('--since <date>', 'only reports starting at or after this ISO date/time (UTC)')
    .option('--until <date>', 'only reports starting before this ISO date/time (a date: up to its end)')
    .option('--limit <n>', 'at most this many reports', '100')
    .option('--rejected', 'list the rejected input (not reports, with the reason) instead')
    .option('--data-dir <dir>', 'where the database lives (as `mxguard serve --data-dir`)', DEFAULT_DATA_DIR)
    .option('--json', 'print the list as JSON')
    .addHelpText(
      'after',
      `
Examples:
  mxguard reports list --domain example.com
  mxguard reports list --since 2024-05-01 --until 2024-05-31 --json
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
          rejected?: boolean;
        },
      ) => {
        const limit = intOption('--limit', options.limit, 1, 10_000);
        await withStore(options.dataDir, async (store) => {
          if (options.rejected) {
            const rejected = await store.listRejected(limit);
            if (options.json) printJson({ rejected });
            else printRejected(rejected);
            return;
          }
          const found = await store.listReports({
            domain: options.domain,
            since: options.since,
            until: options.until,
            limit,
          });
          if (options.json) printJson({ reports: found });
          else printReportList(found);
        });
      },
    );
}

function printReportList(found: StoredReportSummary[]): void {
  if (found.length === 0) {
    process.stdout.write('no reports stored\n');
    return;
  }
  const rows = found.map((r) => [
    String(r.id),
    `${r.start} to ${r.end}`,
    printable(r.organization),
    printable(r.reportId),
    r.domains.map(printable).join(',') || '-',
    String(r.successful),
    String(r.failed),
    r.source,
    r.dkim,
  ]);
  const header = ['ID', 'PERIOD', 'ORGANIZATION', 'REPORT ID', 'DOMAINS', 'OK', 'FAILED', 'SOURCE', 'DKIM'];
  process.stdout.write(formatTable([header, ...rows]));
}

function printRejected(rejected: RejectedInput[]): void {
  if (rejected.length === 0) {
    process.stdout.write('no rejected input\n');
    return;
  }
  for (const r of rejected) {
    const from = r.submitter === undefined ? '' : ` from ${printable(r.submitter)}`;
    process.stdout.write(
      `#${r.id} ${r.receivedAt} ${r.source}${from}, ${r.size} bytes: ${printable(r.reason)}\n`,
    );
  }
}

/** Report fields are attacker-controlled: no control characters (terminal escapes) reach the terminal. */
function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

// ---- import ----

/** File names a directory walk picks up; files named on the command line are read whatever their name. */
const REPORT_FILE_NAME = /\.(?:json|json\.gz|gz|eml)$/i;
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
  reports
    .command('import')
    .description('store report files, emails and Maildir folders (as if they had been received)')
    .argument('<path...>', 'files (.json, .json.gz, .eml: found by content), Maildir folders, or directories')
    .option('--data-dir <dir>', 'where the database lives (as `mxguard serve --data-dir`)', DEFAULT_DATA_DIR)
    .option('--json', 'print what happened to each file as JSON')
    .addHelpText(
      'after',
      `
A Maildir (a folder with cur/ or new/) is read message by message from cur/ and new/ (tmp/ and
subfolders are left alone, nothing is moved). Any other folder is walked (hidden names and symbolic
links to folders skipped): Maildirs inside it are read as above, and files named *.json, *.json.gz,
*.gz or *.eml are imported; other files are skipped and counted. Reports are stored with source
"import" and DKIM "unverified" (nothing is checked offline); a report already stored (same
organization and report-id) is reported as "already stored". Input that is not a report is kept in
the rejected list with the reason (see \`mxguard reports list --rejected\`) and printed.

Examples:
  mxguard reports import google.com!example.com!1725321600!1725407999!001.json.gz
  mxguard reports import ~/Maildir/.TLS-Reports /srv/saved-reports --data-dir /var/lib/mxguard

Exit status: 0 everything stored or already stored, 1 some input was rejected (not a report),
2 some path could not be read, or a usage error. All paths are processed either way.
`,
    )
    .action(async (paths: string[], options: StoreCommandOptions) => {
      const results: ImportResult[] = [];
      const files: string[] = [];
      for (const path of paths) await gatherFiles(path, files, results, true, 0);
      await withStore(options.dataDir, async (store) => {
        for (const file of files) results.push(await importFile(store, file));
      });
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
    if (named || REPORT_FILE_NAME.test(path)) files.push(path);
    else results.push({ path, status: 'skipped', reason: 'name is not *.json, *.json.gz, *.gz or *.eml' });
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
};

async function importFile(store: Store, path: string): Promise<ImportResult> {
  const deps = { store, limits: IMPORT_LIMITS, now: () => new Date() };
  const meta = { source: 'import' as const, dkim: 'unverified' as const, submitter: path };
  let bytes: Buffer;
  try {
    const info = await stat(path);
    if (info.size > IMPORT_LIMITS.maxBytes) {
      // Not read at all: too large to be a report (the same cap as the other intake channels).
      const reason = `the input is ${info.size} bytes, more than the limit of ${IMPORT_LIMITS.maxBytes}`;
      await recordRejected(deps, { ...meta, reason, size: info.size, code: 'TLSRPT_TOO_LARGE' });
      return { path, status: 'rejected', code: 'TLSRPT_TOO_LARGE', reason };
    }
    bytes = await readFile(path);
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
        const what = `report ${JSON.stringify(printable(s.reportId))} from ${printable(s.organization)} (id ${s.id})`;
        process.stdout.write(`${r.path}: ${s.created ? 'stored' : 'already stored:'} ${what}\n`);
      }
    } else if (r.status === 'rejected') {
      process.stderr.write(`${r.path}: rejected [${r.code}]: ${printable(r.reason ?? '')}\n`);
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
