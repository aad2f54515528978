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

const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

/**
 * Why `name` is not a valid host name, or undefined when it is.
 * RFC 1123 §2.1: letters, digits and hyphens (LDH), labels 1-63 characters that neither start nor
 * end with a hyphen, at most 253 characters without the trailing dot. RFC 3696 §2: the last label
 * is not all digits (so an IP address is not a host name).
 */
export function hostnameProblem(name: string): string | undefined {
  const n = normalizeName(name);
  if (n === '' || n === '.') return 'empty host name';
  if (n.length > 253) return `host name is ${n.length} characters, more than 253`;
  const labels = n.split('.');
  for (const label of labels) {
    if (label === '') return `empty label in "${name}"`;
    if (label.length > 63) return `label "${label}" is ${label.length} characters, more than 63`;
    if (!LDH_LABEL.test(label)) {
      return `label "${label}" is not letters, digits and inner hyphens (LDH)`;
    }
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) return `last label of "${name}" is all digits`;
  return undefined;
}

export function isValidHostname(name: string): boolean {
  return hostnameProblem(name) === undefined;
}
