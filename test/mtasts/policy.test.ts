// RFC 8461 §3.2: the policy file.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Problem } from '../../src/common/errors.js';
import { MtaStsError } from '../../src/mtasts/error.js';
import { formatPolicy, MAX_AGE_LIMIT, parsePolicy, type StsPolicy } from '../../src/mtasts/policy.js';

/** Parse and expect an MtaStsError; returns it. */
function parseError(text: string, strict = true): MtaStsError {
  try {
    parsePolicy(text, { strict });
  } catch (err) {
    assert.ok(err instanceof MtaStsError, `expected MtaStsError, got ${err}`);
    return err;
  }
  assert.fail(`expected ${JSON.stringify(text)} to be rejected`);
}

const codes = (problems: Problem[]) => problems.map((p) => p.code);

const BASE = 'version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n';

describe('parsePolicy: valid policies', () => {
  const good: Array<[string, string, StsPolicy]> = [
    [
      'RFC 8461 §3.2 example',
      'version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n',
      {
        mode: 'enforce',
        maxAge: 604800,
        mx: ['mail.example.com', '*.example.net', 'backupmx.example.com'],
        extensions: [],
      },
    ],
    [
      'CRLF line ends',
      'version: STSv1\r\nmode: testing\r\nmx: mx.example.com\r\nmax_age: 86400\r\n',
      { mode: 'testing', maxAge: 86400, mx: ['mx.example.com'], extensions: [] },
    ],
    [
      'mixed CRLF/LF, no space or a TAB after ":", extension with inner spaces, no final newline',
      'version:STSv1\r\nmode:\tenforce\r\nmx:  \t\t *.example.com\nmax_age: 1\nmore:ext e  ns ion',
      { mode: 'enforce', maxAge: 1, mx: ['*.example.com'], extensions: [['more', 'ext e  ns ion']] },
    ],
    [
      'trailing WSP after values (version too)',
      'version: STSv1 \nmode: enforce\t\nmx: *.example.com \nmax_age: 0 \n',
      { mode: 'enforce', maxAge: 0, mx: ['*.example.com'], extensions: [] },
    ],
    [
      'fields in another order, max_age before mx',
      'version: STSv1\nmax_age: 1209600\nmx: mx.example.com\nmode: testing\n',
      { mode: 'testing', maxAge: 1209600, mx: ['mx.example.com'], extensions: [] },
    ],
    [
      'mode none without mx',
      'version: STSv1\nmode: none\nmax_age: 86400',
      { mode: 'none', maxAge: 86400, mx: [], extensions: [] },
    ],
    [
      'mode none with mx',
      'version: STSv1\nmode: none\nmx: a.example\nmax_age: 604800\n',
      { mode: 'none', maxAge: 604800, mx: ['a.example'], extensions: [] },
    ],
    [
      'max_age at the RFC maximum, upper-case mx, leading zeros',
      'version: STSv1\nmode: enforce\nmx: SMTP.GOOGLE.COM\nmax_age: 0031557600\n',
      { mode: 'enforce', maxAge: MAX_AGE_LIMIT, mx: ['SMTP.GOOGLE.COM'], extensions: [] },
    ],
    [
      'extension values may hold "=", ";", "#" and UTF-8',
      'version: STSv1\nmode: none\nmax_age: 604800\nx-note: a=b; c # d\nlang.1: grüße\n',
      {
        mode: 'none',
        maxAge: 604800,
        mx: [],
        extensions: [
          ['x-note', 'a=b; c # d'],
          ['lang.1', 'grüße'],
        ],
      },
    ],
  ];
  for (const [name, text, expected] of good) {
    it(name, () => {
      assert.deepEqual(parsePolicy(text, { strict: true }).policy, expected);
      assert.deepEqual(parsePolicy(text).policy, expected);
    });
  }
});

