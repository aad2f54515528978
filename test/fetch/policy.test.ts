// fetchPolicy / fetchAndParsePolicy against the lab HTTPS host (test/lab/https-server.ts) on loopback,
// with real TLS and a test PKI from test/helpers/pki.ts: the success path and one test per result code
// (RFC 8461 §3.3), plus fuzzing of what a server may send back. Nothing here leaves 127.0.0.0/8.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  FETCH_SEVERITY,
  type FetchCode,
  type FetchPolicyOptions,
  fetchAndParsePolicy,
  fetchPolicy,
  MAX_POLICY_BYTES,
  type PolicyFetchResult,
  USER_AGENT,
} from '../../src/fetch/policy.js';
import { POLICY_PATH, policyHost } from '../../src/mtasts/url.js';
import { type StandardChain, standardChain, TestPki } from '../helpers/pki.js';
import { labCert, type PolicyHost, type SiteBehaviour, startPolicyHost } from '../lab/https-server.js';

const POLICY =
  'version: STSv1\nmode: enforce\nmx: mx1.example.test\nmx: *.mail.example.test\nmax_age: 604800\n';

// Sites served with the default certificate (its SAN lists them all).
const GOOD_SITES: Record<string, SiteBehaviour> = {
  'mta-sts.example.test': { kind: 'serve', body: POLICY },
  'mta-sts.redirect.test': { kind: 'redirect', location: 'https://policy.elsewhere.test/mta-sts.txt' },
  'mta-sts.found.test': { kind: 'redirect', status: 302, location: '/other.txt' },
  'mta-sts.notfound.test': { kind: 'serve', status: 404, body: 'not found\n' },
  'mta-sts.error.test': { kind: 'serve', status: 500, body: 'oops\n' },
  'mta-sts.nocontent.test': { kind: 'serve', status: 204, body: '' },
  'mta-sts.huge-declared.test': { kind: 'huge', declareLength: true },
  'mta-sts.huge-streamed.test': { kind: 'huge' },
  'mta-sts.chunked-over.test': { kind: 'huge', bytes: MAX_POLICY_BYTES + 1 },
  'mta-sts.chunked-limit.test': { kind: 'huge', bytes: MAX_POLICY_BYTES },
  'mta-sts.limit.test': { kind: 'serve', body: 'x'.repeat(MAX_POLICY_BYTES) },
  'mta-sts.over-limit.test': { kind: 'serve', body: 'x'.repeat(MAX_POLICY_BYTES + 1) },
  'mta-sts.slow.test': { kind: 'slow', intervalMs: 200 },
  'mta-sts.stall.test': { kind: 'stall-handshake' },
  'mta-sts.alert.test': { kind: 'handshake-failure' },
  'mta-sts.gzip.test': { kind: 'serve', body: POLICY, gzip: true },
  'mta-sts.deflate.test': { kind: 'serve', body: POLICY, headers: { 'Content-Encoding': 'deflate' } },
  'mta-sts.identity.test': { kind: 'serve', body: POLICY, headers: { 'Content-Encoding': 'identity' } },
  'mta-sts.latin1.test': {
    kind: 'serve',
    body: Buffer.from('version: STSv1\nmode: none\nx: caf\xe9\n', 'latin1'),
  },
  'mta-sts.bom.test': { kind: 'serve', body: `\uFEFF${POLICY}` },
  'mta-sts.garbage.test': { kind: 'garbage' },
  'mta-sts.html.test': { kind: 'serve', body: POLICY, contentType: 'text/html; charset=utf-8' },
  'mta-sts.notype.test': { kind: 'serve', body: POLICY, contentType: null },
  'mta-sts.charset.test': { kind: 'serve', body: POLICY, contentType: 'text/plain; charset=iso-8859-1' },
  'mta-sts.params.test': {
    kind: 'serve',
    body: POLICY,
    contentType: 'Text/Plain; format=flowed; charset="UTF-8"',
  },
  'mta-sts.ascii.test': { kind: 'serve', body: POLICY, contentType: 'text/plain;charset=US-ASCII' },
  'mta-sts.invalid.test': { kind: 'serve', body: 'version: STSv1\nmode: enforce\nmax_age: 86400\n' },
  'mta-sts.short.test': {
    kind: 'serve',
    body: 'version: STSv1\nmode: testing\nmx: mx.short.test\nmax_age: 3600\n',
  },
  'mta-sts.fuzz.test': { kind: 'garbage' },
};

