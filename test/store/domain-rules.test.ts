// The domain rules every store applies (src/store/domain-rules.ts): names, settings, the RFC 8461
// policy text and the policy id bump (RFC 8461 §3.1: a new id for every policy change).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parsePolicy } from '../../src/mtasts/policy.js';
import { stsIdFromDate } from '../../src/mtasts/record.js';
import {
  domainKey,
  nextPolicyId,
  policyTextFor,
  validDomainName,
  validSettings,
} from '../../src/store/domain-rules.js';
import { type DomainSettings, StoreError } from '../../src/store/types.js';

function storeError(fn: () => unknown, code: StoreError['code'] = 'STORE_INVALID'): StoreError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof StoreError, `expected StoreError, got ${err}`);
    assert.equal(err.code, code);
    return err;
  }
  assert.fail('expected a StoreError');
}

const base: DomainSettings = {
  mode: 'testing',
  mx: ['mail.example.com'],
  maxAge: 604800,
  rua: ['mailto:tlsrpt@example.com'],
};

describe('validDomainName', () => {
  const good: Array<[string, string]> = [
    ['example.com', 'example.com'],
    ['Example.COM', 'example.com'],
    ['example.com.', 'example.com'],
    ['sub-1.example.co.uk', 'sub-1.example.co.uk'],
    ['bücher.example', 'xn--bcher-kva.example'],
  ];
  for (const [input, expected] of good) {
    it(`accepts ${JSON.stringify(input)} as ${expected}`, () =>
      assert.equal(validDomainName(input), expected));
  }
  const bad: Array<[string, RegExp]> = [
    ['', /domain ""/],
    ['localhost', /whole mail domain/],
    ['exa mple.com', /domain "exa mple.com"/],
    ['example..com', /empty label/],
    ['-example.com', /starts or ends with "-"/],
    ['_dmarc.example.com', /"_"/],
    ['*.example.com', /letters, digits/],
    [`${'a'.repeat(64)}.com`, /longer than 63/],
    [`${'a.'.repeat(127)}com`, /longer than 253/],
  ];
  for (const [input, message] of bad) {
    it(`refuses ${JSON.stringify(input).slice(0, 40)}`, () => {
      assert.match(storeError(() => validDomainName(input)).message, message);
    });
  }
  it('domainKey normalises without validating', () => {
    assert.equal(domainKey('MX.Example.COM.'), 'mx.example.com');
    assert.equal(domainKey(''), '');
  });
});

