// The accounting of the SMTP intake limits (src/server/smtp-limits.ts) without sockets: per-client
// connections with IPv6 counted per /64 (which loopback cannot show: it has one IPv6 address), the
// share of maxClients held back for new clients, commands without a message, the message rate, and
// the deadlines; and the `smtp` settings. The receiver that applies it is tested in
// test/server/mail-limits.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, DEFAULT_SMTP_LIMITS, loadServeSettings } from '../../src/server/config.js';
import { type Refusal, SmtpLimiter, type SmtpLimits } from '../../src/server/smtp-limits.js';

let nextId = 0;

function limiter(limits: Partial<SmtpLimits> = {}, now = () => 0): SmtpLimiter {
  return new SmtpLimiter({ ...DEFAULT_SMTP_LIMITS, ...limits }, { now });
}

/** Open a session from `address`; its id, or the refusal reason. */
function open(l: SmtpLimiter, address: string, expired: (r: Refusal) => void = () => {}): string {
  const id = `s${++nextId}`;
  const refusal = l.open(id, address, expired);
  return refusal ? refusal.reason : id;
}

describe('SmtpLimiter: connections', () => {
  it('counts an IPv6 client per /64 and an IPv4-mapped one as its IPv4 address', () => {
    const l = limiter({ maxConnectionsPerClient: 3 });
    try {
      const ids = ['2001:db8:1:2::1', '2001:db8:1:2::2', '2001:db8:1:2:ffff:ffff:ffff:ffff'].map((a) =>
        open(l, a),
      );
      assert.ok(
        ids.every((id) => id.startsWith('s')),
        ids.join(),
      );
      assert.equal(open(l, '2001:db8:1:2::abcd'), 'client-connections');
      assert.match(open(l, '2001:db8:1:3::1'), /^s/);

      assert.match(open(l, '192.0.2.1'), /^s/);
      assert.match(open(l, '::ffff:192.0.2.1'), /^s/);
      assert.match(open(l, '192.0.2.1'), /^s/);
      assert.equal(open(l, '::ffff:192.0.2.1'), 'client-connections');

      // A closed session gives its slot back, once.
      l.close(ids[0]!);
      l.close(ids[0]!);
      assert.match(open(l, '2001:db8:1:2::9'), /^s/);
      assert.equal(open(l, '2001:db8:1:2::10'), 'client-connections');
    } finally {
      l.stop();
    }
  });

  it('keeps reservedForNewClients of maxClients for clients with no connection open', () => {
    const l = limiter({ maxClients: 6, reservedForNewClients: 2, maxConnectionsPerClient: 10 });
    try {
      const a = [1, 2, 3, 4].map(() => open(l, '192.0.2.1'));
      assert.ok(a.every((id) => id.startsWith('s')));
      assert.equal(open(l, '192.0.2.1'), 'reserved');
      const b = open(l, '192.0.2.2');
      assert.match(b, /^s/);
      assert.equal(open(l, '192.0.2.2'), 'reserved');
      assert.match(open(l, '192.0.2.3'), /^s/);
      assert.equal(open(l, '192.0.2.4'), 'server-full');
      assert.equal(l.openSessions, 6);
      // A slot given back goes to a new client first.
      l.close(a[0]!);
      assert.equal(open(l, '192.0.2.1'), 'reserved');
      assert.match(open(l, '192.0.2.5'), /^s/);
    } finally {
      l.stop();
    }
  });

  it('refuses limits that leave no slot for anyone', () => {
    assert.throws(() => limiter({ maxClients: 5, reservedForNewClients: 5 }), RangeError);
  });
});