describe('parsePolicy: invalid policies (every one rejected, strict or not)', () => {
  const bad: Array<[string, string, string, string | undefined]> = [
    ['empty body', '', 'MTASTS_POLICY_EMPTY', undefined],
    ['only line ends', '\r\n\n', 'MTASTS_POLICY_EMPTY', undefined],
    ['not a key: value line', 'garbage', 'MTASTS_POLICY_SYNTAX', 'line 1'],
    ['line without ":"', 'version: STSv1\nnot_a_pair\n', 'MTASTS_POLICY_SYNTAX', 'line 2'],
    ['indented field', 'version: STSv1\n  mode: none\nmax_age: 86400\n', 'MTASTS_POLICY_SYNTAX', 'line 2'],
    [
      'TAB-indented version',
      '\tversion: STSv1\nmode: none\nmax_age: 86400\n',
      'MTASTS_POLICY_SYNTAX',
      'line 1',
    ],
    ['missing version', 'mode: none\nmax_age: 0', 'MTASTS_POLICY_VERSION', undefined],
    ['version STSv10', 'version: STSv10\nmode: none\nmax_age: 0', 'MTASTS_POLICY_VERSION', 'line 1'],
    ['version in lower case', 'version: stsv1\nmode: none\nmax_age: 0', 'MTASTS_POLICY_VERSION', 'line 1'],
    [
      'version with a comment',
      'version: STSv1 # v1\nmode: none\nmax_age: 0',
      'MTASTS_POLICY_VERSION',
      'line 1',
    ],
    ['missing mode', 'version: STSv1\nmx: mail.loc\nmax_age: 86400', 'MTASTS_POLICY_MODE', undefined],
    ['unknown mode', 'version: STSv1\nmode: doubt\nmx: a.b\nmax_age: 1', 'MTASTS_POLICY_MODE', 'line 2'],
    [
      'mode in capitals',
      'version: STSv1\nmode: Enforce\nmx: a.b\nmax_age: 1',
      'MTASTS_POLICY_MODE',
      'line 2',
    ],
    [
      'template mode',
      'version: STSv1\nmode: [testing] \nmx: a.b\nmax_age: 1',
      'MTASTS_POLICY_MODE',
      'line 2',
    ],
    ['empty mode', 'version: STSv1\nmode:\nmx: a.b\nmax_age: 1', 'MTASTS_POLICY_MODE', 'line 2'],
    ['missing max_age', 'version: STSv1\nmode: none\n', 'MTASTS_POLICY_MAX_AGE', undefined],
    ['max_age too big', 'version: STSv1\nmode: none\nmax_age: 31557601', 'MTASTS_POLICY_MAX_AGE', 'line 3'],
    [
      'max_age 8 digits too big',
      'version: STSv1\nmode: none\nmax_age: 99999999',
      'MTASTS_POLICY_MAX_AGE',
      'line 3',
    ],
    [
      'max_age 11 digits',
      'version: STSv1\nmode: none\nmax_age: 01234567890',
      'MTASTS_POLICY_MAX_AGE',
      'line 3',
    ],
    ['max_age decimal', 'version: STSv1\nmode: none\nmax_age: 86400.5', 'MTASTS_POLICY_MAX_AGE', 'line 3'],
    ['max_age negative', 'version: STSv1\nmode: none\nmax_age: -1', 'MTASTS_POLICY_MAX_AGE', 'line 3'],
    ['max_age not a number', 'version: STSv1\nmode: none\nmax_age: xxx', 'MTASTS_POLICY_MAX_AGE', 'line 3'],
    ['max_age empty', 'version: STSv1\nmode: none\nmax_age:', 'MTASTS_POLICY_MAX_AGE', 'line 3'],
    ['max_age with a unit', 'version: STSv1\nmode: none\nmax_age: 1w', 'MTASTS_POLICY_MAX_AGE', 'line 3'],
    ['enforce without mx', 'version: STSv1\nmode: enforce\nmax_age: 86400', 'MTASTS_POLICY_MX', undefined],
    ['testing without mx', 'version: STSv1\nmax_age:0\nmode:testing', 'MTASTS_POLICY_MX', undefined],
    ['empty mx', 'version:STSv1\nmode:enforce\nmax_age:0\nmx:', 'MTASTS_POLICY_MX', 'line 4'],
    ['mx *.*.x', 'version:STSv1\nmode:enforce\nmax_age:0\nmx:*.*.example', 'MTASTS_POLICY_MX', 'line 4'],
    ['mx **.x', 'version:STSv1\nmode:enforce\nmax_age:0\nmx:**.example', 'MTASTS_POLICY_MX', 'line 4'],
    [
      'mx trailing hyphen',
      'version:STSv1\nmode:enforce\nmax_age:0\nmx:test.example-',
      'MTASTS_POLICY_MX',
      'line 4',
    ],
    [
      'mx trailing dot',
      'version:STSv1\nmode:enforce\nmax_age:0\nmx:mx.example.',
      'MTASTS_POLICY_MX',
      'line 4',
    ],
    [
      'mx underscore',
      'version:STSv1\nmode:enforce\nmax_age:0\nmx:mx_1.example',
      'MTASTS_POLICY_MX',
      'line 4',
    ],
    ['mx non-ASCII', 'version:STSv1\nmode:none\nmax_age:0\nmx: møx.example', 'MTASTS_POLICY_MX', 'line 4'],
    [
      'mx with spaces',
      'version:STSv1\nmode:testing\nmax_age:0\nmx: Priority 5: a.b',
      'MTASTS_POLICY_MX',
      'line 4',
    ],
    [
      'mx with a comment',
      'version:STSv1\nmode:testing\nmax_age:0\nmx: a.b # main',
      'MTASTS_POLICY_MX',
      'line 4',
    ],
    [
      'extension empty value',
      'version:STSv1\nmode:none\nmax_age:0\next:',
      'MTASTS_POLICY_EXTENSION',
      'line 4',
    ],
    [
      'extension name of 33 characters',
      'version:STSv1\nmode:none\nmax_age:0\na12345678901234567890123456789012:123',
      'MTASTS_POLICY_EXTENSION',
      'line 4',
    ],
    [
      'extension name starting "_"',
      'version:STSv1\nmode:none\nmax_age:0\n_bad:test',
      'MTASTS_POLICY_EXTENSION',
      'line 4',
    ],
    [
      'extension name with a space',
      'version:STSv1\nmode:none\nmax_age:0\nmy ext: 1',
      'MTASTS_POLICY_EXTENSION',
      'line 4',
    ],
    [
      'space before ":"',
      'version: STSv1\nmode: none\nmax_age: 0\nmx : a.example\n',
      'MTASTS_POLICY_EXTENSION',
      'line 4',
    ],
    ['no field name', 'version: STSv1\nmode: none\nmax_age: 0\n: x\n', 'MTASTS_POLICY_EXTENSION', 'line 4'],
    [
      'control character in a value',
      'version: STSv1\nmode: none\nmax_age: 0\nx: a\x01b\n',
      'MTASTS_POLICY_EXTENSION',
      'line 4',
    ],
    [
      'TAB inside an extension value',
      'version: STSv1\nmode: none\nmax_age: 0\nx: a\tb\n',
      'MTASTS_POLICY_EXTENSION',
      'line 4',
    ],
    ['lone CR inside a line', 'version: STSv1\nmode: none\rmax_age: 0\n', 'MTASTS_POLICY_MODE', 'line 2'],
    [
      'field names are case-sensitive',
      'Version: STSv1\nMode: none\nMax_age: 1',
      'MTASTS_POLICY_VERSION',
      undefined,
    ],
    ['comment line', '# MTA-STS\nversion: STSv1\nmode: none\nmax_age: 1', 'MTASTS_POLICY_SYNTAX', 'line 1'],
  ];
  for (const [name, text, code, where] of bad) {
    it(`${name}: ${code}${where ? ` at ${where}` : ''}`, () => {
      for (const strict of [true, false]) {
        const err = parseError(text, strict);
        const found = err.problems.find((p) => p.code === code);
        assert.ok(found, `no ${code} in ${JSON.stringify(err.problems)}`);
        assert.equal(found.where, where);
        assert.ok(err.problems.every((p) => p.severity === 'error'));
      }
    });
  }

  it('reports every error, with its line, in one MtaStsError', () => {
    const err = parseError('version: STSv2\n  mode: sometimes\nmx: a_b.example\nmax_age: 1e6\nx:\n');
    assert.deepEqual(
      err.problems.map((p) => [p.code, p.where]),
      [
        ['MTASTS_POLICY_VERSION', 'line 1'],
        ['MTASTS_POLICY_SYNTAX', 'line 2'],
        ['MTASTS_POLICY_MODE', 'line 2'],
        ['MTASTS_POLICY_MX', 'line 3'],
        ['MTASTS_POLICY_MAX_AGE', 'line 4'],
        ['MTASTS_POLICY_EXTENSION', 'line 5'],
      ],
    );
    assert.equal(err.code, 'MTASTS_POLICY_VERSION');
    assert.match(err.message, /^6 errors: line 1: version "STSv2" is not "STSv1"; line 2: /);
  });

  it('a single error puts its line in the message', () => {
    const err = parseError('version: STSv1\nmode: doubt\nmx: a.b\nmax_age: 604800');
    assert.equal(err.message, 'line 2: mode "doubt" is not one of enforce, testing, none');
    assert.equal(err.where, 'line 2');
  });

  it('the error carries the warnings seen on the way', () => {
    const err = parseError('version: STSv1\nmode: doubt\nmx: a.b\nmx: A.B\nmax_age: 60');
    assert.deepEqual(codes(err.warnings), ['MTASTS_DUPLICATE_MX', 'MTASTS_MAX_AGE_UNDER_DAY']);
  });
});

