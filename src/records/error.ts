// Errors of the record-set builder (src/records): one class with a literal code union and the
// input field at fault, so each caller (CLI, API) names the field in its own terms.
import { ProtocolError } from '../common/errors.js';

export type RecordsErrorCode =
  | 'RECORDS_DOMAIN'
  | 'RECORDS_PRESET'
  | 'RECORDS_MODE'
  | 'RECORDS_MAX_AGE'
  | 'RECORDS_TTL'
  | 'RECORDS_NO_MX'
  | 'RECORDS_MX'
  | 'RECORDS_ID'
  | 'RECORDS_RUA'
  | 'RECORDS_POLICY_HOST'
  | 'RECORDS_SPF'
  | 'RECORDS_DMARC'
  | 'RECORDS_ZONE';

/** The input field an error is about: a key of RecordSetInput, or the zone of the PowerShell form. */
export type RecordsField =
  | 'domain'
  | 'preset'
  | 'mode'
  | 'maxAge'
  | 'ttl'
  | 'mx'
  | 'id'
  | 'rua'
  | 'policyHostTargets'
  | 'spf'
  | 'dmarc'
  | 'zone';

export class RecordsError extends ProtocolError<RecordsErrorCode> {
  override readonly name = 'RecordsError';
  readonly field: RecordsField;
  /** The item of a list field at fault (one mx pattern, one policy host target), if any. */
  readonly value?: string;
  /** What is wrong, without the field name (`message` is "field[ value]: detail"). */
  readonly detail: string;

  constructor(code: RecordsErrorCode, field: RecordsField, detail: string, value?: string) {
    super(code, detail, { where: value === undefined ? field : `${field} ${value}` });
    this.field = field;
    this.value = value;
    this.detail = detail;
  }

  /** The message with the field named as the caller calls it (an option, a query parameter). */
  describe(fieldName: string): string {
    const subject = [fieldName, this.value].filter((s) => s !== undefined && s !== '').join(' ');
    return subject ? `${subject}: ${this.detail}` : this.detail;
  }
}
