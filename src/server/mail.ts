// TLS-RPT reports by mail (RFC 8460 §3 "mailto:" rua, §5.3 email format) and DMARC aggregate reports
// (RFC 7489 §7.2.1.1: one mailbox usually receives both; ingest.ts tells them apart by content): the
// built-in SMTP receiver (smtp-server) and the DKIM rule shared with the IMAP poller.
//
// DMARC reports get the same DKIM rule: RFC 7489 does not require a signature, but an unsigned report
// could have been written by anyone; real reporters (Google, Microsoft, Yahoo...) sign. Set
// config.intake.acceptUnsigned to keep unsigned ones (stored with dkim "none").
//
// RFC 8460 §3: reports sent by mail must carry a valid DKIM signature (RFC 6376) of the reporting
// domain, without the l= tag, and reports without one are to be ignored. Here a message passes when
// one signature verifies (mailauth, with DNS through ctx.resolver, never the system resolver), has no
// l= tag, and its d= domain is aligned (equal, parent or child) with the reporting domain: the
// TLS-Report-Submitter header (RFC 8460 §5.3) or the From domain. Unsigned or failing messages are kept
// in the rejected list with the reason, unless config.intake.acceptUnsigned: then they are stored with
// dkim "none" / "fail". A DNS failure while fetching the key is temporary (SMTP 451, IMAP: next round).
//
// The receiver accepts mail for any recipient (it is meant to be the MX of the rua mailbox's domain, or
// to sit behind one) and answers 250 only once the report, or the rejection record, is committed; 451
// when the store or DNS failed, so the sender tries again; 552 for a message over config.intake.maxBytes
// (advertised with SIZE, also enforced on the stream; the refusal is recorded). AUTH is off; STARTTLS
// is offered only when a certificate is given. The limits per client and per session (connections,
// deadlines, commands without a message, message rate) are those of smtp-limits.ts: a client over one
// is answered 421 and disconnected, counted in mxguard_smtp_refusals_total{reason} and logged once per
// client per minute.
import type { SecureContext } from 'node:tls';
import { dkimVerify } from 'mailauth';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Resolver } from '../dns/resolver.js';
import { domainKey } from '../store/domain-rules.js';
import type { DkimVerdict } from '../store/types.js';
import { clientKey } from './client-key.js';
import { DEFAULT_SMTP_LIMITS } from './config.js';
import type { ServerContext } from './context.js';
import { ingestDeps, ingestReport, recordRejected, refusedForSize, type StoredRef } from './ingest.js';
import { counter } from './metrics.js';
import { RateLimiter } from './ratelimit.js';
import { type Refusal, SmtpLimiter } from './smtp-limits.js';
import { isStoreUnavailable, logStoreUnavailable, STORE_UNAVAILABLE_SMTP } from './store-unavailable.js';

// ---- DKIM (RFC 6376) as RFC 8460 §3 wants it ----

export interface ReportDkim {
  /** `temperror`: the key could not be looked up (DNS failure): try again later. */
  verdict: 'pass' | 'fail' | 'none' | 'temperror';
  /** What was found, for the rejected list and the logs. */
  reason: string;
  /** The d= domain of the passing signature. */
  signingDomain?: string;
  /** The From header address, when there is one. */
  from?: string;
}

/** A mailauth resolver (dns.promises.resolve-like, TXT only) that asks `resolver`. */
export function dkimResolver(resolver: Resolver): (name: string, type: string) => Promise<string[][]> {
  return async (name, type) => {
    if (type !== 'TXT') throw dnsError('ENOTIMP', `${type} lookups are not used for DKIM`);
    const result = await resolver.query(name, 'TXT');
    switch (result.outcome) {
      case 'ok':
        return result.answers.flatMap((r) => (r.type === 'TXT' ? [txtStrings(r.data)] : []));
      case 'nxdomain':
        throw dnsError('ENOTFOUND', `${name}: no such name`);
      case 'nodata':
        throw dnsError('ENODATA', `${name}: no TXT record`);
      default:
        throw dnsError('ESERVFAIL', `${name}: ${result.outcome}${result.error ? ` (${result.error})` : ''}`);
    }
  };
}

function txtStrings(data: string | Buffer | Array<string | Buffer>): string[] {
  return (Array.isArray(data) ? data : [data]).map((part) => part.toString());
}

