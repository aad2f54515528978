// Errors of the DMARC module: the policy record parser (RFC 7489, with RFC 9989 differences as notes) and
// the aggregate report reader (RFC 7489 Appendix C, RFC 9990), one class with a literal code union.
import { type Problem, ProtocolError } from '../common/errors.js';

export type DmarcErrorCode =
  // the _dmarc TXT record (RFC 7489 §6.3)
  | 'DMARC_EMPTY'
  | 'DMARC_VERSION'
  | 'DMARC_SYNTAX'
  | 'DMARC_DUPLICATE_TAG'
  | 'DMARC_TAG_ORDER'
  | 'DMARC_MISSING_POLICY'
  | 'DMARC_TAG_VALUE'
  | 'DMARC_URI'
  // the aggregate report (RFC 7489 Appendix C, RFC 9990) and its containers (gzip, zip, e-mail)
  | 'DMARC_REPORT_EMPTY'
  | 'DMARC_REPORT_NOT_A_REPORT'
  | 'DMARC_REPORT_TOO_LARGE'
  | 'DMARC_REPORT_BAD_XML'
  | 'DMARC_REPORT_DTD'
  | 'DMARC_REPORT_FIELD_TOO_LONG'
  | 'DMARC_REPORT_TOO_MANY_RECORDS'
  | 'DMARC_REPORT_MISSING_FIELD'
  | 'DMARC_REPORT_BAD_VALUE'
  | 'DMARC_REPORT_BAD_GZIP'
  | 'DMARC_ZIP_BAD'
  | 'DMARC_ZIP_ENTRIES'
  | 'DMARC_ZIP_PATH'
  | 'DMARC_ZIP_ENCRYPTED'
  | 'DMARC_ZIP_METHOD'
  | 'DMARC_EMAIL_BAD'
  | 'DMARC_EMAIL_NO_REPORT';

/** `problems` holds every error, followed by the warnings and notes found in the same input. */
export class DmarcError extends ProtocolError<DmarcErrorCode> {
  override readonly name = 'DmarcError';

  /** One error carrying every problem found; code, message and place come from the first. */
  static fromProblems(errors: readonly Problem[]): DmarcError {
    const first = errors[0];
    if (!first) throw new RangeError('fromProblems needs at least one problem');
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
    return new DmarcError(first.code as DmarcErrorCode, `${first.message}${more}`, {
      where: first.where,
      problems: [...errors],
    });
  }
}
