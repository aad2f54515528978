// The mx section of `mxguard check` (src/check/mx.ts) against the lab DNS server on loopback: one scenario per
// finding code, the hosts handed to the tls/dane sections, and the fatal outcome when the resolver is
// unreachable. Pure helpers get table tests.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { checkMx, MAX_ADDRESSES_PER_HOST, type MxCheck, probeable } from '../../src/check/mx.js';
import type { CheckEnvironment, Finding } from '../../src/check/types.js';
import { DnsClient } from '../../src/dns/client.js';
import {
  type DnsRecordType,
  type DnsResult,
  type QueryOptions,
  ResolverBase,
} from '../../src/dns/resolver.js';
import { dnsResultSummary } from '../../src/sender/dns-failure.js';
import { ipLiteral, MAX_MX_HOSTS } from '../../src/sender/mx.js';
import { type LabDnsServer, type LabRecord, type LabZone, startDnsServer } from '../lab/dns-server.js';

const mx = (name: string, preference: number, exchange: string): LabRecord => ({
  name,
  type: 'MX',
  data: { preference, exchange },
});
const a = (name: string, data: string): LabRecord => ({ name, type: 'A', data });
const aaaa = (name: string, data: string): LabRecord => ({ name, type: 'AAAA', data });

const manyHosts = Array.from({ length: MAX_MX_HOSTS + 2 }, (_, i) => i);
const manyAddresses = Array.from({ length: MAX_ADDRESSES_PER_HOST + 2 }, (_, i) => `127.0.1.${i + 1}`);

const ZONES: LabZone[] = [
  {
    origin: 'ok.test',
    secure: true,
    records: [
      mx('ok.test', 20, 'mx2.ok.test'),
      mx('ok.test', 10, 'mx1.ok.test'),
      a('mx1.ok.test', '127.0.0.1'),
      aaaa('mx1.ok.test', '::1'),
      aaaa('mx2.ok.test', '::1'),
    ],
  },
  {
    origin: 'plain.test',
    records: [mx('plain.test', 10, 'mx.plain.test'), a('mx.plain.test', '127.0.0.1')],
  },
  { origin: 'null.test', secure: true, records: [mx('null.test', 0, '.')] },
  {
    origin: 'nullmixed.test',
    records: [
      mx('nullmixed.test', 0, '.'),
      mx('nullmixed.test', 10, 'mx.nullmixed.test'),
      a('mx.nullmixed.test', '127.0.0.1'),
    ],
  },
  { origin: 'implicit.test', records: [a('implicit.test', '127.0.0.1')] },
  { origin: 'none.test', records: [{ name: 'none.test', type: 'TXT', data: 'v=spf1 -all' }] },
  { origin: 'nx.test', records: [a('www.nx.test', '127.0.0.1')] },
  {
    origin: 'cname.test',
    records: [
      mx('cname.test', 10, 'alias.cname.test'),
      { name: 'alias.cname.test', type: 'CNAME', data: 'mx.cname.test' },
      a('mx.cname.test', '127.0.0.1'),
    ],
  },
  {
    origin: 'literal.test',
    records: [
      mx('literal.test', 10, '127.0.0.1'),
      mx('literal.test', 20, 'mx.literal.test'),
      a('mx.literal.test', '127.0.0.1'),
    ],
  },
  {
    origin: 'noaddr.test',
    records: [
      mx('noaddr.test', 10, 'mx.noaddr.test'),
      mx('noaddr.test', 20, 'gone.noaddr.test'),
      { name: 'mx.noaddr.test', type: 'TXT', data: 'no address here' },
    ],
  },
  { origin: 'bogus.test', bogus: true, records: [mx('bogus.test', 10, 'mx.bogus.test')] },
  { origin: 'broken.test', servfail: true, records: [mx('broken.test', 10, 'mx.broken.test')] },
  { origin: 'hostbogus.test', secure: true, records: [mx('hostbogus.test', 10, 'mx.signed.hostbogus.test')] },
  { origin: 'signed.hostbogus.test', bogus: true, records: [a('mx.signed.hostbogus.test', '127.0.0.1')] },
  { origin: 'hostbroken.test', records: [mx('hostbroken.test', 10, 'mx.dead.hostbroken.test')] },
  { origin: 'dead.hostbroken.test', servfail: true, records: [a('mx.dead.hostbroken.test', '127.0.0.1')] },
  { origin: 'slow.hostbroken.test', drop: true, records: [a('mx.slow.hostbroken.test', '127.0.0.1')] },
  { origin: 'hostslow.test', records: [mx('hostslow.test', 10, 'mx.slow.hostbroken.test')] },
  {
    origin: 'trunc.test',
    secure: true,
    truncate: true,
    records: [mx('trunc.test', 10, 'mx.trunc.test'), a('mx.trunc.test', '127.0.0.1')],
  },
  {
    origin: 'private.test',
    records: [
      mx('private.test', 10, 'mx.private.test'),
      a('mx.private.test', '10.1.2.3'),
      a('mx.private.test', '1.2.3.4'),
      aaaa('mx.private.test', 'fe80::1'),
    ],
  },
  {
    origin: 'many.test',
    records: [
      ...manyHosts.map((i) => mx('many.test', 10 + i, `mx${i}.many.test`)),
      ...manyHosts.map((i) => a(`mx${i}.many.test`, '127.0.0.1')),
    ],
  },
  {
    origin: 'wide.test',
    records: [mx('wide.test', 10, 'mx.wide.test'), ...manyAddresses.map((ip) => a('mx.wide.test', ip))],
  },
  {
    origin: 'badname.test',
    records: [
      mx('badname.test', 10, 'bad name.badname.test'),
      mx('badname.test', 20, 'under_score.badname.test'),
      a('bad name.badname.test', '127.0.0.1'),
    ],
  },
  {
    origin: 'dup.test',
    records: [
      mx('dup.test', 10, 'mx.dup.test'),
      mx('dup.test', 20, 'MX.dup.test.'),
      a('mx.dup.test', '127.0.0.1'),
    ],
  },
];

