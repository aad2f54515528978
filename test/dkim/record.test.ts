import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DkimError } from '../../src/dkim/error.js';
import { type DkimKeyRecord, parseDkimKey } from '../../src/dkim/record.js';

// Public keys made for these tests (see fixtures/dkim/README.md).
const KEYS: Record<string, string> = Object.fromEntries(
  readFileSync(new URL('../fixtures/dkim/keys.tsv', import.meta.url), 'utf8')
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => line.split('\t') as [string, string]),
);

/** Replaces {key-name} with the fixture key. */
function withKeys(template: string): string {
  return template.replace(/\{([a-z0-9-]+)\}/g, (_, name: string) => {
    const key = KEYS[name];
    assert.ok(key, `no fixture key ${name}`);
    return key;
  });
}

function parseError(text: string): DkimError {
  try {
    parseDkimKey(text);
  } catch (e) {
    assert.ok(e instanceof DkimError, `expected DkimError, got ${e}`);
    return e;
  }
  assert.fail(`expected "${text.slice(0, 60)}" to be rejected`);
}

// [record template, warning/note codes reported ('-' = none), why]
const VALID: [string, string, string][] = [
  ['v=DKIM1; k=rsa; p={rsa2048-spki}', '-', 'RSA 2048 SubjectPublicKeyInfo'],
  ['p={rsa2048-spki}', '-', 'v and k are optional'],
  ['v=DKIM1;p={rsa2048-spki};', '-', 'final ";"'],
  ['k=RSA; p={rsa2048-spki}', '-', 'keyword values are case-insensitive ABNF literals'],
  ['v=DKIM1; p={rsa1024-spki}', 'DKIM_KEY_WEAK', '1024 bits: below the 2048 recommended by RFC 8301'],
  ['v=DKIM1; p={rsa2048-pkcs1}', 'DKIM_KEY_PKCS1', 'bare PKCS#1 RSAPublicKey'],
  ['v=DKIM1; k=ed25519; p={ed25519-raw}', '-', 'RFC 8463 raw Ed25519 key'],
  ['v=DKIM1; p=', 'DKIM_KEY_REVOKED', 'empty p: revoked'],
  ['v=DKIM1; k=ed25519; p=', 'DKIM_KEY_REVOKED', 'revoked Ed25519 key'],
  ['v=DKIM1; h=sha256; p={rsa2048-spki}', '-', 'h=sha256'],
  ['v=DKIM1; h=sha1:sha256; p={rsa2048-spki}', 'DKIM_SHA1', 'sha1 allowed (RFC 8301)'],
  ['v=DKIM1; h=sha1; p={rsa2048-spki}', 'DKIM_SHA1,DKIM_NO_SHA256', 'sha1 only: unusable'],
  ['v=DKIM1; h=sha256 : sha512; p={rsa2048-spki}', 'DKIM_UNKNOWN_HASH', 'unknown hash is ignored'],
  ['v=DKIM1; s=email; p={rsa2048-spki}', '-', 's=email'],
  ['v=DKIM1; s=*:tlsrpt; p={rsa2048-spki}', '-', 'email and TLS-RPT (RFC 8460 §3)'],
  ['v=DKIM1; s=tlsrpt; p={rsa2048-spki}', 'DKIM_NOT_FOR_EMAIL', 'TLS-RPT only key'],
  ['v=DKIM1; s=email:chat; p={rsa2048-spki}', 'DKIM_UNKNOWN_SERVICE', 'unknown service type'],
  ['v=DKIM1; t=s; p={rsa2048-spki}', '-', 'strict flag'],
  ['v=DKIM1; t=y:s; p={rsa2048-spki}', 'DKIM_TESTING', 'testing flag'],
  ['v=DKIM1; t=x; p={rsa2048-spki}', 'DKIM_UNKNOWN_FLAG', 'unknown flag'],
  ['v=DKIM1; n=Key for the "newsletter" platform, ask IT; p={rsa2048-spki}', '-', 'notes'],
  ['v=DKIM1; p={rsa2048-spki}; foo=bar', 'DKIM_UNKNOWN_TAG', 'unknown tag is ignored'],
  ['V=DKIM1; p={rsa2048-spki}', 'DKIM_UNKNOWN_TAG', 'tag names are case-sensitive: V is not v'],
  [' v = DKIM1 ;\tp = {rsa2048-spki} ', '-', 'whitespace around tags'],
];

