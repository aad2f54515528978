// Publishing RRsets by DNS UPDATE (RFC 2136) signed with TSIG (RFC 8945): find the zone by SOA,
// read the current RRsets from the server, then replace them in ONE UPDATE message guarded by
// prerequisites (so nothing is half-applied and two runners cannot interleave), over TCP.
import { randomInt } from 'node:crypto';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import { splitTxt } from '../common/txt.js';
import { formatTlsa, parseTlsa } from '../dane/tlsa.js';
import { normalizeName, queryNameProblem } from './names.js';
import { responseMacValid, signMessage, splitTsig, TSIG_ERRORS, wireName } from './tsig.js';
import type { TsigKey } from './tsig-key.js';
import { DnsUpdateError, type DnsUpdateErrorCode } from './update-error.js';
import { MAX_MESSAGE_SIZE } from './wire.js';

export { parseTsigKey, readTsigKeyFile, type TsigAlgorithm, type TsigKey } from './tsig-key.js';
export { DnsUpdateError, type DnsUpdateErrorCode } from './update-error.js';

export interface UpdateServer {
  host: string;
  port: number;
}
export interface RRsetReplacement {
  /** owner, absolute, no trailing dot needed */
  name: string;
  type: 'TLSA' | 'TXT';
  ttl: number;
  /** Presentation rdata: TLSA "3 1 1 ab12..." ; TXT the unquoted value (split into 255-byte strings by us). */
  records: string[]; // empty = delete the RRset
  /**
   * TXT only: replace just the records whose value starts with this text (case-insensitive, e.g. "v=spf1"),
   * keeping the other TXT records at the name (an apex holds SPF beside site verifications).
   */
  replacePrefix?: string;
}
export interface PublishOptions {
  server: UpdateServer;
  key: TsigKey;
  /** zone found by SOA lookup at `server` when absent */
  zone?: string;
  timeoutMs?: number;
  /** now() for TSIG time signed; tests pass a skewed clock */
  now?: () => number;
}
export interface PublishResult {
  zone: string;
  changed: Array<{ name: string; type: string; before: string[]; after: string[] }>;
}

const TYPE_CODE = { SOA: 6, TXT: 16, TLSA: 52 } as const;
const CLASS_IN = 1;
/** RFC 2136 §2.4, §2.5: NONE and ANY give prerequisites and deletions their meaning. */
const CLASS_NONE = 254;
const CLASS_ANY = 255;
/** RFC 2136 §1.3: opcode 5 is UPDATE. */
const OPCODE_UPDATE = 5;
const DEFAULT_TIMEOUT_MS = 5000;
/** RFC 2181 §8: a TTL is at most 2^31 - 1. */
const MAX_TTL = 2 ** 31 - 1;

/** RFC 1035 §4.1.1 and RFC 2136 §2.2: the RCODEs an UPDATE answer can carry. */
const RCODES: Record<number, { name: string; code?: DnsUpdateErrorCode; meaning: string }> = {
  1: { name: 'FORMERR', code: 'UPDATE_BAD_RESPONSE', meaning: 'the server could not parse the update' },
  2: { name: 'SERVFAIL', code: 'UPDATE_SERVFAIL', meaning: 'the server failed to apply the update' },
  4: { name: 'NOTIMP', code: 'UPDATE_REFUSED', meaning: 'the server does not implement DNS UPDATE' },
  5: { name: 'REFUSED', code: 'UPDATE_REFUSED', meaning: 'the server refused the update (its policy)' },
  6: { name: 'YXDOMAIN', code: 'UPDATE_PREREQ_FAILED', meaning: 'a name that should not exist exists' },
  7: { name: 'YXRRSET', code: 'UPDATE_PREREQ_FAILED', meaning: 'an RRset that should not exist exists' },
  8: { name: 'NXRRSET', code: 'UPDATE_PREREQ_FAILED', meaning: 'an RRset is not as it was read' },
  9: {
    name: 'NOTAUTH',
    code: 'UPDATE_NOTAUTH',
    meaning: 'the server is not authoritative for the zone or the key is not allowed',
  },
  10: { name: 'NOTZONE', code: 'UPDATE_NOTZONE', meaning: 'a name is not within the zone' },
};

/** One change, checked and encoded. */
interface Planned {
  name: string;
  type: 'TLSA' | 'TXT';
  ttl: number;
  rdata: Buffer[];
  after: string[];
  replacePrefix?: string;
}

/** The RRset on the server now. */
interface Current {
  ttl: number;
  rdata: Buffer[];
  before: string[];
}

