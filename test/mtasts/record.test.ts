// RFC 8461 §3.1: the _mta-sts TXT record.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MtaStsError } from '../../src/mtasts/error.js';
import {
  formatStsRecord,
  parseStsRecord,
  type StsRecord,
  selectStsRecord,
  stsIdFromDate,
} from '../../src/mtasts/record.js';

/** Parse and expect an MtaStsError; returns it. */
function parseError(text: string): MtaStsError {
  try {
    parseStsRecord(text);
  } catch (err) {
    assert.ok(err instanceof MtaStsError, `expected MtaStsError for ${JSON.stringify(text)}, got ${err}`);
    return err;
  }
  assert.fail(`expected ${JSON.stringify(text)} to be rejected`);
}

describe('parseStsRecord: valid records (RFC 8461 §3.1)', () => {
  const good: Array<[string, StsRecord]> = [
    ['v=STSv1; id=20160831085700Z;', { id: '20160831085700Z', extensions: [] }],
    ['v=STSv1; id=a', { id: 'a', extensions: [] }],
    ['v=STSv1;id=1577377920599;', { id: '1577377920599', extensions: [] }],
    ['v=STSv1; \t id=20160831085700Z  \t;', { id: '20160831085700Z', extensions: [] }],
    ['v=STSv1 ; id=abc', { id: 'abc', extensions: [] }], // erratum 6285: WSP before ";"
    ['v=STSv1\t;id=abc;  ', { id: 'abc', extensions: [] }], // the optional final ";" may carry WSP
    [
      'v=STSv1; id=ABCdef0123456789ABCdef0123456789',
      { id: 'ABCdef0123456789ABCdef0123456789', extensions: [] },
    ],
    [
      'v=STSv1; id=a; more=a; ext=2',
      {
        id: 'a',
        extensions: [
          ['more', 'a'],
          ['ext', '2'],
        ],
      },
    ],
    [
      'v=STSv1; x.y-z_1=!"#$%&\'()*+,-./:<>?@[]^`{|}~; id=1',
      { id: '1', extensions: [['x.y-z_1', '!"#$%&\'()*+,-./:<>?@[]^`{|}~']] },
    ],
    ['v=STSv1; ext=1; id=7', { id: '7', extensions: [['ext', '1']] }],
  ];
  for (const [text, expected] of good) {
    it(`accepts ${JSON.stringify(text)}`, () => {
      assert.deepEqual(parseStsRecord(text).record, expected);
    });
  }

  it('notes extension fields and warns about WSP after the last field', () => {
    const { warnings } = parseStsRecord('v=STSv1; id=1; foo=bar ');
    assert.deepEqual(
      warnings.map((w) => [w.severity, w.code]),
      [
        ['warning', 'MTASTS_RECORD_TRAILING_SPACE'],
        ['note', 'MTASTS_EXTENSION_FIELD'],
      ],
    );
    assert.deepEqual(parseStsRecord('v=STSv1; id=1;').warnings, []);
  });
});

describe('parseStsRecord: invalid records', () => {
  const bad: Array<[string, string]> = [
    ['', 'MTASTS_RECORD_VERSION'],
    ['v=STSv0', 'MTASTS_RECORD_VERSION'],
    ['v=STSv10', 'MTASTS_RECORD_VERSION'],
    ['v=STSv12;id=20180907T090909;', 'MTASTS_RECORD_VERSION'],
    ['v=STSv2; id=1', 'MTASTS_RECORD_VERSION'],
    ['V=STSv1; id=1', 'MTASTS_RECORD_VERSION'],
    [' v=STSv1; id=1', 'MTASTS_RECORD_VERSION'],
    ['id=20180907T090909; v=STSv1;', 'MTASTS_RECORD_VERSION'],
    ['azazaza;asdasdasdasd', 'MTASTS_RECORD_VERSION'],
    ['v=spf1 -all', 'MTASTS_RECORD_VERSION'],
    ['v=STSv1', 'MTASTS_RECORD_ID'],
    ['v=STSv1;', 'MTASTS_RECORD_ID'],
    ['v=STSv1; ext=1', 'MTASTS_RECORD_ID'],
    ['v=STSv1; id=', 'MTASTS_RECORD_ID'],
    ['v=STSv1; id=012345678901234567890123456789012', 'MTASTS_RECORD_ID'],
    ['v=STSv1; id=test-123', 'MTASTS_RECORD_ID'],
    ['v=STSv1; id=2024 01', 'MTASTS_RECORD_ID'],
    ['v=STSv1; ID=abc', 'MTASTS_RECORD_ID'],
    ['v=STSv1; id=foo; id=bar', 'MTASTS_RECORD_DUPLICATE_ID'],
    ['v=STSv1; id=foo; id=foo', 'MTASTS_RECORD_DUPLICATE_ID'],
    ['v=STSv1; id=a; more=', 'MTASTS_RECORD_EXTENSION'],
    ['v=STSv1; id=a; a12345678901234567890123456789012=1', 'MTASTS_RECORD_EXTENSION'],
    ['v=STSv1; id=a; 1%=a', 'MTASTS_RECORD_EXTENSION'],
    ['v=STSv1; id=a; _x=a', 'MTASTS_RECORD_EXTENSION'],
    ['v=STSv1; id=a; test==', 'MTASTS_RECORD_EXTENSION'],
    ['v=STSv1; id=a; ext=a b', 'MTASTS_RECORD_EXTENSION'],
    ['v=STSv1; id=a; ext=é', 'MTASTS_RECORD_EXTENSION'],
    ['v=STSv1; id=a;;', 'MTASTS_RECORD_SYNTAX'],
    ['v=STSv1;; id=a', 'MTASTS_RECORD_SYNTAX'],
    ['v=STSv1; id=a; bad', 'MTASTS_RECORD_SYNTAX'],
    ['v=STSv1 x; id=a', 'MTASTS_RECORD_VERSION'],
  ];
  for (const [text, code] of bad) {
    it(`rejects ${JSON.stringify(text)} with ${code}`, () => {
      const err = parseError(text);
      assert.equal(err.code, code);
      assert.ok(err.problems.every((p) => p.severity === 'error'));
    });
  }

  it('lists every error, each with where it is', () => {
    const err = parseError('v=STSv1; id=a-b; 1%=x; y=;;z');
    assert.deepEqual(
      err.problems.map((p) => [p.code, p.where]),
      [
        ['MTASTS_RECORD_ID', 'field 2'],
        ['MTASTS_RECORD_EXTENSION', 'field 3'],
        ['MTASTS_RECORD_EXTENSION', 'field 4'],
        ['MTASTS_RECORD_SYNTAX', 'field 5'],
        ['MTASTS_RECORD_SYNTAX', 'field 6'],
      ],
    );
    assert.match(err.message, /^5 errors: field 2: id "a-b"/);
  });
});

