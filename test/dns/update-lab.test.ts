// DNS UPDATE publishing (src/dns/update.ts) against a real authoritative server: knotd signing the lab zones
// with an update ACL for TSIG keys (test/lab/knot-update.ts), unbound validating. Published RRsets are read
// back from knotd and through the validating resolver (AD); every failure gives its named error and changes
// nothing (read back). A loopback TCP proxy in front of knotd lets a second writer land between our read and
// our UPDATE (the prerequisites must then fail), and can corrupt the signed answer.
// Interop: the same changes made with BIND's nsupdate (bind9-dnsutils) on a twin zone give the same zone.
//
// Needs root (port 53 on 127.0.55.x) and the Debian packages knot, unbound, bind9-dnsutils.
// Addresses: 127.0.55.1 knotd, .2 unbound, .3 the proxy, .9 nothing; no other test file uses 127.0.55.x.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { quoteTxt } from '../../src/common/txt.js';
import { DnsClient } from '../../src/dns/client.js';
import { joinTxt } from '../../src/dns/resolver.js';
import { DnsUpdateError, type RRsetReplacement, replaceRRsets } from '../../src/dns/update.js';
import { requireCommand } from '../lab/dnssec.js';
import { type KnotUpdateLab, startKnotUpdateLab } from '../lab/knot-update.js';

const hex = (byte: string) => byte.repeat(32);
const tlsa = (byte: string) => `3 1 1 ${hex(byte)}`;
const LONG_TXT = `v=spf1 ${Array.from({ length: 40 }, (_, i) => `ip4:192.0.2.${i}`).join(' ')} -all`;

let lab: KnotUpdateLab;

before(async () => {
  lab = await startKnotUpdateLab({
    zones: [
      { name: 'u1.test', records: ['@ TXT "apex"', 'alias CNAME elsewhere.u1.test.'] },
      { name: 'u3.test', records: [] },
      // interop twins: ours and nsupdate's
      { name: 'ours.test', records: ['_mta-sts TXT "v=STSv1; id=1"'] },
      { name: 'bind.test', records: ['_mta-sts TXT "v=STSv1; id=1"'] },
    ],
    keys: [
      { name: 'upd', algorithm: 'hmac-sha256', zones: ['u1.test', 'ours.test', 'bind.test'] },
      { name: 'upd384', algorithm: 'hmac-sha384', zones: ['u1.test'] },
      { name: 'other', algorithm: 'hmac-sha512', zones: ['u3.test'] },
    ],
    authoritativeAddress: '127.0.55.1',
    resolverAddress: '127.0.55.2',
  });
});

after(async () => {
  await lab?.stop();
});

const publish = (changes: RRsetReplacement[], options: Partial<Parameters<typeof replaceRRsets>[1]> = {}) =>
  replaceRRsets(changes, { server: lab.authoritative, key: lab.keys.upd!, timeoutMs: 5000, ...options });

