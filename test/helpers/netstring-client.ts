// A small Postfix socketmap client (netstrings, http://cr.yp.to/proto/netstrings.txt; Postfix socketmap_table(5)):
// the request is the netstring "NAME KEY", the reply a netstring such as "OK secure match=..." or "NOTFOUND ".
// One query is outstanding per connection at a time (no pipelining), as Postfix itself asks; the benchmark
// opens several connections to get concurrency. Kept lean: it runs in the benchmark's measuring loop.
//
//   const client = await NetstringClient.connect({ host: '127.0.0.1', port: 8461 });
//   await client.query('postfix example.test'); // 'OK secure match=mx.example.test servername=hostname'
//   client.close();
import net from 'node:net';

export type Endpoint = { host: string; port: number } | { path: string };

/** Replies longer than this are a protocol error (the peer caps its own at 64 KiB). */
const MAX_REPLY = 64 * 1024;

export function encodeNetstring(payload: string | Buffer): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat([Buffer.from(`${data.length}:`, 'ascii'), data, Buffer.from(',', 'ascii')]);
}

/**
 * The first complete netstring in `buffer`: its payload and the bytes it used, undefined when more bytes are
 * needed; throws on anything that cannot become a netstring.
 */
export function decodeNetstring(
  buffer: Buffer,
  limit = MAX_REPLY,
): { payload: Buffer; used: number } | undefined {
  const colon = buffer.indexOf(0x3a);
  const digits = colon === -1 ? buffer.length : colon;
  for (let i = 0; i < digits; i++) {
    const c = buffer[i]!;
    if (c < 0x30 || c > 0x39) throw new Error(`netstring: bad length byte 0x${c.toString(16)} at ${i}`);
  }
  if (digits > 10 || (colon === -1 && digits === 10)) throw new Error('netstring: length too long');
  if (colon === -1) return undefined;
  if (colon === 0) throw new Error('netstring: empty length');
  const length = Number(buffer.toString('ascii', 0, colon));
  if (length > limit) throw new Error(`netstring: ${length} bytes is over the limit of ${limit}`);
  const end = colon + 1 + length;
  if (buffer.length <= end) return undefined;
  if (buffer[end] !== 0x2c) throw new Error(`netstring: missing "," after ${length} bytes`);
  return { payload: buffer.subarray(colon + 1, end), used: end + 1 };
}

export class NetstringClient {
  private readonly socket: net.Socket;
  private buffered: Buffer = Buffer.alloc(0);
  private pending: { resolve: (reply: string) => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('socketmap connection closed by the server')));
  }

  static async connect(endpoint: Endpoint, timeoutMs = 10_000): Promise<NetstringClient> {
    return new NetstringClient(await connectSocket(endpoint, timeoutMs));
  }

  /** Send one request payload ("NAME KEY") and wait for its reply payload. */
  query(request: string): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending) return Promise.reject(new Error('socketmap client: a query is already outstanding'));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(encodeNetstring(request));
    });
  }

  /** Write raw bytes (for hostile-input tests). */
  writeRaw(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    let decoded: ReturnType<typeof decodeNetstring>;
    try {
      decoded = decodeNetstring(this.buffered);
    } catch (err) {
      this.fail(err as Error);
      this.socket.destroy();
      return;
    }
    if (decoded === undefined) return;
    this.buffered = this.buffered.subarray(decoded.used);
    const pending = this.pending;
    this.pending = undefined;
    if (pending) pending.resolve(decoded.payload.toString('utf8'));
    else this.fail(new Error('socketmap client: a reply arrived with no query outstanding'));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(err);
  }
}

/**
 * A closed loop on one connection, for benchmarks: send a request, wait for its whole reply, send the next
 * (requests taken round-robin), until stop(). The client must cost as little CPU per query as it can, since
 * it shares the machine with the daemon it measures: requests are encoded once, replies are read into one
 * reused buffer (net.connect's `onread`, no Buffer per chunk) and compared in place with the expected one.
 */
export class ClosedLoop {
  /** Queries answered so far. */
  completed = 0;
  /** Replies that differed from the expected one. */
  mismatches = 0;
  private socket: net.Socket | undefined;
  private readonly requests: Buffer[];
  private readonly expected: Buffer[];
  private readonly onLatency: (nanoseconds: number) => void;
  private next = 0;
  private sentAt = 0n;
  /** The start of a reply that arrived in pieces (rare: replies are small); undefined otherwise. */
  private partial: Buffer | undefined;
  private running = false;
  private stopped: (() => void) | undefined;
  private failure: Error | undefined;