// [record template, DkimError code, why]
const INVALID: [string, string, string][] = [
  ['', 'DKIM_EMPTY', 'empty'],
  [' \t', 'DKIM_EMPTY', 'only whitespace'],
  ['v=DKIM1', 'DKIM_MISSING_KEY', 'no p'],
  ['v=DKIM1; k=rsa', 'DKIM_MISSING_KEY', 'no p'],
  ['v=DKIM2; p=', 'DKIM_VERSION', 'wrong version'],
  ['v=dkim1; p=', 'DKIM_VERSION', 'version is case-sensitive'],
  ['k=rsa; v=DKIM1; p=', 'DKIM_VERSION', 'v must be first'],
  ['v=DKIM1; p=; p=', 'DKIM_DUPLICATE_TAG', 'duplicate p'],
  ['v=DKIM1; k=rsa; k=rsa; p=', 'DKIM_DUPLICATE_TAG', 'duplicate k'],
  ['v=DKIM1;; p=', 'DKIM_SYNTAX', 'empty tag'],
  ['v=DKIM1; p', 'DKIM_SYNTAX', 'tag without "="'],
  ['v=DKIM1; 1p=x; p=', 'DKIM_SYNTAX', 'tag name starts with a digit'],
  ['v=DKIM1; n=Schlüssel; p=', 'DKIM_SYNTAX', 'non-ASCII'],
  ['v=DKIM1; k=dsa; p=', 'DKIM_KEY_TYPE', 'unknown key type'],
  ['v=DKIM1; k=; p=', 'DKIM_KEY_TYPE', 'empty key type'],
  ['v=DKIM1; h=; p=', 'DKIM_TAG_VALUE', 'empty hash list'],
  ['v=DKIM1; h=sha-; p=', 'DKIM_TAG_VALUE', 'bad hash name'],
  ['v=DKIM1; s=; p=', 'DKIM_TAG_VALUE', 'empty service list'],
  ['v=DKIM1; t=y:; p=', 'DKIM_TAG_VALUE', 'empty flag'],
  ['v=DKIM1; p=not base64!', 'DKIM_KEY', 'not base64'],
  ['v=DKIM1; p=QUJD', 'DKIM_KEY', 'base64 of "ABC", not a key'],
  ['v=DKIM1; p={ec-p256-spki}', 'DKIM_KEY', 'EC key with k=rsa'],
  ['v=DKIM1; k=ed25519; p={ed25519-spki}', 'DKIM_KEY', 'Ed25519 wrapped in SubjectPublicKeyInfo'],
  ['v=DKIM1; k=ed25519; p={rsa2048-spki}', 'DKIM_KEY', 'RSA key with k=ed25519'],
  ['v=DKIM1; k=rsa; p={ed25519-raw}', 'DKIM_KEY', 'raw Ed25519 key with k=rsa'],
  ['v=DKIM1; p={rsa512-spki}', 'DKIM_KEY_TOO_SMALL', 'RSA 512: verifiers reject it (RFC 8301 §3.2)'],
];

describe('parseDkimKey: table of RFC 6376 §3.6.1 rules', () => {
  for (const [template, codes, why] of VALID) {
    it(`valid: ${template.slice(0, 50)} (${why})`, () => {
      const { warnings } = parseDkimKey(withKeys(template));
      const got = [...new Set(warnings.map((w) => w.code))].sort();
      assert.deepEqual(got, codes === '-' ? [] : codes.split(',').sort());
    });
  }
  for (const [template, code, why] of INVALID) {
    it(`invalid: ${JSON.stringify(template.slice(0, 50))} (${why})`, () => {
      const error = parseError(withKeys(template));
      assert.equal(error.code, code);
      assert.equal(error.problems[0]!.severity, 'error');
    });
  }
});

describe('parseDkimKey: parsed values', () => {
  it('reads every tag and reports the key size', () => {
    const { record } = parseDkimKey(
      withKeys('v=DKIM1; h=sha256; k=rsa; n=main key; s=email:tlsrpt; t=s; p={rsa2048-spki}; x=1'),
    );
    const expected: DkimKeyRecord = {
      version: 'DKIM1',
      hashAlgorithms: ['sha256'],
      keyType: 'rsa',
      notes: 'main key',
      publicKey: KEYS['rsa2048-spki']!,
      revoked: false,
      serviceTypes: ['email', 'tlsrpt'],
      flags: ['s'],
      keyBits: 2048,
      keyFormat: 'spki',
      unknownTags: [{ name: 'x', value: '1' }],
    };
    assert.deepEqual(record, expected);
  });

  it('fills in the defaults k=rsa and s=*', () => {
    const { record } = parseDkimKey(withKeys('p={rsa1024-spki}'));
    assert.equal(record.keyType, 'rsa');
    assert.deepEqual(record.serviceTypes, ['*']);
    assert.deepEqual(record.flags, []);
    assert.equal(record.keyBits, 1024);
    assert.equal(record.hashAlgorithms, undefined);
  });

  it('marks a revoked key and gives no size', () => {
    const { record } = parseDkimKey('v=DKIM1; p=');
    assert.equal(record.revoked, true);
    assert.equal(record.publicKey, '');
    assert.equal(record.keyBits, undefined);
  });

  it('reports an Ed25519 key as 256 bits, raw', () => {
    const { record } = parseDkimKey(withKeys('v=DKIM1; k=ed25519; p={ed25519-raw}'));
    assert.deepEqual([record.keyType, record.keyBits, record.keyFormat], ['ed25519', 256, 'raw']);
  });

  it('explains an Ed25519 key published in SubjectPublicKeyInfo form', () => {
    const error = parseError(withKeys('v=DKIM1; k=ed25519; p={ed25519-spki}'));
    assert.equal(error.where, 'tag p');
    assert.match(error.message, /32 bytes.*SubjectPublicKeyInfo/);
  });

  it('lists every error and keeps the warnings', () => {
    const error = parseError('k=rsa; v=DKIM2; t=y; h=; p=QUJD');
    assert.deepEqual(
      error.problems.map((p) => [p.severity, p.code]),
      [
        ['error', 'DKIM_VERSION'],
        ['error', 'DKIM_VERSION'],
        ['error', 'DKIM_TAG_VALUE'],
        ['error', 'DKIM_KEY'],
        ['warning', 'DKIM_TESTING'],
      ],
    );
  });
});

