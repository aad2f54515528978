// checkTlsRpt, checkSpf, checkDmarc and checkDkim against the lab DNS server (test/lab/dns-server.ts) on
// loopback, through a DnsClient pointed at it (never the system resolver): one scenario per finding code
// (docs/findings/records.md), the recursive SPF limits of RFC 7208 §4.6.4, bounds against hostile zones,
// and fuzzing through a fake resolver (random TXT contents, random include graphs): the checks only
// ever return findings, never throw, never hang.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { checkDkim } from '../../src/check/dkim.js';
import { checkDmarc, organizationalDomain } from '../../src/check/dmarc.js';
import { checkSpf, SPF_MAX_DEPTH, SPF_MAX_QUERIES, spfRecords } from '../../src/check/spf.js';
import { checkMxTlsRpt, checkTlsRpt, mailtoDomain, sameOrBelow } from '../../src/check/tlsrpt.js';
import { type CheckEnvironment, type Finding, SECTIONS, STATUSES } from '../../src/check/types.js';
import { splitTxt } from '../../src/common/txt.js';
import { DnsClient } from '../../src/dns/client.js';
import {
  type DnsOutcome,
  type DnsRecordType,
  type DnsResult,
  type Resolver,
  ResolverBase,
} from '../../src/dns/resolver.js';
import { type LabDnsServer, type LabRecord, startDnsServer } from '../lab/dns-server.js';

const NOW = new Date('2026-03-01T12:00:00Z');

function txt(name: string, ...values: string[]): LabRecord[] {
  return values.map((v) => ({ name, type: 'TXT', data: splitTxt(v) }));
}
function a(name: string, address = '192.0.2.10'): LabRecord {
  return { name, type: 'A', data: address };
}
function mx(name: string, exchange: string, preference = 10): LabRecord {
  return { name, type: 'MX', data: { preference, exchange } };
}

const rsa2048 = spki(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey);
const rsa1024 = spki(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey);
function spki(key: { export(o: { type: 'spki'; format: 'der' }): Buffer }): string {
  return key.export({ type: 'spki', format: 'der' }).toString('base64');
}

/** "a a a ..." n times. */
function terms(term: string, n: number): string {
  return Array.from({ length: n }, () => term).join(' ');
}

