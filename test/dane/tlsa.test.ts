// TLSA presentation format (RFC 6698 §2.2, RFC 7218 mnemonics, RFC 3597 generic RDATA): parse, format, owner names.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DaneError } from '../../src/dane/error.js';
import {
  describeTlsa,
  formatTlsa,
  parseTlsa,
  parseTlsaEntries,
  parseTlsaField,
  parseTlsaList,
  type TlsaRecord,
  tlsaOwner,
} from '../../src/dane/tlsa.js';

const H32 = '3111668338043de264d0256a702248696c9484b6221a42740f920187b4c61838';
const H64 = `${H32}${'ab'.repeat(32)}`;

function rdata(r: TlsaRecord): string {
  return `${r.usage} ${r.selector} ${r.matchingType} ${r.data.toString('hex')}`;
}

describe('parseTlsa: accepted forms', () => {
  const good: Array<[string, string]> = [
    [`3 1 1 ${H32}`, `3 1 1 ${H32}`],
    [`3 1 1 ${H32.toUpperCase()}`, `3 1 1 ${H32}`],
    [`  3\t1\t1\t${H32}  `, `3 1 1 ${H32}`],
    [`_25._tcp.mx.example.com. 3600 IN TLSA 3 1 1 ${H32}`, `3 1 1 ${H32}`],
    [`_25._tcp.mx.example.com. IN 3600 TLSA 3 1 1 ${H32}`, `3 1 1 ${H32}`],
    [`_25._tcp.mx.example.com. IN TLSA 3 1 1 ${H32}`, `3 1 1 ${H32}`],
    [`_25._tcp.mx IN TLSA 3 1 1 ${H32}`, `3 1 1 ${H32}`],
    [`1h IN TLSA 3 1 1 ${H32}`, `3 1 1 ${H32}`],
    [`IN TLSA 3 1 1 ${H32}`, `3 1 1 ${H32}`],
    [`tlsa 3 1 1 ${H32}`, `3 1 1 ${H32}`],
    [`_25._tcp.mx.example.com. TYPE52 3 1 1 ${H32}`, `3 1 1 ${H32}`],
    // hex split by spaces, TABs, newlines and parentheses
    [`3 1 1 ${H32.slice(0, 10)} ${H32.slice(10, 31)}\t${H32.slice(31)}`, `3 1 1 ${H32}`],
    [`3 1 1 ( ${H32.slice(0, 7)}\n ${H32.slice(7)} )`, `3 1 1 ${H32}`],
    [`_25._tcp.mx.example.com. 3600 IN TLSA 3 1 1 ab cd ( ${H32.slice(4)} )`, `3 1 1 abcd${H32.slice(4)}`],
    [`3 1 1 (${H32})`, `3 1 1 ${H32}`],
    [`( 3 1 1 ${H32} )`, `3 1 1 ${H32}`],
    [`3 1 1 ${H32} ; a comment`, `3 1 1 ${H32}`],
    [`3 1 1 ( ${H32.slice(0, 20)} ; first part\n ${H32.slice(20)} ) ; rest`, `3 1 1 ${H32}`],
    // an unclosed "(" at the very end is tolerated (zone data in the wild has it)
    [`3 0 1 ( ${H32.slice(0, 57)} ${H32.slice(57)}`, `3 0 1 ${H32}`],
    // RFC 7218 mnemonics, any case
    [`DANE-EE SPKI SHA2-256 ${H32}`, `3 1 1 ${H32}`],
    [`dane-ta cert sha2-512 ${H64}`, `2 0 2 ${H64}`],
    [`PKIX-TA Cert Full 3082`, '0 0 0 3082'],
    [`PKIX-EE SPKI SHA2-256 ${H32}`, `1 1 1 ${H32}`],
    ['PrivCert PrivSel PrivMatch 00', '255 255 255 00'],
    // unknown and private values parse; the length rule only applies to matching types 1 and 2
    ['255 255 255 6609', '255 255 255 6609'],
    ['4 2 3 00', '4 2 3 00'],
    ['003 001 000 00', '3 1 0 00'],
    // full-data matching type 0 of any length
    ['3 1 0 30820122300d', '3 1 0 30820122300d'],
    // RFC 3597 generic RDATA
    [`_25._tcp.mx.example.com. IN TYPE52 \\# 35 030101${H32}`, `3 1 1 ${H32}`],
    [`\\# 5 0300003082`, '3 0 0 3082'],
  ];
  for (const [input, expected] of good) {
    it(JSON.stringify(input).slice(0, 90), () => {
      assert.equal(rdata(parseTlsa(input)), expected);
    });
  }
});