describe('parsePolicy: strict and lenient (RFC 8461 §3.2 "first instance wins")', () => {
  const repeated: Array<[string, string, Partial<StsPolicy>]> = [
    [
      'mode',
      'version: STSv1\nmode: enforce\nmode: testing\nmx: a.example\nmax_age: 86400\n',
      { mode: 'enforce' },
    ],
    ['max_age', 'version: STSv1\nmode: none\nmax_age: 604800\nmax_age: 5\n', { maxAge: 604800 }],
    ['version', 'version: STSv1\nmode: none\nversion: STSv2\nmax_age: 604800\n', { mode: 'none' }],
  ];
  for (const [field, text, expected] of repeated) {
    it(`a repeated ${field} is an error when strict`, () => {
      const err = parseError(text, true);
      assert.deepEqual(codes(err.problems), ['MTASTS_POLICY_DUPLICATE']);
      assert.match(err.problems[0]!.message, new RegExp(`"${field}" appears again \\(first on line \\d\\)`));
    });
    it(`a repeated ${field} keeps the first value, with a warning, when lenient`, () => {
      const { policy, warnings } = parsePolicy(text);
      for (const [k, v] of Object.entries(expected)) assert.equal(policy[k as keyof StsPolicy], v);
      const dup = warnings.find((w) => w.code === 'MTASTS_POLICY_DUPLICATE');
      assert.equal(dup?.severity, 'warning');
    });
  }
  it('lenient mode still rejects an invalid first instance', () => {
    parseError('version: STSv1\nmode: bogus\nmode: enforce\nmx: a.b\nmax_age: 1\n', false);
  });

  it('blank lines: error when strict, warning when lenient', () => {
    const text = 'version: STSv1\n\nmode: none\nmax_age: 604800\n\n';
    const err = parseError(text, true);
    assert.deepEqual(
      err.problems.map((p) => [p.code, p.where]),
      [
        ['MTASTS_POLICY_BLANK_LINE', 'line 2'],
        ['MTASTS_POLICY_BLANK_LINE', 'line 5'],
      ],
    );
    const { policy, warnings } = parsePolicy(text);
    assert.equal(policy.mode, 'none');
    assert.deepEqual(codes(warnings), ['MTASTS_POLICY_BLANK_LINE', 'MTASTS_POLICY_BLANK_LINE']);
  });

  it('a byte-order mark: error when strict, warning when lenient', () => {
    const text = `\uFEFF${BASE}`;
    assert.deepEqual(codes(parseError(text, true).problems), ['MTASTS_POLICY_BOM']);
    assert.deepEqual(codes(parsePolicy(text).warnings), ['MTASTS_POLICY_BOM']);
  });
});