describe('SmtpLimiter: commands and messages', () => {
  it('allows maxIdleCommands commands without a message, then refuses; a message starts the count again', () => {
    const l = limiter({ maxIdleCommands: 3 });
    try {
      const id = open(l, '192.0.2.1');
      for (let i = 0; i < 3; i++) assert.equal(l.idleCommand(id), undefined);
      assert.equal(l.idleCommand(id)?.reason, 'idle-commands');
      l.dataStarted(id);
      l.dataReceived(id);
      l.messageDone(id);
      for (let i = 0; i < 3; i++) assert.equal(l.idleCommand(id), undefined);
      assert.match(l.idleCommand(id)?.text ?? '', /^4\.7\.0 /);
    } finally {
      l.stop();
    }
  });

  it('takes one of messagesPerMinute per MAIL FROM, per client, refilled over the minute', () => {
    let now = 0;
    const l = limiter({ messagesPerMinute: 2 }, () => now);
    try {
      const one = open(l, '2001:db8::1');
      const two = open(l, '2001:db8::2'); // the same /64: the same bucket
      assert.equal(l.mailFrom(one), undefined);
      assert.equal(l.mailFrom(two), undefined);
      const refused = l.mailFrom(one);
      assert.equal(refused?.reason, 'message-rate');
      assert.match(refused?.text ?? '', /^4\.7\.0 .*try again in 30 s/);
      assert.equal(l.mailFrom(open(l, '2001:db8:0:1::1')), undefined);
      now += 30_000;
      assert.equal(l.mailFrom(two), undefined);
      assert.equal(l.mailFrom(two)?.reason, 'message-rate');
    } finally {
      l.stop();
    }
  });
});

describe('SmtpLimiter: deadlines', () => {
  // Fractions of a second are allowed here (the config takes whole seconds).
  it('ends a session after idleSeconds without a message, whatever commands it sends', async () => {
    const l = limiter({ idleSeconds: 0.05, maxIdleCommands: 1000 });
    try {
      const expired = new Promise<Refusal>((resolve) => {
        const id = open(l, '192.0.2.1', resolve);
        for (let i = 0; i < 10; i++) l.idleCommand(id);
        l.mailFrom(id);
      });
      const refusal = await expired;
      assert.equal(refusal.reason, 'idle-timeout');
      assert.match(refusal.text, /^4\.4\.2 /);
    } finally {
      l.stop();
    }
  });

  it('gives a message dataSeconds from DATA to its end', async () => {
    const l = limiter({ idleSeconds: 3600, dataSeconds: 0.05 });
    try {
      const refusal = await new Promise<Refusal>((resolve) => {
        const id = open(l, '192.0.2.1', resolve);
        l.dataStarted(id);
      });
      assert.equal(refusal.reason, 'data-timeout');
    } finally {
      l.stop();
    }
  });
});

describe('smtp settings (config file key "smtp")', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mxguard-smtp-limits-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const load = (content?: unknown) => {
    const config = join(dir, 'serve.json');
    if (content !== undefined) writeFileSync(config, JSON.stringify(content));
    return loadServeSettings({ cli: content === undefined ? {} : { config }, env: {}, cwd: dir });
  };
  const problems = (content: unknown): string[] => {
    try {
      load(content);
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.problems;
    }
    assert.fail('expected the settings to be refused');
  };

  it('defaults, and keys from the file over them one by one', () => {
    assert.deepEqual(load().smtpLimits, DEFAULT_SMTP_LIMITS);
    assert.deepEqual(load({ smtp: { maxConnectionsPerClient: 3, idleSeconds: 30 } }).smtpLimits, {
      ...DEFAULT_SMTP_LIMITS,
      maxConnectionsPerClient: 3,
      idleSeconds: 30,
    });
  });

  it('refuses unknown keys, bad numbers, and a reserve that takes every slot', () => {
    assert.ok(problems({ smtp: { maxIdle: 3 } }).some((p) => /smtp: unknown key "maxIdle"/.test(p)));
    assert.ok(problems({ smtp: { idleSeconds: 0 } }).some((p) => /smtp\.idleSeconds: /.test(p)));
    assert.ok(
      problems({ smtp: { maxClients: 20, reservedForNewClients: 20 } }).some((p) =>
        /smtp\.reservedForNewClients: must be less than smtp\.maxClients \(20\)/.test(p),
      ),
    );
  });
});