describe('publishing through knotd', () => {
  it('publishes TLSA and TXT in one update; the validating resolver answers them with AD', async () => {
    const result = await publish([
      { name: '_25._tcp.mx.u1.test', type: 'TLSA', ttl: 60, records: [tlsa('ab'), tlsa('cd')] },
      { name: '_mta-sts.u1.test.', type: 'TXT', ttl: 60, records: ['v=STSv1; id=20261207'] },
    ]);
    assert.equal(result.zone, 'u1.test');
    assert.deepEqual(result.changed, [
      { name: '_25._tcp.mx.u1.test', type: 'TLSA', before: [], after: [tlsa('ab'), tlsa('cd')] },
      { name: '_mta-sts.u1.test', type: 'TXT', before: [], after: ['v=STSv1; id=20261207'] },
    ]);
    const client = new DnsClient({ servers: [lab.resolver] });
    const tlsaAnswer = await client.query('_25._tcp.mx.u1.test', 'TLSA');
    assert.equal(tlsaAnswer.outcome, 'ok', lab.logs());
    assert.equal(tlsaAnswer.secure, true);
    assert.deepEqual(
      tlsaAnswer.answers.map((r) => (r.type === 'TLSA' ? r.data.certificate.toString('hex') : '')).sort(),
      [hex('ab'), hex('cd')],
    );
    const txt = await client.query('_mta-sts.u1.test', 'TXT');
    assert.equal(txt.secure, true);
    assert.deepEqual(
      txt.answers.map((r) => (r.type === 'TXT' ? joinTxt(r.data) : '')),
      ['v=STSv1; id=20261207'],
    );
  });

  it('a replacement keeps only the new set; the same set again sends nothing', async () => {
    const name = '_25._tcp.mx2.u1.test';
    await publish([{ name, type: 'TLSA', ttl: 60, records: [tlsa('01'), tlsa('02')] }]);
    const result = await publish([{ name, type: 'TLSA', ttl: 60, records: [tlsa('03')] }]);
    assert.deepEqual(result.changed[0]?.before.sort(), [tlsa('01'), tlsa('02')]);
    assert.deepEqual(await lab.authoritativeRRset(name, 'TLSA'), [tlsa('03')]);
    const again = await publish([{ name, type: 'TLSA', ttl: 60, records: [tlsa('03')] }]);
    assert.deepEqual(again.changed, []);
  });

  it('a new TTL alone is a change', async () => {
    const name = '_ttl.u1.test';
    await publish([{ name, type: 'TXT', ttl: 60, records: ['x'] }]);
    const result = await publish([{ name, type: 'TXT', ttl: 120, records: ['x'] }]);
    assert.equal(result.changed.length, 1);
  });

  it('a TXT value over 255 octets is split and read back whole through the resolver', async () => {
    assert.ok(LONG_TXT.length > 600);
    await publish([{ name: 'long.u1.test', type: 'TXT', ttl: 60, records: [LONG_TXT] }]);
    assert.deepEqual(await lab.authoritativeRRset('long.u1.test', 'TXT'), [quoteTxt(LONG_TXT)]);
    const answer = await new DnsClient({ servers: [lab.resolver] }).query('long.u1.test', 'TXT');
    assert.equal(answer.secure, true);
    assert.deepEqual(
      answer.answers.map((r) => (r.type === 'TXT' ? joinTxt(r.data) : '')),
      [LONG_TXT],
    );
  });

  it('replacePrefix replaces only those TXT records and keeps the others at the name', async () => {
    const spf = (v: string): RRsetReplacement => ({
      name: 'u1.test',
      type: 'TXT',
      ttl: 300,
      records: [v],
      replacePrefix: 'v=spf1',
    });
    await publish([spf('v=spf1 mx -all')]);
    const result = await publish([spf('v=spf1 a mx -all')]);
    assert.deepEqual(result.changed[0]?.after, ['apex', 'v=spf1 a mx -all']);
    assert.deepEqual(await lab.authoritativeRRset('u1.test', 'TXT'), ['"apex"', '"v=spf1 a mx -all"']);
  });

  it('no records deletes the RRset', async () => {
    await publish([{ name: 'gone.u1.test', type: 'TXT', ttl: 60, records: ['bye'] }]);
    const result = await publish([{ name: 'gone.u1.test', type: 'TXT', ttl: 60, records: [] }]);
    assert.deepEqual(result.changed[0]?.after, []);
    assert.deepEqual(await lab.authoritativeRRset('gone.u1.test', 'TXT'), []);
  });

  it('hmac-sha384 and hmac-sha512 keys work, the zone found by SOA', async () => {
    const r384 = await publish([{ name: 'k384.u1.test', type: 'TXT', ttl: 60, records: ['384'] }], {
      key: lab.keys.upd384!,
    });
    const r512 = await publish([{ name: 'deep.k512.u3.test', type: 'TXT', ttl: 60, records: ['512'] }], {
      key: lab.keys.other!,
    });
    assert.equal(r384.zone, 'u1.test');
    assert.equal(r512.zone, 'u3.test');
    assert.deepEqual(await lab.authoritativeRRset('k384.u1.test', 'TXT'), ['"384"']);
    assert.deepEqual(await lab.authoritativeRRset('deep.k512.u3.test', 'TXT'), ['"512"']);
  });
});

