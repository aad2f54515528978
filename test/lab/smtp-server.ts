// Lab SMTP server for integration tests: just enough ESMTP (RFC 5321) with STARTTLS (RFC 3207) to probe, and
// switchable misbehaviours a real MTA or a library will not produce. Loopback only (LAB-NOTES: tests never talk
// to anything but 127.0.0.0/8 and ::1).
//
//   const lab = await startSmtpServer({ cert: { key: keyPem, cert: leafPem + intermediatePem } });
//   const result = await probeSmtp({ address: lab.host, port: lab.port, mxHost: 'mx.example.com' });
//   lab.sessions[0]; // { ehlo: '[127.0.0.1]', starttls: true, sni: 'mx.example.com', quit: true, ... }
//   await lab.stop();
//
// Speaks: the greeting; EHLO (greeting line, PIPELINING, SIZE, STARTTLS when a certificate is given and TLS is
// not active yet, 8BITMIME), HELO, STARTTLS (upgrade with tls.TLSSocket as server, certificate chain as given,
// the client's SNI recorded), NOOP, RSET, QUIT; "502" for every other command. After a 5xx greeting it answers
// "503" to everything but QUIT (RFC 5321 §3.1); after a 4xx greeting it closes the connection.
//
// Misbehaviours (`behaviour`):
//   banner             the greeting as sent, lines separated by "\n" (e.g. "554 go away", "220-a\n220 b")
//   noStartTls         do not offer STARTTLS (the command then gets 502)
//   starttlsReply      answer STARTTLS with this and stay in plain text (e.g. "454 4.7.0 TLS not available")
//   ehloReply          answer EHLO with this (e.g. "502 5.5.2 not implemented"); HELO still works
//   heloReply          answer HELO with this
//   silent             accept the connection and never send a byte
//   slowBanner         send a long greeting one byte every 50 ms (a client limit must be a deadline, not idle)
//   garbage            greet with binary bytes and an HTTP error line instead of SMTP
//   hugeLine           greet with one 1 MiB line ("220-xxxx...")
//   dropAfterStartTls  answer STARTTLS with 220, then close the connection
//   stallTls           answer STARTTLS with 220, then ignore the client's TLS handshake
//   silentAfterTls     complete the TLS handshake, then never answer again
//   noReplyTo          commands (verbs, upper case) that never get an answer, e.g. ['EHLO']
//   extraAfterStartTls send an extra plain-text reply line right after the 220 to STARTTLS (reply injection)
// `sessions` records each connection in order: the EHLO/HELO argument, whether STARTTLS was accepted, the SNI
// seen in the handshake, the commands received and whether the client said QUIT.
import net from 'node:net';
import tls from 'node:tls';

export interface SmtpBehaviour {
  banner?: string;
  noStartTls?: boolean;
  starttlsReply?: string;
  ehloReply?: string;
  heloReply?: string;
  silent?: boolean;
  slowBanner?: boolean;
  garbage?: boolean;
  hugeLine?: boolean;
  dropAfterStartTls?: boolean;
  stallTls?: boolean;
  silentAfterTls?: boolean;
  noReplyTo?: string[];
  extraAfterStartTls?: boolean;
}

export interface LabSmtpOptions {
  /** A loopback address (default 127.0.0.1). */
  host?: string;
  /** Default 0: an ephemeral port. */
  port?: number;
  /** Private key and certificate chain (leaf first) in PEM; without it STARTTLS is not offered. */
  cert?: { key: string; cert: string };
  /** The server's name in its greeting and EHLO reply (default "mx.lab.test"). */
  hostname?: string;
  behaviour?: SmtpBehaviour;
}

export interface LabSmtpSession {
  /** The argument of the first EHLO. */
  ehlo?: string;
  /** The argument of the first HELO. */
  helo?: string;
  /** The server answered STARTTLS with 220. */
  starttls: boolean;
  /** The TLS handshake completed. */
  tls: boolean;
  /** The server name the client sent in the TLS handshake (absent when it sent none). */
  sni?: string;
  /** Every command line received, in order. */
  commands: string[];
  quit: boolean;
}

export interface LabSmtpServer {
  host: string;
  port: number;
  sessions: LabSmtpSession[];
  stop(): Promise<void>;
}

const MAX_COMMAND_LINE = 4096;

