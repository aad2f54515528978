// Error class of the DMARC policy record parser (RFC 7489, with RFC 9989 differences as notes).
import { ProtocolError } from '../common/errors.js';

export type DmarcErrorCode =
  | 'DMARC_EMPTY'
  | 'DMARC_VERSION'
  | 'DMARC_SYNTAX'
  | 'DMARC_DUPLICATE_TAG'
  | 'DMARC_TAG_ORDER'
  | 'DMARC_MISSING_POLICY'
  | 'DMARC_TAG_VALUE'
  | 'DMARC_URI';

/** `problems` holds every error, followed by the warnings and notes found in the same record. */
export class DmarcError extends ProtocolError<DmarcErrorCode> {
  override readonly name = 'DmarcError';
}