let lab: LabDnsServer;
let env: CheckEnvironment;

function environment(server: LabDnsServer, extra: Partial<CheckEnvironment> = {}): CheckEnvironment {
  return {
    resolver: new DnsClient({
      servers: [{ host: server.host, port: server.port }],
      timeoutMs: 300,
      tries: 1,
    }),
    dnssecValidating: true,
    ca: [],
    allowPrivate: true,
    timeoutMs: 1000,
    smtpPort: 25,
    httpsPort: 443,
    dkimSelectors: [],
    now: new Date('2030-01-01T00:00:00Z'),
    ...extra,
  };
}

before(async () => {
  lab = await startDnsServer(ZONES);
  env = environment(lab);
});
after(() => lab.stop());

/** The codes of a docs/findings/*.md table and their statuses ("warn / fail" lists both). */
function documentedCodes(file: string): Map<string, string[]> {
  const text = readFileSync(new URL(`../../docs/findings/${file}.md`, import.meta.url), 'utf8');
  const codes = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const row = /^\|\s*`([A-Z0-9_]+)`\s*\|\s*([a-z /]+?)\s*\|/.exec(line);
    if (row)
      codes.set(
        row[1]!,
        row[2]!.split('/').map((s) => s.trim()),
      );
  }
  return codes;
}

function only(result: MxCheck, code: string): Finding {
  const found = result.findings.filter((f) => f.code === code);
  assert.equal(found.length, 1, `one ${code} expected, got ${JSON.stringify(result.findings, null, 1)}`);
  return found[0]!;
}

function codes(result: MxCheck): string[] {
  return result.findings.map((f) => f.code);
}

