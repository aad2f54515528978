// TLS-RPT TXT record (RFC 8460 §3): table tests per rule, round trip, fuzz.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { TlsRptError } from '../../src/tlsrpt/error.js';
import {
  checkReportUri,
  formatTlsRptRecord,
  parseTlsRptRecord,
  selectTlsRptRecord,
  type TlsRptRecord,
} from '../../src/tlsrpt/record.js';

function codeOf(text: string): string {
  try {
    parseTlsRptRecord(text);
  } catch (err) {
    assert.ok(err instanceof TlsRptError, `expected TlsRptError, got ${err}`);
    return err.code;
  }
  return 'valid';
}

describe('parseTlsRptRecord: valid records', () => {
  const good: Array<[string, TlsRptRecord]> = [
    ['v=TLSRPTv1; rua=mailto:reports@example.net', { rua: ['mailto:reports@example.net'], extensions: [] }],
    ['v=TLSRPTv1;rua=mailto:reports@example.net;', { rua: ['mailto:reports@example.net'], extensions: [] }],
    [
      'v=TLSRPTv1; rua=https://reports.example.net/tlsrpt',
      { rua: ['https://reports.example.net/tlsrpt'], extensions: [] },
    ],
    [
      'v=TLSRPTv1; rua=mailto:a@example.net,https://r.example.net/in',
      { rua: ['mailto:a@example.net', 'https://r.example.net/in'], extensions: [] },
    ],
    // RFC 8460 §3: *WSP "," *WSP between URIs
    [
      'v=TLSRPTv1; rua=mailto:a@example.net \t,\t https://r.example.net/in',
      { rua: ['mailto:a@example.net', 'https://r.example.net/in'], extensions: [] },
    ],
    // field-delim = *WSP ";" *WSP, and an optional final field-delim with trailing WSP
    ['v=TLSRPTv1 ;\trua=mailto:a@example.net ; ', { rua: ['mailto:a@example.net'], extensions: [] }],
    // extensions anywhere, rua not necessarily first
    [
      'v=TLSRPTv1; x-ext=on; rua=mailto:a@example.net; B.2_c-d=%41!~',
      {
        rua: ['mailto:a@example.net'],
        extensions: [
          ['x-ext', 'on'],
          ['B.2_c-d', '%41!~'],
        ],
      },
    ],
    // 32-character extension name is the maximum
    [
      `v=TLSRPTv1; rua=mailto:a@example.net; ${'n'.repeat(32)}=1`,
      {
        rua: ['mailto:a@example.net'],
        extensions: [['n'.repeat(32), '1']],
      },
    ],
    // percent-encoded mailto address and hfields (RFC 6068)
    [
      'v=TLSRPTv1; rua=mailto:tls%2Breports@example.net',
      { rua: ['mailto:tls%2Breports@example.net'], extensions: [] },
    ],
    [
      'v=TLSRPTv1; rua=mailto:a@example.net?subject=tlsrpt',
      { rua: ['mailto:a@example.net?subject=tlsrpt'], extensions: [] },
    ],
    // scheme names are case-insensitive (RFC 3986 §3.1)
    ['v=TLSRPTv1; rua=MAILTO:a@example.net', { rua: ['MAILTO:a@example.net'], extensions: [] }],
  ];
  for (const [text, expected] of good) {
    test(JSON.stringify(text), () => {
      assert.deepEqual(parseTlsRptRecord(text).record, expected);
    });
  }

  test('a ";" inside a URI ends the field: it must be percent-encoded', () => {
    assert.equal(codeOf('v=TLSRPTv1; rua=https://r.example.net/a;b'), 'TLSRPT_RECORD_SYNTAX');
    assert.deepEqual(parseTlsRptRecord('v=TLSRPTv1; rua=https://r.example.net/a%3Bb').record.rua, [
      'https://r.example.net/a%3Bb',
    ]);
  });
});

