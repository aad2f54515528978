import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DmarcError } from '../../src/dmarc/error.js';
import { type DmarcRecord, type DmarcUri, formatDmarc, parseDmarc } from '../../src/dmarc/record.js';

interface Row {
  record: string;
  expected: 'valid' | 'invalid';
  codes: string;
  why: string;
}

function readTable(): Row[] {
  const text = readFileSync(new URL('../fixtures/dmarc/records.tsv', import.meta.url), 'utf8');
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

function parseError(text: string): DmarcError {
  try {
    parseDmarc(text);
  } catch (e) {
    assert.ok(e instanceof DmarcError, `expected DmarcError, got ${e}`);
    return e;
  }
  assert.fail(`expected "${text}" to be rejected`);
}

describe('parseDmarc: table of RFC 7489 rules (fixtures/dmarc/records.tsv)', () => {
  const rows = readTable();
  it('has rows for both verdicts', () => {
    assert.ok(rows.filter((r) => r.expected === 'valid').length >= 20);
    assert.ok(rows.filter((r) => r.expected === 'invalid').length >= 40);
  });
  for (const row of rows) {
    it(`${row.expected}: ${JSON.stringify(row.record)} (${row.why})`, () => {
      if (row.expected === 'valid') {
        const { warnings } = parseDmarc(row.record);
        const got = [...new Set(warnings.map((w) => w.code))].sort();
        const want = row.codes === '-' ? [] : row.codes.split(',').sort();
        assert.deepEqual(got, want);
      } else {
        const error = parseError(row.record);
        assert.equal(error.code, row.codes);
        assert.equal(error.problems[0]!.severity, 'error');
      }
    });
  }
});

describe('parseDmarc: parsed values', () => {
  it('reads every RFC 7489 and RFC 9989 tag', () => {
    const { record } = parseDmarc(
      'v=DMARC1; p=Quarantine; sp=reject; np=none; adkim=s; aspf=R; rua=mailto:a@example.com!10M , mailto:b@example.net; ruf=mailto:f@example.com; fo=0:D; rf=AFRF; ri=3600; pct=25; psd=u; t=y; ext=on off',
    );
    const expected: DmarcRecord = {
      version: 'DMARC1',
      policy: 'quarantine',
      subdomainPolicy: 'reject',
      nonexistentSubdomainPolicy: 'none',
      dkimAlignment: 's',
      spfAlignment: 'r',
      aggregateReportUris: [{ uri: 'mailto:a@example.com', maxSize: '10m' }, { uri: 'mailto:b@example.net' }],
      failureReportUris: [{ uri: 'mailto:f@example.com' }],
      failureOptions: ['0', 'd'],
      reportFormats: ['afrf'],
      reportInterval: 3600,
      percent: 25,
      publicSuffixDomain: 'u',
      testing: 'y',
      unknownTags: [{ name: 'ext', value: 'on off' }],
    };
    assert.deepEqual(record, expected);
  });

  it('p after another tag is an error under RFC 7489, with a note that RFC 9989 allows it', () => {
    const error = parseError('v=DMARC1; sp=none; p=reject');
    assert.equal(error.code, 'DMARC_TAG_ORDER');
    assert.equal(error.where, 'tag p');
    assert.match(error.message, /RFC 9989 allows any order/);
    assert.deepEqual(
      error.problems.map((p) => [p.severity, p.code]),
      [
        ['error', 'DMARC_TAG_ORDER'],
        ['note', 'DMARC_BIS_TAG_ORDER'],
        ['warning', 'DMARC_NO_RUA'],
        ['warning', 'DMARC_WEAK_SUBDOMAIN_POLICY'],
      ],
    );
  });

  it('without p, a valid rua makes the record usable as p=none (RFC 7489 §6.6.3)', () => {
    const { record, warnings } = parseDmarc('v=DMARC1; rua=mailto:a@example.com');
    assert.equal(record.policy, undefined);
    assert.deepEqual(
      warnings.map((w) => [w.severity, w.code]),
      [
        ['warning', 'DMARC_NO_POLICY'],
        ['note', 'DMARC_BIS_NO_POLICY'],
      ],
    );
  });

  it('an invalid p is an error even when rua is valid', () => {
    assert.equal(parseError('v=DMARC1; p=foo; rua=mailto:a@example.com').code, 'DMARC_TAG_VALUE');
  });

  it('lists every error with the tag and URI it is about', () => {
    const error = parseError('v=DMARC1; p=reject; adkim=x; rua=mailto:a@example.com,bogus; pct=200; p=none');
    assert.deepEqual(
      error.problems.filter((p) => p.severity === 'error').map((p) => [p.code, p.where]),
      [
        ['DMARC_TAG_VALUE', 'tag adkim'],
        ['DMARC_URI', 'tag rua, URI 2'],
        ['DMARC_TAG_VALUE', 'tag pct'],
        ['DMARC_DUPLICATE_TAG', 'tag p'],
      ],
    );
    assert.match(error.message, /^tag adkim: .*\(and 3 more\)$/);
  });

  it('escapes control characters in messages', () => {
    const error = parseError('v=DMARC1; p=reject\x07');
    assert.equal(error.code, 'DMARC_SYNTAX');
    assert.ok(error.message.includes('\\x07'));
  });
});

// ---------- property tests ----------

const opt = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
const policy = fc.constantFrom('none' as const, 'quarantine' as const, 'reject' as const);
const word = fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,10}[a-z0-9]$/);
const uri: fc.Arbitrary<DmarcUri> = fc
  .tuple(
    fc.oneof(
      fc.tuple(word, word).map(([local, domain]) => `mailto:${local}@${domain}.example`),
      word.map((path) => `https://reports.example/${path}`),
    ),
    opt(fc.tuple(fc.integer({ min: 0, max: 999999 }), fc.constantFrom('', 'k', 'm', 'g', 't'))),
  )
  .map(([u, size]) => (size === undefined ? { uri: u } : { uri: u, maxSize: `${size[0]}${size[1]}` }));