describe('checkMx: MX records', () => {
  it('lists the MX records by preference and gathers A and AAAA of each host', async () => {
    const r = await checkMx('OK.test.', env);
    assert.equal(r.fatal, undefined);
    assert.deepEqual(codes(r), ['MX_RECORDS']);
    const f = only(r, 'MX_RECORDS');
    assert.equal(f.status, 'pass');
    assert.equal(f.section, 'mx');
    assert.match(f.message, /2 MX record\(s\), DNSSEC-signed: 10 mx1\.ok\.test, 20 mx2\.ok\.test/);
    assert.deepEqual(r.hosts, [
      {
        host: 'mx1.ok.test',
        preference: 10,
        addresses: ['127.0.0.1', '::1'],
        addressesSecure: true,
        tlsa: { owner: '_25._tcp.mx1.ok.test.', status: 'secure', records: [] },
      },
      {
        host: 'mx2.ok.test',
        preference: 20,
        addresses: ['::1'],
        addressesSecure: true,
        tlsa: { owner: '_25._tcp.mx2.ok.test.', status: 'secure', records: [] },
      },
    ]);
  });

  it('marks the addresses of an unsigned zone as insecure', async () => {
    const r = await checkMx('plain.test', env);
    assert.doesNotMatch(only(r, 'MX_RECORDS').message, /DNSSEC/);
    assert.deepEqual(r.hosts, [
      {
        host: 'mx.plain.test',
        preference: 10,
        addresses: ['127.0.0.1'],
        addressesSecure: false,
        tlsa: { owner: '_25._tcp.mx.plain.test.', status: 'insecure', records: [] },
      },
    ]);
  });

  it('addresses are secure only when both the A and the AAAA answers are', async () => {
    // The lab signs whole zones; this resolver drops AD from AAAA answers only.
    const inner = env.resolver;
    class UnsignedAaaa extends ResolverBase {
      async query(name: string, type: DnsRecordType, options?: QueryOptions): Promise<DnsResult> {
        const result = await inner.query(name, type, options);
        return type === 'AAAA' ? { ...result, secure: false } : result;
      }
    }
    const r = await checkMx('ok.test', { ...env, resolver: new UnsignedAaaa() });
    assert.deepEqual(
      r.hosts.map((h) => h.addressesSecure),
      [false, false],
    );
  });

  it('retries over TCP when the answer is truncated', async () => {
    const before = lab.queries.length;
    const r = await checkMx('trunc.test', env);
    assert.equal(only(r, 'MX_RECORDS').status, 'pass');
    assert.deepEqual(r.hosts[0]?.addresses, ['127.0.0.1']);
    assert.ok(lab.queries.slice(before).some((q) => q.transport === 'tcp'));
  });

  it('lists a host named twice once, with its best preference', async () => {
    const r = await checkMx('dup.test', env);
    assert.deepEqual(
      r.hosts.map((h) => [h.host, h.preference]),
      [['mx.dup.test', 10]],
    );
  });

  it(`checks at most ${MAX_MX_HOSTS} hosts and ${MAX_ADDRESSES_PER_HOST} addresses per host`, async () => {
    const many = await checkMx('many.test', env);
    assert.equal(many.hosts.length, MAX_MX_HOSTS);
    assert.equal(only(many, 'MX_PROBE_LIMIT').status, 'info');
    assert.deepEqual(
      many.hosts.map((h) => h.preference),
      manyHosts.slice(0, MAX_MX_HOSTS).map((i) => 10 + i),
    );
    const wide = await checkMx('wide.test', env);
    const f = only(wide, 'MX_PROBE_LIMIT');
    assert.equal(f.host, 'mx.wide.test');
    assert.deepEqual(wide.hosts[0]?.addresses, manyAddresses.slice(0, MAX_ADDRESSES_PER_HOST));
  });
});