describe('validSettings', () => {
  it('normalises mx (lower case, no final dot, no repeats) and rua repeats', () => {
    const s = validSettings({
      ...base,
      mx: ['MAIL.example.com', 'mail.example.com.', '*.mx.example.net'],
      rua: ['mailto:a@example.com', 'mailto:a@example.com', 'https://r.example.com/tlsrpt'],
    });
    assert.deepEqual(s.mx, ['mail.example.com', '*.mx.example.net']);
    assert.deepEqual(s.rua, ['mailto:a@example.com', 'https://r.example.com/tlsrpt']);
  });
  const good: Array<[string, Partial<DomainSettings>]> = [
    ['mode enforce', { mode: 'enforce' }],
    ['mode none without mx', { mode: 'none', mx: [] }],
    ['max_age 0', { maxAge: 0 }],
    ['max_age at the limit', { maxAge: 31557600 }],
    ['https rua', { rua: ['https://reports.example.com/v1/tlsrpt'] }],
    ['wildcard mx', { mx: ['*.example.com'] }],
  ];
  for (const [name, patch] of good) {
    it(`accepts ${name}`, () => assert.doesNotThrow(() => validSettings({ ...base, ...patch })));
  }
  const bad: Array<[string, unknown, RegExp]> = [
    ['an unknown mode', { mode: 'strict' }, /^mode: "strict"/],
    ['max_age above the RFC 8461 limit', { maxAge: 31557601 }, /^maxAge: 31557601/],
    ['negative max_age', { maxAge: -1 }, /^maxAge/],
    ['fractional max_age', { maxAge: 1.5 }, /^maxAge/],
    ['max_age as a string', { maxAge: '86400' }, /^maxAge/],
    ['no mx in testing mode', { mx: [] }, /^mx: mode testing needs/],
    ['a bad mx', { mx: ['mail..example.com'] }, /^mx: mx "mail..example.com"/],
    ['a wildcard in the middle', { mx: ['mail.*.example.com'] }, /^mx: .*wildcard/],
    ['mx not a list', { mx: 'mail.example.com' }, /^mx: must be a list/],
    ['no rua', { rua: [] }, /^rua: give at least one/],
    ['an http rua', { rua: ['http://example.com/r'] }, /^rua: .*https/],
    ['a rua without scheme', { rua: ['tlsrpt@example.com'] }, /^rua: .*no scheme/],
    ['a rua with "!"', { rua: ['mailto:a@example.com!10m'] }, /^rua: .*%21/],
    ['rua with a number', { rua: [5] }, /^rua: must be a list of strings/],
  ];
  for (const [name, patch, message] of bad) {
    it(`refuses ${name}`, () => {
      const err = storeError(() => validSettings({ ...base, ...(patch as Partial<DomainSettings>) }));
      assert.match(err.message, message);
    });
  }
  it('values whose toString throws give StoreError, not TypeError (found by the fuzz test)', () => {
    for (const hostile of [{ toString: 0 }, Object.create(null)]) {
      const mode = storeError(() => validSettings({ ...base, mode: hostile } as unknown as DomainSettings));
      assert.match(mode.message, /^mode: an object/);
      const maxAge = storeError(() =>
        validSettings({ ...base, maxAge: hostile } as unknown as DomainSettings),
      );
      assert.match(maxAge.message, /^maxAge: an object/);
    }
  });

  it('random settings only ever give StoreError (fuzz)', () => {
    fc.assert(
      fc.property(
        fc.record({ mode: fc.anything(), mx: fc.anything(), maxAge: fc.anything(), rua: fc.anything() }),
        (s) => {
          try {
            validSettings(s as unknown as DomainSettings);
          } catch (err) {
            assert.ok(err instanceof StoreError && err.code === 'STORE_INVALID', String(err));
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('policyTextFor (RFC 8461 §3.2)', () => {
  it('round-trips through the strict policy parser', () => {
    const hostLabel = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
    const host = fc.array(hostLabel, { minLength: 2, maxLength: 4 }).map((l) => l.join('.'));
    const mxPattern = fc.tuple(fc.boolean(), host).map(([wild, h]) => (wild ? `*.${h}` : h));
    fc.assert(
      fc.property(
        fc.constantFrom('enforce' as const, 'testing' as const, 'none' as const),
        fc.array(mxPattern, { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 0, max: 31557600 }),
        (mode, mx, maxAge) => {
          const settings = validSettings({ mode, mx, maxAge, rua: ['mailto:r@example.com'] });
          const { policy } = parsePolicy(policyTextFor(settings), { strict: true });
          assert.deepEqual(policy, { mode, mx: settings.mx, maxAge, extensions: [] });
        },
      ),
    );
  });
});

describe('nextPolicyId (RFC 8461 §3.1)', () => {
  const now = new Date('2024-05-01T10:00:00.700Z');
  const cases: Array<[string, string | undefined, string]> = [
    ['first id: the time of now', undefined, '20240501100000'],
    ['an older previous id: the time of now', '20240430235959', '20240501100000'],
    ['the same second: one second later', '20240501100000', '20240501100001'],
    ['a previous id in the future (clock went back)', '20240501120000', '20240501120001'],
    ['carry over minute, hour, day, month, year', '20241231235959', '20250101000000'],
    ['carry into a leap day', '20280228235959', '20280229000000'],
    ['a previous id that is not a timestamp: the time of now', 'abc', '20240501100000'],
  ];
  for (const [name, previous, expected] of cases) {
    it(name, () => assert.equal(nextPolicyId(previous, now), expected));
  }
  it('is always strictly greater than the previous id and never before now (property)', () => {
    const date = fc.date({
      min: new Date('2000-01-01T00:00:00Z'),
      max: new Date('2999-12-31T00:00:00Z'),
      noInvalidDate: true,
    });
    fc.assert(
      fc.property(date, date, (previousTime, nowTime) => {
        const previous = stsIdFromDate(previousTime);
        const next = nextPolicyId(previous, nowTime);
        assert.match(next, /^\d{14}$/);
        assert.ok(next > previous, `${next} > ${previous}`);
        assert.ok(next >= stsIdFromDate(nowTime));
      }),
    );
  });
});
