// TSIG (RFC 8945): sign a DNS message with an HMAC key and verify the signed response.
// The MAC covers the message without the TSIG record plus the "TSIG variables" (§4.3.3), and for a
// response also the request's MAC first (§4.3.1). Names enter the MAC in canonical wire form.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { normalizeName } from './names.js';
import type { TsigAlgorithm, TsigKey } from './tsig-key.js';

/** RFC 8945 §4.2: TYPE 250, CLASS ANY, TTL 0. */
const TSIG_TYPE = 250;
const CLASS_ANY = 255;
/** RFC 8945 §10: 300 seconds is the recommended fudge. */
export const TSIG_FUDGE = 300;

/** RFC 8945 §3 / RFC 2845: the TSIG error codes. */
export const TSIG_ERRORS: Readonly<Record<number, string>> = {
  16: 'BADSIG',
  17: 'BADKEY',
  18: 'BADTIME',
  22: 'BADTRUNC',
};

const HASH: Record<TsigAlgorithm, string> = {
  'hmac-sha256': 'sha256',
  'hmac-sha384': 'sha384',
  'hmac-sha512': 'sha512',
};

/** A TSIG record as read from a message. */
export interface TsigRecord {
  keyName: string;
  algorithm: string;
  timeSigned: number;
  fudge: number;
  mac: Buffer;
  originalId: number;
  error: number;
  otherData: Buffer;
}

/** Canonical (lower case, uncompressed) wire form of a domain name (RFC 4034 §6.2). */
export function wireName(name: string): Buffer {
  const n = normalizeName(name);
  if (n === '.' || n === '') return Buffer.from([0]);
  const parts: Buffer[] = [];
  for (const label of n.split('.')) {
    const bytes = Buffer.from(label, 'utf8');
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function uint48(value: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUIntBE(value, 0, 6);
  return b;
}

function uint16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value, 0);
  return b;
}

/** RFC 8945 §4.3.3: the TSIG variables that enter the MAC. */
function tsigVariables(t: Omit<TsigRecord, 'mac' | 'originalId'>): Buffer {
  return Buffer.concat([
    wireName(t.keyName),
    uint16(CLASS_ANY),
    Buffer.alloc(4), // TTL 0
    wireName(t.algorithm),
    uint48(t.timeSigned),
    uint16(t.fudge),
    uint16(t.error),
    uint16(t.otherData.length),
    t.otherData,
  ]);
}

function hmac(key: TsigKey, parts: Buffer[]): Buffer {
  const h = createHmac(HASH[key.algorithm], key.secret);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** RFC 8945 §4.3.1: a response's MAC starts with the request MAC, preceded by its length. */
function macInput(message: Buffer, vars: Buffer, requestMac?: Buffer): Buffer[] {
  return requestMac === undefined ? [message, vars] : [uint16(requestMac.length), requestMac, message, vars];
}

/**
 * Sign `message` (a complete DNS message without TSIG): append the TSIG record (RFC 8945 §4.2) and
 * count it in ARCOUNT. `timeSigned` is in seconds since the epoch.
 */
export function signMessage(
  message: Buffer,
  key: TsigKey,
  timeSigned: number,
  requestMac?: Buffer,
): { bytes: Buffer; mac: Buffer } {
  const fields = {
    keyName: key.name,
    algorithm: key.algorithm,
    timeSigned,
    fudge: TSIG_FUDGE,
    error: 0,
    otherData: Buffer.alloc(0),
  };
  const mac = hmac(key, macInput(message, tsigVariables(fields), requestMac));
  const rdata = Buffer.concat([
    wireName(key.algorithm),
    uint48(timeSigned),
    uint16(TSIG_FUDGE),
    uint16(mac.length),
    mac,
    uint16(message.readUInt16BE(0)), // original ID
    uint16(0), // error
    uint16(0), // other len
  ]);
  const record = Buffer.concat([
    wireName(key.name),
    uint16(TSIG_TYPE),
    uint16(CLASS_ANY),
    Buffer.alloc(4),
    uint16(rdata.length),
    rdata,
  ]);
  const bytes = Buffer.concat([message, record]);
  bytes.writeUInt16BE(message.readUInt16BE(10) + 1, 10);
  return { bytes, mac };
}

/** Read a possibly compressed name at `offset`; returns the name and the offset after it. */
function readName(msg: Buffer, offset: number): { name: string; next: number } {
  const labels: string[] = [];
  let pos = offset;
  let next = -1;
  for (let hops = 0; hops < 128; hops++) {
    if (pos >= msg.length) throw new RangeError('name runs past the message');
    const len = msg[pos]!;
    if (len === 0) return { name: labels.length ? labels.join('.') : '.', next: next < 0 ? pos + 1 : next };
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= msg.length) throw new RangeError('name pointer runs past the message');
      if (next < 0) next = pos + 2;
      pos = ((len & 0x3f) << 8) | msg[pos + 1]!;
      continue;
    }
    if ((len & 0xc0) !== 0) throw new RangeError('unknown label type');
    if (pos + 1 + len > msg.length) throw new RangeError('label runs past the message');
    labels.push(
      msg
        .subarray(pos + 1, pos + 1 + len)
        .toString('latin1')
        .toLowerCase(),
    );
    pos += 1 + len;
  }
  throw new RangeError('name has too many compression pointers');
}

