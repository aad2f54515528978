// Lab DNS server for integration tests: behaves like a recursive resolver (RD/RA, follows CNAMEs,
// sets AD for DNSSEC-secure data) over zones given as plain record lists. UDP and TCP on one port,
// loopback only (LAB-NOTES: tests never talk to anything but 127.0.0.0/8 and ::1).
//
//   const lab = await startDnsServer([
//     { origin: 'example.test', secure: true, records: [
//       { name: 'example.test', type: 'MX', data: { preference: 10, exchange: 'mx.example.test' } },
//       { name: 'mx.example.test', type: 'A', data: '127.0.0.25' },
//     ] },
//   ]);
//   const client = new DnsClient({ servers: [{ host: lab.host, port: lab.port }] });
//   ...
//   await lab.stop();
//
// Records use dns-packet's answer shapes ({ name, type, ttl?, data }), full names, default TTL 300.
// Each name is answered from the zone with the longest matching origin ("." matches every name):
// - data of the asked type: NOERROR with it; a CNAME (for another type): the CNAME, then the target
//   is answered the same way while it stays inside the lab's zones;
// - a name with records (or below which records exist) but none of the type: NODATA (NOERROR, empty
//   answer, SOA in authority); any other name inside a zone: NXDOMAIN (with SOA); outside all: REFUSED.
// Per zone flags (they apply when a query, or the CNAME chain it follows, touches the zone):
//   secure    AD on answers, only when the query had DO or AD (RFC 6840 §5.7/§5.8, RFC 3225)
//   bogus     SERVFAIL with EDE 6 "DNSSEC Bogus" (RFC 8914), unless the query has CD: then the data, no AD
//   servfail  SERVFAIL, no EDE, with or without CD
//   drop      never answers (clients time out)
//   truncate  UDP answers carry TC and no records, so clients must retry over TCP
//   spoof     before the real UDP answer, sends the client garbage, an NXDOMAIN with the wrong id, one
//             for another question, and one with the right id from another port: a client must ignore all
// A root zone { origin: '.', secure: true, records: [{ name: '.', type: 'DNSKEY', data: {...} }] }
// makes the root DNSKEY query come back with AD, as from a validating resolver.
// Replies larger than the query's EDNS payload size (512 without EDNS) are truncated over UDP.
// `queries` logs every query received, in order, with its transport.
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket, {
  type Answer,
  type DecodedPacket,
  type OptAnswer,
  type Packet,
  type PacketOpt,
} from 'dns-packet';

export type LabRecord = Exclude<Answer, OptAnswer>;

export interface LabZone {
  /** The zone's apex, e.g. "example.test" or "." for the root. */
  origin: string;
  records: LabRecord[];
  secure?: boolean;
  bogus?: boolean;
  servfail?: boolean;
  drop?: boolean;
  truncate?: boolean;
  spoof?: boolean;
}

export interface LabQuery {
  name: string;
  type: string;
  cd: boolean;
  /** The EDNS DO bit. */
  do: boolean;
  transport: 'udp' | 'tcp';
}

export interface LabDnsServer {
  host: string;
  port: number;
  queries: LabQuery[];
  stop(): Promise<void>;
}

export interface LabDnsOptions {
  /** A loopback address (default 127.0.0.1). */
  host?: string;
  /** Default 0: an ephemeral port, the same for UDP and TCP. */
  port?: number;
}

type Message = DecodedPacket & { rcode?: string };
type Transport = LabQuery['transport'];

const DEFAULT_TTL = 300;
const MAX_CHAIN = 16;
const EDE_DNSSEC_BOGUS = 6;
/** Mirrors of the RCODE numbers dns-packet puts in the low 4 flag bits. */
const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

