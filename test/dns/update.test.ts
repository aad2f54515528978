// The UPDATE message replaceRRsets sends (RFC 2136 §2), captured by a loopback DNS server written here with
// dns-packet: it answers the SOA and RRset reads like an authoritative server, records the UPDATE and answers
// with a response signed by the same key (RFC 8945 §4.3.1). Checked: zone section, the prerequisites (value
// dependent, or "RRset does not exist"), the updates (delete RRset with class ANY, add with class IN), the
// TXT split into 255-octet strings, and that no UPDATE is sent when the server already holds the records.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { signMessage, splitTsig } from '../../src/dns/tsig.js';
import type { TsigKey } from '../../src/dns/tsig-key.js';
import { replaceRRsets } from '../../src/dns/update.js';

const KEY: TsigKey = { name: 'upd', algorithm: 'hmac-sha256', secret: Buffer.alloc(32, 5) };
const ZONE = 'layout.test';
/** What the fake server holds: name -> TTL and TXT strings of its one record. */
type Held = Map<string, { ttl: number; strings: Buffer[] }>;
const held: Held = new Map([['old.layout.test', { ttl: 300, strings: [Buffer.from('old value')] }]]);
const updates: Buffer[] = [];
/** What the fake server's zone holds after an UPDATE (it records UPDATEs; it does not interpret them). */
let afterUpdate: Held = new Map();
let server: net.Server;
let port: number;

function answer(request: Buffer): Buffer {
  const opcode = (request[2]! >> 3) & 0xf;
  if (opcode === 5) {
    updates.push(request);
    for (const [name, value] of afterUpdate) held.set(name, value);
    const split = splitTsig(request)!;
    const header = Buffer.from(request.subarray(0, 12));
    header.writeUInt16BE(0x8000 | (5 << 11), 2);
    header.writeUInt16BE(0, 4);
    for (const o of [6, 8, 10]) header.writeUInt16BE(0, o);
    return signMessage(header, KEY, Math.floor(Date.now() / 1000), split.tsig.mac).bytes;
  }
  const query = dnsPacket.decode(request);
  const q = query.questions![0]!;
  const soa = {
    name: ZONE,
    type: 'SOA' as const,
    ttl: 300,
    data: { mname: 'ns.test', rname: 'h.test', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 300 },
  };
  const txt = held.get(q.name.toLowerCase());
  return dnsPacket.encode({
    type: 'response',
    id: query.id,
    flags: dnsPacket.AUTHORITATIVE_ANSWER,
    questions: [q],
    answers: q.type === 'TXT' && txt ? [{ name: q.name, type: 'TXT', ttl: txt.ttl, data: txt.strings }] : [],
    authorities: q.type === 'SOA' || !txt ? [soa] : [],
  });
}

