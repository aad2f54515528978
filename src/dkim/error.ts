// Error class of the DKIM key record parser (RFC 6376 §3.6.1, RFC 8301, RFC 8463).
import { ProtocolError } from '../common/errors.js';

export type DkimErrorCode =
  | 'DKIM_EMPTY'
  | 'DKIM_SYNTAX'
  | 'DKIM_DUPLICATE_TAG'
  | 'DKIM_VERSION'
  | 'DKIM_TAG_VALUE'
  | 'DKIM_KEY_TYPE'
  | 'DKIM_MISSING_KEY'
  | 'DKIM_KEY'
  | 'DKIM_KEY_TOO_SMALL';

/** `problems` holds every error, followed by the warnings and notes found in the same record. */
export class DkimError extends ProtocolError<DkimErrorCode> {
  override readonly name = 'DkimError';
}
