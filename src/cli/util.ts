// Small helpers shared by the CLI commands: typed CLI errors, input reading, problem printing.
import { readFileSync } from 'node:fs';
import type { Problem } from '../common/errors.js';

/** A failure the CLI reports as one line on stderr, with the given exit code (ARCHITECTURE.md: 1 invalid, 2 could not run). */
export class CliError extends Error {
  constructor(
    readonly exitCode: 1 | 2,
    message: string,
  ) {
    super(message);
  }
}

/** Read a file (or stdin for "-") as bytes; an unreadable input is exit 2, naming the input. */
export function readInputBytes(path: string, maxBytes = 64 * 1024 * 1024): Buffer {
  let data: Buffer;
  try {
    data = path === '-' ? readFileSync(0) : readFileSync(path);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new CliError(2, `${path}: cannot read: ${describeFsError(reason)}`);
  }
  if (data.length > maxBytes) throw new CliError(2, `${path}: larger than ${maxBytes} bytes`);
  return data;
}

export function readInputText(path: string, maxBytes?: number): string {
  return readInputBytes(path, maxBytes).toString('utf8');
}

function describeFsError(code: string): string {
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    default:
      return code;
  }
}

const SEVERITY_MARK: Record<Problem['severity'], string> = {
  error: 'error',
  warning: 'warning',
  note: 'note',
};

/** "INPUT: warning [CODE] line 3: message" — every line names the input it is about. */
export function formatProblem(input: string, p: Problem): string {
  const where = p.where ? `${p.where}: ` : '';
  return `${input}: ${SEVERITY_MARK[p.severity]} [${p.code}] ${where}${p.message}`;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Commander collects repeated options with this. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Parse a non-negative integer option or throw a usage error naming the option. */
export function intOption(name: string, value: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(value)) throw new CliError(2, `${name}: expected a whole number, got "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw new CliError(2, `${name}: must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** Rows of cells as aligned text columns (two spaces apart), one line per row. */
export function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map(
      (r) =>
        `${r
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}
