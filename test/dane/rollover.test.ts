// The rollover plan and the post-renewal check (src/dane/rollover.ts): records, TTL arithmetic, refusals.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { DaneError } from '../../src/dane/error.js';
import {
  checkDeployment,
  checkKeyMatches,
  generateKey,
  keyRecord,
  keySpki,
  planRollover,
} from '../../src/dane/rollover.js';
import { formatTlsa, parseTlsa, type TlsaRecord } from '../../src/dane/tlsa.js';
import { openssl, opensslDigest, opensslSpkiDer, type TestCert, TestPki } from '../helpers/pki.js';

let pki: TestPki;
let current: TestCert;
let nextKeyPath: string;
let currentHex: string;
let nextHex: string;

before(() => {
  pki = TestPki.create();
  current = pki.issue('current', { subject: '/CN=mx.example.com', sans: ['mx.example.com'] });
  nextKeyPath = pki.newKey('rsa').path;
  currentHex = opensslDigest(opensslSpkiDer(current.certPath), 'sha256');
  // The next key's SPKI hash computed by openssl alone, as an oracle for keySpki.
  nextHex = opensslDigest(openssl(['pkey', '-in', nextKeyPath, '-pubout', '-outform', 'DER']), 'sha256');
});
after(() => pki.remove());

const rec = (hex: string, usage = 3) => parseTlsa(`${usage} 1 1 ${hex}`);
const texts = (records: TlsaRecord[]) => records.map((r) => formatTlsa(r));
const nextSpki = () => keySpki(readFileSync(nextKeyPath), nextKeyPath);

describe('keys', () => {
  it('keySpki hashes to what openssl computes, for a private and a public key', () => {
    assert.equal(formatTlsa(keyRecord(nextSpki())), `3 1 1 ${nextHex}`);
    const pub = openssl(['pkey', '-in', nextKeyPath, '-pubout']);
    assert.equal(formatTlsa(keyRecord(keySpki(pub, 'pub.pem'))), `3 1 1 ${nextHex}`);
  });

  it('keySpki names the input that is no key', () => {
    assert.throws(
      () => keySpki('not a key', 'next.pem'),
      (err: unknown) =>
        err instanceof DaneError && err.code === 'DANE_KEY_INVALID' && /next\.pem/.test(err.message),
    );
  });

  it('checkKeyMatches refuses a key that is not the certificate key', () => {
    const own = keySpki(readFileSync(current.key.path), 'own');
    assert.doesNotThrow(() => checkKeyMatches(own, 'own.pem', current.x509, 'cert.pem'));
    assert.throws(
      () => checkKeyMatches(nextSpki(), 'next.pem', current.x509, 'cert.pem'),
      (err: unknown) =>
        err instanceof DaneError &&
        err.code === 'DANE_KEY_INVALID' &&
        /next\.pem.*cert\.pem/.test(err.message),
    );
  });

  it('generateKey makes EC P-256 and RSA 2048 keys that openssl reads', () => {
    for (const [type, expect] of [
      ['ec', /prime256v1|P-256/],
      ['rsa', /2048 bit/],
    ] as const) {
      const key = generateKey(type);
      const file = pki.writeFile(`gen-${type}.pem`, key.pem);
      assert.match(openssl(['pkey', '-in', file, '-noout', '-text']).toString(), expect);
      const spki = openssl(['pkey', '-in', file, '-pubout', '-outform', 'DER']);
      assert.deepEqual(key.spki, spki);
    }
  });
});

