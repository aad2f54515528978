// Netstrings and the socketmap request/reply forms (socketmap_table(5)): table tests, round trips, and
// random input that may only ever give a NetstringError, never another exception or a hang.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  decodeNetstring,
  encodeNetstring,
  type NetstringError,
  NetstringReader,
} from '../../src/policyd/netstring.js';
import {
  MAX_REQUEST_BYTES,
  makeReply,
  NOTFOUND_REPLY,
  normalizeKey,
  permReply,
  requestKey,
} from '../../src/policyd/socketmap.js';
import { secureAnswerText } from '../../src/sender/decide.js';

/** Feed chunks; collect strings and the first error. */
function parse(
  chunks: Array<string | Buffer>,
  maxLength = 100,
): { strings: string[]; error?: NetstringError } {
  const reader = new NetstringReader(maxLength);
  const strings: string[] = [];
  for (const chunk of chunks) {
    const error = reader.feed(Buffer.from(chunk), (b, s, e) => {
      strings.push(b.toString('utf8', s, e));
      return true;
    });
    if (error !== undefined) return { strings, error };
  }
  return { strings };
}

describe('NetstringReader', () => {
  const good: Array<[string, Array<string | Buffer>, string[]]> = [
    ['one', ['5:hello,'], ['hello']],
    ['empty payload', ['0:,'], ['']],
    ['two in one chunk', ['3:abc,2:de,'], ['abc', 'de']],
    ['split in the length', ['1', '2:hello world!,'], ['hello world!']],
    ['split before the colon', ['5', ':hello,'], ['hello']],
    ['split in the data', ['5:he', 'llo,'], ['hello']],
    ['split before the comma', ['5:hello', ','], ['hello']],
    ['leading zeros', ['005:hello,'], ['hello']],
    ['binary payload', [Buffer.from([0x33, 0x3a, 0x00, 0xff, 0x2c, 0x2c])], ['\u0000\ufffd,']],
    ['incomplete tail kept', ['5:hello,3:ab'], ['hello']],
    ['exactly maxLength', [`100:${'x'.repeat(100)},`], ['x'.repeat(100)]],
  ];
  for (const [name, chunks, expected] of good) {
    it(`parses: ${name}`, () => assert.deepEqual(parse(chunks), { strings: expected }));
  }

  const bad: Array<[string, string[], NetstringError]> = [
    ['letter in the length', ['5x:hello,'], 'NETSTRING_LENGTH'],
    ['no length', [':hello,'], 'NETSTRING_LENGTH'],
    ['negative length', ['-1:,'], 'NETSTRING_LENGTH'],
    ['space before the length', [' 5:hello,'], 'NETSTRING_LENGTH'],
    ['eleven digits', ['00000000005:hello,'], 'NETSTRING_LENGTH'],
    ['missing comma', ['5:hello!'], 'NETSTRING_COMMA'],
    ['too short data', ['6:hello,x'], 'NETSTRING_COMMA'],
    ['over maxLength', ['101:'], 'NETSTRING_TOO_LONG'],
    ['over maxLength, seen in the digits', ['99999'], 'NETSTRING_TOO_LONG'],
    ['a good one then garbage', ['5:hello,garbage'], 'NETSTRING_LENGTH'],
  ];
  for (const [name, chunks, error] of bad) {
    it(`refuses: ${name} (${error})`, () => assert.equal(parse(chunks).error, error));
  }

  it('stops when the handler says so, and resumes', () => {
    const reader = new NetstringReader(100);
    const seen: string[] = [];
    const handler = (b: Buffer, s: number, e: number) => {
      seen.push(b.toString('utf8', s, e));
      return false;
    };
    assert.equal(reader.feed(Buffer.from('1:a,1:b,1:c,'), handler), undefined);
    assert.deepEqual(seen, ['a']);
    assert.equal(reader.buffered, 8);
    reader.resume(handler);
    reader.resume(handler);
    assert.deepEqual(seen, ['a', 'b', 'c']);
    assert.equal(reader.buffered, 0);
  });

  it('keeps at most one netstring of partial input (a copy, not the chunk)', () => {
    const reader = new NetstringReader(10);
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    chunk.write('5:hello,8:par', 0);
    assert.equal(
      reader.feed(chunk.subarray(0, 13), () => true),
      undefined,
    );
    assert.equal(reader.buffered, 5);
  });

  it('round-trips any payloads, however the stream is cut', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 50 }), { maxLength: 10 }),
        fc.array(fc.nat({ max: 600 }), { maxLength: 8 }),
        (payloads, cuts) => {
          const stream = Buffer.concat(
            payloads.map((p) =>
              Buffer.concat([Buffer.from(`${p.length}:`), Buffer.from(p), Buffer.from(',')]),
            ),
          );
          const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
          const chunks: Buffer[] = [];
          let from = 0;
          for (const p of [...points, stream.length]) {
            chunks.push(stream.subarray(from, p));
            from = p;
          }
          const reader = new NetstringReader(50);
          const got: Buffer[] = [];
          for (const chunk of chunks) {
            assert.equal(
              reader.feed(chunk, (b, s, e) => {
                got.push(Buffer.from(b.subarray(s, e)));
                return true;
              }),
              undefined,
            );
          }
          assert.deepEqual(
            got.map((g) => g.toString('hex')),
            payloads.map((p) => Buffer.from(p).toString('hex')),
          );
          assert.equal(reader.buffered, 0);
        },
      ),
    );
  });

  it('parses only the given byte count of a reused read buffer, and keeps nothing of it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 50 }), { maxLength: 10 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 8 }),
        (payloads, sizes) => {
          const stream = Buffer.concat(
            payloads.map((p) =>
              Buffer.concat([Buffer.from(`${p.length}:`), Buffer.from(p), Buffer.from(',')]),
            ),
          );
          // As the server reads: every chunk lands at the start of one buffer, then the buffer is reused.
          const shared = Buffer.alloc(64, 0x39);
          const reader = new NetstringReader(50);
          const got: string[] = [];
          let from = 0;
          for (let i = 0; from < stream.length; i++) {
            const bytes = Math.min(sizes[i % sizes.length]!, stream.length - from);
            stream.copy(shared, 0, from, from + bytes);
            from += bytes;
            const error = reader.feed(
              shared,
              (b, s, e) => {
                got.push(b.toString('hex', s, e));
                return true;
              },
              bytes,
            );
            assert.equal(error, undefined);
            shared.fill(0x39); // digits: had the reader read past `bytes` or kept the buffer, it would show
          }
          assert.deepEqual(
            got,
            payloads.map((p) => Buffer.from(p).toString('hex')),
          );
          assert.equal(reader.buffered, 0);
        },
      ),
    );
  });

  it('random bytes give strings or a NetstringError, nothing else, and never hold more than a netstring', () => {
    const errors = new Set(['NETSTRING_LENGTH', 'NETSTRING_TOO_LONG', 'NETSTRING_COMMA']);
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 10 }), (chunks) => {
        const reader = new NetstringReader(64);
        for (const chunk of chunks) {
          const error = reader.feed(Buffer.from(chunk), () => true);
          if (error !== undefined) {
            assert.ok(errors.has(error));
            return;
          }
          assert.ok(reader.buffered <= 64 + 10 + 2);
        }
      }),
    );
  });

  it('encodes and decodes', () => {
    assert.equal(encodeNetstring('NOTFOUND ').toString(), '9:NOTFOUND ,');
    assert.equal(encodeNetstring('é').toString(), '2:é,');
    assert.equal(decodeNetstring(Buffer.from('3:abc,')), 'abc');
    assert.throws(() => decodeNetstring(Buffer.from('3:abc,1:d,')), /not exactly one netstring/);
    assert.throws(() => decodeNetstring(Buffer.from('3:abc,1')), /not exactly one netstring/);
    fc.assert(fc.property(fc.string(), (s) => assert.equal(decodeNetstring(encodeNetstring(s)), s)));
  });
});

