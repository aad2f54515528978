// IMAP polling (src/server/imap.ts) against a real Dovecot on loopback (test/lab/imap.ts): reports are
// ingested with the DKIM rule of RFC 8460 §3 (keys in the lab DNS server) and moved to the processed
// mailbox only after the store committed; failures leave the message for the next round.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DnsClient } from '../../src/dns/client.js';
import type { ServeConfig } from '../../src/server/context.js';
import { pollOnce, startImapPoller } from '../../src/server/imap.js';
import type { Store } from '../../src/store/types.js';
import {
  type DkimKey,
  dkimKey,
  gzippedReport,
  reportEmail,
  signEmail,
  type TestContext,
  testContext,
} from '../fixtures/intake/helpers.js';
import { type LabDnsServer, startDnsServer } from '../lab/dns-server.js';
import { type LabImapServer, startImapServer, withImapClient } from '../lab/imap.js';

let dns: LabDnsServer;
let resolver: DnsClient;
let imap: LabImapServer;
let sender: DkimKey;
let broken: DkimKey;

before(async () => {
  sender = dkimKey('sender.example');
  broken = dkimKey('broken.example');
  dns = await startDnsServer([
    { origin: 'sender.example', records: [sender.record] },
    { origin: 'broken.example', servfail: true, records: [broken.record] },
  ]);
  resolver = new DnsClient({ servers: [{ host: dns.host, port: dns.port }], timeoutMs: 500, tries: 1 });
  imap = await startImapServer({ host: '127.0.0.1' });
});
after(async () => {
  await imap?.stop();
  await dns?.stop();
});

function imapConfig(mailbox: string, password = imap.password): NonNullable<ServeConfig['imap']> {
  return {
    host: imap.host,
    port: imap.port,
    secure: false,
    user: imap.user,
    password,
    mailbox,
    processedMailbox: `${mailbox}-done`,
    intervalSeconds: 3600,
  };
}

async function append(mailbox: string, message: string, flags: string[] = []): Promise<void> {
  await withImapClient(imap, async (client) => {
    await client.mailboxCreate(mailbox);
    await client.append(mailbox, message, flags);
  });
}

/** Message-ID local parts in a mailbox, with their flags. */
async function contents(mailbox: string): Promise<Map<string, string[]>> {
  return withImapClient(imap, async (client) => {
    const found = new Map<string, string[]>();
    const status = await client.status(mailbox, { messages: true });
    if (status === false || !status.messages) return found;
    const lock = await client.getMailboxLock(mailbox);
    try {
      for await (const m of client.fetch('1:*', { envelope: true, flags: true })) {
        found.set((m.envelope?.messageId ?? '').replace(/^<|@.*$/g, ''), [...(m.flags ?? [])]);
      }
    } finally {
      lock.release();
    }
    return found;
  });
}

async function report(id: string, key?: DkimKey, from?: string): Promise<string> {
  const message = reportEmail({
    reports: [gzippedReport({ 'report-id': id })],
    messageId: id,
    ...(from ? { from, submitter: from.split('@')[1] } : {}),
  });
  return key ? signEmail(message, key) : message;
}

