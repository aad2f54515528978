// Alert e-mail (issue 12): one plain-text message per alert event, sent through the admin's SMTP
// submission server (RFC 6409) with nodemailer: STARTTLS required (RFC 3207), implicit TLS (RFC 8314 §3)
// or, for labs, none; AUTH when a user is set. No HTML, no attachments: the subject names the change,
// the body says what is wrong, where, the fix (the record to publish) and the dashboard link.
// One attempt per call, bounded by EMAIL_TIMEOUT_MS; retrying is the deliverer's job (deliverer.ts).
import tls from 'node:tls';
import nodemailer from 'nodemailer';
import { shown, terminalText } from '../../common/text.js';
import type { AlertEvent } from '../../store/monitor-types.js';
import type { EmailTarget } from '../settings.js';
import type { AttemptResult } from './webhook.js';

/** Connecting, the greeting and each wait for the server, each. */
export const SMTP_STEP_TIMEOUT_MS = 10_000;
/** The whole submission. */
export const EMAIL_TIMEOUT_MS = 60_000;

export interface AlertMail {
  subject: string;
  text: string;
}

/** Untrusted text (a certificate subject, a server's reply) kept to printable lines. */
function safeLines(text: string): string {
  return text
    .split(/\r?\n/)
    .map((line) => terminalText(line, 2000))
    .join('\n');
}

/** A field on one line: line breaks and other controls escaped. */
function oneLine(text: string): string {
  return terminalText(text, 500);
}

/** "[mxguard] OPEN fail DANE_TLSA_MISMATCH example.com" and the plain-text body. */
export function alertMail(event: AlertEvent): AlertMail {
  const opened = event.event === 'alert.opened';
  const subject = terminalText(
    `[mxguard] ${opened ? 'OPEN' : 'RESOLVED'} ${event.severity} ${event.code} ${event.domain}`,
    200,
  );
  const domain = oneLine(event.domain);
  const lines = [
    opened
      ? `mxguard opened an alert for ${domain}:`
      : `The alert for ${domain} below is resolved: the last check no longer finds it.`,
    '',
    safeLines(event.message),
    '',
    `Code:     ${oneLine(event.code)} (${oneLine(event.severity)})`,
  ];
  if (event.host !== undefined && event.host !== '') lines.push(`Host:     ${oneLine(event.host)}`);
  lines.push(`Opened:   ${oneLine(event.openedAt)}`);
  if (event.resolvedAt !== undefined) lines.push(`Resolved: ${oneLine(event.resolvedAt)}`);
  if (opened && event.fix !== undefined && event.fix !== '') {
    lines.push('', 'Fix (publish this):', '', safeLines(event.fix));
  }
  if (event.dashboardUrl !== undefined) lines.push('', `Dashboard: ${oneLine(event.dashboardUrl)}`);
  lines.push('', '-- ', 'Sent by mxguard serve (monitor.email).');
  return { subject, text: `${lines.join('\n')}\n` };
}

export interface EmailOptions {
  /** Extra trust anchors (PEM) on top of Node's root store, as serve's --ca-file gives them. */
  ca?: readonly string[];
  /** Default EMAIL_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Aborts the attempt (serve is stopping). */
  signal?: AbortSignal;
}

/** Submits one alert mail to `to`. Never throws: failures come back as data. */
export async function sendAlertMail(
  target: EmailTarget,
  to: readonly string[],
  delivery: { id: number; event: AlertEvent },
  options: EmailOptions = {},
): Promise<AttemptResult> {
  const transport = nodemailer.createTransport({
    host: target.host,
    port: target.port,
    secure: target.security === 'tls',
    requireTLS: target.security === 'starttls',
    ignoreTLS: target.security === 'none',
    ...(target.user !== undefined ? { auth: { user: target.user, pass: target.password ?? '' } } : {}),
    tls: {
      minVersion: 'TLSv1.2',
      ...(options.ca !== undefined && options.ca.length > 0
        ? { ca: [...tls.rootCertificates, ...options.ca] }
        : {}),
    },
    connectionTimeout: SMTP_STEP_TIMEOUT_MS,
    greetingTimeout: SMTP_STEP_TIMEOUT_MS,
    socketTimeout: SMTP_STEP_TIMEOUT_MS,
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  const { subject, text } = alertMail(delivery.event);
  const timeout = AbortSignal.timeout(options.timeoutMs ?? EMAIL_TIMEOUT_MS);
  try {
    await transport.sendMail({
      from: target.from,
      to: [...to],
      subject,
      text,
      headers: {
        // RFC 3834 §5: a machine-made message (no vacation replies).
        'Auto-Submitted': 'auto-generated',
        'X-Mxguard-Delivery': String(delivery.id),
      },
      signal: options.signal !== undefined ? AbortSignal.any([timeout, options.signal]) : timeout,
    });
    return { ok: true };
  } catch (err) {
    const message = timeout.aborted
      ? `no answer within ${(options.timeoutMs ?? EMAIL_TIMEOUT_MS) / 1000} s`
      : '';
    return { ok: false, error: message || shown((err as Error).message, 200) };
  } finally {
    transport.close();
  }
}