  /**
   * `requests` are payloads ("postfix example.test"); `expected` the reply payload for each (same index).
   * `onLatency` gets the time from write to the last byte of each reply.
   */
  private constructor(requests: string[], expected: string[], onLatency: (ns: number) => void) {
    this.requests = requests.map((r) => encodeNetstring(r));
    this.expected = expected.map((r) => encodeNetstring(r));
    this.onLatency = onLatency;
  }

  static async open(
    endpoint: Endpoint,
    requests: string[],
    expected: string[],
    onLatency: (ns: number) => void,
  ): Promise<ClosedLoop> {
    const loop = new ClosedLoop(requests, expected, onLatency);
    const onread = {
      buffer: Buffer.allocUnsafe(MAX_REPLY),
      callback: (length: number, buffer: Buffer) => {
        loop.onRead(buffer, length);
        return true;
      },
    };
    const socket = await connectSocket(endpoint, 10_000, onread);
    socket.setNoDelay(true);
    socket.on('error', (err) => loop.fail(err));
    socket.on('close', () => loop.fail(new Error('socketmap connection closed by the server')));
    loop.socket = socket;
    return loop;
  }

  start(): void {
    this.running = true;
    this.send();
  }

  /** Stop after the reply in flight; resolves with the error that ended the loop early, if any. */
  stop(): Promise<Error | undefined> {
    this.running = false;
    if (this.failure || this.sentAt === 0n) return Promise.resolve(this.failure);
    return new Promise((resolve) => {
      this.stopped = () => resolve(this.failure);
    });
  }

  close(): void {
    this.socket?.destroy();
  }

  private send(): void {
    this.sentAt = process.hrtime.bigint();
    this.socket!.write(this.requests[this.next]!);
  }

  /** `buffer` is reused for the next read: whatever must outlive this call is copied. */
  private onRead(buffer: Buffer, length: number): void {
    let reply = buffer.subarray(0, length);
    if (this.partial !== undefined) reply = Buffer.concat([this.partial, reply]);
    // Only one reply can be in flight; it may arrive in pieces.
    const colon = reply.indexOf(0x3a);
    if (colon === -1 || reply.length < colon + 2 + Number(reply.toString('ascii', 0, colon))) {
      this.partial = Buffer.from(reply);
      return;
    }
    this.partial = undefined;
    this.onLatency(Number(process.hrtime.bigint() - this.sentAt));
    this.sentAt = 0n;
    this.completed++;
    if (!reply.equals(this.expected[this.next]!)) this.mismatches++;
    this.next = (this.next + 1) % this.requests.length;
    if (this.running) this.send();
    else this.stopped?.();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.running = false;
    this.stopped?.();
  }
}

/** One query on a fresh connection. */
export async function socketmapQuery(endpoint: Endpoint, map: string, key: string): Promise<string> {
  const client = await NetstringClient.connect(endpoint);
  try {
    return await client.query(`${map} ${key}`);
  } finally {
    client.close();
  }
}

function connectSocket(endpoint: Endpoint, timeoutMs = 10_000, onread?: net.OnReadOpts): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ ...endpoint, onread });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`socketmap connect to ${describe(endpoint)} timed out`));
    }, timeoutMs);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`socketmap connect to ${describe(endpoint)} failed: ${err.message}`));
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

function describe(endpoint: Endpoint): string {
  return 'path' in endpoint ? endpoint.path : `${endpoint.host}:${endpoint.port}`;
}

/**
 * For the clients' own tests: a connection handler that answers each request "NAME DOMAIN" with "OK DOMAIN",
 * except "wrong.test" (answered "NOTFOUND ") and "split.test" (its reply sent in three pieces, 5 ms apart, so
 * that they arrive as separate reads). Each request read is pushed to the array `requestsOf()` gives for its connection.
 */
export function testMapResponder(requestsOf: () => string[]): (socket: net.Socket) => void {
  return (socket) => {
    const requests = requestsOf();
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        const decoded = decodeNetstring(buffered);
        if (decoded === undefined) return;
        buffered = buffered.subarray(decoded.used);
        const request = decoded.payload.toString();
        requests.push(request);
        const domain = request.split(' ')[1]!;
        if (domain === 'wrong.test') socket.write(encodeNetstring('NOTFOUND '));
        else if (domain === 'split.test') {
          const reply = encodeNetstring(`OK ${domain}`);
          socket.write(reply.subarray(0, 1));
          setTimeout(() => socket.write(reply.subarray(1, 6)), 5);
          setTimeout(() => socket.write(reply.subarray(6)), 10);
        } else socket.write(encodeNetstring(`OK ${domain}`));
      }
    });
  };
}