describe('IMAP poller', () => {
  let ctx: TestContext;

  before(async () => {
    ctx = await testContext({ resolver, config: { imap: imapConfig('Reports') } });
  });
  after(async () => ctx.close());

  it('stores signed reports, rejects the rest, moves what is committed, leaves DNS failures', async () => {
    await append('Reports', await report('imap-ok', sender));
    await append('Reports', await report('imap-seen', sender), ['\\Seen']);
    await append('Reports', await report('imap-unsigned'));
    const tampered = (await report('imap-tampered', sender)).replace('aggregate TLS report', 'changed text');
    await append('Reports', tampered);
    await append('Reports', await report('imap-dns', broken, 'r@broken.example'));
    const big = reportEmail({
      reports: [Buffer.alloc(ctx.config.intake.maxBytes, 0x41)],
      messageId: 'imap-big',
    });
    await append('Reports', big);

    const poller = await startImapPoller(ctx);
    let summary: Awaited<ReturnType<typeof poller.pollNow>>;
    try {
      summary = await poller.pollNow();
    } finally {
      await poller.stop();
    }
    assert.equal(summary.error, undefined);

    const stored = (await ctx.store.listReports({ limit: 100 })).items;
    const byId = new Map(stored.map((r) => [r.reportId, r]));
    assert.equal(byId.get('imap-ok')?.source, 'imap');
    assert.equal(byId.get('imap-ok')?.dkim, 'pass');
    assert.equal(byId.get('imap-seen')?.dkim, 'pass');
    for (const id of ['imap-unsigned', 'imap-tampered', 'imap-dns', 'imap-big']) assert.ok(!byId.has(id), id);

    const rejected = (await ctx.store.listRejected({ limit: 100 })).items;
    assert.ok(rejected.some((r) => r.source === 'imap' && /no DKIM signature/.test(r.reason)));
    assert.ok(rejected.some((r) => r.source === 'imap' && /body hash did not verify/.test(r.reason)));
    assert.ok(rejected.some((r) => r.source === 'imap' && /more than the limit/.test(r.reason)));
    assert.equal(rejected.length, 3);

    const left = await contents('Reports');
    assert.deepEqual([...left.keys()], ['imap-dns']);
    assert.ok(!left.get('imap-dns')!.includes('\\Seen'), 'a message left behind was marked \\Seen');
    const done = await contents('Reports-done');
    assert.deepEqual([...done.keys()].sort(), [
      'imap-big',
      'imap-ok',
      'imap-seen',
      'imap-tampered',
      'imap-unsigned',
    ]);
  });

  it('a report delivered twice is stored once; both copies are moved', async () => {
    const message = await report('imap-twice', sender);
    await append('Reports', message);
    await append('Reports', message);
    const summary = await pollOnce(ctx);
    assert.equal(summary.stored, 2);
    assert.equal(summary.left, 1); // the DNS failure of the first test is still there
    assert.equal(
      (await ctx.store.listReports({ limit: 100 })).items.filter((r) => r.reportId === 'imap-twice').length,
      1,
    );
    assert.deepEqual([...(await contents('Reports')).keys()], ['imap-dns']);
  });
});

describe('IMAP poller failures', () => {
  it('leaves the message when the store fails, and takes it in the next round', async () => {
    const ctx = await testContext({ resolver, config: { imap: imapConfig('Flaky') } });
    const real = ctx.store;
    let failing = true;
    ctx.store = new Proxy(real, {
      get(target, key, receiver) {
        if (key === 'saveReport' && failing) {
          return async (..._args: Parameters<Store['saveReport']>) => {
            throw new Error('database is locked');
          };
        }
        const value = Reflect.get(target, key, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    try {
      await append('Flaky', await report('flaky-1', sender));
      const first = await pollOnce(ctx);
      assert.deepEqual({ stored: first.stored, left: first.left }, { stored: 0, left: 1 });
      assert.deepEqual([...(await contents('Flaky')).keys()], ['flaky-1']);

      failing = false;
      const second = await pollOnce(ctx);
      assert.deepEqual({ stored: second.stored, left: second.left }, { stored: 1, left: 0 });
      assert.equal((await contents('Flaky')).size, 0);
      assert.ok((await real.listReports({ limit: 10 })).items.some((r) => r.reportId === 'flaky-1'));
    } finally {
      ctx.store = real;
      await ctx.close();
    }
  });

  it('a failed login is reported by the round, never thrown', async () => {
    const ctx = await testContext({ resolver, config: { imap: imapConfig('Reports', 'wrong password') } });
    try {
      const summary = await pollOnce(ctx);
      assert.ok(summary.error);
      assert.equal(summary.messages, 0);
    } finally {
      await ctx.close();
    }
  });

  it('an unreachable server is reported by the round, never thrown', async () => {
    const config = imapConfig('Reports');
    const ctx = await testContext({ resolver, config: { imap: { ...config, port: 9 } } });
    try {
      const summary = await pollOnce(ctx);
      assert.ok(summary.error);
    } finally {
      await ctx.close();
    }
  });
});