/**
 * Replace each RRset atomically in ONE UPDATE message: read the current RRsets from `server` first (TCP query),
 * then send prerequisites "RRset exists (value dependent)" with exactly what was read, or "RRset does not exist"
 * (RFC 2136 §2.4.2/§2.4.3), delete the RRset, add the new records. A change by someone else in between gives
 * UPDATE_PREREQ_FAILED, and nothing is applied. RRsets already equal are left alone (no message when nothing changes).
 */
export async function replaceRRsets(
  changes: RRsetReplacement[],
  options: PublishOptions,
): Promise<PublishResult> {
  const link = new Link(options.server, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const planned = changes.map(plan);
  const seen = new Set<string>();
  for (const p of planned) {
    const id = `${p.name}/${p.type}`;
    if (seen.has(id)) badInput(`${p.name} ${p.type} is given twice`);
    seen.add(id);
  }
  const zone =
    options.zone === undefined ? await findZone(link, planned) : checkedZone(options.zone, planned);

  const pending: Array<{ plan: Planned; current: Current }> = [];
  for (const p of planned) {
    const current = await readRRset(link, p.name, p.type);
    const target = withKeptRecords(p, current);
    if (!sameRRset(current, target)) pending.push({ plan: target, current });
  }
  const result: PublishResult = {
    zone,
    changed: pending.map(({ plan: p, current }) => ({
      name: p.name,
      type: p.type,
      before: current.before,
      after: p.after,
    })),
  };
  if (pending.length === 0) return result;

  const message = updateMessage(zone, pending);
  const timeSigned = Math.floor((options.now ?? Date.now)() / 1000);
  const signed = signMessage(message, options.key, timeSigned);
  const reply = await link.exchange(signed.bytes, 'UPDATE');
  checkUpdateReply(reply, message.readUInt16BE(0), options.key, signed.mac, timeSigned, zone, link);
  // RFC 2136 §3.4.2: a server silently skips some updates (a TXT added at a CNAME): read back what landed.
  for (const { plan: p } of pending) {
    const landed = await readRRset(link, p.name, p.type);
    if (!sameRRset(landed, p)) {
      throw new DnsUpdateError(
        'UPDATE_NOT_APPLIED',
        `${link.where} accepted the update, but ${p.name} ${p.type} reads back as ${JSON.stringify(landed.before)} instead of ${JSON.stringify(p.after)}: the server skipped it (is the name a CNAME?)`,
      );
    }
  }
  return result;
}

function badInput(message: string): never {
  throw new DnsUpdateError('UPDATE_BAD_INPUT', message);
}

/** Check one replacement and encode its records (RFC 6698 §2.1 TLSA, RFC 1035 §3.3.14 TXT). */
function plan(change: RRsetReplacement): Planned {
  const name = normalizeName(change.name);
  const problem = queryNameProblem(name);
  if (problem !== undefined || name === '.')
    badInput(`"${change.name}" is not a domain name${problem ? `: ${problem}` : ''}`);
  if (!Number.isInteger(change.ttl) || change.ttl < 0 || change.ttl > MAX_TTL) {
    badInput(`${name} ${change.type}: TTL ${change.ttl} is not 0-${MAX_TTL}`);
  }
  const rdata: Buffer[] = [];
  const after: string[] = [];
  for (const text of change.records) {
    if (change.type === 'TLSA') {
      let record: ReturnType<typeof parseTlsa>;
      try {
        record = parseTlsa(text);
      } catch (err) {
        badInput(`${name} TLSA "${text}": ${(err as Error).message}`);
      }
      rdata.push(tlsaRdata(record.usage, record.selector, record.matchingType, record.data));
      after.push(formatTlsa(record));
    } else {
      rdata.push(txtRdata(splitTxt(text).map((s) => Buffer.from(s, 'utf8'))));
      after.push(text);
    }
  }
  const unique = new Set(rdata.map((r) => r.toString('hex')));
  if (unique.size !== rdata.length) badInput(`${name} ${change.type}: the same record is given twice`);
  if (change.replacePrefix !== undefined && change.type !== 'TXT') {
    badInput(`${name} ${change.type}: replacePrefix is for TXT records only`);
  }
  return { name, type: change.type, ttl: change.ttl, rdata, after, replacePrefix: change.replacePrefix };
}

/** The plan plus the records at the name that `replacePrefix` leaves alone, kept first as they are. */
function withKeptRecords(p: Planned, current: Current): Planned {
  const prefix = p.replacePrefix?.toLowerCase();
  if (prefix === undefined) return p;
  const kept = current.before.flatMap((text, i) =>
    text.toLowerCase().startsWith(prefix) ? [] : [{ text, rdata: current.rdata[i]! }],
  );
  return {
    ...p,
    rdata: [...kept.map((k) => k.rdata), ...p.rdata],
    after: [...kept.map((k) => k.text), ...p.after],
  };
}

function tlsaRdata(usage: number, selector: number, matchingType: number, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([usage, selector, matchingType]), data]);
}

