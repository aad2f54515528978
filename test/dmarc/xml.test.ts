// The scans of src/dmarc/xml.ts that run over a whole report before it is parsed, against the plain
// regular expressions they stand for (the oracle): where the last </feedback> ends, which DTD
// declaration is refused first, and where the first run longer than the cap begins (against the
// character-by-character scan it replaced).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { DmarcError } from '../../src/dmarc/error.js';
import { lastClosingFeedback, longRunAt, prescanXml } from '../../src/dmarc/xml.js';

/** Texts made of the pieces the scans look for, in any order. */
const pieces = fc
  .array(
    fc.constantFrom(
      '</feedback>',
      '</feedback  >',
      '</d:feedback>',
      '</feedback:feedback>',
      '</1:feedback>',
      '</ feedback>',
      '<feedback>',
      'feedback',
      '</',
      '<!',
      '<!doctype x>',
      '<!ENTITY',
      '<!-- c -->',
      '<![CDATA[x]]>',
      'a',
      ' ',
      ':',
      '>',
    ),
    { maxLength: 12 },
  )
  .map((parts) => parts.join(''));

describe('lastClosingFeedback', () => {
  test('ends where the last match of the regex ends', () => {
    fc.assert(
      fc.property(pieces, (text) => {
        let end = -1;
        for (const m of text.matchAll(/<\/(?:[A-Za-z_][\w.-]*:)?feedback\s*>/g)) end = m.index + m[0].length;
        assert.equal(lastClosingFeedback(text), end);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('prescanXml: declarations', () => {
  test('refuses the first declaration the regex finds, at its offset', () => {
    fc.assert(
      fc.property(pieces, (text) => {
        const first = /<!(DOCTYPE|ENTITY|ELEMENT|ATTLIST)/i.exec(text);
        let error: unknown;
        try {
          prescanXml(text);
        } catch (err) {
          error = err;
        }
        if (!first) return assert.equal(error, undefined);
        assert.ok(error instanceof DmarcError);
        assert.equal(error.code, 'DMARC_REPORT_DTD');
        assert.equal(error.where, `offset ${first.index}`);
        assert.match(error.message, new RegExp(`<!${first[1]!.toUpperCase()}>`));
      }),
      { numRuns: 2000 },
    );
  });
});

/** The scan longRunAt replaced, one character at a time: the oracle. */
function longRunByCharacter(text: string, max: number): number {
  let runStart = 0;
  for (let i = 0; text.length > max && i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x3c && text.startsWith('<![CDATA[', i)) {
      const end = text.indexOf(']]>', i);
      if ((end < 0 ? text.length : end) - i > max) return i;
      i = end < 0 ? text.length : end + 2;
      runStart = i + 1;
    } else if (c === 0x3c || c === 0x3e) {
      runStart = i + 1;
    } else if (i - runStart >= max) {
      return runStart;
    }
  }
  return -1;
}

describe('longRunAt', () => {
  test('finds the first run over the cap where the character-by-character scan finds it', () => {
    const runs = fc
      .array(
        fc.constantFrom(
          '<',
          '>',
          'a',
          'aaaa',
          'aaaaaaa',
          '<![CDATA[',
          ']]>',
          '<![CDATA[aa]]>',
          '<![CDATA[<>]]>',
          ']',
          '!',
        ),
        { maxLength: 16 },
      )
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(runs, fc.integer({ min: 1, max: 12 }), (text, max) => {
        assert.equal(longRunAt(text, max), longRunByCharacter(text, max));
      }),
      { numRuns: 5000 },
    );
  });
});
