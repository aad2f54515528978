// DANE TLSA records (RFC 6698 §2, RFC 7218 mnemonics, RFC 7671): parse and format the presentation
// format, build owner names, and generate records from certificates.
import type { X509Certificate } from 'node:crypto';
import { type Problem, problem } from '../common/errors.js';
import { normalizeHost } from '../common/hostname.js';
import { associationData } from './cert.js';
import { DaneError, type DaneErrorCode } from './error.js';

export interface TlsaRecord {
  usage: number;
  selector: number;
  matchingType: number;
  data: Buffer;
}

// RFC 7218 §2: acronyms for the three TLSA fields.
export const USAGE_NAMES: Readonly<Record<number, string>> = {
  0: 'PKIX-TA',
  1: 'PKIX-EE',
  2: 'DANE-TA',
  3: 'DANE-EE',
  255: 'PrivCert',
};
export const SELECTOR_NAMES: Readonly<Record<number, string>> = { 0: 'Cert', 1: 'SPKI', 255: 'PrivSel' };
export const MATCHING_TYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'Full',
  1: 'SHA2-256',
  2: 'SHA2-512',
  255: 'PrivMatch',
};

// RFC 6698 §2.1.3: the digest lengths of the two defined hash matching types.
const DIGEST_BYTES: Readonly<Record<number, number>> = { 1: 32, 2: 64 };

type FieldName = 'usage' | 'selector' | 'matching type';
const FIELD_NAMES: Record<FieldName, Readonly<Record<number, string>>> = {
  usage: USAGE_NAMES,
  selector: SELECTOR_NAMES,
  'matching type': MATCHING_TYPE_NAMES,
};

/** "DANE-EE(3)", or just "7" for a value RFC 7218 gives no name. */
export function usageName(usage: number): string {
  return named(USAGE_NAMES, usage);
}
export function selectorName(selector: number): string {
  return named(SELECTOR_NAMES, selector);
}
export function matchingTypeName(matchingType: number): string {
  return named(MATCHING_TYPE_NAMES, matchingType);
}
function named(names: Readonly<Record<number, string>>, value: number): string {
  const name = names[value];
  return name === undefined ? String(value) : `${name}(${value})`;
}

/** "DANE-EE(3) SPKI(1) SHA2-256(1)" */
export function describeTlsa(r: TlsaRecord): string {
  return `${usageName(r.usage)} ${selectorName(r.selector)} ${matchingTypeName(r.matchingType)}`;
}

/**
 * Parse one field: a decimal 0-255 or its RFC 7218 mnemonic (case-insensitive). Throws DaneError naming the field.
 * `field` is "usage", "selector" or "matching type".
 */
export function parseTlsaField(field: FieldName, text: string): number {
  if (/^\d{1,5}$/.test(text)) {
    const value = Number(text);
    // RFC 6698 §2.1: each field is one octet.
    if (value <= 255) return value;
    throw new DaneError('DANE_TLSA_FIELD', `${field} ${value} is out of range (0-255)`, { where: field });
  }
  const names = FIELD_NAMES[field];
  for (const [value, name] of Object.entries(names)) {
    if (name.toLowerCase() === text.toLowerCase()) return Number(value);
  }
  const known = Object.values(names).join(', ');
  throw new DaneError('DANE_TLSA_FIELD', `"${text}" is not a number 0-255 or a known ${field} (${known})`, {
    where: field,
  });
}

// ---------------------------------------------------------------------------------------------------------
// Parsing

/**
 * Parse one TLSA record in presentation format (RFC 6698 §2.2): `3 1 1 <hex>`, optionally preceded by owner,
 * TTL, class and the type `TLSA` (`_25._tcp.mx.example.com. 3600 IN TLSA 3 1 1 ab cd ( ef )`). The hex may be
 * split by whitespace, newlines and parentheses; `;` starts a comment. RFC 3597 generic RDATA (`\# 35 0301...`)
 * is accepted too. A "(" that is never closed is tolerated at the end of the record (real zone data has it).
 * Unknown or private usage/selector/matching-type values parse; verification treats them as unusable.
 */
