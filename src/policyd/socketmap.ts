// The Postfix socketmap protocol (socketmap_table(5)) as the TLS policy table speaks it: the request is
// the netstring "<map name> <key>", the key being the next-hop domain; the reply is a netstring
// "OK <data>", "NOTFOUND ", "TEMP <reason>", "TIMEOUT <reason>" or "PERM <reason>". Here: the request
// key, its reduction to a recipient domain, and the replies, built once and reused as Buffers.
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { hostNameProblem } from '../common/hostname.js';
import { ANSWER_KINDS, type AnswerKind } from '../sender/decide.js';
import { encodeNetstring } from './netstring.js';

/** Map names longer than this are refused (Postfix sends "postfix" or whatever main.cf names). */
export const MAX_NAME_BYTES = 64;
/** Keys longer than this are refused (a domain name has at most 253 characters). */
export const MAX_KEY_BYTES = 1024;
/** The longest request netstring payload accepted: name, one space, key. */
export const MAX_REQUEST_BYTES = MAX_NAME_BYTES + 1 + MAX_KEY_BYTES;

/** A reply ready to be written: its kind (for metrics), text, and netstring bytes. */
export interface Reply {
  kind: AnswerKind;
  /** Index of `kind` in ANSWER_KINDS (for counting without a string lookup). */
  kindIndex: number;
  text: string;
  bytes: Buffer;
}

export function makeReply(kind: AnswerKind, text: string): Reply {
  return { kind, kindIndex: ANSWER_KINDS.indexOf(kind), text, bytes: encodeNetstring(text) };
}

/** socketmap_table(5): "NOTFOUND " (with the space) when the key is not in the table. */
export const NOTFOUND_REPLY: Reply = makeReply('notfound', 'NOTFOUND ');

export function permReply(reason: string): Reply {
  return makeReply('perm', `PERM ${reason}`);
}

const SPACE = 0x20;

/**
 * The key of a request "<name> <key>" (the bytes after the first space), or undefined when there is
 * no space within MAX_NAME_BYTES + 1 bytes or the name is empty. The map name itself is not checked:
 * Postfix sends whatever name main.cf gives (postfix-mta-sts-resolver's examples use "postfix").
 */
export function requestKey(buffer: Buffer, start: number, end: number): string | undefined {
  const limit = Math.min(end, start + MAX_NAME_BYTES + 1);
  for (let i = start; i < limit; i++) {
    if (buffer[i] === SPACE) return i === start ? undefined : buffer.toString('utf8', i + 1, end);
  }
  return undefined;
}

export type KeyResult = { domain: string } | { notFound: string };

const BRACKETED = /^\[([^\]]*)\](?::([0-9]{1,5}))?$/;
const HOST_PORT = /^([^:[\]]+):([0-9]{1,5})$/;

/**
 * Reduce a TLS policy lookup key to the recipient domain whose policy applies, or say why there is
 * none. Postfix looks up the next-hop domain, then (with parent_domain_matches_subdomains) parent
 * domains written with a leading dot; a relay next hop is "[host]:port" or "host:port".
 */
export function normalizeKey(key: string): KeyResult {
  if (key === '') return { notFound: 'empty key' };
  // RFC 8461 §3.4: the policy of a parent domain never applies to a subdomain; Postfix's ".example.com"
  // keys ask exactly that.
  if (key.startsWith('.'))
    return { notFound: 'parent-domain key (leading dot): MTA-STS never applies to subdomains' };
  let host = key;
  const bracketed = BRACKETED.exec(key) ?? HOST_PORT.exec(key);
  if (bracketed) host = bracketed[1]!;
  if (isIP(host) !== 0 || /^ipv6:/i.test(host)) return { notFound: 'an address, not a domain' };
  host = host.toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (/[^\x20-\x7e]/.test(host)) host = domainToASCII(host);
  if (host === '') return { notFound: `"${clip(key)}" is not a domain name` };
  const problem = hostNameProblem(host);
  if (problem !== undefined) return { notFound: `"${clip(key)}" is not a domain name: ${problem}` };
  if (!host.includes('.')) return { notFound: `"${clip(key)}" is a single label, not a mail domain` };
  return { domain: host };
}

function clip(text: string, max = 80): string {
  return text.length > max ? `${text.slice(0, max)}...` : text;
}