function txtRdata(strings: Buffer[]): Buffer {
  return Buffer.concat(strings.flatMap((s) => [Buffer.from([s.length]), s]));
}

function inZone(name: string, zone: string): boolean {
  return zone === '.' || name === zone || name.endsWith(`.${zone}`);
}

function checkedZone(zone: string, planned: Planned[]): string {
  const z = normalizeName(zone);
  const problem = queryNameProblem(z);
  if (problem !== undefined) badInput(`zone "${zone}" is not a domain name: ${problem}`);
  for (const p of planned) {
    // RFC 2136 §3.4.1.3: every name must be within the zone
    if (!inZone(p.name, z))
      throw new DnsUpdateError('UPDATE_NOTZONE', `${p.name} is not within the zone ${z}`);
  }
  return z;
}

/**
 * The zone the names live in: ask the server for SOA at each name; an authoritative server answers
 * the SOA itself at the apex, or puts the zone's SOA in the authority section (RFC 2308 §3).
 */
async function findZone(link: Link, planned: Planned[]): Promise<string> {
  const zones = new Set<string>();
  for (const p of planned) {
    const reply = await link.query(p.name, 'SOA');
    const soa = [...(reply.answers ?? []), ...(reply.authorities ?? [])].find(
      (r) => r.type === 'SOA' && inZone(p.name, normalizeName(r.name)),
    );
    if (!reply.flag_aa || soa === undefined || !['NOERROR', 'NXDOMAIN'].includes(reply.rcode ?? '')) {
      throw new DnsUpdateError(
        'UPDATE_ZONE_NOT_FOUND',
        `${link.where} is not authoritative for a zone holding ${p.name} (it answered ${reply.rcode ?? 'NOERROR'}${reply.flag_aa ? '' : ' without AA'}); give the zone with --zone or use the zone's primary server`,
      );
    }
    zones.add(normalizeName(soa.name));
  }
  if (zones.size > 1) {
    throw new DnsUpdateError(
      'UPDATE_NOTZONE',
      `the names are in different zones (${[...zones].join(', ')}): publish them separately`,
    );
  }
  return [...zones][0]!;
}

/** The RRset as the server holds it now (RRSIGs left out), by a TCP query without recursion. */
async function readRRset(link: Link, name: string, type: 'TLSA' | 'TXT'): Promise<Current> {
  const reply = await link.query(name, type);
  const rcode = reply.rcode ?? 'NOERROR';
  if (rcode === 'REFUSED' || rcode === 'NOTAUTH') {
    throw new DnsUpdateError(
      'UPDATE_NOTAUTH',
      `${link.where} answered ${rcode} when asked for ${name} ${type}: it does not serve the zone of that name`,
    );
  }
  if (rcode !== 'NOERROR' && rcode !== 'NXDOMAIN') {
    const known = Object.values(RCODES).find((r) => r.name === rcode);
    throw new DnsUpdateError(
      known?.code ?? 'UPDATE_BAD_RESPONSE',
      `${link.where} answered ${rcode} when asked for ${name} ${type}`,
    );
  }
  if (!reply.flag_aa) {
    throw new DnsUpdateError(
      'UPDATE_NOTAUTH',
      `${link.where} is not authoritative for ${name} (no AA in its answer)`,
    );
  }
  const current: Current = { ttl: 0, rdata: [], before: [] };
  for (const r of reply.answers ?? []) {
    if (normalizeName(r.name) !== name) continue;
    if (type === 'TLSA' && r.type === 'TLSA') {
      const d = r.data;
      current.rdata.push(tlsaRdata(d.usage, d.selector, d.matchingType, d.certificate));
      current.before.push(
        formatTlsa({
          usage: d.usage,
          selector: d.selector,
          matchingType: d.matchingType,
          data: d.certificate,
        }),
      );
    } else if (type === 'TXT' && r.type === 'TXT') {
      const strings = (Array.isArray(r.data) ? r.data : [r.data]).map((s) => Buffer.from(s));
      current.rdata.push(txtRdata(strings));
      current.before.push(Buffer.concat(strings).toString('utf8'));
    } else {
      continue;
    }
    current.ttl = r.ttl ?? 0;
  }
  return current;
}