describe('parseTlsa: rejected forms name the field', () => {
  const bad: Array<[string, DaneError['code'], RegExp]> = [
    ['', 'DANE_TLSA_SYNTAX', /usage is missing/],
    ['3', 'DANE_TLSA_SYNTAX', /selector is missing/],
    ['3 1', 'DANE_TLSA_SYNTAX', /matching type is missing/],
    ['3 1 1', 'DANE_TLSA_DATA', /certificate association data: missing/],
    [`256 1 1 ${H32}`, 'DANE_TLSA_FIELD', /usage: usage 256 is out of range/],
    [`3 300 1 ${H32}`, 'DANE_TLSA_FIELD', /selector: selector 300 is out of range/],
    [`3 1 99999 ${H32}`, 'DANE_TLSA_FIELD', /matching type: matching type 99999/],
    [`-1 1 1 ${H32}`, 'DANE_TLSA_FIELD', /usage: "-1" is not a number/],
    [`DANE-XX 1 1 ${H32}`, 'DANE_TLSA_FIELD', /usage: "DANE-XX" is not a number 0-255 or a known usage/],
    [`3 SHA2-256 1 ${H32}`, 'DANE_TLSA_FIELD', /selector: "SHA2-256"/],
    [`3 1 SPKI ${H32}`, 'DANE_TLSA_FIELD', /matching type: "SPKI"/],
    [`3 1 1 ${H32.slice(1)}`, 'DANE_TLSA_DATA', /odd number of hex digits \(63\)/],
    [`3 1 1 ${H32.slice(2)}`, 'DANE_TLSA_DATA', /SHA2-256\(1\) needs 32 bytes .* got 31/],
    [`3 1 1 ${H64}`, 'DANE_TLSA_DATA', /needs 32 bytes .* got 64/],
    [`3 1 2 ${H32}`, 'DANE_TLSA_DATA', /SHA2-512\(2\) needs 64 bytes .* got 32/],
    [`3 1 1 ${H32.slice(0, 62)}zz`, 'DANE_TLSA_DATA', /is not hexadecimal/],
    [`3 1 1 0x${H32}`, 'DANE_TLSA_DATA', /is not hexadecimal/],
    [`3 1 1 ${H32} )`, 'DANE_TLSA_SYNTAX', /"\)" without a "\("/],
    [`3 1 1 ( ( ${H32} ) )`, 'DANE_TLSA_SYNTAX', /nested/],
    [`_25._tcp.mx. CH TLSA 3 1 1 ${H32}`, 'DANE_TLSA_SYNTAX', /class CH/],
    [`a b TLSA 3 1 1 ${H32}`, 'DANE_TLSA_SYNTAX', /unexpected "b" before TLSA/],
    [`_25._tcp.mx.example.com. 3 1 1 ${H32}`, 'DANE_TLSA_FIELD', /usage: "_25._tcp.mx.example.com."/],
    ['\\# 4 030101', 'DANE_TLSA_DATA', /length is 4 but 3 octets follow/],
    ['\\# x 030101', 'DANE_TLSA_SYNTAX', /followed by its length/],
    ['\\# 3 030101', 'DANE_TLSA_DATA', /too short/],
    [`\\# 4 03010100`, 'DANE_TLSA_DATA', /needs 32 bytes/],
  ];
  for (const [input, code, message] of bad) {
    it(JSON.stringify(input).slice(0, 90), () => {
      assert.throws(
        () => parseTlsa(input),
        (err: unknown) => {
          assert.ok(err instanceof DaneError, `not a DaneError: ${String(err)}`);
          assert.equal(err.code, code);
          assert.match(err.message, message);
          assert.ok(err.problems.length >= 1);
          return true;
        },
      );
    });
  }

  it('lists every bad field, not only the first', () => {
    try {
      parseTlsa('9999 x 1 abc');
      assert.fail('expected a DaneError');
    } catch (err) {
      assert.ok(err instanceof DaneError);
      assert.deepEqual(
        err.problems.map((p) => p.where),
        ['usage', 'selector', 'certificate association data'],
      );
    }
  });
});

