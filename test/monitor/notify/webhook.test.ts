// sendWebhook against real HTTP(S) receivers on loopback: the body and its HMAC (checked with the
// openssl command line, not node:crypto), the timestamp, no signature without a secret, only 2xx
// counts, redirects not followed, a receiver's endless answer is not read to its end, a silent
// receiver times out, HTTPS with a test CA.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { sendWebhook, type WebhookBody } from '../../../src/monitor/notify/webhook.js';
import type { AlertEvent } from '../../../src/store/monitor-types.js';
import { TestPki } from '../../helpers/pki.js';
import { type ServerTls, serverTls } from '../../helpers/server-tls.js';

const EVENT: AlertEvent = {
  event: 'alert.opened',
  domain: 'example.com',
  code: 'DANE_TLSA_MISMATCH',
  severity: 'fail',
  message: 'No TLSA record of _25._tcp.mx1.example.com matches the certificate mx1.example.com presents.',
  host: 'mx1.example.com',
  fix: '_25._tcp.mx1.example.com. IN TLSA 3 1 1 8c2f0c4b0e0b5a9b1c3d4e5f60718293a4b5c6d7e8f901234567890abcdef012',
  openedAt: '2026-12-07T10:00:00.000Z',
  dashboardUrl: 'https://mxguard.example.net/#/domains/example.com',
};
const NOW = new Date('2026-12-07T10:00:05.000Z');

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