function sameRRset(current: Current, p: Planned): boolean {
  const key = (list: Buffer[]) =>
    list
      .map((b) => b.toString('hex'))
      .sort()
      .join(',');
  if (key(current.rdata) !== key(p.rdata)) return false;
  return p.rdata.length === 0 || current.ttl === p.ttl;
}

/** One resource record in uncompressed wire form (RFC 1035 §4.1.3). */
function rr(name: string, type: number, klass: number, ttl: number, rdata: Buffer = Buffer.alloc(0)): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(klass, 2);
  fixed.writeUInt32BE(ttl, 4);
  fixed.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([wireName(name), fixed, rdata]);
}

/** RFC 2136 §2: header, zone section (the zone's SOA), prerequisites, updates; no additional data yet. */
function updateMessage(zone: string, pending: Array<{ plan: Planned; current: Current }>): Buffer {
  const prereqs: Buffer[] = [];
  const updates: Buffer[] = [];
  for (const { plan: p, current } of pending) {
    const type = TYPE_CODE[p.type];
    if (current.rdata.length === 0) {
      prereqs.push(rr(p.name, type, CLASS_NONE, 0)); // §2.4.3 RRset does not exist
    } else {
      for (const r of current.rdata) prereqs.push(rr(p.name, type, CLASS_IN, 0, r)); // §2.4.2 value dependent
      updates.push(rr(p.name, type, CLASS_ANY, 0)); // §2.5.2 delete an RRset
    }
    for (const r of p.rdata) updates.push(rr(p.name, type, CLASS_IN, p.ttl, r)); // §2.5.1 add to an RRset
  }
  const header = Buffer.alloc(12);
  header.writeUInt16BE(randomInt(0, 65536), 0);
  header.writeUInt16BE(OPCODE_UPDATE << 11, 2);
  header.writeUInt16BE(1, 4); // ZOCOUNT
  header.writeUInt16BE(prereqs.length, 6);
  header.writeUInt16BE(updates.length, 8);
  const question = Buffer.concat([wireName(zone), Buffer.from([0, TYPE_CODE.SOA, 0, CLASS_IN])]);
  const message = Buffer.concat([header, question, ...prereqs, ...updates]);
  if (message.length > MAX_MESSAGE_SIZE - 1024)
    badInput(`the update is ${message.length} octets, too big for one DNS message`);
  return message;
}

/** RFC 8945 §5.3 and RFC 2136 §3.8: what the server's answer to the UPDATE says. */
function checkUpdateReply(
  reply: Buffer,
  id: number,
  key: TsigKey,
  requestMac: Buffer,
  timeSigned: number,
  zone: string,
  link: Link,
): void {
  const bad = (why: string): never => {
    throw new DnsUpdateError('UPDATE_BAD_RESPONSE', `${link.where}: ${why}`);
  };
  if (reply.length < 12) bad('the answer is shorter than a DNS header');
  const flags = reply.readUInt16BE(2);
  if (reply.readUInt16BE(0) !== id || (flags & 0x8000) === 0 || ((flags >> 11) & 0xf) !== OPCODE_UPDATE) {
    bad('the answer is not a reply to our UPDATE (id, QR or opcode differ)');
  }
  let signed: ReturnType<typeof splitTsig>;
  try {
    signed = splitTsig(reply);
  } catch (err) {
    bad(`the answer is malformed: ${(err as Error).message}`);
  }
  const rcode = flags & 0xf;
  if (signed !== undefined && signed.tsig.error !== 0) {
    const tsigError = TSIG_ERRORS[signed.tsig.error] ?? `TSIG error ${signed.tsig.error}`;
    const other = signed.tsig.otherData;
    switch (tsigError) {
      case 'BADSIG':
        throw new DnsUpdateError(
          'TSIG_BADSIG',
          `${link.where} rejected the signature of key "${key.name}" (BADSIG): the secret differs from the server's`,
        );
      case 'BADKEY':
        throw new DnsUpdateError(
          'TSIG_BADKEY',
          `${link.where} does not accept key "${key.name}" (${key.algorithm}) for zone ${zone} (BADKEY): it knows no key of that name and algorithm, or (Knot) its ACL does not allow this key to update this zone`,
        );
      case 'BADTIME': {
        // RFC 8945 §5.2.3: the BADTIME answer carries the server's time in "other data"
        const serverTime = other.length === 6 ? other.readUIntBE(0, 6) : undefined;
        const skew = serverTime === undefined ? undefined : serverTime - timeSigned;
        throw new DnsUpdateError(
          'TSIG_BADTIME',
          `${link.where} rejected the signature time (BADTIME)${skew === undefined ? '' : `: its clock is ${Math.abs(skew)} s ${skew >= 0 ? 'ahead of' : 'behind'} ours`}; fix the clock (NTP) on one side`,
          skew === undefined ? {} : { clockSkewSeconds: skew },
        );
      }
      default:
        bad(`the server answered with ${tsigError}`);
    }
  }
  if (signed !== undefined) {
    if (!responseMacValid(signed.unsigned, signed.tsig, key, requestMac))
      bad("the answer's TSIG signature does not verify");
    if (Math.abs(signed.tsig.timeSigned - timeSigned) > signed.tsig.fudge)
      bad("the answer's TSIG time is outside the fudge");
  } else if (rcode === 0) {
    bad('the answer is not signed with TSIG, so its success cannot be trusted');
  }
  if (rcode === 0) return;
  const known = RCODES[rcode];
  if (known?.code === undefined) bad(`the server answered RCODE ${rcode}`);
  throw new DnsUpdateError(
    known!.code!,
    `${link.where} answered ${known!.name} for the update of zone ${zone}: ${known!.meaning}`,
  );
}

