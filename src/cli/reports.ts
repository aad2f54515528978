// `mxguard reports ...`: TLS-RPT (RFC 8460) aggregate reports. `parse` reads report files
// (JSON, gzip or whole emails, found by content) and summarises them.
import type { Command } from 'commander';
import type { Problem } from '../common/errors.js';
import { TlsRptError } from '../tlsrpt/error.js';
import { decodeReports } from '../tlsrpt/parse.js';
import type { TlsFailure, TlsReport } from '../tlsrpt/report.js';
import { CliError, formatProblem, printJson, readInputBytes } from './util.js';

export function register(program: Command): void {
  const reports = program
    .command('reports')
    .description('Work with TLS-RPT (RFC 8460) aggregate reports')
    .addHelpText(
      'after',
      '\nExample:\n  mxguard reports parse google.com!example.com!1725321600!1725407999!001.json.gz\n',
    );
  registerParse(reports);
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