const uris = fc.array(uri, { minLength: 1, maxLength: 3 });
const KNOWN = ['v', 'p', 'sp', 'np', 'rua', 'ruf', 'adkim', 'aspf', 'fo', 'rf', 'ri', 'pct', 'psd', 't'];
const unknownTag = fc
  .tuple(
    fc.stringMatching(/^[a-z][a-z0-9_]{0,8}$/).filter((n) => !KNOWN.includes(n)),
    fc.stringMatching(/^([!-:<-~]+( [!-:<-~]+)*)?$/),
  )
  .map(([name, value]) => ({ name, value }));

const dmarcRecord: fc.Arbitrary<DmarcRecord> = fc
  .record(
    {
      policy,
      subdomainPolicy: policy,
      nonexistentSubdomainPolicy: policy,
      aggregateReportUris: uris,
      failureReportUris: uris,
      dkimAlignment: fc.constantFrom('r' as const, 's' as const),
      spfAlignment: fc.constantFrom('r' as const, 's' as const),
      failureOptions: fc.array(fc.constantFrom('0' as const, '1' as const, 'd' as const, 's' as const), {
        minLength: 1,
        maxLength: 4,
      }),
      reportFormats: fc.array(fc.stringMatching(/^[a-z0-9-]{0,6}[a-z0-9]$/), { minLength: 1, maxLength: 3 }),
      reportInterval: fc.integer({ min: 0, max: 4294967295 }),
      percent: fc.integer({ min: 0, max: 100 }),
      publicSuffixDomain: fc.constantFrom('y' as const, 'n' as const, 'u' as const),
      testing: fc.constantFrom('y' as const, 'n' as const),
    },
    { requiredKeys: [] },
  )
  .chain((fields) =>
    fc
      .uniqueArray(unknownTag, { maxLength: 3, selector: (t) => t.name })
      .map((unknownTags): DmarcRecord => ({ version: 'DMARC1', ...fields, unknownTags })),
  )
  .filter((r) => r.policy !== undefined || r.aggregateReportUris !== undefined);

describe('formatDmarc / parseDmarc round trip', () => {
  it('parse(format(record)) gives the record back', () => {
    fc.assert(
      fc.property(dmarcRecord, (record) => {
        assert.deepEqual(parseDmarc(formatDmarc(record)).record, record);
      }),
      { numRuns: 500 },
    );
  });
  it('puts v and p first', () => {
    const text = formatDmarc({
      version: 'DMARC1',
      subdomainPolicy: 'reject',
      policy: 'quarantine',
      aggregateReportUris: [{ uri: 'mailto:a@example.com', maxSize: '10m' }, { uri: 'mailto:b@example.com' }],
      unknownTags: [],
    });
    assert.equal(
      text,
      'v=DMARC1; p=quarantine; sp=reject; rua=mailto:a@example.com!10m,mailto:b@example.com',
    );
  });
});

describe('parseDmarc fuzz: only ever DmarcError', () => {
  const onlyDmarcErrors = (text: string) => {
    try {
      const { record, warnings } = parseDmarc(text);
      assert.equal(record.version, 'DMARC1');
      assert.ok(Array.isArray(warnings));
    } catch (e) {
      if (!(e instanceof DmarcError)) throw e;
      assert.ok(e.problems.length > 0 && e.problems[0]!.severity === 'error');
    }
  };
  it('random strings', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), onlyDmarcErrors), { numRuns: 2000 });
  });
  it('random strings after the version', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary-ascii', maxLength: 300 }), (s) =>
        onlyDmarcErrors(`v=DMARC1; ${s}`),
      ),
      { numRuns: 2000 },
    );
  });
  it('random sequences of DMARC syntax pieces', () => {
    const piece = fc.constantFrom(
      'p',
      'sp',
      'np',
      'rua',
      'ruf',
      'adkim',
      'aspf',
      'fo',
      'rf',
      'ri',
      'pct',
      'psd',
      't',
      'x',
      '=',
      ';',
      ' ',
      '\t',
      ',',
      ':',
      '!',
      'mailto:',
      'a@example.com',
      'reject',
      'none',
      'r',
      's',
      'y',
      '0',
      '1',
      '100',
      '99999999999',
      'k',
      '%',
      '%2',
      'afrf',
      'd',
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 40 }), (pieces) =>
        onlyDmarcErrors(`v=DMARC1; ${pieces.join('')}`),
      ),
      { numRuns: 3000 },
    );
  });
});

describe('parseDmarc: long inputs (no regex backtracking blow-up)', () => {
  for (const text of [
    `v=DMARC1; p=${' '.repeat(100_000)}x`,
    `v=DMARC1; p=none; fo=0${' '.repeat(100_000)}x`,
    `v=DMARC1; p=none; rua=mailto:${'a@'.repeat(50_000)}`,
  ]) {
    it(`${text.length} characters starting ${JSON.stringify(text.slice(0, 16))}`, () => {
      assert.throws(() => parseDmarc(text), DmarcError);
    });
  }
});