let pki: TestPki;
let chain: StandardChain;
let lab: PolicyHost;
/** One array for every call, so fetchPolicy reuses its TLS context. */
let testCa: string[];

function fetchFromLab(domain: string, options: Partial<FetchPolicyOptions> = {}): Promise<PolicyFetchResult> {
  return fetchPolicy(domain, {
    resolveHost: async () => [lab.host],
    port: lab.port,
    ca: testCa,
    allowPrivate: true,
    timeoutMs: 20_000,
    ...options,
  });
}

async function expectFailure(domain: string, code: FetchCode, options: Partial<FetchPolicyOptions> = {}) {
  const result = await fetchFromLab(domain, options);
  assert.equal(result.ok, false, `${domain}: expected ${code}, got success`);
  if (result.ok) throw new Error('unreachable');
  assert.equal(result.code, code, `${domain}: ${result.message}`);
  return result;
}

before(async () => {
  pki = TestPki.create('mxguard-fetch-');
  chain = standardChain(pki, {
    host: 'mta-sts.example.test',
    sans: [...Object.keys(GOOD_SITES), 'mta-sts.nochain.test'],
  });
  const { intermediate } = chain;
  testCa = [chain.root.pem];
  const expired = pki.issue('expired', {
    issuer: intermediate,
    sans: ['mta-sts.expired.test'],
    notAfter: new Date('2021-01-01T00:00:00Z'),
  });
  const notYet = pki.issue('not-yet', {
    issuer: intermediate,
    sans: ['mta-sts.notyet.test'],
    notBefore: new Date('2080-01-01T00:00:00Z'),
  });
  const wrongName = pki.issue('wrong-name', { issuer: intermediate, sans: ['www.wrongname.test'] });
  const noSan = pki.issue('no-san', { issuer: intermediate, subject: '/CN=mta-sts.nosan.test' });
  const selfSigned = pki.issue('self-signed', { ca: false, sans: ['mta-sts.selfsigned.test'] });
  const other = standardChain(pki, {
    prefix: 'other-',
    host: 'mta-sts.untrusted.test',
    sans: ['mta-sts.untrusted.test', 'mta-sts.untrusted-root.test', 'mta-sts.untrusted-leaf.test'],
  });
  lab = await startPolicyHost({
    defaultCert: labCert(chain.leaf.key, [chain.leaf, intermediate]),
    sites: {
      ...GOOD_SITES,
      'mta-sts.expired.test': {
        kind: 'serve',
        body: POLICY,
        cert: labCert(expired.key, [expired, intermediate]),
      },
      'mta-sts.notyet.test': {
        kind: 'serve',
        body: POLICY,
        cert: labCert(notYet.key, [notYet, intermediate]),
      },
      'mta-sts.wrongname.test': {
        kind: 'serve',
        body: POLICY,
        cert: labCert(wrongName.key, [wrongName, intermediate]),
      },
      'mta-sts.nosan.test': { kind: 'serve', body: POLICY, cert: labCert(noSan.key, [noSan, intermediate]) },
      'mta-sts.selfsigned.test': { kind: 'serve', body: POLICY, cert: labCert(selfSigned.key, [selfSigned]) },
      'mta-sts.untrusted.test': {
        kind: 'serve',
        body: POLICY,
        cert: labCert(other.leaf.key, [other.leaf, other.intermediate]),
      },
      'mta-sts.untrusted-root.test': {
        kind: 'serve',
        body: POLICY,
        cert: labCert(other.leaf.key, [other.leaf, other.intermediate, other.root]),
      },
      'mta-sts.untrusted-leaf.test': {
        kind: 'serve',
        body: POLICY,
        cert: labCert(other.leaf.key, [other.leaf]),
      },
      'mta-sts.nochain.test': { kind: 'serve', body: POLICY, cert: labCert(chain.leaf.key, [chain.leaf]) },
    },
  });
});

after(async () => {
  await lab?.stop();
  pki?.remove();
});

