// SMTP STARTTLS probe (RFC 5321, RFC 3207): connect to one MX address, read the greeting, EHLO, STARTTLS with
// SNI = the MX host name, capture the certificate chain exactly as the server presented it, EHLO again over
// TLS and QUIT. The probe only captures and reports: DANE (src/dane/verify.ts) is judged later by the caller;
// the PKIX verdict MTA-STS needs (RFC 8461 §4.2) comes with the result (see pkix.ts for how it is computed).
//
// Never throws for anything the server or the network does: every outcome is a result. Only bad options
// (not an IP address, no MX host name, a bad port or time limit) throw SmtpError SMTP_BAD_OPTIONS.
//
// Bounded against hostile servers: replies are read by ReplyReader (4096-byte lines, 64 KiB replies), every
// step has a deadline for its whole reply (a server trickling one byte at a time still runs out), and an
// optional total deadline caps the whole probe.
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { normalizeHost } from '../common/hostname.js';
import { type PkixVerdict, pkixVerdict, trustContext } from './pkix.js';
import {
  ReplyReader,
  replyText,
  SmtpError,
  type SmtpErrorCode,
  type SmtpFailureCode,
  type SmtpReply,
  type SmtpStep,
} from './reply.js';

export type { PkixVerdict } from './pkix.js';
export {
  MAX_LINE_BYTES,
  MAX_REPLY_BYTES,
  SMTP_FAILURE_CODES,
  SMTP_STEPS,
  SmtpError,
  type SmtpErrorCode,
  type SmtpFailureCode,
  type SmtpReply,
  type SmtpStep,
} from './reply.js';

export interface SmtpProbeOptions {
  /** The IP address (v4 or v6) to connect to; the probe does no DNS lookups. */
  address: string;
  /** Default 25. */
  port?: number;
  /** The MX host name: sent as SNI and checked against the certificate. */
  mxHost: string;
  /**
   * The name sent with EHLO/HELO. Default: the address literal of our end of the connection ("[192.0.2.1]",
   * "[IPv6:2001:db8::1]"), which RFC 5321 §4.1.4 prescribes for a client that has no meaningful host name.
   */
  ehloName?: string;
  /** Time limit of each step (connect, each reply, the TLS handshake), in ms. Default 30000. */
  timeoutMs?: number;
  /** Time limit of the whole probe, in ms. Default: none beyond the per-step limits. */
  totalTimeoutMs?: number;
  /** Extra trust anchors (PEM) for the PKIX verdict, on top of Node's bundled roots. */
  ca?: string[];
  /**
   * `old`: offer only TLS 1.0 and 1.1 (OpenSSL security level 0), to learn whether the server still accepts
   * them, or accepts nothing newer (RFC 8996 deprecates both). Default: Node's versions (TLS 1.2 and 1.3).
   */
  tlsVersions?: 'modern' | 'old';
}

/** The versions and cipher rule the `old` probe offers. */
const OLD_TLS: tls.ConnectionOptions = {
  minVersion: 'TLSv1',
  maxVersion: 'TLSv1.1',
  ciphers: 'DEFAULT:@SECLEVEL=0',
};

export interface SmtpTlsInfo {
  /** "TLSv1.3", "TLSv1.2"... */
  version: string;
  /** OpenSSL's cipher suite name, e.g. "TLS_AES_256_GCM_SHA384". */
  cipher: string;
  /** The certificates exactly as the server sent them, in its order, leaf first. */
  chain: X509Certificate[];
  /** OpenSSL's verification code for the chain (e.g. "CERT_HAS_EXPIRED"); absent when it verified. */
  authorizationError?: string;
}

/** What the probe learned before it stopped; failures carry as much of it as they got. */
export interface SmtpProbeProgress {
  /** The greeting's text lines joined with "\n" (without the reply codes). */
  banner?: string;
  /** The EHLO capability lines in plain text (the lines after the greeting line), e.g. "SIZE 10240000". */
  ehlo?: string[];
  /** HELO was used because EHLO was refused with 5xx (RFC 5321 §3.2). */
  helo?: boolean;
  tls?: SmtpTlsInfo;
  pkix?: PkixVerdict;
  /** The EHLO capability lines over TLS. */
  ehloTls?: string[];
}

