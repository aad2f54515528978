// The TLSA rollover state file, DATA_DIR/tlsa-rollover.json: for each TLSA owner name, when each record was
// first published by mxguard (or first seen in DNS), and which key's record belongs to the certificate deployed.
// `tlsa rollover --dns-server`, `tlsa publish` and `tlsa hook certbot` write it; the hook reads it to know whether
// a new key's record has been in DNS for 2 x TTL (RFC 7671 §8.1). Small JSON, written whole through a rename.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CliError } from './util.js';

export interface OwnerState {
  /** "3 1 1 <hex>" of the certificate deployed when mxguard last published for this owner. */
  deployed?: string;
  /** "3 1 1 <hex>" -> ISO time it was first published (or first seen in DNS). */
  published: Record<string, string>;
}

export interface TlsaState {
  version: 1;
  owners: Record<string, OwnerState>;
}

export const STATE_FILE = 'tlsa-rollover.json';
/** A state file is a few hundred bytes per owner; anything this large is not ours. */
const MAX_STATE_BYTES = 1024 * 1024;

export function readState(dataDir: string): TlsaState {
  const path = join(dataDir, STATE_FILE);
  let text: string;
  try {
    const bytes = readFileSync(path);
    if (bytes.length > MAX_STATE_BYTES)
      throw new CliError(2, `${path}: larger than ${MAX_STATE_BYTES} bytes`);
    text = bytes.toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, owners: {} };
    if (err instanceof CliError) throw err;
    throw new CliError(2, `${path}: cannot read: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CliError(2, `${path}: not JSON (${(err as Error).message}); move it away to start afresh`);
  }
  if (!isState(parsed)) throw new CliError(2, `${path}: not a TLSA rollover state file (version 1)`);
  return parsed;
}

export function writeState(dataDir: string, state: TlsaState): void {
  const path = join(dataDir, STATE_FILE);
  try {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(`${path}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
    renameSync(`${path}.tmp`, path);
  } catch (err) {
    throw new CliError(2, `${path}: cannot write: ${(err as Error).message}`);
  }
}

/**
 * Record that `records` are what DNS holds at `owner` now: records new to the state get `now`, records no longer
 * published are forgotten; `deployed` (when given) is the deployed certificate's record.
 */
export function notePublished(
  state: TlsaState,
  owner: string,
  records: string[],
  now: Date,
  deployed?: string,
): OwnerState {
  const before = state.owners[owner];
  const published: Record<string, string> = {};
  for (const record of records) published[record] = before?.published[record] ?? now.toISOString();
  const entry: OwnerState = { published };
  const keptDeployed = deployed ?? before?.deployed;
  if (keptDeployed !== undefined) entry.deployed = keptDeployed;
  state.owners[owner] = entry;
  return entry;
}

function isState(value: unknown): value is TlsaState {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { version?: unknown; owners?: unknown };
  if (v.version !== 1 || typeof v.owners !== 'object' || v.owners === null) return false;
  return Object.values(v.owners).every(
    (o: unknown) =>
      typeof o === 'object' &&
      o !== null &&
      typeof (o as OwnerState).published === 'object' &&
      (o as OwnerState).published !== null &&
      Object.values((o as OwnerState).published).every(
        (t) => typeof t === 'string' && !Number.isNaN(Date.parse(t)),
      ) &&
      ((o as OwnerState).deployed === undefined || typeof (o as OwnerState).deployed === 'string'),
  );
}