const RECORDS: LabRecord[] = [
  // DMARC: the organizational-domain fallback (RFC 7489 §6.6.3) and the DMARCbis tree walk
  ...txt('_dmarc.weakparent.test', 'v=DMARC1; p=reject; sp=none; rua=mailto:d@weakparent.test'),
  ...txt('_dmarc.strongparent.test', 'v=DMARC1; p=reject; rua=mailto:d@strongparent.test'),
  ...txt('_dmarc.mid.strongparent.test', 'v=DMARC1; p=quarantine'),
  // TLS-RPT of MX hosts (DANE reports per host)
  ...txt('_smtp._tls.mx1.hosts.test', 'v=TLSRPTv1; rua=mailto:dane@hosts.test'),
  ...txt('_smtp._tls.mx2.hosts.test', 'v=TLSRPTv1; rua=ftp://nope'),
  // --- TLS-RPT ---
  ...txt('_smtp._tls.ok.test', 'v=TLSRPTv1; rua=mailto:tlsrpt@ok.test,https://reports.ok.test/tlsrpt'),
  ...txt('_smtp._tls.two.test', 'v=TLSRPTv1; rua=mailto:a@two.test', 'v=TLSRPTv1; rua=mailto:b@two.test'),
  ...txt('_smtp._tls.badrua.test', 'v=TLSRPTv1; rua=noscheme'),
  ...txt('_smtp._tls.bare.test', 'v=TLSRPTv1'),
  ...txt('_smtp._tls.external.test', 'v=TLSRPTv1; rua=mailto:reports@provider.example'),
  ...txt('_smtp._tls.sub.test', 'v=TLSRPTv1; rua=mailto:tls@reports.sub.test'),
  ...txt('_smtp._tls.wsp.test', 'v=TLSRPTv1 ; rua=mailto:tls@wsp.test'),
  ...txt('_smtp._tls.spfonly.test', 'v=spf1 -all'),
  // --- SPF ---
  a('ok.test'),
  mx('ok.test', 'mx.ok.test'),
  ...txt('ok.test', 'v=spf1 mx include:_spf.provider.test -all', 'google-site-verification=xyz'),
  ...txt('_spf.provider.test', 'v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all'),
  ...txt('nospf.test', 'some-verification=1'),
  ...txt('twospf.test', 'v=spf1 -all', 'v=spf1 mx -all'),
  ...txt('badspf.test', 'v=spf1 ip4:10.0.0.256 -all'),
  ...txt('passall.test', 'v=spf1 ip4:192.0.2.1 +all'),
  ...txt('neutral.test', 'v=spf1 ip4:192.0.2.1 ?all'),
  ...txt('noall.test', 'v=spf1 ip4:192.0.2.1'),
  a('ptr.test'),
  ...txt('ptr.test', 'v=spf1 ptr -all'),
  ...txt('after.test', 'v=spf1 -all ip4:192.0.2.1'),
  ...txt('unknownmod.test', 'v=spf1 foo=bar -all'),
  ...txt('toplabel.test', 'v=spf1 a:museum -all'),
  // 11 lookups counted through includes: 2 here + 5 in l1 + 2 in l2 + 2 in l3
  ...txt('deep.test', 'v=spf1 include:l1.deep.test include:l2.deep.test -all'),
  a('l1.deep.test'),
  ...txt('l1.deep.test', `v=spf1 ${terms('a', 5)} -all`),
  mx('l2.deep.test', 'mx.deep.test'),
  ...txt('l2.deep.test', 'v=spf1 include:l3.deep.test mx -all'),
  a('l3.deep.test'),
  ...txt('l3.deep.test', 'v=spf1 a a -all'),
  // exactly 10 through a redirect: 1 (redirect) + 9
  ...txt('ten.test', 'v=spf1 redirect=_spf.ten.test'),
  a('_spf.ten.test'),
  ...txt('_spf.ten.test', `v=spf1 ${terms('a', 9)} -all`),
  // void lookups (RFC 7208 §4.6.4): three a: names that do not exist; two is still allowed
  ...txt('void.test', 'v=spf1 a:gone1.void.test a:gone2.void.test a:gone3.void.test -all'),
  ...txt('void2.test', 'v=spf1 a:gone1.void2.test mx:gone2.void2.test -all'),
  // include / redirect targets without SPF
  ...txt('inclmissing.test', 'v=spf1 include:nothing.inclmissing.test -all'),
  ...txt('inclnotspf.test', 'v=spf1 include:other.inclnotspf.test -all'),
  ...txt('other.inclnotspf.test', 'hello=world'),
  ...txt('redirmissing.test', 'v=spf1 redirect=nothing.redirmissing.test'),
  ...txt('inclinvalid.test', 'v=spf1 include:bad.inclinvalid.test -all'),
  ...txt('bad.inclinvalid.test', 'v=spf1 ip4:1.2.3 -all'),
  ...txt('incltwo.test', 'v=spf1 include:two.incltwo.test -all'),
  ...txt('two.incltwo.test', 'v=spf1 -all', 'v=spf1 ~all'),
  ...txt('inclpassall.test', 'v=spf1 include:open.inclpassall.test -all'),
  ...txt('open.inclpassall.test', 'v=spf1 +all'),
  // loops
  ...txt('loop.test', 'v=spf1 include:b.loop.test -all'),
  ...txt('b.loop.test', 'v=spf1 include:loop.test -all'),
  ...txt('selfredirect.test', 'v=spf1 ip4:192.0.2.1 redirect=selfredirect.test'),
  // a diamond is no loop: top -> x, y; x -> z; y -> z
  ...txt('diamond.test', 'v=spf1 include:x.diamond.test include:y.diamond.test -all'),
  ...txt('x.diamond.test', 'v=spf1 include:z.diamond.test -all'),
  ...txt('y.diamond.test', 'v=spf1 include:z.diamond.test -all'),
  ...txt('z.diamond.test', 'v=spf1 ip4:192.0.2.1 -all'),
  // RFC 7208 §4.6.4: at most 10 MX names per mx mechanism
  ...txt('manymx.test', 'v=spf1 mx -all'),
  ...Array.from({ length: 11 }, (_, i) => mx('manymx.test', `mx${i}.manymx.test`, i)),
  ...txt('macros.test', 'v=spf1 exists:%{i}.rbl.macros.test include:%{d}.spf.macros.test -all'),
  // hostile: an include chain deeper than any receiver follows, and a wide fan-out
  ...Array.from({ length: 30 }, (_, i) =>
    txt(`c${i}.chain.test`, `v=spf1 include:c${i + 1}.chain.test -all`),
  ).flat(),
  ...txt('chain.test', 'v=spf1 include:c0.chain.test -all'),
  ...txt(
    'wide.test',
    `v=spf1 ${Array.from({ length: 9 }, (_, i) => `include:w${i}.wide.test`).join(' ')} -all`,
  ),
  ...Array.from({ length: 9 }, (_, i) =>
    txt(
      `w${i}.wide.test`,
      `v=spf1 ${Array.from({ length: 9 }, (_, j) => `a:n${j}.w${i}.wide.test`).join(' ')} -all`,
    ),
  ).flat(),
  ...txt('incldns.test', 'v=spf1 include:_spf.broken.test -all'),
  ...txt('adns.test', 'v=spf1 a:host.broken.test -all'),
  // --- DMARC ---
  ...txt('_dmarc.ok.test', 'v=DMARC1; p=reject; rua=mailto:dmarc@ok.test'),
  ...txt('_dmarc.quarantine.test', 'v=DMARC1; p=quarantine; rua=mailto:dmarc@quarantine.test'),
  ...txt('_dmarc.pnone.test', 'v=DMARC1; p=none; rua=mailto:dmarc@pnone.test'),
  ...txt('_dmarc.nop.test', 'v=DMARC1; rua=mailto:dmarc@nop.test'),
  ...txt('_dmarc.pct.test', 'v=DMARC1; p=reject; pct=50; rua=mailto:dmarc@pct.test'),
  ...txt('_dmarc.norua.test', 'v=DMARC1; p=reject'),
  ...txt('_dmarc.weaksp.test', 'v=DMARC1; p=reject; sp=none; rua=mailto:dmarc@weaksp.test'),
  ...txt('_dmarc.two.test', 'v=DMARC1; p=none', 'v=DMARC1; p=reject'),
  ...txt('_dmarc.order.test', 'v=DMARC1; sp=none; p=reject'),
  ...txt('_dmarc.version.test', 'v=DMARC12; p=reject'),
  ...txt('_dmarc.https.test', 'v=DMARC1; p=reject; rua=https://reports.https.test/dmarc'),
  ...txt('_dmarc.np.test', 'v=DMARC1; p=reject; np=reject; rua=mailto:dmarc@np.test'),
  ...txt(
    '_dmarc.ext.test',
    'v=DMARC1; p=reject; rua=mailto:r@unauthorized.example,mailto:r@authorized.example',
  ),
  ...txt('ext.test._report._dmarc.authorized.example', 'v=DMARC1'),
  // --- DKIM ---
  ...txt('s1._domainkey.ok.test', `v=DKIM1; k=rsa; p=${rsa2048}`),
  ...txt('weak._domainkey.ok.test', `v=DKIM1; k=rsa; p=${rsa1024}`),
  ...txt('bad._domainkey.ok.test', 'v=DKIM1; k=rsa; p=not*base64'),
  ...txt('revoked._domainkey.ok.test', 'v=DKIM1; k=rsa; p='),
  ...txt('testing._domainkey.ok.test', `v=DKIM1; t=y; p=${rsa2048}`),
  ...txt('two._domainkey.ok.test', `v=DKIM1; p=${rsa2048}`, `v=DKIM1; p=${rsa2048}`),
  ...txt('notes._domainkey.ok.test', `v=DKIM1; p=${rsa2048}; x=1`),
  ...txt('sha1._domainkey.ok.test', `v=DKIM1; h=sha1:sha256; p=${rsa2048}`),
  {
    name: 'selector1._domainkey.ok.test',
    type: 'CNAME',
    data: 'selector1-ok-test._domainkey.tenant.provider.test',
  },
  ...txt('selector1-ok-test._domainkey.tenant.provider.test', `v=DKIM1; k=rsa; p=${rsa2048}`),
];

