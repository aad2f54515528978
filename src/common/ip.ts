// IP addresses as numbers, for network membership (RFC 4632 CIDR prefixes, RFC 4291 §2.2 IPv6 text) in the
// layers that may not use node:net (protocol folders, architecture.test.ts).

/** The family and value of an IPv4 (dotted quad) or IPv6 (RFC 4291 §2.2) address; undefined for anything else. */
export function ipValue(address: string): { family: 4 | 6; value: bigint } | undefined {
  if (IPV4.test(address)) return { family: 4, value: ipv4Value(address) };
  return address.includes(':') ? ipv6(address) : undefined;
}

/** `address` is inside `network`/`prefix` (same family; the network's host bits are ignored). */
export function inNetwork(address: string, network: string, prefix: number): boolean {
  const a = ipValue(address);
  const n = ipValue(network);
  if (!a || !n || a.family !== n.family) return false;
  const width = a.family === 4 ? 32 : 128;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > width) return false;
  const shift = BigInt(width - prefix);
  return a.value >> shift === n.value >> shift;
}

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);

function ipv4Value(address: string): bigint {
  return address.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function ipv6(address: string): { family: 6; value: bigint } | undefined {
  let text = address.toLowerCase();
  const dotted = /:((?:\d+\.){3}\d+)$/.exec(text);
  if (dotted) {
    if (!IPV4.test(dotted[1]!)) return undefined;
    const v4 = ipv4Value(dotted[1]!);
    text = `${text.slice(0, dotted.index + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (part: string | undefined) => (part === undefined || part === '' ? [] : part.split(':'));
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  const all = [...head, ...tail];
  if (!all.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined;
  if (halves.length === 1 ? all.length !== 8 : all.length > 7) return undefined;
  const full = halves.length === 1 ? head : [...head, ...Array(8 - all.length).fill('0'), ...tail];
  return { family: 6, value: full.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g, 16)), 0n) };
}
