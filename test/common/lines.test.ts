// boundedLines (src/common/lines.ts): the same lines whatever the chunking, CRLF, and a cap held while reading.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { boundedLines } from '../../src/common/lines.js';

async function collect(chunks: string[], max: number) {
  async function* source() {
    for (const c of chunks) yield Buffer.from(c);
  }
  const out = [];
  for await (const line of boundedLines(source(), max)) out.push(line);
  return out;
}

describe('boundedLines', () => {
  it('gives the lines of any chunking (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.stringMatching(/^[a-z é]{0,20}$/), { maxLength: 20 }),
        fc.integer({ min: 1, max: 7 }),
        async (lines, size) => {
          const text = lines.map((l) => `${l}\n`).join('');
          const chunks: string[] = [];
          for (let i = 0; i < text.length; i += size) chunks.push(text.slice(i, i + size));
          const got = await collect(chunks, 1000);
          assert.deepEqual(
            got.map((l) => l.text),
            lines,
          );
        },
      ),
    );
  });

  it('splits a multi-byte character across chunks correctly and strips CR', async () => {
    const bytes = Buffer.from('é\r\nx');
    async function* source() {
      yield bytes.subarray(0, 1);
      yield bytes.subarray(1);
    }
    const out = [];
    for await (const l of boundedLines(source(), 100)) out.push(l.text);
    assert.deepEqual(out, ['é', 'x']);
  });

  it('cuts an oversized line, marks it, and goes on with the next', async () => {
    const got = await collect(['ab', 'cdefgh', 'ij\nok\n', 'x'.repeat(50)], 5);
    assert.deepEqual(
      got.map((l) => [l.number, l.text, l.oversized]),
      [
        [1, 'abcde', true],
        [2, 'ok', false],
        [3, 'xxxxx', true],
      ],
    );
  });
});