describe('failures are named and change nothing', () => {
  const name = '_mta-sts.fail.u1.test';
  const attempt: RRsetReplacement[] = [{ name, type: 'TXT', ttl: 60, records: ['v=STSv1; id=changed'] }];

  before(async () => {
    await publish([{ name, type: 'TXT', ttl: 60, records: ['v=STSv1; id=original'] }]);
  });

  async function failsWith(
    code: DnsUpdateError['code'],
    options: Parameters<typeof publish>[1],
    changes = attempt,
  ) {
    let caught: DnsUpdateError | undefined;
    await assert.rejects(publish(changes, options), (err: unknown) => {
      assert.ok(err instanceof DnsUpdateError, String(err));
      assert.equal(err.code, code, err.message);
      caught = err;
      return true;
    });
    assert.deepEqual(await lab.authoritativeRRset(name, 'TXT'), ['"v=STSv1; id=original"']);
    return caught!;
  }

  it('wrong secret: TSIG_BADSIG', async () => {
    await failsWith('TSIG_BADSIG', { key: { ...lab.keys.upd!, secret: Buffer.alloc(32, 9) } });
  });

  it('unknown key name: TSIG_BADKEY', async () => {
    await failsWith('TSIG_BADKEY', { key: { ...lab.keys.upd!, name: 'nobody' } });
  });

  it('wrong algorithm: TSIG_BADKEY', async () => {
    await failsWith('TSIG_BADKEY', { key: { ...lab.keys.upd!, algorithm: 'hmac-sha512' } });
  });

  it('a key not allowed for the zone: Knot answers TSIG_BADKEY, naming the zone', async () => {
    const err = await failsWith('TSIG_BADKEY', { key: lab.keys.other! });
    assert.match(err.message, /for zone u1\.test/);
  });

  it('a zone that does not hold the names: UPDATE_NOTZONE, nothing sent', async () => {
    await failsWith('UPDATE_NOTZONE', { zone: 'u3.test' });
  });

  it('a zone the server does not serve: UPDATE_NOTAUTH', async () => {
    await failsWith('UPDATE_NOTAUTH', { zone: 'example.org' }, [
      { name: '_mta-sts.example.org', type: 'TXT', ttl: 60, records: ['x'] },
    ]);
  });

  it('a name below a zone that is not the zone apex: the server answers NOTAUTH', async () => {
    await failsWith('UPDATE_NOTAUTH', { zone: 'fail.u1.test' });
  });

  it('a resolver given instead of the primary server: UPDATE_ZONE_NOT_FOUND', async () => {
    await failsWith('UPDATE_ZONE_NOT_FOUND', { server: lab.resolver });
  });

  for (const hours of [1, -1]) {
    it(`our clock ${hours > 0 ? 'ahead' : 'behind'} by an hour: TSIG_BADTIME with the skew`, async () => {
      const err = await failsWith('TSIG_BADTIME', { now: () => Date.now() + hours * 3_600_000 });
      assert.ok(err.clockSkewSeconds !== undefined, err.message);
      assert.ok(Math.abs(err.clockSkewSeconds + hours * 3600) <= 2, `skew ${err.clockSkewSeconds}`);
    });
  }

  it('a TXT at a name that is a CNAME: the server skips it silently (RFC 2136 §3.4.2.2), UPDATE_NOT_APPLIED', async () => {
    await assert.rejects(publish([{ name: 'alias.u1.test', type: 'TXT', ttl: 60, records: ['x'] }]), {
      code: 'UPDATE_NOT_APPLIED',
    });
    assert.deepEqual(await lab.authoritativeRRset('alias.u1.test', 'CNAME'), ['elsewhere.u1.test.']);
  });

  it('server down: UPDATE_UNREACHABLE', async () => {
    await failsWith('UPDATE_UNREACHABLE', { server: { host: '127.0.55.9', port: 53 } });
  });

  it('a server that never answers: UPDATE_TIMEOUT', async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.55.3', resolve));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      await failsWith('UPDATE_TIMEOUT', { server: { host: '127.0.55.3', port }, timeoutMs: 300 });
    } finally {
      silent.close();
    }
  });

  it('someone else changes the RRset between our read and our update: UPDATE_PREREQ_FAILED, theirs stays', async () => {
    const proxy = await startProxy({
      beforeUpdate: () =>
        publish([{ name, type: 'TXT', ttl: 60, records: ['v=STSv1; id=theirs'] }]).then(() => {}),
    });
    try {
      await assert.rejects(publish(attempt, { server: proxy.address }), { code: 'UPDATE_PREREQ_FAILED' });
      assert.deepEqual(await lab.authoritativeRRset(name, 'TXT'), ['"v=STSv1; id=theirs"']);
    } finally {
      proxy.close();
      await publish([{ name, type: 'TXT', ttl: 60, records: ['v=STSv1; id=original'] }]);
    }
  });

  it('an answer whose TSIG MAC does not verify: UPDATE_BAD_RESPONSE', async () => {
    const proxy = await startProxy({
      alterUpdateReply: (reply) => {
        const bytes = Buffer.from(reply);
        bytes[bytes.length - 12]! ^= 1; // inside the MAC of the TSIG record at the end
        return bytes;
      },
    });
    try {
      const probe = '_bad-mac.u1.test';
      await assert.rejects(
        publish([{ name: probe, type: 'TXT', ttl: 60, records: ['x'] }], { server: proxy.address }),
        {
          code: 'UPDATE_BAD_RESPONSE',
        },
      );
    } finally {
      proxy.close();
    }
  });
});

