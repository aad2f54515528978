// The SMTP receiver's intake limits (src/server/smtp-limits.ts, applied in src/server/mail.ts), tried as
// the attacker of issue 10 did: a real receiver on loopback, clients from different loopback source
// addresses (127.0.0.2, 127.0.0.3…), reports stored in the real SQLite store. Unsigned reports are
// accepted here (intake.acceptUnsigned) so that no DNS is needed; DKIM is tested in test/server/mail.test.ts.
//
// Nothing here measures time: the deadlines are set to a second and the tests wait for the server to
// act (a test on code without the deadline runs into the test timeout and fails).
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { pino } from 'pino';
import type { ServeConfig } from '../../src/server/context.js';
import { type MailIntake, startMailIntake } from '../../src/server/mail.js';
import {
  counterValue,
  gzippedReport,
  reportEmail,
  type SmtpClient,
  type SmtpReply,
  sendMail,
  smtpConnect,
  type TestContext,
  testContext,
} from '../fixtures/intake/helpers.js';
import { eventually } from '../fixtures/serve/helpers.js';

const ATTACKER = '127.0.0.2';
const SENDER = '127.0.0.3';

function report(id: string): string {
  return reportEmail({ reports: [gzippedReport({ 'report-id': id })], messageId: id });
}

interface Receiver {
  ctx: TestContext;
  smtp: MailIntake;
  /** Log lines written by the receiver (JSON objects). */
  logs: Array<Record<string, unknown>>;
}

const running: Receiver[] = [];
const clients: SmtpClient[] = [];

/** A receiver with these limits (defaults for the rest), logging into `logs`. */
async function receiver(limits: Partial<NonNullable<ServeConfig['smtpLimits']>> = {}): Promise<Receiver> {
  const ctx = await testContext({
    intake: { acceptUnsigned: true },
    config: { smtp: { host: '127.0.0.1', port: 0 }, smtpLimits: limits as ServeConfig['smtpLimits'] },
  });
  const logs: Array<Record<string, unknown>> = [];
  ctx.logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line));
        done();
      },
    }),
  );
  const smtp = await startMailIntake(ctx);
  const started = { ctx, smtp, logs };
  running.push(started);
  return started;
}

async function connect(port: number, localAddress: string): Promise<SmtpClient> {
  const client = await smtpConnect(port, '127.0.0.1', { localAddress });
  clients.push(client);
  return client;
}

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const { smtp, ctx } of running.splice(0)) {
    await smtp.stop();
    await ctx.close();
  }
});

async function storedIds(ctx: TestContext): Promise<string[]> {
  return (await ctx.store.listReports({ limit: 1000 })).items.map((r) => r.reportId);
}

/**
 * Sends `first`, then the lines of `then` in turn every 20 ms without waiting for replies, until the
 * server answers 421; that reply. Rejects when the connection closes without a 421.
 */
async function keepSending(client: SmtpClient, first: string, then: string[]): Promise<SmtpReply> {
  let cut: SmtpReply | undefined;
  let closed: unknown;
  const send = (line: string) =>
    client.command(line).then(
      (reply) => {
        if (reply.code === 421) cut ??= reply;
      },
      (err: unknown) => {
        closed ??= err;
      },
    );
  send(first);
  for (let i = 0; cut === undefined && closed === undefined; i++) {
    await delay(20);
    send(then[i % then.length]!);
  }
  await delay(0);
  if (cut === undefined) throw closed;
  return cut;
}

/** For tests that wait for a deadline: without it they would wait for ever. */
const WAITS = { timeout: 20_000 };