describe('parseTlsaField', () => {
  it('maps every RFC 7218 mnemonic', () => {
    const table: Array<[Parameters<typeof parseTlsaField>[0], string, number]> = [
      ['usage', 'PKIX-TA', 0],
      ['usage', 'PKIX-EE', 1],
      ['usage', 'DANE-TA', 2],
      ['usage', 'DANE-EE', 3],
      ['usage', 'PrivCert', 255],
      ['selector', 'Cert', 0],
      ['selector', 'SPKI', 1],
      ['selector', 'PrivSel', 255],
      ['matching type', 'Full', 0],
      ['matching type', 'SHA2-256', 1],
      ['matching type', 'SHA2-512', 2],
      ['matching type', 'PrivMatch', 255],
    ];
    for (const [field, text, value] of table) {
      assert.equal(parseTlsaField(field, text), value, `${field} ${text}`);
      assert.equal(parseTlsaField(field, text.toUpperCase()), value, `${field} ${text} upper case`);
    }
  });

  it('describes records with RFC 7218 names', () => {
    assert.equal(describeTlsa(parseTlsa(`3 1 1 ${H32}`)), 'DANE-EE(3) SPKI(1) SHA2-256(1)');
    assert.equal(describeTlsa(parseTlsa('7 9 8 00')), '7 9 8');
  });
});

describe('parseTlsaList', () => {
  it('reads one record per line, skipping comments and blank lines', () => {
    const text = `; rollover set\n\n3 1 1 ${H32}\n  ; indented comment\n_25._tcp.mx.example.com. IN TLSA 2 0 2 ${H64} ; CA\r\n`;
    assert.deepEqual(parseTlsaList(text).map(rdata), [`3 1 1 ${H32}`, `2 0 2 ${H64}`]);
  });

  it('joins a parenthesised record across lines', () => {
    const text = [
      `_25._tcp.mx.example.com. 3600 IN TLSA 3 1 1 (`,
      `    ${H32.slice(0, 32)}`,
      `    ${H32.slice(32)} )`,
      `_25._tcp.mx.example.com. 3600 IN TLSA 3 1 2 ( ${H64.slice(0, 40)}`,
      `${H64.slice(40)}`,
      ')',
    ].join('\n');
    const entries = parseTlsaEntries(text);
    assert.deepEqual(
      entries.map((e) => rdata(e.record)),
      [`3 1 1 ${H32}`, `3 1 2 ${H64}`],
    );
    assert.equal(entries[0]?.owner, '_25._tcp.mx.example.com.');
    assert.equal(entries[0]?.ttl, 3600);
  });

  it('ends an unclosed "(" at the next line that starts a new record', () => {
    const text = [
      `_443._tcp.data.example. IN TLSA 3 0 1 ( ${H32.slice(0, 57)} ${H32.slice(57)}`,
      `_443._tcp.data.example. IN TLSA 3 1 1 ( ${H32} )`,
    ].join('\n');
    assert.deepEqual(parseTlsaList(text).map(rdata), [`3 0 1 ${H32}`, `3 1 1 ${H32}`]);
  });

  it('reports problems of every line with its line number', () => {
    try {
      parseTlsaList(`3 1 1 ${H32}\n9 9\n3 1 1 abc\n`);
      assert.fail('expected a DaneError');
    } catch (err) {
      assert.ok(err instanceof DaneError);
      assert.equal(err.problems.length, 2);
      assert.equal(err.problems[0]?.where, 'line 2');
      assert.equal(err.problems[1]?.where, 'line 3, certificate association data');
      assert.match(err.message, /^line 2: .*matching type is missing \(and 1 more\)$/);
    }
  });

  it('does not rescan a record for each line while its "(" is open', () => {
    // Found by bench/fuzz.ts: 65,000 lines inside one "(" took 2 s, as every line scanned the whole
    // record so far for its parentheses. Counted, not timed: the characters lastIndexOf looks at.
    const text = `3 1 1 (${'\n'.repeat(20_000)}${H32} )`;
    let scanned = 0;
    const lastIndexOf = String.prototype.lastIndexOf;
    String.prototype.lastIndexOf = function (this: string, ...args: [string, number?]) {
      scanned += this.length;
      return lastIndexOf.apply(this, args);
    };
    let records: TlsaRecord[];
    try {
      records = parseTlsaList(text);
    } finally {
      String.prototype.lastIndexOf = lastIndexOf;
    }
    assert.deepEqual(records.map(rdata), [`3 1 1 ${H32}`]);
    assert.ok(scanned < 10 * text.length, `${scanned} characters scanned for an input of ${text.length}`);
  });

  it('returns nothing for an empty list', () => {
    assert.deepEqual(parseTlsaList('; nothing here\n\n'), []);
  });
});