let dns: LabDnsServer;
let resolver: DnsClient;

before(async () => {
  // The external domains of the DMARC scenario live in their own zone, as they would.
  const external = RECORDS.filter((r) => r.name.endsWith('.example'));
  dns = await startDnsServer([
    { origin: 'test', records: RECORDS.filter((r) => !r.name.endsWith('.example')) },
    { origin: 'example', records: external },
    {
      origin: 'broken.test',
      servfail: true,
      records: [
        ...txt('broken.test', 'v=spf1 -all'),
        ...txt('_spf.broken.test', 'v=spf1 -all'),
        a('host.broken.test'),
      ],
    },
  ]);
  resolver = new DnsClient({ servers: [{ host: dns.host, port: dns.port }], timeoutMs: 500, tries: 2 });
});

after(async () => {
  await dns?.stop();
});

function env(overrides: Partial<CheckEnvironment> = {}): CheckEnvironment {
  return {
    resolver,
    dnssecValidating: false,
    ca: [],
    allowPrivate: true,
    timeoutMs: 5000,
    smtpPort: 25,
    httpsPort: 443,
    dkimSelectors: [],
    now: NOW,
    ...overrides,
  };
}

const seenCodes = new Set<string>();

function record(findings: Finding[], section: string): Finding[] {
  for (const f of findings) {
    seenCodes.add(f.code);
    assert.equal(f.section, section);
    assert.ok(f.code.startsWith(`${section.toUpperCase()}_`), f.code);
  }
  return findings;
}

function only(findings: Finding[], code: string): Finding {
  const matching = findings.filter((f) => f.code === code);
  assert.equal(matching.length, 1, `expected one ${code}, got: ${JSON.stringify(findings, null, 1)}`);
  return matching[0]!;
}

function codes(findings: Finding[]): string[] {
  return findings.map((f) => f.code).sort();
}

const tlsrpt = async (domain: string) => record(await checkTlsRpt(domain, env()), 'tlsrpt');
const spf = async (domain: string) => record(await checkSpf(domain, env()), 'spf');
const dmarc = async (domain: string) => record(await checkDmarc(domain, env()), 'dmarc');
const dkim = async (domain: string, selectors: string[]) =>
  record(await checkDkim(domain, env({ dkimSelectors: selectors })), 'dkim');

describe('checkMxTlsRpt', () => {
  it("shows each MX host's record, an invalid one as a warning, and the hosts without one with their records", async () => {
    const hosts = ['mx1', 'mx2', 'mx3'].map((h, i) => ({
      host: `${h}.hosts.test`,
      preference: 10 * i,
      addresses: [],
      addressesSecure: false,
    }));
    const findings = record(await checkMxTlsRpt('hosts.test', hosts, env()), 'tlsrpt');
    assert.deepEqual(
      findings.map((f) => [f.code, f.status, f.host ?? null]),
      [
        ['TLSRPT_MX_HOST', 'info', 'mx1.hosts.test'],
        ['TLSRPT_MX_HOST_INVALID', 'warn', 'mx2.hosts.test'],
        ['TLSRPT_MX_HOST_NONE', 'info', null],
      ],
    );
    assert.match(findings[0]!.message, /report failures of mx1\.hosts\.test to mailto:dane@hosts\.test/);
    assert.match(findings[2]!.message, /mx3\.hosts\.test/);
    assert.equal(
      findings[2]!.fix,
      '_smtp._tls.mx3.hosts.test. IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@hosts.test"',
    );
  });
});