describe('parsePolicy: warnings and notes', () => {
  const warningsOf = (text: string) => parsePolicy(text, { strict: true }).warnings;

  it('no warnings for a clean policy', () => {
    assert.deepEqual(warningsOf(BASE), []);
  });

  const maxAges: Array<[number, string[]]> = [
    [0, ['MTASTS_MAX_AGE_UNDER_DAY']],
    [30, ['MTASTS_MAX_AGE_UNDER_DAY']],
    [86399, ['MTASTS_MAX_AGE_UNDER_DAY']],
    [86400, ['MTASTS_MAX_AGE_UNDER_WEEK']],
    [604799, ['MTASTS_MAX_AGE_UNDER_WEEK']],
    [604800, []],
    [MAX_AGE_LIMIT, []],
  ];
  for (const [maxAge, expected] of maxAges) {
    it(`max_age ${maxAge}: ${expected.join(', ') || 'no warning'}`, () => {
      const w = warningsOf(`version: STSv1\nmode: enforce\nmx: a.example\nmax_age: ${maxAge}\n`);
      assert.deepEqual(codes(w), expected);
      assert.ok(w.every((p) => p.severity === 'warning' && p.where === 'line 4'));
    });
  }

  const typos: Array<[string, string]> = [
    ['ms', 'mx'],
    ['MX', 'mx'],
    ['nx', 'mx'],
    ['moed', 'mode'],
    ['Mode', 'mode'],
    ['mdoe', 'mode'],
    ['max-age', 'max_age'],
    ['maxage', 'max_age'],
    ['versoin', 'version'],
  ];
  for (const [typo, meant] of typos) {
    it(`"${typo}:" is kept as an extension with a did-you-mean "${meant}" warning`, () => {
      const { policy, warnings } = parsePolicy(`${BASE}${typo}: mail2.example.com\n`, { strict: true });
      assert.deepEqual(policy.extensions, [[typo, 'mail2.example.com']]);
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0]!.code, 'MTASTS_FIELD_TYPO');
      assert.equal(warnings[0]!.severity, 'warning');
      assert.equal(warnings[0]!.where, 'line 5');
      assert.match(warnings[0]!.message, new RegExp(`did you mean "${meant}"`));
    });
  }

  it('"mx :" is an error that says how to write it', () => {
    const err = parseError(`${BASE}mx : mail2.example.com\n`);
    assert.match(err.problems[0]!.message, /white space before ":".*write "mx:"/);
  });

  it('other unknown fields are notes, not warnings', () => {
    const w = warningsOf(`${BASE}badkey: badvalue\n`);
    assert.deepEqual(
      w.map((p) => [p.severity, p.code, p.where]),
      [['note', 'MTASTS_EXTENSION_FIELD', 'line 5']],
    );
  });

  it('duplicate mx lines (case-insensitive) are a warning', () => {
    const w = warningsOf('version: STSv1\nmode: enforce\nmx: a.example\nmx: A.EXAMPLE\nmax_age: 604800\n');
    assert.deepEqual(
      w.map((p) => [p.code, p.where]),
      [['MTASTS_DUPLICATE_MX', 'line 4']],
    );
    assert.match(w[0]!.message, /line 3/);
  });

  it('version not on the first line is a warning', () => {
    const w = warningsOf('mode: enforce\nmx: a.example\nversion: STSv1\nmax_age: 604800\n');
    assert.deepEqual(
      w.map((p) => [p.code, p.where]),
      [['MTASTS_VERSION_NOT_FIRST', 'line 3']],
    );
  });

  it('mode none with mx gives no warning', () => {
    assert.deepEqual(warningsOf('version: STSv1\nmode: none\nmx: a.example\nmax_age: 604800\n'), []);
  });
});

