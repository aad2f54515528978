// The lab DNS server itself, spoken to with raw dns-packet messages: the DO/AD/CD semantics of
// a recursive resolver, truncation, TCP framing, the query log and the loopback-only rule.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import dnsPacket, { type DecodedPacket, type OptAnswer, type Packet } from 'dns-packet';
import { type LabDnsServer, type LabZone, startDnsServer } from '../lab/dns-server.js';

type Reply = DecodedPacket & { rcode: string };

const ZONES: LabZone[] = [
  {
    origin: 'signed.test',
    secure: true,
    records: [
      { name: 'signed.test', type: 'A', data: '127.0.0.1' },
      ...Array.from({ length: 4 }, (_, i) => ({
        name: 'wide.signed.test',
        type: 'TXT' as const,
        data: `${i} ${'z'.repeat(200)}`,
      })),
    ],
  },
  { origin: 'sub.signed.test', records: [{ name: 'sub.signed.test', type: 'A', data: '127.0.0.2' }] },
  { origin: 'bad.test', bogus: true, records: [{ name: 'bad.test', type: 'A', data: '127.0.0.3' }] },
];

function opt(doBit: boolean): OptAnswer {
  return {
    type: 'OPT',
    name: '.',
    udpPayloadSize: 1232,
    extendedRcode: 0,
    ednsVersion: 0,
    flags: doBit ? dnsPacket.DNSSEC_OK : 0,
    flag_do: doBit,
    options: [],
  };
}

function query(name: string, type: 'A' | 'TXT', flags: number, edns?: OptAnswer): Packet {
  return {
    type: 'query',
    id: 4242,
    flags: dnsPacket.RECURSION_DESIRED | flags,
    questions: [{ name, type }],
    additionals: edns ? [edns] : [],
  };
}

async function udpAsk(lab: LabDnsServer, packet: Packet): Promise<Reply> {
  const socket = dgram.createSocket('udp4');
  try {
    return await new Promise<Reply>((resolve, reject) => {
      socket.on('error', reject);
      socket.on('message', (bytes) => resolve(dnsPacket.decode(bytes) as Reply));
      socket.send(dnsPacket.encode(packet), lab.port, lab.host);
    });
  } finally {
    socket.close();
  }
}

/** Send several queries on one TCP connection and read as many framed replies. */
async function tcpAsk(lab: LabDnsServer, packets: Packet[]): Promise<Reply[]> {
  const socket = net.connect(lab.port, lab.host);
  const frames = packets.map((p) => {
    const body = dnsPacket.encode(p);
    const frame = Buffer.alloc(2 + body.length);
    frame.writeUInt16BE(body.length, 0);
    body.copy(frame, 2);
    return frame;
  });
  socket.write(Buffer.concat(frames));
  const replies: Reply[] = [];
  let buffered = Buffer.alloc(0);
  for await (const chunk of socket) {
    buffered = Buffer.concat([buffered, chunk as Buffer]);
    while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
      const length = buffered.readUInt16BE(0);
      replies.push(dnsPacket.decode(buffered.subarray(2, 2 + length)) as Reply);
      buffered = buffered.subarray(2 + length);
    }
    if (replies.length === packets.length) break;
  }
  socket.destroy();
  return replies;
}

function replyOpt(reply: Reply): OptAnswer | undefined {
  return reply.additionals?.find((a): a is OptAnswer => a.type === 'OPT');
}

let lab: LabDnsServer;
before(async () => {
  lab = await startDnsServer(ZONES);
});
after(async () => {
  await lab.stop();
});

