// DANE verification for SMTP (RFC 7672 §3.1, §3.2.3; RFC 7671 §4, §5.2) and rollover readiness (RFC 7671 §8.1).
import assert from 'node:assert/strict';
import type { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { generateTlsa, parseTlsa, type TlsaRecord } from '../../src/dane/tlsa.js';
import { type DaneVerdict, isUsableForSmtp, rolloverReady, verifyDane } from '../../src/dane/verify.js';
import { type StandardChain, standardChain, type TestCert, TestPki } from '../helpers/pki.js';

// Every check runs at a fixed time, so the dates below decide validity, not the day the tests run.
const NOW = new Date('2030-06-01T00:00:00Z');
const PAST = { notBefore: new Date('2001-01-01T00:00:00Z'), notAfter: new Date('2002-01-01T00:00:00Z') };
const FUTURE = { notBefore: new Date('2040-01-01T00:00:00Z'), notAfter: new Date('2041-01-01T00:00:00Z') };

let pki: TestPki;
let ec: StandardChain;
let rsa: StandardChain;
let other: StandardChain;
let expiredLeaf: TestCert;
let futureLeaf: TestCert;
let wildcardLeaf: TestCert;
let cnOnlyLeaf: TestCert;
let sanNotCnLeaf: TestCert;
let neverValid: TestCert;
let expiredCa: TestCert;
let leafOfExpiredCa: TestCert;
let impostorCa: TestCert;

before(() => {
  pki = TestPki.create();
  ec = standardChain(pki, { prefix: 'ec-', keyType: 'ec' });
  rsa = standardChain(pki, { prefix: 'rsa-', keyType: 'rsa' });
  other = standardChain(pki, { prefix: 'other-', keyType: 'ec' });
  const issuer = ec.intermediate;
  expiredLeaf = pki.issue('expired', {
    subject: '/CN=mx.example.com',
    issuer,
    sans: ['mx.example.com'],
    ...PAST,
  });
  futureLeaf = pki.issue('future', {
    subject: '/CN=mx.example.com',
    issuer,
    sans: ['mx.example.com'],
    ...FUTURE,
  });
  wildcardLeaf = pki.issue('wildcard', { subject: '/CN=*.example.com', issuer, sans: ['*.example.com'] });
  cnOnlyLeaf = pki.issue('cn-only', { subject: '/CN=mx.example.com', issuer });
  sanNotCnLeaf = pki.issue('san-not-cn', {
    subject: '/CN=mx.example.com',
    issuer,
    sans: ['other.example.net'],
  });
  // Like OpenSSL's danetest "never valid" leaf: empty subject, notBefore after notAfter.
  neverValid = pki.issue('never-valid', {
    subject: '/',
    notBefore: new Date('2015-12-14T00:00:00Z'),
    notAfter: new Date('2015-12-13T00:00:00Z'),
  });
  expiredCa = pki.issue('expired-ca', { subject: '/CN=Expired CA', issuer: ec.root, ca: true, ...PAST });
  leafOfExpiredCa = pki.issue('leaf-of-expired-ca', {
    subject: '/CN=mx.example.com',
    issuer: expiredCa,
    sans: ['mx.example.com'],
  });
  // Same subject name as ec.intermediate, different key: the leaf does not chain to it.
  impostorCa = pki.issue('impostor-ca', { subject: ec.intermediate.subject, issuer: ec.root, ca: true });
});
after(() => pki.remove());

const x = (...certs: TestCert[]): X509Certificate[] => certs.map((c) => c.x509);
const rec = (cert: TestCert, usage: number, selector = 1, matchingType = 1): TlsaRecord =>
  generateTlsa(cert.x509, usage, selector, matchingType);

function expectVerdict(
  verdict: DaneVerdict,
  status: DaneVerdict['status'],
  certIndex?: number,
  reason?: RegExp,
) {
  const reasons = verdict.records.map((r) => r.reason).join(' | ');
  assert.equal(verdict.status, status, reasons);
  assert.equal(verdict.matched?.certIndex, certIndex, reasons);
  if (reason) assert.match(reasons, reason);
}

describe('DANE-EE(3): the leaf only, no names, no dates (RFC 7672 §3.1.1)', () => {
  it('matches every selector and matching type of the leaf', () => {
    for (const [selector, matchingType] of [
      [1, 1],
      [1, 2],
      [1, 0],
      [0, 1],
      [0, 2],
      [0, 0],
    ]) {
      const verdict = verifyDane(x(ec.leaf, ec.intermediate), [rec(ec.leaf, 3, selector, matchingType)], {
        now: NOW,
      });
      expectVerdict(verdict, 'match', 0, /matches the leaf/);
    }
  });

  it('ignores an expired leaf, a not-yet-valid leaf and a wrong host name', () => {
    for (const leaf of [expiredLeaf, futureLeaf]) {
      const verdict = verifyDane(x(leaf), [rec(leaf, 3)], { host: 'wrong.example.org', now: NOW });
      expectVerdict(verdict, 'match', 0, /checks neither names nor dates/);
    }
  });

  it('matches the never-valid certificate with an empty subject', () => {
    for (const [selector, matchingType] of [
      [0, 1],
      [1, 1],
      [0, 2],
      [1, 2],
    ]) {
      const verdict = verifyDane(x(neverValid), [rec(neverValid, 3, selector, matchingType)], {});
      expectVerdict(verdict, 'match', 0, /<empty subject>/);
    }
  });

  it('does not match another key, a flipped bit, or the issuer', () => {
    const flipped = rec(ec.leaf, 3);
    flipped.data[31] = (flipped.data[31] ?? 0) ^ 1;
    for (const record of [rec(other.leaf, 3), flipped, rec(ec.intermediate, 3), rec(ec.leaf, 3, 0, 2)]) {
      const chain = record.selector === 0 ? x(other.leaf, ec.intermediate) : x(ec.leaf, ec.intermediate);
      const verdict = verifyDane(chain, [record], { host: 'mx.example.com', now: NOW });
      expectVerdict(verdict, 'no-match', undefined, /does not match the leaf/);
    }
  });
});

describe('DANE-TA(2): chain to a presented CA, dates below it, leaf name (RFC 7672 §3.1.2, §3.2.3)', () => {
  it('matches on the intermediate and on the root, EC and RSA', () => {
    for (const chain of [ec, rsa]) {
      const presented = x(chain.leaf, chain.intermediate, chain.root);
      expectVerdict(
        verifyDane(presented, [rec(chain.intermediate, 2)], { host: 'mx.example.com', now: NOW }),
        'match',
        1,
      );
      expectVerdict(
        verifyDane(presented, [rec(chain.root, 2)], { host: 'mx.example.com', now: NOW }),
        'match',
        2,
      );
      expectVerdict(
        verifyDane(presented, [rec(chain.root, 2, 0, 2)], { host: 'MX.Example.com.', now: NOW }),
        'match',
        2,
      );
      expectVerdict(
        verifyDane(presented, [rec(chain.root, 2, 1, 0)], { host: 'mx.example.com', now: NOW }),
        'match',
        2,
      );
      expectVerdict(
        verifyDane(presented, [rec(chain.intermediate, 2, 0, 0)], { host: 'mx.example.com', now: NOW }),
        'match',
        1,
      );
    }
  });

  it('checks the host name: mismatch, wildcard, CN only without SANs, several reference names', () => {
    const chainOf = (leaf: TestCert) => x(leaf, ec.intermediate, ec.root);
    const table: Array<[TestCert, string | string[], DaneVerdict['status'], RegExp?]> = [
      [ec.leaf, 'mx.example.com', 'match'],
      [ec.leaf, 'mx2.example.com', 'no-match', /does not match the host name mx2.example.com/],
      [ec.leaf, 'example.com', 'no-match'],
      [wildcardLeaf, 'mx.example.com', 'match'],
      [wildcardLeaf, 'a.mx.example.com', 'no-match'],
      [wildcardLeaf, 'example.com', 'no-match'],
      [cnOnlyLeaf, 'mx.example.com', 'match'],
      [sanNotCnLeaf, 'mx.example.com', 'no-match'],
      [sanNotCnLeaf, 'other.example.net', 'match'],
      [ec.leaf, ['mail.example.com', 'mx.example.com'], 'match'],
    ];
    for (const [leaf, host, status, reason] of table) {
      for (const anchor of [ec.intermediate, ec.root]) {
        const verdict = verifyDane(chainOf(leaf), [rec(anchor, 2)], { host, now: NOW });
        assert.equal(verdict.status, status, `${leaf.name} ${String(host)}: ${verdict.records[0]?.reason}`);
        if (reason) assert.match(verdict.records[0]?.reason ?? '', reason);
      }
    }
  });

  it('needs a host name', () => {
    const verdict = verifyDane(x(ec.leaf, ec.intermediate), [rec(ec.intermediate, 2)], { now: NOW });
    expectVerdict(verdict, 'no-match', undefined, /DANE-TA needs --host/);
    assert.deepEqual(
      verdict.problems.map((p) => p.code),
      ['DANE_TA_NEEDS_HOST'],
    );
  });

  it('fails when a certificate below the anchor is outside its dates', () => {
    for (const leaf of [expiredLeaf, futureLeaf]) {
      const verdict = verifyDane(x(leaf, ec.intermediate), [rec(ec.intermediate, 2)], {
        host: 'mx.example.com',
        now: NOW,
      });
      expectVerdict(
        verdict,
        'no-match',
        undefined,
        /certificate 0 \(CN=mx.example.com\) (expired|is not valid before)/,
      );
    }
    // an expired intermediate below a root anchor
    const verdict = verifyDane(x(leafOfExpiredCa, expiredCa, ec.root), [rec(ec.root, 2)], {
      host: 'mx.example.com',
      now: NOW,
    });
    expectVerdict(verdict, 'no-match', undefined, /certificate 1 \(CN=Expired CA\) expired/);
  });

  it("does not check the anchor's own dates", () => {
    const verdict = verifyDane(x(leafOfExpiredCa, expiredCa), [rec(expiredCa, 2)], {
      host: 'mx.example.com',
      now: NOW,
    });
    expectVerdict(verdict, 'match', 1);
  });

  it('fails when the chain does not chain up to the anchor', () => {
    const host = { host: 'mx.example.com', now: NOW };
    // the anchor is another PKI's intermediate
    expectVerdict(
      verifyDane(x(ec.leaf, other.intermediate), [rec(other.intermediate, 2)], host),
      'no-match',
      undefined,
      /was not issued by certificate 1/,
    );
    // same subject name, different key
    expectVerdict(
      verifyDane(x(ec.leaf, impostorCa), [rec(impostorCa, 2)], host),
      'no-match',
      undefined,
      /certificate 0/,
    );
    // a gap: the intermediate is missing between leaf and root
    expectVerdict(
      verifyDane(x(ec.leaf, ec.root), [rec(ec.root, 2)], host),
      'no-match',
      undefined,
      /was not issued by certificate 1/,
    );
  });

  it('fails when the anchor is not in the presented chain or is the leaf itself', () => {
    const host = { host: 'mx.example.com', now: NOW };
    expectVerdict(
      verifyDane(x(ec.leaf, ec.intermediate), [rec(ec.root, 2)], host),
      'no-match',
      undefined,
      /matches no CA certificate in the presented chain/,
    );
    expectVerdict(
      verifyDane(x(ec.leaf, ec.intermediate), [rec(ec.leaf, 2)], host),
      'no-match',
      undefined,
      /matches the leaf itself/,
    );
  });
});

describe('usability (RFC 7672 §3.1.3, RFC 7671 §4)', () => {
  it('reports PKIX-TA(0), PKIX-EE(1) and unknown values as unusable, even when the data matches', () => {
    const unusable = [
      rec(ec.leaf, 1),
      rec(ec.intermediate, 0),
      rec(ec.leaf, 4),
      rec(ec.leaf, 255),
      { ...rec(ec.leaf, 3), selector: 2 },
      { ...rec(ec.leaf, 3), matchingType: 3 },
      parseTlsa('255 255 255 6609173804b9e31895f550db027ef7c7fa6f1bc9326c99371b61f1ba5cb3595d'),
    ];
    const verdict = verifyDane(x(ec.leaf, ec.intermediate, ec.root), unusable, {
      host: 'mx.example.com',
      now: NOW,
    });
    expectVerdict(verdict, 'no-usable-records');
    assert.ok(verdict.records.every((r) => !r.usable && !r.matches));
    assert.match(verdict.records[0]?.reason ?? '', /PKIX-EE\(1\).*not used for SMTP/);
    assert.deepEqual(
      verdict.problems.map((p) => p.code),
      ['DANE_NO_USABLE_RECORDS'],
    );
    assert.match(verdict.problems[0]?.message ?? '', /unauthenticated opportunistic TLS/);
    assert.ok(unusable.every((r) => !isUsableForSmtp(r)));
  });

  it('matches with the usable record when unusable ones sit beside it', () => {
    const records = [rec(ec.leaf, 1), rec(other.leaf, 3), rec(ec.leaf, 3, 0, 2)];
    const verdict = verifyDane(x(ec.leaf), records, { now: NOW });
    expectVerdict(verdict, 'match', 0);
    assert.equal(verdict.matched?.record, records[2]);
    assert.deepEqual(
      verdict.records.map((r) => [r.usable, r.matches]),
      [
        [false, false],
        [true, false],
        [true, true],
      ],
    );
  });

  it('handles an empty record set and an empty chain', () => {
    expectVerdict(verifyDane(x(ec.leaf), [], { now: NOW }), 'no-usable-records');
    expectVerdict(verifyDane([], [rec(ec.leaf, 3)], { now: NOW }), 'no-match', undefined, /no certificate/);
  });
});

describe('rolloverReady (RFC 7671 §8.1)', () => {
  it('decides from records alone', () => {
    const table: Array<[string, TlsaRecord[], boolean]> = [
      ['one 3 1 1', [rec(ec.leaf, 3)], false],
      ['3 0 1 + 3 1 1 of one key', [rec(ec.leaf, 3, 0, 1), rec(ec.leaf, 3, 1, 1)], false],
      ['3 1 1 + 3 1 2 of one key', [rec(ec.leaf, 3, 1, 1), rec(ec.leaf, 3, 1, 2)], false],
      ['3 1 1 of two keys', [rec(ec.leaf, 3), rec(other.leaf, 3)], true],
      ['the same record twice', [rec(ec.leaf, 3), rec(ec.leaf, 3)], false],
      ['2 1 1 beside 3 1 1', [rec(ec.leaf, 3), rec(ec.intermediate, 2)], true],
      ['two DANE-TA keys', [rec(ec.intermediate, 2), rec(ec.root, 2)], true],
      ['one key plus an unusable record', [rec(ec.leaf, 3), rec(other.leaf, 1)], false],
      ['PKIX-TA beside DANE-EE', [rec(ec.leaf, 3), rec(ec.root, 0)], false],
      ['nothing', [], false],
    ];
    for (const [name, records, expected] of table) assert.equal(rolloverReady(records), expected, name);
  });

  it('uses the chain to tell keys apart', () => {
    const chain = x(ec.leaf, ec.intermediate, ec.root);
    const table: Array<[string, TlsaRecord[], boolean]> = [
      ['3 0 1 + 3 1 1 of the current leaf', [rec(ec.leaf, 3, 0, 1), rec(ec.leaf, 3, 1, 1)], false],
      ['current 3 1 1 + next key 3 0 1', [rec(ec.leaf, 3, 1, 1), rec(other.leaf, 3, 0, 1)], true],
      ['current 3 1 1 + next key 3 1 1', [rec(ec.leaf, 3), rec(other.leaf, 3)], true],
      ['next key only, 3 0 1 + 3 1 1', [rec(other.leaf, 3, 0, 1), rec(other.leaf, 3, 1, 1)], false],
      ['intermediate and root', [rec(ec.intermediate, 2), rec(ec.root, 2, 0, 1)], true],
      ['intermediate twice', [rec(ec.intermediate, 2), rec(ec.intermediate, 2, 0, 2)], false],
    ];
    for (const [name, records, expected] of table)
      assert.equal(rolloverReady(records, chain), expected, name);
  });
});
