// DKIM key record parser: RFC 6376 §3.6.1 (the TXT record at selector._domainkey.domain),
// with the tag-list syntax of RFC 6376 §3.2, key rules of RFC 8301 (no SHA-1, RSA >= 1024 bits)
// and Ed25519 keys of RFC 8463. The service type "tlsrpt" is the one RFC 8460 §3 uses.

import { createPublicKey, type KeyObject } from 'node:crypto';
import { type Problem, problem } from '../common/errors.js';
import { shown } from '../common/text.js';
import { DkimError, type DkimErrorCode } from './error.js';

export type DkimKeyType = 'rsa' | 'ed25519';

export interface DkimTag {
  name: string;
  value: string;
}

export interface DkimKeyRecord {
  /** v: "DKIM1" when given. */
  version?: 'DKIM1';
  /** h, lower-cased; absent means every hash algorithm is allowed. */
  hashAlgorithms?: string[];
  /** k: "rsa" when not given. */
  keyType: DkimKeyType;
  /** n: free-text notes for humans. */
  notes?: string;
  /** p: the base64 key with whitespace removed; '' when the key is revoked. */
  publicKey: string;
  revoked: boolean;
  /** s, lower-cased: "*" when not given. */
  serviceTypes: string[];
  /** t, lower-cased: "y" testing, "s" strict. */
  flags: string[];
  /** Key size: the RSA modulus length, or 256 for Ed25519; absent when revoked. */
  keyBits?: number;
  /** How p is encoded: SubjectPublicKeyInfo (RFC 6376), PKCS#1 RSAPublicKey, or raw Ed25519 (RFC 8463). */
  keyFormat?: 'spki' | 'pkcs1' | 'raw';
  /** Tags this parser does not know (RFC 6376 §3.2: ignored), in record order. */
  unknownTags: DkimTag[];
}

export interface DkimParseResult {
  record: DkimKeyRecord;
  /** Severity 'warning' or 'note'; errors are thrown as DkimError. */
  warnings: Problem[];
}

/** RFC 8301 §3.2: verifiers MUST NOT accept RSA keys under 1024 bits; signers SHOULD use 2048 or more. */
export const DKIM_MIN_RSA_BITS = 1024;
export const DKIM_RECOMMENDED_RSA_BITS = 2048;