export function parseTlsa(text: string): TlsaRecord {
  return parseRecordText(text, undefined).record;
}

/** A record with the owner name and TTL it was written with, when present. */
export interface TlsaEntry {
  owner?: string;
  ttl?: number;
  record: TlsaRecord;
}

/**
 * Parse several records, one per line; blank lines and `;` comments are skipped, and a record whose "("
 * is still open continues on the following lines as in a zone file. A continuation line may hold only hex,
 * whitespace, parentheses and a comment: a line with anything else starts a new record (the open "(" of the
 * record before it is then tolerated as unclosed). Throws one DaneError listing the problems of every line.
 */
export function parseTlsaList(text: string): TlsaRecord[] {
  return parseTlsaEntries(text).map((entry) => entry.record);
}

export function parseTlsaEntries(text: string): TlsaEntry[] {
  const entries: TlsaEntry[] = [];
  const problems: Problem[] = [];
  for (const chunk of splitRecords(text)) {
    try {
      entries.push(parseRecordText(chunk.text, `line ${chunk.line}`));
    } catch (err) {
      if (!(err instanceof DaneError)) throw err;
      problems.push(...err.problems);
    }
  }
  const first = problems[0];
  if (first) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
    throw new DaneError(first.code as DaneErrorCode, `${first.message}${more}`, {
      where: first.where,
      problems,
    });
  }
  return entries;
}

const HEX_CONTINUATION = /^[\s0-9a-fA-F()]*$/;

function splitRecords(text: string): Array<{ line: number; text: string }> {
  const records: Array<{ line: number; text: string }> = [];
  let open: { line: number; text: string } | undefined;
  const lines = text.split(/\r?\n|\r/);
  for (const [index, rawLine] of lines.entries()) {
    const line = stripComment(rawLine);
    if (open && HEX_CONTINUATION.test(line)) {
      open.text += `\n${line}`;
      // Only this line can close the "(": looking at the whole record again would be quadratic.
      if (!stillOpen(line)) open = undefined;
      continue;
    }
    open = undefined;
    if (line.trim() === '') continue;
    const record = { line: index + 1, text: line };
    records.push(record);
    if (parenthesisOpen(line)) open = record;
  }
  return records;
}

function stripComment(line: string): string {
  const at = line.indexOf(';');
  return at < 0 ? line : line.slice(0, at);
}

function parenthesisOpen(text: string): boolean {
  return text.lastIndexOf('(') > text.lastIndexOf(')');
}

/** Whether a "(" open before `line` is still open after it. */
function stillOpen(line: string): boolean {
  const opened = line.lastIndexOf('(');
  const closed = line.lastIndexOf(')');
  return opened === closed || opened > closed; // equal only when both are -1: no parenthesis on the line
}