export interface SmtpProbeSuccess extends SmtpProbeProgress {
  ok: true;
  address: string;
  port: number;
  mxHost: string;
  banner: string;
  ehlo: string[];
  ehloTls: string[];
  starttls: true;
  tls: SmtpTlsInfo;
  /** For MTA-STS the MX host is valid when `pkix.valid && pkix.nameMatches` (RFC 8461 §4.2). */
  pkix: PkixVerdict;
}

export interface SmtpProbeFailure extends SmtpProbeProgress {
  ok: false;
  address: string;
  port: number;
  mxHost: string;
  code: SmtpFailureCode;
  /** The step that failed. */
  step: SmtpStep;
  /** One sentence naming the server, the step and what went wrong. */
  message: string;
  /** The server's reply that made the step fail, when there was one. */
  reply?: SmtpReply;
  /** Errno code or OpenSSL reason, for SMTP_CONNECT, SMTP_TLS_HANDSHAKE and lost connections. */
  reason?: string;
}

export type SmtpProbeResult = SmtpProbeSuccess | SmtpProbeFailure;

const DEFAULT_PORT = 25;
const DEFAULT_TIMEOUT_MS = 30_000;
/** QUIT is a courtesy: its reply is awaited at most this long (and never past the other limits). */
const QUIT_WAIT_MS = 2_000;
/** A guard for walking the presented chain; OpenSSL's 100 KiB certificate list limit comes first in practice. */
const MAX_CHAIN = 64;

const STEP_NAMES: Record<SmtpStep, string> = {
  connect: 'connecting',
  banner: 'the greeting',
  ehlo: 'the EHLO reply',
  helo: 'the HELO reply',
  starttls: 'the STARTTLS reply',
  'tls-handshake': 'the TLS handshake',
  'ehlo-tls': 'the EHLO reply over TLS',
};

interface Settings {
  address: string;
  port: number;
  mxHost: string;
  ehloName?: string;
  timeoutMs: number;
  /** Absolute time (Date.now() based) when the whole probe must end. */
  deadline: number;
  ca?: string[];
  tlsVersions: 'modern' | 'old';
}

/** Probe one MX address; see the file comment. */
export async function probeSmtp(options: SmtpProbeOptions): Promise<SmtpProbeResult> {
  const settings = checkOptions(options);
  const where = { address: settings.address, port: settings.port, mxHost: settings.mxHost };
  const progress: SmtpProbeProgress = {};
  let conversation: Conversation | undefined;
  try {
    const socket = await connect(settings);
    conversation = new Conversation(socket, settings);
    await converse(conversation, settings, progress);
    return {
      ok: true,
      ...where,
      ...progress,
      banner: progress.banner ?? '',
      ehlo: progress.ehlo ?? [],
      ehloTls: progress.ehloTls ?? [],
      starttls: true,
      tls: progress.tls!,
      pkix: progress.pkix!,
    };
  } catch (err) {
    if (!(err instanceof SmtpError) || err.step === undefined) throw err;
    const failure: SmtpProbeFailure = {
      ok: false,
      ...where,
      ...progress,
      // Only SMTP_BAD_OPTIONS comes without a step, and it was rethrown above.
      code: err.code as SmtpFailureCode,
      step: err.step,
      message: `${hostPort(settings)} (${settings.mxHost}): ${err.message}`,
    };
    if (err.reply) failure.reply = err.reply;
    if (err.reason) failure.reason = err.reason;
    return failure;
  } finally {
    conversation?.close();
  }
}

