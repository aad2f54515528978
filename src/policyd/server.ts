// The socketmap server (socketmap_table(5)) on TCP and UNIX sockets. Each connection parses netstring
// requests straight from the socket's buffers and writes each reply with one write; replies leave in
// request order even when a later request was answered from the cache before an earlier lookup ended.
//
// Hostile input: a malformed netstring, a request over MAX_REQUEST_BYTES, a request without
// "<name> <key>" form, or a request not completed within requestTimeoutMs gets "PERM <reason>" and the
// connection is closed after its pending replies. An idle connection is closed after idleTimeoutMs.
// These deadlines are checked by one timer per server (every second, or a quarter of the shortest
// timeout), not per connection: re-arming a socket timer on every read and write would cost more.
// At most maxConnections are open; more are closed on arrival. Memory per connection is bounded: at
// most MAX_REQUEST_BYTES of partial input, at most maxPipeline replies waiting (reading pauses), and
// reading pauses while the peer does not take its replies.
import { chmod, lstat, unlink } from 'node:fs/promises';
import net from 'node:net';
import type { PolicydMetrics } from './metrics.js';
import { type NetstringError, NetstringReader } from './netstring.js';
import { MAX_REQUEST_BYTES, NOTFOUND_REPLY, permReply, type Reply, requestKey } from './socketmap.js';

/** Answers keys: at once when it can (the cache), else later. */
export interface Responder {
  cached(key: string): Reply | undefined;
  lookup(key: string): Promise<Reply>;
}

export interface SocketmapServerOptions {
  responder: Responder;
  metrics?: PolicydMetrics;
  /** Default 2000. */
  maxConnections?: number;
  /** Close a connection without traffic after this long (default 5 min). */
  idleTimeoutMs?: number;
  /** A request must be complete this long after its first byte (default 10 s). */
  requestTimeoutMs?: number;
  /** Replies waiting per connection before reading pauses (default 64). */
  maxPipeline?: number;
  /** How long close() lets connections finish their replies (default 2 s). */
  closeGraceMs?: number;
  /**
   * Read every connection into one shared buffer (default true); false reads through 'data' events, the
   * path taken anyway when the runtime's socket internals are not as expected (see readIntoSharedBuffer).
   */
  sharedReadBuffer?: boolean;
}

const PROTOCOL_ERRORS: Record<NetstringError | 'BAD_REQUEST' | 'REQUEST_TIMEOUT', string> = {
  NETSTRING_LENGTH: 'malformed netstring length',
  NETSTRING_TOO_LONG: `request longer than ${MAX_REQUEST_BYTES} bytes`,
  NETSTRING_COMMA: 'malformed netstring (no "," after the data)',
  BAD_REQUEST: 'request is not "<name> <key>"',
  REQUEST_TIMEOUT: 'request not completed in time',
};
const ERROR_REPLIES = Object.fromEntries(
  Object.entries(PROTOCOL_ERRORS).map(([code, reason]) => [code, permReply(reason)]),
) as Record<keyof typeof PROTOCOL_ERRORS, Reply>;

export class SocketmapServer {
  private readonly connections = new Set<Connection>();
  private readonly listeners: net.Server[] = [];
  private readonly socketPaths: string[] = [];
  readonly responder: Responder;
  readonly metrics: PolicydMetrics | undefined;
  readonly maxConnections: number;
  readonly idleTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxPipeline: number;
  private readonly closeGraceMs: number;
  readonly sharedReadBuffer: boolean;
  private readonly sweepTimer: NodeJS.Timeout;
  /** performance.now() at the last deadline check: connections stamp their activity with it. */
  now = performance.now();

