// Interop: our RFC 7208 check_host() (src/spf/evaluate.ts, through serve's resolver as the DMARC views use
// it, src/server/dmarc-sources.ts spfDns) against Debian's Mail::SPF (package libmail-spf-perl, the RFC 7208
// reference implementation's Perl successor), both asking the same lab DNS server on loopback
// (test/lab/dns-server.ts). Mail::SPF gets an explicit Net::DNS resolver for the lab's address and port, so
// neither side reads /etc/resolv.conf. Every address of every scenario must get the same result.
// Left out on purpose (we differ by design, see evaluate.ts): macros and ptr, which Mail::SPF evaluates and
// we never match.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { DnsClient } from '../../src/dns/client.js';
import { spfDns } from '../../src/server/dmarc-sources.js';
import { SpfEvaluator } from '../../src/spf/evaluate.js';
import { type LabDnsServer, type LabRecord, type LabZone, startDnsServer } from '../lab/dns-server.js';

/** Mail::SPF's check_host for each address, MAIL FROM postmaster@domain (RFC 7208 §2.4). */
const MAIL_SPF = `
use strict; use Mail::SPF; use Net::DNS;
my ($host, $port, $domain, @ips) = @ARGV;
my $dns = Net::DNS::Resolver->new(nameservers => [$host], port => $port, recurse => 1, retry => 1,
  udp_timeout => 3, tcp_timeout => 3, searchlist => [], defnames => 0, dnsrch => 0);
my $server = Mail::SPF::Server->new(dns_resolver => $dns, max_void_dns_lookups => 2);
for my $ip (@ips) {
  my $request = Mail::SPF::Request->new(scope => 'mfrom', identity => "postmaster\\@$domain", ip_address => $ip);
  print "$ip ", $server->process($request)->code, "\\n";
}`;

const txt = (name: string, text: string): LabRecord => ({ name, type: 'TXT', data: [text] });
const a = (name: string, ip: string): LabRecord =>
  ip.includes(':') ? { name, type: 'AAAA', data: ip } : { name, type: 'A', data: ip };
const mx = (name: string, exchange: string, preference = 10): LabRecord => ({
  name,
  type: 'MX',
  data: { preference, exchange },
});