async function converse(c: Conversation, s: Settings, progress: SmtpProbeProgress): Promise<void> {
  const banner = await c.reply('banner');
  if (banner.code !== 220) {
    await c.quit();
    throw unexpected('banner', banner, 'SMTP_BANNER_REJECT', 'the greeting');
  }
  progress.banner = banner.lines.join('\n');

  const ehloName = s.ehloName ?? addressLiteral(c.localAddress);
  c.send(`EHLO ${ehloName}`);
  const ehlo = await c.reply('ehlo');
  if (ehlo.code !== 250) {
    // RFC 5321 §3.2: a client whose EHLO is refused with 5xx may fall back to HELO (which has no extensions,
    // so no STARTTLS). 4xx is a temporary refusal: no fallback.
    if (ehlo.code < 500 || ehlo.code > 599) {
      await c.quit();
      throw unexpected('ehlo', ehlo, 'SMTP_EHLO_REJECT', 'EHLO');
    }
    c.send(`HELO ${ehloName}`);
    const helo = await c.reply('helo');
    await c.quit();
    if (helo.code !== 250) throw unexpected('helo', helo, 'SMTP_EHLO_REJECT', 'HELO after EHLO was refused');
    progress.helo = true;
    throw new SmtpError(
      'SMTP_NO_STARTTLS',
      `EHLO refused (${replyText(ehlo)}), only HELO accepted: no ESMTP, so no STARTTLS`,
      { step: 'helo', reply: ehlo },
    );
  }
  progress.ehlo = ehlo.lines.slice(1);
  if (!progress.ehlo.some((line) => keyword(line) === 'STARTTLS')) {
    await c.quit();
    throw new SmtpError('SMTP_NO_STARTTLS', 'STARTTLS is not offered in the EHLO reply (RFC 3207)', {
      step: 'ehlo',
    });
  }

  c.send('STARTTLS');
  const starttls = await c.reply('starttls');
  if (starttls.code !== 220) {
    await c.quit();
    throw unexpected('starttls', starttls, 'SMTP_STARTTLS_REFUSED', 'STARTTLS');
  }
  const tlsSocket = await c.startTls();
  progress.tls = captureTls(tlsSocket);
  progress.pkix = pkixVerdict(progress.tls.chain, progress.tls.authorizationError, s.mxHost);

  // RFC 3207 §4.2: after the handshake the client discards what it knew and issues EHLO again.
  c.send(`EHLO ${ehloName}`);
  const ehloTls = await c.reply('ehlo-tls');
  if (ehloTls.code !== 250) {
    await c.quit();
    throw unexpected('ehlo-tls', ehloTls, 'SMTP_EHLO_REJECT', 'EHLO over TLS');
  }
  progress.ehloTls = ehloTls.lines.slice(1);
  await c.quit();
}

/** A 4xx/5xx reply fails the step with `code`; any other unexpected code is SMTP_PROTOCOL. */
function unexpected(step: SmtpStep, reply: SmtpReply, code: SmtpErrorCode, what: string): SmtpError {
  if (reply.code >= 400) {
    const verb = step === 'banner' ? 'the server refuses the session' : `${what} refused`;
    return new SmtpError(code, `${verb}: ${replyText(reply)}`, { step, reply });
  }
  return new SmtpError('SMTP_PROTOCOL', `unexpected reply to ${what}: ${replyText(reply)}`, { step, reply });
}

/** The EHLO keyword of a capability line ("SIZE 1000" -> "SIZE"), upper case (RFC 5321 §4.1.1.1). */
function keyword(line: string): string {
  return (line.split(/[ \t]/, 1)[0] ?? '').toUpperCase();
}

/** RFC 5321 §4.1.3 address literal of an IP address. */
function addressLiteral(ip: string): string {
  const plain = ip.startsWith('::ffff:') && net.isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
  return net.isIPv6(plain) ? `[IPv6:${plain}]` : `[${plain}]`;
}

function hostPort(s: { address: string; port: number }): string {
  return net.isIPv6(s.address) ? `[${s.address}]:${s.port}` : `${s.address}:${s.port}`;
}

function checkOptions(o: SmtpProbeOptions): Settings {
  const bad = (message: string) => new SmtpError('SMTP_BAD_OPTIONS', message);
  if (net.isIP(o.address) === 0) throw bad(`address "${o.address}" is not an IP address`);
  const port = o.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(`port ${port} is not 1-65535`);
  const mxHost = normalizeHost(o.mxHost);
  if (mxHost === '' || /[\s/]/.test(mxHost)) throw bad(`mxHost "${o.mxHost}" is not a host name`);
  if (o.ehloName !== undefined && (o.ehloName === '' || /[\s\x00-\x1f\x7f]/.test(o.ehloName))) {
    throw bad(`ehloName "${o.ehloName}" is empty or holds white space or control characters`);
  }
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  for (const [name, value] of [
    ['timeoutMs', timeoutMs],
    ['totalTimeoutMs', o.totalTimeoutMs],
  ] as const) {
    if (value !== undefined && (!Number.isFinite(value) || value <= 0)) {
      throw bad(`${name} ${value} is not a positive number of milliseconds`);
    }
  }
  const deadline = o.totalTimeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + o.totalTimeoutMs;
  if (o.tlsVersions !== undefined && o.tlsVersions !== 'modern' && o.tlsVersions !== 'old') {
    throw bad(`tlsVersions must be "modern" or "old", not ${JSON.stringify(o.tlsVersions)}`);
  }
  const tlsVersions = o.tlsVersions ?? 'modern';
  return {
    address: o.address,
    port,
    mxHost,
    ehloName: o.ehloName,
    timeoutMs,
    deadline,
    ca: o.ca,
    tlsVersions,
  };
}