describe('interop with BIND nsupdate', () => {
  it('the same changes give the same zone contents', async () => {
    const steps: Array<(zone: string) => RRsetReplacement[]> = [
      (z) => [
        { name: `_mta-sts.${z}`, type: 'TXT', ttl: 300, records: ['v=STSv1; id=2'] },
        { name: `_smtp._tls.${z}`, type: 'TXT', ttl: 300, records: ['v=TLSRPTv1; rua=mailto:t@example.net'] },
        { name: `_25._tcp.mx.${z}`, type: 'TLSA', ttl: 300, records: [tlsa('aa'), tlsa('bb')] },
        { name: z, type: 'TXT', ttl: 300, records: [LONG_TXT] },
      ],
      (z) => [
        { name: `_25._tcp.mx.${z}`, type: 'TLSA', ttl: 300, records: [tlsa('bb')] },
        { name: `_smtp._tls.${z}`, type: 'TXT', ttl: 300, records: [] },
      ],
    ];
    for (const step of steps) {
      await publish(step('ours.test'));
      await nsupdate(step('bind.test'), 'bind.test');
    }
    const ours = await lab.zoneContents('ours.test', 'upd');
    const theirs = (await lab.zoneContents('bind.test', 'upd')).map((l) =>
      l.replaceAll('bind.test.', 'ours.test.'),
    );
    assert.ok(
      ours.some((l) => l.includes('TLSA')),
      ours.join('\n'),
    );
    assert.deepEqual(ours, theirs);
  });
});

/** Apply the changes with nsupdate -y, the way an administrator would: delete each RRset, add the new one. */
async function nsupdate(changes: RRsetReplacement[], zone: string): Promise<void> {
  const command = requireCommand('nsupdate', 'bind9-dnsutils');
  const key = lab.keys.upd!;
  const lines = [`server ${lab.authoritative.host} ${lab.authoritative.port}`, `zone ${zone}`];
  for (const c of changes) {
    lines.push(`update delete ${c.name} ${c.type}`);
    for (const r of c.records)
      lines.push(`update add ${c.name} ${c.ttl} ${c.type} ${c.type === 'TXT' ? quoteTxt(r) : r}`);
  }
  lines.push('send', '');
  await new Promise<void>((resolve, reject) => {
    const child = execFile(
      command,
      ['-v', '-y', `${key.algorithm}:${key.name}:${key.secret.toString('base64')}`],
      (err, stdout, stderr) => (err ? reject(new Error(`nsupdate: ${stderr || stdout}`)) : resolve()),
    );
    child.stdin?.end(lines.join('\n'));
  });
}

/**
 * A TCP proxy to knotd on 127.0.55.3: one DNS message per connection, as our publisher sends them. Before it
 * forwards an UPDATE (opcode 5) it runs `beforeUpdate`; the answer to an UPDATE passes through `alterUpdateReply`.
 */
async function startProxy(hooks: {
  beforeUpdate?: () => Promise<void>;
  alterUpdateReply?: (reply: Buffer) => Buffer;
}): Promise<{ address: { host: string; port: number }; close(): void }> {
  const readFrame = (socket: net.Socket) =>
    new Promise<Buffer>((resolve, reject) => {
      let buffered = Buffer.alloc(0);
      socket.on('error', reject);
      socket.on('data', (chunk) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
          resolve(buffered.subarray(2, 2 + buffered.readUInt16BE(0)));
        }
      });
    });
  const frame = (message: Buffer) => {
    const length = Buffer.alloc(2);
    length.writeUInt16BE(message.length);
    return Buffer.concat([length, message]);
  };
  const server = net.createServer(async (client) => {
    try {
      const request = await readFrame(client);
      const isUpdate = ((request[2]! >> 3) & 0xf) === 5;
      if (isUpdate && hooks.beforeUpdate) await hooks.beforeUpdate();
      const upstream = net.connect(lab.authoritative.port, lab.authoritative.host);
      upstream.write(frame(request));
      let reply = await readFrame(upstream);
      upstream.destroy();
      if (isUpdate && hooks.alterUpdateReply) reply = hooks.alterUpdateReply(reply);
      client.end(frame(reply));
    } catch {
      client.destroy();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.55.3', resolve));
  return {
    address: { host: '127.0.55.3', port: (server.address() as net.AddressInfo).port },
    close: () => server.close(),
  };
}
