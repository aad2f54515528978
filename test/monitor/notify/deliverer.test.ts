// The deliverer over an in-memory store (the few MonitorStore methods it uses) with an injected clock
// and real HTTP receivers on loopback: backoff times, a receiver that fails a while then recovers gets
// the notification once, one that always fails is given up a day after creation, one that never
// answers holds up neither another target nor stop(), a target no longer configured is abandoned.
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { Deliverer, GIVE_UP_MS, nextAttemptAt } from '../../../src/monitor/notify/deliverer.js';
import { type WebhookBody, webhookSignature } from '../../../src/monitor/notify/webhook.js';
import type { AlertEvent, Delivery, MonitorStore, NewDelivery } from '../../../src/store/monitor-types.js';

const T0 = new Date('2026-12-07T10:00:00.000Z');
const S = 1000;

const EVENT: AlertEvent = {
  event: 'alert.opened',
  domain: 'example.com',
  code: 'MTASTS_MX_NOT_COVERED',
  severity: 'fail',
  message: 'mx2.example.com is in DNS but not in the MTA-STS policy.',
  host: 'mx2.example.com',
  fix: 'mx: mx2.example.com',
  openedAt: T0.toISOString(),
};

/** The deliveries part of MonitorStore, in memory (pure unit tests only). */
class MemoryDeliveries implements Pick<MonitorStore, 'dueDeliveries' | 'settleDelivery'> {
  readonly rows: Delivery[] = [];
  /** Emits `settled` with the id after each settleDelivery. */
  readonly events = new EventEmitter();

  add(delivery: NewDelivery, now: Date): Delivery {
    const row: Delivery = {
      ...delivery,
      id: this.rows.length + 1,
      alertId: 1,
      state: 'pending',
      attempts: 0,
      createdAt: now.toISOString(),
      nextAttemptAt: now.toISOString(),
    };
    this.rows.push(row);
    return row;
  }

  async dueDeliveries(now: Date, limit: number): Promise<Delivery[]> {
    return this.rows
      .filter((d) => d.state === 'pending' && Date.parse(d.nextAttemptAt!) <= now.getTime())
      .sort((a, b) => Date.parse(a.nextAttemptAt!) - Date.parse(b.nextAttemptAt!) || a.id - b.id)
      .slice(0, limit)
      .map((d) => structuredClone(d));
  }

  async settleDelivery(
    id: number,
    result: { ok: true } | { ok: false; error: string; nextAttemptAt?: Date },
    now: Date,
  ): Promise<void> {
    const row = this.rows.find((d) => d.id === id);
    if (row === undefined || row.state !== 'pending') return;
    row.attempts++;
    row.lastAttemptAt = now.toISOString();
    if (result.ok) {
      row.state = 'delivered';
      row.deliveredAt = row.lastAttemptAt;
      delete row.nextAttemptAt;
    } else {
      row.lastError = result.error;
      if (result.nextAttemptAt === undefined) {
        row.state = 'abandoned';
        delete row.nextAttemptAt;
      } else {
        row.nextAttemptAt = result.nextAttemptAt.toISOString();
      }
    }
    this.events.emit('settled', id);
  }

  /** Resolves once delivery `id` was settled. */
  async settled(id: number): Promise<void> {
    while (((await once(this.events, 'settled')) as [number])[0] !== id) {}
  }

  get(id: number): Delivery {
    return this.rows.find((d) => d.id === id)!;
  }
}

