// SPF macro expansion (src/spf/macro.ts) against RFC 7208 §7.4's own examples (sender
// strong-bad@email.example.com, client 192.0.2.3 or 2001:db8::cb01), the escapes of §7.1, upper-case
// letters URL-escaped, names over 253 characters cut from the left (§7.3), and %{h}/%{p} not expanded.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expandMacros, type MacroValues } from '../../src/spf/macro.js';

const V4: MacroValues = {
  local: 'strong-bad',
  senderDomain: 'email.example.com',
  domain: 'email.example.com',
  ip: '192.0.2.3',
  family: 4,
};
const V6: MacroValues = { ...V4, ip: '2001:db8::cb01', family: 6 };

describe('SPF macros', () => {
  it('RFC 7208 §7.4 examples', () => {
    const table: [string, string][] = [
      ['%{s}', 'strong-bad@email.example.com'],
      ['%{o}', 'email.example.com'],
      ['%{d}', 'email.example.com'],
      ['%{d4}', 'email.example.com'],
      ['%{d3}', 'email.example.com'],
      ['%{d2}', 'example.com'],
      ['%{d1}', 'com'],
      ['%{dr}', 'com.example.email'],
      ['%{d2r}', 'example.email'],
      ['%{l}', 'strong-bad'],
      ['%{l-}', 'strong.bad'],
      ['%{lr}', 'strong-bad'],
      ['%{lr-}', 'bad.strong'],
      ['%{l1r-}', 'strong'],
      ['%{ir}.%{v}._spf.%{d2}', '3.2.0.192.in-addr._spf.example.com'],
      ['%{lr-}.lp._spf.%{d2}', 'bad.strong.lp._spf.example.com'],
      ['%{lr-}.lp.%{ir}.%{v}._spf.%{d2}', 'bad.strong.lp.3.2.0.192.in-addr._spf.example.com'],
      ['%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}', '3.2.0.192.in-addr.strong.lp._spf.example.com'],
      ['%{d2}.trusted-domains.example.net', 'example.com.trusted-domains.example.net'],
    ];
    for (const [spec, expanded] of table) assert.equal(expandMacros(spec, V4), expanded, spec);
    assert.equal(
      expandMacros('%{ir}.%{v}._spf.%{d2}', V6),
      '1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com',
    );
  });

  it('escapes, URL-escaped upper-case letters, the 253-character cut, and what does not expand', () => {
    assert.equal(expandMacros('a%%b%_c%-d', V4), 'a%b c%20d');
    assert.equal(expandMacros('%{S}.x', V4), 'strong-bad%40email.example.com.x');
    const long = expandMacros(`${'%{d}.'.repeat(20)}end.example`, V4)!;
    assert.ok(long.length <= 253, String(long.length));
    assert.ok(long.endsWith('email.example.com.end.example'));
    assert.ok(!long.startsWith('.'));
    assert.equal(expandMacros('%{h}.helo.example', V4), undefined);
    assert.equal(expandMacros('%{p}.example', V4), undefined);
  });
});
