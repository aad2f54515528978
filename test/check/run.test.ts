// The domain audit (src/check/run.ts): a domain that does not exist gets that one finding; one DNSSEC cause is
// reported once (markDnssecConsequences): the failures that are only the same bogus answer again become `skip`
// with `cause`, lose their fix, and the cause keeps its own.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { checkDomain, markDnssecConsequences } from '../../src/check/run.js';
import { type CheckEnvironment, type Finding, finding } from '../../src/check/types.js';
import { DnsClient } from '../../src/dns/client.js';
import { type LabDnsServer, startDnsServer } from '../lab/dns-server.js';

const bogus = (what: string) => `the answer for ${what} fails DNSSEC validation (bogus)`;

describe('markDnssecConsequences', () => {
  it('the zone is bogus: its other failed lookups follow from MX_DNSSEC_BOGUS', () => {
    const findings: Finding[] = [
      finding(
        'mx',
        'fail',
        'MX_DNSSEC_BOGUS',
        'MX lookup for a.test: the answer fails DNSSEC validation (bogus)',
        {
          fix: 'repair the signatures',
        },
      ),
      finding('mtasts', 'fail', 'MTASTS_TXT_DNS', `could not read: ${bogus('TXT _mta-sts.a.test')}`, {
        fix: 'x',
      }),
      finding('mtasts', 'fail', 'MTASTS_FETCH_DNS', 'A mta-sts.a.test: SERVFAIL (EDE 6 DNSSEC Bogus)', {
        host: 'mta-sts.a.test',
        fix: 'y',
      }),
      finding('spf', 'fail', 'SPF_DNS', 'could not read the SPF record: SERVFAIL from 127.0.0.1:53'),
      finding('dmarc', 'warn', 'DMARC_NONE', 'no record'),
    ];
    markDnssecConsequences(findings);
    assert.deepEqual(
      findings.map((f) => [f.code, f.status, f.cause ?? null, f.fix ?? null]),
      [
        ['MX_DNSSEC_BOGUS', 'fail', null, 'repair the signatures'],
        ['MTASTS_TXT_DNS', 'skip', 'MX_DNSSEC_BOGUS', null],
        ['MTASTS_FETCH_DNS', 'skip', 'MX_DNSSEC_BOGUS', null],
        ['SPF_DNS', 'fail', null, null],
        ['DMARC_NONE', 'warn', null, null],
      ],
    );
    assert.match(findings[1]!.message, /\(follows from MX_DNSSEC_BOGUS\)$/);
  });

  it("an MX host's zone is bogus: that host's TLSA failure follows from it, another host's stands", () => {
    const findings: Finding[] = [
      finding(
        'mx',
        'fail',
        'MX_HOST_DNSSEC_BOGUS',
        'A lookup for mx1.b.test: the answer fails DNSSEC validation (bogus)',
        {
          host: 'mx1.b.test',
        },
      ),
      finding('dane', 'fail', 'DANE_TLSA_BOGUS', `TLSA: ${bogus('TLSA _25._tcp.mx1.b.test')}`, {
        host: 'mx1.b.test',
      }),
      finding('dane', 'fail', 'DANE_TLSA_BOGUS', `TLSA: ${bogus('TLSA _25._tcp.mx2.b.test')}`, {
        host: 'mx2.b.test',
      }),
    ];
    markDnssecConsequences(findings);
    assert.deepEqual(
      findings.map((f) => [f.host, f.status]),
      [
        ['mx1.b.test', 'fail'],
        ['mx1.b.test', 'skip'],
        ['mx2.b.test', 'fail'],
      ],
    );
  });

  it('no bogus root: nothing changes', () => {
    const findings = [
      finding('dane', 'fail', 'DANE_TLSA_BOGUS', bogus('TLSA x'), { host: 'mx.c.test', fix: 'z' }),
    ];
    const before = structuredClone(findings);
    markDnssecConsequences(findings);
    assert.deepEqual(findings, before);
  });
});

describe('checkDomain', () => {
  let dns: LabDnsServer;
  before(async () => {
    dns = await startDnsServer([
      { origin: 'nx.test', records: [{ name: 'www.nx.test', type: 'A', data: '127.0.0.1' }] },
    ]);
  });
  after(async () => dns.stop());

  it('a domain that does not exist: the one MX_NXDOMAIN finding, no records to publish for it', async () => {
    const env: CheckEnvironment = {
      resolver: new DnsClient({ servers: [{ host: dns.host, port: dns.port }], timeoutMs: 1000, tries: 1 }),
      dnssecValidating: false,
      ca: [],
      allowPrivate: true,
      timeoutMs: 2000,
      smtpPort: 1,
      httpsPort: 1,
      dkimSelectors: ['selector1'],
      now: new Date(),
    };
    const report = await checkDomain('missing.nx.test', env);
    assert.equal(report.status, 'fail');
    assert.deepEqual(
      report.findings.map((f) => f.code),
      ['MX_NXDOMAIN'],
    );
  });
});