function dnsError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** Check the DKIM signatures of `raw` against RFC 8460 §3. */
export async function verifyReportDkim(raw: Buffer, resolver: Resolver, now: Date): Promise<ReportDkim> {
  const checked = await dkimVerify(raw, { resolver: dkimResolver(resolver), curTime: now });
  const from = checked.headerFrom?.[0];
  const reportingDomains = reportingDomainsOf(checked.headers?.parsed ?? [], from);
  const signatures = checked.results.filter((r) => r.status.result !== 'none');
  if (signatures.length === 0) return { verdict: 'none', reason: 'the message has no DKIM signature', from };

  const problems: string[] = [];
  let temporary = false;
  for (const sig of signatures) {
    const who = `DKIM d=${sig.signingDomain} s=${sig.selector ?? '?'}`;
    const result = sig.status.result;
    if (result === 'temperror') temporary = true;
    if (result !== 'pass') {
      problems.push(`${who}: ${result}${sig.status.comment ? ` (${sig.status.comment})` : ''}`);
    } else if ((sig as { canonBodyLengthLimited?: boolean }).canonBodyLengthLimited) {
      // RFC 8460 §3: the signature must not use l= to limit the body length it covers.
      problems.push(`${who}: uses the l= tag, which RFC 8460 §3 forbids`);
    } else if (!reportingDomains.some((d) => aligned(domainKey(sig.signingDomain), d))) {
      problems.push(
        `${who}: not the reporting domain (${reportingDomains.join(', ') || 'no From or TLS-Report-Submitter'})`,
      );
    } else {
      return { verdict: 'pass', reason: `${who}: pass`, signingDomain: domainKey(sig.signingDomain), from };
    }
  }
  return { verdict: temporary ? 'temperror' : 'fail', reason: problems.join('; '), from };
}

/** RFC 8460 §5.3 TLS-Report-Submitter, then the From domain. */
function reportingDomainsOf(
  headers: Array<{ key: string; line: Buffer | string }>,
  from: string | undefined,
): string[] {
  const domains: string[] = [];
  for (const h of headers) {
    if (h.key !== 'tls-report-submitter') continue;
    const value = h.line
      .toString()
      .replace(/^[^:]*:/, '')
      .trim();
    if (value) domains.push(domainKey(value));
  }
  const fromDomain = from?.split('@').pop();
  if (fromDomain) domains.push(domainKey(fromDomain));
  return [...new Set(domains)];
}

/** Relaxed alignment without a public suffix list: equal, or one is a subdomain of the other. */
function aligned(signer: string, domain: string): boolean {
  if (!signer.includes('.')) return false;
  return signer === domain || domain.endsWith(`.${signer}`) || signer.endsWith(`.${domain}`);
}

// ---- one mailed report, any channel ----

export type MailOutcome =
  | { status: 'stored'; stored: StoredRef[]; dkim: DkimVerdict }
  | { status: 'rejected'; code: string; reason: string }
  /** Nothing was written; deliver it again later (DNS failure during the DKIM check). */
  | { status: 'retry'; reason: string };

/**
 * DKIM check, then ingestReport, or the rejection record. Store failures are thrown (nothing was
 * acknowledged): the caller answers 451 or leaves the message in the mailbox.
 */
export async function ingestMail(
  ctx: ServerContext,
  raw: Buffer,
  meta: { source: 'smtp' | 'imap'; envelopeFrom?: string },
): Promise<MailOutcome> {
  const deps = ingestDeps(ctx);
  const dkim = await verifyReportDkim(raw, ctx.resolver, ctx.now());
  if (dkim.verdict === 'temperror') return { status: 'retry', reason: dkim.reason };
  const sender = dkim.from ?? meta.envelopeFrom ?? '<>';
  const submitter = dkim.signingDomain ? `${sender} (DKIM d=${dkim.signingDomain})` : sender;

  if (dkim.verdict !== 'pass' && !ctx.config.intake.acceptUnsigned) {
    const code = dkim.verdict === 'none' ? 'DKIM_NONE' : 'DKIM_FAIL';
    const reason = `no valid DKIM signature of the reporting domain (RFC 8460 §3): ${dkim.reason}`;
    await recordRejected(deps, { source: meta.source, submitter, reason, size: raw.length, code });
    return { status: 'rejected', code, reason };
  }
  const result = await ingestReport(deps, raw, { source: meta.source, submitter, dkim: dkim.verdict });
  if ('rejected' in result) return { status: 'rejected', code: result.code, reason: result.rejected };
  return { status: 'stored', stored: result.stored, dkim: dkim.verdict };
}

// ---- the SMTP receiver ----

