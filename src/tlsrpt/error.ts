// TLS-RPT (RFC 8460) errors: one class for the whole module, with a literal code union.
import { type Problem, ProtocolError } from '../common/errors.js';

export type TlsRptErrorCode =
  // the _smtp._tls TXT record (RFC 8460 §3)
  | 'TLSRPT_RECORD_VERSION'
  | 'TLSRPT_RECORD_SYNTAX'
  | 'TLSRPT_RECORD_NO_RUA'
  | 'TLSRPT_RECORD_DUPLICATE_RUA'
  | 'TLSRPT_RECORD_BAD_URI'
  | 'TLSRPT_RECORD_BAD_EXTENSION'
  // the aggregate report (RFC 8460 §4, §5)
  | 'TLSRPT_NOT_A_REPORT'
  | 'TLSRPT_BAD_JSON'
  | 'TLSRPT_TOO_DEEP'
  | 'TLSRPT_TOO_LARGE'
  | 'TLSRPT_FIELD_TOO_LONG'
  | 'TLSRPT_LIST_TOO_LONG'
  | 'TLSRPT_BAD_GZIP'
  | 'TLSRPT_BAD_EMAIL'
  | 'TLSRPT_NO_REPORT_IN_EMAIL'
  | 'TLSRPT_MISSING_FIELD'
  | 'TLSRPT_BAD_FIELD'
  | 'TLSRPT_BAD_COUNT'
  | 'TLSRPT_BAD_DATETIME';

export class TlsRptError extends ProtocolError<TlsRptErrorCode> {
  override readonly name = 'TlsRptError';

  /** One error carrying every problem found; code, message and place come from the first. */
  static fromProblems(errors: readonly Problem[]): TlsRptError {
    const first = errors[0];
    if (!first) throw new RangeError('fromProblems needs at least one problem');
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
    return new TlsRptError(first.code as TlsRptErrorCode, `${first.message}${more}`, {
      where: first.where,
      problems: [...errors],
    });
  }
}