describe('parseTlsRptRecord: invalid records', () => {
  const bad: Array<[string, string, string]> = [
    ['', 'TLSRPT_RECORD_VERSION', 'empty'],
    ['rua=mailto:a@example.net', 'TLSRPT_RECORD_VERSION', 'no version'],
    ['v=tlsrptv1; rua=mailto:a@example.net', 'TLSRPT_RECORD_VERSION', 'version is case-sensitive'],
    [' v=TLSRPTv1; rua=mailto:a@example.net', 'TLSRPT_RECORD_VERSION', 'leading space'],
    ['v=TLSRPTv3; rua=mailto:a@example.net', 'TLSRPT_RECORD_VERSION', 'other version'],
    ['v=TLSRPTv11; rua=mailto:a@example.net', 'TLSRPT_RECORD_VERSION', 'version prefix'],
    ['v=TLSRPTv1 x; rua=mailto:a@example.net', 'TLSRPT_RECORD_VERSION', 'text after version'],
    ['v=TLSRPTv1\n; rua=mailto:a@example.net', 'TLSRPT_RECORD_VERSION', 'newline is not WSP'],
    ['v=TLSRPTv1', 'TLSRPT_RECORD_NO_RUA', 'version only'],
    ['v=TLSRPTv1;  ', 'TLSRPT_RECORD_NO_RUA', 'version and delimiter only'],
    ['v=TLSRPTv1; x=1; y=2', 'TLSRPT_RECORD_NO_RUA', 'extensions only'],
    ['v=TLSRPTv1; RUA=mailto:a@example.net', 'TLSRPT_RECORD_NO_RUA', '"rua" is case-sensitive'],
    [
      'v=TLSRPTv1; rua=mailto:a@example.net; rua=mailto:b@example.net',
      'TLSRPT_RECORD_DUPLICATE_RUA',
      'two rua',
    ],
    ['v=TLSRPTv1; rua=mailto:a@example.net;; x=1', 'TLSRPT_RECORD_SYNTAX', 'empty field'],
    ['v=TLSRPTv1;; rua=mailto:a@example.net', 'TLSRPT_RECORD_SYNTAX', 'empty first field'],
    ['v=TLSRPTv1; rua=mailto:a@example.net; flag', 'TLSRPT_RECORD_SYNTAX', 'field without ='],
    ['v=TLSRPTv1; rua=', 'TLSRPT_RECORD_BAD_URI', 'empty rua'],
    ['v=TLSRPTv1; rua= , ', 'TLSRPT_RECORD_BAD_URI', 'only empty URIs'],
    ['v=TLSRPTv1; rua=mailto:a@example.net,', 'TLSRPT_RECORD_BAD_URI', 'trailing comma'],
    ['v=TLSRPTv1; rua=a@example.net', 'TLSRPT_RECORD_BAD_URI', 'address without mailto:'],
    ['v=TLSRPTv1; rua=reports.example.net/tlsrpt', 'TLSRPT_RECORD_BAD_URI', 'no scheme'],
    ['v=TLSRPTv1; rua=http://reports.example.net/tlsrpt', 'TLSRPT_RECORD_BAD_URI', 'http is not allowed'],
    ['v=TLSRPTv1; rua=ftp://reports.example.net/', 'TLSRPT_RECORD_BAD_URI', 'other scheme'],
    ['v=TLSRPTv1; rua=https:reports', 'TLSRPT_RECORD_BAD_URI', 'https without host'],
    ['v=TLSRPTv1; rua=https://', 'TLSRPT_RECORD_BAD_URI', 'https with empty host'],
    ['v=TLSRPTv1; rua=https://[zz]/', 'TLSRPT_RECORD_BAD_URI', 'https with bad host'],
    ['v=TLSRPTv1; rua=mailto:', 'TLSRPT_RECORD_BAD_URI', 'mailto without address'],
    ['v=TLSRPTv1; rua=mailto:reports', 'TLSRPT_RECORD_BAD_URI', 'mailto without @'],
    ['v=TLSRPTv1; rua=mailto:@example.net', 'TLSRPT_RECORD_BAD_URI', 'mailto empty local part'],
    ['v=TLSRPTv1; rua=mailto:a..b@example.net', 'TLSRPT_RECORD_BAD_URI', 'mailto double dot'],
    ['v=TLSRPTv1; rua=mailto:a@-example.net', 'TLSRPT_RECORD_BAD_URI', 'mailto bad domain'],
    ['v=TLSRPTv1; rua=mailto:a%ZZ@example.net', 'TLSRPT_RECORD_BAD_URI', 'bad percent-escape'],
    ['v=TLSRPTv1; rua=mailto:a%FF@example.net', 'TLSRPT_RECORD_BAD_URI', 'percent-escape not UTF-8'],
    [
      'v=TLSRPTv1; rua=mailto:a@example.net!10m',
      'TLSRPT_RECORD_BAD_URI',
      'DMARC-style size: "!" must be encoded',
    ],
    ['v=TLSRPTv1; rua=mailto:a@example.net extra', 'TLSRPT_RECORD_BAD_URI', 'space in URI'],
    ['v=TLSRPTv1; rua=mailto:a@exämple.net', 'TLSRPT_RECORD_BAD_URI', 'raw non-ASCII in URI'],
    ['v=TLSRPTv1; rua=mailto:a@example.net; x=', 'TLSRPT_RECORD_BAD_EXTENSION', 'empty extension value'],
    ['v=TLSRPTv1; rua=mailto:a@example.net; x=a=b', 'TLSRPT_RECORD_BAD_EXTENSION', '"=" in value'],
    ['v=TLSRPTv1; rua=mailto:a@example.net; x=a b', 'TLSRPT_RECORD_BAD_EXTENSION', 'space in value'],
    ['v=TLSRPTv1; rua=mailto:a@example.net; x=\x01', 'TLSRPT_RECORD_BAD_EXTENSION', 'control char in value'],
    ['v=TLSRPTv1; rua=mailto:a@example.net; x=é', 'TLSRPT_RECORD_BAD_EXTENSION', 'non-ASCII value'],
    ['v=TLSRPTv1; rua=mailto:a@example.net; _x=1', 'TLSRPT_RECORD_BAD_EXTENSION', 'name starts with _'],
    ['v=TLSRPTv1; rua=mailto:a@example.net; x!=1', 'TLSRPT_RECORD_BAD_EXTENSION', 'bad name char'],
    [
      `v=TLSRPTv1; rua=mailto:a@example.net; ${'n'.repeat(33)}=1`,
      'TLSRPT_RECORD_BAD_EXTENSION',
      'name too long',
    ],
    ['v=TLSRPTv1; rua=mailto:a@example.net; =1', 'TLSRPT_RECORD_BAD_EXTENSION', 'empty name'],
  ];
  for (const [text, code, why] of bad) {
    test(`${why}: ${JSON.stringify(text)}`, () => {
      assert.equal(codeOf(text), code);
    });
  }

  test('every error is listed, with where it is', () => {
    try {
      parseTlsRptRecord('v=TLSRPTv1; rua=http://a.example/,mailto:x; bad; y=');
      assert.fail('expected an error');
    } catch (err) {
      assert.ok(err instanceof TlsRptError);
      assert.deepEqual(
        err.problems.map((p) => [p.code, p.where]),
        [
          ['TLSRPT_RECORD_BAD_URI', 'field 2 (rua URI 1)'],
          ['TLSRPT_RECORD_BAD_URI', 'field 2 (rua URI 2)'],
          ['TLSRPT_RECORD_SYNTAX', 'field 3'],
          ['TLSRPT_RECORD_BAD_EXTENSION', 'field 4'],
        ],
      );
      assert.match(err.message, /^field 2 \(rua URI 1\): .*https.*\(and 3 more\)$/);
    }
  });
});

