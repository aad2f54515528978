// SMTP reply reader (src/smtp/reply.ts): RFC 5321 §4.2 reply syntax, the line and reply size caps, and
// fuzzing with random bytes (only SmtpError SMTP_PROTOCOL may come out).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  formatReply,
  MAX_LINE_BYTES,
  MAX_REPLY_BYTES,
  ReplyReader,
  replyText,
  SmtpError,
  type SmtpReply,
} from '../../src/smtp/reply.js';

function readAll(input: string | Buffer, chunkSize = Number.POSITIVE_INFINITY): SmtpReply[] {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const reader = new ReplyReader();
  const replies: SmtpReply[] = [];
  for (let i = 0; i < bytes.length; i += Math.min(chunkSize, bytes.length)) {
    replies.push(...reader.push(bytes.subarray(i, i + Math.min(chunkSize, bytes.length))));
  }
  assert.equal(reader.bufferedBytes, 0, 'input ends with a complete reply');
  return replies;
}

function protocolError(input: string | Buffer): SmtpError {
  const reader = new ReplyReader();
  try {
    reader.push(typeof input === 'string' ? Buffer.from(input, 'utf8') : input);
  } catch (err) {
    assert.ok(err instanceof SmtpError, `expected SmtpError, got ${err}`);
    assert.equal(err.code, 'SMTP_PROTOCOL');
    return err;
  }
  assert.fail(`accepted ${JSON.stringify(input.toString().slice(0, 60))}`);
}

describe('ReplyReader: good replies (RFC 5321 §4.2)', () => {
  const good: Array<[string, string, SmtpReply[]]> = [
    ['single line', '220 mx.example.com ESMTP\r\n', [{ code: 220, lines: ['mx.example.com ESMTP'] }]],
    ['code alone', '250\r\n', [{ code: 250, lines: [''] }]],
    ['code and space', '250 \r\n', [{ code: 250, lines: [''] }]],
    [
      'multi-line',
      '250-mx.example.com\r\n250-PIPELINING\r\n250 STARTTLS\r\n',
      [{ code: 250, lines: ['mx.example.com', 'PIPELINING', 'STARTTLS'] }],
    ],
    ['continuation without text', '220-\r\n220 ok\r\n', [{ code: 220, lines: ['', 'ok'] }]],
    ['bare LF line ends', '220-a\n220 b\n', [{ code: 220, lines: ['a', 'b'] }]],
    ['TAB in text', '220 a\tb\r\n', [{ code: 220, lines: ['a\tb'] }]],
    ['UTF-8 text (RFC 6531)', '220 grüße\r\n', [{ code: 220, lines: ['grüße'] }]],
    [
      '4xx and 5xx',
      '421 busy\r\n554 no\r\n',
      [
        { code: 421, lines: ['busy'] },
        { code: 554, lines: ['no'] },
      ],
    ],
    [
      'two replies in one chunk',
      '250 ok\r\n221 bye\r\n',
      [
        { code: 250, lines: ['ok'] },
        { code: 221, lines: ['bye'] },
      ],
    ],
  ];
  for (const [name, input, expected] of good) {
    it(name, () => {
      assert.deepEqual(readAll(input), expected);
      assert.deepEqual(readAll(input, 1), expected, 'byte by byte');
    });
  }

  it('returns nothing until the last line of a reply arrives', () => {
    const reader = new ReplyReader();
    assert.deepEqual(reader.push(Buffer.from('250-a\r\n250-b\r\n')), []);
    assert.ok(reader.bufferedBytes > 0);
    assert.deepEqual(reader.push(Buffer.from('250 c\r\n')), [{ code: 250, lines: ['a', 'b', 'c'] }]);
    assert.equal(reader.bufferedBytes, 0);
  });

  it('formats and describes replies', () => {
    assert.equal(formatReply({ code: 250, lines: ['a', 'b'] }), '250-a\r\n250 b\r\n');
    assert.equal(formatReply({ code: 250, lines: [] }), '250 \r\n');
    assert.equal(replyText({ code: 554, lines: ['go', 'away'] }), '554 go / away');
  });
});

