import { hostNameProblem } from '../common/hostname.js';

// Domain name helpers: the form names are compared in, host name syntax (RFC 1123 §2.1,
// RFC 952, RFC 3696 §2) and the limits of the wire format (RFC 1035 §2.3.4, §3.1).

/** ASCII lower case, one trailing dot removed; the root stays ".". DNS compares names this way (RFC 4343). */
export function normalizeName(name: string): string {
  const lower = name.replace(/[A-Z]+/g, (s) => s.toLowerCase());
  if (lower === '.' || !lower.endsWith('.')) return lower;
  return lower.slice(0, -1);
}

export function sameName(a: string, b: string): boolean {
  return normalizeName(a) === normalizeName(b);
}

/**
 * Why `name` cannot be sent in a query, or undefined when it can.
 * RFC 1035 §2.3.4: labels are 1-63 octets, the whole name at most 255 octets on the wire.
 */
export function queryNameProblem(name: string): string | undefined {
  const n = normalizeName(name);
  if (n === '.') return undefined;
  if (n === '') return 'empty name';
  let wireLength = 1; // the root label
  for (const label of n.split('.')) {
    const octets = Buffer.byteLength(label, 'utf8');
    if (octets === 0) return `empty label in "${name}"`;
    if (octets > 63) return `label "${label}" is ${octets} octets, more than 63`;
    wireLength += octets + 1;
  }
  if (wireLength > 255) return `name is ${wireLength} octets on the wire, more than 255`;
  return undefined;
}

/**
 * Why `name` is not a valid host name, or undefined when it is: the one validator (common/hostname.ts:
 * RFC 5321 §4.1.2 LDH labels within the RFC 1035 limits), plus RFC 3696 §2: the last label is not all
 * digits (so an IP address is not a host name).
 */
export function hostnameProblem(name: string): string | undefined {
  const n = normalizeName(name);
  if (n === '' || n === '.') return 'empty host name';
  const problem = hostNameProblem(n);
  if (problem !== undefined) return problem;
  if (/^[0-9]+$/.test(n.slice(n.lastIndexOf('.') + 1))) return `last label of "${name}" is all digits`;
  return undefined;
}

export function isValidHostname(name: string): boolean {
  return hostnameProblem(name) === undefined;
}