export async function startSmtpServer(options: LabSmtpOptions = {}): Promise<LabSmtpServer> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopback(host)) throw new Error(`lab SMTP server: ${host} is not a loopback address`);
  const behaviour = options.behaviour ?? {};
  const hostname = options.hostname ?? 'mx.lab.test';
  const context = options.cert ? tls.createSecureContext(options.cert) : undefined;
  const sessions: LabSmtpSession[] = [];
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const session: LabSmtpSession = { starttls: false, tls: false, commands: [], quit: false };
    sessions.push(session);
    new Session(socket, session, { behaviour, hostname, context, sockets, timers }).start();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.address() as net.AddressInfo;
  return {
    host,
    port: address.port,
    sessions,
    stop: async () => {
      for (const timer of timers) clearInterval(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function isLoopback(host: string): boolean {
  return host === '::1' || (net.isIPv4(host) && host.startsWith('127.'));
}

interface SessionSetup {
  behaviour: SmtpBehaviour;
  hostname: string;
  context?: tls.SecureContext;
  sockets: Set<net.Socket>;
  timers: Set<NodeJS.Timeout>;
}

/** One connection: reads command lines, answers them, upgrades to TLS on STARTTLS. */
class Session {
  private buffer = '';
  private rejectedGreeting = false;
  private readonly onData = (chunk: Buffer) => this.received(chunk);

  constructor(
    private socket: net.Socket,
    private readonly record: LabSmtpSession,
    private readonly setup: SessionSetup,
  ) {}

  start(): void {
    const b = this.setup.behaviour;
    if (b.silent) {
      this.socket.resume();
      return;
    }
    this.socket.on('data', this.onData);
    if (b.garbage) {
      const binary = Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x1b, 0x5b, 0x32, 0x4a, 0x0a]);
      this.socket.write(Buffer.concat([binary, Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')]));
      return;
    }
    if (b.hugeLine) {
      this.socket.write(`220-${'x'.repeat(1024 * 1024)}\r\n220 ${this.setup.hostname} ESMTP\r\n`);
      return;
    }
    const banner = b.banner ?? `220 ${this.setup.hostname} ESMTP mxguard lab`;
    if (b.slowBanner) {
      this.trickle(`220 ${this.setup.hostname} ESMTP ${'slow '.repeat(20)}\r\n`);
      return;
    }
    this.sendLines(banner);
    if (banner.startsWith('4')) this.socket.end();
    this.rejectedGreeting = banner.startsWith('5');
  }

  private trickle(text: string): void {
    let i = 0;
    const timer = setInterval(() => {
      if (i >= text.length || this.socket.destroyed) {
        clearInterval(timer);
        this.setup.timers.delete(timer);
        return;
      }
      this.socket.write(text[i++] ?? '');
    }, 50);
    this.setup.timers.add(timer);
  }

  private sendLines(reply: string): void {
    if (this.socket.writable) this.socket.write(`${reply.split('\n').join('\r\n')}\r\n`);
  }

  private received(chunk: Buffer): void {
    this.buffer += chunk.toString('latin1');
    for (;;) {
      const end = this.buffer.indexOf('\n');
      if (end === -1) break;
      const line = this.buffer.slice(0, end).replace(/\r$/, '');
      this.buffer = this.buffer.slice(end + 1);
      if (!this.command(line)) return;
    }
    if (this.buffer.length > MAX_COMMAND_LINE) {
      this.sendLines('500 5.5.2 line too long');
      this.socket.destroy();
    }
  }

  /** Handles one command; false when the connection is handed over or closed (stop reading lines). */
  private command(line: string): boolean {
    const b = this.setup.behaviour;
    this.record.commands.push(line);
    const space = line.indexOf(' ');
    const verb = (space === -1 ? line : line.slice(0, space)).toUpperCase();
    const argument = space === -1 ? '' : line.slice(space + 1).trim();
    if (b.noReplyTo?.includes(verb) || (b.silentAfterTls && this.record.tls)) return true;
    if (verb === 'QUIT') {
      this.record.quit = true;
      this.sendLines('221 2.0.0 bye');
      this.socket.end();
      return false;
    }
    if (this.rejectedGreeting) {
      this.sendLines('503 5.5.1 no service');
      return true;
    }
    const inTls = this.record.tls;
    switch (verb) {
      case 'EHLO': {
        this.record.ehlo ??= argument;
        if (b.ehloReply && !inTls) {
          this.sendLines(b.ehloReply);
          return true;
        }
        const lines = [`250-${this.setup.hostname} hello ${argument}`, '250-PIPELINING', '250-SIZE 10240000'];
        if (this.offersStartTls()) lines.push('250-STARTTLS');
        lines.push('250 8BITMIME');
        this.sendLines(lines.join('\n'));
        return true;
      }
      case 'HELO':
        this.record.helo ??= argument;
        this.sendLines(b.heloReply ?? `250 ${this.setup.hostname}`);
        return true;
      case 'NOOP':
      case 'RSET':
        this.sendLines('250 2.0.0 ok');
        return true;
      case 'STARTTLS':
        return this.startTls();
      default:
        this.sendLines('502 5.5.2 command not implemented');
        return true;
    }
  }

  private offersStartTls(): boolean {
    return this.setup.context !== undefined && !this.setup.behaviour.noStartTls && !this.record.tls;
  }

  private startTls(): boolean {
    const b = this.setup.behaviour;
    if (this.record.tls) {
      this.sendLines('503 5.5.1 TLS already active');
      return true;
    }
    if (!this.offersStartTls() || !this.setup.context) {
      this.sendLines('502 5.5.1 STARTTLS not offered');
      return true;
    }
    if (b.starttlsReply) {
      this.sendLines(b.starttlsReply);
      return true;
    }
    this.record.starttls = true;
    this.sendLines(b.extraAfterStartTls ? '220 2.0.0 ready\n250 injected' : '220 2.0.0 ready');
    if (b.dropAfterStartTls) {
      this.socket.destroy();
      return false;
    }
    this.socket.removeListener('data', this.onData);
    if (b.stallTls) {
      this.socket.resume();
      return false;
    }
    this.buffer = '';
    const secure = new tls.TLSSocket(this.socket, { isServer: true, secureContext: this.setup.context });
    this.setup.sockets.add(secure);
    secure.on('close', () => this.setup.sockets.delete(secure));
    secure.on('error', () => undefined);
    secure.once('secure', () => {
      this.record.tls = true;
      const sni = (secure as tls.TLSSocket & { servername?: string | false }).servername;
      if (sni) this.record.sni = sni;
    });
    secure.on('data', this.onData);
    this.socket = secure;
    return false;
  }
}