export interface MailIntakeOptions {
  /**
   * PEM key and certificate chain: STARTTLS is offered only with them. They serve clients that send no
   * SNI (Postfix by default); `sniCallback` picks another certificate for a client that names a host.
   */
  tls?: {
    key: string | Buffer;
    cert: string | Buffer;
    sniCallback?: (servername: string, callback: (err: Error | null, ctx?: SecureContext) => void) => void;
  };
}

export interface MailIntake {
  port: number;
  /** Replace the key and chain offered with STARTTLS (after a renewal); new sessions get them. */
  setCertificate(pair: { key: string | Buffer; cert: string | Buffer }): void;
  /** Stop accepting; sessions in progress get a few seconds to finish. */
  stop(): Promise<void>;
}

type SmtpError = Error & { responseCode: number };

function smtpError(responseCode: number, message: string): SmtpError {
  return Object.assign(new Error(message), { responseCode });
}

/** Start the SMTP receiver on config.smtp (loopback by default). */
export async function startMailIntake(
  ctx: ServerContext,
  options: MailIntakeOptions = {},
): Promise<MailIntake> {
  const listen = ctx.config.smtp;
  if (!listen) throw new Error('startMailIntake: config.smtp is not set');
  const maxBytes = ctx.config.intake.maxBytes;
  const log = ctx.logger.child({ component: 'smtp' });
  const limits = { ...DEFAULT_SMTP_LIMITS, ...ctx.config.smtpLimits };
  const now = () => ctx.now().getTime();
  const limiter = new SmtpLimiter(limits, { now });
  const refusals = counter(
    ctx.metrics,
    'mxguard_smtp_refusals_total',
    'SMTP sessions refused or closed by the intake limits, by reason',
    ['reason'],
  );
  // One log line per client per minute at most: a flood must not flood the log too.
  const refusalLog = new RateLimiter({ perMinute: 1, now });
  const noteRefusal = (address: string, refusal: Refusal) => {
    refusals.inc({ reason: refusal.reason });
    if (refusalLog.take(clientKey(address)).allowed) {
      log.warn({ client: address, reason: refusal.reason }, `SMTP client refused: ${refusal.text}`);
    }
  };
  const connectionOf = (session: SMTPServerSession) => {
    for (const connection of server.connections) if (connection.id === session.id) return connection;
    return undefined;
  };
  /** A deadline passed or a limit was hit outside a handler's reply: 421 and close (RFC 5321 §3.8). */
  const cut = (session: SMTPServerSession, refusal: Refusal) => {
    noteRefusal(session.remoteAddress, refusal);
    connectionOf(session)?.send(421, refusal.text);
  };

  const server = new SMTPServer({
    banner: 'mxguard TLS-RPT receiver',
    size: maxBytes,
    authOptional: true,
    disabledCommands: options.tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    ...(options.tls
      ? {
          key: options.tls.key,
          cert: options.tls.cert,
          ...(options.tls.sniCallback ? { SNICallback: options.tls.sniCallback } : {}),
        }
      : {}),
    logger: false,
    // No PTR lookup of the client: it would go to the system resolver, and nothing here uses the name.
    disableReverseLookup: true,
    // The fair share of the slots is decided in onConnect (smtp-limits.ts); this cap of smtp-server's
    // also counts the sockets still in its 100 ms wait before the greeting, so it is set higher.
    maxClients: limits.maxClients * 2,
    maxRecipients: 100,
    // smtp-server's own idle timeout: any traffic resets it; the deadlines of smtp-limits.ts do not.
    socketTimeout: 60_000,
    closeTimeout: 10_000,
    onConnect(session, callback) {
      const refusal = limiter.open(session.id, session.remoteAddress, (expired) => cut(session, expired));
      if (refusal) {
        noteRefusal(session.remoteAddress, refusal);
        return callback(smtpError(421, refusal.text));
      }
      const connection = connectionOf(session);
      if (connection) countIdleCommands(connection, () => limiter.idleCommand(session.id), cut);
      callback();
    },
    onMailFrom(_address, session, callback) {
      const refusal = limiter.mailFrom(session.id);
      if (!refusal) return callback();
      noteRefusal(session.remoteAddress, refusal);
      callback(smtpError(421, refusal.text));
    },
    onData(stream, session, callback) {
      limiter.dataStarted(session.id);
      stream.once('end', () => limiter.dataReceived(session.id));
      const answer = (err: Error | null, reply?: string) => {
        limiter.messageDone(session.id);
        callback(err, reply);
      };
      receive(ctx, stream, session, maxBytes).then(
        (reply) => answer(null, reply),
        (err: unknown) => {
          if (isSmtpError(err)) return answer(err);
          if (isStoreUnavailable(err)) {
            logStoreUnavailable(log, err, `SMTP from ${session.remoteAddress}`);
            return answer(smtpError(451, STORE_UNAVAILABLE_SMTP));
          }
          if ((err as NodeJS.ErrnoException).code === 'ECONNECTION') {
            // The client left (or was cut by dataSeconds) in the middle of the message.
            log.info({ client: session.remoteAddress }, 'the connection closed during DATA');
          } else {
            log.error({ err, client: session.remoteAddress }, 'could not store a mailed report');
          }
          answer(smtpError(451, '4.3.0 the report could not be stored; try again later'));
        },
      );
    },
    onClose(session) {
      limiter.close(session.id);
    },
  });
  server.on('error', (err) => log.warn({ err }, 'SMTP connection error'));

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.server.once('error', onError);
    server.listen(listen.port, listen.host, () => {
      server.server.off('error', onError);
      resolve();
    });
  });
  const address = server.server.address();
  const port = typeof address === 'object' && address ? address.port : listen.port;
  log.info({ host: listen.host, port }, 'SMTP receiver listening');
  return {
    port,
    setCertificate: (pair) => server.updateSecureContext({ key: pair.key, cert: pair.cert }),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())).finally(() => limiter.stop()),
  };
}

