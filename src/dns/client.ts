// DnsClient: a stub resolver client that sends every query to configured recursive resolvers,
// over UDP (RFC 1035 §4.2.1) with EDNS0 and the DO bit, falling back to TCP (RFC 1035 §4.2.2,
// RFC 7766 §5) when the reply is truncated. Used because node:dns can neither ask for TLSA nor show AD.
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import type { RecordType } from 'dns-packet';
import { DnsError } from './error.js';
import { normalizeName, queryNameProblem } from './names.js';
import { type DnsResult, type DnsServer, type QueryOptions, ResolverBase } from './resolver.js';
import {
  type DnsMessage,
  decodeMessage,
  encodeQuery,
  MAX_MESSAGE_SIZE,
  type QuerySpec,
  readReply,
  replyMatches,
} from './wire.js';

export interface DnsClientOptions {
  /** Recursive resolvers, asked in order. */
  servers: DnsServer[];
  /** Wait for one reply this long (default 2000 ms). */
  timeoutMs?: number;
  /** Rounds over all servers (default 2). */
  tries?: number;
  /** Give up on a query after this long in all (default: no limit beyond timeoutMs x tries x servers). */
  totalTimeoutMs?: number;
}

/** The result of sending one query to one server. */
type Exchange = { kind: 'reply'; message: DnsMessage } | NoReply;
type NoReply = { kind: 'timeout' | 'error'; reason: string };

const DEFINITE: ReadonlySet<DnsResult['outcome']> = new Set(['ok', 'nodata', 'nxdomain']);

export class DnsClient extends ResolverBase {
  readonly servers: readonly DnsServer[];
  readonly timeoutMs: number;
  readonly tries: number;
  readonly totalTimeoutMs: number | undefined;

  constructor(options: DnsClientOptions) {
    super();
    if (options.servers.length === 0) throw new DnsError('DNS_BAD_OPTIONS', 'no DNS servers given');
    for (const s of options.servers) {
      if (net.isIP(s.host) === 0) {
        throw new DnsError('DNS_BAD_OPTIONS', `DNS server "${s.host}" is not an IP address`);
      }
      if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) {
        throw new DnsError('DNS_BAD_OPTIONS', `DNS server ${s.host}: port ${s.port} is not 1-65535`);
      }
    }
    this.servers = options.servers.map((s) => ({ host: s.host, port: s.port }));
    this.timeoutMs = positive('timeoutMs', options.timeoutMs ?? 2000);
    this.tries = positive('tries', options.tries ?? 2);
    if (!Number.isInteger(this.tries)) {
      throw new DnsError('DNS_BAD_OPTIONS', `tries must be a whole number, got ${this.tries}`);
    }
    this.totalTimeoutMs =
      options.totalTimeoutMs === undefined ? undefined : positive('totalTimeoutMs', options.totalTimeoutMs);
  }

  /**
   * Ask each server in turn, for `tries` rounds, until one gives an answer (ok, nodata, nxdomain).
   * A server that replies SERVFAIL, REFUSED or another error RCODE is not asked again; if no server
   * answers, the first such reply is the result, else `timeout` (or `error` when no server could
   * be reached at all).
   */
  async query(name: string, type: RecordType, options: QueryOptions = {}): Promise<DnsResult> {
    const qname = normalizeName(name);
    const nameProblem = queryNameProblem(qname);
    if (nameProblem !== undefined) {
      return noReply(qname, type, 'error', `cannot query "${name}": ${nameProblem}`);
    }

    const deadline =
      this.totalTimeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + this.totalTimeoutMs;
    const failedServers = new Set<number>();
    let firstFailure: DnsResult | undefined;
    let timedOut = false;
    const reasons: string[] = [];

    for (let round = 0; round < this.tries; round++) {
      for (const [index, server] of this.servers.entries()) {
        if (failedServers.has(index)) continue;
        if (deadline - Date.now() <= 0) break;
        const asked = await this.ask(server, { name: qname, type, cd: options.cd === true }, deadline);
        if (asked.kind !== 'answered') {
          timedOut ||= asked.kind === 'timeout';
          if (!reasons.includes(asked.reason)) reasons.push(asked.reason);
          continue;
        }
        if (DEFINITE.has(asked.result.outcome)) return asked.result;
        failedServers.add(index);
        firstFailure ??= asked.result;
      }
    }
    if (firstFailure !== undefined) return firstFailure;
    if (reasons.length === 0) reasons.push('total timeout reached');
    return noReply(qname, type, timedOut || deadline <= Date.now() ? 'timeout' : 'error', reasons.join('; '));
  }

  /** One exchange with one server: UDP, then TCP if the UDP reply was truncated. */
  private async ask(
    server: DnsServer,
    question: Omit<QuerySpec, 'id'>,
    deadline: number,
  ): Promise<{ kind: 'answered'; result: DnsResult } | NoReply> {
    const waitMs = () => Math.max(1, Math.min(this.timeoutMs, deadline - Date.now()));
    const udp = await exchangeUdp(server, { ...question, id: randomInt(0, 65536) }, waitMs());
    const tcp =
      udp.kind === 'reply' && udp.message.flag_tc
        ? await exchangeTcp(server, { ...question, id: randomInt(0, 65536) }, waitMs())
        : undefined;
    const exchange = tcp ?? udp;
    if (exchange.kind !== 'reply') return exchange;
    const { name, type } = question;
    const reply = readReply(exchange.message, name, type);
    return { kind: 'answered', result: { name, type, ...reply, server, transport: tcp ? 'tcp' : 'udp' } };
  }
}