// Valid policies for property tests.
const labelArb = fc
  .string({ unit: fc.constantFrom(...'abcxyz019-'), minLength: 1, maxLength: 12 })
  .filter((l) => !l.startsWith('-') && !l.endsWith('-'));
const hostArb = fc.array(labelArb, { minLength: 1, maxLength: 4 }).map((l) => l.join('.'));
const mxArb = fc.tuple(fc.boolean(), hostArb).map(([wild, host]) => (wild ? `*.${host}` : host));
const extNameArb = fc
  .tuple(fc.constantFrom(...'aZ9'), fc.string({ unit: fc.constantFrom(...'aZ9_-.'), maxLength: 31 }))
  .map(([a, b]) => a + b)
  .filter((n) => !['version', 'mode', 'max_age', 'mx'].includes(n));
const extValueArb = fc
  .string({ unit: fc.constantFrom(...'ab =;#:é€😀.'), minLength: 1, maxLength: 30 })
  .map((v) => v.trim())
  .filter((v) => v !== '');
const policyArb: fc.Arbitrary<StsPolicy> = fc
  .record({
    mode: fc.constantFrom('enforce' as const, 'testing' as const, 'none' as const),
    maxAge: fc.integer({ min: 0, max: MAX_AGE_LIMIT }),
    mx: fc.array(mxArb, { maxLength: 5 }),
    extensions: fc.array(fc.tuple(extNameArb, extValueArb), { maxLength: 3 }),
  })
  .filter((p) => p.mode === 'none' || p.mx.length > 0)
  .map((p) => ({ mode: p.mode, maxAge: p.maxAge, mx: p.mx, extensions: p.extensions }));

