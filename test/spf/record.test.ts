import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SpfError } from '../../src/spf/error.js';
import {
  dnsLookupTerms,
  formatSpf,
  parseSpf,
  type SpfMechanism,
  type SpfRecord,
  type SpfTerm,
  validateSpfExplanation,
} from '../../src/spf/record.js';

interface Row {
  record: string;
  expected: 'valid' | 'invalid';
  codes: string;
  why: string;
}

function readTable(name: string): Row[] {
  const text = readFileSync(new URL(`../fixtures/spf/${name}`, import.meta.url), 'utf8');
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [record, expected, codes, why] = line.split('\t');
      const unescaped = record!.replace(
        /\\([trn\\])/g,
        (_, c: string) => ({ t: '\t', r: '\r', n: '\n' })[c] ?? '\\',
      );
      return { record: unescaped, expected: expected as Row['expected'], codes: codes!, why: why! };
    });
}

function parseError(text: string): SpfError {
  try {
    parseSpf(text);
  } catch (e) {
    assert.ok(e instanceof SpfError, `expected SpfError, got ${e}`);
    return e;
  }
  assert.fail(`expected "${text}" to be rejected`);
}

describe('parseSpf: table of RFC 7208 rules (fixtures/spf/records.tsv)', () => {
  const rows = readTable('records.tsv');
  it('has rows for both verdicts', () => {
    assert.ok(rows.filter((r) => r.expected === 'valid').length >= 20);
    assert.ok(rows.filter((r) => r.expected === 'invalid').length >= 40);
  });
  for (const row of rows) {
    it(`${row.expected}: ${JSON.stringify(row.record)} (${row.why})`, () => {
      if (row.expected === 'valid') {
        const { warnings } = parseSpf(row.record);
        const got = [...new Set(warnings.map((w) => w.code))].sort();
        const want = row.codes === '-' ? [] : row.codes.split(',').sort();
        assert.deepEqual(got, want);
      } else {
        const error = parseError(row.record);
        assert.equal(error.code, row.codes);
        assert.equal(error.problems[0]!.severity, 'error');
        assert.ok(error.message.length > 0);
      }
    });
  }
});

describe('parseSpf: parsed values', () => {
  it('reads qualifiers, names, domains, addresses and CIDR lengths', () => {
    const { record } = parseSpf(
      'v=spf1 ~A:Mail.example.com/24//64 ?mx//48 -ip4:192.0.2.0/24 IP6:2001:DB8::/32 include:_spf.example.net ptr exists:%{i}.x.example redirect=_spf.example.com X-Note=hi',
    );
    const expected: SpfTerm[] = [
      { kind: 'mechanism', qualifier: '~', name: 'a', domainSpec: 'Mail.example.com', cidr4: 24, cidr6: 64 },
      { kind: 'mechanism', qualifier: '?', name: 'mx', cidr6: 48 },
      { kind: 'mechanism', qualifier: '-', name: 'ip4', ip: '192.0.2.0', cidr4: 24 },
      { kind: 'mechanism', qualifier: '+', name: 'ip6', ip: '2001:DB8::', cidr6: 32 },
      { kind: 'mechanism', qualifier: '+', name: 'include', domainSpec: '_spf.example.net' },
      { kind: 'mechanism', qualifier: '+', name: 'ptr' },
      { kind: 'mechanism', qualifier: '+', name: 'exists', domainSpec: '%{i}.x.example' },
      { kind: 'modifier', name: 'redirect', value: '_spf.example.com' },
      { kind: 'modifier', name: 'x-note', value: 'hi' },
    ];
    assert.deepEqual(record.terms, expected);
  });

  it('keeps an empty unknown modifier value (macro-string may be empty)', () => {
    assert.deepEqual(parseSpf('v=spf1 note= -all').record.terms[0], {
      kind: 'modifier',
      name: 'note',
      value: '',
    });
  });

  it('lists every error with the term it is about', () => {
    const error = parseError('v=spf1 ip4:192.0.2 a/33 include: exists:%{x}.example.com -all');
    assert.deepEqual(
      error.problems.map((p) => [p.code, p.where]),
      [
        ['SPF_IP4', 'term 1 (ip4:192.0.2)'],
        ['SPF_CIDR', 'term 2 (a/33)'],
        ['SPF_DOMAIN_SPEC', 'term 3 (include:)'],
        ['SPF_MACRO', 'term 4 (exists:%{x}.example.com)'],
      ],
    );
    assert.match(error.message, /^term 1 \(ip4:192\.0\.2\): .*\(and 3 more\)$/);
  });

  it('says where a warning comes from', () => {
    const { warnings } = parseSpf('v=spf1 mx ptr:example.com -all');
    assert.deepEqual(warnings, [
      {
        severity: 'warning',
        code: 'SPF_PTR',
        message: warnings[0]!.message,
        where: 'term 2 (ptr:example.com)',
      },
    ]);
    assert.match(warnings[0]!.message, /RFC 7208 §5\.5/);
  });

  it('escapes control characters in messages', () => {
    const error = parseError('v=spf1 a:example.com\x00');
    assert.equal(error.code, 'SPF_CHARSET');
    assert.ok(error.message.includes('\\x00'));
    assert.ok(!error.message.includes('\x00'));
  });
});