describe('fetchPolicy: success', () => {
  it('fetches the policy over TLS with SNI, the right request and the certificate details', async () => {
    const asked: string[] = [];
    const before = lab.requests.length;
    const result = await fetchFromLab('example.test', {
      resolveHost: async (host) => {
        asked.push(host);
        return [lab.host];
      },
    });
    assert.ok(result.ok, result.ok ? '' : result.message);
    assert.equal(result.body, POLICY);
    assert.equal(result.contentType, 'text/plain');
    assert.equal(result.address, lab.host);
    assert.deepEqual(result.warnings, []);
    assert.deepEqual(asked, ['mta-sts.example.test']);

    const { certificate } = result;
    assert.match(certificate.subject, /CN=mta-sts\.example\.test/);
    assert.match(certificate.issuer, /CN=Issuing CA/);
    assert.ok(certificate.san.includes('mta-sts.example.test'));
    assert.equal(certificate.validTo, '2090-01-01T00:00:00.000Z');
    assert.equal(certificate.validFrom, '2020-01-01T00:00:00.000Z');
    assert.ok(certificate.daysLeft > 0);

    const requests = lab.requests.slice(before);
    assert.equal(requests.length, 1);
    const [request] = requests;
    assert.equal(request?.host, 'mta-sts.example.test');
    assert.equal(request?.servername, 'mta-sts.example.test');
    assert.equal(request?.method, 'GET');
    assert.equal(request?.path, POLICY_PATH);
    assert.equal(request?.userAgent, USER_AGENT);
    assert.equal(request?.headers['accept-encoding'], 'identity');
    assert.equal(request?.headers['cache-control'], 'no-cache');
  });

  it('normalizes the domain: case, trailing dot, IDN to A-label', async () => {
    const result = await fetchFromLab('EXAMPLE.Test.');
    assert.ok(result.ok);
    assert.equal(policyHost('Bücher.Example'), 'mta-sts.xn--bcher-kva.example');
  });

  it('tries the addresses in order: a refused one, then the lab', async () => {
    // The lab listens on 127.0.0.1 only, so 127.0.0.2 on the same port refuses the connection.
    const result = await fetchFromLab('example.test', { resolveHost: async () => ['127.0.0.2', lab.host] });
    assert.ok(result.ok, result.ok ? '' : result.message);
    assert.equal(result.address, lab.host);
  });

  it('accepts a body of exactly 64 KiB, with Content-Length or chunked', async () => {
    for (const domain of ['limit.test', 'chunked-limit.test']) {
      const result = await fetchFromLab(domain);
      assert.ok(result.ok, result.ok ? '' : result.message);
      assert.equal(result.body.length, MAX_POLICY_BYTES);
    }
  });

  it('accepts Content-Encoding: identity', async () => {
    assert.ok((await fetchFromLab('identity.test')).ok);
  });

  it('keeps a byte-order mark in the body for the parser to report', async () => {
    const result = await fetchFromLab('bom.test');
    assert.ok(result.ok);
    assert.ok(result.body.startsWith('\uFEFF'));
  });
});

describe('fetchPolicy: Content-Type (RFC 8461 §3.2, a warning)', () => {
  const table: Array<[string, string[]]> = [
    ['example.test', []],
    ['params.test', []],
    ['ascii.test', []],
    ['html.test', ['MTASTS_FETCH_CONTENT_TYPE']],
    ['notype.test', ['MTASTS_FETCH_CONTENT_TYPE']],
    ['charset.test', ['MTASTS_FETCH_CHARSET']],
  ];
  for (const [domain, codes] of table) {
    it(`${domain}: ${codes.join(', ') || 'no warning'}`, async () => {
      const result = await fetchFromLab(domain);
      assert.ok(result.ok, result.ok ? '' : result.message);
      assert.deepEqual(
        result.warnings.map((w) => w.code),
        codes,
      );
      for (const warning of result.warnings) {
        assert.equal(warning.severity, 'warning');
        assert.equal(FETCH_SEVERITY[warning.code as FetchCode], 'warn');
      }
      assert.equal(result.body, POLICY);
    });
  }
});