describe('formatPolicy', () => {
  it('writes version first, LF line ends and a final newline', () => {
    const text = formatPolicy({
      mode: 'enforce',
      maxAge: 604800,
      mx: ['mail.example.com', '*.example.net'],
      extensions: [['x-a', 'b c']],
    });
    assert.equal(
      text,
      'version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 604800\nx-a: b c\n',
    );
  });

  it('round-trips generated policies: parse(format(p)) = p, strict', () => {
    fc.assert(
      fc.property(policyArb, (p) => {
        const text = formatPolicy(p);
        assert.ok(text.startsWith('version: STSv1\n') && text.endsWith('\n') && !text.includes('\r'));
        assert.deepEqual(parsePolicy(text, { strict: true }).policy, p);
      }),
      { numRuns: 500 },
    );
  });

  it('CRLF and extra WSP after ":" parse to the same policy', () => {
    fc.assert(
      fc.property(policyArb, fc.constantFrom('', ' ', '\t', ' \t '), (p, wsp) => {
        const text = formatPolicy(p)
          .split('\n')
          .map((line) => line.replace(': ', `:${wsp}`))
          .join(`${wsp}\r\n`);
        assert.deepEqual(parsePolicy(text, { strict: true }).policy, p);
      }),
      { numRuns: 300 },
    );
  });
});

describe('parsePolicy fuzz', () => {
  const pieces = [
    'version',
    'mode',
    'mx',
    'max_age',
    ':',
    ': ',
    'STSv1',
    'enforce',
    'testing',
    'none',
    '*.',
    'example.com',
    '604800',
    '\n',
    '\r\n',
    '\r',
    ' ',
    '\t',
    '\uFEFF',
    'é',
    '_',
    '-',
    '.',
    '#',
    '0',
  ];
  it('random field-like text only ever gives a result or an MtaStsError', () => {
    const textArb = fc.array(fc.constantFrom(...pieces), { maxLength: 60 }).map((a) => a.join(''));
    fc.assert(
      fc.property(textArb, fc.boolean(), (text, strict) => {
        try {
          parsePolicy(text, { strict });
        } catch (err) {
          assert.ok(err instanceof MtaStsError, String(err));
          assert.ok(err.problems.length > 0 && err.problems.every((p) => p.severity === 'error'));
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('random bytes decoded as UTF-8 only ever give a result or an MtaStsError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 500 }), (bytes) => {
        try {
          parsePolicy(Buffer.from(bytes).toString('utf8'));
        } catch (err) {
          assert.ok(err instanceof MtaStsError, String(err));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('huge lines and long runs of white space are handled', () => {
    const spaces = ' '.repeat(200_000);
    const err = parseError(`version: STSv1\nmode:${spaces}x${spaces}y\nmx: a.b\nmax_age: 1\n`);
    assert.deepEqual(codes(err.problems), ['MTASTS_POLICY_MODE']);
    const many = parseError(`${'x\n'.repeat(20_000)}`);
    assert.equal(many.problems.length, 20_003);
  });
});
