// DnsClient against the lab DNS server on loopback: every outcome, AD, typed lookups, CNAME chains,
// TCP fallback, retries across servers, EDE, DNSSEC failure classification, spoofed replies.
// The client is always given the lab server explicitly; nothing here reaches the system resolver.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { DnsClient } from '../../src/dns/client.js';
import { DnsError } from '../../src/dns/error.js';
import type { DnsServer } from '../../src/dns/resolver.js';
import { type LabDnsServer, type LabZone, startDnsServer } from '../lab/dns-server.js';

const TLSA_DIGEST = Buffer.from('9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', 'hex');
const LONG_TXT = `v=DMARC1; p=reject; ${'x'.repeat(280)}`;

const ZONES: LabZone[] = [
  {
    origin: 'secure.test',
    secure: true,
    records: [
      { name: 'secure.test', type: 'A', data: '127.0.0.10' },
      { name: 'secure.test', type: 'MX', data: { preference: 20, exchange: 'MX2.secure.test.' } },
      { name: 'secure.test', type: 'MX', data: { preference: 10, exchange: 'mx1.secure.test' } },
      { name: 'secure.test', type: 'TXT', data: ['v=spf1 ', 'ip4:192.0.2.0/24', ' -all'] },
      { name: 'secure.test', type: 'TXT', data: 'hello' },
      { name: '_dmarc.secure.test', type: 'TXT', data: [LONG_TXT.slice(0, 255), LONG_TXT.slice(255)] },
      { name: 'mx1.secure.test', type: 'A', data: '127.0.0.11' },
      {
        name: '_25._tcp.mx1.secure.test',
        type: 'TLSA',
        data: { usage: 3, selector: 1, matchingType: 1, certificate: TLSA_DIGEST },
      },
      { name: 'alias.secure.test', type: 'CNAME', data: 'hop.secure.test' },
      { name: 'hop.secure.test', type: 'CNAME', data: 'www.secure.test' },
      { name: 'www.secure.test', type: 'A', data: '127.0.0.12' },
      { name: 'dangling.secure.test', type: 'CNAME', data: 'gone.secure.test' },
      { name: 'out.secure.test', type: 'CNAME', data: 'www.plain.test' },
      { name: 'deep.below.secure.test', type: 'A', data: '127.0.0.13' },
    ],
  },
  {
    origin: 'plain.test',
    records: [
      { name: 'www.plain.test', type: 'A', data: '127.0.0.20' },
      { name: 'www.plain.test', type: 'AAAA', data: '::1' },
      { name: 'plain.test', type: 'MX', data: { preference: 0, exchange: '.' } },
      { name: 'mixed.plain.test', type: 'MX', data: { preference: 10, exchange: 'mx.plain.test' } },
      { name: 'mixed.plain.test', type: 'MX', data: { preference: 0, exchange: '.' } },
      { name: 'loop1.plain.test', type: 'CNAME', data: 'loop2.plain.test' },
      { name: 'loop2.plain.test', type: 'CNAME', data: 'loop1.plain.test' },
      ...Array.from({ length: 8 }, (_, i) => ({
        name: 'big.plain.test',
        type: 'TXT' as const,
        data: `${i} ${'y'.repeat(240)}`,
      })),
    ],
  },
  { origin: 'bogus.test', bogus: true, records: [{ name: 'www.bogus.test', type: 'A', data: '127.0.0.40' }] },
  {
    origin: 'broken.test',
    servfail: true,
    records: [{ name: 'www.broken.test', type: 'A', data: '127.0.0.41' }],
  },
  {
    origin: 'dropped.test',
    drop: true,
    records: [{ name: 'www.dropped.test', type: 'A', data: '127.0.0.42' }],
  },
  {
    origin: 'truncated.test',
    truncate: true,
    records: [{ name: 'www.truncated.test', type: 'A', data: '127.0.0.43' }],
  },
  {
    origin: 'spoofed.test',
    spoof: true,
    records: [{ name: 'www.spoofed.test', type: 'A', data: '127.0.0.44' }],
  },
];

const ROOT_KEY = { flags: 257, algorithm: 13, key: Buffer.alloc(64, 7) };

let lab: LabDnsServer;
let client: DnsClient;

function serverOf(l: LabDnsServer): DnsServer {
  return { host: l.host, port: l.port };
}

function queriesFor(l: LabDnsServer, name: string) {
  return l.queries.filter((q) => q.name === name);
}

/** A loopback port where nothing listens (bound once, then released). */
async function deadPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

before(async () => {
  lab = await startDnsServer(ZONES);
  client = new DnsClient({ servers: [serverOf(lab)] });
});
after(async () => {
  await lab.stop();
});