describe('checkTlsRpt', () => {
  it('passes a valid record and lists where reports go', async () => {
    const findings = await tlsrpt('ok.test');
    assert.deepEqual(codes(findings), ['TLSRPT_OK']);
    const f = only(findings, 'TLSRPT_OK');
    assert.equal(f.status, 'pass');
    assert.match(f.message, /mailto:tlsrpt@ok\.test, https:\/\/reports\.ok\.test\/tlsrpt/);
  });

  it('no record warns, and the fix is a record with rua=mailto:tlsrpt@<domain>', async () => {
    for (const domain of ['none.test', 'spfonly.test']) {
      const f = only(await tlsrpt(domain), 'TLSRPT_NONE');
      assert.equal(f.status, 'warn');
      assert.equal(f.fix, `_smtp._tls.${domain}. IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@${domain}"`);
    }
  });

  it('two records fail, and the fix merges their report URIs', async () => {
    const f = only(await tlsrpt('two.test'), 'TLSRPT_MULTIPLE');
    assert.equal(f.status, 'fail');
    assert.equal(f.fix, '_smtp._tls.two.test. IN TXT "v=TLSRPTv1; rua=mailto:a@two.test,mailto:b@two.test"');
  });

  it("a syntax error fails with the parser's message, also for a record senders skip", async () => {
    const f = only(await tlsrpt('badrua.test'), 'TLSRPT_SYNTAX');
    assert.equal(f.status, 'fail');
    assert.match(f.message, /"noscheme" has no scheme/);
    const bare = only(await tlsrpt('bare.test'), 'TLSRPT_SYNTAX');
    assert.match(bare.message, /no rua field/);
  });

  it('a mailto outside the domain is info (no external verification in RFC 8460); a subdomain is not', async () => {
    const f = only(await tlsrpt('external.test'), 'TLSRPT_RUA_EXTERNAL');
    assert.equal(f.status, 'info');
    assert.match(f.message, /provider\.example/);
    assert.equal(only(await tlsrpt('external.test'), 'TLSRPT_OK').status, 'pass');
    assert.ok(!(await tlsrpt('sub.test')).some((x) => x.code === 'TLSRPT_RUA_EXTERNAL'));
  });

  it("the parser's notes are info", async () => {
    const f = only(await tlsrpt('wsp.test'), 'TLSRPT_NOTE');
    assert.equal(f.status, 'info');
    assert.match(f.message, /whitespace between/);
  });

  it('a DNS failure fails', async () => {
    const f = only(await tlsrpt('broken.test'), 'TLSRPT_DNS');
    assert.equal(f.status, 'fail');
    assert.match(f.message, /SERVFAIL/);
  });

  it('mailtoDomain and sameOrBelow', () => {
    assert.equal(mailtoDomain('mailto:a@Example.COM'), 'example.com');
    assert.equal(mailtoDomain('mailto:a%40b@x.test?subject=1'), 'x.test');
    assert.equal(mailtoDomain('https://x.test/'), undefined);
    assert.equal(mailtoDomain('mailto:%zz'), undefined);
    assert.ok(sameOrBelow('a.example.com', 'example.com'));
    assert.ok(sameOrBelow('example.com.', 'EXAMPLE.com'));
    assert.ok(!sameOrBelow('badexample.com', 'example.com'));
    assert.ok(!sameOrBelow('example.com', 'a.example.com'));
  });
});