function positive(option: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new DnsError('DNS_BAD_OPTIONS', `${option} must be a positive number, got ${value}`);
  }
  return value;
}

function noReply(name: string, type: RecordType, outcome: 'timeout' | 'error', error: string): DnsResult {
  return { name, type, outcome, secure: false, answers: [], cnameChain: [], ede: [], error };
}

export function describeServer(server: DnsServer): string {
  return net.isIPv6(server.host) ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}

/**
 * Send over a connected UDP socket (the kernel drops datagrams from any other address/port) and
 * wait for a datagram that decodes and matches id and question; anything else is ignored.
 */
function exchangeUdp(server: DnsServer, spec: QuerySpec, waitMs: number): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
    let done = false;
    const finish = (exchange: Exchange): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.removeAllListeners('message');
      try {
        socket.close();
      } catch {
        // already closed after an error
      }
      resolve(exchange);
    };
    const timer = setTimeout(
      () => finish({ kind: 'timeout', reason: `${describeServer(server)}: no reply within ${waitMs} ms` }),
      waitMs,
    );
    const failed = (err: Error) =>
      finish({ kind: 'error', reason: `${describeServer(server)}: ${err.message}` });
    socket.on('error', failed);
    socket.on('message', (bytes) => {
      const message = decodeMessage(bytes);
      if (message !== undefined && replyMatches(message, spec)) finish({ kind: 'reply', message });
    });
    // With a callback, dgram reports a failed connect to the callback instead of an 'error' event.
    socket.connect(server.port, server.host, (err?: Error) => {
      if (err) return failed(err);
      try {
        socket.send(encodeQuery(spec), (sendErr) => sendErr && failed(sendErr));
      } catch (sendErr) {
        failed(sendErr as Error);
      }
    });
  });
}

/** RFC 1035 §4.2.2: each message over TCP is preceded by its 16-bit length. One query per connection. */
function exchangeTcp(server: DnsServer, spec: QuerySpec, waitMs: number): Promise<Exchange> {
  return new Promise((resolve) => {
    const where = `${describeServer(server)} (TCP)`;
    const socket = net.connect({ host: server.host, port: server.port });
    let received = Buffer.alloc(0);
    let done = false;
    const finish = (exchange: Exchange): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(exchange);
    };
    const timer = setTimeout(
      () => finish({ kind: 'timeout', reason: `${where}: no reply within ${waitMs} ms` }),
      waitMs,
    );
    socket.on('error', (err) => finish({ kind: 'error', reason: `${where}: ${err.message}` }));
    socket.on('close', () =>
      finish({ kind: 'error', reason: `${where}: connection closed before the reply` }),
    );
    socket.on('connect', () => {
      const query = encodeQuery(spec);
      const frame = Buffer.alloc(2 + query.length);
      frame.writeUInt16BE(query.length, 0);
      query.copy(frame, 2);
      socket.write(frame);
    });
    socket.on('data', (chunk: Buffer) => {
      // Never hold more than one message: the length prefix bounds it to MAX_MESSAGE_SIZE.
      received = Buffer.concat([received, chunk.subarray(0, 2 + MAX_MESSAGE_SIZE - received.length)]);
      if (received.length < 2) return;
      const length = received.readUInt16BE(0);
      if (received.length < 2 + length) return;
      const message = decodeMessage(received.subarray(2, 2 + length));
      if (message === undefined || !replyMatches(message, spec)) {
        finish({ kind: 'error', reason: `${where}: reply is malformed or does not match the query` });
      } else {
        finish({ kind: 'reply', message });
      }
    });
  });
}
