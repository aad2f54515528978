// Alert webhooks (issue 12): one HTTP(S) POST of an alert event as JSON to a configured URL. The body is
// the AlertEvent plus `deliveryId` (the same on every retry: receivers dedupe on it) and `sentAt` (this
// attempt's time). With a shared secret the POST carries X-Mxguard-Signature: sha256=<hex HMAC-SHA256 of
// the exact body> (GitHub's scheme, so off-the-shelf receivers verify it); `sentAt` is inside the signed
// body, so a receiver that refuses old ones refuses replays (docs/monitoring.md, "Notifications").
//
// One attempt per call, bounded: WEBHOOK_TIMEOUT_MS for the whole exchange, redirects never followed (a
// 3xx fails and names its Location), only 2xx counts, at most MAX_RESPONSE_BYTES of the answer read (for
// the error text). Retrying is the deliverer's job (deliverer.ts).
import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { shown } from '../../common/text.js';
import type { AlertEvent } from '../../store/monitor-types.js';
import type { WebhookTarget } from '../settings.js';

/** The whole exchange: connect, send, status line and the part of the answer that is read. */
export const WEBHOOK_TIMEOUT_MS = 10_000;
/** Of a receiver's answer, only this much is read (it only feeds an error message). */
export const MAX_RESPONSE_BYTES = 4096;
export const WEBHOOK_USER_AGENT = 'mxguard/0.1 (+alert webhook)';

/** What a receiver gets: the alert event, which delivery it is, and when this attempt was sent. */
export interface WebhookBody extends AlertEvent {
  deliveryId: number;
  /** ISO time of this attempt (inside the signed body: receivers refuse old ones). */
  sentAt: string;
}

export type AttemptResult = { ok: true } | { ok: false; error: string };

export interface WebhookOptions {
  /** Extra trust anchors (PEM) on top of Node's root store, as serve's --ca-file gives them. */
  ca?: readonly string[];
  /** Default WEBHOOK_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Aborts the attempt (serve stopping). */
  signal?: AbortSignal;
}

/** `sha256=` and the hex HMAC-SHA256 of the body under the secret. */
export function webhookSignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

/** The JSON text of one attempt. */
export function webhookBody(event: AlertEvent, deliveryId: number, sentAt: Date): string {
  const body: WebhookBody = { ...event, deliveryId, sentAt: sentAt.toISOString() };
  return JSON.stringify(body);
}

/** POSTs one attempt of a delivery to the target. Never throws: failures come back as data. */
export async function sendWebhook(
  target: WebhookTarget,
  delivery: { id: number; event: AlertEvent },
  now: Date,
  options: WebhookOptions = {},
): Promise<AttemptResult> {
  let url: URL;
  try {
    url = new URL(target.url);
  } catch {
    return { ok: false, error: 'the webhook URL is not a URL' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return { ok: false, error: `the webhook URL must be http: or https:, not ${shown(url.protocol)}` };
  }
  const body = webhookBody(delivery.event, delivery.id, now);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'user-agent': WEBHOOK_USER_AGENT,
    'x-mxguard-event': delivery.event.event,
    'x-mxguard-delivery': String(delivery.id),
    'x-mxguard-timestamp': String(Math.floor(now.getTime() / 1000)),
  };
  if (target.secret !== undefined && target.secret !== '') {
    headers['x-mxguard-signature'] = webhookSignature(target.secret, body);
  }
  return post(url, headers, body, options);
}

function post(
  url: URL,
  headers: Record<string, string>,
  body: string,
  options: WebhookOptions,
): Promise<AttemptResult> {
  const timeoutMs = options.timeoutMs ?? WEBHOOK_TIMEOUT_MS;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: AttemptResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      req.destroy();
      resolve(result);
    };
    const onAbort = () => finish({ ok: false, error: 'aborted (serve is stopping)' });
    const request = url.protocol === 'https:' ? https.request : http.request;
    // agent: false: one connection per attempt, closed after it (alerts are rare; no idle sockets kept).
    const req = request(url, {
      method: 'POST',
      headers,
      agent: false,
      ...(url.protocol === 'https:' && options.ca !== undefined && options.ca.length > 0
        ? { ca: [...tls.rootCertificates, ...options.ca] }
        : {}),
    });
    const timer = setTimeout(
      () => finish({ ok: false, error: `no answer within ${timeoutMs / 1000} s` }),
      timeoutMs,
    );
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err) => finish({ ok: false, error: shown(err.message, 200) }));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 300) return finish({ ok: true });
      if (status >= 300 && status < 400) {
        const location = res.headers.location ?? '(no Location)';
        return finish({
          ok: false,
          error: `HTTP ${status}: redirect to ${shown(location, 200)} not followed`,
        });
      }
      // The answer's start, for the error message; the rest is never read.
      const chunks: Buffer[] = [];
      let size = 0;
      const done = () =>
        finish({
          ok: false,
          error: `HTTP ${status}${size > 0 ? `: ${shown(Buffer.concat(chunks).toString('utf8'), 200)}` : ''}`,
        });
      res.on('data', (chunk: Buffer) => {
        const room = MAX_RESPONSE_BYTES - size;
        chunks.push(chunk.subarray(0, room));
        size += Math.min(chunk.length, room);
        if (size >= MAX_RESPONSE_BYTES) done();
      });
      res.on('end', done);
      res.on('error', done);
    });
    req.end(body);
  });
}