describe('outcomes', () => {
  it('ok with AD from a secure zone, over UDP, naming the server', async () => {
    const r = await client.a('Secure.Test.');
    assert.equal(r.outcome, 'ok');
    assert.equal(r.secure, true);
    assert.deepEqual(r.values, ['127.0.0.10']);
    assert.equal(r.result.name, 'secure.test');
    assert.equal(r.result.rcode, 'NOERROR');
    assert.deepEqual(r.result.server, serverOf(lab));
    assert.equal(r.result.transport, 'udp');
  });

  it('ok without AD from an unsigned zone', async () => {
    const r = await client.a('www.plain.test');
    assert.equal(r.outcome, 'ok');
    assert.equal(r.secure, false);
    assert.deepEqual(r.values, ['127.0.0.20']);
    const v6 = await client.aaaa('www.plain.test');
    assert.deepEqual(v6.values, ['::1']);
  });

  it('nxdomain for a missing name (a secure denial keeps AD)', async () => {
    const r = await client.a('nope.secure.test');
    assert.equal(r.outcome, 'nxdomain');
    assert.equal(r.result.rcode, 'NXDOMAIN');
    assert.equal(r.secure, true);
    assert.deepEqual(r.values, []);
  });

  it('nodata for a name without that type and for an empty non-terminal', async () => {
    assert.equal((await client.aaaa('secure.test')).outcome, 'nodata');
    assert.equal((await client.a('below.secure.test')).outcome, 'nodata');
  });

  it('refused for a name outside every zone the server serves', async () => {
    const r = await client.a('elsewhere.test');
    assert.equal(r.outcome, 'refused');
    assert.equal(r.result.rcode, 'REFUSED');
  });

  it('servfail without EDE for a broken zone', async () => {
    const r = await client.a('www.broken.test');
    assert.equal(r.outcome, 'servfail');
    assert.deepEqual(r.result.ede, []);
    assert.equal(r.secure, false);
  });

  it('timeout when the server never answers; every try is sent', async () => {
    const quick = new DnsClient({ servers: [serverOf(lab)], timeoutMs: 200, tries: 2 });
    const before = queriesFor(lab, 'www.dropped.test').length;
    const r = await quick.a('www.dropped.test');
    assert.equal(r.outcome, 'timeout');
    assert.equal(r.result.server, undefined);
    assert.equal(r.result.rcode, undefined);
    assert.match(r.result.error ?? '', /no reply/);
    assert.equal(queriesFor(lab, 'www.dropped.test').length - before, 2);
  });

  it('error without sending anything for a name that cannot be encoded', async () => {
    const name = `${'x'.repeat(64)}.plain.test`;
    const r = await client.a(name);
    assert.equal(r.outcome, 'error');
    assert.match(r.result.error ?? '', /more than 63/);
    assert.equal(queriesFor(lab, name).length, 0);
  });

  it('error when no server can be reached', async () => {
    const dead = new DnsClient({ servers: [{ host: '127.0.0.1', port: await deadPort() }] });
    const r = await dead.a('www.plain.test');
    assert.equal(r.outcome, 'error');
    assert.match(r.result.error ?? '', /ECONNREFUSED/);
  });

  it('sends RD, DO and the CD bit only when asked', async () => {
    await client.query('www.plain.test', 'TXT');
    await client.query('www.plain.test', 'TXT', { cd: true });
    const logged = lab.queries.filter((q) => q.name === 'www.plain.test' && q.type === 'TXT');
    assert.deepEqual(
      logged.map((q) => [q.cd, q.do]),
      [
        [false, true],
        [true, true],
      ],
    );
  });
});