describe('SMTP intake: one client cannot shut out the others (issue 10 point 4)', () => {
  it('50 connections from one client kept open with NOOP do not stop another client’s report', async () => {
    const { ctx, smtp } = await receiver(); // the defaults: maxClients 50
    let stopped = false;
    let greeted = 0;
    // The attack as reported: 50 connections, each kept busy with NOOP, each reopened when closed.
    const attacker = async () => {
      while (!stopped) {
        const client = await smtpConnect(smtp.port, '127.0.0.1', { localAddress: ATTACKER }).catch(
          () => undefined,
        );
        if (client?.greeting.code !== 220) {
          client?.close();
          await delay(50);
          continue;
        }
        greeted++;
        try {
          await client.command('EHLO attacker.example');
          while (!stopped) {
            await client.command('NOOP');
            await delay(20);
          }
        } catch {
          // cut by the server: open another one
        } finally {
          client.close();
        }
      }
    };
    const attackers = Array.from({ length: 50 }, attacker);
    try {
      await eventually(() => (greeted < 5 ? undefined : true), 'five attackers greeted', 15_000, 20);
      const reply = await sendMail(smtp.port, report('while-flooded'), undefined, { localAddress: SENDER });
      assert.equal(reply.code, 250, reply.text);
      assert.ok((await storedIds(ctx)).includes('while-flooded'));
    } finally {
      stopped = true;
      await Promise.all(attackers);
    }
  });

  it('answers the 6th connection of one client 421 4.7.0 and closes it; others are not affected', async () => {
    const { ctx, smtp, logs } = await receiver({ maxConnectionsPerClient: 5 });
    const open: SmtpClient[] = [];
    for (let i = 0; i < 5; i++) {
      const client = await connect(smtp.port, ATTACKER);
      assert.equal(client.greeting.code, 220, client.greeting.text);
      open.push(client);
    }
    for (let i = 0; i < 3; i++) {
      const sixth = await connect(smtp.port, ATTACKER);
      assert.equal(sixth.greeting.code, 421);
      assert.match(sixth.greeting.text, /^4\.7\.0 /);
      await assert.rejects(sixth.command('EHLO attacker.example'), /closed/);
    }
    // The five admitted sessions still work, and another client is admitted.
    assert.equal((await open[0]!.command('EHLO attacker.example')).code, 250);
    const other = await connect(smtp.port, SENDER);
    assert.equal(other.greeting.code, 220);

    // A closed session gives its slot back (the next one is admitted after the close is seen: the
    // receiver greets 100 ms after accepting, long after the previous socket's close on loopback).
    assert.equal((await open[1]!.command('QUIT')).code, 221);
    open[1]!.close();
    await delay(50);
    assert.equal((await connect(smtp.port, ATTACKER)).greeting.code, 220);

    // Counted by reason; logged once per client per minute, not once per refusal.
    assert.equal(await counterValue(ctx, 'mxguard_smtp_refusals_total', { reason: 'client-connections' }), 3);
    const refusalLogs = logs.filter((l) => l.reason === 'client-connections');
    assert.equal(refusalLogs.length, 1, JSON.stringify(refusalLogs));
    assert.equal(refusalLogs[0]!.client, ATTACKER);
  });

  it('keeps the last slots of maxClients for clients with no connection open', async () => {
    const { ctx, smtp } = await receiver({
      maxClients: 6,
      reservedForNewClients: 2,
      maxConnectionsPerClient: 10,
    });
    /** The greeting of `count` connections from `address` (kept open): code and enhanced code. */
    const greetings = async (address: string, count: number) => {
      const seen: string[] = [];
      for (let i = 0; i < count; i++) {
        const { greeting } = await connect(smtp.port, address);
        seen.push(greeting.code === 220 ? '220' : `${greeting.code} ${greeting.text.split(' ')[0]}`);
      }
      return seen;
    };
    // One client takes what is not reserved, and no more.
    assert.deepEqual(await greetings(ATTACKER, 5), ['220', '220', '220', '220', '421 4.7.0']);
    // A client with no connection gets a reserved slot, but not a second one.
    assert.deepEqual(await greetings(SENDER, 2), ['220', '421 4.7.0']);
    assert.deepEqual(await greetings('127.0.0.4', 1), ['220']);
    // Now every slot is taken: 421 with "mail system congestion" (RFC 3463 X.4.5) for everyone.
    assert.deepEqual(await greetings('127.0.0.5', 1), ['421 4.4.5']);
    assert.equal(await counterValue(ctx, 'mxguard_smtp_refusals_total', { reason: 'reserved' }), 2);
    assert.equal(await counterValue(ctx, 'mxguard_smtp_refusals_total', { reason: 'server-full' }), 1);
  });
});