/** DNS over TCP to one server (RFC 1035 §4.2.2, RFC 7766): one message per connection. */
class Link {
  readonly where: string;

  constructor(
    readonly server: UpdateServer,
    readonly timeoutMs: number,
  ) {
    this.where = `DNS server ${net.isIPv6(server.host) ? `[${server.host}]` : server.host}:${server.port}`;
  }

  /** An authoritative query (no RD, RFC 1035 §4.1.1), decoded. */
  async query(name: string, type: 'SOA' | 'TLSA' | 'TXT') {
    const id = randomInt(0, 65536);
    const bytes = dnsPacket.encode({ type: 'query', id, flags: 0, questions: [{ name, type, class: 'IN' }] });
    const reply = await this.exchange(bytes, `query ${name} ${type}`);
    let decoded: dnsPacket.DecodedPacket & { rcode?: string };
    try {
      decoded = dnsPacket.decode(reply) as typeof decoded;
    } catch (err) {
      throw new DnsUpdateError(
        'UPDATE_BAD_RESPONSE',
        `${this.where}: malformed answer to ${name} ${type}: ${(err as Error).message}`,
      );
    }
    if (decoded.id !== id || decoded.type !== 'response') {
      throw new DnsUpdateError(
        'UPDATE_BAD_RESPONSE',
        `${this.where}: the answer to ${name} ${type} does not match the query`,
      );
    }
    return decoded;
  }

  exchange(message: Buffer, what: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: this.server.host, port: this.server.port });
      let received = Buffer.alloc(0);
      let done = false;
      const finish = (result: Buffer | DnsUpdateError): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.destroy();
        if (result instanceof DnsUpdateError) reject(result);
        else resolve(result);
      };
      const timer = setTimeout(
        () =>
          finish(
            new DnsUpdateError(
              'UPDATE_TIMEOUT',
              `${this.where}: no answer to the ${what} within ${this.timeoutMs} ms`,
            ),
          ),
        this.timeoutMs,
      );
      socket.on('error', (err) =>
        finish(
          new DnsUpdateError('UPDATE_UNREACHABLE', `${this.where}: ${err.message} (${what})`, { cause: err }),
        ),
      );
      socket.on('close', () =>
        finish(
          new DnsUpdateError(
            'UPDATE_UNREACHABLE',
            `${this.where}: connection closed before the answer to the ${what}`,
          ),
        ),
      );
      socket.on('connect', () => {
        const length = Buffer.alloc(2);
        length.writeUInt16BE(message.length, 0);
        socket.write(Buffer.concat([length, message]));
      });
      socket.on('data', (chunk: Buffer) => {
        // The 16-bit length prefix bounds one message to MAX_MESSAGE_SIZE; never hold more.
        received = Buffer.concat([received, chunk.subarray(0, 2 + MAX_MESSAGE_SIZE - received.length)]);
        if (received.length < 2) return;
        const length = received.readUInt16BE(0);
        if (received.length >= 2 + length) finish(Buffer.from(received.subarray(2, 2 + length)));
      });
    });
  }
}