export async function startDnsServer(zones: LabZone[], options: LabDnsOptions = {}): Promise<LabDnsServer> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopback(host)) throw new Error(`lab DNS server: ${host} is not a loopback address`);
  const lab = new LabResolver(zones);
  const queries: LabQuery[] = [];
  const family = net.isIPv6(host) ? 'udp6' : 'udp4';

  for (let attempt = 0; ; attempt++) {
    const udp = dgram.createSocket(family);
    const spoofer = dgram.createSocket(family);
    await bindUdp(udp, host, options.port ?? 0);
    await bindUdp(spoofer, host, 0);
    const port = udp.address().port;
    const connections = new Set<net.Socket>();
    const tcp = net.createServer((socket) => serveTcp(socket, lab, queries, connections));
    try {
      await listenTcp(tcp, host, port);
    } catch (err) {
      udp.close();
      spoofer.close();
      // An ephemeral UDP port whose TCP twin is taken: pick another.
      if (options.port === undefined || options.port === 0) {
        if (attempt < 20) continue;
      }
      throw err;
    }
    udp.on('message', (bytes, peer) => serveUdp(bytes, peer, udp, spoofer, lab, queries));
    return {
      host,
      port,
      queries,
      stop: async () => {
        for (const c of connections) c.destroy();
        await Promise.all([
          new Promise<void>((resolve) => udp.close(() => resolve())),
          new Promise<void>((resolve) => spoofer.close(() => resolve())),
          new Promise<void>((resolve) => tcp.close(() => resolve())),
        ]);
      },
    };
  }
}

function isLoopback(host: string): boolean {
  return (net.isIPv4(host) && host.startsWith('127.')) || host === '::1';
}

function bindUdp(socket: dgram.Socket, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      socket.on('error', () => {}); // e.g. ICMP errors for a client that went away
      resolve();
    });
  });
}

function listenTcp(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function serveUdp(
  bytes: Buffer,
  peer: dgram.RemoteInfo,
  udp: dgram.Socket,
  spoofer: dgram.Socket,
  lab: LabResolver,
  queries: LabQuery[],
): void {
  const handled = lab.handle(bytes, 'udp', queries);
  if (handled === undefined) return;
  const send = (socket: dgram.Socket, bytes: Buffer) => {
    try {
      socket.send(bytes, peer.port, peer.address);
    } catch {
      // the server was stopped meanwhile
    }
  };
  if (!handled.spoof) {
    send(udp, handled.reply);
    return;
  }
  for (const fake of lab.spoofs(handled.query)) send(udp, fake);
  send(spoofer, lab.forged(handled.query, handled.query.id ?? 0));
  setTimeout(() => send(udp, handled.reply), 20);
}

function serveTcp(
  socket: net.Socket,
  lab: LabResolver,
  queries: LabQuery[],
  connections: Set<net.Socket>,
): void {
  connections.add(socket);
  socket.on('close', () => connections.delete(socket));
  socket.on('error', () => socket.destroy());
  let buffered = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
      const length = buffered.readUInt16BE(0);
      const handled = lab.handle(buffered.subarray(2, 2 + length), 'tcp', queries);
      buffered = buffered.subarray(2 + length);
      if (handled === undefined) continue;
      const frame = Buffer.alloc(2 + handled.reply.length);
      frame.writeUInt16BE(handled.reply.length, 0);
      handled.reply.copy(frame, 2);
      socket.write(frame);
    }
  });
}

interface Handled {
  query: Message;
  reply: Buffer;
  spoof: boolean;
}

/** The resolver logic, independent of sockets. */
class LabResolver {
  private readonly zones: LabZone[];

  constructor(zones: LabZone[]) {
    this.zones = zones.map((z) => ({ ...z, origin: normalize(z.origin) }));
    for (const zone of this.zones) {
      for (const record of zone.records) {
        const home = this.zoneFor(record.name);
        if (home?.origin !== zone.origin) {
          throw new Error(
            `lab DNS server: record ${record.name} ${record.type} is not in zone ${zone.origin}`,
          );
        }
      }
    }
  }

