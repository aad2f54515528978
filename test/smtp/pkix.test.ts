// PKIX helpers for MTA-STS (src/smtp/pkix.ts): RFC 8461 §4.2 host name matching on certificates built with
// openssl (test/helpers/pki.ts), expiry arithmetic, the trust store and the verdict.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import {
  certMatchesHost,
  daysUntilExpiry,
  describeVerifyError,
  pkixVerdict,
  trustStore,
} from '../../src/smtp/pkix.js';
import { type TestCert, TestPki } from '../helpers/pki.js';

let pki: TestPki;
let root: TestCert;
const leaves = new Map<string, TestCert>();

/** A leaf with these SANs (none = no SAN extension) and CN. */
function leaf(sans: string[], cn = 'cn.example.com'): TestCert {
  const key = `${sans.join(',')}|${cn}`;
  let cert = leaves.get(key);
  if (!cert) {
    cert = pki.issue(`leaf${leaves.size}`, { subject: `/CN=${cn}`, issuer: root, sans });
    leaves.set(key, cert);
  }
  return cert;
}

before(() => {
  pki = TestPki.create('mxguard-smtp-pkix-');
  root = pki.issue('root', { subject: '/CN=Test Root' });
});
after(() => pki.remove());

describe('certMatchesHost (RFC 8461 §4.2)', () => {
  const table: Array<[string[], string, boolean]> = [
    [['mx.example.com'], 'mx.example.com', true],
    [['mx.example.com'], 'MX.Example.COM', true],
    [['mx.example.com'], 'mx.example.com.', true],
    [['MX.EXAMPLE.COM'], 'mx.example.com', true],
    [['mx.example.com'], 'mx2.example.com', false],
    [['mx.example.com'], 'example.com', false],
    [['a.example.com', 'mx.example.com'], 'mx.example.com', true],
    [['*.example.com'], 'mx.example.com', true],
    [['*.example.com'], 'example.com', false],
    [['*.example.com'], 'a.mx.example.com', false],
    [['mx*.example.com'], 'mx1.example.com', false],
    [['*x.example.com'], 'mx.example.com', false],
    [['mx.*.com'], 'mx.example.com', false],
    [['*.com'], 'example.com', false],
    [['mx.example.com'], '', false],
  ];
  for (const [sans, host, expected] of table) {
    it(`SAN ${sans.join(', ')} ${expected ? 'matches' : 'does not match'} "${host}"`, () => {
      assert.equal(certMatchesHost(leaf(sans).x509, host), expected);
    });
  }

  it('ignores the subject CN, with or without a SAN extension', () => {
    assert.equal(certMatchesHost(leaf([], 'mx.example.com').x509, 'mx.example.com'), false);
    assert.equal(
      certMatchesHost(leaf(['other.example.com'], 'mx.example.com').x509, 'mx.example.com'),
      false,
    );
  });
});

describe('expiry, trust store, verdict', () => {
  it('counts whole days to notAfter, negative after it', () => {
    const cert = pki.issue('dated', {
      issuer: root,
      sans: ['mx.example.com'],
      notBefore: new Date('2024-01-01T00:00:00Z'),
      notAfter: new Date('2024-03-01T00:00:00Z'),
    });
    assert.equal(daysUntilExpiry(cert.x509, new Date('2024-02-20T00:00:00Z')), 10);
    assert.equal(daysUntilExpiry(cert.x509, new Date('2024-02-29T12:00:00Z')), 0);
    assert.equal(daysUntilExpiry(cert.x509, new Date('2024-03-02T00:00:00Z')), -1);
  });

  it('uses the default store without extras, and the bundled roots plus extras with them', () => {
    assert.equal(trustStore(undefined), undefined);
    assert.equal(trustStore([]), undefined);
    const store = trustStore([root.pem]);
    assert.equal(store?.length, tls.rootCertificates.length + 1);
    assert.equal(store?.at(-1), root.pem);
  });

  it('describes OpenSSL codes, keeping the code', () => {
    assert.match(describeVerifyError('CERT_HAS_EXPIRED'), /expired \(CERT_HAS_EXPIRED\)/);
    assert.equal(describeVerifyError('SOMETHING_NEW'), 'SOMETHING_NEW');
  });

  it('builds the verdict from the chain, the OpenSSL code and the host', () => {
    const chain = [leaf(['mx.example.com']).x509, root.x509];
    const now = new Date('2089-12-01T00:00:00Z');
    assert.deepEqual(pkixVerdict(chain, undefined, 'mx.example.com', now), {
      valid: true,
      nameMatches: true,
      daysLeft: 31,
    });
    assert.deepEqual(pkixVerdict(chain, 'CERT_HAS_EXPIRED', 'other.example.com', now), {
      valid: false,
      error: 'a certificate in the chain has expired (CERT_HAS_EXPIRED)',
      nameMatches: false,
      daysLeft: 31,
    });
    assert.equal(pkixVerdict([], undefined, 'mx.example.com').valid, false);
  });
});
