// `mxguard check --since previous.json`: compares each domain's findings with a previous `--json` result
// (one JSON report, or NDJSON with one per line) for CI and cron: the exit status counts only the fails
// that are new, and the output says what changed (src/check/diff.ts decides which findings are the same).
import { diffFindings } from '../check/diff.js';
import type { DomainReport, Finding } from '../check/types.js';
import { CliError, readInputText } from './util.js';

/** A previous result is read whole; thousands of domains fit. */
export const MAX_SINCE_BYTES = 64 * 1024 * 1024;

/** What changed for one domain since the previous result. */
export interface SinceChanges {
  /** The domain was in the previous result. */
  known: boolean;
  /** Findings that are new (in the newer run only). */
  added: Finding[];
  /** Findings that are gone. */
  gone: Finding[];
  /** The same finding with another status. */
  changed: Array<{ before: Finding; after: Finding }>;
  /** Fails now that were not fails before: new findings that fail, or findings that turned to fail. */
  newFails: Finding[];
}

/** The previous reports by domain; a file that is not a `check --json` result is a usage error (exit 2). */
export function readPrevious(path: string): Map<string, Finding[]> {
  const text = readInputText(path, MAX_SINCE_BYTES);
  const bad = (why: string) =>
    new CliError(2, `--since ${path}: not a result of mxguard check --json: ${why}`);
  let values: unknown[];
  try {
    values = [JSON.parse(text)];
  } catch {
    values = [];
    const lines = text.split('\n');
    for (const [i, line] of lines.entries()) {
      if (line.trim() === '') continue;
      try {
        values.push(JSON.parse(line));
      } catch {
        throw bad(`line ${i + 1} is not JSON`);
      }
    }
  }
  const previous = new Map<string, Finding[]>();
  for (const [i, value] of values.entries()) {
    const report = value as Partial<DomainReport> | null;
    if (typeof report?.domain !== 'string' || !Array.isArray(report.findings)) {
      throw bad(`report ${i + 1} has no "domain" and "findings"`);
    }
    const findings = report.findings as unknown[];
    if (!findings.every(isFinding)) throw bad(`report ${i + 1} (${report.domain}) has a malformed finding`);
    previous.set(report.domain.toLowerCase(), findings);
  }
  return previous;
}

function isFinding(f: unknown): f is Finding {
  const x = f as Record<string, unknown> | null;
  return (
    typeof x === 'object' &&
    x !== null &&
    ['section', 'status', 'code', 'message'].every((k) => typeof x[k] === 'string') &&
    (x.host === undefined || typeof x.host === 'string')
  );
}

/** The changes of one domain; a domain the previous result did not have: every finding is new. */
export function changesSince(previous: Finding[] | undefined, findings: Finding[]): SinceChanges {
  const diff = diffFindings(previous ?? [], findings);
  // A message that changes alone (days left, a certificate's serial) is not a change people act on.
  const changed = diff.changed.filter((c) => c.before.status !== c.after.status);
  const newFails = [
    ...diff.added.filter((f) => f.status === 'fail'),
    ...changed.filter((c) => c.after.status === 'fail').map((c) => c.after),
  ];
  return { known: previous !== undefined, added: diff.added, gone: diff.gone, changed, newFails };
}

/** Exit status of one domain with --since: 2 could not run, 1 a new fail, else 0. */
export function sinceExitCode(result: DomainReport, changes: SinceChanges): number {
  if (result.status === 'error') return 2;
  return changes.newFails.length > 0 ? 1 : 0;
}

/** The lines for people, after the report. */
export function humanChanges(path: string, changes: SinceChanges): string {
  const line = (mark: string, f: Finding, extra = '') =>
    `  ${mark} [${f.code}] ${f.status}${extra}: ${f.host ? `${f.host}: ` : ''}${f.message}`;
  const lines = [`Changes since ${path}${changes.known ? '' : ' (the domain was not in it)'}:`];
  for (const f of changes.added) lines.push(line('+', f));
  for (const c of changes.changed) lines.push(line('~', c.after, ` (was ${c.before.status})`));
  for (const f of changes.gone) lines.push(line('-', f));
  if (lines.length === 1) lines.push('  none');
  const fails = changes.newFails.length;
  lines.push(`${fails} new fail${fails === 1 ? '' : 's'}`, '');
  return lines.join('\n');
}

/** The `changes` member of a --json report with --since. */
export function jsonChanges(changes: SinceChanges) {
  return {
    added: changes.added,
    gone: changes.gone,
    changed: changes.changed,
    newFails: changes.newFails.length,
  };
}