  /** Answer one query message; undefined when there is nothing to send (garbage, or a drop zone). */
  handle(bytes: Buffer, transport: Transport, log: LabQuery[]): Handled | undefined {
    let query: Message;
    try {
      query = dnsPacket.decode(bytes) as Message;
    } catch {
      return undefined;
    }
    if (query.type !== 'query') return undefined;
    const question = query.questions?.[0];
    const opt = query.additionals?.find((a): a is OptAnswer => a.type === 'OPT');
    if (question === undefined || query.questions?.length !== 1) {
      return { query, reply: encode(query, opt, RCODE.FORMERR, {}), spoof: false };
    }
    log.push({
      name: normalize(question.name),
      type: question.type,
      cd: query.flag_cd,
      do: opt?.flag_do ?? false,
      transport,
    });

    const outcome = this.resolve(normalize(question.name), question.type);
    const touched = outcome.zones;
    if (touched.some((z) => z.drop)) return undefined;
    const spoof = transport === 'udp' && touched.some((z) => z.spoof);
    if (touched.length === 0) return { query, reply: encode(query, opt, RCODE.REFUSED, {}), spoof };
    if (touched.some((z) => z.servfail))
      return { query, reply: encode(query, opt, RCODE.SERVFAIL, {}), spoof };
    const bogus = touched.some((z) => z.bogus);
    if (bogus && !query.flag_cd) {
      const ede = { code: EDE_DNSSEC_BOGUS, text: 'DNSSEC Bogus' };
      return { query, reply: encode(query, opt, RCODE.SERVFAIL, { ede }), spoof };
    }
    const wantsDnssec = (opt?.flag_do ?? false) || query.flag_ad;
    const ad = wantsDnssec && !bogus && touched.every((z) => z.secure);
    const sections = { answers: outcome.answers, authorities: outcome.authorities, ad };
    if (transport === 'udp') {
      const limit = opt ? Math.max(512, opt.udpPayloadSize) : 512;
      const full = encode(query, opt, outcome.rcode, sections);
      if (!touched.some((z) => z.truncate) && full.length <= limit) return { query, reply: full, spoof };
      return { query, reply: encode(query, opt, outcome.rcode, { ad, tc: true }), spoof };
    }
    return { query, reply: encode(query, opt, outcome.rcode, sections), spoof };
  }

  /** Bad replies sent from the real port before the real answer: garbage, wrong id, wrong question. */
  spoofs(query: Message): Buffer[] {
    const question = query.questions![0]!;
    const id = query.id ?? 0;
    const garbage = Buffer.from('this is not a DNS message at all');
    const wrongId = this.forged(query, (id + 1) % 65536);
    const wrongQuestion = dnsPacket.encode({
      type: 'response',
      id,
      flags: RCODE.NXDOMAIN,
      questions: [{ ...question, name: `other-${question.name}` }],
    });
    return [garbage, wrongId, wrongQuestion];
  }

  /** An NXDOMAIN for the query's question with the given id. */
  forged(query: Message, id: number): Buffer {
    return dnsPacket.encode({ type: 'response', id, flags: RCODE.NXDOMAIN, questions: query.questions });
  }

  private zoneFor(name: string): LabZone | undefined {
    const n = normalize(name);
    let best: LabZone | undefined;
    for (const zone of this.zones) {
      if (!inZone(n, zone.origin)) continue;
      if (best === undefined || depth(zone.origin) > depth(best.origin)) best = zone;
    }
    return best;
  }

  /** The name is an apex or an empty non-terminal (RFC 8020: not NXDOMAIN when names exist below it). */
  private hasNamesBelow(name: string): boolean {
    return this.zones.some(
      (z) => inZone(z.origin, name) || z.records.some((r) => inZone(normalize(r.name), name)),
    );
  }