before(async () => {
  server = net.createServer((socket) => {
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 2 || buffered.length < 2 + buffered.readUInt16BE(0)) return;
      const reply = answer(buffered.subarray(2, 2 + buffered.readUInt16BE(0)));
      const length = Buffer.alloc(2);
      length.writeUInt16BE(reply.length);
      socket.end(Buffer.concat([length, reply]));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
});

after(() => server.close());

/** Records of one section as [name, type, class, ttl, rdata hex]. */
type Row = [string, string | number, string | number, number, string];

/** Walk the sections of an UPDATE (zone, prerequisite, update) by hand: dns-packet has no class NONE/ANY rdata rules. */
function sections(message: Buffer): { zone: [string, number, number]; prereqs: Row[]; updates: Row[] } {
  const readName = (pos: number): [string, number] => {
    const labels: string[] = [];
    while (message[pos] !== 0) {
      if ((message[pos]! & 0xc0) === 0xc0) throw new Error('unexpected compression in our own message');
      labels.push(message.subarray(pos + 1, pos + 1 + message[pos]!).toString());
      pos += 1 + message[pos]!;
    }
    return [labels.join('.'), pos + 1];
  };
  let [name, pos] = readName(12);
  const zone: [string, number, number] = [name, message.readUInt16BE(pos), message.readUInt16BE(pos + 2)];
  pos += 4;
  const rows = (count: number): Row[] =>
    Array.from({ length: count }, () => {
      [name, pos] = readName(pos);
      const length = message.readUInt16BE(pos + 8);
      const row: Row = [
        name,
        message.readUInt16BE(pos),
        message.readUInt16BE(pos + 2),
        message.readUInt32BE(pos + 4),
        message.subarray(pos + 10, pos + 10 + length).toString('hex'),
      ];
      pos += 10 + length;
      return row;
    });
  const prereqs = rows(message.readUInt16BE(6));
  return { zone, prereqs, updates: rows(message.readUInt16BE(8)) };
}

const txtHex = (...strings: string[]) =>
  Buffer.concat(strings.flatMap((s) => [Buffer.from([Buffer.byteLength(s)]), Buffer.from(s)])).toString(
    'hex',
  );

describe('the UPDATE message', () => {
  it('zone, value-dependent and does-not-exist prerequisites, delete then add, TXT split at 255 octets', async () => {
    updates.length = 0;
    const long = 'a'.repeat(300);
    afterUpdate = new Map([
      ['old.layout.test', { ttl: 60, strings: [Buffer.from('new value')] }],
      ['new.layout.test', { ttl: 120, strings: [Buffer.from('a'.repeat(255)), Buffer.from('a'.repeat(45))] }],
    ]);
    const result = await replaceRRsets(
      [
        { name: 'old.layout.test', type: 'TXT', ttl: 60, records: ['new value'] },
        { name: 'NEW.layout.test.', type: 'TXT', ttl: 120, records: [long] },
      ],
      { server: { host: '127.0.0.1', port }, key: KEY },
    );
    assert.equal(result.zone, ZONE);
    assert.equal(updates.length, 1);
    const message = updates[0]!;
    assert.equal(message.readUInt16BE(2), 5 << 11, 'opcode UPDATE, no flags');
    assert.equal(message.readUInt16BE(10), 1, 'ARCOUNT: the TSIG record');
    const { zone, prereqs, updates: ups } = sections(message);
    assert.deepEqual(zone, [ZONE, 6, 1]); // SOA, IN
    assert.deepEqual(prereqs, [
      ['old.layout.test', 16, 1, 0, txtHex('old value')], // §2.4.2 RRset exists (value dependent)
      ['new.layout.test', 16, 254, 0, ''], // §2.4.3 RRset does not exist: class NONE
    ]);
    assert.deepEqual(ups, [
      ['old.layout.test', 16, 255, 0, ''], // §2.5.2 delete an RRset: class ANY
      ['old.layout.test', 16, 1, 60, txtHex('new value')], // §2.5.1 add
      ['new.layout.test', 16, 1, 120, txtHex('a'.repeat(255), 'a'.repeat(45))],
    ]);
  });

  it('an UPDATE answered NOERROR that did not land is UPDATE_NOT_APPLIED', async () => {
    afterUpdate = new Map();
    await assert.rejects(
      replaceRRsets([{ name: 'skipped.layout.test', type: 'TXT', ttl: 60, records: ['x'] }], {
        server: { host: '127.0.0.1', port },
        key: KEY,
      }),
      { code: 'UPDATE_NOT_APPLIED' },
    );
  });

  it('sends no UPDATE when the server already holds exactly these records', async () => {
    updates.length = 0;
    held.set('same.layout.test', { ttl: 300, strings: [Buffer.from('kept')] });
    const result = await replaceRRsets(
      [{ name: 'same.layout.test', type: 'TXT', ttl: 300, records: ['kept'] }],
      {
        server: { host: '127.0.0.1', port },
        key: KEY,
      },
    );
    assert.deepEqual(result, { zone: ZONE, changed: [] });
    assert.equal(updates.length, 0);
  });

  it('bad input is UPDATE_BAD_INPUT before anything is sent', async () => {
    updates.length = 0;
    const bad = [
      { name: 'x.layout.test', type: 'TLSA' as const, ttl: 60, records: ['3 1 1 zz'] },
      { name: 'x..layout.test', type: 'TXT' as const, ttl: 60, records: ['v'] },
      { name: 'x.layout.test', type: 'TXT' as const, ttl: -1, records: ['v'] },
      { name: 'x.layout.test', type: 'TXT' as const, ttl: 60, records: ['v', 'v'] },
    ];
    for (const change of bad) {
      await assert.rejects(replaceRRsets([change], { server: { host: '127.0.0.1', port }, key: KEY }), {
        code: 'UPDATE_BAD_INPUT',
      });
    }
    assert.equal(updates.length, 0);
  });
});