describe('checkSpf: the record', () => {
  it('passes a good record, with the lookup count counted through include', async () => {
    const findings = await spf('ok.test');
    assert.deepEqual(codes(findings), ['SPF_LOOKUPS', 'SPF_RECORD']);
    const f = only(findings, 'SPF_LOOKUPS');
    assert.equal(f.status, 'pass');
    assert.match(f.message, /^2 of 10 DNS lookups and 0 of 2 void lookups/);
    assert.match(f.message, /ok\.test 2 \(mx, include:_spf\.provider\.test\)/);
  });

  it('no SPF record warns, with a record to publish', async () => {
    for (const domain of ['nospf.test', 'nothing-here.test']) {
      const f = only(await spf(domain), 'SPF_NONE');
      assert.equal(f.status, 'warn');
      assert.match(f.fix ?? '', new RegExp(`^${domain.replace(/\./g, '\\.')}\\. IN TXT "v=spf1 mx -all"`));
    }
  });

  it('several SPF records fail (RFC 7208 §4.5 permerror)', async () => {
    const f = only(await spf('twospf.test'), 'SPF_MULTIPLE');
    assert.equal(f.status, 'fail');
    assert.match(f.message, /2 SPF records/);
  });

  it("a syntax error fails with the parser's message", async () => {
    const findings = await spf('badspf.test');
    assert.deepEqual(codes(findings), ['SPF_SYNTAX']);
    assert.match(only(findings, 'SPF_SYNTAX').message, /"10\.0\.0\.256" is not an IPv4 address/);
  });

  it('+all fails, ?all and a missing all warn; the fix is the record ending in -all', async () => {
    const pass = only(await spf('passall.test'), 'SPF_PASS_ALL');
    assert.equal(pass.status, 'fail');
    assert.equal(pass.fix, 'passall.test. IN TXT "v=spf1 ip4:192.0.2.1 -all"');
    const neutral = only(await spf('neutral.test'), 'SPF_NEUTRAL_ALL');
    assert.equal(neutral.status, 'warn');
    assert.equal(neutral.fix, 'neutral.test. IN TXT "v=spf1 ip4:192.0.2.1 -all"');
    const none = only(await spf('noall.test'), 'SPF_NO_ALL');
    assert.equal(none.status, 'warn');
    assert.equal(none.fix, 'noall.test. IN TXT "v=spf1 ip4:192.0.2.1 -all"');
  });

  it('ptr warns and is counted; other parser warnings warn, notes are info', async () => {
    const ptr = await spf('ptr.test');
    assert.equal(only(ptr, 'SPF_PTR').status, 'warn');
    assert.match(only(ptr, 'SPF_LOOKUPS').message, /^1 of 10/);
    assert.equal(only(await spf('after.test'), 'SPF_WARNING').status, 'warn');
    assert.equal(only(await spf('unknownmod.test'), 'SPF_NOTE').status, 'info');
  });

  it('a single-label domain fails: strict receivers return permerror (RFC 7208 §7.1)', async () => {
    const f = only(await spf('toplabel.test'), 'SPF_DOMAIN_NOT_FQDN');
    assert.equal(f.status, 'fail');
    assert.match(f.message, /"museum" is a single label/);
  });

  it('a DNS failure on the apex fails (temperror)', async () => {
    const f = only(await spf('broken.test'), 'SPF_DNS');
    assert.equal(f.status, 'fail');
    assert.match(f.message, /SERVFAIL for TXT broken\.test/);
  });
});

describe('checkSpf: RFC 7208 §4.6.4 limits, counted recursively', () => {
  it('11 DNS-querying terms through nested includes fail, listing each record', async () => {
    const findings = await spf('deep.test');
    const f = only(findings, 'SPF_TOO_MANY_LOOKUPS');
    assert.equal(f.status, 'fail');
    assert.match(f.message, /takes 11 DNS-querying terms/);
    assert.match(
      f.message,
      /deep\.test 2 \(include:l1\.deep\.test, include:l2\.deep\.test\); l1\.deep\.test 5 \(a, a, a, a, a\); l2\.deep\.test 2 \(include:l3\.deep\.test, mx\); l3\.deep\.test 2 \(a, a\)/,
    );
    assert.ok(!findings.some((x) => x.code === 'SPF_LOOKUPS'));
  });

  it('exactly 10 through a redirect passes', async () => {
    const f = only(await spf('ten.test'), 'SPF_LOOKUPS');
    assert.equal(f.status, 'pass');
    assert.match(f.message, /^10 of 10/);
  });

  it('three void lookups fail; two pass', async () => {
    const f = only(await spf('void.test'), 'SPF_VOID_LOOKUPS');
    assert.equal(f.status, 'fail');
    assert.match(f.message, /^3 lookups find nothing.*a:gone1\.void\.test \(in void\.test\)/);
    assert.match(only(await spf('void2.test'), 'SPF_LOOKUPS').message, /2 of 2 void lookups/);
  });

  it('include and redirect targets without an SPF record fail (permerror)', async () => {
    const missing = only(await spf('inclmissing.test'), 'SPF_TARGET_MISSING');
    assert.equal(missing.status, 'fail');
    assert.match(missing.message, /nothing\.inclmissing\.test has no SPF record \(NXDOMAIN\)/);
    assert.match(missing.fix ?? '', /remove include:nothing\.inclmissing\.test/);
    const notSpf = only(await spf('inclnotspf.test'), 'SPF_TARGET_MISSING');
    assert.match(notSpf.message, /no TXT record beginning with "v=spf1"/);
    const redirect = only(await spf('redirmissing.test'), 'SPF_TARGET_MISSING');
    assert.match(redirect.message, /^redirect=nothing\.redirmissing\.test/);
  });

  it('an invalid or duplicated target record fails; a target with +all fails', async () => {
    const invalid = only(await spf('inclinvalid.test'), 'SPF_TARGET_INVALID');
    assert.equal(invalid.status, 'fail');
    assert.match(invalid.message, /"1\.2\.3" is not an IPv4 address/);
    assert.match(only(await spf('incltwo.test'), 'SPF_TARGET_INVALID').message, /2 SPF records/);
    const open = only(await spf('inclpassall.test'), 'SPF_PASS_ALL');
    assert.equal(open.status, 'fail');
    assert.match(open.message, /open\.inclpassall\.test has "\+all"/);
  });

  it('a DNS failure of a target fails (temperror)', async () => {
    const incl = only(await spf('incldns.test'), 'SPF_TARGET_DNS');
    assert.equal(incl.status, 'fail');
    assert.match(incl.message, /SERVFAIL for TXT _spf\.broken\.test/);
    assert.match(
      only(await spf('adns.test'), 'SPF_TARGET_DNS').message,
      /SERVFAIL for (A|AAAA) host\.broken\.test/,
    );
  });

  it('detects include and redirect loops; a diamond is not a loop', async () => {
    const loop = only(await spf('loop.test'), 'SPF_LOOP');
    assert.equal(loop.status, 'fail');
    assert.match(loop.message, /loop\.test -> b\.loop\.test -> loop\.test/);
    assert.ok(!(await spf('loop.test')).some((f) => f.code === 'SPF_LOOKUPS'));
    assert.match(
      only(await spf('selfredirect.test'), 'SPF_LOOP').message,
      /selfredirect\.test -> selfredirect\.test/,
    );
    const diamond = await spf('diamond.test');
    assert.ok(!diamond.some((f) => f.code === 'SPF_LOOP'));
    assert.match(only(diamond, 'SPF_LOOKUPS').message, /^4 of 10/);
  });

  it('more than 10 MX names for one mx mechanism fail', async () => {
    const f = only(await spf('manymx.test'), 'SPF_MX_TOO_MANY');
    assert.equal(f.status, 'fail');
    assert.match(f.message, /11 MX records/);
  });

  it('terms with macros are counted, not followed, and noted', async () => {
    const findings = await spf('macros.test');
    assert.match(only(findings, 'SPF_MACROS').message, /exists:%\{i\}\.rbl\.macros\.test/);
    assert.match(only(findings, 'SPF_LOOKUPS').message, /^2 of 10/);
  });

  it('a hostile include chain stops at our bounds and fails with "at least"', async () => {
    const before = dns.queries.length;
    const f = only(await spf('chain.test'), 'SPF_TOO_MANY_LOOKUPS');
    assert.match(f.message, /takes at least \d+ DNS-querying terms/);
    const asked = dns.queries.length - before;
    assert.ok(asked <= SPF_MAX_DEPTH + 2, `${asked} queries`);
  });

  it('a wide fan-out stops at our query bound', async () => {
    const before = dns.queries.length;
    const f = only(await spf('wide.test'), 'SPF_TOO_MANY_LOOKUPS');
    assert.match(f.message, /at least/);
    // UDP retries could add a few; the bound is on queries we decide to send
    assert.ok(dns.queries.length - before <= SPF_MAX_QUERIES + 5, `${dns.queries.length - before} queries`);
  });

  it('spfRecords selects by "v=spf1" followed by a space or the end (RFC 7208 §4.5)', () => {
    assert.deepEqual(spfRecords(['v=spf1', 'V=SPF1 -all', 'v=spf10', ' v=spf1', 'v=spf1foo', 'spf2.0/pra']), [
      'v=spf1',
      'V=SPF1 -all',
    ]);
  });
});