describe('planRollover', () => {
  it('stages current + next, waits 2 x the TTL from DNS, then keeps only next', () => {
    const plan = planRollover({
      host: 'MX.example.com',
      current: current.x509,
      nextSpki: nextSpki(),
      published: { records: [rec(currentHex)], ttl: 3600 },
    });
    assert.equal(plan.owner, '_25._tcp.mx.example.com.');
    assert.deepEqual(texts(plan.publishNow), [`3 1 1 ${currentHex}`, `3 1 1 ${nextHex}`]);
    assert.deepEqual(texts(plan.afterDeploy), [`3 1 1 ${nextHex}`]);
    assert.equal(plan.ttl, 3600);
    assert.equal(plan.ttlSource, 'dns');
    assert.equal(plan.waitSeconds, 7200);
    assert.equal(plan.published, false);
    assert.deepEqual(
      plan.steps.map((s) => [s.step, s.done]),
      [
        ['publish', false],
        ['wait', false],
        ['deploy', false],
        ['drop-old', false],
      ],
    );
    assert.match(plan.steps[1]!.text, /2 h \(7200 s\)/);
  });

  it('knows the publish step is done when DNS holds both; keeps DANE-TA, drops stale keys', () => {
    const ta = rec('aa'.repeat(32), 2);
    const stale = rec('bb'.repeat(32));
    const plan = planRollover({
      host: 'mx.example.com',
      port: 587,
      current: current.x509,
      nextSpki: nextSpki(),
      published: { records: [rec(nextHex), stale, rec(currentHex), ta], ttl: 300 },
    });
    assert.equal(plan.owner, '_587._tcp.mx.example.com.');
    assert.equal(plan.published, true);
    assert.equal(plan.steps[0]!.done, true);
    assert.deepEqual(texts(plan.publishNow), [`3 1 1 ${currentHex}`, `3 1 1 ${nextHex}`, formatTlsa(ta)]);
    assert.deepEqual(texts(plan.dropped), [formatTlsa(stale)]);
    assert.deepEqual(texts(plan.afterDeploy), [`3 1 1 ${nextHex}`, formatTlsa(ta)]);
  });

  it('TTL: the larger of DNS and --ttl; the negative TTL when there is no RRset; --ttl alone without DNS', () => {
    const base = { host: 'mx.example.com', current: current.x509, nextSpki: nextSpki() };
    const withDns = (ttl: number, given?: number) =>
      planRollover({ ...base, published: { records: [rec(currentHex)], ttl }, ttl: given });
    assert.deepEqual([withDns(120, 600).ttl, withDns(120, 600).ttlSource], [600, 'option']);
    assert.deepEqual([withDns(900, 600).ttl, withDns(900, 600).ttlSource], [900, 'dns']);
    const none = planRollover({ ...base, published: { records: [], negativeTtl: 1800 } });
    assert.deepEqual([none.ttl, none.waitSeconds, none.ttlSource], [1800, 3600, 'dns']);
    const offline = planRollover({ ...base, ttl: 60 });
    assert.deepEqual([offline.ttl, offline.waitSeconds, offline.ttlSource], [60, 120, 'option']);
    assert.match(offline.steps[1]!.text, /120 s/);
  });

  it('refuses a next key equal to the current key, and an unknown TTL', () => {
    const own = keySpki(readFileSync(current.key.path), 'own');
    assert.throws(
      () => planRollover({ host: 'mx.example.com', current: current.x509, nextSpki: own, ttl: 60 }),
      (err: unknown) =>
        err instanceof DaneError && err.code === 'DANE_ROLLOVER' && /current certificate/.test(err.message),
    );
    assert.throws(
      () => planRollover({ host: 'mx.example.com', current: current.x509, nextSpki: nextSpki() }),
      (err: unknown) => err instanceof DaneError && err.code === 'DANE_ROLLOVER' && /--ttl/.test(err.message),
    );
  });
});

describe('checkDeployment', () => {
  const owner = '_25._tcp.mx.example.com.';
  const t0 = new Date('2026-01-01T00:00:00Z');
  const at = (seconds: number) => new Date(t0.getTime() + seconds * 1000);
  const old = () => rec('01'.repeat(32));
  const fresh = () => rec('02'.repeat(32));
  const following = () => rec('03'.repeat(32));

  it('safe at exactly 2 x TTL: drops the previous key, adds the following one', () => {
    const v = checkDeployment({
      owner,
      deployed: fresh(),
      previous: old(),
      next: following(),
      published: [old(), fresh()],
      ttl: 300,
      publishedAt: t0,
      now: at(600),
    });
    assert.equal(v.status, 'safe');
    assert.deepEqual(texts(v.publish), texts([fresh(), following()]));
    assert.deepEqual(texts(v.dropped), texts([old()]));
  });

  it('too early one second before 2 x TTL: nothing dropped, says when', () => {
    const v = checkDeployment({
      owner,
      deployed: fresh(),
      previous: old(),
      published: [old(), fresh()],
      ttl: 300,
      publishedAt: t0,
      now: at(599),
    });
    assert.equal(v.status, 'too-early');
    assert.deepEqual(texts(v.publish), texts([old(), fresh()]));
    assert.deepEqual(v.safeAt, at(600));
  });

  it('not published: adds the deployed key beside the old one, never drops', () => {
    const v = checkDeployment({
      owner,
      deployed: fresh(),
      previous: old(),
      published: [old()],
      ttl: 60,
      now: t0,
    });
    assert.equal(v.status, 'not-published');
    assert.deepEqual(texts(v.publish), texts([old(), fresh()]));
    assert.deepEqual(v.safeAt, at(120));
  });

  it('a record seen in DNS without a known publication time counts from now', () => {
    const v = checkDeployment({ owner, deployed: fresh(), published: [fresh()], ttl: 60, now: t0 });
    assert.equal(v.status, 'too-early');
    assert.deepEqual(v.safeAt, at(120));
  });

  it('the same key renewed (reuse-key): safe, nothing dropped', () => {
    const v = checkDeployment({
      owner,
      deployed: fresh(),
      previous: fresh(),
      published: [fresh(), following()],
      ttl: 60,
      publishedAt: t0,
      now: at(3600),
    });
    assert.equal(v.status, 'safe');
    assert.deepEqual(texts(v.publish), texts([fresh(), following()]));
    assert.deepEqual(v.dropped, []);
  });
});