describe('dnsLookupTerms (RFC 7208 §4.6.4)', () => {
  it('returns include, a, mx, ptr, exists and redirect, in record order', () => {
    const { record } = parseSpf(
      'v=spf1 ip4:192.0.2.1 a mx:example.com ip6:2001:db8::1 include:x.example ptr exists:%{i}.y.example redirect=z.example exp=e.example',
    );
    assert.deepEqual(
      dnsLookupTerms(record).map((t) => (t.kind === 'mechanism' ? t.name : `${t.name}=`)),
      ['a', 'mx', 'include', 'ptr', 'exists', 'redirect='],
    );
  });
  it('is empty for address-only records', () => {
    assert.deepEqual(dnsLookupTerms(parseSpf('v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 -all').record), []);
  });
});

describe('validateSpfExplanation (RFC 7208 §6.2, §7.2)', () => {
  it('accepts text with macros, including the explanation-only letters c, r, t', () => {
    validateSpfExplanation('%{c} is not allowed to send mail for %{d} (checked by %{r} at %{t})');
    validateSpfExplanation('See https://example.com/why?ip=%{i}%_100%% sure');
  });
  for (const bad of ['The %{x}-files', 'broken %', '\ufeffExplanation', 'tab\there']) {
    it(`rejects ${JSON.stringify(bad)}`, () => {
      assert.throws(() => validateSpfExplanation(bad), SpfError);
    });
  }
});

// ---------- property tests ----------