/** A receiver on loopback that records each request and answers with `answer`. */
async function receiver(
  answer: (req: IncomingMessage, res: ServerResponse) => void,
  server: http.Server = http.createServer(),
): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  server.on('request', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      answer(req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const scheme = server instanceof https.Server ? 'https' : 'http';
  return {
    url: `${scheme}://127.0.0.1:${port}/hooks/mxguard?token=abc`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** HMAC-SHA256 by the openssl command line, as a receiver in another language would compute it. */
function opensslHmac(secret: string, body: string): string {
  const out = execFileSync('openssl', ['dgst', '-sha256', '-hmac', secret, '-r'], { input: body }).toString();
  return out.split(/\s/)[0] ?? '';
}

describe('sendWebhook', () => {
  it('POSTs the event as JSON with the delivery id and the time sent, signed over the exact body', async (t) => {
    const r = await receiver((_req, res) => res.writeHead(204).end());
    t.after(() => r.close());
    const result = await sendWebhook({ url: r.url, secret: 's3cret-shared' }, { id: 42, event: EVENT }, NOW);
    assert.deepEqual(result, { ok: true });
    assert.equal(r.received.length, 1);
    const { headers, body } = r.received[0]!;
    assert.equal(headers['content-type'], 'application/json');
    const parsed = JSON.parse(body) as WebhookBody;
    assert.deepEqual(parsed, { ...EVENT, deliveryId: 42, sentAt: '2026-12-07T10:00:05.000Z' });
    assert.equal(headers['x-mxguard-signature'], `sha256=${opensslHmac('s3cret-shared', body)}`);
    assert.equal(headers['x-mxguard-timestamp'], String(Date.parse('2026-12-07T10:00:05Z') / 1000));
    assert.equal(headers['x-mxguard-delivery'], '42');
    assert.equal(headers['x-mxguard-event'], 'alert.opened');
    // A different secret gives a signature the receiver refuses.
    assert.notEqual(headers['x-mxguard-signature'], `sha256=${opensslHmac('other', body)}`);
  });

  it('sends no signature header without a secret', async (t) => {
    const r = await receiver((_req, res) => res.writeHead(200).end('ok'));
    t.after(() => r.close());
    assert.deepEqual(await sendWebhook({ url: r.url }, { id: 1, event: EVENT }, NOW), { ok: true });
    assert.equal(r.received[0]!.headers['x-mxguard-signature'], undefined);
  });

  it('counts only 2xx: a 500 fails with the status and the start of the answer', async (t) => {
    const r = await receiver((_req, res) => res.writeHead(500).end('database down'));
    t.after(() => r.close());
    const result = await sendWebhook({ url: r.url }, { id: 1, event: EVENT }, NOW);
    assert.deepEqual(result, { ok: false, error: 'HTTP 500: database down' });
  });

  it('does not follow a redirect: it fails naming the Location, and the other host gets nothing', async (t) => {
    const elsewhere = await receiver((_req, res) => res.writeHead(204).end());
    t.after(() => elsewhere.close());
    const r = await receiver((_req, res) => res.writeHead(307, { location: elsewhere.url }).end());
    t.after(() => r.close());
    const result = await sendWebhook({ url: r.url, secret: 'x' }, { id: 1, event: EVENT }, NOW);
    assert.equal(result.ok, false);
    assert.match(
      (result as { error: string }).error,
      /^HTTP 307: redirect to http:\/\/127\.0\.0\.1:\d+\/.* not followed$/,
    );
    assert.equal(elsewhere.received.length, 0);
  });

  it('stops reading an endless error answer after a few KiB instead of waiting for its end', async (t) => {
    let written = 0;
    const r = await receiver((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(16 * 1024, 'x');
      const pump = () => {
        while (!res.destroyed && res.write(chunk)) written += chunk.length;
        if (!res.destroyed) res.once('drain', pump);
      };
      res.on('close', () => res.removeAllListeners('drain'));
      pump();
    });
    t.after(() => r.close());
    // The timeout is far away: only the read cap ends this attempt with the status.
    const result = await sendWebhook({ url: r.url }, { id: 1, event: EVENT }, NOW, { timeoutMs: 30_000 });
    assert.equal(result.ok, false);
    assert.match((result as { error: string }).error, /^HTTP 502: x{200}\.\.\.$/);
    assert.ok(written < 64 * 1024 * 1024, `the receiver wrote ${written} bytes`);
  });

  it('gives up on a receiver that never answers after the timeout', async (t) => {
    const r = await receiver(() => {});
    t.after(() => r.close());
    const result = await sendWebhook({ url: r.url }, { id: 1, event: EVENT }, NOW, { timeoutMs: 300 });
    assert.deepEqual(result, { ok: false, error: 'no answer within 0.3 s' });
  });

  it('fails when nothing listens', async () => {
    const r = await receiver(() => {});
    await r.close();
    const result = await sendWebhook({ url: r.url }, { id: 1, event: EVENT }, NOW);
    assert.equal(result.ok, false);
    assert.match((result as { error: string }).error, /ECONNREFUSED/);
  });

  it('refuses a URL that is not http(s)', async () => {
    const result = await sendWebhook({ url: 'file:///etc/passwd' }, { id: 1, event: EVENT }, NOW);
    assert.deepEqual(result, { ok: false, error: 'the webhook URL must be http: or https:, not file:' });
  });

  describe('over HTTPS', () => {
    let pki: TestPki;
    let cert: ServerTls;
    before(() => {
      pki = TestPki.create();
      cert = serverTls(pki);
    });
    after(() => pki.remove());

    it('trusts the extra CA it is given, and refuses the certificate without it', async (t) => {
      const r = await receiver(
        (_req, res) => res.writeHead(202).end(),
        https.createServer({ key: cert.key, cert: cert.cert }),
      );
      t.after(() => r.close());
      const url = r.url.replace('127.0.0.1', 'localhost');
      assert.deepEqual(await sendWebhook({ url }, { id: 1, event: EVENT }, NOW, { ca: [cert.ca] }), {
        ok: true,
      });
      const refused = await sendWebhook({ url }, { id: 2, event: EVENT }, NOW);
      assert.equal(refused.ok, false);
      assert.match((refused as { error: string }).error, /certificate/);
      assert.equal(r.received.length, 1);
    });
  });
});