describe('formatStsRecord and stsIdFromDate', () => {
  it('formats the record with extensions', () => {
    assert.equal(formatStsRecord({ id: '20261123072800', extensions: [] }), 'v=STSv1; id=20261123072800');
    assert.equal(formatStsRecord({ id: 'x1', extensions: [['ext', 'v']] }), 'v=STSv1; id=x1; ext=v');
  });

  it('makes a UTC YYYYMMDDHHMMSS id', () => {
    assert.equal(stsIdFromDate(new Date(Date.UTC(2026, 10, 23, 7, 28, 0))), '20261123072800');
    assert.equal(stsIdFromDate(new Date('1999-01-02T03:04:05.999+05:00')), '19990101220405');
  });

  it('round-trips generated records: parse(format(r)) = r', () => {
    const alnum = fc.constantFrom(...'abcXYZ0189');
    const id = fc.string({ unit: alnum, minLength: 1, maxLength: 32 });
    const extName = fc
      .tuple(alnum, fc.string({ unit: fc.constantFrom(...'aZ9_-.'), maxLength: 31 }))
      .map(([a, b]) => a + b)
      .filter((n) => n !== 'id');
    const extValue = fc.string({
      unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
      minLength: 1,
      maxLength: 20,
    });
    const valueOk = (v: string) => !v.includes(';') && !v.includes('=');
    const record = fc.record({
      id,
      extensions: fc.array(fc.tuple(extName, extValue.filter(valueOk)), { maxLength: 4 }),
    });
    fc.assert(
      fc.property(record, (r) => {
        assert.deepEqual(parseStsRecord(formatStsRecord(r)).record, { id: r.id, extensions: r.extensions });
      }),
    );
  });

  it('ids from any date parse as record ids', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date(0), max: new Date(Date.UTC(9999, 11, 31)), noInvalidDate: true }),
        (d) => {
          const id = stsIdFromDate(d);
          assert.match(id, /^\d{14}$/);
          assert.equal(parseStsRecord(formatStsRecord({ id, extensions: [] })).record.id, id);
        },
      ),
    );
  });
});

describe('selectStsRecord (RFC 8461 §3.1: exactly one v=STSv1 record)', () => {
  it('picks the one STS record among others', () => {
    const r = selectStsRecord(['v=spf1 -all', 'v=STSv1; id=1', 'hello']);
    assert.equal(r.kind, 'one');
    assert.equal(r.kind === 'one' && r.record, 'v=STSv1; id=1');
  });
  it('accepts WSP before the first ";"', () => {
    assert.equal(selectStsRecord(['v=STSv1 ; id=1']).kind, 'one');
  });
  it('none when no record starts with "v=STSv1;"', () => {
    assert.equal(selectStsRecord([]).kind, 'none');
    assert.equal(selectStsRecord(['v=STSv1', 'v=STSv10; id=1', ' v=STSv1; id=1']).kind, 'none');
  });
  it('many (= no policy) when two records remain', () => {
    assert.equal(selectStsRecord(['v=STSv1; id=1', 'v=STSv1; id=2']).kind, 'many');
  });
});

describe('parseStsRecord fuzz', () => {
  it('random strings only ever give a result or an MtaStsError', () => {
    const chars = fc.constantFrom(...'v=STSv1;id 	=;xX0-_.é\r\n'.split(''), 'v=STSv1', 'id=', '; ');
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: chars, maxLength: 40 })), (text) => {
        try {
          parseStsRecord(text);
        } catch (err) {
          assert.ok(err instanceof MtaStsError, String(err));
          assert.ok(err.problems.length > 0);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('random bytes decoded as UTF-8 only ever give a result or an MtaStsError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          parseStsRecord(`v=STSv1; id=1; ${Buffer.from(bytes).toString('utf8')}`);
        } catch (err) {
          assert.ok(err instanceof MtaStsError, String(err));
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('long runs of white space are handled', () => {
    const err = parseError(`v=STSv1; id=${' '.repeat(100_000)}x${' '.repeat(100_000)}y`);
    assert.equal(err.code, 'MTASTS_RECORD_ID');
  });
});