  constructor(options: SocketmapServerOptions) {
    this.responder = options.responder;
    this.metrics = options.metrics;
    this.maxConnections = options.maxConnections ?? 2000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 300_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.maxPipeline = options.maxPipeline ?? 64;
    this.closeGraceMs = options.closeGraceMs ?? 2000;
    this.sharedReadBuffer = options.sharedReadBuffer ?? true;
    if (this.metrics) this.metrics.openConnections = () => this.connections.size;
    const sweepMs = Math.min(1000, Math.max(10, Math.min(this.idleTimeoutMs, this.requestTimeoutMs) / 4));
    this.sweepTimer = setInterval(() => this.checkDeadlines(), sweepMs);
    this.sweepTimer.unref();
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  async listenTcp(host: string, port: number): Promise<net.AddressInfo> {
    const server = this.createListener();
    await listen(server, { host, port });
    return server.address() as net.AddressInfo;
  }

  /**
   * Listen on a UNIX socket, replacing a stale socket file (never another kind of file); the socket is
   * made world-writable (0666).
   */
  async listenUnix(path: string): Promise<void> {
    const existing = await lstat(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (existing !== undefined) {
      if (!existing.isSocket()) throw new Error(`${path}: exists and is not a socket; not replacing it`);
      if (await socketInUse(path)) throw new Error(`${path}: another process is listening on this socket`);
      await unlink(path);
    }
    const server = this.createListener();
    await listen(server, { path });
    this.socketPaths.push(path);
    // Postfix's smtp processes run as another user: the answers are public data, let them connect.
    await chmod(path, 0o666);
  }

  /** Stop listening, let connections send their pending replies, then close them; remove socket files. */
  async close(): Promise<void> {
    // A listener's close callback waits for its connections: stop accepting first, close them, then wait.
    const closed = this.listeners.map(
      (server) => new Promise<void>((resolve) => server.close(() => resolve())),
    );
    for (const connection of this.connections) connection.finish();
    const deadline = Date.now() + this.closeGraceMs;
    while (this.connections.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (const connection of this.connections) connection.destroy();
    clearInterval(this.sweepTimer);
    await Promise.all(closed);
    await Promise.all(this.socketPaths.map((path) => unlink(path).catch(() => {})));
  }

  /** Called by Connection when its socket is gone. */
  forget(connection: Connection): void {
    this.connections.delete(connection);
  }

  private checkDeadlines(): void {
    this.now = performance.now();
    for (const connection of this.connections) connection.checkDeadlines(this.now);
  }

  private createListener(): net.Server {
    // Paused: the socket is re-created for reading into the shared buffer before anything is read.
    const server = net.createServer({ pauseOnConnect: true }, (socket) => {
      if (this.connections.size >= this.maxConnections) {
        if (this.metrics) this.metrics.rejectedConnections++;
        socket.destroy();
        return;
      }
      this.connections.add(new Connection(socket, this));
    });
    server.on('error', () => {}); // accept errors (EMFILE...) must not end the daemon
    this.listeners.push(server);
    return server;
  }
}

interface Slot {
  reply?: Reply;
  started: number;
}

/**
 * Every connection reads into this one buffer: a chunk is parsed completely before the next read, and
 * the netstring reader copies what it keeps. No Buffer is allocated per read, which is most of the
 * per-query garbage (and so of the young-generation GC pauses) a socket would otherwise make.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

type ReadCallback = (bytes: number, buffer: Buffer) => boolean;

/**
 * The accepted socket re-created around the same handle with net.Socket's `onread` option (reads go
 * into a caller's buffer and to a callback, not through the Readable stream), which net.Server does
 * not offer for the sockets it accepts. Relies on `_handle` and the `handle` option, which
 * net.Server itself uses; when `_handle` is not there, the socket is used as it is, with 'data'.
 */
function readIntoSharedBuffer(accepted: net.Socket, onRead: ReadCallback, shared: boolean): net.Socket {
  const internal = accepted as unknown as { _handle?: object | null };
  const handle = internal._handle;
  if (!shared || handle == null) {
    accepted.on('data', (chunk: Buffer) => onRead(chunk.length, chunk));
    accepted.resume();
    return accepted;
  }
  // Detached from its handle, destroying the accepted socket closes nothing; it only lets the
  // listener forget the connection (which this server tracks itself).
  internal._handle = null;
  accepted.destroy();
  return new net.Socket({
    handle,
    onread: { buffer: READ_BUFFER, callback: onRead },
  } as net.SocketConstructorOpts);
}

class Connection {
  private readonly socket: net.Socket;
  private readonly reader = new NetstringReader(MAX_REQUEST_BYTES);
  /** Replies waiting behind a lookup, in request order. */
  private readonly queue: Slot[] = [];
  private closing = false;
  /** server.now when the socket was last read or written. */
  private lastActive: number;
  /** server.now when an incomplete request was first seen (0: none). */
  private partialSince = 0;
  private waitingDrain = false;
  private pipelineFull = false;

  constructor(
    accepted: net.Socket,
    private readonly server: SocketmapServer,
  ) {
    const socket = readIntoSharedBuffer(accepted, this.onRead, server.sharedReadBuffer);
    this.socket = socket;
    this.lastActive = server.now;
    socket.setNoDelay(true);
    socket.on('drain', this.onDrain);
    socket.on('error', () => {}); // resets and the like: 'close' follows
    socket.on('close', () => server.forget(this));
  }

  /** Close after the pending replies (shutdown). */
  finish(): void {
    this.closing = true;
    this.socket.pause();
    if (this.queue.length === 0) this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /**
   * A request must be complete requestTimeoutMs after its first byte; a connection without traffic
   * or pending replies is closed after idleTimeoutMs; a closing one without traffic (its peer may
   * never read) is destroyed after requestTimeoutMs.
   */
  checkDeadlines(now: number): void {
    const { idleTimeoutMs, requestTimeoutMs } = this.server;
    if (this.closing) {
      if (now - this.lastActive > requestTimeoutMs) this.socket.destroy();
    } else if (this.partialSince !== 0) {
      // While reading is paused, what is held back may be complete requests: only a stall counts.
      const paused = this.waitingDrain || this.pipelineFull;
      if (now - (paused ? this.lastActive : this.partialSince) > requestTimeoutMs)
        this.fail('REQUEST_TIMEOUT');
    } else if (this.queue.length === 0 && now - this.lastActive > idleTimeoutMs) {
      this.finish();
    }
  }

  /** Always true: where reading must stop, the socket is paused explicitly. */
  private readonly onRead = (bytes: number, chunk: Buffer): boolean => {
    if (this.closing) return true;
    this.lastActive = this.server.now;
    const error = this.reader.feed(chunk, this.onRequest, bytes);
    if (error !== undefined) this.fail(error);
    else this.watchPartial();
    return true;
  };

  private readonly onRequest = (buffer: Buffer, start: number, end: number): boolean => {
    const started = performance.now();
    const key = requestKey(buffer, start, end);
    if (key === undefined) {
      this.fail('BAD_REQUEST');
      return false;
    }
    const { responder } = this.server;
    const reply = responder.cached(key);
    if (reply !== undefined) {
      if (this.queue.length === 0) this.write(reply, started);
      else this.queue.push({ reply, started });
    } else {
      const slot: Slot = { started };
      this.queue.push(slot);
      responder.lookup(key).then(
        (answer) => {
          slot.reply = answer;
          this.flush();
        },
        () => {
          slot.reply = NOTFOUND_REPLY;
          this.flush();
        },
      );
    }
    if (this.queue.length >= this.server.maxPipeline) {
      this.pipelineFull = true;
      this.socket.pause();
      return false;
    }
    return !this.closing;
  };

  private write(reply: Reply, started: number): void {
    this.server.metrics?.answered(reply.kindIndex, (performance.now() - started) / 1000);
    this.lastActive = this.server.now;
    if (!this.socket.write(reply.bytes) && !this.waitingDrain) {
      this.waitingDrain = true;
      this.socket.pause();
    }
  }

  private flush(): void {
    while (this.queue.length > 0 && this.queue[0]!.reply !== undefined) {
      const slot = this.queue.shift()!;
      this.write(slot.reply!, slot.started);
    }
    if (this.closing) {
      if (this.queue.length === 0) this.socket.end();
      return;
    }
    if (this.pipelineFull && this.queue.length < this.server.maxPipeline / 2) {
      this.pipelineFull = false;
      this.continueReading();
    }
  }

  private readonly onDrain = (): void => {
    if (!this.waitingDrain) return;
    this.waitingDrain = false;
    this.continueReading();
  };

  /** Parse what was held back, then read from the socket again (unless paused for another reason). */
  private continueReading(): void {
    if (this.closing || this.waitingDrain || this.pipelineFull) return;
    const error = this.reader.resume(this.onRequest);
    if (error !== undefined) {
      this.fail(error);
      return;
    }
    if (!this.pipelineFull && !this.waitingDrain) {
      this.watchPartial();
      this.socket.resume();
    }
  }

  /** Note when an incomplete request started (for its deadline). */
  private watchPartial(): void {
    if (this.reader.buffered === 0) this.partialSince = 0;
    else if (this.partialSince === 0) this.partialSince = this.server.now;
  }

  /** Reply PERM after the pending replies and close: a netstring stream cannot be resynchronised. */
  private fail(error: keyof typeof PROTOCOL_ERRORS): void {
    if (this.closing) return;
    this.server.metrics?.protocolError(error);
    this.closing = true;
    this.socket.pause();
    const reply = ERROR_REPLIES[error];
    if (this.queue.length === 0) {
      this.write(reply, performance.now());
      this.socket.end();
    } else {
      this.queue.push({ reply, started: performance.now() });
    }
  }
}

function listen(server: net.Server, options: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(options, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Something accepts connections on this UNIX socket path. */
function socketInUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
