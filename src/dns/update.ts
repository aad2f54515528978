// Publishing RRsets by DNS UPDATE (RFC 2136) signed with TSIG (RFC 8945): read the current RRsets,
// then replace them in one UPDATE message guarded by prerequisites, over TCP.

import type { TsigKey } from './tsig-key.js';
import { DnsUpdateError } from './update-error.js';

export { parseTsigKey, readTsigKeyFile, type TsigAlgorithm, type TsigKey } from './tsig-key.js';
export { DnsUpdateError, type DnsUpdateErrorCode } from './update-error.js';

export interface UpdateServer {
  host: string;
  port: number;
}
export interface RRsetReplacement {
  /** owner, absolute, no trailing dot needed */
  name: string;
  type: 'TLSA' | 'TXT';
  ttl: number;
  /** Presentation rdata: TLSA "3 1 1 ab12..." ; TXT the unquoted value (split into 255-byte strings by us). */
  records: string[]; // empty = delete the RRset
}
export interface PublishOptions {
  server: UpdateServer;
  key: TsigKey;
  /** zone found by SOA lookup at `server` when absent */
  zone?: string;
  timeoutMs?: number;
  /** now() for TSIG time signed; tests pass a skewed clock */
  now?: () => number;
}
export interface PublishResult {
  zone: string;
  changed: Array<{ name: string; type: string; before: string[]; after: string[] }>;
}

/**
 * Replace each RRset atomically in ONE UPDATE message: read the current RRsets from `server` first (TCP query),
 * then send prerequisites "RRset exists (value dependent)" with exactly what was read, or "RRset does not exist"
 * (RFC 2136 §2.4.2/§2.4.3), delete the RRset, add the new records. A change by someone else in between gives
 * UPDATE_PREREQ_FAILED, and nothing is applied. RRsets already equal are left alone (no message when nothing changes).
 */
export async function replaceRRsets(
  changes: RRsetReplacement[],
  options: PublishOptions,
): Promise<PublishResult> {
  void changes;
  void options;
  throw new DnsUpdateError('UPDATE_UNREACHABLE', 'not implemented yet');
}