describe('SMTP intake: a session must deliver, not just talk', () => {
  it('closes a session after maxIdleCommands commands that deliver nothing, counted from the last message', async () => {
    const { ctx, smtp } = await receiver({ maxIdleCommands: 10 });
    const client = await connect(smtp.port, ATTACKER);
    // EHLO and 8 NOOP/RSET/HELP: 9 of the 10 allowed.
    assert.equal((await client.command('EHLO sender.example')).code, 250);
    for (const line of ['NOOP', 'RSET', 'HELP', 'NOOP', 'RSET', 'NOOP', 'VRFY postmaster', 'NOOP']) {
      assert.ok((await client.command(line)).code < 400, line);
    }
    // A delivered message starts the count again.
    assert.equal((await client.command('MAIL FROM:<bounces@sender.example>')).code, 250);
    assert.equal((await client.command('RCPT TO:<tlsrpt@example.com>')).code, 250);
    assert.equal((await client.data(report('between-noops'))).code, 250);
    for (let i = 0; i < 10; i++) assert.equal((await client.command('NOOP')).code, 250, `NOOP ${i + 1}`);
    const cut = await client.command('NOOP');
    assert.equal(cut.code, 421);
    assert.match(cut.text, /^4\.7\.0 /);
    await assert.rejects(client.command('NOOP'), /closed/);
    assert.ok((await storedIds(ctx)).includes('between-noops'));
    assert.equal(await counterValue(ctx, 'mxguard_smtp_refusals_total', { reason: 'idle-commands' }), 1);
  });

  it('closes a session that sends no message within idleSeconds, whatever else it sends', WAITS, async () => {
    const { ctx, smtp } = await receiver({ idleSeconds: 1, maxIdleCommands: 1_000_000 });
    const client = await connect(smtp.port, ATTACKER);
    assert.equal((await client.command('EHLO sender.example')).code, 250);
    // MAIL, RCPT and RSET steps do not count as delivering: only a whole message does.
    const cut = await keepSending(client, 'MAIL FROM:<a@sender.example>', [
      'RCPT TO:<tlsrpt@example.com>',
      'RSET',
      'NOOP',
      'EHLO sender.example',
      'MAIL FROM:<a@sender.example>',
    ]);
    assert.equal(cut.code, 421);
    assert.match(cut.text, /^4\.4\.2 /);
    await assert.rejects(client.command('NOOP'), /closed/);
    assert.equal(await counterValue(ctx, 'mxguard_smtp_refusals_total', { reason: 'idle-timeout' }), 1);
  });

  it(
    'closes a session whose message takes longer than dataSeconds, even if bytes keep coming',
    WAITS,
    async () => {
      const { ctx, smtp } = await receiver({ dataSeconds: 1 });
      const client = await connect(smtp.port, ATTACKER);
      for (const line of [
        'EHLO sender.example',
        'MAIL FROM:<a@sender.example>',
        'RCPT TO:<tlsrpt@example.com>',
      ]) {
        assert.equal((await client.command(line)).code, 250, line);
      }
      assert.equal((await client.command('DATA')).code, 354);
      const cut = await keepSending(client, 'Subject: slow', ['X-Trickle: one more line']);
      assert.equal(cut.code, 421);
      assert.match(cut.text, /^4\.4\.2 /);
      assert.equal(await counterValue(ctx, 'mxguard_smtp_refusals_total', { reason: 'data-timeout' }), 1);
      assert.deepEqual(await storedIds(ctx), []);
    },
  );
});

describe('SMTP intake: messages per client', () => {
  it('refuses MAIL FROM over messagesPerMinute with 421 4.7.0, per client', async () => {
    // The test clock stands still, so the bucket never refills here.
    const { ctx, smtp } = await receiver({ messagesPerMinute: 3 });
    for (let i = 1; i <= 3; i++) {
      const reply = await sendMail(smtp.port, report(`rate-${i}`), undefined, { localAddress: ATTACKER });
      assert.equal(reply.code, 250, reply.text);
    }
    const refused = await sendMail(smtp.port, report('rate-4'), undefined, { localAddress: ATTACKER });
    assert.equal(refused.code, 421);
    assert.match(refused.text, /^4\.7\.0 .*try again in \d+ s/);
    const other = await sendMail(smtp.port, report('rate-other'), undefined, { localAddress: SENDER });
    assert.equal(other.code, 250, other.text);
    assert.deepEqual((await storedIds(ctx)).sort(), ['rate-1', 'rate-2', 'rate-3', 'rate-other']);
    assert.equal(await counterValue(ctx, 'mxguard_smtp_refusals_total', { reason: 'message-rate' }), 1);
  });
});