/**
 * Split a message into the part the MAC covers (ARCOUNT minus the TSIG, §4.3.2) and its TSIG record,
 * which must be the last record (RFC 8945 §5.1). undefined when the message has no TSIG; throws
 * RangeError on a malformed message.
 */
export function splitTsig(msg: Buffer): { unsigned: Buffer; tsig: TsigRecord } | undefined {
  if (msg.length < 12) throw new RangeError('shorter than a DNS header');
  const counts = [4, 6, 8, 10].map((o) => msg.readUInt16BE(o));
  if (counts[3] === 0) return undefined;
  let pos = 12;
  for (let i = 0; i < counts[0]!; i++) pos = readName(msg, pos).next + 4;
  const records = counts[1]! + counts[2]! + counts[3]!;
  let lastStart = pos;
  for (let i = 0; i < records; i++) {
    lastStart = pos;
    pos = readName(msg, pos).next;
    if (pos + 10 > msg.length) throw new RangeError('record header runs past the message');
    pos += 10 + msg.readUInt16BE(pos + 8);
    if (pos > msg.length) throw new RangeError('record data runs past the message');
  }
  const owner = readName(msg, lastStart);
  if (msg.readUInt16BE(owner.next) !== TSIG_TYPE) return undefined;
  let p = owner.next + 10;
  const algorithm = readName(msg, p);
  p = algorithm.next;
  if (p + 10 > pos) throw new RangeError('TSIG record too short');
  const timeSigned = msg.readUIntBE(p, 6);
  const fudge = msg.readUInt16BE(p + 6);
  const macSize = msg.readUInt16BE(p + 8);
  p += 10;
  if (p + macSize + 6 > pos) throw new RangeError('TSIG MAC runs past the record');
  const mac = Buffer.from(msg.subarray(p, p + macSize));
  p += macSize;
  const originalId = msg.readUInt16BE(p);
  const error = msg.readUInt16BE(p + 2);
  const otherLen = msg.readUInt16BE(p + 4);
  if (p + 6 + otherLen > pos) throw new RangeError('TSIG other data runs past the record');
  const otherData = Buffer.from(msg.subarray(p + 6, p + 6 + otherLen));
  // RFC 8945 §4.3.2: the MAC covers the message with the original ID and ARCOUNT without the TSIG.
  const unsigned = Buffer.from(msg.subarray(0, lastStart));
  unsigned.writeUInt16BE(originalId, 0);
  unsigned.writeUInt16BE(counts[3]! - 1, 10);
  return {
    unsigned,
    tsig: {
      keyName: owner.name,
      algorithm: algorithm.name,
      timeSigned,
      fudge,
      mac,
      originalId,
      error,
      otherData,
    },
  };
}

/** Does the response's MAC (RFC 8945 §5.3) verify with `key` after the request's MAC? */
export function responseMacValid(
  unsigned: Buffer,
  tsig: TsigRecord,
  key: TsigKey,
  requestMac: Buffer,
): boolean {
  if (normalizeName(tsig.keyName) !== key.name || normalizeName(tsig.algorithm) !== key.algorithm)
    return false;
  const expected = hmac(key, macInput(unsigned, tsigVariables(tsig), requestMac));
  // RFC 8945 §5.2.2.1: a truncated MAC is allowed down to half the hash length; we accept only full MACs.
  return tsig.mac.length === expected.length && timingSafeEqual(tsig.mac, expected);
}
