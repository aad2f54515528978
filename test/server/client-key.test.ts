import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientKey } from '../../src/server/client-key.js';

test('clientKey: IPv4 as is, IPv4-mapped IPv6 as its IPv4 address', () => {
  assert.equal(clientKey('192.0.2.7'), '192.0.2.7');
  assert.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(clientKey('::FFFF:192.0.2.7'), '192.0.2.7');
});

test('clientKey: every address of one IPv6 /64 shares one key, another /64 does not', () => {
  const keys = ['2001:db8:1:2::1', '2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:DB8:1:2:0:0:0:9'].map(clientKey);
  assert.deepEqual(new Set(keys), new Set(['2001:db8:1:2::/64']));
  assert.notEqual(clientKey('2001:db8:1:3::1'), keys[0]);
  assert.equal(clientKey('::1'), '0:0:0:0::/64');
  assert.equal(clientKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.equal(clientKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
});

test('clientKey: anything that is not an address is its own key', () => {
  assert.equal(clientKey('unix-socket'), 'unix-socket');
  assert.equal(clientKey(''), '');
});
