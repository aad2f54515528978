// Resolver configuration: the --resolver option and resolv.conf parsing (from temp files only;
// no test ever sends a query to the system's resolvers).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DnsError } from '../../src/dns/error.js';
import { parseResolvConf, parseResolverOption, systemResolvers } from '../../src/dns/resolvconf.js';

describe('parseResolverOption', () => {
  const good: Array<[string, string, number]> = [
    ['192.0.2.1', '192.0.2.1', 53],
    ['127.0.0.1:5353', '127.0.0.1', 5353],
    [' 127.0.0.1:53 ', '127.0.0.1', 53],
    ['2001:db8::1', '2001:db8::1', 53],
    ['::1', '::1', 53],
    ['[::1]:5300', '::1', 5300],
    ['[2001:db8::53]', '2001:db8::53', 53],
    ['[::1]:65535', '::1', 65535],
    ['192.0.2.1:1', '192.0.2.1', 1],
  ];
  const bad: Array<[string, RegExp]> = [
    ['', /not an IP address/],
    ['dns.example.com', /not an IP address/],
    ['dns.example.com:53', /not an IP address/],
    ['1.2.3', /not an IP address/],
    ['1.2.3.256', /not an IP address/],
    ['192.0.2.1:', /port "" is not a number/],
    ['192.0.2.1:0', /port 0 is not 1-65535/],
    ['192.0.2.1:65536', /port 65536 is not 1-65535/],
    ['192.0.2.1:53a', /not a number/],
    ['192.0.2.1:-1', /not a number/],
    ['[::1', /put an IPv6 address in brackets/],
    ['[::1]:', /port "" is not a number/],
    ['[::1]53', /is not an IPv6 address|not an IP address/],
    ['[192.0.2.1]:53', /is not an IPv6 address/],
    ['[]:53', /is not an IPv6 address/],
    ['2001:db8::1:5353x', /put an IPv6 address in brackets/],
  ];
  for (const [spec, host, port] of good) {
    it(`accepts ${JSON.stringify(spec)}`, () => assert.deepEqual(parseResolverOption(spec), { host, port }));
  }
  for (const [spec, why] of bad) {
    it(`rejects ${JSON.stringify(spec)}`, () => {
      assert.throws(
        () => parseResolverOption(spec),
        (e: unknown) =>
          e instanceof DnsError &&
          e.code === 'DNS_BAD_RESOLVER' &&
          why.test(e.message) &&
          e.message.includes(`"${spec}"`),
      );
    });
  }
});

describe('parseResolvConf', () => {
  it('reads nameserver lines in order and skips everything else', () => {
    const text = [
      '# generated',
      'search example.test',
      'nameserver 192.0.2.53',
      '  nameserver   2001:db8::53  # trailing comment',
      '; nameserver 192.0.2.99',
      'nameserver not-an-address',
      'nameserver',
      'options timeout:1 attempts:2',
      'nameserver\t198.51.100.53\r',
    ].join('\n');
    assert.deepEqual(parseResolvConf(text), [
      { host: '192.0.2.53', port: 53 },
      { host: '2001:db8::53', port: 53 },
      { host: '198.51.100.53', port: 53 },
    ]);
  });

  it('uses at most three nameservers (MAXNS)', () => {
    const text = ['1', '2', '3', '4'].map((n) => `nameserver 192.0.2.${n}`).join('\n');
    assert.deepEqual(
      parseResolvConf(text).map((s) => s.host),
      ['192.0.2.1', '192.0.2.2', '192.0.2.3'],
    );
  });

  it('falls back to the local host when there is no nameserver line', () => {
    assert.deepEqual(parseResolvConf('search example.test\n'), [{ host: '127.0.0.1', port: 53 }]);
    assert.deepEqual(parseResolvConf(''), [{ host: '127.0.0.1', port: 53 }]);
  });
});

describe('systemResolvers', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mxguard-resolvconf-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the given file', async () => {
    const path = join(dir, 'resolv.conf');
    await writeFile(path, 'nameserver 127.0.0.53\noptions edns0\n');
    assert.deepEqual(await systemResolvers(path), [{ host: '127.0.0.53', port: 53 }]);
  });

  it('fails with a DnsError naming the file when it cannot be read', async () => {
    const path = join(dir, 'missing.conf');
    await assert.rejects(
      systemResolvers(path),
      (e: unknown) => e instanceof DnsError && e.code === 'DNS_RESOLV_CONF' && e.message.includes(path),
    );
  });
});
