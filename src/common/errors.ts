// Shared error and problem types for every protocol module.
// Each module subclasses ProtocolError with its own literal `code` union (see ARCHITECTURE.md).

export type Severity = 'error' | 'warning' | 'note';

/** One thing wrong (or worth knowing) about an input, with where in the input it is. */
export interface Problem {
  severity: Severity;
  code: string;
  message: string;
  /** Where in the input: "line 3", "tag p", "term 4 (include:x)". */
  where?: string;
}

/** Base of the per-module error classes. `problems` lists every error found, not only the first. */
export class ProtocolError<C extends string = string> extends Error {
  readonly code: C;
  readonly where?: string;
  readonly problems: Problem[];

  constructor(
    code: C,
    message: string,
    options: { where?: string; cause?: unknown; problems?: Problem[] } = {},
  ) {
    super(options.where ? `${options.where}: ${message}` : message, { cause: options.cause });
    this.code = code;
    this.where = options.where;
    this.problems = options.problems ?? [{ severity: 'error', code, message, where: options.where }];
  }
}

export function problem(severity: Severity, code: string, message: string, where?: string): Problem {
  return where === undefined ? { severity, code, message } : { severity, code, message, where };
}
