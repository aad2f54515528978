// SMTP replies (RFC 5321 §4.2): a bounded reader that turns the bytes a server sends into replies, and the
// error type of the SMTP probe. The reader keeps at most one line (MAX_LINE_BYTES) of unparsed input and
// rejects a reply larger than MAX_REPLY_BYTES, so a hostile server cannot make the client hold much memory.
import { ProtocolError } from '../common/errors.js';

/** The steps of a probe, in order; a failure names the one it stopped at. */
export const SMTP_STEPS = [
  'connect',
  'banner',
  'ehlo',
  'helo',
  'starttls',
  'tls-handshake',
  'ehlo-tls',
] as const;

export type SmtpStep = (typeof SMTP_STEPS)[number];

export const SMTP_FAILURE_CODES = [
  /** TCP connection refused or the address unreachable. */
  'SMTP_CONNECT',
  /** A step did not finish within its time limit (or the total limit ran out); `step` says which. */
  'SMTP_TIMEOUT',
  /** The greeting was 4xx/5xx. */
  'SMTP_BANNER_REJECT',
  /** EHLO was refused (and HELO too, when tried). */
  'SMTP_EHLO_REJECT',
  /** EHLO did not list STARTTLS (or only HELO was accepted). */
  'SMTP_NO_STARTTLS',
  /** STARTTLS was answered with 4xx/5xx. */
  'SMTP_STARTTLS_REFUSED',
  /** The TLS handshake failed; `reason` holds the OpenSSL reason. */
  'SMTP_TLS_HANDSHAKE',
  /** Not SMTP: unparsable or oversized replies, unexpected codes, the server closing mid-conversation. */
  'SMTP_PROTOCOL',
] as const;

export type SmtpFailureCode = (typeof SMTP_FAILURE_CODES)[number];

/** Failure codes, plus SMTP_BAD_OPTIONS for a caller's mistake (thrown, never returned). */
export type SmtpErrorCode = SmtpFailureCode | 'SMTP_BAD_OPTIONS';

/** One reply: the three-digit code and the text of each line (after "250-" / "250 "), in order. */
export interface SmtpReply {
  code: number;
  lines: string[];
}

export class SmtpError extends ProtocolError<SmtpErrorCode> {
  /** The step that failed (absent for SMTP_BAD_OPTIONS and for reader errors not yet tied to a step). */
  readonly step?: SmtpStep;
  /** The reply that caused the failure, when there was one. */
  readonly reply?: SmtpReply;
  /** The low-level reason: an errno code (ECONNREFUSED) or OpenSSL's reason ("wrong version number"). */
  readonly reason?: string;

  constructor(
    code: SmtpErrorCode,
    message: string,
    options: { step?: SmtpStep; reply?: SmtpReply; reason?: string; cause?: unknown } = {},
  ) {
    super(code, message, { where: options.step, cause: options.cause });
    this.name = 'SmtpError';
    this.step = options.step;
    this.reply = options.reply;
    this.reason = options.reason;
  }
}

/** Longest line accepted, counting its CRLF (RFC 5321 §4.5.3.1.5 allows 512; real servers stay far below). */
export const MAX_LINE_BYTES = 4096;
/** Largest reply accepted, all lines with their line ends together. */
export const MAX_REPLY_BYTES = 64 * 1024;

const LF = 0x0a;
// RFC 5321 §4.2: Reply-code [ SP textstring ] CRLF, or Reply-code "-" [ textstring ] CRLF for all lines but
// the last. Reply codes: first digit 2-5, second digit 0-5 (§4.2.1).
const REPLY_LINE = /^([2-5][0-5][0-9])(?:([ -])(.*))?$/s;
// Text may be UTF-8 (RFC 6531) but never holds control characters other than TAB: they would reach a terminal.
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

/** "250-first\r\n250 last\r\n" for { code: 250, lines: ['first', 'last'] }. */
export function formatReply(reply: SmtpReply): string {
  const lines = reply.lines.length > 0 ? reply.lines : [''];
  return lines.map((text, i) => `${reply.code}${i < lines.length - 1 ? '-' : ' '}${text}\r\n`).join('');
}

/** A reply as one line of text for messages: "554 go away / try later". */
export function replyText(reply: SmtpReply): string {
  return `${reply.code} ${reply.lines.join(' / ')}`.trim();
}

/**
 * Feed it the bytes from the socket; it returns every reply completed by them. Lines end in LF (a CR before
 * it is dropped). Throws SmtpError SMTP_PROTOCOL for a line that is not a reply line, a line longer than
 * MAX_LINE_BYTES, a reply larger than MAX_REPLY_BYTES or a multi-line reply whose codes differ; after that
 * the reader is unusable.
 */
export class ReplyReader {
  /** Bytes of the current, unfinished line (copied out of the socket's chunks). */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** Lines of the current, unfinished multi-line reply. */
  private code = 0;
  private lines: string[] = [];
  private replyBytes = 0;
  private failed?: SmtpError;

  /** Bytes held that are not yet part of a complete reply. */
  get bufferedBytes(): number {
    return this.partialBytes + this.replyBytes;
  }

  push(chunk: Buffer): SmtpReply[] {
    if (this.failed) throw this.failed;
    try {
      return this.read(chunk);
    } catch (err) {
      if (err instanceof SmtpError) {
        this.failed = err;
        this.partial = [];
        this.lines = [];
      }
      throw err;
    }
  }

  private read(chunk: Buffer): SmtpReply[] {
    const replies: SmtpReply[] = [];
    let start = 0;
    while (start < chunk.length) {
      const end = chunk.indexOf(LF, start);
      const piece = end === -1 ? chunk.subarray(start) : chunk.subarray(start, end + 1);
      this.partialBytes += piece.length;
      if (this.partialBytes > MAX_LINE_BYTES) {
        throw new SmtpError('SMTP_PROTOCOL', `reply line longer than ${MAX_LINE_BYTES} bytes`);
      }
      this.partial.push(Buffer.from(piece));
      if (end === -1) break;
      start = end + 1;
      const reply = this.completeLine();
      if (reply) replies.push(reply);
    }
    return replies;
  }

  private completeLine(): SmtpReply | undefined {
    const bytes = Buffer.concat(this.partial, this.partialBytes);
    this.replyBytes += this.partialBytes;
    this.partial = [];
    this.partialBytes = 0;
    if (this.replyBytes > MAX_REPLY_BYTES) {
      throw new SmtpError('SMTP_PROTOCOL', `reply larger than ${MAX_REPLY_BYTES} bytes`);
    }
    let line = bytes.toString('utf8', 0, bytes.length - 1);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    const match = REPLY_LINE.exec(line);
    if (!match || CONTROL.test(line)) {
      throw new SmtpError('SMTP_PROTOCOL', `not an SMTP reply line: ${JSON.stringify(line.slice(0, 80))}`);
    }
    const [, digits = '', separator, text = ''] = match;
    const code = Number(digits);
    if (this.lines.length > 0 && code !== this.code) {
      throw new SmtpError(
        'SMTP_PROTOCOL',
        `reply line ${this.lines.length + 1} has code ${code}, the lines before had ${this.code} (RFC 5321 §4.2.1)`,
      );
    }
    this.code = code;
    this.lines.push(text);
    if (separator === '-') return undefined;
    const reply = { code, lines: this.lines };
    this.lines = [];
    this.replyBytes = 0;
    return reply;
  }
}