describe('checkMx: no mail, no MX, no domain', () => {
  it('null MX (RFC 7505): info, and no hosts to probe', async () => {
    const r = await checkMx('null.test', env);
    const f = only(r, 'MX_NULL');
    assert.equal(f.status, 'info');
    assert.match(f.message, /accepts no mail/);
    assert.deepEqual(r.hosts, []);
    assert.equal(r.fatal, undefined);
  });

  it('a null MX beside other MX records fails (RFC 7505 §3)', async () => {
    const r = await checkMx('nullmixed.test', env);
    const f = only(r, 'MX_NULL_MIXED');
    assert.equal(f.status, 'fail');
    assert.equal(f.fix, 'delete the record nullmixed.test. IN MX 0 .');
    assert.deepEqual(
      r.hosts.map((h) => h.host),
      ['mx.nullmixed.test'],
    );
  });

  it('no MX: the domain itself is the implicit MX (RFC 5321 §5.1), a warning', async () => {
    const r = await checkMx('implicit.test', env);
    const f = only(r, 'MX_IMPLICIT');
    assert.equal(f.status, 'warn');
    assert.equal(f.host, 'implicit.test');
    assert.equal(f.fix, 'implicit.test. IN MX 10 implicit.test.');
    assert.deepEqual(r.hosts, [
      {
        host: 'implicit.test',
        preference: 0,
        addresses: ['127.0.0.1'],
        addressesSecure: false,
        tlsa: { owner: '_25._tcp.implicit.test.', status: 'insecure', records: [] },
      },
    ]);
  });

  it('neither MX nor an address: fail, with the MX and the null MX as fixes', async () => {
    const r = await checkMx('none.test', env);
    const f = only(r, 'MX_NONE');
    assert.equal(f.status, 'fail');
    assert.match(f.fix ?? '', /none\.test\. IN MX 0 \./);
    assert.deepEqual(r.hosts, []);
  });

  it('NXDOMAIN fails', async () => {
    const r = await checkMx('missing.nx.test', env);
    assert.equal(only(r, 'MX_NXDOMAIN').status, 'fail');
    assert.deepEqual(r.hosts, []);
    assert.equal(r.fatal, undefined);
  });
});