describe('socketmap requests and replies', () => {
  const key = (request: string) => {
    const b = Buffer.from(`xx${request}yy`);
    return requestKey(b, 2, b.length - 2);
  };

  it('takes the key after the first space; any map name', () => {
    assert.equal(key('postfix example.com'), 'example.com');
    assert.equal(key('mta-sts EXAMPLE.com'), 'EXAMPLE.com');
    assert.equal(key('postfix '), '');
    assert.equal(key('postfix a b'), 'a b');
    assert.equal(key('postfix'), undefined);
    assert.equal(key(' example.com'), undefined, 'empty name');
    assert.equal(key(`${'n'.repeat(64)} example.com`), 'example.com');
    assert.equal(key(`${'n'.repeat(65)} example.com`), undefined, 'name too long');
  });

  const keys: Array<[string, string | RegExp]> = [
    ['example.com', 'example.com'],
    ['Example.COM', 'example.com'],
    ['example.com.', 'example.com'],
    ['[example.com]', 'example.com'],
    ['[example.com]:25', 'example.com'],
    ['[Mail.Example.com]:587', 'mail.example.com'],
    ['example.com:25', 'example.com'],
    ['bücher.example', 'xn--bcher-kva.example'],
    ['.example.com', /parent-domain key/],
    ['[192.0.2.1]:25', /an address/],
    ['[ipv6:2001:db8::1]', /an address/],
    ['192.0.2.1', /an address/],
    ['2001:db8::1', /an address/],
    ['', /empty key/],
    ['com', /single label/],
    ['exa mple.com', /not a domain name/],
    ['-bad.example.com', /not a domain name/],
    ['a..example.com', /not a domain name/],
    ['example.com:port', /not a domain name/],
    [`${'a'.repeat(64)}.example.com`, /longer than 63/],
    ['[example.com', /not a domain name/],
    ['under_score.example.com', /not a domain name/],
  ];
  for (const [input, expected] of keys) {
    it(`key ${JSON.stringify(input)}`, () => {
      const result = normalizeKey(input);
      if (typeof expected === 'string') assert.deepEqual(result, { domain: expected });
      else assert.match('notFound' in result ? result.notFound : 'a domain', expected);
    });
  }

  it('normalizeKey never throws, and is idempotent on what it accepts', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.domain(),
          fc.domain().map((d) => `[${d.toUpperCase()}]:25`),
        ),
        (input) => {
          const result = normalizeKey(input);
          if ('domain' in result) assert.deepEqual(normalizeKey(result.domain), result);
        },
      ),
    );
  });

  it('writes secure answers as postfix-mta-sts-resolver does', () => {
    assert.equal(
      secureAnswerText(['mx1.example.com', '*.example.net', 'MX2.Example.com', 'mx1.example.com']),
      'OK secure match=mx1.example.com:.example.net:mx2.example.com servername=hostname',
    );
  });

  it('builds replies as netstrings', () => {
    assert.equal(NOTFOUND_REPLY.bytes.toString(), '9:NOTFOUND ,');
    assert.equal(NOTFOUND_REPLY.kind, 'notfound');
    assert.equal(permReply('bad').bytes.toString(), '8:PERM bad,');
    const reply = makeReply('dane-only', 'OK dane-only');
    assert.equal(reply.bytes.toString(), '12:OK dane-only,');
    assert.equal(reply.kindIndex, 2);
    assert.ok(MAX_REQUEST_BYTES >= 1024 + 8);
  });
});
