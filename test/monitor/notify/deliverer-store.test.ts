// The deliverer over the real SQLite store: a check outcome opens an alert with its deliveries
// (deliveriesFor: one per webhook, one e-mail), the deliverer sends them to a real webhook receiver that
// fails twice before it recovers and to a real SMTP submission server (STARTTLS, AUTH) on loopback, and
// listDeliveries shows each delivery's state, attempts and last error as it goes.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { simpleParser } from 'mailparser';
import { Deliverer } from '../../../src/monitor/notify/deliverer.js';
import { deliveriesFor } from '../../../src/monitor/notify/targets.js';
import type { WebhookBody } from '../../../src/monitor/notify/webhook.js';
import type { MonitorSettings } from '../../../src/monitor/settings.js';
import type { AlertEvent } from '../../../src/store/monitor-types.js';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import type { Store } from '../../../src/store/types.js';
import { TestPki } from '../../helpers/pki.js';
import { serverTls } from '../../helpers/server-tls.js';
import {
  SUBMISSION_PASSWORD,
  SUBMISSION_USER,
  type SubmissionServer,
  startSubmissionServer,
} from '../../helpers/submission.js';

const T0 = new Date('2026-12-07T10:00:00.000Z');
const FIX =
  '_25._tcp.mx1.example.com. IN TLSA 3 1 1 5f1c8c38b1e3d6f3a6cbd0b3d2c6a1e4b9f0d7a2c5e8b1f4a7d0c3e6b9f2a5d8';

describe('Deliverer with the SQLite store', () => {
  let pki: TestPki;
  let dir: string;
  let store: Store;
  let smtp: SubmissionServer;
  let ca: string;
  const hooks: WebhookBody[] = [];
  let hookServer: http.Server;
  let hookUrl: string;

  before(async () => {
    pki = TestPki.create();
    const tls = serverTls(pki);
    ca = tls.ca;
    smtp = await startSubmissionServer(tls);
    // Fails the first two requests, then accepts.
    hookServer = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        hooks.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookBody);
        res.writeHead(hooks.length <= 2 ? 503 : 204).end(hooks.length <= 2 ? 'restarting' : undefined);
      });
    });
    await new Promise<void>((resolve) => hookServer.listen(0, '127.0.0.1', resolve));
    hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/alerts`;
    dir = mkdtempSync(join(tmpdir(), 'mxguard-deliverer-'));
    store = await openSqliteStore(dir);
    await store.addDomain(
      'example.com',
      { mode: 'testing', mx: ['mx1.example.com'], maxAge: 86400, rua: ['mailto:tlsrpt@example.com'] },
      T0,
    );
  });

  after(async () => {
    await store.close();
    hookServer.closeAllConnections();
    await new Promise<void>((resolve) => hookServer.close(() => resolve()));
    await smtp.close();
    rmSync(dir, { recursive: true, force: true });
    pki.remove();
  });

  it('delivers the alert by webhook after two failures and by e-mail, and the store shows each state', async () => {
    const settings: Pick<MonitorSettings, 'webhooks' | 'email'> = {
      webhooks: [{ url: hookUrl, secret: 'shared' }],
      email: {
        host: 'localhost',
        port: smtp.port,
        security: 'starttls',
        user: SUBMISSION_USER,
        password: SUBMISSION_PASSWORD,
        from: 'mxguard@example.net',
        to: ['postmaster@example.com'],
      },
    };
    const event: AlertEvent = {
      event: 'alert.opened',
      domain: 'example.com',
      code: 'DANE_TLSA_MISMATCH',
      severity: 'fail',
      message: 'No TLSA record of _25._tcp.mx1.example.com matches the certificate mx1.example.com presents.',
      host: 'mx1.example.com',
      fix: FIX,
      openedAt: T0.toISOString(),
    };
    const { opened } = await store.recordCheck(
      {
        run: {
          domain: 'example.com',
          at: T0.toISOString(),
          durationMs: 5,
          status: 'fail',
          findings: [],
          trigger: 'schedule',
        },
        open: [
          {
            alert: {
              domain: 'example.com',
              code: event.code,
              subject: 'mx1.example.com',
              severity: 'fail',
              message: event.message,
              fix: FIX,
            },
            deliveries: deliveriesFor(event, settings),
          },
        ],
        resolve: [],
      },
      T0,
    );
    const alertId = opened[0]!;
    let now = T0;
    const deliverer = new Deliverer({ store, settings, clock: () => now, ca: [ca] });
    const states = async () =>
      Object.fromEntries(
        (await store.listDeliveries({ alertId })).items.map((d) => [
          d.channel,
          `${d.state} ${d.attempts}${d.lastError === undefined ? '' : ` ${d.lastError}`}`,
        ]),
      );

    await deliverer.deliverDue();
    assert.deepEqual(await states(), { webhook: 'pending 1 HTTP 503: restarting', email: 'delivered 1' });
    now = new Date(T0.getTime() + 30_000);
    await deliverer.deliverDue();
    assert.deepEqual(await states(), { webhook: 'pending 2 HTTP 503: restarting', email: 'delivered 1' });
    now = new Date(T0.getTime() + 90_000);
    await deliverer.deliverDue();
    assert.deepEqual(await states(), { webhook: 'delivered 3 HTTP 503: restarting', email: 'delivered 1' });

    assert.equal(hooks.length, 3);
    assert.ok(
      hooks.every((h) => h.fix === FIX && h.code === 'DANE_TLSA_MISMATCH' && h.event === 'alert.opened'),
    );
    assert.equal(smtp.messages.length, 1);
    const mail = await simpleParser(smtp.messages[0]!.raw);
    assert.equal(mail.subject, '[mxguard] OPEN fail DANE_TLSA_MISMATCH example.com');
    assert.ok(mail.text?.includes(FIX), mail.text);
    assert.deepEqual(smtp.messages[0]!.to, ['postmaster@example.com']);
  });
});
