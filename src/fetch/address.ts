// Which IP addresses the network commands refuse to connect to unless `--allow-private` is given:
// everything that is not public unicast, so that `mxguard check` cannot be turned into a scanner of
// private networks by a domain whose DNS points at them (ARCHITECTURE.md, "Common options").
// Ranges: the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and its updates).
//
// IPv4: refused inside one of SPECIAL_IPV4.
// IPv6: IPv4-mapped (::ffff:0:0/96, RFC 4291 §2.5.5.2) and NAT64 (64:ff9b::/96, RFC 6052) addresses
// are judged by the IPv4 address they carry; any other address must be global unicast (2000::/3,
// RFC 4291 §2.4) outside SPECIAL_IPV6. A string that is not an IP address counts as private
// (fail closed).
import { BlockList, isIP } from 'node:net';

/** [network, prefix length, what it is]. */
type Range = readonly [string, number, string];

const SPECIAL_IPV4: readonly Range[] = [
  ['0.0.0.0', 8, 'unspecified / "this network" (RFC 791)'],
  ['10.0.0.0', 8, 'private (RFC 1918)'],
  ['100.64.0.0', 10, 'shared address space / CGNAT (RFC 6598)'],
  ['127.0.0.0', 8, 'loopback (RFC 1122)'],
  ['169.254.0.0', 16, 'link-local (RFC 3927)'],
  ['172.16.0.0', 12, 'private (RFC 1918)'],
  ['192.0.0.0', 24, 'IETF protocol assignments (RFC 6890)'],
  ['192.0.2.0', 24, 'documentation (RFC 5737)'],
  ['192.168.0.0', 16, 'private (RFC 1918)'],
  ['198.18.0.0', 15, 'benchmarking (RFC 2544)'],
  ['198.51.100.0', 24, 'documentation (RFC 5737)'],
  ['203.0.113.0', 24, 'documentation (RFC 5737)'],
  ['224.0.0.0', 4, 'multicast (RFC 5771)'],
  ['240.0.0.0', 4, 'reserved / limited broadcast (RFC 1112, RFC 919)'],
];

// Outside 2000::/3 every address is refused; these name the common cases, the last ones are
// blocks inside 2000::/3 that are not public unicast.
const SPECIAL_IPV6: readonly Range[] = [
  ['::', 128, 'unspecified (RFC 4291)'],
  ['::1', 128, 'loopback (RFC 4291)'],
  ['::', 96, 'IPv4-compatible, deprecated (RFC 4291)'],
  ['100::', 64, 'discard-only (RFC 6666)'],
  ['64:ff9b:1::', 48, 'local-use NAT64 (RFC 8215)'],
  ['fc00::', 7, 'unique-local (RFC 4193)'],
  ['fe80::', 10, 'link-local (RFC 4291)'],
  ['fec0::', 10, 'site-local, deprecated (RFC 3879)'],
  ['ff00::', 8, 'multicast (RFC 4291)'],
  ['2001::', 23, 'IETF protocol assignments (RFC 2928)'],
  ['2001:db8::', 32, 'documentation (RFC 3849)'],
  ['2002::', 16, '6to4, deprecated (RFC 7526)'],
  ['3fff::', 20, 'documentation (RFC 9637)'],
];

interface Rule {
  list: BlockList;
  what: string;
}

const rules: Rule[] = [
  ...SPECIAL_IPV4.map(([network, prefix, what]) => {
    const list = new BlockList();
    // BlockList applies IPv4 rules to ::ffff:a.b.c.d itself; NAT64 needs its own copy.
    list.addSubnet(network, prefix, 'ipv4');
    list.addSubnet(`64:ff9b::${network}`, 96 + prefix, 'ipv6');
    return { list, what };
  }),
  ...SPECIAL_IPV6.map(([network, prefix, what]) => {
    const list = new BlockList();
    list.addSubnet(network, prefix, 'ipv6');
    return { list, what };
  }),
];

const embeddedIpv4 = new BlockList();
embeddedIpv4.addSubnet('::ffff:0:0', 96, 'ipv6');
embeddedIpv4.addSubnet('64:ff9b::', 96, 'ipv6');

const globalUnicast = new BlockList();
globalUnicast.addSubnet('2000::', 3, 'ipv6');

/**
 * Why `ip` is refused without `--allow-private` ("loopback (RFC 1122)"), or undefined for a
 * public unicast address. An IPv6 zone ("fe80::1%eth0") is ignored.
 */
export function privateAddressReason(ip: string): string | undefined {
  const address = ip.replace(/%.*$/s, '');
  const family = isIP(address);
  if (family === 0) return 'not an IP address';
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const rule = rules.find((r) => r.list.check(address, type));
  if (rule) return rule.what;
  if (family === 4 || embeddedIpv4.check(address, 'ipv6')) return undefined;
  return globalUnicast.check(address, 'ipv6') ? undefined : 'reserved, not global unicast (RFC 4291)';
}

/**
 * True when `ip` is not a public unicast address: private, loopback, link-local, unique-local,
 * CGNAT, multicast, unspecified, documentation or reserved (IPv4, IPv6, IPv4-mapped and NAT64
 * IPv6), and for any string that is not an IP address.
 */
export function isPrivateAddress(ip: string): boolean {
  return privateAddressReason(ip) !== undefined;
}