const KNOWN_TAGS: readonly string[] = ['v', 'h', 'k', 'n', 'p', 's', 't'];
const KNOWN_SERVICES: readonly string[] = ['*', 'email', 'tlsrpt'];
// RFC 6376 §3.2: FWS; inside a TXT record this is SP, TAB and line breaks.
const FWS = /[ \t\r\n]+/g;
// RFC 6376 §3.2: tag-name = ALPHA *ALNUMPUNC
const TAG_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
// RFC 6376 §2.10: hyphenated-word = ALPHA [ *(ALPHA / DIGIT / "-") (ALPHA / DIGIT) ]
const HYPHENATED_WORD = /^[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;

/** Parse one DKIM key TXT record (character-strings already joined). Throws DkimError on any error. */
export function parseDkimKey(text: string): DkimParseResult {
  const errors: Problem[] = [];
  const others: Problem[] = [];
  const fail = (code: DkimErrorCode, message: string, where?: string): undefined => {
    errors.push(problem('error', code, message, where));
    return undefined;
  };
  const add = (severity: 'warning' | 'note', code: string, message: string, where?: string) => {
    others.push(problem(severity, code, message, where));
  };

  const empty = trimFws(text) === '';
  if (empty) fail('DKIM_EMPTY', 'empty record: a DKIM key record needs at least p=');
  const tags = empty ? undefined : splitTags(text, fail);
  const byName = new Map<string, string>();
  tags?.forEach((tag, i) => {
    const where = `tag ${tag.name}`;
    if (byName.has(tag.name)) {
      fail('DKIM_DUPLICATE_TAG', `tag "${tag.name}" appears more than once (RFC 6376 §3.2)`, where);
      return;
    }
    byName.set(tag.name, tag.value);
    // RFC 6376 §3.6.1: v, if present, MUST be the first tag and MUST be "DKIM1".
    if (tag.name === 'v' && i !== 0)
      fail('DKIM_VERSION', 'v= must be the first tag (RFC 6376 §3.6.1)', where);
    if (tag.name === 'v' && tag.value !== 'DKIM1') {
      fail('DKIM_VERSION', `version must be "DKIM1", got "${shown(tag.value)}" (RFC 6376 §3.6.1)`, where);
    }
    if (!KNOWN_TAGS.includes(tag.name)) {
      const hint = KNOWN_TAGS.includes(tag.name.toLowerCase()) ? ' (tag names are case-sensitive)' : '';
      add('note', 'DKIM_UNKNOWN_TAG', `unknown tag "${tag.name}" is ignored${hint} (RFC 6376 §3.2)`, where);
    }
  });

  const words = (name: string): string[] | undefined => {
    const value = byName.get(name);
    if (value === undefined) return undefined;
    const list = value.split(':').map((w) => trimFws(w).toLowerCase());
    const bad = list.find((w) => !HYPHENATED_WORD.test(w) && !(name === 's' && w === '*'));
    if (bad !== undefined)
      return fail('DKIM_TAG_VALUE', `"${shown(bad)}" is not a valid ${name}= entry`, `tag ${name}`);
    return list;
  };

  // RFC 6376 §3.6.1 h=; RFC 8301 §3.1: sha1 MUST NOT be used.
  const hashAlgorithms = words('h');
  if (hashAlgorithms) {
    if (hashAlgorithms.includes('sha1')) {
      add(
        'warning',
        'DKIM_SHA1',
        'h= allows sha1, which verifiers must no longer accept (RFC 8301 §3.1)',
        'tag h',
      );
    }
    if (!hashAlgorithms.includes('sha256')) {
      add(
        'warning',
        'DKIM_NO_SHA256',
        'h= does not allow sha256: no current verifier can use this key',
        'tag h',
      );
    }
    for (const h of hashAlgorithms.filter((x) => x !== 'sha1' && x !== 'sha256')) {
      add('note', 'DKIM_UNKNOWN_HASH', `unknown hash algorithm "${h}" is ignored (RFC 6376 §3.6.1)`, 'tag h');
    }
  }

  // RFC 6376 §3.6.1 k= (default rsa); RFC 8463 §4.2 adds ed25519.
  const kValue = byName.get('k')?.toLowerCase() ?? 'rsa';
  const keyType = kValue === 'rsa' || kValue === 'ed25519' ? kValue : undefined;
  if (!keyType) fail('DKIM_KEY_TYPE', `unknown key type "${shown(kValue)}" (rsa or ed25519)`, 'tag k');

  // RFC 6376 §3.6.1 s= (default "*"); RFC 8460 §3 uses s=tlsrpt for TLS-RPT report signing keys.
  const serviceTypes = words('s') ?? ['*'];
  for (const s of serviceTypes.filter((x) => !KNOWN_SERVICES.includes(x))) {
    add('note', 'DKIM_UNKNOWN_SERVICE', `unknown service type "${s}" is ignored (RFC 6376 §3.6.1)`, 'tag s');
  }
  if (!serviceTypes.includes('*') && !serviceTypes.includes('email')) {
    add(
      'note',
      'DKIM_NOT_FOR_EMAIL',
      `s=${serviceTypes.join(':')}: mail verifiers will not use this key`,
      'tag s',
    );
  }

  // RFC 6376 §3.6.1 t=: y = testing, s = strict; unknown flags are ignored.
  const flags = words('t') ?? [];
  if (flags.includes('y')) {
    add(
      'warning',
      'DKIM_TESTING',
      't=y: the domain is testing DKIM and verifiers may ignore failures',
      'tag t',
    );
  }
  for (const f of flags.filter((x) => x !== 'y' && x !== 's')) {
    add('note', 'DKIM_UNKNOWN_FLAG', `unknown flag "${f}" is ignored (RFC 6376 §3.6.1)`, 'tag t');
  }

  // RFC 6376 §3.6.1 p= (required): base64, FWS allowed; an empty value means the key is revoked.
  const pValue = byName.get('p');
  const publicKey = pValue?.replace(FWS, '') ?? '';
  let key: KeyCheck | undefined;
  if (tags && pValue === undefined)
    fail('DKIM_MISSING_KEY', 'the p= tag (public key) is required (RFC 6376 §3.6.1)', 'tag p');
  if (pValue !== undefined && publicKey === '') {
    add(
      'warning',
      'DKIM_KEY_REVOKED',
      'p= is empty: this key is revoked and signatures with it fail',
      'tag p',
    );
  }
  if (publicKey !== '' && !isBase64(publicKey)) {
    fail('DKIM_KEY', 'p= is not valid base64', 'tag p');
  } else if (publicKey !== '' && keyType) {
    key = checkKey(keyType, Buffer.from(publicKey, 'base64'));
    if ('error' in key) fail('DKIM_KEY', key.error, 'tag p');
  }
  if (key && 'bits' in key) {
    if (key.format === 'pkcs1') {
      add(
        'warning',
        'DKIM_KEY_PKCS1',
        'p= holds a bare PKCS#1 RSAPublicKey; RFC 6376 §3.6.1 wants SubjectPublicKeyInfo and some verifiers reject this',
        'tag p',
      );
    }
    if (keyType === 'rsa' && key.bits < DKIM_MIN_RSA_BITS) {
      fail(
        'DKIM_KEY_TOO_SMALL',
        `RSA key of ${key.bits} bits: verifiers reject keys under 1024 bits (RFC 8301 §3.2)`,
        'tag p',
      );
    } else if (keyType === 'rsa' && key.bits < DKIM_RECOMMENDED_RSA_BITS) {
      add(
        'warning',
        'DKIM_KEY_WEAK',
        `RSA key of ${key.bits} bits: use at least 2048 bits (RFC 8301 §3.2)`,
        'tag p',
      );
    }
  }

  if (errors.length > 0 || !keyType) {
    const first = errors[0]!;
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
    throw new DkimError(first.code as DkimErrorCode, first.message + more, {
      where: first.where,
      problems: [...errors, ...others],
    });
  }
  const record: DkimKeyRecord = {
    keyType,
    publicKey,
    revoked: publicKey === '',
    serviceTypes,
    flags,
    unknownTags: (tags ?? []).filter((t) => !KNOWN_TAGS.includes(t.name)),
  };
  if (byName.has('v')) record.version = 'DKIM1';
  if (hashAlgorithms) record.hashAlgorithms = hashAlgorithms;
  if (byName.has('n')) record.notes = byName.get('n')!;
  if (key && 'bits' in key) {
    record.keyBits = key.bits;
    record.keyFormat = key.format;
  }
  return { record, warnings: others };
}

/** RFC 6376 §3.2 tag-list = tag-spec *( ";" tag-spec ) [ ";" ]; tag-spec = [FWS] name [FWS] "=" [FWS] value [FWS] */
function splitTags(
  text: string,
  fail: (code: DkimErrorCode, message: string, where?: string) => undefined,
): DkimTag[] {
  const parts = text.split(';');
  const tags: DkimTag[] = [];
  parts.forEach((part, i) => {
    const where = `tag ${i + 1}`;
    const body = trimFws(part);
    if (body === '') {
      if (i === 0 || i !== parts.length - 1) fail('DKIM_SYNTAX', 'empty tag (two ";" in a row?)', where);
      return;
    }
    const bad = /[^\x21-\x7e \t\r\n]/u.exec(body);
    if (bad) {
      fail(
        'DKIM_SYNTAX',
        `character "${shown(bad[0])}" is not allowed (printable ASCII and whitespace only)`,
        where,
      );
      return;
    }
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : trimFws(body.slice(0, eq));
    if (eq < 0 || !TAG_NAME.test(name)) {
      fail('DKIM_SYNTAX', `"${shown(body)}" is not a tag: expected name=value (RFC 6376 §3.2)`, where);
      return;
    }
    tags.push({ name, value: trimFws(body.slice(eq + 1)) });
  });
  return tags;
}

function isBase64(text: string): boolean {
  return text.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(text);
}

type KeyCheck = { bits: number; format: 'spki' | 'pkcs1' | 'raw' } | { error: string };

function checkKey(keyType: DkimKeyType, der: Buffer): KeyCheck {
  if (keyType === 'ed25519') {
    // RFC 8463 §4.2: p= is the raw 32-byte Ed25519 public key, not wrapped in SubjectPublicKeyInfo.
    if (der.length === 32) return { bits: 256, format: 'raw' };
    const wrapped = importKey(der, 'spki')?.asymmetricKeyType === 'ed25519';
    const hint = wrapped ? ' (this is a SubjectPublicKeyInfo: publish only its last 32 bytes)' : '';
    return { error: `an Ed25519 key is exactly 32 bytes, p= has ${der.length}${hint} (RFC 8463 §4.2)` };
  }
  const spki = importKey(der, 'spki');
  if (spki && spki.asymmetricKeyType !== 'rsa') {
    return { error: `p= holds a key of type ${spki.asymmetricKeyType}, but k=rsa` };
  }
  const key = spki ?? importKey(der, 'pkcs1');
  const bits = key?.asymmetricKeyDetails?.modulusLength;
  if (!key || bits === undefined)
    return { error: 'p= does not decode to an RSA public key (DER SubjectPublicKeyInfo)' };
  return { bits, format: spki ? 'spki' : 'pkcs1' };
}

function importKey(der: Buffer, type: 'spki' | 'pkcs1'): KeyObject | undefined {
  try {
    return createPublicKey({ key: der, format: 'der', type });
  } catch {
    return undefined;
  }
}

/** Removes FWS at both ends. A loop, because an anchored regex is quadratic on long runs of spaces. */
function trimFws(text: string): string {
  const isFws = (c: string | undefined) => c === ' ' || c === '\t' || c === '\r' || c === '\n';
  let start = 0;
  let end = text.length;
  while (start < end && isFws(text[start])) start++;
  while (end > start && isFws(text[end - 1])) end--;
  return text.slice(start, end);
}
