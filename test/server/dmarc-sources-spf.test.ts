// Which DMARC sources a domain's SPF record authorises (src/server/dmarc-sources.ts AuthorisedSenders over
// src/spf/evaluate.ts), against a real DNS server on loopback (test/lab/dns-server.ts) through serve's
// resolver: include: chains and redirect= followed, a/mx/ip4/ip6 matched; the answers kept per domain, so a
// second page of sources asks nothing and the names are asked again after the cache time; and the API's
// sources view calling a source authorised only through an include "spf-authorised".
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DnsClient } from '../../src/dns/client.js';
import { AuthorisedSenders } from '../../src/server/dmarc-sources.js';
import { openTestApp } from '../helpers/browser.js';
import { dmarcReport } from '../helpers/dmarc.js';
import { type LabDnsServer, startDnsServer } from '../lab/dns-server.js';

const ESP_NET = '198.51.100.0/26';
const REDIRECTED = '203.0.113.64';
const OWN_A = '192.0.2.80';
const MX_HOST = '192.0.2.25';

describe('SPF-authorised sources, lab DNS', () => {
  let lab: LabDnsServer;
  let resolver: DnsClient;

  before(async () => {
    lab = await startDnsServer([
      {
        origin: 'example.com',
        records: [
          { name: 'example.com', type: 'MX', data: { preference: 10, exchange: 'mx.example.com' } },
          { name: 'mx.example.com', type: 'A', data: MX_HOST },
          { name: 'example.com', type: 'A', data: OWN_A },
          // a, then an include chain two deep, then the rest of the policy by redirect from the last one.
          { name: 'example.com', type: 'TXT', data: ['v=spf1 a include:_spf.esp.example -all'] },
        ],
      },
      {
        origin: 'esp.example',
        records: [
          { name: '_spf.esp.example', type: 'TXT', data: ['v=spf1 include:_net.esp.example ~all'] },
          {
            name: '_net.esp.example',
            type: 'TXT',
            data: [`v=spf1 ip4:${ESP_NET} redirect=_more.esp.example`],
          },
          {
            name: '_more.esp.example',
            type: 'TXT',
            data: [`v=spf1 ip4:${REDIRECTED} ip6:2001:db8:e5::/48 -all`],
          },
        ],
      },
    ]);
    resolver = new DnsClient({ servers: [{ host: lab.host, port: lab.port }], timeoutMs: 2000, tries: 1 });
  });
  after(async () => {
    await lab?.stop();
  });

  it('follows include: and redirect=, and matches a, ip4 and ip6 at every depth', async () => {
    let now = new Date('2026-05-10T12:00:00Z');
    const senders = new AuthorisedSenders(resolver, () => now);
    const ips = [
      OWN_A,
      '198.51.100.63',
      '198.51.100.64',
      REDIRECTED,
      '2001:db8:e5::25',
      MX_HOST, // own MX, not in SPF (no mx mechanism)
    ];
    const first = await senders.of('example.com', ips);
    assert.deepEqual(
      [...first.spfPass].sort(),
      [OWN_A, '198.51.100.63', '2001:db8:e5::25', REDIRECTED].sort(),
    );
    assert.equal(first.mx.check(MX_HOST), true);

    const asked = lab.queries.length;
    const again = await senders.of('example.com', [...ips, '198.51.100.1']);
    assert.ok(again.spfPass.has('198.51.100.1'));
    assert.equal(lab.queries.length, asked, 'the kept answers serve a second page');

    now = new Date(now.getTime() + 11 * 60_000);
    await senders.of('example.com', ['198.51.100.1']);
    assert.ok(lab.queries.length > asked, 'asked again after the cache time');
  });

  it('keeps at most maxDomains domains and maxVerdicts verdicts per domain', async () => {
    const now = new Date('2026-05-10T12:00:00Z');
    const senders = new AuthorisedSenders(resolver, () => now, {
      ttlMs: 3_600_000,
      maxDomains: 1,
      maxVerdicts: 2,
    });
    const ips = [OWN_A, '198.51.100.1', '233.252.0.1'];
    const first = await senders.of('example.com', ips);
    assert.deepEqual([...first.spfPass].sort(), [OWN_A, '198.51.100.1'].sort());
    const asked = lab.queries.length;
    await senders.of('esp.example', ['198.51.100.1']);
    const afterOther = lab.queries.length;
    assert.ok(afterOther > asked);
    // example.com was let go for esp.example: its names are asked again, its verdicts are the same.
    const again = await senders.of('example.com', ips);
    assert.ok(lab.queries.length > afterOther);
    assert.deepEqual([...again.spfPass].sort(), [...first.spfPass].sort());
  });

  it('the API calls a source authorised only through the include chain "spf-authorised"', async () => {
    const start = new Date('2026-05-10T12:00:00Z');
    const t = await openTestApp({ start, resolver });
    try {
      const auth = { authorization: `Bearer ${t.password}` };
      const add = await t.app.inject({
        method: 'POST',
        url: '/api/domains',
        headers: auth,
        payload: { name: 'example.com', mx: ['mx.example.com'] },
      });
      assert.equal(add.statusCode, 201, add.body);
      await t.ctx.store.saveDmarcReport(
        {
          report: dmarcReport({
            organization: 'google.com',
            reportId: 'r1',
            domain: 'example.com',
            day: '2026-05-09',
            rows: [
              { sourceIp: REDIRECTED, count: 5, dkim: 'fail', spf: 'fail' },
              { sourceIp: '233.252.0.1', count: 4, dkim: 'fail', spf: 'fail' },
            ],
          }),
          source: 'import',
          dkim: 'unverified',
          warnings: [],
        },
        start,
      );
      const res = await t.app.inject({
        url: '/api/domains/example.com/dmarc/sources?since=2026-05-01',
        headers: auth,
      });
      assert.equal(res.statusCode, 200, res.body);
      const sources = (res.json() as { sources: { sourceIp: string; legitimacy: string }[] }).sources;
      assert.deepEqual(
        sources.map((s) => [s.sourceIp, s.legitimacy]),
        [
          [REDIRECTED, 'spf-authorised'],
          ['233.252.0.1', 'unknown'],
        ],
      );
    } finally {
      await t.close();
    }
  });
});