function parseRecordText(text: string, line: string | undefined): TlsaEntry {
  const at = (field?: string) => [line, field].filter(Boolean).join(', ') || undefined;
  const fail = (code: DaneErrorCode, message: string, field?: string): never => {
    throw new DaneError(code, message, { where: at(field) });
  };
  const tokens = tokenize(
    text
      .split(/\r?\n|\r/)
      .map(stripComment)
      .join('\n'),
    (message) => fail('DANE_TLSA_SYNTAX', message),
  );
  const typeAt = tokens.findIndex((t) => /^(TLSA|TYPE52)$/i.test(t));
  const prefix = typeAt < 0 ? [] : tokens.slice(0, typeAt);
  const rdata = typeAt < 0 ? tokens : tokens.slice(typeAt + 1);
  const entry: Omit<TlsaEntry, 'record'> = parsePrefix(prefix, (message) =>
    fail('DANE_TLSA_SYNTAX', message),
  );

  if (rdata[0] === '\\#') return { ...entry, record: parseGenericRdata(rdata.slice(1), fail) };
  if (rdata.length < 3) {
    const missing = ['usage', 'selector', 'matching type'][rdata.length];
    fail('DANE_TLSA_SYNTAX', `expected "usage selector matching-type data", the ${missing} is missing`);
  }
  const problems: Problem[] = [];
  const field = (name: FieldName, value: string): number => {
    try {
      return parseTlsaField(name, value);
    } catch (err) {
      if (!(err instanceof DaneError)) throw err;
      problems.push(problem('error', err.code, err.problems[0]?.message ?? err.message, at(name)));
      return 0;
    }
  };
  const usage = field('usage', rdata[0] ?? '');
  const selector = field('selector', rdata[1] ?? '');
  const matchingType = field('matching type', rdata[2] ?? '');
  let data = Buffer.alloc(0);
  const dataProblem = (message: string) =>
    problems.push(problem('error', 'DANE_TLSA_DATA', message, at('certificate association data')));
  const hex = rdata.slice(3).join('');
  const badToken = rdata.slice(3).find((t) => !/^[0-9a-fA-F]+$/.test(t));
  if (hex === '') dataProblem('missing (RFC 6698 §2.2: the certificate association data is required)');
  else if (badToken !== undefined) dataProblem(`"${shorten(badToken)}" is not hexadecimal`);
  else if (hex.length % 2 !== 0) dataProblem(`odd number of hex digits (${hex.length})`);
  else {
    data = Buffer.from(hex, 'hex');
    const lengthProblem = checkDataLength(matchingType, data.length);
    if (lengthProblem && !problems.some((p) => p.where === at('matching type'))) dataProblem(lengthProblem);
  }
  const first = problems[0];
  if (first)
    throw new DaneError(first.code as DaneErrorCode, first.message, { where: first.where, problems });
  return { ...entry, record: { usage, selector, matchingType, data } };
}

/** RFC 6698 §2.1.3: SHA2-256 data is 32 bytes, SHA2-512 data 64 bytes. */
function checkDataLength(matchingType: number, length: number): string | undefined {
  const expected = DIGEST_BYTES[matchingType];
  if (expected === undefined || expected === length) return undefined;
  return `matching type ${matchingTypeName(matchingType)} needs ${expected} bytes (${expected * 2} hex digits), got ${length}`;
}

function tokenize(text: string, fail: (message: string) => never): string[] {
  let depth = 0;
  for (const c of text) {
    if (c === '(') {
      if (depth > 0) fail('nested "(" (parentheses group one record and do not nest)');
      depth++;
    } else if (c === ')') {
      if (depth === 0) fail('")" without a "(" before it');
      depth--;
    }
  }
  return text
    .replace(/[()]/g, ' ')
    .split(/\s+/)
    .filter((t) => t !== '');
}

/** Owner, TTL and class before `TLSA` (RFC 1035 §5.1: `[owner] [TTL] [class] TYPE`, TTL and class either order). */
function parsePrefix(tokens: string[], fail: (message: string) => never): Omit<TlsaEntry, 'record'> {
  const entry: Omit<TlsaEntry, 'record'> = {};
  let classSeen = false;
  for (const [index, token] of tokens.entries()) {
    const ttl = parseTtl(token);
    if (ttl !== undefined && entry.ttl === undefined) entry.ttl = ttl;
    else if (/^(IN|CLASS1)$/i.test(token) && !classSeen) classSeen = true;
    else if (/^(CH|HS|CS|NONE|ANY|CLASS\d+)$/i.test(token)) fail(`class ${token}: TLSA records are class IN`);
    else if (index === 0) entry.owner = token;
    else fail(`unexpected "${shorten(token)}" before TLSA (expected owner, TTL and class)`);
  }
  return entry;
}

/** A TTL in seconds, or BIND's unit form (1h30m, 2d, 1w). */
function parseTtl(token: string): number | undefined {
  if (/^\d+$/.test(token)) return Number(token);
  if (!/^(\d+[smhdw])+$/i.test(token)) return undefined;
  const unit: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  let seconds = 0;
  for (const [, n, u] of token.toLowerCase().matchAll(/(\d+)([smhdw])/g))
    seconds += Number(n) * (unit[u ?? 's'] ?? 1);
  return seconds;
}