describe('checkDmarc', () => {
  it('p=reject passes; p=quarantine passes and mentions reject', async () => {
    const ok = await dmarc('ok.test');
    assert.deepEqual(codes(ok), ['DMARC_POLICY', 'DMARC_RECORD']);
    assert.ok(ok.every((f) => f.status === 'pass'));
    assert.match(only(await dmarc('quarantine.test'), 'DMARC_POLICY').message, /p=reject is stronger/);
  });

  it('no record warns; the fix is a starter record with rua', async () => {
    const f = only(await dmarc('none.test'), 'DMARC_NONE');
    assert.equal(f.status, 'warn');
    assert.ok(f.fix?.startsWith('_dmarc.none.test. IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@none.test"'));
  });

  it('several records fail', async () => {
    assert.equal(only(await dmarc('two.test'), 'DMARC_MULTIPLE').status, 'fail');
  });

  it("a subdomain without a record: the organizational domain's sp applies (RFC 7489 §6.6.3)", async () => {
    const weak = only(await dmarc('mail.weakparent.test'), 'DMARC_ORG_FALLBACK');
    assert.equal(weak.status, 'warn');
    assert.match(weak.message, /organizational domain weakparent\.test .*sp=none/);
    assert.match(weak.fix ?? '', /_dmarc\.mail\.weakparent\.test\. IN TXT "v=DMARC1; p=reject/);
    const strong = await dmarc('a.mid.strongparent.test');
    assert.deepEqual(codes(strong), ['DMARC_ORG_FALLBACK', 'DMARC_TREE_WALK']);
    assert.equal(only(strong, 'DMARC_ORG_FALLBACK').status, 'pass');
    assert.match(only(strong, 'DMARC_TREE_WALK').message, /_dmarc\.mid\.strongparent\.test/);
  });

  it('neither the domain nor its organizational domain has a record: DMARC_NONE says so', async () => {
    const f = only(await dmarc('sub.none.test'), 'DMARC_NONE');
    assert.match(f.message, /nor does its organizational domain/);
  });

  it('organizationalDomain follows the Public Suffix List', () => {
    assert.equal(organizationalDomain('a.b.example.co.uk'), 'example.co.uk');
    assert.equal(organizationalDomain('mail.example.com'), 'example.com');
    assert.equal(organizationalDomain('example.com'), 'example.com');
    assert.equal(organizationalDomain('user.github.io'), 'user.github.io');
  });

  it("a syntax error fails and the parser's notes are info", async () => {
    const findings = await dmarc('order.test');
    const f = only(findings, 'DMARC_SYNTAX');
    assert.equal(f.status, 'fail');
    assert.match(f.message, /p must come right after v=DMARC1/);
    assert.match(only(findings, 'DMARC_NOTE').message, /RFC 9989 accepts tags in any order/);
    assert.match(only(await dmarc('version.test'), 'DMARC_SYNTAX').message, /exactly "DMARC1"/);
  });

  it('p=none (or no p) warns "monitoring only"; the fix moves to quarantine', async () => {
    const none = only(await dmarc('pnone.test'), 'DMARC_POLICY_NONE');
    assert.equal(none.status, 'warn');
    assert.match(none.message, /monitoring only/);
    assert.equal(none.fix, '_dmarc.pnone.test. IN TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@pnone.test"');
    const nop = only(await dmarc('nop.test'), 'DMARC_NO_POLICY');
    assert.equal(nop.status, 'warn');
    assert.ok(!(await dmarc('pnone.test')).some((f) => f.code === 'DMARC_POLICY'));
  });

  it('pct < 100, no rua and a weaker sp warn, each with the corrected record', async () => {
    const pct = only(await dmarc('pct.test'), 'DMARC_PCT');
    assert.equal(pct.status, 'warn');
    assert.equal(pct.fix, '_dmarc.pct.test. IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@pct.test"');
    const norua = only(await dmarc('norua.test'), 'DMARC_NO_RUA');
    assert.equal(norua.status, 'warn');
    assert.equal(norua.fix, '_dmarc.norua.test. IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@norua.test"');
    const sp = only(await dmarc('weaksp.test'), 'DMARC_WEAK_SUBDOMAIN_POLICY');
    assert.equal(sp.fix, '_dmarc.weaksp.test. IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@weaksp.test"');
  });

  it('other parser warnings warn and notes are info', async () => {
    assert.match(only(await dmarc('https.test'), 'DMARC_WARNING').message, /only have to support mailto/);
    assert.equal(only(await dmarc('np.test'), 'DMARC_NOTE').status, 'info');
  });

  it('an external rua needs the authorization record of RFC 7489 §7.1', async () => {
    const findings = await dmarc('ext.test');
    const missing = only(findings, 'DMARC_RUA_UNAUTHORIZED');
    assert.equal(missing.status, 'warn');
    assert.match(missing.message, /unauthorized\.example/);
    assert.equal(
      missing.fix,
      'unauthorized.example must publish:\next.test._report._dmarc.unauthorized.example. IN TXT "v=DMARC1"',
    );
    assert.match(only(findings, 'DMARC_RUA_AUTHORIZED').message, /authorized\.example accepts/);
  });

  it('a DNS failure fails', async () => {
    assert.equal(only(await dmarc('broken.test'), 'DMARC_DNS').status, 'fail');
  });
});

describe('checkDkim', () => {
  it('no selectors: one skip finding naming --dkim-selector', async () => {
    const findings = await dkim('ok.test', []);
    assert.deepEqual(codes(findings), ['DKIM_NO_SELECTORS']);
    assert.equal(findings[0]!.status, 'skip');
    assert.match(findings[0]!.message, /--dkim-selector/);
  });

  it('a 2048-bit RSA key passes; selectors are deduplicated', async () => {
    const findings = await dkim('ok.test', ['s1', 'S1', ' s1 ']);
    assert.deepEqual(codes(findings), ['DKIM_KEY']);
    assert.match(findings[0]!.message, /selector "s1": rsa key of 2048 bits/);
  });

  it('a CNAME to a provider is followed and shown', async () => {
    const f = only(await dkim('ok.test', ['selector1']), 'DKIM_KEY');
    assert.equal(f.status, 'pass');
    assert.match(f.message, /via CNAME selector1-ok-test\._domainkey\.tenant\.provider\.test/);
  });

  it('a missing key warns: the selector was given, so it is expected', async () => {
    const f = only(await dkim('ok.test', ['gone']), 'DKIM_KEY_MISSING');
    assert.equal(f.status, 'warn');
    assert.match(f.message, /gone\._domainkey\.ok\.test has no TXT record \(NXDOMAIN\)/);
    assert.match(f.fix ?? '', /gone\._domainkey\.ok\.test\. IN TXT "v=DKIM1; k=rsa; p=/);
  });

  it('a bad key fails; revoked is info; testing and 1024 bits warn', async () => {
    const findings = await dkim('ok.test', ['bad', 'revoked', 'testing', 'weak']);
    assert.equal(only(findings, 'DKIM_KEY_INVALID').status, 'fail');
    assert.match(only(findings, 'DKIM_KEY_INVALID').message, /selector "bad".*not valid base64/);
    assert.equal(only(findings, 'DKIM_KEY_REVOKED').status, 'info');
    assert.equal(only(findings, 'DKIM_TESTING').status, 'warn');
    const weak = only(findings, 'DKIM_KEY_WEAK');
    assert.equal(weak.status, 'warn');
    assert.match(weak.message, /1024 bits/);
    // testing and weak keys still work: they pass as keys besides their warning
    assert.equal(findings.filter((f) => f.code === 'DKIM_KEY').length, 2);
  });

  it('several records warn; notes are info and other warnings warn', async () => {
    assert.equal(only(await dkim('ok.test', ['two']), 'DKIM_MULTIPLE').status, 'warn');
    assert.equal(only(await dkim('ok.test', ['notes']), 'DKIM_NOTE').status, 'info');
    assert.match(only(await dkim('ok.test', ['sha1']), 'DKIM_WARNING').message, /sha1/);
  });

  it('a DNS failure fails', async () => {
    const f = only(await dkim('broken.test', ['s1']), 'DKIM_DNS');
    assert.equal(f.status, 'fail');
    assert.match(f.message, /selector "s1": the resolver answered SERVFAIL/);
  });
});

/** Answers from a function of (name, type); counts queries. No sockets. */
class FakeResolver extends ResolverBase {
  queries = 0;
  constructor(private readonly answer: (name: string, type: DnsRecordType) => Partial<DnsResult>) {
    super();
  }
  async query(name: string, type: DnsRecordType): Promise<DnsResult> {
    this.queries++;
    return {
      name,
      type,
      outcome: 'ok',
      secure: false,
      answers: [],
      cnameChain: [],
      ede: [],
      ...this.answer(name, type),
    };
  }
}

function fakeEnv(resolver: Resolver, selectors: string[] = ['s']): CheckEnvironment {
  return { ...env(), resolver, dkimSelectors: selectors };
}

function assertFindings(findings: Finding[]): void {
  for (const f of findings) {
    assert.ok((SECTIONS as readonly string[]).includes(f.section));
    assert.ok((STATUSES as readonly string[]).includes(f.status));
    assert.match(f.code, /^[A-Z]+_[A-Z_]+$/);
    assert.equal(typeof f.message, 'string');
  }
}

describe('fuzz: the checks only ever return findings', () => {
  const prefixes = ['v=spf1 ', 'v=DMARC1; ', 'v=TLSRPTv1; ', 'v=DKIM1; ', ''];
  const txtValue = fc
    .tuple(fc.constantFrom(...prefixes), fc.string({ maxLength: 80 }))
    .map(([p, s]) => p + s);
  const outcome = fc.constantFrom<DnsOutcome>(
    'ok',
    'ok',
    'ok',
    'nxdomain',
    'nodata',
    'servfail',
    'timeout',
    'error',
  );

  it('random TXT contents and outcomes at every name', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(txtValue, { maxLength: 3 }), outcome, async (values, how) => {
        const fake = new FakeResolver((name, type) => ({
          outcome: how,
          answers:
            how === 'ok' && type === 'TXT'
              ? values.map((v) => ({ name, type: 'TXT' as const, data: v }))
              : [],
        }));
        const e = fakeEnv(fake);
        for (const check of [checkSpf, checkDmarc, checkTlsRpt, checkDkim]) {
          const findings = await check('fuzz.test', e);
          assert.ok(findings.length > 0);
          assertFindings(findings);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('random include/redirect graphs terminate within the query bound', async () => {
    const names = ['a.test', 'b.test', 'c.test', 'd.test', 'e.test'];
    const term = fc.oneof(
      fc.constantFrom(...names).map((n) => `include:${n}`),
      fc.constantFrom(...names).map((n) => `a:${n}`),
      fc.constantFrom(...names).map((n) => `mx:${n}`),
      fc.constantFrom('ip4:192.0.2.1', '-all', '~all', 'ptr', 'exists:%{i}.x.test'),
    );
    const recordFor = fc
      .tuple(fc.array(term, { maxLength: 12 }), fc.option(fc.constantFrom(...names)))
      .map(([ts, redirect]) => `v=spf1 ${ts.join(' ')}${redirect ? ` redirect=${redirect}` : ''}`);
    await fc.assert(
      fc.asyncProperty(
        fc.array(recordFor, { minLength: names.length, maxLength: names.length }),
        async (records) => {
          const fake = new FakeResolver((name, type) => {
            const i = names.indexOf(name);
            if (i < 0) return { outcome: 'nxdomain' };
            if (type === 'TXT') return { answers: [{ name, type: 'TXT', data: records[i]! }] };
            if (type === 'A') return { answers: [{ name, type: 'A', data: '192.0.2.1' }] };
            return { outcome: 'nodata' };
          });
          const findings = await checkSpf('a.test', fakeEnv(fake));
          assertFindings(findings);
          assert.ok(fake.queries <= SPF_MAX_QUERIES + 1, `${fake.queries} queries`);
          // a verdict on the limits, unless the record itself is invalid
          const verdicts = [
            'SPF_LOOKUPS',
            'SPF_TOO_MANY_LOOKUPS',
            'SPF_VOID_LOOKUPS',
            'SPF_LOOP',
            'SPF_SYNTAX',
          ];
          assert.ok(
            findings.some((f) => verdicts.includes(f.code)),
            JSON.stringify(findings),
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('docs/findings/records.md', () => {
  it('documents every code the scenarios produced', () => {
    const doc = readFileSync(new URL('../../docs/findings/records.md', import.meta.url), 'utf8');
    const documented = new Set([...doc.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]));
    assert.ok(seenCodes.size > 40, `only ${seenCodes.size} codes seen`);
    for (const code of seenCodes)
      assert.ok(documented.has(code), `${code} is not in docs/findings/records.md`);
  });
});
