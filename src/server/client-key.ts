// The key under which a client address is counted by every per-client limit of `serve` (intake rate,
// login throttle, SMTP connections and messages).
//
// An IPv6 host usually gets a whole /64 (RFC 7421: the interface identifier is the low 64 bits; one
// subscriber routinely holds 2^64 addresses), so counting per /128 lets one client take any number of
// fresh keys. IPv6 addresses are therefore counted per /64; IPv4-mapped addresses (::ffff:a.b.c.d,
// RFC 4291 §2.5.5.2), which a dual-stack listener reports for IPv4 clients, count as the IPv4 address.
import { isIPv4, isIPv6 } from 'node:net';

/** `a.b.c.d` for IPv4 (mapped or not), `x:x:x:x::/64` for IPv6, the input itself for anything else. */
export function clientKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  if (isIPv4(address)) return address;
  const bare = address.replace(/%.*$/, ''); // a zone index (fe80::1%eth0) is not part of the address
  if (!isIPv6(bare)) return address;
  const groups = expandIpv6(bare);
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` and an embedded IPv4 tail expanded). */
function expandIpv6(address: string): number[] {
  let text = address.toLowerCase();
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length;
  return [...headGroups, ...Array<string>(zeros).fill('0'), ...tailGroups].map((g) => Number.parseInt(g, 16));
}