/** RFC 3597 §5: `\# <length> <hex>`; for TLSA the first three octets are usage, selector and matching type. */
function parseGenericRdata(
  tokens: string[],
  fail: (code: DaneErrorCode, message: string, field?: string) => never,
): TlsaRecord {
  const [lengthToken, ...hexTokens] = tokens;
  if (lengthToken === undefined || !/^\d+$/.test(lengthToken)) {
    fail('DANE_TLSA_SYNTAX', 'generic RDATA "\\#" must be followed by its length in octets');
  }
  const hex = hexTokens.join('');
  if (!/^([0-9a-fA-F]{2})*$/.test(hex))
    fail('DANE_TLSA_DATA', 'generic RDATA is not an even number of hex digits');
  const bytes = Buffer.from(hex, 'hex');
  if (bytes.length !== Number(lengthToken)) {
    fail('DANE_TLSA_DATA', `generic RDATA length is ${lengthToken} but ${bytes.length} octets follow`);
  }
  if (bytes.length < 4)
    fail('DANE_TLSA_DATA', 'generic RDATA is too short for a TLSA record (at least 4 octets)');
  const record = {
    usage: bytes[0] ?? 0,
    selector: bytes[1] ?? 0,
    matchingType: bytes[2] ?? 0,
    data: Buffer.from(bytes.subarray(3)),
  };
  const lengthProblem = checkDataLength(record.matchingType, record.data.length);
  if (lengthProblem) fail('DANE_TLSA_DATA', lengthProblem, 'certificate association data');
  return record;
}

function shorten(text: string): string {
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

// ---------------------------------------------------------------------------------------------------------
// Formatting and generation

/** `3 1 1 <lowercase hex>`, or with an owner `_25._tcp.mx.example.com. IN TLSA 3 1 1 <hex>`. */
export function formatTlsa(r: TlsaRecord, owner?: string): string {
  const rdata = `${r.usage} ${r.selector} ${r.matchingType} ${r.data.toString('hex')}`;
  return owner === undefined ? rdata : `${owner} IN TLSA ${rdata}`;
}

/**
 * The TLSA owner name for a TCP service (RFC 6698 §3, RFC 7672 §2.2.3 for SMTP: port 25):
 * `_25._tcp.mx.example.com.` The host is lower-cased and given a trailing dot.
 */
export function tlsaOwner(host: string, port = 25): string {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new DaneError('DANE_TLSA_OWNER', `port ${port} is not 0-65535`, { where: 'port' });
  }
  const name = normalizeHost(host);
  // RFC 1035 §2.3.4: labels of 1-63 octets, names up to 253 characters in text form.
  const labels = name.split('.');
  const badLabel = labels.find(
    (l) => l.length === 0 || l.length > 63 || !/^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$/.test(l),
  );
  if (name.length === 0 || name.length > 253 || badLabel !== undefined) {
    throw new DaneError('DANE_TLSA_OWNER', `"${host}" is not a valid host name`, { where: 'host' });
  }
  return `_${port}._tcp.${name}.`;
}

/**
 * The TLSA record that pins `cert` (RFC 6698 §2.1): selector 0 = the full certificate, 1 = its
 * SubjectPublicKeyInfo; matching type 0 = exact bytes, 1 = SHA-256, 2 = SHA-512. The usage is only a label here:
 * for DANE-TA(2) pass the trust anchor's certificate, for DANE-EE(3) the server's own.
 */
export function generateTlsa(
  cert: X509Certificate,
  usage: number,
  selector: number,
  matchingType: number,
): TlsaRecord {
  if (!Number.isInteger(usage) || usage < 0 || usage > 255) {
    throw new DaneError('DANE_TLSA_FIELD', `usage ${usage} is out of range (0-255)`, { where: 'usage' });
  }
  const data = associationData(cert, selector, matchingType);
  if (data === undefined) {
    const which = selector === 0 || selector === 1 ? `matching type ${matchingType}` : `selector ${selector}`;
    throw new DaneError(
      'DANE_UNSUPPORTED',
      `cannot generate a record for ${which} (known: selector 0-1, matching type 0-2)`,
      {
        where: selector === 0 || selector === 1 ? 'matching type' : 'selector',
      },
    );
  }
  return { usage, selector, matchingType, data };
}
