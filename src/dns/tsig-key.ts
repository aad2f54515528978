// TSIG keys (RFC 8945 §6) as people store them: BIND's `key "name" { algorithm hmac-sha256;
// secret "base64"; };` (tsig-keygen, ddns-confgen), Knot's YAML `key: - id/algorithm/secret`
// (keymgr -t) and the one-line `hmac-sha256:name:base64` that nsupdate -y and knsupdate -y take.
import { readFile } from 'node:fs/promises';
import { normalizeName, queryNameProblem } from './names.js';
import { DnsUpdateError } from './update-error.js';

export type TsigAlgorithm = 'hmac-sha256' | 'hmac-sha384' | 'hmac-sha512';
export interface TsigKey {
  name: string;
  algorithm: TsigAlgorithm;
  secret: Buffer;
}

export const TSIG_ALGORITHMS: readonly TsigAlgorithm[] = ['hmac-sha256', 'hmac-sha384', 'hmac-sha512'];

/** A key file is a few lines; anything bigger is not one. */
const MAX_KEY_FILE = 64 * 1024;

/** BIND/Knot `key "name" { algorithm hmac-sha256; secret "base64"; };` (tsig-keygen, keymgr -t) or `hmac-sha256:name:base64`. */
export function parseTsigKey(text: string, source: string): TsigKey {
  if (text.length > MAX_KEY_FILE) fail(source, `more than ${MAX_KEY_FILE} characters: not a key file`);
  const found = bindKey(text, source) ?? knotKey(text, source) ?? oneLineKey(text, source);
  if (found === undefined) {
    fail(
      source,
      'no TSIG key found: expected key "NAME" { algorithm hmac-sha256; secret "BASE64"; }; (tsig-keygen), ' +
        'Knot\'s "key: - id: NAME / algorithm / secret" (keymgr -t) or hmac-sha256:NAME:BASE64',
    );
  }
  return checkedKey(found, source);
}

export async function readTsigKeyFile(path: string): Promise<TsigKey> {
  let text: string;
  try {
    const bytes = await readFile(path);
    if (bytes.length > MAX_KEY_FILE) fail(path, `${bytes.length} bytes: not a key file`);
    text = bytes.toString('utf8');
  } catch (err) {
    if (err instanceof DnsUpdateError) throw err;
    throw new DnsUpdateError('TSIG_KEY_UNREADABLE', `cannot read TSIG key file: ${(err as Error).message}`, {
      where: path,
      cause: err,
    });
  }
  return parseTsigKey(text, path);
}

interface RawKey {
  name: string;
  algorithm: string;
  secret: string;
}

function fail(source: string, message: string): never {
  throw new DnsUpdateError('TSIG_KEY_SYNTAX', message, { where: source });
}

/** BIND named.conf syntax; comments are #, // and C-style. Only the first key is taken. */
function bindKey(text: string, source: string): RawKey | undefined {
  // Comments blanked, quoted strings kept whole: a base64 secret may hold "//".
  const plain = text.replace(/"[^"]*"|\/\*[\s\S]*?\*\/|(?:#|\/\/)[^\n]*/g, (m) =>
    m.startsWith('"') ? m : ' ',
  );
  const start = /\bkey\s+("([^"]*)"|([^\s{;"]+))\s*\{/.exec(plain);
  if (!start) return undefined;
  const end = plain.indexOf('}', start.index);
  if (end < 0) fail(source, `key "${start[2] ?? start[3]}": no closing }`);
  const body = plain.slice(start.index + start[0].length, end);
  const algorithm = /\balgorithm\s+"?([A-Za-z0-9-]+)"?\s*;/.exec(body)?.[1];
  const secret = /\bsecret\s+"([^"]*)"\s*;/.exec(body)?.[1];
  const name = start[2] ?? start[3]!;
  if (algorithm === undefined) fail(source, `key "${name}": no "algorithm NAME;"`);
  if (secret === undefined) fail(source, `key "${name}": no "secret "BASE64";"`);
  return { name, algorithm, secret };
}

/** Knot YAML as keymgr -t prints it: `key:` then `- id: NAME`, `algorithm: ALG`, `secret: BASE64`. */
function knotKey(text: string, source: string): RawKey | undefined {
  const lines = text.split('\n').map((l) => l.replace(/#.*/, '').trim());
  const keyAt = lines.indexOf('key:');
  if (keyAt < 0) return undefined;
  const fields: Record<string, string> = {};
  for (const line of lines.slice(keyAt + 1)) {
    if (line === '') continue;
    const field = /^(?:-\s*)?(id|algorithm|secret)\s*:\s*"?([^"\s]+)"?$/.exec(line);
    if (!field) break;
    if (line.startsWith('-') && fields.id !== undefined) break; // a second key
    fields[field[1]!] = field[2]!;
  }
  if (fields.id === undefined) fail(source, 'Knot key: no "- id: NAME" after "key:"');
  if (fields.algorithm === undefined) fail(source, `Knot key "${fields.id}": no "algorithm:"`);
  if (fields.secret === undefined) fail(source, `Knot key "${fields.id}": no "secret:"`);
  return { name: fields.id, algorithm: fields.algorithm, secret: fields.secret };
}

/** `[hmac-]ALG:NAME:BASE64` (nsupdate -y); the comment line keymgr -t prints has this form too. */
function oneLineKey(text: string, _source: string): RawKey | undefined {
  for (const raw of text.split('\n')) {
    const line = raw.replace(/^\s*#\s*/, '').trim();
    const match = /^([A-Za-z0-9-]+):([^:\s]+):([A-Za-z0-9+/=]+)$/.exec(line);
    if (match) return { algorithm: match[1]!, name: match[2]!, secret: match[3]! };
  }
  return undefined;
}

function checkedKey(raw: RawKey, source: string): TsigKey {
  const name = normalizeName(raw.name);
  const nameProblem = queryNameProblem(name);
  if (nameProblem !== undefined || name === '.') {
    fail(source, `key name "${raw.name}" is not a domain name${nameProblem ? `: ${nameProblem}` : ''}`);
  }
  let algorithm = raw.algorithm.toLowerCase().replace(/\.$/, '');
  if (!algorithm.startsWith('hmac-')) algorithm = `hmac-${algorithm}`;
  if (!(TSIG_ALGORITHMS as readonly string[]).includes(algorithm)) {
    fail(
      source,
      `key "${name}": algorithm "${raw.algorithm}" is not supported (one of ${TSIG_ALGORITHMS.join(', ')}; ` +
        'hmac-md5 and hmac-sha1 are obsolete, RFC 8945 §6)',
    );
  }
  // RFC 4648 §4 base64, padding optional
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(raw.secret) || raw.secret.replace(/=+$/, '').length % 4 === 1) {
    fail(source, `key "${name}": secret is not base64`);
  }
  const secret = Buffer.from(raw.secret, 'base64');
  if (secret.length === 0) fail(source, `key "${name}": secret is empty`);
  return { name, algorithm: algorithm as TsigAlgorithm, secret };
}