describe('checkMx: broken MX hosts', () => {
  it('an MX host that is a CNAME: warn, fix names the target, host still probed', async () => {
    const r = await checkMx('cname.test', env);
    const f = only(r, 'MX_CNAME');
    assert.equal(f.status, 'warn');
    assert.equal(f.host, 'alias.cname.test');
    assert.equal(f.fix, 'cname.test. IN MX 10 mx.cname.test.');
    assert.deepEqual(r.hosts[0]?.addresses, ['127.0.0.1']);
  });

  it('an MX that is an IP literal fails and is not probed', async () => {
    const r = await checkMx('literal.test', env);
    const f = only(r, 'MX_IP_LITERAL');
    assert.equal(f.status, 'fail');
    assert.equal(f.host, '127.0.0.1');
    assert.equal(f.fix, 'mx.literal.test. IN A 127.0.0.1\nliteral.test. IN MX 10 mx.literal.test.');
    assert.deepEqual(
      r.hosts.map((h) => h.host),
      ['mx.literal.test'],
    );
  });

  it('an MX that is not a host name fails and is not probed (RFC 5321 §2.3.5)', async () => {
    const r = await checkMx('badname.test', env);
    const found = r.findings.filter((f) => f.code === 'MX_HOST_INVALID');
    assert.deepEqual(
      found.map((f) => [f.host, f.status]),
      [
        ['bad name.badname.test', 'fail'],
        ['under_score.badname.test', 'fail'],
      ],
    );
    assert.match(found[0]!.message, /may only contain letters, digits and "-"/);
    assert.deepEqual(r.hosts, []);
  });

  it('MX hosts without A/AAAA fail (NODATA and NXDOMAIN)', async () => {
    const r = await checkMx('noaddr.test', env);
    const found = r.findings.filter((f) => f.code === 'MX_HOST_NO_ADDRESS');
    assert.deepEqual(
      found.map((f) => [f.host, f.status]),
      [
        ['mx.noaddr.test', 'fail'],
        ['gone.noaddr.test', 'fail'],
      ],
    );
    assert.match(found[1]!.message, /does not exist/);
    assert.deepEqual(r.hosts, []);
  });

  it('bogus address records of an MX host fail as DNSSEC bogus', async () => {
    const r = await checkMx('hostbogus.test', env);
    const found = r.findings.filter((f) => f.code === 'MX_HOST_DNSSEC_BOGUS');
    assert.deepEqual(
      found.map((f) => [f.status, f.host]),
      [
        ['fail', 'mx.signed.hostbogus.test'],
        ['fail', 'mx.signed.hostbogus.test'],
      ],
    );
    assert.match(found[0]!.fix ?? '', /dig \+cd mx\.signed\.hostbogus\.test A/);
    assert.deepEqual(r.hosts, []);
  });

  it('SERVFAIL or no answer for an MX host fails with the resolver message', async () => {
    const broken = await checkMx('hostbroken.test', env);
    const f = broken.findings.find((x) => x.code === 'MX_HOST_LOOKUP_FAILED');
    assert.equal(f?.status, 'fail');
    assert.match(f?.message ?? '', /SERVFAIL/);
    const slow = await checkMx('hostslow.test', env);
    const g = slow.findings.find((x) => x.code === 'MX_HOST_LOOKUP_FAILED');
    assert.equal(g?.status, 'fail');
    assert.match(g?.message ?? '', /timeout|no reply/);
    assert.equal(slow.fatal, undefined);
  });

  it('private and link-local addresses are refused without --allow-private', async () => {
    const strict = await checkMx('private.test', { ...env, allowPrivate: false });
    const f = only(strict, 'MX_PRIVATE_ADDRESS');
    assert.equal(f.status, 'warn');
    assert.equal(f.host, 'mx.private.test');
    assert.match(f.message, /10\.1\.2\.3 \(private \(RFC 1918\)\)/);
    assert.match(f.message, /fe80::1/);
    assert.match(f.message, /--allow-private/);
    assert.deepEqual(strict.hosts[0]?.addresses, ['1.2.3.4']);

    const allowed = await checkMx('private.test', env);
    assert.ok(!codes(allowed).includes('MX_PRIVATE_ADDRESS'));
    assert.deepEqual(allowed.hosts[0]?.addresses, ['10.1.2.3', '1.2.3.4', 'fe80::1']);
  });
});

describe('checkMx: failed MX lookups', () => {
  it('a bogus MX RRset fails as MX_DNSSEC_BOGUS', async () => {
    const r = await checkMx('bogus.test', env);
    const f = only(r, 'MX_DNSSEC_BOGUS');
    assert.equal(f.status, 'fail');
    assert.match(f.fix ?? '', /delv bogus\.test MX/);
    assert.equal(r.fatal, undefined);
  });

  it('a SERVFAIL that is not DNSSEC fails with the resolver message', async () => {
    const r = await checkMx('broken.test', env);
    const f = only(r, 'MX_LOOKUP_FAILED');
    assert.equal(f.status, 'fail');
    assert.match(f.message, /SERVFAIL/);
  });

  it('a resolver that drops every query: fatal (the check cannot run)', async () => {
    const dead = await startDnsServer([{ origin: '.', drop: true, records: [] }]);
    try {
      const r = await checkMx('example.test', environment(dead));
      assert.match(r.fatal ?? '', /MX lookup for example\.test: no DNS server answered/);
      assert.deepEqual(r.findings, []);
      assert.deepEqual(r.hosts, []);
    } finally {
      await dead.stop();
    }
  });

  it('a resolver that refuses: fatal', async () => {
    const r = await checkMx('outside.example', env);
    assert.match(r.fatal ?? '', /refused/);
  });
});

