// Certificate loading and TLSA generation (RFC 6698 §2.1), cross-checked against digests the `openssl` CLI computes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { loadCertificates, spkiDer } from '../../src/dane/cert.js';
import { DaneError } from '../../src/dane/error.js';
import { formatTlsa, generateTlsa, parseTlsa } from '../../src/dane/tlsa.js';
import {
  type KeyType,
  opensslCertDer,
  opensslDigest,
  opensslSpkiDer,
  type StandardChain,
  standardChain,
  TestPki,
} from '../helpers/pki.js';

let pki: TestPki;
const chains = {} as Record<KeyType, StandardChain>;

before(() => {
  pki = TestPki.create();
  chains.ec = standardChain(pki, { prefix: 'ec-', keyType: 'ec' });
  chains.rsa = standardChain(pki, { prefix: 'rsa-', keyType: 'rsa' });
});
after(() => pki.remove());

describe('generateTlsa agrees with openssl', () => {
  for (const keyType of ['ec', 'rsa'] as const) {
    for (const role of ['leaf', 'intermediate', 'root'] as const) {
      it(`${keyType} ${role}: every selector and matching type`, () => {
        const cert = chains[keyType][role];
        const selected = { 0: opensslCertDer(cert.certPath), 1: opensslSpkiDer(cert.certPath) };
        for (const selector of [0, 1] as const) {
          const expected = {
            0: selected[selector].toString('hex'),
            1: opensslDigest(selected[selector], 'sha256'),
            2: opensslDigest(selected[selector], 'sha512'),
          };
          for (const matchingType of [0, 1, 2] as const) {
            const usage = role === 'leaf' ? 3 : 2;
            const record = generateTlsa(cert.x509, usage, selector, matchingType);
            assert.equal(
              formatTlsa(record),
              `${usage} ${selector} ${matchingType} ${expected[matchingType]}`,
              `${selector} ${matchingType}`,
            );
            assert.deepEqual(parseTlsa(formatTlsa(record)), record);
          }
        }
      });
    }
  }

  it('selector 1 is the same for two certificates of one key, selector 0 differs', () => {
    const { leaf, intermediate } = chains.ec;
    const renewed = pki.issue('ec-renewed', {
      subject: '/CN=mx.example.com',
      issuer: intermediate,
      key: leaf.key,
      sans: ['mx.example.com', 'mx2.example.com'],
    });
    assert.deepEqual(generateTlsa(renewed.x509, 3, 1, 1), generateTlsa(leaf.x509, 3, 1, 1));
    assert.notDeepEqual(generateTlsa(renewed.x509, 3, 0, 1), generateTlsa(leaf.x509, 3, 0, 1));
    assert.deepEqual(spkiDer(renewed.x509), opensslSpkiDer(leaf.certPath));
  });

  it('refuses selectors and matching types it cannot compute', () => {
    const cert = chains.ec.leaf.x509;
    for (const [usage, selector, matchingType] of [
      [3, 2, 1],
      [3, 255, 1],
      [3, 1, 3],
      [3, 0, 255],
      [256, 1, 1],
      [-1, 1, 1],
    ] as const) {
      assert.throws(
        () => generateTlsa(cert, usage, selector, matchingType),
        DaneError,
        `${usage} ${selector} ${matchingType}`,
      );
    }
  });
});

