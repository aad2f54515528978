// DANE / TLSA (RFC 6698, RFC 7671, RFC 7672, RFC 7218): the module's one error class.
import { ProtocolError } from '../common/errors.js';

export type DaneErrorCode =
  /** Record structure: missing fields, stray parentheses, bad owner/TTL/class prefix. */
  | 'DANE_TLSA_SYNTAX'
  /** A usage, selector or matching-type field that is not 0-255 or a known RFC 7218 mnemonic. */
  | 'DANE_TLSA_FIELD'
  /** Certificate association data: not hex, odd length, empty, or the wrong length for its matching type. */
  | 'DANE_TLSA_DATA'
  /** A host name or port that cannot form a TLSA owner name (RFC 6698 §3). */
  | 'DANE_TLSA_OWNER'
  /** Bytes that are neither PEM certificates nor one DER certificate, or a certificate that does not parse. */
  | 'DANE_CERT_INVALID'
  /** Input that holds no certificate at all. */
  | 'DANE_CERT_MISSING'
  /** A TLSA record cannot be generated for this selector or matching type (RFC 7671 §4: unknown values). */
  | 'DANE_UNSUPPORTED'
  /** A private or public key that does not parse, or a key that does not belong to the certificate given with it. */
  | 'DANE_KEY_INVALID'
  /** A rollover that cannot work: the next key is the current key (RFC 7671 §8.1). */
  | 'DANE_ROLLOVER';

export class DaneError extends ProtocolError<DaneErrorCode> {
  override readonly name = 'DaneError';
}