/** Milliseconds the current step may take: its own limit, or less when the total deadline is nearer. */
function stepLimit(s: Settings, cap = s.timeoutMs): { ms: number; total: boolean } {
  const remaining = s.deadline - Date.now();
  return remaining < cap ? { ms: Math.max(remaining, 0), total: true } : { ms: cap, total: false };
}

function timeoutError(step: SmtpStep, s: Settings, total: boolean): SmtpError {
  const limit = total ? 'the total time limit ran out' : `no answer within ${s.timeoutMs} ms`;
  return new SmtpError('SMTP_TIMEOUT', `${limit} waiting for ${STEP_NAMES[step]}`, { step });
}

function connect(s: Settings): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const limit = stepLimit(s);
    const socket = net.connect({ host: s.address, port: s.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(timeoutError('connect', s, limit.total));
    }, limit.ms);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      const reason = err.code ?? err.message;
      reject(
        new SmtpError('SMTP_CONNECT', `cannot connect: ${reason}`, { step: 'connect', reason, cause: err }),
      );
    });
  });
}

/** What ended the connection, kept until a step asks for a reply. */
interface Broken {
  code: SmtpErrorCode;
  message: string;
  reason?: string;
}

/**
 * One SMTP conversation over a socket that is swapped for a TLSSocket after STARTTLS. Replies are queued as
 * they complete; reply() hands them out in order, or fails with what broke the connection or a timeout.
 */
class Conversation {
  private socket: net.Socket;
  private readonly reader = new ReplyReader();
  private readonly replies: SmtpReply[] = [];
  private broken?: Broken;
  private wake?: () => void;
  private readonly onData = (chunk: Buffer) => this.received(chunk);
  private readonly onError = (err: NodeJS.ErrnoException) =>
    this.fail({ code: 'SMTP_PROTOCOL', message: 'the connection failed', reason: err.code ?? err.message });
  private readonly onClose = () =>
    this.fail({ code: 'SMTP_PROTOCOL', message: 'the server closed the connection (RFC 5321 §3.8)' });

  constructor(
    socket: net.Socket,
    private readonly settings: Settings,
  ) {
    this.socket = socket;
    this.attach();
  }

  get localAddress(): string {
    return this.socket.localAddress ?? '0.0.0.0';
  }

  send(line: string): void {
    if (!this.broken && this.socket.writable) this.socket.write(`${line}\r\n`);
  }

  /** The next reply for `step`; throws SmtpError when the connection broke or the step ran out of time. */
  async reply(step: SmtpStep): Promise<SmtpReply> {
    const limit = stepLimit(this.settings);
    const next = await this.next(limit.ms);
    if (next === 'timeout') throw timeoutError(step, this.settings, limit.total);
    if ('lines' in next) return next;
    throw new SmtpError(next.code, `${next.message} while waiting for ${STEP_NAMES[step]}`, {
      step,
      reason: next.reason,
    });
  }

  /** Best effort: QUIT and a short wait for its 221, ignoring whatever happens. */
  async quit(): Promise<void> {
    if (this.broken) return;
    this.send('QUIT');
    await this.next(stepLimit(this.settings, QUIT_WAIT_MS).ms);
  }

  private async next(ms: number): Promise<SmtpReply | Broken | 'timeout'> {
    const expires = Date.now() + ms;
    for (;;) {
      const reply = this.replies.shift();
      if (reply) return reply;
      if (this.broken) return this.broken;
      const left = expires - Date.now();
      if (left <= 0 || !(await this.waitFor(left))) return 'timeout';
    }
  }