describe('typed lookups', () => {
  it('txt joins the strings of each record with nothing between them', async () => {
    const r = await client.txt('secure.test');
    assert.equal(r.outcome, 'ok');
    assert.deepEqual([...r.values].sort(), ['hello', 'v=spf1 ip4:192.0.2.0/24 -all']);
    assert.deepEqual((await client.txt('_dmarc.secure.test')).values, [LONG_TXT]);
  });

  it('mx sorts by preference and normalises exchanges', async () => {
    const r = await client.mx('secure.test');
    assert.deepEqual(r.values, [
      { preference: 10, exchange: 'mx1.secure.test' },
      { preference: 20, exchange: 'mx2.secure.test' },
    ]);
    assert.equal(r.nullMx, false);
    assert.equal(r.secure, true);
  });

  it('mx reports a null MX (RFC 7505) only when it is the only record', async () => {
    const only = await client.mx('plain.test');
    assert.equal(only.nullMx, true);
    assert.deepEqual(only.values, [{ preference: 0, exchange: '.' }]);
    const mixed = await client.mx('mixed.plain.test');
    assert.equal(mixed.nullMx, false);
    assert.deepEqual(mixed.values, [
      { preference: 0, exchange: '.' },
      { preference: 10, exchange: 'mx.plain.test' },
    ]);
  });

  it('tlsa decodes usage, selector, matching type and data', async () => {
    const r = await client.tlsa('_25._tcp.mx1.secure.test');
    assert.equal(r.outcome, 'ok');
    assert.equal(r.secure, true);
    assert.deepEqual(r.values, [{ usage: 3, selector: 1, matchingType: 1, data: TLSA_DIGEST }]);
  });

  it('follows a CNAME chain and reports it', async () => {
    const r = await client.a('alias.secure.test');
    assert.equal(r.outcome, 'ok');
    assert.deepEqual(r.values, ['127.0.0.12']);
    assert.deepEqual(r.result.cnameChain, ['hop.secure.test', 'www.secure.test']);
    assert.ok(r.result.answers.every((a) => a.type === 'A'));
  });

  it('cname returns the target without following it', async () => {
    const r = await client.cname('alias.secure.test');
    assert.deepEqual(r.values, ['hop.secure.test']);
    assert.deepEqual(r.result.cnameChain, []);
  });

  it('a CNAME to a missing name is nxdomain; into an unsigned zone loses AD', async () => {
    const dangling = await client.a('dangling.secure.test');
    assert.equal(dangling.outcome, 'nxdomain');
    assert.deepEqual(dangling.result.cnameChain, ['gone.secure.test']);
    const out = await client.a('out.secure.test');
    assert.equal(out.outcome, 'ok');
    assert.equal(out.secure, false);
    assert.deepEqual(out.result.cnameChain, ['www.plain.test']);
  });

  it('a CNAME loop is an error, not a hang', async () => {
    const r = await client.a('loop1.plain.test');
    assert.equal(r.outcome, 'error');
    assert.match(r.result.error ?? '', /CNAME loop/);
  });
});

describe('transport', () => {
  it('retries over TCP when the UDP reply has TC', async () => {
    const r = await client.a('www.truncated.test');
    assert.equal(r.outcome, 'ok');
    assert.deepEqual(r.values, ['127.0.0.43']);
    assert.equal(r.result.transport, 'tcp');
    assert.deepEqual(
      queriesFor(lab, 'www.truncated.test').map((q) => q.transport),
      ['udp', 'tcp'],
    );
  });

  it('gets an answer larger than the EDNS payload size over TCP', async () => {
    const r = await client.txt('big.plain.test');
    assert.equal(r.outcome, 'ok');
    assert.equal(r.values.length, 8);
    assert.equal(r.result.transport, 'tcp');
  });

  it('ignores garbage, wrong ids, wrong questions and replies from another port', async () => {
    const r = await client.a('www.spoofed.test');
    assert.equal(r.outcome, 'ok');
    assert.deepEqual(r.values, ['127.0.0.44']);
  });

  it('works over IPv6 loopback', async () => {
    const lab6 = await startDnsServer(ZONES, { host: '::1' });
    try {
      const c = new DnsClient({ servers: [{ host: '::1', port: lab6.port }] });
      const r = await c.a('www.plain.test');
      assert.equal(r.outcome, 'ok');
      assert.deepEqual(r.result.server, { host: '::1', port: lab6.port });
    } finally {
      await lab6.stop();
    }
  });
});

describe('several servers', () => {
  let silent: LabDnsServer;
  before(async () => {
    silent = await startDnsServer([{ origin: '.', drop: true, records: [] }]);
  });
  after(async () => {
    await silent.stop();
  });

  it('moves on to the next server when the first does not answer', async () => {
    const c = new DnsClient({ servers: [serverOf(silent), serverOf(lab)], timeoutMs: 1000, tries: 1 });
    const r = await c.a('www.plain.test');
    assert.equal(r.outcome, 'ok');
    assert.deepEqual(r.result.server, serverOf(lab));
    assert.equal(queriesFor(silent, 'www.plain.test').length, 1);
  });

  it('moves on when the first server is unreachable', async () => {
    const c = new DnsClient({ servers: [{ host: '127.0.0.1', port: await deadPort() }, serverOf(lab)] });
    const r = await c.a('www.plain.test');
    assert.equal(r.outcome, 'ok');
    assert.deepEqual(r.result.server, serverOf(lab));
  });

  it('asks every server once per try', async () => {
    const c = new DnsClient({ servers: [serverOf(silent), serverOf(silent)], timeoutMs: 200, tries: 3 });
    const r = await c.a('rounds.test');
    assert.equal(r.outcome, 'timeout');
    assert.equal(queriesFor(silent, 'rounds.test').length, 6);
  });

  it('stops at the total timeout', async () => {
    const c = new DnsClient({ servers: [serverOf(silent)], timeoutMs: 200, tries: 50, totalTimeoutMs: 300 });
    const r = await c.a('total.test');
    assert.equal(r.outcome, 'timeout');
    assert.ok(queriesFor(silent, 'total.test').length < 50);
  });

  it('keeps a SERVFAIL while another server answers', async () => {
    const failing = await startDnsServer([{ origin: '.', servfail: true, records: [] }]);
    try {
      const both = new DnsClient({ servers: [serverOf(failing), serverOf(lab)] });
      assert.equal((await both.a('www.plain.test')).outcome, 'ok');
      const alone = new DnsClient({ servers: [serverOf(failing)], tries: 3 });
      const r = await alone.a('www.plain.test');
      assert.equal(r.outcome, 'servfail');
      assert.equal(queriesFor(failing, 'www.plain.test').length, 2, 'one per client: not asked again');
    } finally {
      await failing.stop();
    }
  });
});

