// Error class of the SPF record parser (RFC 7208).
import { ProtocolError } from '../common/errors.js';

export type SpfErrorCode =
  | 'SPF_EMPTY'
  | 'SPF_VERSION'
  | 'SPF_CHARSET'
  | 'SPF_UNKNOWN_TERM'
  | 'SPF_MECHANISM_SYNTAX'
  | 'SPF_DOMAIN_SPEC'
  | 'SPF_MACRO'
  | 'SPF_IP4'
  | 'SPF_IP6'
  | 'SPF_CIDR'
  | 'SPF_DUPLICATE_MODIFIER';

/** `problems` holds every error, followed by any warnings found while parsing the same record. */
export class SpfError extends ProtocolError<SpfErrorCode> {
  override readonly name = 'SpfError';
}