describe('ReplyReader: bad replies', () => {
  const bad: Array<[string, string | Buffer, RegExp]> = [
    ['HTTP', 'HTTP/1.1 400 Bad Request\r\n', /not an SMTP reply line/],
    ['empty line', '\r\n', /not an SMTP reply line/],
    ['four digits', '2200 x\r\n', /not an SMTP reply line/],
    ['two digits', '22 x\r\n', /not an SMTP reply line/],
    ['first digit 1', '120 x\r\n', /not an SMTP reply line/],
    ['first digit 6', '620 x\r\n', /not an SMTP reply line/],
    ['second digit 6', '260 x\r\n', /not an SMTP reply line/],
    ['no separator', '250x\r\n', /not an SMTP reply line/],
    ['TLS record', Buffer.from([0x16, 0x03, 0x01, 0x00, 0x0a]), /not an SMTP reply line/],
    ['escape sequence', '220 \x1b[2Jhi\r\n', /not an SMTP reply line/],
    ['NUL', '220 a\x00b\r\n', /not an SMTP reply line/],
    ['CR inside', '220 a\rb\r\n', /not an SMTP reply line/],
    ['codes differ', '250-a\r\n251 b\r\n', /line 2 has code 251, the lines before had 250/],
  ];
  for (const [name, input, message] of bad) {
    it(name, () => assert.match(protocolError(input).message, message));
  }

  it('stays failed after an error', () => {
    const reader = new ReplyReader();
    assert.throws(() => reader.push(Buffer.from('garbage\r\n')), SmtpError);
    assert.throws(() => reader.push(Buffer.from('220 ok\r\n')), /not an SMTP reply line/);
  });
});

describe('ReplyReader: bounded memory', () => {
  it(`accepts a line of exactly ${MAX_LINE_BYTES} bytes with its CRLF, not one more`, () => {
    const text = 'x'.repeat(MAX_LINE_BYTES - 6);
    assert.equal(readAll(`220 ${text}\r\n`)[0]?.lines[0], text);
    assert.match(protocolError(`220 ${text}x\r\n`).message, /longer than 4096 bytes/);
  });

  it('rejects a 1 MiB line while holding at most one line of it', () => {
    const reader = new ReplyReader();
    const chunk = Buffer.alloc(1000, 'x');
    let fed = 0;
    assert.throws(() => {
      reader.push(Buffer.from('220-'));
      for (; fed < 1024 * 1024; fed += chunk.length) {
        reader.push(chunk);
        assert.ok(reader.bufferedBytes <= MAX_LINE_BYTES, `holds ${reader.bufferedBytes} bytes`);
      }
    }, /longer than 4096 bytes/);
    assert.ok(fed < 2 * MAX_LINE_BYTES, `stopped after ${fed} bytes`);
  });

  it(`rejects a multi-line reply larger than ${MAX_REPLY_BYTES} bytes`, () => {
    const line = `250-${'y'.repeat(1000)}\r\n`;
    const fits = Math.floor((MAX_REPLY_BYTES - 10) / line.length);
    assert.equal(readAll(`${line.repeat(fits)}250 end\r\n`)[0]?.lines.length, fits + 1);
    assert.match(protocolError(`${line.repeat(fits + 1)}250 end\r\n`).message, /larger than 65536 bytes/);
  });
});

const textChar = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c));
const replyArb: fc.Arbitrary<SmtpReply> = fc
  .tuple(
    fc.integer({ min: 2, max: 5 }),
    fc.integer({ min: 0, max: 5 }),
    fc.integer({ min: 0, max: 9 }),
    fc.array(
      fc.array(textChar, { maxLength: 40 }).map((cs) => cs.join('')),
      { minLength: 1, maxLength: 6 },
    ),
  )
  .map(([a, b, c, lines]) => ({ code: a * 100 + b * 10 + c, lines }));

describe('ReplyReader: properties', () => {
  it('reads back what formatReply wrote, however the bytes are split', () => {
    fc.assert(
      fc.property(
        fc.array(replyArb, { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 50 }),
        (rs, size) => {
          const input = rs.map(formatReply).join('');
          assert.deepEqual(readAll(input, size), rs);
        },
      ),
    );
  });

  it('random bytes give replies or SMTP_PROTOCOL, nothing else', () => {
    for (let i = 0; i < 500; i++) {
      const reader = new ReplyReader();
      const bytes = randomBytes(1 + (i % 200));
      try {
        reader.push(bytes);
      } catch (err) {
        assert.ok(
          err instanceof SmtpError && err.code === 'SMTP_PROTOCOL',
          `${err} for ${bytes.toString('hex')}`,
        );
      }
      assert.ok(reader.bufferedBytes <= MAX_LINE_BYTES);
    }
  });

  it('random lines that start like a reply give replies or SMTP_PROTOCOL', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 30 }), { maxLength: 8 }), (texts) => {
        const input = texts.map((t, i) => `250${i < texts.length - 1 ? '-' : ' '}${t}\r\n`).join('');
        try {
          readAll(input);
        } catch (err) {
          assert.ok(err instanceof SmtpError && err.code === 'SMTP_PROTOCOL', String(err));
        }
      }),
    );
  });
});