describe('formatTlsa and tlsaOwner', () => {
  it('formats RDATA with lowercase hex, optionally with an owner', () => {
    const r = parseTlsa(`3 1 1 ${H32.toUpperCase()}`);
    assert.equal(formatTlsa(r), `3 1 1 ${H32}`);
    assert.equal(formatTlsa(r, tlsaOwner('mx.example.com')), `_25._tcp.mx.example.com. IN TLSA 3 1 1 ${H32}`);
  });

  it('builds owner names', () => {
    assert.equal(tlsaOwner('mx.example.com'), '_25._tcp.mx.example.com.');
    assert.equal(tlsaOwner('MX.Example.COM.', 465), '_465._tcp.mx.example.com.');
    assert.equal(tlsaOwner('localhost', 0), '_0._tcp.localhost.');
    for (const [host, port] of [
      ['', 25],
      ['a..b', 25],
      ['-a.example', 25],
      ['a b.example', 25],
      [`${'a'.repeat(64)}.example`, 25],
      ['mx.example.com', 65536],
      ['mx.example.com', -1],
      ['mx.example.com', 2.5],
    ] as const) {
      assert.throws(() => tlsaOwner(host, port), DaneError, `${host}:${port}`);
    }
  });
});

describe('properties', () => {
  const field = fc.integer({ min: 0, max: 255 });
  const record = fc
    .tuple(field, field, field, fc.uint8Array({ minLength: 1, maxLength: 100 }))
    .map(([usage, selector, matchingType, bytes]): TlsaRecord => {
      const length = matchingType === 1 ? 32 : matchingType === 2 ? 64 : bytes.length;
      const data = Buffer.alloc(length);
      Buffer.from(bytes).copy(data);
      return { usage, selector, matchingType, data };
    });

  it('parseTlsa(formatTlsa(r)) round-trips, with and without owner', () => {
    fc.assert(
      fc.property(record, fc.boolean(), (r, withOwner) => {
        const text = formatTlsa(r, withOwner ? '_25._tcp.mx.example.com.' : undefined);
        assert.deepEqual(parseTlsa(text), r);
      }),
    );
  });

  it('parseTlsaList round-trips several formatted records', () => {
    fc.assert(
      fc.property(fc.array(record, { maxLength: 5 }), (records) => {
        assert.deepEqual(parseTlsaList(records.map((r) => formatTlsa(r)).join('\n')), records);
      }),
    );
  });

  it('random strings only ever raise DaneError', () => {
    const alphabet = fc.constantFrom(...'0123456789abcdefABCDEF ()\t\n;\\#-TLSAINx._'.split(''));
    const inputs = fc.oneof(
      fc.string(),
      fc.string({ unit: alphabet, maxLength: 80 }),
      fc.string({ unit: 'binary' }),
    );
    fc.assert(
      fc.property(inputs, (text) => {
        for (const parse of [parseTlsa, parseTlsaList]) {
          try {
            parse(text);
          } catch (err) {
            assert.ok(err instanceof DaneError, `${JSON.stringify(text)}: ${String(err)}`);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });
});