describe('loadCertificates', () => {
  it('reads one PEM certificate, a PEM chain in order, and DER', () => {
    const { leaf, intermediate, root } = chains.ec;
    assert.deepEqual(
      loadCertificates(Buffer.from(leaf.pem)).map((c) => c.raw),
      [leaf.der],
    );
    const chain = loadCertificates(
      Buffer.from(`junk before\n${leaf.pem}\n\n${intermediate.pem}${root.pem}trailing text\n`),
    );
    assert.deepEqual(
      chain.map((c) => c.raw),
      [leaf.der, intermediate.der, root.der],
    );
    assert.deepEqual(
      loadCertificates(leaf.der).map((c) => c.raw),
      [leaf.der],
    );
  });

  it('reads CRLF PEM and skips non-certificate blocks such as the private key', () => {
    const { leaf } = chains.rsa;
    const keyPem = readFileSync(leaf.key.path, 'utf8');
    const combined = `${keyPem}${leaf.pem}`.replace(/\n/g, '\r\n');
    assert.deepEqual(
      loadCertificates(Buffer.from(combined)).map((c) => c.raw),
      [leaf.der],
    );
  });

  const bad: Array<[string, Buffer, DaneError['code'], RegExp]> = [
    ['empty input', Buffer.alloc(0), 'DANE_CERT_MISSING', /empty input/],
    ['plain text', Buffer.from('hello world\n'), 'DANE_CERT_INVALID', /not a certificate/],
    [
      'only a key',
      Buffer.from('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'),
      'DANE_CERT_MISSING',
      /no CERTIFICATE block \(found only: PRIVATE KEY\)/,
    ],
    [
      'bad base64',
      Buffer.from('-----BEGIN CERTIFICATE-----\nnot*base64\n-----END CERTIFICATE-----\n'),
      'DANE_CERT_INVALID',
      /PEM block 1 \(line 1\): the block is not valid base64/,
    ],
    [
      'base64 that is not a certificate',
      Buffer.from('-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n'),
      'DANE_CERT_INVALID',
      /PEM block 1 \(line 1\): not a valid X.509 certificate/,
    ],
    [
      'mismatched END',
      Buffer.from('-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END X509 CRL-----\n'),
      'DANE_CERT_INVALID',
      /BEGIN CERTIFICATE ends with END X509 CRL/,
    ],
    [
      'BEGIN without END',
      Buffer.from('-----BEGIN CERTIFICATE-----\nMAMCAQE=\n'),
      'DANE_CERT_INVALID',
      /no matching "-----END" line/,
    ],
    ['truncated DER', Buffer.from([0x30, 0x82, 0x05, 0x00, 0x01]), 'DANE_CERT_INVALID', /bad or truncated/],
    [
      'DER that is not X.509',
      Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]),
      'DANE_CERT_INVALID',
      /not a valid X.509/,
    ],
  ];
  for (const [name, bytes, code, message] of bad) {
    it(`rejects ${name}`, () => {
      assert.throws(
        () => loadCertificates(bytes),
        (err: unknown) => err instanceof DaneError && err.code === code && message.test(err.message),
      );
    });
  }

  it('rejects DER with trailing bytes and names the second broken PEM block', () => {
    const { leaf, root } = chains.ec;
    assert.throws(
      () => loadCertificates(Buffer.concat([leaf.der, Buffer.from('xx')])),
      /2 extra bytes after the certificate/,
    );
    const broken = `${leaf.pem}-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n${root.pem}`;
    const line = leaf.pem.split('\n').length;
    assert.throws(() => loadCertificates(Buffer.from(broken)), new RegExp(`PEM block 2 \\(line ${line}\\)`));
  });

  it('random bytes and mangled certificates only ever raise DaneError', () => {
    const { leaf } = chains.ec;
    const mangled = fc
      .tuple(
        fc.nat({ max: leaf.der.length - 1 }),
        fc.integer({ min: 0, max: 255 }),
        fc.nat({ max: leaf.der.length }),
      )
      .map(([at, value, cut]) => {
        const copy = Buffer.from(leaf.der);
        copy[at] = value;
        return copy.subarray(0, Math.max(cut, at + 1));
      });
    const pemWrapped = fc
      .uint8Array({ maxLength: 300 })
      .map((b) =>
        Buffer.from(
          `-----BEGIN CERTIFICATE-----\n${Buffer.from(b).toString('base64')}\n-----END CERTIFICATE-----\n`,
        ),
      );
    const inputs = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      mangled,
      pemWrapped,
    );
    fc.assert(
      fc.property(inputs, (bytes) => {
        try {
          const certs = loadCertificates(bytes);
          assert.ok(certs.length >= 1);
        } catch (err) {
          assert.ok(err instanceof DaneError, String(err));
        }
      }),
      { numRuns: 1500 },
    );
  });
});