describe('parseTlsRptRecord: notes', () => {
  test('WSP before the first ";" is valid but noted', () => {
    const { warnings } = parseTlsRptRecord('v=TLSRPTv1 ; rua=mailto:a@example.net');
    assert.deepEqual(
      warnings.map((w) => [w.severity, w.code]),
      [['note', 'TLSRPT_RECORD_WSP_BEFORE_SEMICOLON']],
    );
  });
  test('trailing WSP without a final ";" is accepted and noted', () => {
    const { record, warnings } = parseTlsRptRecord('v=TLSRPTv1; rua=mailto:a@example.net  ');
    assert.deepEqual(record.rua, ['mailto:a@example.net']);
    assert.deepEqual(
      warnings.map((w) => w.code),
      ['TLSRPT_RECORD_TRAILING_WSP'],
    );
  });
  // Found by bench/fuzz.ts: a regex trim (/[ \t]+$/) took 4.5 s on this record; trimming is a loop now.
  test('a long run of WSP inside a field is kept in its value, not trimmed away', () => {
    const spaces = ' '.repeat(64_000);
    assert.throws(
      () => parseTlsRptRecord(`v=TLSRPTv1; rua=mailto:a@example.com; x=${spaces}y`),
      (err: unknown) =>
        err instanceof TlsRptError && err.problems.some((p) => p.code === 'TLSRPT_RECORD_BAD_EXTENSION'),
    );
    const { record } = parseTlsRptRecord(`v=TLSRPTv1;${spaces}rua=mailto:a@example.com${spaces};${spaces}`);
    assert.deepEqual(record.rua, ['mailto:a@example.com']);
  });
  test('a clean record has no warnings', () => {
    assert.deepEqual(parseTlsRptRecord('v=TLSRPTv1; rua=mailto:a@example.net').warnings, []);
  });
});

describe('checkReportUri', () => {
  const good = [
    'mailto:a@example.net',
    'mailto:%22odd%20local%22@example.net',
    'mailto:a@[192.0.2.1]',
    'mailto:a@b.example%2Cc@d.example',
    'https://r.example.net',
    'https://r.example.net/path?q=1#frag',
    'HTTPS://R.EXAMPLE.NET/',
  ];
  for (const uri of good) test(`accepts ${uri}`, () => assert.equal(checkReportUri(uri), undefined));
  const bad = ['mailto:a@b!c', 'http://r.example.net/', 'urn:x:y', 'https://r.example.net/%', 'x'];
  for (const uri of bad) test(`rejects ${uri}`, () => assert.equal(typeof checkReportUri(uri), 'string'));
});