const letter = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz');
const alnum = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789');
const label = fc
  .tuple(
    alnum,
    fc.array(fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-_'), { maxLength: 10 }),
    alnum,
  )
  .map(([a, mid, z]) => a + mid.join('') + z);
const toplabel = fc.tuple(letter, fc.array(alnum, { maxLength: 6 })).map(([a, rest]) => a + rest.join(''));
const macro = fc
  .tuple(
    fc.constantFrom(...'slodiphvSLODIPHV'),
    fc.option(fc.integer({ min: 1, max: 127 }), { nil: undefined }),
    fc.boolean(),
    fc.array(fc.constantFrom(...'.-+,/_='), { maxLength: 2 }),
  )
  .map(([l, digits, reverse, delims]) => `%{${l}${digits ?? ''}${reverse ? 'r' : ''}${delims.join('')}}`);
const domainSpec = fc.oneof(
  fc
    .tuple(fc.array(fc.oneof(label, macro), { minLength: 1, maxLength: 3 }), toplabel, fc.boolean())
    .map(([labels, top, dot]) => `${labels.join('.')}.${top}${dot ? '.' : ''}`),
  fc.tuple(fc.array(label, { maxLength: 2 }), macro).map(([labels, m]) => [...labels, m].join('.')),
);
const qualifier = fc.constantFrom<SpfMechanism['qualifier']>('+', '-', '~', '?');
const cidr4 = fc.integer({ min: 0, max: 32 });
const cidr6 = fc.integer({ min: 0, max: 128 });
const ip4 = fc
  .tuple(...Array.from({ length: 4 }, () => fc.integer({ min: 0, max: 255 })))
  .map((o) => o.join('.'));

function mech(fields: Omit<SpfMechanism, 'kind'>): SpfMechanism {
  const out: SpfMechanism = { kind: 'mechanism', qualifier: fields.qualifier, name: fields.name };
  for (const key of ['domainSpec', 'ip', 'cidr4', 'cidr6'] as const) {
    if (fields[key] !== undefined) Object.assign(out, { [key]: fields[key] });
  }
  return out;
}

const opt = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
const mechanism: fc.Arbitrary<SpfMechanism> = fc.oneof(
  qualifier.map((q) => mech({ qualifier: q, name: 'all' })),
  fc
    .tuple(qualifier, fc.constantFrom('include' as const, 'exists' as const), domainSpec)
    .map(([q, name, d]) => mech({ qualifier: q, name, domainSpec: d })),
  fc.tuple(qualifier, opt(domainSpec)).map(([q, d]) => mech({ qualifier: q, name: 'ptr', domainSpec: d })),
  fc
    .tuple(qualifier, fc.constantFrom('a' as const, 'mx' as const), opt(domainSpec), opt(cidr4), opt(cidr6))
    .map(([q, name, d, c4, c6]) => mech({ qualifier: q, name, domainSpec: d, cidr4: c4, cidr6: c6 })),
  fc.tuple(qualifier, ip4, opt(cidr4)).map(([q, ip, c]) => mech({ qualifier: q, name: 'ip4', ip, cidr4: c })),
  fc
    .tuple(qualifier, fc.ipV6(), opt(cidr6))
    .map(([q, ip, c]) => mech({ qualifier: q, name: 'ip6', ip, cidr6: c })),
);
const unknownModifier: fc.Arbitrary<SpfTerm> = fc
  .tuple(
    fc.tuple(
      letter,
      fc.array(fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-_.'), { maxLength: 8 }),
    ),
    fc.array(fc.oneof(macro, fc.constantFrom('%%', '%_', '%-'), fc.stringMatching(/^[!-$&-~]{1,6}$/)), {
      maxLength: 3,
    }),
  )
  .filter(([[a, rest]]) => !['redirect', 'exp'].includes(a + rest.join('')))
  .map(([[a, rest], value]) => ({
    kind: 'modifier' as const,
    name: a + rest.join(''),
    value: value.join(''),
  }));
const spfRecord: fc.Arbitrary<SpfRecord> = fc
  .tuple(
    fc.array(fc.oneof({ weight: 4, arbitrary: mechanism }, { weight: 1, arbitrary: unknownModifier }), {
      maxLength: 12,
    }),
    opt(domainSpec),
    opt(domainSpec),
  )
  .map(([terms, redirect, exp]) => {
    const all: SpfTerm[] = [...terms];
    if (redirect !== undefined) all.push({ kind: 'modifier', name: 'redirect', value: redirect });
    if (exp !== undefined) all.push({ kind: 'modifier', name: 'exp', value: exp });
    return { terms: all };
  });

describe('formatSpf / parseSpf round trip', () => {
  it('parse(format(record)) gives the record back', () => {
    fc.assert(
      fc.property(spfRecord, (record) => {
        assert.deepEqual(parseSpf(formatSpf(record)).record, record);
      }),
      { numRuns: 500 },
    );
  });
  it('format(parse(text)) is stable for the table records', () => {
    for (const row of readTable('records.tsv').filter((r) => r.expected === 'valid')) {
      const once = formatSpf(parseSpf(row.record).record);
      assert.equal(formatSpf(parseSpf(once).record), once);
    }
  });
  it('leaves out the default qualifier', () => {
    assert.equal(
      formatSpf({
        terms: [
          { kind: 'mechanism', qualifier: '+', name: 'a', cidr6: 64 },
          { kind: 'mechanism', qualifier: '-', name: 'ip6', ip: '2001:db8::', cidr6: 32 },
          { kind: 'mechanism', qualifier: '~', name: 'all' },
        ],
      }),
      'v=spf1 a//64 -ip6:2001:db8::/32 ~all',
    );
  });
});

describe('parseSpf fuzz: only ever SpfError', () => {
  const onlySpfErrors = (text: string) => {
    try {
      const { record, warnings } = parseSpf(text);
      assert.ok(Array.isArray(record.terms) && Array.isArray(warnings));
    } catch (e) {
      if (!(e instanceof SpfError)) throw e;
      assert.ok(e.problems.length > 0 && e.problems[0]!.severity === 'error');
    }
  };
  it('random strings', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), onlySpfErrors), { numRuns: 2000 });
  });
  it('random strings after the version', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary-ascii', maxLength: 300 }), (s) => onlySpfErrors(`v=spf1 ${s}`)),
      { numRuns: 2000 },
    );
  });
  it('random sequences of SPF syntax pieces', () => {
    const piece = fc.constantFrom(
      ' ',
      ' ',
      'a',
      'mx',
      'ip4',
      'ip6',
      'include',
      'exists',
      'ptr',
      'all',
      'redirect',
      'exp',
      '=',
      ':',
      '/',
      '//',
      '%{',
      '}',
      '%',
      '.',
      '-',
      '+',
      '~',
      '?',
      'd',
      'ir',
      '1',
      '0',
      '24',
      '255',
      '::',
      'com',
      'example',
      '%%',
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 40 }), (pieces) => onlySpfErrors(`v=spf1 ${pieces.join('')}`)),
      { numRuns: 3000 },
    );
  });
});

describe('parseSpf: long inputs (no regex backtracking blow-up)', () => {
  for (const text of [
    `v=spf1 a:${'/1'.repeat(50_000)}x`,
    `v=spf1 ${'a:'.repeat(50_000)}`,
    `v=spf1 a:x.${'a-'.repeat(50_000)}`,
  ]) {
    it(`${text.length} characters starting ${JSON.stringify(text.slice(0, 16))}`, () => {
      assert.throws(() => parseSpf(text), SpfError);
    });
  }
});