describe('parseDkimKey properties', () => {
  it('whitespace anywhere in p is ignored (RFC 6376 §3.2 FWS)', () => {
    const key = KEYS['rsa2048-spki']!;
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.integer({ min: 1, max: key.length - 1 }), fc.constantFrom(' ', '\t', '\r\n ', '  ')),
          {
            maxLength: 8,
          },
        ),
        (cuts) => {
          let spaced = key;
          for (const [at, space] of [...cuts].sort((a, b) => b[0] - a[0])) {
            spaced = spaced.slice(0, at) + space + spaced.slice(at);
          }
          const { record } = parseDkimKey(`v=DKIM1; k=rsa; p=${spaced}`);
          assert.equal(record.publicKey, key);
          assert.equal(record.keyBits, 2048);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('accepts any freshly made Ed25519 key in raw form', () => {
    fc.assert(
      fc.property(fc.constant(null), () => {
        const der = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' });
        const raw = der.subarray(der.length - 32).toString('base64');
        assert.equal(parseDkimKey(`v=DKIM1; k=ed25519; p=${raw}`).record.keyBits, 256);
      }),
      { numRuns: 20 },
    );
  });
});

describe('parseDkimKey fuzz: only ever DkimError', () => {
  const onlyDkimErrors = (text: string) => {
    try {
      const { record, warnings } = parseDkimKey(text);
      assert.ok(record.keyType === 'rsa' || record.keyType === 'ed25519');
      assert.ok(Array.isArray(warnings));
    } catch (e) {
      if (!(e instanceof DkimError)) throw e;
      assert.ok(e.problems.length > 0 && e.problems[0]!.severity === 'error');
    }
  };
  it('random strings', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), onlyDkimErrors), { numRuns: 2000 });
  });
  it('random bytes as the key, for both key types', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.constantFrom('rsa', 'ed25519'), (bytes, k) =>
        onlyDkimErrors(`v=DKIM1; k=${k}; p=${Buffer.from(bytes).toString('base64')}`),
      ),
      { numRuns: 2000 },
    );
  });
  it('fixture keys with random bytes flipped', () => {
    const der = Buffer.from(KEYS['rsa2048-spki']!, 'base64');
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(der.length - 1), fc.nat(255)), { minLength: 1, maxLength: 4 }),
        (flips) => {
          const copy = Buffer.from(der);
          for (const [at, value] of flips) copy[at] = value;
          onlyDkimErrors(`v=DKIM1; p=${copy.toString('base64')}`);
        },
      ),
      { numRuns: 1000 },
    );
  });
  it('random sequences of tag-list pieces', () => {
    const piece = fc.constantFrom(
      'v',
      'h',
      'k',
      'n',
      'p',
      's',
      't',
      '=',
      ';',
      ':',
      ' ',
      'DKIM1',
      'rsa',
      'ed25519',
      'sha1',
      'sha256',
      '*',
      'email',
      'y',
      'MIIB',
      'QUJD',
      '==',
      '\t',
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 40 }), (pieces) => onlyDkimErrors(pieces.join(''))),
      { numRuns: 3000 },
    );
  });
});

describe('parseDkimKey: long inputs (no regex backtracking blow-up)', () => {
  for (const text of [
    `p=${' '.repeat(100_000)}x`,
    `h=sha256${' '.repeat(100_000)}x; p=`,
    `p=${'A'.repeat(100_000)}!`,
  ]) {
    it(`${text.length} characters starting ${JSON.stringify(text.slice(0, 16))}`, () => {
      assert.throws(() => parseDkimKey(text), DkimError);
    });
  }
});