describe('helpers', () => {
  it('ipLiteral: addresses in MX exchanges', () => {
    const table: Array<[string, string | undefined]> = [
      ['192.0.2.1', '192.0.2.1'],
      ['[192.0.2.1]', '192.0.2.1'],
      ['2001:db8::1', '2001:db8::1'],
      ['[IPv6:2001:db8::1]', '2001:db8::1'],
      ['mx.example.com', undefined],
      ['192.0.2.1.example.com', undefined],
      ['1.2.3', undefined],
      ['', undefined],
    ];
    for (const [input, expected] of table) assert.equal(ipLiteral(input), expected, input);
  });

  it('probeable keeps only public addresses unless private ones are allowed', () => {
    const all = ['8.8.8.8', '127.0.0.1', '::1', '2001:4860::8888', '192.168.1.1', 'fe80::1%eth0'];
    assert.deepEqual(probeable(all, { allowPrivate: false }), ['8.8.8.8', '2001:4860::8888']);
    assert.deepEqual(probeable(all, { allowPrivate: true }), all);
  });

  it('probeable never lets a private address through (property)', () => {
    const octet = fc.integer({ min: 0, max: 255 });
    const ipv4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
    fc.assert(
      fc.property(fc.array(fc.oneof(ipv4, fc.ipV6(), fc.string())), (addresses) => {
        const kept = probeable(addresses, { allowPrivate: false });
        for (const ip of kept) {
          assert.ok(!/^(10|127)\./.test(ip) && !ip.startsWith('192.168.') && ip !== '::1', ip);
        }
      }),
    );
  });

  it('dnsResultSummary names the RCODE, the EDE and the server or the error', () => {
    const base: DnsResult = {
      name: 'x.test',
      type: 'MX',
      outcome: 'servfail',
      secure: false,
      answers: [],
      cnameChain: [],
      ede: [],
    };
    assert.equal(
      dnsResultSummary({
        ...base,
        rcode: 'SERVFAIL',
        ede: [{ code: 6, text: 'DNSSEC Bogus' }],
        server: { host: '127.0.0.1', port: 53 },
      }),
      'SERVFAIL (EDE 6 DNSSEC Bogus) from 127.0.0.1:53',
    );
    assert.equal(
      dnsResultSummary({ ...base, outcome: 'timeout', error: '127.0.0.1:53: no reply within 300 ms' }),
      'timeout: 127.0.0.1:53: no reply within 300 ms',
    );
  });
});

describe('docs/findings/mx.md', () => {
  it('documents every code the mx section emits, with its status', () => {
    const documented = documentedCodes('mx');
    const emitted: Array<[string, string]> = [
      ['MX_RECORDS', 'pass'],
      ['MX_NULL', 'info'],
      ['MX_NULL_MIXED', 'fail'],
      ['MX_IMPLICIT', 'warn'],
      ['MX_NONE', 'fail'],
      ['MX_NXDOMAIN', 'fail'],
      ['MX_CNAME', 'warn'],
      ['MX_IP_LITERAL', 'fail'],
      ['MX_HOST_INVALID', 'fail'],
      ['MX_HOST_NO_ADDRESS', 'fail'],
      ['MX_HOST_DNSSEC_BOGUS', 'fail'],
      ['MX_HOST_LOOKUP_FAILED', 'fail'],
      ['MX_PRIVATE_ADDRESS', 'warn'],
      ['MX_DNSSEC_BOGUS', 'fail'],
      ['MX_LOOKUP_FAILED', 'fail'],
      ['MX_PROBE_LIMIT', 'info'],
    ];
    assert.deepEqual([...documented.keys()].sort(), emitted.map(([c]) => c).sort());
    for (const [code, status] of emitted) assert.deepEqual(documented.get(code), [status], code);
  });
});
