// The tls and dane sections of `mxguard check` (src/check/transport.ts): the whole path checkMx ->
// gatherTransport -> transportFindings against the lab DNS server and lab SMTP servers on loopback, with test
// PKIs (one scenario per finding code), then transportFindings alone on hand-made data (TLS versions the probe
// cannot negotiate, random combinations that must keep the section's invariants).
import assert from 'node:assert/strict';
import type { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { checkMx, type MxCheck } from '../../src/check/mx.js';
import {
  gatherTransport,
  type HostTransport,
  type TransportData,
  transportFindings,
} from '../../src/check/transport.js';
import { type CheckEnvironment, type Finding, SECTIONS, STATUSES } from '../../src/check/types.js';
import { mapLimit } from '../../src/common/limit.js';
import { formatTlsa, generateTlsa, type TlsaRecord, tlsaOwner } from '../../src/dane/tlsa.js';
import { DnsClient } from '../../src/dns/client.js';
import type { StsMode, StsPolicy } from '../../src/mtasts/policy.js';
import type { TlsaStatus } from '../../src/sender/host.js';
import type { SmtpProbeFailure, SmtpProbeResult, SmtpProbeSuccess } from '../../src/smtp/probe.js';
import { type StandardChain, standardChain, type TestCert, TestPki } from '../helpers/pki.js';
import { type LabDnsServer, type LabRecord, type LabZone, startDnsServer } from '../lab/dns-server.js';
import { type LabSmtpOptions, type LabSmtpSession, startSmtpServer } from '../lab/smtp-server.js';

/** Every MX host of the scenarios is mx.<scenario>.test. */
const mxOf = (scenario: string) => `mx.${scenario}.test`;
const SCENARIOS = [
  'good',
  'plain',
  'nostarttls',
  'refused',
  'banner',
  'ehlo',
  'garbage',
  'silent',
  'drop',
  'oldtls',
  'connect',
  'selfsigned',
  'mismatch',
  'unusable',
  'insecure',
  'bogustlsa',
  'brokentlsa',
  'notlsa',
  'samekey',
  'twokeys',
  'absentca',
  'onlyca',
  'expired',
  'wrongname',
  'private',
  'nullmx',
  'cname',
  'cnamefallback',
  'cnameta',
];

let pki: TestPki;
let chainA: StandardChain;
/** Another key from the same issuing CA: "the next key". */
let leafB: TestCert;
/** A CA the servers never present. */
let other: StandardChain;
let selfSigned: TestCert;
let expiredLeaf: TestCert;
let wrongName: TestCert;
/** A leaf named only for the CNAME target of mx.cnameta.test. */
let aliasLeaf: TestCert;
let dns: LabDnsServer;

const tlsa = (cert: TestCert, usage: number, selector: number, matchingType: number): TlsaRecord =>
  generateTlsa(cert.x509, usage, selector, matchingType);

function tlsaRecords(scenario: string, records: TlsaRecord[]): LabRecord[] {
  return records.map((r) => ({
    name: `_25._tcp.${mxOf(scenario)}`,
    type: 'TLSA',
    data: { usage: r.usage, selector: r.selector, matchingType: r.matchingType, certificate: r.data },
  }));
}

/** A zone <scenario>.test with MX 10 mx.<scenario>.test, its addresses and TLSA records. */
function mailZone(
  scenario: string,
  options: { secure?: boolean; addresses?: string[]; tlsa?: TlsaRecord[]; extra?: LabRecord[] } = {},
): LabZone {
  const origin = `${scenario}.test`;
  const host = mxOf(scenario);
  const addresses = options.addresses ?? ['127.0.0.1'];
  return {
    origin,
    secure: options.secure ?? true,
    records: [
      { name: origin, type: 'MX', data: { preference: 10, exchange: host } },
      ...addresses.map(
        (ip): LabRecord =>
          ip.includes(':') ? { name: host, type: 'AAAA', data: ip } : { name: host, type: 'A', data: ip },
      ),
      ...tlsaRecords(scenario, options.tlsa ?? []),
      ...(options.extra ?? []),
    ],
  };
}

before(async () => {
  pki = TestPki.create('mxguard-check-transport-');
  chainA = standardChain(pki, {
    host: mxOf('good'),
    sans: SCENARIOS.filter((s) => s !== 'wrongname').map(mxOf),
  });
  leafB = pki.issue('leaf-b', { issuer: chainA.intermediate, sans: [mxOf('twokeys')] });
  other = standardChain(pki, { prefix: 'other-', host: 'mx.elsewhere.test' });
  selfSigned = pki.issue('self-signed', { ca: false, sans: [mxOf('selfsigned')] });
  expiredLeaf = pki.issue('expired', {
    issuer: chainA.intermediate,
    sans: [mxOf('expired')],
    notBefore: new Date('2019-01-01T00:00:00Z'),
    notAfter: new Date('2021-01-01T00:00:00Z'),
  });
  wrongName = pki.issue('wrong-name', { issuer: chainA.intermediate, sans: ['other.example'] });
  aliasLeaf = pki.issue('alias-leaf', { issuer: chainA.intermediate, sans: ['mx3.target.test'] });

  const leafA = chainA.leaf;
  dns = await startDnsServer([
    mailZone('good', {
      addresses: ['127.0.0.1', '::1'],
      tlsa: [tlsa(leafA, 3, 1, 1), tlsa(chainA.intermediate, 2, 1, 1)],
    }),
    mailZone('plain', { secure: false }),
    mailZone('nostarttls', { tlsa: [tlsa(leafA, 3, 1, 1)] }),
    mailZone('refused', { secure: false }),
    mailZone('banner', { secure: false }),
    mailZone('ehlo', { secure: false }),
    mailZone('garbage', { secure: false }),
    mailZone('silent', { tlsa: [tlsa(leafA, 3, 1, 1)] }),
    mailZone('drop', { secure: false }),
    mailZone('oldtls', { secure: false }),
    mailZone('connect', { secure: false, addresses: ['127.0.0.9'] }),
    mailZone('selfsigned', { tlsa: [tlsa(selfSigned, 3, 1, 1)] }),
    mailZone('mismatch', { tlsa: [tlsa(leafB, 3, 1, 1)] }),
    mailZone('unusable', { tlsa: [tlsa(leafA, 1, 1, 1), tlsa(chainA.root, 0, 0, 1)] }),
    mailZone('insecure', { secure: false, tlsa: [tlsa(leafA, 3, 1, 1)] }),
    mailZone('bogustlsa'),
    {
      origin: `_25._tcp.${mxOf('bogustlsa')}`,
      bogus: true,
      records: tlsaRecords('bogustlsa', [tlsa(leafA, 3, 1, 1)]),
    },
    mailZone('brokentlsa'),
    { origin: `_25._tcp.${mxOf('brokentlsa')}`, servfail: true, records: [] },
    mailZone('notlsa'),
    mailZone('samekey', { tlsa: [tlsa(leafA, 3, 0, 1), tlsa(leafA, 3, 1, 1)] }),
    mailZone('twokeys', { tlsa: [tlsa(leafA, 3, 1, 1), tlsa(leafB, 3, 1, 1)] }),
    mailZone('absentca', { tlsa: [tlsa(leafA, 3, 1, 1), tlsa(other.intermediate, 2, 1, 1)] }),
    mailZone('onlyca', { tlsa: [tlsa(chainA.intermediate, 2, 1, 1)] }),
    mailZone('expired', { tlsa: [tlsa(expiredLeaf, 3, 1, 1)] }),
    mailZone('wrongname', { tlsa: [tlsa(chainA.intermediate, 2, 1, 1)] }),
    mailZone('private', { tlsa: [tlsa(leafA, 3, 1, 1)] }),
    // MX hosts that are aliases (RFC 7672 §2.2.2): TLSA at the expanded name first, then at the original.
    mailZone('cname', {
      addresses: [],
      tlsa: [tlsa(leafB, 3, 1, 1)],
      extra: [{ name: mxOf('cname'), type: 'CNAME', data: 'mx1.target.test' }],
    }),
    mailZone('cnamefallback', {
      addresses: [],
      tlsa: [tlsa(leafA, 3, 1, 1)],
      extra: [{ name: mxOf('cnamefallback'), type: 'CNAME', data: 'mx2.target.test' }],
    }),
    mailZone('cnameta', {
      addresses: [],
      extra: [{ name: mxOf('cnameta'), type: 'CNAME', data: 'mx3.target.test' }],
    }),
    {
      origin: 'target.test',
      secure: true,
      records: [
        { name: 'mx1.target.test', type: 'A', data: '127.0.0.1' },
        { name: 'mx2.target.test', type: 'A', data: '127.0.0.1' },
        { name: 'mx3.target.test', type: 'A', data: '127.0.0.1' },
        ...tlsaRecords('cname', [tlsa(leafA, 3, 1, 1)]).map((r) => ({
          ...r,
          name: '_25._tcp.mx1.target.test',
        })),
        ...tlsaRecords('cnameta', [tlsa(chainA.intermediate, 2, 1, 1)]).map((r) => ({
          ...r,
          name: '_25._tcp.mx3.target.test',
        })),
      ],
    },
    {
      origin: 'nullmx.test',
      secure: true,
      records: [{ name: 'nullmx.test', type: 'MX', data: { preference: 0, exchange: '.' } }],
    },
  ]);
});

after(async () => {
  await dns?.stop();
  pki?.remove();
});

function serverCert(certs: TestCert[]): { key: string; cert: string } {
  return { key: readFileSync(certs[0]!.key.path, 'utf8'), cert: certs.map((c) => c.pem).join('') };
}

const chainOfA = () => serverCert([chainA.leaf, chainA.intermediate]);

function environment(port: number, extra: Partial<CheckEnvironment> = {}): CheckEnvironment {
  return {
    resolver: new DnsClient({ servers: [{ host: dns.host, port: dns.port }], timeoutMs: 500, tries: 1 }),
    dnssecValidating: true,
    ca: [chainA.root.pem],
    allowPrivate: true,
    timeoutMs: 2000,
    smtpPort: port,
    httpsPort: 443,
    dkimSelectors: [],
    now: new Date(),
    ...extra,
  };
}

interface Audit {
  mx: MxCheck;
  data: TransportData;
  findings: Finding[];
  /** Sessions of the IPv4 lab server, then of the IPv6 one. */
  sessions: LabSmtpSession[][];
}

function policy(mode: StsMode, host: string): StsPolicy {
  return { mode, maxAge: 604800, mx: [host], extensions: [] };
}

/**
 * Start a lab SMTP server on 127.0.0.1 (and, with `ipv6`, its twin on [::1] with the same port, since the
 * environment has one SMTP port), then run the mx section and the transport sections for the scenario.
 */
async function audit(
  scenario: string,
  smtp: LabSmtpOptions,
  options: { env?: Partial<CheckEnvironment>; mode?: StsMode; ipv6?: boolean } = {},
): Promise<Audit> {
  const servers = [await startSmtpServer({ ...smtp, host: '127.0.0.1' })];
  try {
    if (options.ipv6) {
      for (let attempt = 0; servers.length < 2; attempt++) {
        try {
          servers.push(await startSmtpServer({ ...smtp, host: '::1', port: servers[0]!.port }));
        } catch (err) {
          // The port is taken on ::1: move both servers to a new port.
          if (attempt > 10) throw err;
          await servers[0]!.stop();
          servers[0] = await startSmtpServer({ ...smtp, host: '127.0.0.1' });
        }
      }
    }
    const env = environment(servers[0]!.port, options.env);
    const domain = `${scenario}.test`;
    const mx = await checkMx(domain, env);
    const data = await gatherTransport(domain, env, mx.hosts);
    const sts = options.mode === undefined ? undefined : policy(options.mode, mxOf(scenario));
    const findings = transportFindings(data, sts, env);
    return { mx, data, findings, sessions: servers.map((s) => s.sessions) };
  } finally {
    for (const s of servers) await s.stop();
  }
}

function one(a: Audit | Finding[], code: string): Finding {
  const findings = Array.isArray(a) ? a : a.findings;
  const found = findings.filter((f) => f.code === code);
  assert.equal(found.length, 1, `one ${code} expected, got ${JSON.stringify(findings, null, 1)}`);
  return found[0]!;
}

function expect(a: Audit, code: string, status: string, scenario: string): Finding {
  const f = one(a, code);
  assert.equal(f.status, status, `${code}: ${f.message}`);
  assert.equal(f.host, mxOf(scenario));
  assert.equal(f.section, code.startsWith('DANE_') ? 'dane' : 'tls');
  return f;
}

function codes(a: Audit): string[] {
  return a.findings.map((f) => f.code);
}

const suggested = (cert: TestCert, scenario: string) =>
  formatTlsa(generateTlsa(cert.x509, 3, 1, 1), tlsaOwner(mxOf(scenario)));

describe('tls: a good MX over IPv4 and IPv6, with DANE', () => {
  it('probes both addresses with SNI, verifies PKIX and DANE, and merges identical findings', async () => {
    const a = await audit('good', { cert: chainOfA() }, { ipv6: true, mode: 'enforce' });
    assert.deepEqual(
      a.sessions.map((s) => s.map((x) => [x.sni, x.tls, x.quit])),
      [
        [
          [mxOf('good'), true, true],
          [undefined, false, false],
        ],
        [
          [mxOf('good'), true, true],
          [undefined, false, false],
        ],
      ],
      'on 127.0.0.1 and on ::1: one session, then one offering only TLS 1.0/1.1 (refused)',
    );
    const starttls = expect(a, 'TLS_STARTTLS', 'pass', 'good');
    assert.match(starttls.message, /^127\.0\.0\.1, ::1: STARTTLS offered; TLSv1\.3 with /);
    assert.match(
      expect(a, 'TLS_CERT_VALID', 'pass', 'good').message,
      /valid for mx\.good\.test .*expires 2090-01-01/,
    );
    assert.match(expect(a, 'DANE_TLSA_MATCH', 'pass', 'good').message, /^127\.0\.0\.1, ::1: 3 1 1 /);
    expect(a, 'DANE_ROLLOVER_READY', 'pass', 'good');
    assert.deepEqual(
      a.findings.filter((f) => f.status !== 'pass'),
      [],
    );
    assert.equal(a.data.hosts[0]?.tlsa.status, 'secure');
    assert.equal(a.data.hosts[0]?.tlsa.owner, '_25._tcp.mx.good.test.');
  });

  it('reports TLS 1.2 when the server offers no more', async () => {
    const tls12 = { ...chainOfA(), maxVersion: 'TLSv1.2' };
    const a = await audit('plain', { cert: tls12 });
    assert.match(expect(a, 'TLS_STARTTLS', 'pass', 'plain').message, /TLSv1\.2 with /);
  });

  it('warns 14 days before the certificate expires', async () => {
    const a = await audit(
      'good',
      { cert: chainOfA() },
      { ipv6: true, env: { now: new Date('2089-12-26T00:00:00Z') } },
    );
    const f = expect(a, 'TLS_CERT_EXPIRING', 'warn', 'good');
    assert.match(f.message, /expires on 2090-01-01, in 6 days/);
    assert.ok(!codes(a).includes('TLS_CERT_VALID'));
  });
});

describe('tls: STARTTLS and SMTP failures', () => {
  it('a server that still accepts TLS 1.0/1.1 beside 1.2+: pass for STARTTLS, warn for the old versions', async () => {
    const wide = { ...chainOfA(), minVersion: 'TLSv1', maxVersion: 'TLSv1.3', ciphers: 'DEFAULT@SECLEVEL=0' };
    const a = await audit('plain', { cert: wide as LabSmtpOptions['cert'] });
    expect(a, 'TLS_STARTTLS', 'pass', 'plain');
    const f = expect(a, 'TLS_OLD_VERSIONS_ACCEPTED', 'warn', 'plain');
    assert.match(f.message, /accepts TLSv1\.1, which RFC 8996 deprecates/);
    assert.match(f.fix ?? '', /smtpd_tls_protocols = >=TLSv1\.2/);
    assert.equal(a.sessions[0]!.length, 2, 'one more connection, offering only the old versions');
  });

  it('a modern server: no old-version finding', async () => {
    const a = await audit('plain', { cert: chainOfA() });
    assert.ok(!a.findings.some((x) => x.code.startsWith('TLS_OLD') || x.code === 'TLS_ONLY_OLD_VERSIONS'));
  });

  it('no STARTTLS without policy or TLSA: still a fail (mail travels in plain text)', async () => {
    const a = await audit('plain', { cert: chainOfA(), behaviour: { noStartTls: true } });
    const f = expect(a, 'TLS_NO_STARTTLS', 'fail', 'plain');
    assert.match(f.message, /plain text/);
    assert.match(f.fix ?? '', /smtpd_tls_security_level/);
    expect(a, 'DANE_ZONE_INSECURE', 'skip', 'plain');
  });

  it('no STARTTLS under an enforced MTA-STS policy: fail', async () => {
    const a = await audit(
      'plain',
      { cert: chainOfA(), behaviour: { noStartTls: true } },
      { mode: 'enforce' },
    );
    assert.match(expect(a, 'TLS_NO_STARTTLS', 'fail', 'plain').message, /enforce mode/);
  });

  it('no STARTTLS with TLSA published: fail, and DANE_NO_TLS', async () => {
    const a = await audit('nostarttls', { cert: chainOfA(), behaviour: { noStartTls: true } });
    assert.match(expect(a, 'TLS_NO_STARTTLS', 'fail', 'nostarttls').message, /TLSA records are published/);
    assert.match(expect(a, 'DANE_NO_TLS', 'fail', 'nostarttls').message, /DANE senders defer mail/);
  });

  it('STARTTLS refused: fail with the reply', async () => {
    const a = await audit('refused', {
      cert: chainOfA(),
      behaviour: { starttlsReply: '454 4.7.0 TLS not available' },
    });
    assert.match(
      expect(a, 'TLS_STARTTLS_REFUSED', 'fail', 'refused').message,
      /454 4\.7\.0 TLS not available/,
    );
  });

  it('a 5xx greeting: fail with the reply', async () => {
    const a = await audit('banner', { cert: chainOfA(), behaviour: { banner: '554 5.3.2 no service here' } });
    assert.match(expect(a, 'TLS_BANNER_REJECTED', 'fail', 'banner').message, /554 5\.3\.2 no service here/);
  });

  it('EHLO refused: fail with the reply', async () => {
    const a = await audit('ehlo', { cert: chainOfA(), behaviour: { ehloReply: '421 4.3.2 try later' } });
    assert.match(expect(a, 'TLS_EHLO_REJECTED', 'fail', 'ehlo').message, /421 4\.3\.2 try later/);
  });

  it('not SMTP at all: fail', async () => {
    const a = await audit('garbage', { behaviour: { garbage: true } });
    expect(a, 'TLS_SMTP_ERROR', 'fail', 'garbage');
  });

  it('a silent server times out: fail; DANE cannot be compared: skip', async () => {
    const a = await audit('silent', { behaviour: { silent: true } }, { env: { timeoutMs: 300 } });
    assert.match(expect(a, 'TLS_TIMEOUT', 'fail', 'silent').message, /greeting/);
    expect(a, 'DANE_NOT_VERIFIED', 'skip', 'silent');
  });

  it('the connection dropped after STARTTLS: handshake failure', async () => {
    const a = await audit('drop', { cert: chainOfA(), behaviour: { dropAfterStartTls: true } });
    expect(a, 'TLS_HANDSHAKE_FAILED', 'fail', 'drop');
  });

  it('a server limited to TLS 1.0/1.1: TLS_ONLY_OLD_VERSIONS, told apart from a broken handshake (RFC 8996)', async () => {
    const old = { ...chainOfA(), minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' };
    const a = await audit('oldtls', { cert: old });
    assert.match(expect(a, 'TLS_ONLY_OLD_VERSIONS', 'fail', 'oldtls').message, /offers only TLSv1\.1/);
    assert.ok(!a.findings.some((x) => x.code === 'TLS_HANDSHAKE_FAILED'));
  });

  it('nothing listening: connect failure', async () => {
    const a = await audit('connect', { cert: chainOfA() });
    assert.match(
      expect(a, 'TLS_CONNECT_FAILED', 'fail', 'connect').message,
      /^127\.0\.0\.9: .*cannot connect: ECONNREFUSED/,
    );
    assert.deepEqual(a.sessions[0], []);
  });

  it('private addresses are not probed without --allow-private: the server sees no session', async () => {
    const a = await audit('private', { cert: chainOfA() }, { env: { allowPrivate: false } });
    assert.equal(a.mx.findings.find((f) => f.code === 'MX_PRIVATE_ADDRESS')?.status, 'warn');
    assert.deepEqual(a.sessions[0], []);
    expect(a, 'TLS_NOT_PROBED', 'skip', 'private');
    expect(a, 'DANE_NOT_PROBED', 'skip', 'private');
    assert.deepEqual(a.data.hosts[0]?.probes, []);
  });

  it('gatherTransport refuses private addresses even when handed them directly', async () => {
    const server = await startSmtpServer({ cert: chainOfA() });
    try {
      const env = environment(server.port, { allowPrivate: false });
      const host = { host: mxOf('private'), preference: 10, addresses: ['127.0.0.1'], addressesSecure: true };
      const data = await gatherTransport('private.test', env, [host]);
      assert.deepEqual(data.hosts[0]?.probes, []);
      assert.deepEqual(server.sessions, []);
    } finally {
      await server.stop();
    }
  });

  it('a null MX leaves nothing to probe', async () => {
    const a = await audit('nullmx', { cert: chainOfA() });
    assert.deepEqual(a.findings, []);
    assert.deepEqual(a.sessions[0], []);
  });
});

describe('tls: certificates (RFC 8461 §4.2)', () => {
  it('self-signed: PKIX fails (warn without policy) while DANE-EE passes', async () => {
    const a = await audit('selfsigned', { cert: serverCert([selfSigned]) });
    const f = expect(a, 'TLS_CERT_UNTRUSTED', 'warn', 'selfsigned');
    assert.match(f.message, /self-signed/);
    assert.match(f.message, /no MTA-STS policy/);
    assert.match(f.message, /DANE senders are not affected/);
    expect(a, 'DANE_TLSA_MATCH', 'pass', 'selfsigned');
    const rollover = expect(a, 'DANE_ROLLOVER_NOT_READY', 'warn', 'selfsigned');
    assert.match(rollover.message, /450 4\.7\.323 tlsa-invalid/);
    assert.match(
      rollover.fix ?? '',
      /^_25\._tcp\.mx\.selfsigned\.test\. IN TLSA 3 1 1 <SHA-256 of the next key>/,
    );
  });

  it('self-signed under an enforced policy: fail, naming the policy', async () => {
    const a = await audit('selfsigned', { cert: serverCert([selfSigned]) }, { mode: 'enforce' });
    assert.match(expect(a, 'TLS_CERT_UNTRUSTED', 'fail', 'selfsigned').message, /enforce mode/);
  });

  it('a certificate for another name: warn under testing, naming the policy', async () => {
    const a = await audit(
      'wrongname',
      { cert: serverCert([wrongName, chainA.intermediate]) },
      { mode: 'testing' },
    );
    const f = expect(a, 'TLS_CERT_NAME_MISMATCH', 'warn', 'wrongname');
    assert.match(f.message, /DNS:other\.example/);
    assert.match(f.message, /testing mode/);
    assert.equal(f.fix, 'get a certificate with subjectAltName DNS:mx.wrongname.test');
    assert.ok(!codes(a).includes('TLS_CERT_UNTRUSTED'), 'the chain itself verifies');
    // DANE-TA(2) checks the name too (RFC 7672 §3.2.3), so the 2 1 1 record does not match.
    const dane = expect(a, 'DANE_TLSA_MISMATCH', 'fail', 'wrongname');
    assert.match(dane.message, /does not match the host name/);
    assert.equal(dane.fix, suggested(wrongName, 'wrongname'));
  });

  it('expired: fail (once), while DANE-EE ignores the dates', async () => {
    const a = await audit(
      'expired',
      { cert: serverCert([expiredLeaf, chainA.intermediate]) },
      { mode: 'enforce' },
    );
    const f = expect(a, 'TLS_CERT_EXPIRED', 'fail', 'expired');
    assert.match(f.message, /expired on 2021-01-01/);
    assert.match(f.message, /enforce mode/);
    assert.ok(!codes(a).includes('TLS_CERT_UNTRUSTED'), 'the expiry is reported once');
    expect(a, 'DANE_TLSA_MATCH', 'pass', 'expired');
  });
});

describe('dane: MX hosts that are aliases (RFC 7672 §2.2.2)', () => {
  it('looks up TLSA at the secure CNAME-expanded name first (the original name has a stale record)', async () => {
    const a = await audit('cname', { cert: chainOfA() });
    assert.equal(a.data.hosts[0]?.tlsa.owner, '_25._tcp.mx1.target.test.');
    expect(a, 'DANE_TLSA_MATCH', 'pass', 'cname');
  });

  it('falls back to the original name when the expanded name has no TLSA records', async () => {
    const a = await audit('cnamefallback', { cert: chainOfA() });
    assert.equal(a.data.hosts[0]?.tlsa.owner, '_25._tcp.mx.cnamefallback.test.');
    expect(a, 'DANE_TLSA_MATCH', 'pass', 'cnamefallback');
  });

  it('accepts a DANE-TA certificate named for the expanded name (§3.2.2)', async () => {
    const a = await audit('cnameta', { cert: serverCert([aliasLeaf, chainA.intermediate]) });
    assert.equal(a.data.hosts[0]?.tlsa.owner, '_25._tcp.mx3.target.test.');
    expect(a, 'DANE_TLSA_MATCH', 'pass', 'cnameta');
  });
});

describe('dane (RFC 7672)', () => {
  it('TLSA mismatch: fail, the fix is the record `tlsa generate` prints for the live certificate', async () => {
    const a = await audit('mismatch', { cert: chainOfA() });
    const f = expect(a, 'DANE_TLSA_MISMATCH', 'fail', 'mismatch');
    assert.equal(f.fix, suggested(chainA.leaf, 'mismatch'));
    assert.match(f.fix ?? '', /^_25\._tcp\.mx\.mismatch\.test\. IN TLSA 3 1 1 [0-9a-f]{64}$/);
    assert.ok(!codes(a).includes('DANE_ROLLOVER_READY'));
  });

  it('only PKIX-TA/PKIX-EE records: no usable TLSA records', async () => {
    const a = await audit('unusable', { cert: chainOfA() });
    const f = expect(a, 'DANE_TLSA_UNUSABLE', 'fail', 'unusable');
    assert.match(f.message, /no usable TLSA records \(RFC 7672 §3\.1\.3\)/);
    assert.equal(f.fix, suggested(chainA.leaf, 'unusable'));
  });

  it('an unsigned zone: skip, never pass or fail, even with TLSA records', async () => {
    const a = await audit('insecure', { cert: chainOfA() });
    const f = expect(a, 'DANE_ZONE_INSECURE', 'skip', 'insecure');
    assert.match(f.message, /not DNSSEC-signed; DANE not possible/);
    assert.match(f.message, /1 TLSA record\(s\) are published but senders ignore them/);
    assert.ok(f.fix?.endsWith(suggested(chainA.leaf, 'insecure')));
    assert.deepEqual(
      a.findings.filter((x) => x.section === 'dane').map((x) => x.code),
      ['DANE_ZONE_INSECURE'],
    );
  });

  it('a bogus TLSA RRset: fail', async () => {
    const a = await audit('bogustlsa', { cert: chainOfA() });
    const f = expect(a, 'DANE_TLSA_BOGUS', 'fail', 'bogustlsa');
    assert.match(f.fix ?? '', /delv _25\._tcp\.mx\.bogustlsa\.test\. TLSA/);
    assert.equal(a.data.hosts[0]?.tlsa.status, 'bogus');
  });

  it('a TLSA lookup that fails: fail with the resolver message', async () => {
    const a = await audit('brokentlsa', { cert: chainOfA() });
    assert.match(expect(a, 'DANE_TLSA_LOOKUP_FAILED', 'fail', 'brokentlsa').message, /SERVFAIL/);
  });

  it('a resolver that does not validate: warn only, never pass or fail', async () => {
    const a = await audit('good', { cert: chainOfA() }, { ipv6: true, env: { dnssecValidating: false } });
    const f = expect(a, 'DANE_NOT_VALIDATING', 'warn', 'good');
    assert.match(f.message, /resolver does not validate DNSSEC/);
    assert.deepEqual(
      a.findings.filter((x) => x.section === 'dane').map((x) => x.code),
      ['DANE_NOT_VALIDATING'],
    );
  });

  it('a signed zone without TLSA: info, with the record to publish', async () => {
    const a = await audit('notlsa', { cert: chainOfA() });
    const f = expect(a, 'DANE_NO_TLSA', 'info', 'notlsa');
    assert.equal(f.fix, suggested(chainA.leaf, 'notlsa'));
  });

  it('3 0 1 + 3 1 1 of one key: not ready for a rollover; the fix is a 2 1 1 for the issuing CA', async () => {
    const a = await audit('samekey', { cert: chainOfA() });
    expect(a, 'DANE_TLSA_MATCH', 'pass', 'samekey');
    const f = expect(a, 'DANE_ROLLOVER_NOT_READY', 'warn', 'samekey');
    assert.match(f.message, /the next key change will stop inbound mail with 450 4\.7\.323 tlsa-invalid/);
    assert.equal(
      f.fix,
      formatTlsa(generateTlsa(chainA.intermediate.x509, 2, 1, 1), tlsaOwner(mxOf('samekey'))),
    );
  });

  it('a lone 2 1 1: one CA key pinned; the fix is a 3 1 1 for the current key', async () => {
    const a = await audit('onlyca', { cert: chainOfA() });
    expect(a, 'DANE_TLSA_MATCH', 'pass', 'onlyca');
    const f = expect(a, 'DANE_ROLLOVER_NOT_READY', 'warn', 'onlyca');
    assert.match(f.message, /pins one key, a single CA key: a change of CA will stop inbound mail/);
    assert.equal(f.fix, formatTlsa(generateTlsa(chainA.leaf.x509, 3, 1, 1), tlsaOwner(mxOf('onlyca'))));
  });

  it('3 1 1 + 2 1 1 of the presented CA: ready', async () => {
    const a = await audit('good', { cert: chainOfA() }, { ipv6: true });
    expect(a, 'DANE_ROLLOVER_READY', 'pass', 'good');
  });

  it('3 1 1 of two keys: ready', async () => {
    const a = await audit('twokeys', { cert: chainOfA() });
    expect(a, 'DANE_TLSA_MATCH', 'pass', 'twokeys');
    expect(a, 'DANE_ROLLOVER_READY', 'pass', 'twokeys');
  });

  it('3 1 1 + 2 1 1 of a CA the server does not present: every matching record is tied to the current key', async () => {
    const a = await audit('absentca', { cert: chainOfA() });
    const f = expect(a, 'DANE_CURRENT_KEY_ONLY', 'warn', 'absentca');
    assert.match(f.message, /450 4\.7\.323 tlsa-invalid/);
    assert.equal(
      f.fix,
      formatTlsa(generateTlsa(chainA.intermediate.x509, 2, 1, 1), tlsaOwner(mxOf('absentca'))),
    );
    assert.ok(!codes(a).includes('DANE_ROLLOVER_READY'));
  });
});

// ---------------------------------------------------------------------------------------------------------
// transportFindings alone

const HOST = 'mx.example.test';

function success(
  address: string,
  chain: X509Certificate[],
  version = 'TLSv1.3',
  valid = true,
): SmtpProbeSuccess {
  return {
    ok: true,
    address,
    port: 25,
    mxHost: HOST,
    banner: 'mx ESMTP',
    ehlo: ['STARTTLS'],
    ehloTls: [],
    starttls: true,
    tls: { version, cipher: 'TLS_AES_128_GCM_SHA256', chain, ...(valid ? {} : { authorizationError: 'X' }) },
    pkix: { valid, nameMatches: valid, daysLeft: 100, ...(valid ? {} : { error: 'untrusted' }) },
  };
}

function failure(address: string, code: SmtpProbeFailure['code']): SmtpProbeFailure {
  return {
    ok: false,
    address,
    port: 25,
    mxHost: HOST,
    code,
    step: 'ehlo',
    message: `${address}:25 (${HOST}): it failed`,
  };
}

function hostData(
  tlsaStatus: TlsaStatus,
  records: TlsaRecord[],
  probes: SmtpProbeResult[],
  secure = true,
): HostTransport {
  return {
    mx: { host: HOST, preference: 10, addresses: probes.map((p) => p.address), addressesSecure: secure },
    tlsa: { owner: tlsaOwner(HOST), status: tlsaStatus, records },
    probes,
  };
}

const pureEnv = { dnssecValidating: true, now: new Date('2030-01-01T00:00:00Z') };

describe('transportFindings (pure)', () => {
  it('the TLS 1.0/1.1 probe: accepted beside 1.2+ warns; the only thing that works fails (RFC 8996)', () => {
    const modern = success('192.0.2.1', [chainA.leaf.x509], 'TLSv1.3');
    const old = success('192.0.2.1', [chainA.leaf.x509], 'TLSv1');
    const both = { hosts: [{ ...hostData('insecure', [], [modern]), oldTls: [old] }] };
    const f = one(transportFindings(both, undefined, pureEnv), 'TLS_OLD_VERSIONS_ACCEPTED');
    assert.equal(f.status, 'warn');
    assert.match(f.message, /also accepts TLSv1, which RFC 8996 deprecates/);
    const refused = {
      hosts: [
        { ...hostData('insecure', [], [modern]), oldTls: [failure('192.0.2.1', 'SMTP_TLS_HANDSHAKE')] },
      ],
    };
    assert.ok(
      !transportFindings(refused, undefined, pureEnv).some((x) => x.code === 'TLS_OLD_VERSIONS_ACCEPTED'),
    );
    const oldOnly = {
      hosts: [{ ...hostData('insecure', [], [failure('192.0.2.1', 'SMTP_TLS_HANDSHAKE')]), oldTls: [old] }],
    };
    assert.equal(one(transportFindings(oldOnly, undefined, pureEnv), 'TLS_ONLY_OLD_VERSIONS').status, 'fail');
    const broken = { hosts: [hostData('insecure', [], [failure('192.0.2.1', 'SMTP_TLS_HANDSHAKE')])] };
    assert.equal(one(transportFindings(broken, undefined, pureEnv), 'TLS_HANDSHAKE_FAILED').status, 'fail');
  });

  it('different verdicts per address stay apart; equal ones merge', () => {
    const probes = [
      success('192.0.2.1', [chainA.leaf.x509, chainA.intermediate.x509]),
      success('2001:db8::1', [leafB.x509, chainA.intermediate.x509]),
      success('192.0.2.2', [chainA.leaf.x509, chainA.intermediate.x509]),
    ];
    const findings = transportFindings(
      { hosts: [hostData('secure', [tlsa(chainA.leaf, 3, 1, 1)], probes)] },
      undefined,
      pureEnv,
    );
    assert.match(one(findings, 'DANE_TLSA_MATCH').message, /^192\.0\.2\.1, 192\.0\.2\.2: /);
    assert.match(one(findings, 'DANE_TLSA_MISMATCH').message, /^2001:db8::1: /);
    assert.match(one(findings, 'TLS_STARTTLS').message, /^192\.0\.2\.1, 2001:db8::1, 192\.0\.2\.2: /);
  });

  it('TLSA records behind insecure address records are ignored (RFC 7672 §2.2.2)', () => {
    const data = {
      hosts: [
        hostData('secure', [tlsa(chainA.leaf, 3, 1, 1)], [success('192.0.2.1', [chainA.leaf.x509])], false),
      ],
    };
    const f = one(transportFindings(data, undefined, pureEnv), 'DANE_ZONE_INSECURE');
    assert.match(f.message, /address records of mx\.example\.test/);
  });

  it('keeps its invariants on random data (property)', () => {
    const documented = documentedCodes('transport');
    const certs = [chainA.leaf, leafB, selfSigned, chainA.intermediate, other.intermediate];
    const record = fc
      .tuple(
        fc.constantFrom(...certs),
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 0, max: 2 }),
        fc.integer({ min: 0, max: 3 }),
      )
      .map(([cert, usage, selector, mtype]) => ({
        // Selector 2 and matching type 3 are unknown values that never match (RFC 7671 §4).
        ...generateTlsa(cert.x509, usage, Math.min(selector, 1), Math.min(mtype, 2)),
        selector,
        matchingType: mtype,
      }));
    const chains = [
      [chainA.leaf.x509, chainA.intermediate.x509],
      [selfSigned.x509],
      [expiredLeaf.x509, chainA.intermediate.x509],
      [leafB.x509],
    ];
    const failureCodes: SmtpProbeFailure['code'][] = [
      'SMTP_CONNECT',
      'SMTP_TIMEOUT',
      'SMTP_BANNER_REJECT',
      'SMTP_EHLO_REJECT',
      'SMTP_NO_STARTTLS',
      'SMTP_STARTTLS_REFUSED',
      'SMTP_TLS_HANDSHAKE',
      'SMTP_PROTOCOL',
    ];
    const probe = fc.oneof(
      fc
        .tuple(fc.constantFrom(...chains), fc.constantFrom('TLSv1', 'TLSv1.2', 'TLSv1.3'), fc.boolean())
        .map(([chain, version, valid]) => success('192.0.2.1', chain, version, valid) as SmtpProbeResult),
      fc.constantFrom(...failureCodes).map((code) => failure('192.0.2.2', code) as SmtpProbeResult),
    );
    const host = fc
      .tuple(
        fc.constantFrom<TlsaStatus>('secure', 'insecure', 'bogus', 'failed'),
        fc.array(record, { maxLength: 4 }),
        fc.array(probe, { maxLength: 3 }),
        fc.boolean(),
      )
      .map(([status, records, probes, secure]) => hostData(status, records, probes, secure));
    fc.assert(
      fc.property(
        fc.array(host, { minLength: 1, maxLength: 3 }),
        fc.constantFrom<StsMode | undefined>(undefined, 'none', 'testing', 'enforce'),
        fc.boolean(),
        (hosts, mode, validating) => {
          const sts = mode === undefined ? undefined : policy(mode, HOST);
          const env = { ...pureEnv, dnssecValidating: validating };
          const findings = transportFindings({ hosts }, sts, env);
          // Hosts are judged one by one: together, the findings are those of each host in turn.
          const single = hosts.map((h) => transportFindings({ hosts: [h] }, sts, env));
          assert.deepEqual(findings, single.flat());
          for (const f of findings) {
            assert.ok(f.section === 'tls' || f.section === 'dane', f.section);
            assert.ok(SECTIONS.includes(f.section) && STATUSES.includes(f.status));
            assert.equal(f.host, HOST);
            assert.ok(documented.get(f.code)?.includes(f.status), `${f.code} ${f.status} is documented`);
            if (f.status !== 'pass' && f.status !== 'skip') {
              assert.ok(f.fix !== undefined || NO_FIX.has(f.code), `${f.code} has a fix`);
            }
          }
          hosts.forEach((h, i) => {
            const dane = single[i]!.filter((f) => f.section === 'dane');
            const verdicts = dane.map((f) => `${f.code} ${f.status}`);
            // Never pass or fail without a validating resolver, nor on an unsigned zone.
            if (!validating) assert.deepEqual(verdicts, ['DANE_NOT_VALIDATING warn']);
            else if (h.tlsa.status === 'insecure' || !h.mx.addressesSecure) {
              assert.deepEqual(verdicts, ['DANE_ZONE_INSECURE skip']);
            }
            // Every address probed gets a tls verdict.
            const tls = single[i]!.filter((f) => f.section === 'tls');
            if (h.probes.length === 0)
              assert.deepEqual(
                tls.map((f) => f.code),
                ['TLS_NOT_PROBED'],
              );
            for (const p of h.probes) assert.ok(tls.some((f) => f.message.includes(`${p.address}`)));
          });
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** Findings that state a failure with no record or setting to publish. */
const NO_FIX: ReadonlySet<string> = new Set([
  'TLS_TIMEOUT',
  'TLS_BANNER_REJECTED',
  'TLS_EHLO_REJECTED',
  'TLS_SMTP_ERROR',
]);

describe('mapLimit', () => {
  it('keeps the order and never runs more than the limit at once', async () => {
    let running = 0;
    let peak = 0;
    const results = await mapLimit([5, 1, 4, 2, 3, 0, 6], 3, async (n) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setImmediate(resolve));
      for (let i = 0; i < n; i++) await Promise.resolve();
      running--;
      return n * 10;
    });
    assert.deepEqual(results, [50, 10, 40, 20, 30, 0, 60]);
    assert.equal(peak, 3);
    assert.deepEqual(await mapLimit([], 3, async () => 1), []);
  });
});

/** The codes of a docs/findings/*.md table and their statuses ("warn / fail" lists both). */
function documentedCodes(file: string): Map<string, string[]> {
  const text = readFileSync(new URL(`../../docs/findings/${file}.md`, import.meta.url), 'utf8');
  const found = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const row = /^\|\s*`([A-Z0-9_]+)`\s*\|\s*([a-z /]+?)\s*\|/.exec(line);
    if (row)
      found.set(
        row[1]!,
        row[2]!.split('/').map((s) => s.trim()),
      );
  }
  return found;
}

describe('docs/findings/transport.md', () => {
  it('documents every tls and dane code', () => {
    const documented = documentedCodes('transport');
    const source = readFileSync(new URL('../../src/check/transport.ts', import.meta.url), 'utf8');
    const emitted = new Set([...source.matchAll(/'((?:TLS|DANE)_[A-Z_]+)'/g)].map((m) => m[1]!));
    assert.deepEqual([...documented.keys()].sort(), [...emitted].sort());
  });
});
