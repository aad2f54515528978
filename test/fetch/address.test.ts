// isPrivateAddress / privateAddressReason: the anti-SSRF rule of the network commands, as tables
// (IPv4, IPv6, IPv4-mapped and NAT64 IPv6, not addresses) and properties.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isPrivateAddress, privateAddressReason } from '../../src/fetch/address.js';

const PUBLIC_V4 = [
  '8.8.8.8',
  '1.1.1.1',
  '9.9.9.9',
  '100.63.255.255',
  '100.128.0.0',
  '172.15.255.255',
  '172.32.0.1',
  '192.167.255.255',
  '192.169.0.1',
  '198.17.255.255',
  '198.20.0.1',
  '223.255.255.255',
  '11.0.0.1',
  '126.255.255.255',
  '128.0.0.1',
  '169.253.255.255',
  '169.255.0.1',
  '192.0.1.1',
  '192.0.3.1',
];

const PRIVATE_V4: Array<[string, RegExp]> = [
  ['0.0.0.0', /unspecified/],
  ['0.1.2.3', /this network/],
  ['10.0.0.1', /private/],
  ['10.255.255.255', /private/],
  ['100.64.0.1', /CGNAT/],
  ['100.127.255.255', /CGNAT/],
  ['127.0.0.1', /loopback/],
  ['127.255.255.254', /loopback/],
  ['169.254.0.1', /link-local/],
  ['169.254.169.254', /link-local/],
  ['172.16.0.1', /private/],
  ['172.31.255.255', /private/],
  ['192.0.0.8', /IETF/],
  ['192.0.2.1', /documentation/],
  ['192.168.1.1', /private/],
  ['198.18.0.1', /benchmarking/],
  ['198.19.255.255', /benchmarking/],
  ['198.51.100.7', /documentation/],
  ['203.0.113.9', /documentation/],
  ['224.0.0.1', /multicast/],
  ['239.255.255.250', /multicast/],
  ['240.0.0.1', /reserved/],
  ['255.255.255.255', /broadcast/],
];

const PUBLIC_V6 = [
  '2001:4860:4860::8888',
  '2606:4700:4700::1111',
  '2a00:1450:4001:80b::200e',
  '2620:fe::fe',
  '2001:200::1',
  '3ffe::1',
  '2A00:1450:4001:80B::200E',
];

const PRIVATE_V6: Array<[string, RegExp]> = [
  ['::', /unspecified/],
  ['::1', /loopback/],
  ['0:0:0:0:0:0:0:1', /loopback/],
  ['::7f00:1', /IPv4-compatible/],
  ['100::1', /discard/],
  ['fc00::1', /unique-local/],
  ['fd12:3456:789a::1', /unique-local/],
  ['FD00::1', /unique-local/],
  ['fe80::1', /link-local/],
  ['fe80::1%eth0', /link-local/],
  ['febf::1', /link-local/],
  ['fec0::1', /site-local/],
  ['ff02::1', /multicast/],
  ['ff05::1:3', /multicast/],
  ['2001:db8::1', /documentation/],
  ['3fff::1', /documentation/],
  ['2001::1', /IETF/],
  ['2002:c000:0204::1', /6to4/],
  ['64:ff9b:1::1', /local-use NAT64/],
  ['4000::1', /not global unicast/],
  ['1234::1', /not global unicast/],
  ['e000::1', /not global unicast/],
];

// IPv4-mapped and NAT64 addresses are judged by the IPv4 address inside.
const EMBEDDED: Array<[string, boolean]> = [
  ['::ffff:127.0.0.1', true],
  ['::FFFF:127.0.0.1', true],
  ['::ffff:7f00:1', true],
  ['0:0:0:0:0:ffff:7f00:1', true],
  ['::ffff:10.1.2.3', true],
  ['::ffff:169.254.169.254', true],
  ['::ffff:192.168.0.1', true],
  ['::ffff:100.64.0.1', true],
  ['::ffff:0.0.0.0', true],
  ['::ffff:224.0.0.1', true],
  ['::ffff:8.8.8.8', false],
  ['::ffff:808:808', false],
  ['64:ff9b::127.0.0.1', true],
  ['64:ff9b::10.0.0.1', true],
  ['64:ff9b::c0a8:101', true],
  ['64:ff9b::8.8.8.8', false],
  ['64:ff9b::101:101', false],
];

const NOT_ADDRESSES = [
  '',
  'localhost',
  'mta-sts.example.com',
  '1.2.3',
  '01.2.3.4',
  '256.1.1.1',
  '1.2.3.4.5',
  ':::1',
  '2001:db8::g',
  '[::1]',
  ' 8.8.8.8',
  '8.8.8.8/32',
];

describe('isPrivateAddress', () => {
  it('IPv4 public addresses pass', () => {
    for (const ip of PUBLIC_V4) assert.equal(privateAddressReason(ip), undefined, ip);
  });
  it('IPv4 special-purpose addresses are refused, with the reason', () => {
    for (const [ip, reason] of PRIVATE_V4) {
      assert.equal(isPrivateAddress(ip), true, ip);
      assert.match(privateAddressReason(ip) ?? '', reason, ip);
    }
  });
  it('IPv6 global unicast addresses pass', () => {
    for (const ip of PUBLIC_V6) assert.equal(privateAddressReason(ip), undefined, ip);
  });
  it('IPv6 special-purpose and non-global addresses are refused, with the reason', () => {
    for (const [ip, reason] of PRIVATE_V6) {
      assert.equal(isPrivateAddress(ip), true, ip);
      assert.match(privateAddressReason(ip) ?? '', reason, ip);
    }
  });
  it('IPv4-mapped and NAT64 IPv6 addresses follow the IPv4 address inside', () => {
    for (const [ip, expected] of EMBEDDED) assert.equal(isPrivateAddress(ip), expected, ip);
  });
  it('anything that is not an IP address is refused', () => {
    for (const text of NOT_ADDRESSES) {
      assert.equal(isPrivateAddress(text), true, JSON.stringify(text));
      assert.equal(privateAddressReason(text), 'not an IP address');
    }
  });

  it('property: an IPv4 address, its mapped and its NAT64 forms agree', () => {
    fc.assert(
      fc.property(fc.ipV4(), (ip) => {
        const expected = isPrivateAddress(ip);
        assert.equal(isPrivateAddress(`::ffff:${ip}`), expected);
        assert.equal(isPrivateAddress(`64:ff9b::${ip}`), expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: IPv6 outside 2000::/3 is refused unless it carries a public IPv4 address', () => {
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        const first = Number.parseInt(ip.split(':')[0] || '0', 16);
        const inGlobalUnicast = (first & 0xe000) === 0x2000;
        const embedsIpv4 = /^::ffff:|^64:ff9b::/i.test(ip);
        if (!inGlobalUnicast && !embedsIpv4) assert.equal(isPrivateAddress(ip), true, ip);
      }),
      { numRuns: 2000 },
    );
  });

  it('fuzz: any string gives a boolean, never an exception', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (text) => {
        assert.equal(typeof isPrivateAddress(text), 'boolean');
      }),
      { numRuns: 2000 },
    );
  });
});