describe('DNSSEC', () => {
  it('reads Extended DNS Errors from the OPT record', async () => {
    const r = await client.a('www.bogus.test');
    assert.equal(r.outcome, 'servfail');
    assert.deepEqual(r.result.ede, [{ code: 6, text: 'DNSSEC Bogus' }]);
  });

  it('classifies a SERVFAIL that goes away with CD as bogus', async () => {
    const c = await client.classifyFailure('www.bogus.test', 'A');
    assert.equal(c.verdict, 'bogus');
    assert.equal(c.cdResult?.outcome, 'ok');
    assert.equal(c.cdResult?.secure, false);
    assert.deepEqual(
      queriesFor(lab, 'www.bogus.test').map((q) => q.cd),
      [false, false, true],
    );
  });

  it('classifies a SERVFAIL that stays with CD (and no DNSSEC EDE) as servfail', async () => {
    const c = await client.classifyFailure('www.broken.test', 'A');
    assert.equal(c.verdict, 'servfail');
    assert.equal(c.cdResult?.outcome, 'servfail');
  });

  it('does not classify an answer', async () => {
    const c = await client.classifyFailure('secure.test', 'A');
    assert.equal(c.verdict, 'not-servfail');
    assert.equal(c.cdResult, undefined);
  });

  it('checkValidating: the root DNSKEY with AD means a validating resolver', async () => {
    const validating = await startDnsServer([
      { origin: '.', secure: true, records: [{ name: '.', type: 'DNSKEY', data: ROOT_KEY }] },
    ]);
    const plain = await startDnsServer([
      { origin: '.', records: [{ name: '.', type: 'DNSKEY', data: ROOT_KEY }] },
    ]);
    try {
      const yes = await new DnsClient({ servers: [serverOf(validating)] }).checkValidating();
      assert.equal(yes.validating, true);
      assert.equal(yes.result.name, '.');
      assert.deepEqual(validating.queries[0], {
        name: '.',
        type: 'DNSKEY',
        cd: false,
        do: true,
        transport: 'udp',
      });
      const no = await new DnsClient({ servers: [serverOf(plain)] }).checkValidating();
      assert.equal(no.validating, false);
      assert.equal(no.result.outcome, 'ok');
      const refused = await client.checkValidating();
      assert.equal(refused.validating, false);
      assert.equal(refused.result.outcome, 'refused');
    } finally {
      await validating.stop();
      await plain.stop();
    }
  });
});

describe('options', () => {
  const bad: Array<[string, ConstructorParameters<typeof DnsClient>[0]]> = [
    ['no servers', { servers: [] }],
    ['host name instead of IP', { servers: [{ host: 'localhost', port: 53 }] }],
    ['port 0', { servers: [{ host: '127.0.0.1', port: 0 }] }],
    ['port too large', { servers: [{ host: '127.0.0.1', port: 65536 }] }],
    ['timeout 0', { servers: [{ host: '127.0.0.1', port: 53 }], timeoutMs: 0 }],
    ['negative tries', { servers: [{ host: '127.0.0.1', port: 53 }], tries: -1 }],
    ['fractional tries', { servers: [{ host: '127.0.0.1', port: 53 }], tries: 1.5 }],
    ['NaN total', { servers: [{ host: '127.0.0.1', port: 53 }], totalTimeoutMs: Number.NaN }],
  ];
  for (const [why, options] of bad) {
    it(`rejects ${why}`, () => {
      assert.throws(
        () => new DnsClient(options),
        (e: unknown) => e instanceof DnsError && e.code === 'DNS_BAD_OPTIONS',
      );
    });
  }

  it('uses the documented defaults', () => {
    const c = new DnsClient({ servers: [{ host: '::1', port: 53 }] });
    assert.equal(c.timeoutMs, 2000);
    assert.equal(c.tries, 2);
    assert.equal(c.totalTimeoutMs, undefined);
  });
});
