// DNS messages on the client side: the query (RFC 1035 §4.1 with EDNS0, RFC 6891, and the DO bit,
// RFC 3225), which replies belong to it (RFC 5452 §9.1: id, question), how a reply reads as an outcome
// (RFC 2308 NXDOMAIN/NODATA, RFC 1034 §3.6.2 CNAME chains) and its Extended DNS Errors (RFC 8914).
import dnsPacket, { type DecodedPacket, type OptAnswer, type PacketOpt, type RecordType } from 'dns-packet';
import { normalizeName, sameName } from './names.js';
import type { DnsOutcome, DnsRecord, DnsResult, ExtendedDnsError } from './resolver.js';

/** RFC 6891 §6.2.5 / DNS flag day 2020: a payload size that avoids IP fragmentation. */
export const UDP_PAYLOAD_SIZE = 1232;
/** Longest CNAME chain followed; longer chains are treated like loops. */
export const MAX_CNAME_CHAIN = 16;
/** A DNS message is at most 65535 octets (the TCP length prefix is 16 bits, RFC 1035 §4.2.2). */
export const MAX_MESSAGE_SIZE = 65535;
/** RFC 8914 §2: the EDNS option code of Extended DNS Errors. */
export const EDE_OPTION_CODE = 15;

/** A decoded message, with the header fields dns-packet decodes but its types leave out. */
export type DnsMessage = DecodedPacket & { rcode?: string; opcode?: string };

export interface QuerySpec {
  id: number;
  name: string;
  type: RecordType;
  cd?: boolean;
}

/** An EDNS0 OPT record (RFC 6891 §6.1.2) offering UDP_PAYLOAD_SIZE; `dnssecOk` is the DO bit (RFC 3225 §3). */
export function ednsOpt(dnssecOk: boolean, options: PacketOpt[] = []): OptAnswer {
  return {
    type: 'OPT',
    name: '.',
    udpPayloadSize: UDP_PAYLOAD_SIZE,
    extendedRcode: 0,
    ednsVersion: 0,
    flags: dnssecOk ? dnsPacket.DNSSEC_OK : 0,
    flag_do: dnssecOk,
    options,
  };
}

/** The query: RD, AD (RFC 6840 §5.7: we understand AD), CD if asked, EDNS0 OPT with DO set. */
export function encodeQuery(q: QuerySpec): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: q.id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.AUTHENTIC_DATA | (q.cd ? dnsPacket.CHECKING_DISABLED : 0),
    questions: [{ name: q.name, type: q.type, class: 'IN' }],
    additionals: [ednsOpt(true)],
  });
}

/** Decode any bytes; undefined for anything that is not a well-formed DNS message. */
export function decodeMessage(bytes: Buffer): DnsMessage | undefined {
  if (bytes.length < 12 || bytes.length > MAX_MESSAGE_SIZE) return undefined;
  try {
    return dnsPacket.decode(bytes) as DnsMessage;
  } catch {
    return undefined;
  }
}

/** RFC 5452 §9.1: a reply belongs to our query only if it is a response with our id and our question. */
export function replyMatches(reply: DnsMessage, query: QuerySpec): boolean {
  if (reply.type !== 'response' || reply.id !== query.id) return false;
  if (reply.opcode !== undefined && reply.opcode !== 'QUERY') return false;
  const questions = reply.questions ?? [];
  if (questions.length !== 1) return false;
  const q = questions[0]!;
  return sameName(q.name, query.name) && q.type === query.type && (q.class ?? 'IN') === 'IN';
}

/** RFC 8914 §2: each option 15 in the OPT record is INFO-CODE (16 bits) then UTF-8 EXTRA-TEXT. */
export function extendedErrors(reply: DnsMessage): ExtendedDnsError[] {
  const errors: ExtendedDnsError[] = [];
  for (const record of reply.additionals ?? []) {
    if (record.type !== 'OPT') continue;
    for (const option of record.options ?? []) {
      const data = option.data;
      if ((option.code as number) !== EDE_OPTION_CODE || !data || data.length < 2) continue;
      // RFC 8914 §2: EXTRA-TEXT SHOULD NOT be NUL-terminated; drop NULs some servers add anyway (a
      // loop, not /\0+$/, which backtracks quadratically over a long run of NULs followed by text).
      let end = data.length;
      while (end > 2 && data[end - 1] === 0) end--;
      const text = data.subarray(2, end).toString('utf8');
      errors.push(text === '' ? { code: data.readUInt16BE(0) } : { code: data.readUInt16BE(0), text });
    }
  }
  return errors;
}

export interface ChainResult {
  answers: DnsRecord[];
  cnameChain: string[];
  /** Set when the chain loops or is longer than MAX_CNAME_CHAIN. */
  problem?: string;
}

/**
 * RFC 1034 §3.6.2: a resolver puts the CNAME chain in the answer section before the data.
 * Starting at `name`, follow CNAMEs until records of `type` are found (a CNAME query is not followed).
 */
export function followCnames(records: readonly DnsRecord[], name: string, type: RecordType): ChainResult {
  const cnameChain: string[] = [];
  let current = normalizeName(name);
  for (;;) {
    const here = records.filter((r) => sameName(r.name, current));
    const answers = here.filter((r) => r.type === type);
    const cname = here.find((r) => r.type === 'CNAME');
    if (answers.length > 0 || type === 'CNAME' || !cname || cname.type !== 'CNAME') {
      return { answers, cnameChain };
    }
    const target = normalizeName(cname.data);
    if (target === normalizeName(name) || cnameChain.includes(target)) {
      return { answers: [], cnameChain, problem: `CNAME loop at ${target}` };
    }
    if (cnameChain.length >= MAX_CNAME_CHAIN) {
      return { answers: [], cnameChain, problem: `CNAME chain longer than ${MAX_CNAME_CHAIN}` };
    }
    cnameChain.push(target);
    current = target;
  }
}

export type ReplySummary = Omit<DnsResult, 'name' | 'type' | 'server' | 'transport'>;

/** What a matching reply says about `name`/`type`. */
export function readReply(reply: DnsMessage, name: string, type: RecordType): ReplySummary {
  const rcode = reply.rcode ?? 'NOERROR';
  const chain = followCnames(
    (reply.answers ?? []).filter((r): r is DnsRecord => r.type !== 'OPT'),
    name,
    type,
  );
  const summary: ReplySummary = {
    outcome: outcomeOf(rcode, chain.answers.length > 0),
    rcode,
    secure: reply.flag_ad,
    answers: chain.answers,
    cnameChain: chain.cnameChain,
    ede: extendedErrors(reply),
  };
  if (chain.problem !== undefined) return { ...summary, outcome: 'error', answers: [], error: chain.problem };
  if (summary.outcome === 'error') return { ...summary, error: `server answered ${rcode}` };
  if (summary.outcome === 'nxdomain' || summary.outcome === 'nodata') {
    // RFC 2308 §5: a denial is cached for the smaller of the SOA record's TTL and its MINIMUM field.
    const soa = (reply.authorities ?? []).find((r) => r.type === 'SOA');
    if (soa?.type === 'SOA')
      return { ...summary, negativeTtl: Math.min(soa.ttl ?? 0, soa.data.minimum ?? 0) };
  }
  return summary;
}

function outcomeOf(rcode: string, hasAnswers: boolean): DnsOutcome {
  switch (rcode) {
    case 'NOERROR':
      return hasAnswers ? 'ok' : 'nodata';
    case 'NXDOMAIN':
      return 'nxdomain';
    case 'SERVFAIL':
      return 'servfail';
    case 'REFUSED':
      return 'refused';
    default:
      return 'error';
  }
}