describe('selectTlsRptRecord', () => {
  test('picks the one TLS-RPT record among other TXT records', () => {
    const r = selectTlsRptRecord([
      'v=spf1 -all',
      'v=TLSRPTv1; rua=mailto:a@example.net',
      'v=TLSRPTv10; rua=x',
    ]);
    assert.equal(r.kind, 'one');
    assert.equal(r.kind === 'one' && r.record, 'v=TLSRPTv1; rua=mailto:a@example.net');
  });
  test('none and many', () => {
    assert.equal(selectTlsRptRecord(['v=TLSRPTv1', 'hello']).kind, 'none');
    assert.equal(
      selectTlsRptRecord(['v=TLSRPTv1;rua=mailto:a@x.example', 'v=TLSRPTv1 ;rua=mailto:b@x.example']).kind,
      'many',
    );
  });
});

describe('formatTlsRptRecord', () => {
  test('canonical form', () => {
    assert.equal(
      formatTlsRptRecord({
        rua: ['mailto:a@b.example', 'https://x.example/tlsrpt'],
        extensions: [['x', '1']],
      }),
      'v=TLSRPTv1; rua=mailto:a@b.example,https://x.example/tlsrpt; x=1',
    );
  });

  const alnum = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'.split('');
  const label = fc
    .array(fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'.split('')), {
      minLength: 1,
      maxLength: 10,
    })
    .map((cs) => cs.join(''));
  const domain = fc.array(label, { minLength: 1, maxLength: 3 }).map((ls) => `${ls.join('.')}.example`);
  const atext = fc.constantFrom(..."abcXYZ019!#$&'*+/=?^_`{|}~-".split(''));
  const localPart = fc
    .array(
      fc.array(atext, { minLength: 1, maxLength: 6 }).map((cs) => cs.join('')),
      { minLength: 1, maxLength: 3 },
    )
    .map((atoms) => atoms.join('.'));
  // "!" must be percent-encoded in a report URI (RFC 8460 §3); everything else in atext is URI-safe.
  const mailto = fc
    .tuple(localPart, domain)
    .map(([l, d]) => `mailto:${encodeURIComponent(l).replace(/!/g, '%21').replace(/'/g, '%27')}@${d}`);
  const https = fc
    .tuple(domain, fc.array(label, { maxLength: 3 }))
    .map(([d, segments]) => `https://${d}/${segments.join('/')}`);
  const extName = fc
    .tuple(
      fc.constantFrom(...alnum),
      fc.array(fc.constantFrom(...alnum, '_', '-', '.'), { maxLength: 31 }).map((cs) => cs.join('')),
    )
    .map(([a, b]) => a + b)
    .filter((n) => n !== 'rua');
  const extValueChar = fc
    .integer({ min: 0x21, max: 0x7e })
    .filter((c) => c !== 0x3b && c !== 0x3d)
    .map((c) => String.fromCharCode(c));
  const extValue = fc.array(extValueChar, { minLength: 1, maxLength: 20 }).map((cs) => cs.join(''));
  const record: fc.Arbitrary<TlsRptRecord> = fc.record(
    {
      rua: fc.array(fc.oneof(mailto, https), { minLength: 1, maxLength: 4 }),
      extensions: fc.array(fc.tuple(extName, extValue), { maxLength: 4 }),
    },
    { noNullPrototype: true },
  );

  test('round trip: parse(format(x)) gives back x, without warnings', () => {
    fc.assert(
      fc.property(record, (r) => {
        const parsed = parseTlsRptRecord(formatTlsRptRecord(r));
        assert.deepEqual(parsed.record, r);
        assert.deepEqual(parsed.warnings, []);
      }),
      { numRuns: 500 },
    );
  });
});

describe('fuzz', () => {
  function onlyTypedErrors(text: string): void {
    try {
      parseTlsRptRecord(text);
    } catch (err) {
      assert.ok(err instanceof TlsRptError, `non-TlsRptError for ${JSON.stringify(text)}: ${err}`);
      assert.ok(err.problems.length > 0);
    }
  }
  test('random strings only ever give TlsRptError', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), onlyTypedErrors), { numRuns: 2000 });
  });
  test('random tails after the version only ever give TlsRptError', () => {
    const tail = fc.array(
      fc.constantFrom(';', ' ', '\t', '=', ',', 'rua', 'mailto:', 'https://', '@', 'x', '%', '!', 'é'),
      {
        maxLength: 30,
      },
    );
    fc.assert(
      fc.property(tail, (parts) => onlyTypedErrors(`v=TLSRPTv1${parts.join('')}`)),
      { numRuns: 3000 },
    );
  });
});