describe('lab DNS server', () => {
  it('sets AD on secure data only when the query has DO or AD', async () => {
    const plain = await udpAsk(lab, query('signed.test', 'A', 0));
    assert.equal(plain.rcode, 'NOERROR');
    assert.equal(plain.flag_ad, false);
    assert.equal(plain.flag_ra, true);
    assert.equal((await udpAsk(lab, query('signed.test', 'A', 0, opt(true)))).flag_ad, true);
    assert.equal((await udpAsk(lab, query('signed.test', 'A', dnsPacket.AUTHENTIC_DATA))).flag_ad, true);
    assert.equal((await udpAsk(lab, query('signed.test', 'A', 0, opt(false)))).flag_ad, false);
  });

  it('answers a child zone with its own flags (longest origin wins)', async () => {
    const reply = await udpAsk(lab, query('sub.signed.test', 'A', 0, opt(true)));
    assert.equal(reply.flag_ad, false);
    assert.deepEqual(
      reply.answers?.map((a) => (a.type === 'A' ? a.data : a.type)),
      ['127.0.0.2'],
    );
  });

  it('copies DO into its OPT record and CD into the header', async () => {
    const reply = await udpAsk(lab, query('signed.test', 'A', dnsPacket.CHECKING_DISABLED, opt(true)));
    assert.equal(replyOpt(reply)?.flag_do, true);
    assert.equal(reply.flag_cd, true);
    const noEdns = await udpAsk(lab, query('signed.test', 'A', 0));
    assert.equal(replyOpt(noEdns), undefined);
  });

  it('bogus: SERVFAIL with EDE 6, or the data without AD when CD is set', async () => {
    const fail = await udpAsk(lab, query('bad.test', 'A', 0, opt(true)));
    assert.equal(fail.rcode, 'SERVFAIL');
    const ede = replyOpt(fail)?.options.find((o) => (o.code as number) === 15);
    assert.equal(ede?.data?.readUInt16BE(0), 6);
    assert.equal(ede?.data?.subarray(2).toString(), 'DNSSEC Bogus');
    const cd = await udpAsk(lab, query('bad.test', 'A', dnsPacket.CHECKING_DISABLED, opt(true)));
    assert.equal(cd.rcode, 'NOERROR');
    assert.equal(cd.flag_ad, false);
    assert.equal(cd.answers?.length, 1);
  });

  it('puts the zone SOA in the authority section of NXDOMAIN and NODATA', async () => {
    const nx = await udpAsk(lab, query('missing.signed.test', 'A', 0));
    assert.equal(nx.rcode, 'NXDOMAIN');
    assert.equal(nx.authorities?.[0]?.type, 'SOA');
    assert.equal(nx.authorities?.[0]?.name, 'signed.test');
    const nodata = await udpAsk(lab, query('signed.test', 'TXT', 0));
    assert.equal(nodata.rcode, 'NOERROR');
    assert.equal(nodata.answers?.length, 0);
    assert.equal(nodata.authorities?.[0]?.type, 'SOA');
  });

  it('truncates UDP replies larger than 512 octets without EDNS, or than the EDNS size', async () => {
    const small = await udpAsk(lab, query('wide.signed.test', 'TXT', 0));
    assert.equal(small.flag_tc, true);
    assert.equal(small.answers?.length, 0);
    const edns = await udpAsk(lab, query('wide.signed.test', 'TXT', 0, opt(false)));
    assert.equal(edns.flag_tc, false);
    assert.equal(edns.answers?.length, 4);
  });

  it('answers several framed queries on one TCP connection and logs the transport', async () => {
    const before = lab.queries.length;
    const replies = await tcpAsk(lab, [query('signed.test', 'A', 0), query('wide.signed.test', 'TXT', 0)]);
    assert.deepEqual(
      replies.map((r) => r.answers?.length),
      [1, 4],
    );
    assert.deepEqual(
      lab.queries.slice(before).map((q) => [q.name, q.transport]),
      [
        ['signed.test', 'tcp'],
        ['wide.signed.test', 'tcp'],
      ],
    );
  });

  it('survives garbage and keeps answering', async () => {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) =>
      socket.send(Buffer.from([1, 2, 3]), lab.port, lab.host, () => resolve()),
    );
    socket.close();
    assert.equal((await udpAsk(lab, query('signed.test', 'A', 0))).rcode, 'NOERROR');
  });

  it('uses the same given port for UDP and TCP', async () => {
    const probe = await startDnsServer(ZONES);
    const port = probe.port;
    await probe.stop();
    const fixed = await startDnsServer(ZONES, { port });
    try {
      assert.equal(fixed.port, port);
      assert.equal((await udpAsk(fixed, query('signed.test', 'A', 0))).rcode, 'NOERROR');
      assert.equal((await tcpAsk(fixed, [query('signed.test', 'A', 0)]))[0]?.rcode, 'NOERROR');
    } finally {
      await fixed.stop();
    }
  });

  it('only binds loopback addresses', async () => {
    for (const host of ['0.0.0.0', '192.0.2.1', '::', 'localhost']) {
      await assert.rejects(startDnsServer(ZONES, { host }), /not a loopback address/);
    }
  });

  it('rejects a record that is not inside its zone', async () => {
    await assert.rejects(
      startDnsServer([{ origin: 'a.test', records: [{ name: 'b.test', type: 'A', data: '127.0.0.1' }] }]),
      /not in zone a\.test/,
    );
  });
});