describe('fetchPolicy: failures', () => {
  it('MTASTS_FETCH_DOMAIN for something that is not a domain name', async () => {
    for (const domain of [
      '',
      '.',
      'a..b',
      '-a.test',
      'a-.test',
      'a_b.test',
      'exa mple.test',
      `${'x'.repeat(64)}.test`,
    ]) {
      const result = await expectFailure(domain, 'MTASTS_FETCH_DOMAIN');
      assert.equal(result.address, undefined);
    }
    assert.equal(policyHost(`${'a.'.repeat(123)}test`), undefined);
  });

  it('MTASTS_FETCH_DNS when the resolver fails, finds nothing or returns a non-address', async () => {
    const failing = await expectFailure('example.test', 'MTASTS_FETCH_DNS', {
      resolveHost: async () => {
        throw new Error('NXDOMAIN');
      },
    });
    assert.match(failing.message, /mta-sts\.example\.test.*NXDOMAIN/);
    await expectFailure('example.test', 'MTASTS_FETCH_DNS', { resolveHost: async () => [] });
    await expectFailure('example.test', 'MTASTS_FETCH_DNS', {
      resolveHost: async () => ['mta-sts.example.test'],
    });
  });

  it('MTASTS_FETCH_PRIVATE_ADDRESS without allowPrivate, before any connection', async () => {
    const fresh = await startPolicyHost({
      defaultCert: labCert(chain.leaf.key, [chain.leaf, chain.intermediate]),
      sites: { 'mta-sts.example.test': { kind: 'serve', body: POLICY } },
    });
    try {
      for (const addresses of [
        [fresh.host],
        ['::1', fresh.host],
        ['::ffff:127.0.0.1'],
        ['10.0.0.1', '169.254.1.1'],
      ]) {
        const result = await fetchPolicy('example.test', {
          resolveHost: async () => addresses,
          port: fresh.port,
          ca: testCa,
          timeoutMs: 20_000,
        });
        assert.equal(result.ok, false);
        if (result.ok) return;
        assert.equal(result.code, 'MTASTS_FETCH_PRIVATE_ADDRESS', result.message);
        assert.match(result.message, /allow-private/);
      }
      assert.equal(fresh.connections, 0);
      assert.deepEqual(fresh.requests, []);
      // The same lab answers once private addresses are allowed.
      const allowed = await fetchPolicy('example.test', {
        resolveHost: async () => [fresh.host],
        port: fresh.port,
        ca: testCa,
        allowPrivate: true,
      });
      assert.ok(allowed.ok);
      assert.equal(fresh.requests.length, 1);
    } finally {
      await fresh.stop();
    }
  });

  it('MTASTS_FETCH_CONNECT when no address accepts the connection', async () => {
    const result = await expectFailure('example.test', 'MTASTS_FETCH_CONNECT', {
      resolveHost: async () => ['127.0.0.2', '127.0.0.3'],
    });
    assert.match(result.message, /127\.0\.0\.2 \(ECONNREFUSED\), 127\.0\.0\.3 \(ECONNREFUSED\)/);
  });

  it('MTASTS_FETCH_TIMEOUT for a body dripped slowly, a stalled handshake and a silent resolver', async () => {
    await expectFailure('slow.test', 'MTASTS_FETCH_TIMEOUT', { timeoutMs: 300 });
    await expectFailure('stall.test', 'MTASTS_FETCH_TIMEOUT', { timeoutMs: 300 });
    await expectFailure('example.test', 'MTASTS_FETCH_TIMEOUT', {
      timeoutMs: 300,
      resolveHost: () => new Promise<string[]>(() => {}),
    });
  });

  it('the connect timeout covers the TCP connection only, not a stalled handshake', async () => {
    const result = await expectFailure('stall.test', 'MTASTS_FETCH_TIMEOUT', {
      connectTimeoutMs: 100,
      timeoutMs: 600,
    });
    assert.equal(result.address, lab.host);
  });

  it('MTASTS_FETCH_TLS when the server aborts the handshake', async () => {
    const result = await expectFailure('alert.test', 'MTASTS_FETCH_TLS');
    assert.equal(result.address, lab.host);
  });

  const certificateCases: Array<[string, FetchCode, RegExp]> = [
    ['expired.test', 'MTASTS_FETCH_CERT_EXPIRED', /expired on 2021-01-01/],
    ['notyet.test', 'MTASTS_FETCH_CERT_EXPIRED', /not valid yet/],
    [
      'wrongname.test',
      'MTASTS_FETCH_CERT_NAME',
      /valid for www\.wrongname\.test, not for mta-sts\.wrongname\.test/,
    ],
    ['nosan.test', 'MTASTS_FETCH_CERT_NAME', /no DNS name/],
    ['selfsigned.test', 'MTASTS_FETCH_CERT_UNTRUSTED', /self-signed \(DEPTH_ZERO_SELF_SIGNED_CERT\)/],
    ['untrusted.test', 'MTASTS_FETCH_CERT_UNTRUSTED', /UNABLE_TO_GET_ISSUER_CERT_LOCALLY/],
    ['untrusted-root.test', 'MTASTS_FETCH_CERT_UNTRUSTED', /SELF_SIGNED_CERT_IN_CHAIN/],
    ['untrusted-leaf.test', 'MTASTS_FETCH_CERT_UNTRUSTED', /UNABLE_TO_VERIFY_LEAF_SIGNATURE/],
    ['nochain.test', 'MTASTS_FETCH_CERT_UNTRUSTED', /serve the intermediate/],
  ];
  for (const [domain, code, message] of certificateCases) {
    it(`${code} for ${domain}, with the certificate described`, async () => {
      const before = lab.requests.length;
      const result = await expectFailure(domain, code);
      assert.match(result.message, message);
      assert.ok(result.certificate, 'the failure carries the certificate');
      assert.match(result.message, /subject /);
      assert.equal(lab.requests.length, before, 'no request is sent over an unverified connection');
    });
  }

  it('MTASTS_FETCH_CERT_UNTRUSTED for the test CA when only the system roots are trusted', async () => {
    await expectFailure('example.test', 'MTASTS_FETCH_CERT_UNTRUSTED', { ca: [] });
    await expectFailure('example.test', 'MTASTS_FETCH_CERT_UNTRUSTED', { ca: undefined });
  });

  it('MTASTS_FETCH_REDIRECT for 3xx, naming the Location, without following it', async () => {
    const before = lab.requests.length;
    const moved = await expectFailure('redirect.test', 'MTASTS_FETCH_REDIRECT');
    assert.match(moved.message, /301.*https:\/\/policy\.elsewhere\.test\/mta-sts\.txt/);
    const found = await expectFailure('found.test', 'MTASTS_FETCH_REDIRECT');
    assert.match(found.message, /302.*\/other\.txt/);
    assert.equal(lab.requests.length, before + 2, 'one request each, nothing followed');
  });

  it('MTASTS_FETCH_STATUS for any status other than 200', async () => {
    assert.match((await expectFailure('notfound.test', 'MTASTS_FETCH_STATUS')).message, /404/);
    assert.match((await expectFailure('error.test', 'MTASTS_FETCH_STATUS')).message, /500/);
    assert.match((await expectFailure('nocontent.test', 'MTASTS_FETCH_STATUS')).message, /204/);
  });

  it('MTASTS_FETCH_TOO_LARGE for a declared length, a streamed body and one byte over (either way)', async () => {
    await expectFailure('huge-declared.test', 'MTASTS_FETCH_TOO_LARGE');
    await expectFailure('huge-streamed.test', 'MTASTS_FETCH_TOO_LARGE');
    await expectFailure('over-limit.test', 'MTASTS_FETCH_TOO_LARGE');
    await expectFailure('chunked-over.test', 'MTASTS_FETCH_TOO_LARGE');
  });

  it('MTASTS_FETCH_ENCODING for an unrequested Content-Encoding and a body that is not UTF-8', async () => {
    assert.match((await expectFailure('gzip.test', 'MTASTS_FETCH_ENCODING')).message, /gzip/);
    assert.match((await expectFailure('deflate.test', 'MTASTS_FETCH_ENCODING')).message, /deflate/);
    assert.match((await expectFailure('latin1.test', 'MTASTS_FETCH_ENCODING')).message, /UTF-8/);
  });

  it('MTASTS_FETCH_PROTOCOL when the server does not speak HTTP', async () => {
    const result = await expectFailure('garbage.test', 'MTASTS_FETCH_PROTOCOL');
    assert.equal(result.address, lab.host);
  });

  it('rejects options.ca entries that are not certificates', async () => {
    await assert.rejects(fetchFromLab('example.test', { ca: ['not a certificate'] }), TypeError);
  });
});