/** A webhook receiver on loopback; `answer` decides per request (its index from 0). */
async function receiver(answer: (index: number, req: IncomingMessage, res: ServerResponse) => void) {
  const received: Array<{ body: WebhookBody; raw: string; signature?: string }> = [];
  const events = new EventEmitter();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const signature = req.headers['x-mxguard-signature'];
      received.push({
        body: JSON.parse(raw) as WebhookBody,
        raw,
        ...(typeof signature === 'string' ? { signature } : {}),
      });
      events.emit('request');
      answer(received.length - 1, req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    /** Resolves on the next request received. */
    nextRequest: () => once(events, 'request'),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('nextAttemptAt', () => {
  const created = T0.toISOString();
  const cases: Array<[attempts: number, afterMs: number, expectedDelayMs: number | undefined]> = [
    [0, 0, 30 * S],
    [1, 30 * S, 60 * S],
    [2, 90 * S, 120 * S],
    [6, 3000 * S, 1920 * S],
    [7, 4000 * S, 3600 * S], // 3840 s capped at an hour
    [40, 10 * 3600 * S, 3600 * S],
    [30, GIVE_UP_MS - 600 * S, 600 * S], // never later than a day after creation
    [30, GIVE_UP_MS, undefined], // a day after creation: given up
    [30, GIVE_UP_MS + S, undefined],
  ];
  for (const [attempts, afterMs, expected] of cases) {
    it(`after ${attempts} earlier attempts, ${afterMs / S} s after creation: ${expected === undefined ? 'abandoned' : `${expected / S} s later`}`, () => {
      const now = new Date(T0.getTime() + afterMs);
      const next = nextAttemptAt({ attempts, createdAt: created }, now);
      assert.equal(next === undefined ? undefined : next.getTime() - now.getTime(), expected);
    });
  }
});

describe('Deliverer', () => {
  it('retries a receiver that fails a while and delivers once it recovers, once, without real waiting', async (t) => {
    const r = await receiver((i, _req, res) => res.writeHead(i < 3 ? 503 : 204).end());
    t.after(() => r.close());
    let now = T0;
    const store = new MemoryDeliveries();
    const delivery = store.add({ channel: 'webhook', target: r.url, event: EVENT }, now);
    const deliverer = new Deliverer({
      store,
      settings: { webhooks: [{ url: r.url, secret: 'k' }] },
      clock: () => now,
    });
    const at = (seconds: number) => {
      now = new Date(T0.getTime() + seconds * S);
    };
    // Attempt 1 at 0 s fails; not due again before 30 s.
    await deliverer.deliverDue();
    at(29);
    await deliverer.deliverDue();
    assert.equal(r.received.length, 1);
    // 30 s: attempt 2 fails; 90 s: attempt 3 fails; 210 s: attempt 4 succeeds.
    for (const second of [30, 90, 210]) {
      at(second);
      await deliverer.deliverDue();
    }
    assert.equal(r.received.length, 4);
    const row = store.get(delivery.id);
    assert.equal(row.state, 'delivered');
    assert.equal(row.attempts, 4);
    assert.equal(row.deliveredAt, '2026-12-07T10:03:30.000Z');
    // Later passes send nothing more.
    at(7200);
    await deliverer.deliverDue();
    assert.equal(r.received.length, 4);
    assert.deepEqual(
      r.received.map((x) => x.body.sentAt),
      ['10:00:00', '10:00:30', '10:01:30', '10:03:30'].map((hms) => `2026-12-07T${hms}.000Z`),
    );
    for (const x of r.received) {
      assert.equal(x.body.deliveryId, delivery.id);
      assert.equal(x.signature, webhookSignature('k', x.raw));
    }
  });

  it('gives a receiver that always fails up a day after the delivery was created', async (t) => {
    const r = await receiver((_i, _req, res) => res.writeHead(500).end('no'));
    t.after(() => r.close());
    let now = T0;
    const store = new MemoryDeliveries();
    const delivery = store.add({ channel: 'webhook', target: r.url, event: EVENT }, now);
    const deliverer = new Deliverer({ store, settings: { webhooks: [{ url: r.url }] }, clock: () => now });
    for (let pass = 0; pass < 100 && store.get(delivery.id).state === 'pending'; pass++) {
      await deliverer.deliverDue();
      const next = store.get(delivery.id).nextAttemptAt;
      if (next !== undefined) now = new Date(next);
    }
    const row = store.get(delivery.id);
    assert.equal(row.state, 'abandoned');
    assert.equal(row.lastError, 'HTTP 500: no');
    const sent = r.received.map((x) => Date.parse(x.body.sentAt));
    const gaps = sent.slice(1).map((ms, i) => (ms - sent[i]!) / S);
    assert.deepEqual(gaps.slice(0, 8), [30, 60, 120, 240, 480, 960, 1920, 3600]);
    assert.ok(gaps.every((g) => g <= 3600));
    assert.equal(sent.at(-1), T0.getTime() + GIVE_UP_MS);
    assert.equal(row.attempts, r.received.length);
  });

  it('does not let a receiver that never answers hold up another target, and stops without waiting for it', async (t) => {
    const silent = await receiver(() => {});
    t.after(() => silent.close());
    const good = await receiver((_i, _req, res) => res.writeHead(204).end());
    t.after(() => good.close());
    const now = T0;
    const store = new MemoryDeliveries();
    // Five notifications for the silent receiver come first, then one for the good one.
    const stuck = [1, 2, 3, 4, 5].map(() =>
      store.add({ channel: 'webhook', target: silent.url, event: EVENT }, now),
    );
    const other = store.add(
      { channel: 'webhook', target: good.url, event: EVENT },
      new Date(now.getTime() + 1),
    );
    const deliverer = new Deliverer({
      store,
      settings: { webhooks: [{ url: silent.url }, { url: good.url }] },
      clock: () => new Date(now.getTime() + 1),
    });
    const arrived = Promise.all([good.nextRequest(), silent.nextRequest(), store.settled(other.id)]);
    deliverer.wake();
    await arrived;
    // The good receiver got its notification while the silent one still holds its first request.
    assert.equal(silent.received.length, 1);
    assert.ok(stuck.every((d) => store.get(d.id).attempts === 0));
    await deliverer.stop();
    // Stopping aborted the silent attempt: not counted, still pending for the next start.
    assert.ok(stuck.every((d) => store.get(d.id).state === 'pending' && store.get(d.id).attempts === 0));
    assert.equal(store.get(other.id).state, 'delivered');
  });

  it('delivers what is due when started, and what a check wrote when woken', async (t) => {
    const r = await receiver((_i, _req, res) => res.writeHead(200).end());
    t.after(() => r.close());
    const store = new MemoryDeliveries();
    store.add({ channel: 'webhook', target: r.url, event: EVENT }, T0);
    const deliverer = new Deliverer({ store, settings: { webhooks: [{ url: r.url }] }, clock: () => T0 });
    t.after(() => deliverer.stop());
    let arrived = r.nextRequest();
    deliverer.start();
    await arrived;
    arrived = r.nextRequest();
    store.add({ channel: 'webhook', target: r.url, event: { ...EVENT, event: 'alert.resolved' } }, T0);
    deliverer.wake();
    await arrived;
    assert.deepEqual(
      r.received.map((x) => [x.body.deliveryId, x.body.event]),
      [
        [1, 'alert.opened'],
        [2, 'alert.resolved'],
      ],
    );
  });

  it('looks again after the look under way when asked meanwhile, so what a check wrote is not missed', async (t) => {
    const r = await receiver((_i, _req, res) => res.writeHead(204).end());
    t.after(() => r.close());
    const store = new MemoryDeliveries();
    // The first look reads the store, then waits until released: the second deliverDue and the new
    // delivery come while it is under way.
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const dueDeliveries = store.dueDeliveries.bind(store);
    let looks = 0;
    store.dueDeliveries = async (now, limit) => {
      const due = await dueDeliveries(now, limit);
      if (looks++ === 0) await gate;
      return due;
    };
    const deliverer = new Deliverer({ store, settings: { webhooks: [{ url: r.url }] }, clock: () => T0 });
    const first = deliverer.deliverDue();
    const written = store.add({ channel: 'webhook', target: r.url, event: EVENT }, T0);
    const second = deliverer.deliverDue();
    release();
    // The second caller's promise covers the delivery it asked for.
    await second;
    assert.equal(store.get(written.id).state, 'delivered');
    await first;
    assert.equal(r.received.length, 1);
  });

  it('abandons at once a delivery whose webhook or e-mail is no longer configured', async () => {
    const store = new MemoryDeliveries();
    const hook = store.add({ channel: 'webhook', target: 'http://127.0.0.1:9/removed', event: EVENT }, T0);
    const mail = store.add({ channel: 'email', target: 'ops@example.com', event: EVENT }, T0);
    const deliverer = new Deliverer({ store, settings: { webhooks: [] }, clock: () => T0 });
    await deliverer.deliverDue();
    assert.equal(store.get(hook.id).state, 'abandoned');
    assert.equal(store.get(hook.id).lastError, 'this webhook is no longer configured');
    assert.equal(store.get(mail.id).state, 'abandoned');
    assert.equal(store.get(mail.id).lastError, 'monitor.email is no longer configured');
  });
});
