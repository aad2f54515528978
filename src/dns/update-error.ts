// The one error class of DNS UPDATE publishing (RFC 2136) with TSIG (RFC 8945): key files, the
// server's RCODE and TSIG error, prerequisites, transport. Each code names what went wrong.
import { ProtocolError } from '../common/errors.js';

export type DnsUpdateErrorCode =
  | 'TSIG_KEY_SYNTAX'
  | 'TSIG_KEY_UNREADABLE'
  | 'UPDATE_REFUSED'
  | 'UPDATE_NOTAUTH'
  | 'UPDATE_NOTZONE'
  | 'TSIG_BADSIG'
  | 'TSIG_BADKEY'
  | 'TSIG_BADTIME'
  | 'UPDATE_PREREQ_FAILED'
  | 'UPDATE_UNREACHABLE'
  | 'UPDATE_TIMEOUT'
  | 'UPDATE_SERVFAIL'
  | 'UPDATE_ZONE_NOT_FOUND'
  | 'UPDATE_BAD_RESPONSE'
  /** The changes themselves are wrong (a name, a TTL, a TLSA record): nothing was sent. */
  | 'UPDATE_BAD_INPUT'
  /** The server answered NOERROR but the RRset does not read back as sent (RFC 2136 §3.4.2 skips). */
  | 'UPDATE_NOT_APPLIED';

export class DnsUpdateError extends ProtocolError<DnsUpdateErrorCode> {
  /** BADTIME: server time minus ours, in seconds (from the TSIG "other data" / time signed of the error). */
  readonly clockSkewSeconds?: number;

  constructor(
    code: DnsUpdateErrorCode,
    message: string,
    options: { where?: string; cause?: unknown; clockSkewSeconds?: number } = {},
  ) {
    super(code, message, options);
    this.name = 'DnsUpdateError';
    if (options.clockSkewSeconds !== undefined) this.clockSkewSeconds = options.clockSkewSeconds;
  }
}