describe('fetchAndParsePolicy', () => {
  it('returns the parsed policy', async () => {
    const result = await fetchAndParsePolicy('example.test', {
      resolveHost: async () => [lab.host],
      port: lab.port,
      ca: testCa,
      allowPrivate: true,
    });
    assert.ok(result.ok, result.ok ? '' : result.message);
    assert.deepEqual(result.policy, {
      mode: 'enforce',
      maxAge: 604800,
      mx: ['mx1.example.test', '*.mail.example.test'],
      extensions: [],
    });
  });

  it('puts the fetch warnings first, then the parser warnings', async () => {
    lab.setSite('mta-sts.short.test', {
      kind: 'serve',
      contentType: 'text/html',
      body: 'version: STSv1\nmode: testing\nmx: mx.short.test\nmax_age: 3600\n',
    });
    const result = await fetchAndParsePolicy('short.test', {
      resolveHost: async () => [lab.host],
      port: lab.port,
      ca: testCa,
      allowPrivate: true,
    });
    assert.ok(result.ok, result.ok ? '' : result.message);
    assert.equal(result.warnings[0]?.code, 'MTASTS_FETCH_CONTENT_TYPE');
    assert.ok(result.warnings.length >= 2);
    assert.equal(result.policy.maxAge, 3600);
  });

  it('maps an invalid policy to MTASTS_FETCH_POLICY_INVALID with the parser problems', async () => {
    const result = await fetchAndParsePolicy('invalid.test', {
      resolveHost: async () => [lab.host],
      port: lab.port,
      ca: testCa,
      allowPrivate: true,
    });
    assert.equal(result.ok, false);
    if (result.ok) return;
    assert.equal(result.code, 'MTASTS_FETCH_POLICY_INVALID');
    assert.match(result.message, /https:\/\/mta-sts\.invalid\.test\/\.well-known\/mta-sts\.txt/);
    assert.ok(result.problems?.some((p) => p.code === 'MTASTS_POLICY_MX'));
    assert.ok(result.certificate);
  });

  it('passes fetch failures through', async () => {
    const result = await fetchAndParsePolicy('notfound.test', {
      resolveHost: async () => [lab.host],
      port: lab.port,
      ca: testCa,
      allowPrivate: true,
    });
    assert.equal(result.ok ? 'ok' : result.code, 'MTASTS_FETCH_STATUS');
  });
});