  /** Upgrade to TLS after the server's 220 to STARTTLS; resolves once the handshake is done. */
  startTls(): Promise<tls.TLSSocket> {
    // RFC 3207 §4.2: what the client learnt in plain text must not carry into the TLS session. Bytes sent after
    // the 220 would be read as replies to commands sent over TLS (reply injection): treat them as an error.
    if (this.replies.length > 0 || this.reader.bufferedBytes > 0) {
      return Promise.reject(
        new SmtpError('SMTP_PROTOCOL', 'the server sent more data after its 220 reply to STARTTLS', {
          step: 'starttls',
        }),
      );
    }
    this.detach();
    const plain = this.socket;
    const s = this.settings;
    const limit = stepLimit(s);
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        socket: plain,
        // RFC 6066 §3: SNI carries a host name, never an IP literal.
        servername: net.isIP(s.mxHost) === 0 ? s.mxHost : undefined,
        rejectUnauthorized: false,
        // The chain is judged by OpenSSL against this store; the host name is checked separately (pkix.ts).
        ...(s.tlsVersions === 'old' ? OLD_TLS : { secureContext: trustContext(s.ca) }),
        checkServerIdentity: () => undefined,
      });
      this.socket = socket;
      const done = (err?: SmtpError) => {
        clearTimeout(timer);
        socket.removeListener('secureConnect', onSecure);
        socket.removeListener('error', onFail);
        socket.removeListener('close', onClosed);
        if (err) {
          socket.on('error', () => undefined);
          socket.destroy();
          reject(err);
        } else {
          this.attach();
          resolve(socket);
        }
      };
      const handshakeError = (reason: string, cause?: unknown) =>
        new SmtpError('SMTP_TLS_HANDSHAKE', `TLS handshake failed: ${reason}`, {
          step: 'tls-handshake',
          reason,
          cause,
        });
      const onSecure = () => done();
      const onFail = (err: Error & { reason?: string; code?: string }) =>
        done(handshakeError(err.reason ?? err.code ?? err.message, err));
      const onClosed = () => done(handshakeError('the server closed the connection'));
      const timer = setTimeout(() => done(timeoutError('tls-handshake', s, limit.total)), limit.ms);
      socket.once('secureConnect', onSecure);
      socket.once('error', onFail);
      socket.once('close', onClosed);
    });
  }

  close(): void {
    this.detach();
    this.socket.destroy();
    this.wake?.();
  }

  private attach(): void {
    this.socket.on('data', this.onData);
    this.socket.on('error', this.onError);
    this.socket.on('close', this.onClose);
  }

  private detach(): void {
    this.socket.removeListener('data', this.onData);
    this.socket.removeListener('error', this.onError);
    this.socket.removeListener('close', this.onClose);
    // A late error after detaching must not become an uncaught exception.
    this.socket.on('error', () => undefined);
  }

  private received(chunk: Buffer): void {
    try {
      this.replies.push(...this.reader.push(chunk));
    } catch (err) {
      if (!(err instanceof SmtpError)) throw err;
      this.fail({ code: err.code, message: err.message });
      this.socket.destroy();
    }
    this.wake?.();
  }

  private fail(broken: Broken): void {
    this.broken ??= broken;
    this.wake?.();
  }

  /** Resolves true when something arrived (or broke), false when `ms` passed first. */
  private waitFor(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve(false);
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve(true);
      };
    });
  }
}

/** Version, cipher, the chain as presented and OpenSSL's verdict on it (also for implicit TLS: from-host.ts). */
export function captureTls(socket: tls.TLSSocket): SmtpTlsInfo {
  const info: SmtpTlsInfo = {
    version: socket.getProtocol() ?? 'unknown',
    cipher: socket.getCipher()?.name ?? 'unknown',
    chain: presentedChain(socket),
  };
  if (!socket.authorized) {
    const error = socket.authorizationError as unknown as string | Error | undefined;
    info.authorizationError =
      error === undefined ? 'UNKNOWN' : typeof error === 'string' ? error : String(error.message);
  }
  return info;
}

/**
 * The certificates in the order the server sent them. getPeerX509Certificate() links each certificate to the
 * next one of the peer's list through `issuerCertificate` (presentation order, nothing added from the trust
 * store, unlike getPeerCertificate(true), which reorders by issuer and appends local roots). Node 20 consumes
 * the list while building these objects, so it is called exactly once; copies are kept.
 */
function presentedChain(socket: tls.TLSSocket): X509Certificate[] {
  const chain: X509Certificate[] = [];
  let cert = socket.getPeerX509Certificate();
  while (cert && chain.length < MAX_CHAIN) {
    chain.push(new X509Certificate(cert.raw));
    const next: X509Certificate | undefined = cert.issuerCertificate;
    if (!next || next === cert || next.raw.equals(cert.raw)) break;
    cert = next;
  }
  return chain;
}