type SmtpConnection = SMTPServer['connections'] extends Set<infer C> ? C : never;

/** The commands that deliver nothing; each one counts against smtp.maxIdleCommands. */
const IDLE_COMMANDS = ['NOOP', 'RSET', 'HELP', 'VRFY', 'EHLO', 'HELO'] as const;

/**
 * Count the commands of `connection` that deliver nothing, and close it with 421 when `count` refuses
 * one. smtp-server has no hook per command; it looks each handler up as the connection's
 * `handler_<COMMAND>` method (declared in its types), so these are wrapped on this one connection.
 */
function countIdleCommands(
  connection: SmtpConnection,
  count: () => Refusal | undefined,
  cut: (session: SMTPServerSession, refusal: Refusal) => void,
): void {
  for (const command of IDLE_COMMANDS) {
    const name = `handler_${command}` as const;
    const original = connection[name];
    connection[name] = (line, callback) => {
      const refusal = count();
      if (!refusal) return original.call(connection, line, callback);
      cut(connection.session, refusal);
      callback();
    };
  }
}

function isSmtpError(err: unknown): err is SmtpError {
  return err instanceof Error && typeof (err as Partial<SmtpError>).responseCode === 'number';
}

/** One DATA: read it (up to the cap), ingest it, and say what the reply text is. */
async function receive(
  ctx: ServerContext,
  stream: SMTPServerDataStream,
  session: SMTPServerSession,
  maxBytes: number,
): Promise<string> {
  const raw = await readCapped(stream, maxBytes);
  const envelopeFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined;
  const deps = ingestDeps(ctx);
  if (raw === undefined || stream.sizeExceeded) {
    const size = stream.byteLength;
    await recordRejected(deps, {
      source: 'smtp',
      submitter: envelopeFrom || '<>',
      reason: `the message is ${size} bytes, more than the limit of ${maxBytes}`,
      size,
      code: 'TLSRPT_TOO_LARGE',
    });
    throw smtpError(552, `5.3.4 message larger than ${maxBytes} bytes`);
  }
  const outcome = await ingestMail(ctx, raw, { source: 'smtp', envelopeFrom: envelopeFrom || undefined });
  switch (outcome.status) {
    case 'retry':
      throw smtpError(451, `4.4.3 DKIM key lookup failed; try again later`);
    case 'rejected':
      ctx.logger.info({ client: session.remoteAddress, code: outcome.code }, 'mailed report rejected');
      // Over a size cap (ingest.ts refusedForSize): 552 like a message over maxBytes, also recorded.
      if (refusedForSize(outcome.code))
        throw smtpError(552, `5.3.4 ${outcome.code}: kept in the rejected list`);
      return `2.6.0 kept in the rejected list: ${outcome.code}`;
    case 'stored': {
      const created = outcome.stored.filter((s) => s.created).length;
      return `2.6.0 ${outcome.stored.length} report(s) stored, ${created} new`;
    }
  }
}

/** The whole message, or undefined when it is longer than `max` (the rest is read and dropped). */
function readCapped(stream: SMTPServerDataStream, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    let over = false;
    stream.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > max) {
        over = true;
        chunks.length = 0;
      }
      if (!over) chunks.push(chunk);
    });
    stream.once('error', reject);
    stream.once('end', () => resolve(over ? undefined : Buffer.concat(chunks)));
  });
}