/** Domains with an SPF record each, under spf.test, and the addresses asked about every one of them. */
const ZONE: LabZone = {
  origin: 'spf.test',
  records: [
    txt(
      'ip.spf.test',
      'v=spf1 ip4:192.0.2.0/25 -ip4:192.0.2.128/26 ~ip6:2001:db8:1::/48 ?ip4:198.51.100.9 -all',
    ),
    txt('am.spf.test', 'v=spf1 a mx/24 a:host.spf.test//64 ~all'),
    a('am.spf.test', '192.0.2.10'),
    a('am.spf.test', '2001:db8:a::10'),
    mx('am.spf.test', 'mx1.spf.test'),
    mx('am.spf.test', 'mx2.spf.test', 20),
    a('mx1.spf.test', '198.51.100.25'),
    a('mx2.spf.test', '203.0.113.25'),
    a('host.spf.test', '2001:db8:b::1'),
    txt('inc.spf.test', 'v=spf1 include:esp.spf.test include:soft.spf.test -all'),
    txt('esp.spf.test', 'v=spf1 include:net.spf.test ~all'),
    txt('net.spf.test', 'v=spf1 ip4:198.51.100.0/26 redirect=more.spf.test'),
    txt('more.spf.test', 'v=spf1 ip4:203.0.113.64/27 ip6:2001:db8:e5::/48 -all'),
    txt('soft.spf.test', 'v=spf1 ip4:192.0.2.200 ~all'),
    txt('redir.spf.test', 'v=spf1 ip4:192.0.2.1 redirect=more.spf.test'),
    txt('redir-all.spf.test', 'v=spf1 ?all redirect=more.spf.test'),
    txt('redir-none.spf.test', 'v=spf1 redirect=nothing.spf.test'),
    txt('inc-none.spf.test', 'v=spf1 include:nothing.spf.test -all'),
    txt('inc-broken.spf.test', 'v=spf1 include:broken.spf.test -all'),
    txt('broken.spf.test', 'v=spf1 ip4:192.0.2.300 -all'),
    txt('two.spf.test', 'v=spf1 -all'),
    txt('two.spf.test', 'v=spf1 +all'),
    txt('exists.spf.test', 'v=spf1 exists:on.spf.test -all'),
    a('on.spf.test', '127.0.0.2'),
    txt('voids.spf.test', 'v=spf1 a:v1.spf.test a:v2.spf.test a:v3.spf.test ip4:192.0.2.0/24 -all'),
    txt('two-voids.spf.test', 'v=spf1 a:v1.spf.test a:v2.spf.test ip4:192.0.2.0/24 -all'),
    ...Array.from({ length: 12 }, (_, i) =>
      txt(
        `l${i}.spf.test`,
        i === 11 ? 'v=spf1 ip4:192.0.2.0/24 -all' : `v=spf1 include:l${i + 1}.spf.test -all`,
      ),
    ),
    txt('loop.spf.test', 'v=spf1 include:loop.spf.test -all'),
    txt('manymx.spf.test', 'v=spf1 mx -all'),
    ...Array.from({ length: 11 }, (_, i) => mx('manymx.spf.test', `m${i}.spf.test`, i)),
    a('m0.spf.test', '192.0.2.10'),
    txt('nospf.spf.test', 'hello'),
    // Macros (RFC 7208 §7): the client address forwards and reversed, the domain, the sender.
    txt('mac-i.spf.test', 'v=spf1 exists:%{i}.allow.spf.test -all'),
    a('192.0.2.10.allow.spf.test', '127.0.0.2'),
    txt('mac-ir.spf.test', 'v=spf1 include:%{ir}.%{v}._spf.spf.test -all'),
    txt(
      '5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.spf.test',
      'v=spf1 ip6:2001:db8:1::/48 -all',
    ),
    txt('10.2.0.192.in-addr._spf.spf.test', 'v=spf1 ip4:192.0.2.10 -all'),
    txt('mac-d.spf.test', 'v=spf1 exists:%{d2}.%{l}.%{o}.ok.spf.test -all'),
    a('spf.test.postmaster.mac-d.spf.test.ok.spf.test', '127.0.0.2'),
  ],
};
const DOMAINS = [
  'ip.spf.test',
  'am.spf.test',
  'inc.spf.test',
  'redir.spf.test',
  'redir-all.spf.test',
  'redir-none.spf.test',
  'inc-none.spf.test',
  'inc-broken.spf.test',
  'two.spf.test',
  'exists.spf.test',
  'voids.spf.test',
  'two-voids.spf.test',
  'l0.spf.test',
  'l1.spf.test',
  'loop.spf.test',
  'manymx.spf.test',
  'nospf.spf.test',
  'gone.spf.test',
  'mac-i.spf.test',
  'mac-ir.spf.test',
  'mac-d.spf.test',
];
const IPS = [
  '192.0.2.1',
  '192.0.2.10',
  '192.0.2.130',
  '192.0.2.200',
  '198.51.100.9',
  '198.51.100.30',
  '198.51.100.200',
  '203.0.113.25',
  '203.0.113.70',
  '2001:db8:1::5',
  '2001:db8:a::10',
  '2001:db8:b::ffff',
  '2001:db8:e5::25',
  '233.252.0.1',
];

describe('SPF check_host against Mail::SPF (libmail-spf-perl), lab DNS', () => {
  let lab: LabDnsServer;
  before(async () => {
    lab = await startDnsServer([ZONE]);
  });
  after(async () => {
    await lab?.stop();
  });

  test('every address of every domain gets the same result from both', async (t) => {
    const perl = spawnSync('perl', ['-MMail::SPF', '-e', '1'], { encoding: 'utf8' });
    assert.equal(
      perl.status,
      0,
      `Mail::SPF missing: install the Debian package libmail-spf-perl (${perl.stderr})`,
    );
    const resolver = new DnsClient({
      servers: [{ host: lab.host, port: lab.port }],
      timeoutMs: 2000,
      tries: 1,
    });
    const differences: string[] = [];
    const seen = new Set<string>();
    for (const domain of DOMAINS) {
      // Not spawnSync: the lab DNS server answers from this process's event loop.
      const theirs = await promisify(execFile)(
        'perl',
        ['-e', MAIL_SPF, lab.host, String(lab.port), domain, ...IPS],
        { timeout: 60_000 },
      );
      const byIp = new Map(
        theirs.stdout
          .trim()
          .split('\n')
          .map((l) => l.split(' ') as [string, string]),
      );
      const evaluator = new SpfEvaluator(spfDns(resolver));
      for (const ip of IPS) {
        const ours = await evaluator.check(ip, domain);
        seen.add(ours);
        if (ours !== byIp.get(ip))
          differences.push(`${domain} ${ip}: ours ${ours}, Mail::SPF ${byIp.get(ip)}`);
      }
    }
    t.diagnostic(`results seen: ${[...seen].sort().join(', ')}`);
    assert.deepEqual(differences, []);
    // The scenarios reach every result but temperror (the lab answers every name).
    assert.deepEqual([...seen].sort(), ['fail', 'neutral', 'none', 'pass', 'permerror', 'softfail']);
  });
});
