// Name helpers: normalisation, host name syntax (RFC 1123 §2.1, RFC 3696 §2), wire limits (RFC 1035).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  hostnameProblem,
  isValidHostname,
  normalizeName,
  queryNameProblem,
  sameName,
} from '../../src/dns/names.js';

describe('normalizeName', () => {
  const cases: Array<[string, string]> = [
    ['Example.COM.', 'example.com'],
    ['example.com', 'example.com'],
    ['.', '.'],
    ['MX.Example.Test', 'mx.example.test'],
    ['_MTA-STS.example.com', '_mta-sts.example.com'],
    ['ÉCOLE.test', 'École.test'], // only ASCII letters are folded (RFC 4343)
  ];
  for (const [input, expected] of cases)
    it(`${input} -> ${expected}`, () => assert.equal(normalizeName(input), expected));

  it('is idempotent and ignores one trailing dot', () => {
    fc.assert(
      fc.property(fc.domain(), (d) => {
        const n = normalizeName(d);
        assert.equal(normalizeName(n), n);
        assert.ok(sameName(d, `${d.toUpperCase()}.`));
      }),
    );
  });
});

describe('hostnameProblem', () => {
  const good = [
    'mx.example.com',
    'MX1.Example.COM.',
    'localhost',
    'a-b.c',
    'x1.example',
    `${'a'.repeat(63)}.com`,
    'xn--bcher-kva.example',
    `${Array.from({ length: 4 }, () => 'a'.repeat(62)).join('.')}`, // 251 characters
  ];
  const bad: Array<[string, RegExp]> = [
    ['', /empty/],
    ['.', /empty/],
    ['a..b', /empty label/],
    ['-mx.example.com', /starts or ends with "-"/],
    ['mx-.example.com', /starts or ends with "-"/],
    ['mx_1.example.com', /contains "_"/],
    ['_mta-sts.example.com', /contains "_"/],
    ['mx example.com', /only contain letters, digits and "-"/],
    ['*.example.com', /only contain letters, digits and "-"/],
    [`${'a'.repeat(64)}.com`, /longer than 63/],
    [`${Array.from({ length: 4 }, () => 'a'.repeat(63)).join('.')}`, /longer than 253/],
    ['192.0.2.1', /all digits/],
    ['mx.123', /all digits/],
  ];
  for (const name of good) {
    it(`accepts ${name.length > 40 ? `${name.slice(0, 20)}… (${name.length})` : name}`, () => {
      assert.equal(hostnameProblem(name), undefined);
      assert.equal(isValidHostname(name), true);
    });
  }
  for (const [name, why] of bad) {
    it(`rejects ${JSON.stringify(name.length > 40 ? `${name.slice(0, 20)}…` : name)}`, () => {
      assert.match(hostnameProblem(name) ?? '', why);
      assert.equal(isValidHostname(name), false);
    });
  }

  it('accepts generated LDH host names', () => {
    const label = fc.stringMatching(/^[a-z]([a-z0-9-]{0,20}[a-z0-9])?$/);
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 5 }), (labels) =>
        isValidHostname(labels.join('.')),
      ),
    );
  });
});

describe('queryNameProblem', () => {
  const good = [
    '.',
    'example.test',
    '_25._tcp.mx.example.test',
    '_mta-sts.example.test.',
    `${'a'.repeat(63)}.test`,
  ];
  const bad: Array<[string, RegExp]> = [
    ['', /empty name/],
    ['a..test', /empty label/],
    ['.test', /empty label/],
    [`${'a'.repeat(64)}.test`, /more than 63/],
    [`${'é'.repeat(32)}.test`, /64 octets/],
    [Array.from({ length: 5 }, () => 'a'.repeat(50)).join('.'), /more than 255/],
  ];
  for (const name of good)
    it(`accepts ${name.slice(0, 40)}`, () => assert.equal(queryNameProblem(name), undefined));
  for (const [name, why] of bad)
    it(`rejects ${JSON.stringify(name.slice(0, 30))}`, () => assert.match(queryNameProblem(name) ?? '', why));
});