describe('FETCH_SEVERITY', () => {
  it('fails on every code but the two Content-Type warnings', () => {
    for (const [code, severity] of Object.entries(FETCH_SEVERITY)) {
      const expected =
        code === 'MTASTS_FETCH_CONTENT_TYPE' || code === 'MTASTS_FETCH_CHARSET' ? 'warn' : 'fail';
      assert.equal(severity, expected, code);
    }
  });
});

describe('fetchPolicy: fuzz', () => {
  const codes = new Set(Object.keys(FETCH_SEVERITY));
  it('random bytes instead of HTTP only ever give a typed result', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 300 }), async (bytes) => {
        lab.setSite('mta-sts.fuzz.test', { kind: 'garbage', data: Buffer.from(bytes) });
        const result = await fetchFromLab('fuzz.test');
        if (!result.ok) assert.ok(codes.has(result.code), result.code);
      }),
      { numRuns: 40 },
    );
  });

  it('random bodies with 200 give a policy, MTASTS_FETCH_POLICY_INVALID or MTASTS_FETCH_ENCODING', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
          fc.string({ unit: 'binary', maxLength: 200 }).map((s) => Buffer.from(s)),
        ),
        async (body) => {
          lab.setSite('mta-sts.fuzz.test', { kind: 'serve', body });
          const result = await fetchAndParsePolicy('fuzz.test', {
            resolveHost: async () => [lab.host],
            port: lab.port,
            ca: testCa,
            allowPrivate: true,
          });
          if (!result.ok) {
            assert.ok(
              ['MTASTS_FETCH_POLICY_INVALID', 'MTASTS_FETCH_ENCODING'].includes(result.code),
              result.message,
            );
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
