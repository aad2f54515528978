// RFC 8461 §3.2 mx pattern syntax and §4.1 MX host matching.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { hostNameProblem, normalizeHost } from '../../src/common/hostname.js';
import { mxPatternMatches, policyCoversMx, validateMxPattern } from '../../src/mtasts/match.js';
import type { StsPolicy } from '../../src/mtasts/policy.js';

describe('normalizeHost', () => {
  const cases: Array<[string, string]> = [
    ['MX1.Example.COM', 'mx1.example.com'],
    ['mx1.example.com.', 'mx1.example.com'],
    ['*.Example.Net.', '*.example.net'],
    ['a', 'a'],
  ];
  for (const [input, expected] of cases) {
    it(`${input} -> ${expected}`, () => assert.equal(normalizeHost(input), expected));
  }
});

describe('mxPatternMatches (RFC 8461 §4.1)', () => {
  const matches: Array<[string, string]> = [
    ['mail.example.com', 'mail.example.com'],
    ['mail.example.com', 'MAIL.EXAMPLE.COM'],
    ['MAIL.example.com', 'mail.example.com.'],
    ['mail.example.com.', 'mail.example.com'],
    ['*.example.com', 'mx1.example.com'],
    ['*.example.com', 'MX1.EXAMPLE.COM.'],
    ['*.EXAMPLE.com', 'a.example.com'],
    ['*.mail.protection.outlook.com', 'contoso-com.mail.protection.outlook.com'],
    ['*.gmail-smtp-in.l.google.com', 'alt1.gmail-smtp-in.l.google.com'],
  ];
  const misses: Array<[string, string]> = [
    ['*.example.com', 'example.com'],
    ['*.example.com', 'a.b.example.com'],
    ['*.example.com', 'aexample.com'],
    ['*.example.com', '.example.com'],
    ['*.example.com', 'mx1.example.net'],
    ['mail.example.com', 'mx.mail.example.com'],
    ['mail.example.com', 'example.com'],
    ['example.com', '*.example.com'],
    ['*.mx.microsoft', 'tenant.x-v1.mx.microsoft'],
    ['mx1.example.com', 'mx2.example.com'],
  ];
  for (const [pattern, host] of matches) {
    it(`${pattern} matches ${host}`, () => assert.equal(mxPatternMatches(pattern, host), true));
  }
  for (const [pattern, host] of misses) {
    it(`${pattern} does not match ${host}`, () => assert.equal(mxPatternMatches(pattern, host), false));
  }

  const label = fc.string({ unit: fc.constantFrom(...'abcz09-'), minLength: 1, maxLength: 10 });
  const domain = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.'));

  it('a host matches itself in any case, with or without a trailing dot', () => {
    fc.assert(
      fc.property(domain, fc.boolean(), (d, dot) => {
        assert.ok(mxPatternMatches(d, `${d.toUpperCase()}${dot ? '.' : ''}`));
      }),
    );
  });

  it('"*.d" matches exactly one extra label, never zero or two', () => {
    fc.assert(
      fc.property(domain, label, label, (d, a, b) => {
        assert.ok(mxPatternMatches(`*.${d}`, `${a}.${d}`));
        assert.ok(!mxPatternMatches(`*.${d}`, d));
        assert.ok(!mxPatternMatches(`*.${d}`, `${a}.${b}.${d}`));
      }),
    );
  });
});

describe('policyCoversMx', () => {
  const policy: StsPolicy = {
    mode: 'enforce',
    maxAge: 604800,
    mx: ['mail.example.com', '*.example.net', 'backupmx.example.com'],
    extensions: [],
  };
  it('covers listed hosts and one-label wildcard children', () => {
    for (const host of ['mail.example.com', 'BACKUPMX.example.com.', 'mx.example.net']) {
      assert.equal(policyCoversMx(policy, host), true, host);
    }
  });
  it('does not cover others', () => {
    for (const host of ['example.net', 'a.b.example.net', 'mx.example.com', 'mail.example.org']) {
      assert.equal(policyCoversMx(policy, host), false, host);
    }
  });
  it('a policy without mx covers nothing', () => {
    assert.equal(policyCoversMx({ ...policy, mode: 'none', mx: [] }, 'mail.example.com'), false);
  });
});

describe('validateMxPattern (RFC 8461 §3.2: ["*."] Domain)', () => {
  const good = [
    'mail.example.com',
    '*.example.net',
    'MAIL.EXAMPLE.COM',
    'mx.backup-example.com',
    'c365-biz.p-v1.mx.microsoft',
    'localhost',
    '*.loc',
    'xn--mx-lka.example',
    '0.example',
    `${'a'.repeat(63)}.example`,
    Array.from({ length: 4 }, () => 'b'.repeat(62)).join('.'),
  ];
  const bad: Array<[string, RegExp]> = [
    ['', /empty/],
    ['*.*.example', /wildcard/],
    ['**.example', /wildcard/],
    ['mail.*.example', /wildcard/],
    ['*mail.example', /wildcard/],
    ['*', /wildcard/],
    ['*.', /ends with a dot/],
    ['test.example-', /starts or ends with "-"/],
    ['-test.example', /starts or ends with "-"/],
    ['mx1.your_domain.tld', /"_"/],
    ['mail.example.com.', /ends with a dot/],
    ['Priority 5: ALT1.ASPMX.L.GOOGLE.COM', /white space/],
    ['mx.example.com mx2.example.com', /white space/],
    ['møx.example', /xn--mx-lka\.example/],
    ['mail..example.com', /empty label/],
    ['.example.com', /empty label/],
    ['mail.exa!mple.com', /letters, digits and "-"/],
    ['mail.example.com:25', /letters, digits and "-"/],
    ['[192.0.2.1]', /letters, digits and "-"/],
    [`${'a'.repeat(64)}.example`, /longer than 63/],
    [Array.from({ length: 5 }, () => 'b'.repeat(62)).join('.'), /longer than 253/],
    ['a\x01b.example', /control character/],
  ];
  for (const pattern of good) {
    it(`accepts ${JSON.stringify(pattern.length > 40 ? `${pattern.slice(0, 40)}…` : pattern)}`, () => {
      assert.equal(validateMxPattern(pattern), undefined);
    });
  }
  for (const [pattern, message] of bad) {
    it(`rejects ${JSON.stringify(pattern.length > 40 ? `${pattern.slice(0, 40)}…` : pattern)}`, () => {
      const p = validateMxPattern(pattern);
      assert.ok(p, 'expected a problem');
      assert.equal(p.severity, 'error');
      assert.equal(p.code, 'MTASTS_POLICY_MX');
      assert.match(p.message, message);
    });
  }

  it('hostNameProblem accepts LDH names and explains the rest', () => {
    assert.equal(hostNameProblem('example.com'), undefined);
    assert.match(hostNameProblem('exa_mple.com') ?? '', /"_"/);
  });

  it('never throws on random input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        const p = validateMxPattern(s);
        assert.ok(p === undefined || p.severity === 'error');
      }),
      { numRuns: 2000 },
    );
  });
});
