// The certificate chain a server presents on one address, for `mxguard tlsa from-host`: through the SMTP
// STARTTLS probe (probe.ts, RFC 3207) or, for implicit TLS (submissions 465 and IMAPS 993 per RFC 8314, HTTPS
// 443), straight from a TLS handshake with SNI = the host name (RFC 6066 §3). No SMTP is spoken on implicit TLS.
import net from 'node:net';
import tls from 'node:tls';
import { trustContext } from './pkix.js';
import { captureTls, probeSmtp, type SmtpTlsInfo } from './probe.js';
import { SmtpError, type SmtpFailureCode } from './reply.js';

/** `smtp`: plain-text SMTP, then STARTTLS; `none`: TLS from the first byte. */
export type TlsStart = 'smtp' | 'none';

/** Ports whose service starts TLS at once (RFC 8314 §3.3 and §7.3, RFC 2818). */
export const IMPLICIT_TLS_PORTS: ReadonlySet<number> = new Set([443, 465, 993, 995]);

export function defaultTlsStart(port: number): TlsStart {
  return IMPLICIT_TLS_PORTS.has(port) ? 'none' : 'smtp';
}

export interface PresentedChainOptions {
  address: string;
  port: number;
  /** Sent as SNI (and as the MX host name to the STARTTLS probe). */
  host: string;
  starttls: TlsStart;
  timeoutMs: number;
  ca?: string[];
}

export type PresentedChainResult =
  | { ok: true; tls: SmtpTlsInfo }
  | { ok: false; code: SmtpFailureCode; message: string };

export async function presentedChain(o: PresentedChainOptions): Promise<PresentedChainResult> {
  if (o.starttls === 'smtp') {
    const probe = await probeSmtp({
      address: o.address,
      port: o.port,
      mxHost: o.host,
      timeoutMs: o.timeoutMs,
      totalTimeoutMs: o.timeoutMs * 4,
      ca: o.ca,
    });
    return probe.ok ? { ok: true, tls: probe.tls } : { ok: false, code: probe.code, message: probe.message };
  }
  try {
    return { ok: true, tls: await implicitTls(o) };
  } catch (err) {
    if (!(err instanceof SmtpError) || err.step === undefined) throw err;
    const where = net.isIPv6(o.address) ? `[${o.address}]:${o.port}` : `${o.address}:${o.port}`;
    return { ok: false, code: err.code as SmtpFailureCode, message: `${where} (${o.host}): ${err.message}` };
  }
}

/** One TLS handshake, the chain captured, the connection closed. */
function implicitTls(o: PresentedChainOptions): Promise<SmtpTlsInfo> {
  if (net.isIP(o.address) === 0)
    throw new SmtpError('SMTP_BAD_OPTIONS', `"${o.address}" is not an IP address`);
  return new Promise((resolve, reject) => {
    let connected = false;
    const socket = tls.connect({
      host: o.address,
      port: o.port,
      servername: net.isIP(o.host) === 0 ? o.host : undefined,
      rejectUnauthorized: false,
      secureContext: trustContext(o.ca),
      checkServerIdentity: () => undefined,
    });
    const finish = (result: SmtpTlsInfo | SmtpError) => {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      socket.destroy();
      if (result instanceof SmtpError) reject(result);
      else resolve(result);
    };
    const timer = setTimeout(() => {
      const step = connected ? 'tls-handshake' : 'connect';
      finish(new SmtpError('SMTP_TIMEOUT', `no answer within ${o.timeoutMs} ms`, { step }));
    }, o.timeoutMs);
    socket.once('connect', () => {
      connected = true;
    });
    socket.once('secureConnect', () => finish(captureTls(socket)));
    socket.once('error', (err: NodeJS.ErrnoException & { reason?: string }) => {
      const reason = err.reason ?? err.code ?? err.message;
      finish(
        connected
          ? new SmtpError('SMTP_TLS_HANDSHAKE', `TLS handshake failed: ${reason}`, {
              step: 'tls-handshake',
              reason,
            })
          : new SmtpError('SMTP_CONNECT', `cannot connect: ${reason}`, { step: 'connect', reason }),
      );
    });
    socket.once('close', () =>
      finish(
        new SmtpError('SMTP_TLS_HANDSHAKE', 'the server closed the connection during the TLS handshake', {
          step: 'tls-handshake',
        }),
      ),
    );
  });
}
