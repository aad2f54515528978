// src/common/text.ts: input text inside error messages (`shown`) and attacker-controlled report
// fields on a terminal (`terminalText`): control characters and bidi controls escaped, long text cut.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { shown, terminalText } from '../../src/common/text.js';

/** What must never reach a terminal raw: C0, DEL, C1, bidi marks/embeddings/overrides/isolates, lone surrogates. */
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|\p{Cs}/u;

describe('shown (error messages)', () => {
  it('escapes every non-ASCII character and cuts at 60 by default', () => {
    assert.equal(shown('a\u0000b\u00e9\u{1f600}'), 'a\\x00b\\xe9\\u{1f600}');
    assert.equal(shown('x'.repeat(61)), `${'x'.repeat(60)}...`);
    assert.equal(shown('abc', 2), 'ab...');
  });

  it('a megabyte input is cut without escaping all of it', () => {
    assert.equal(shown('\u0001'.repeat(1 << 20), 8), '\\x01\\x01...');
  });
});

describe('terminalText (report fields on a terminal)', () => {
  const cases: Array<[string, string, string]> = [
    ['plain ASCII unchanged', 'Sender Mail Co', 'Sender Mail Co'],
    ['names in other scripts kept', 'Müller GmbH – 株式会社', 'Müller GmbH – 株式会社'],
    ['escape sequences', '\u001b[2J\u001b]0;title\u0007', '\\x1b[2J\\x1b]0;title\\x07'],
    ['newline, tab, carriage return', 'a\nb\tc\rd', 'a\\x0ab\\x09c\\x0dd'],
    ['DEL and C1 (CSI)', '\u007f\u009b31m', '\\x7f\\x9b31m'],
    ['right-to-left override', 'evil\u202Etxt.exe', 'evil\\u{202e}txt.exe'],
    [
      'every embedding and override',
      '\u202a\u202b\u202c\u202d\u202e',
      '\\u{202a}\\u{202b}\\u{202c}\\u{202d}\\u{202e}',
    ],
    ['isolates', '\u2066\u2067\u2068\u2069', '\\u{2066}\\u{2067}\\u{2068}\\u{2069}'],
    ['marks', '\u200e\u200f\u061c', '\\u{200e}\\u{200f}\\u{61c}'],
    ['line and paragraph separators', '\u2028\u2029', '\\u{2028}\\u{2029}'],
    ['an unpaired surrogate', 'a\ud800b', 'a\\u{d800}b'],
    ['a pair stays a character', '\u{1f600}', '\u{1f600}'],
  ];
  for (const [name, input, expected] of cases) {
    it(name, () => assert.equal(terminalText(input), expected));
  }

  it('cuts long text, saying how long it was', () => {
    assert.equal(terminalText('abcdefghij', 4), 'abcd... (10 characters)');
    assert.equal(terminalText('abcd', 4), 'abcd');
    assert.equal(terminalText('abcdef', 4, 'over 256'), 'abcd... (over 256 characters)');
    // an escape is never cut in half
    assert.equal(terminalText('ab\u202ecd', 5), 'ab... (5 characters)');
  });

  it('a 1 MB value comes out short', () => {
    const out = terminalText(`\u202e${'x'.repeat(1 << 20)}`, 100);
    assert.ok(out.length < 130, `${out.length}`);
    assert.ok(out.startsWith('\\u{202e}xxx'));
    assert.ok(out.endsWith(`... (${(1 << 20) + 1} characters)`));
  });

  it('property: nothing unsafe survives, and the result is bounded', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 300 }),
        fc.integer({ min: 1, max: 80 }),
        (s, max) => {
          const out = terminalText(s, max);
          assert.doesNotMatch(out, UNSAFE);
          assert.ok(out.length <= max + ` ... (${s.length} characters)`.length);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