  private resolve(
    name: string,
    type: string,
  ): { zones: LabZone[]; rcode: number; answers: LabRecord[]; authorities: LabRecord[] } {
    const zones: LabZone[] = [];
    const answers: LabRecord[] = [];
    let current = name;
    for (let hop = 0; hop <= MAX_CHAIN; hop++) {
      const zone = this.zoneFor(current);
      if (zone === undefined) break; // the chain leaves the lab: answer with what we have
      if (!zones.includes(zone)) zones.push(zone);
      const here = zone.records.filter((r) => normalize(r.name) === current);
      const wanted = here.filter((r) => r.type === type);
      if (wanted.length > 0)
        return { zones, rcode: RCODE.NOERROR, answers: [...answers, ...wanted], authorities: [] };
      const cname = type === 'CNAME' ? undefined : here.find((r) => r.type === 'CNAME');
      if (cname?.type === 'CNAME') {
        answers.push(cname);
        current = normalize(cname.data);
        continue;
      }
      const rcode = here.length > 0 || this.hasNamesBelow(current) ? RCODE.NOERROR : RCODE.NXDOMAIN;
      return { zones, rcode, answers, authorities: [soaOf(zone)] };
    }
    return { zones, rcode: RCODE.NOERROR, answers, authorities: [] };
  }
}

function encode(
  query: Message,
  opt: OptAnswer | undefined,
  rcode: number,
  parts: {
    answers?: LabRecord[];
    authorities?: LabRecord[];
    ad?: boolean;
    tc?: boolean;
    ede?: { code: number; text: string };
  },
): Buffer {
  let flags = rcode | dnsPacket.RECURSION_AVAILABLE;
  if (query.flag_rd) flags |= dnsPacket.RECURSION_DESIRED;
  // RFC 4035 §3.2.2: the CD bit is copied from the query.
  if (query.flag_cd) flags |= dnsPacket.CHECKING_DISABLED;
  if (parts.ad) flags |= dnsPacket.AUTHENTIC_DATA;
  if (parts.tc) flags |= dnsPacket.TRUNCATED_RESPONSE;
  const packet: Packet = {
    type: 'response',
    id: query.id ?? 0,
    flags,
    questions: query.questions ?? [],
    answers: (parts.answers ?? []).map(copyRecord),
    authorities: (parts.authorities ?? []).map(copyRecord),
  };
  if (opt !== undefined) {
    const options: PacketOpt[] = [];
    if (parts.ede) {
      const text = Buffer.from(parts.ede.text, 'utf8');
      const data = Buffer.alloc(2 + text.length);
      data.writeUInt16BE(parts.ede.code, 0);
      text.copy(data, 2);
      options.push({ code: 15, data } as unknown as PacketOpt);
    }
    const replyOpt: OptAnswer = {
      type: 'OPT',
      name: '.',
      udpPayloadSize: 1232,
      extendedRcode: 0,
      ednsVersion: 0,
      // RFC 3225 §3: the DO bit is copied to the response.
      flags: opt.flag_do ? dnsPacket.DNSSEC_OK : 0,
      flag_do: opt.flag_do,
      options,
    };
    packet.additionals = [replyOpt];
  }
  return dnsPacket.encode(packet);
}

/** dns-packet's TXT encoder rewrites the data array in place; never hand it the caller's records. */
function copyRecord(record: LabRecord): LabRecord {
  const data = Array.isArray(record.data) ? [...record.data] : record.data;
  return { ...record, ttl: record.ttl ?? DEFAULT_TTL, data } as LabRecord;
}

function soaOf(zone: LabZone): LabRecord {
  const own = zone.records.find((r) => r.type === 'SOA' && normalize(r.name) === zone.origin);
  if (own !== undefined) return own;
  const under = (label: string) => (zone.origin === '.' ? label : `${label}.${zone.origin}`);
  return {
    name: zone.origin,
    type: 'SOA',
    ttl: DEFAULT_TTL,
    data: {
      mname: under('ns'),
      rname: under('hostmaster'),
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum: DEFAULT_TTL,
    },
  };
}

function normalize(name: string): string {
  const lower = name.toLowerCase();
  return lower === '.' || !lower.endsWith('.') ? lower || '.' : lower.slice(0, -1);
}

function inZone(name: string, origin: string): boolean {
  return origin === '.' || name === origin || name.endsWith(`.${origin}`);
}

function depth(origin: string): number {
  return origin === '.' ? 0 : origin.split('.').length;
}
