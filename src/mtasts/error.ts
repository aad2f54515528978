// MTA-STS (RFC 8461) errors: one class for the TXT record, the policy file and MX patterns.
import { type Problem, ProtocolError } from '../common/errors.js';

export type MtaStsErrorCode =
  | 'MTASTS_RECORD_SYNTAX'
  | 'MTASTS_RECORD_VERSION'
  | 'MTASTS_RECORD_ID'
  | 'MTASTS_RECORD_DUPLICATE_ID'
  | 'MTASTS_RECORD_EXTENSION'
  | 'MTASTS_POLICY_EMPTY'
  | 'MTASTS_POLICY_SYNTAX'
  | 'MTASTS_POLICY_BLANK_LINE'
  | 'MTASTS_POLICY_BOM'
  | 'MTASTS_POLICY_VERSION'
  | 'MTASTS_POLICY_MODE'
  | 'MTASTS_POLICY_MAX_AGE'
  | 'MTASTS_POLICY_MX'
  | 'MTASTS_POLICY_EXTENSION'
  | 'MTASTS_POLICY_DUPLICATE';

/**
 * Thrown by the record and policy parsers. `problems` holds every error found (severity 'error');
 * `warnings` holds the warnings and notes seen in the same input, so a caller can show them too.
 */
export class MtaStsError extends ProtocolError<MtaStsErrorCode> {
  readonly warnings: Problem[];

  constructor(
    code: MtaStsErrorCode,
    message: string,
    options: { where?: string; cause?: unknown; problems?: Problem[]; warnings?: Problem[] } = {},
  ) {
    super(code, message, options);
    this.name = 'MtaStsError';
    this.warnings = options.warnings ?? [];
  }

  /** One error carrying every problem: code and where of the first, message listing them all. */
  static fromProblems(problems: Problem[], warnings: Problem[] = []): MtaStsError {
    const first = problems[0]!;
    const message =
      problems.length === 1
        ? first.message
        : `${problems.length} errors: ${problems.map((p) => (p.where ? `${p.where}: ${p.message}` : p.message)).join('; ')}`;
    return new MtaStsError(first.code as MtaStsErrorCode, message, {
      where: problems.length === 1 ? first.where : undefined,
      problems,
      warnings,
    });
  }
}
