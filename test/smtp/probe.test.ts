// The SMTP STARTTLS probe (src/smtp/probe.ts) against the lab SMTP server (test/lab/smtp-server.ts) and small
// hand-written hostile servers, all on loopback: chain capture, PKIX verdicts, SNI, every failure code,
// bounded reads and timeouts (short limits, durations never asserted).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { networkInterfaces } from 'node:os';
import { after, before, describe, it } from 'node:test';
import {
  probeSmtp,
  SMTP_FAILURE_CODES,
  SmtpError,
  type SmtpFailureCode,
  type SmtpProbeFailure,
  type SmtpProbeOptions,
  type SmtpProbeResult,
  type SmtpProbeSuccess,
  type SmtpStep,
} from '../../src/smtp/probe.js';
import { type StandardChain, standardChain, type TestCert, TestPki } from '../helpers/pki.js';
import { type LabSmtpOptions, type LabSmtpServer, startSmtpServer } from '../lab/smtp-server.js';

const MX = 'mx.example.com';

let pki: TestPki;
let chain: StandardChain;

before(() => {
  pki = TestPki.create('mxguard-smtp-probe-');
  chain = standardChain(pki, { host: MX });
});
after(() => pki.remove());

function serverCert(certs: TestCert[], key = certs[0]!.key.path): { key: string; cert: string } {
  return { key: readFileSync(key, 'utf8'), cert: certs.map((c) => c.pem).join('') };
}

/** Start a lab server, probe it once, stop it. */
async function probeLab(
  lab: LabSmtpOptions,
  probe: Partial<SmtpProbeOptions> = {},
): Promise<{ result: SmtpProbeResult; server: LabSmtpServer }> {
  const server = await startSmtpServer(lab);
  try {
    const result = await probeSmtp({ address: server.host, port: server.port, mxHost: MX, ...probe });
    return { result, server };
  } finally {
    await server.stop();
  }
}

function success(result: SmtpProbeResult): SmtpProbeSuccess {
  assert.ok(result.ok, `expected success, got ${result.ok ? '' : `${result.code}: ${result.message}`}`);
  return result;
}

function failure(result: SmtpProbeResult, code: SmtpFailureCode, step: SmtpStep): SmtpProbeFailure {
  assert.ok(!result.ok, 'expected a failure, the probe succeeded');
  assert.equal(result.code, code, result.message);
  assert.equal(result.step, step, result.message);
  assert.ok(
    result.message.includes(`:${result.port} (${MX})`),
    `message names the server: ${result.message}`,
  );
  return result;
}

/** A bare TCP server on loopback that runs `script` for each connection. */
async function rawServer(
  script: (socket: net.Socket) => void,
): Promise<{ port: number; stop(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    script(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function probeRaw(script: (socket: net.Socket) => void, timeoutMs = 2000): Promise<SmtpProbeResult> {
  const server = await rawServer(script);
  try {
    return await probeSmtp({ address: '127.0.0.1', port: server.port, mxHost: MX, timeoutMs });
  } finally {
    await server.stop();
  }
}

/** Greets, answers EHLO with STARTTLS, then runs `afterStartTls` on the STARTTLS command. */
function plainUntilStartTls(afterStartTls: (socket: net.Socket) => void): (socket: net.Socket) => void {
  return (socket) => {
    socket.write('220 raw ESMTP\r\n');
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      if (buffer.includes('STARTTLS\r\n')) {
        socket.removeListener('data', onData);
        afterStartTls(socket);
      } else if (buffer.endsWith('\r\n')) {
        socket.write('250-raw\r\n250 STARTTLS\r\n');
        buffer = '';
      }
    };
    socket.on('data', onData);
  };
}

describe('probeSmtp: success and PKIX verdicts', () => {
  it('captures banner, EHLO, TLS and the chain; PKIX valid with the test CA', async () => {
    const { result, server } = await probeLab(
      { cert: serverCert([chain.leaf, chain.intermediate]) },
      { ca: [chain.root.pem] },
    );
    const r = success(result);
    assert.equal(r.banner, 'mx.lab.test ESMTP mxguard lab');
    assert.deepEqual(r.ehlo, ['PIPELINING', 'SIZE 10240000', 'STARTTLS', '8BITMIME']);
    assert.deepEqual(r.ehloTls, ['PIPELINING', 'SIZE 10240000', '8BITMIME']);
    assert.equal(r.starttls, true);
    assert.match(r.tls.version, /^TLSv1\.[23]$/);
    assert.ok(r.tls.cipher.length > 0 && r.tls.cipher !== 'unknown');
    assert.equal(r.tls.authorizationError, undefined);
    assert.deepEqual(r.pkix, { valid: true, nameMatches: true, daysLeft: r.pkix.daysLeft });
    assert.ok(r.pkix.daysLeft > 365 * 50, `daysLeft ${r.pkix.daysLeft}`);
    assert.deepEqual(
      r.tls.chain.map((c) => c.raw),
      [chain.leaf.der, chain.intermediate.der],
      'leaf then intermediate, byte for byte',
    );
    const [session] = server.sessions;
    assert.equal(session?.sni, MX, 'SNI is the MX host');
    assert.equal(session?.ehlo, '[127.0.0.1]', 'default EHLO name is our address literal');
    assert.deepEqual(session?.commands, ['EHLO [127.0.0.1]', 'STARTTLS', 'EHLO [127.0.0.1]', 'QUIT']);
    assert.equal(session?.quit, true);
  });

  it('PKIX is invalid without the test CA; the chain is still captured', async () => {
    const { result } = await probeLab({ cert: serverCert([chain.leaf, chain.intermediate]) });
    const r = success(result);
    assert.equal(r.pkix.valid, false);
    assert.equal(r.pkix.nameMatches, true);
    assert.equal(r.tls.authorizationError, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
    assert.match(r.pkix.error ?? '', /trusted root/);
    assert.equal(r.tls.chain.length, 2);
  });

  it('a missing intermediate makes the chain invalid even with the root trusted', async () => {
    const { result } = await probeLab({ cert: serverCert([chain.leaf]) }, { ca: [chain.root.pem] });
    const r = success(result);
    assert.equal(r.pkix.valid, false);
    assert.equal(r.tls.authorizationError, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    assert.deepEqual(
      r.tls.chain.map((c) => c.raw),
      [chain.leaf.der],
    );
  });

  it('name mismatch: chain valid, name does not match; SNI is still the MX host asked for', async () => {
    const { result, server } = await probeLab(
      { cert: serverCert([chain.leaf, chain.intermediate]) },
      { ca: [chain.root.pem], mxHost: 'mx2.example.com' },
    );
    const r = success(result);
    assert.deepEqual([r.pkix.valid, r.pkix.nameMatches], [true, false]);
    assert.equal(server.sessions[0]?.sni, 'mx2.example.com');
  });

  it('normalises the MX host (case, trailing dot) for SNI and matching', async () => {
    const { result, server } = await probeLab(
      { cert: serverCert([chain.leaf, chain.intermediate]) },
      { ca: [chain.root.pem], mxHost: 'MX.Example.COM.' },
    );
    assert.equal(success(result).pkix.nameMatches, true);
    assert.equal(result.mxHost, MX);
    assert.equal(server.sessions[0]?.sni, MX);
  });

  it('wildcard leaf: matches one label, not two, not the bare domain', async () => {
    const wild = pki.issue('wild-leaf', { issuer: chain.intermediate, sans: ['*.example.com'] });
    const lab = { cert: serverCert([wild, chain.intermediate]) };
    const expectations: Array<[string, boolean]> = [
      ['mx.example.com', true],
      ['a.mx.example.com', false],
      ['example.com', false],
    ];
    for (const [mxHost, matches] of expectations) {
      const { result } = await probeLab(lab, { ca: [chain.root.pem], mxHost });
      const r = success(result);
      assert.equal(r.pkix.nameMatches, matches, mxHost);
      assert.equal(r.pkix.valid, true, mxHost);
    }
  });

  it('a partial wildcard or a CN without SAN does not match (RFC 8461 §4.2)', async () => {
    const partial = pki.issue('partial-leaf', { issuer: chain.intermediate, sans: ['mx*.example.com'] });
    const cnOnly = pki.issue('cn-only-leaf', { subject: `/CN=${MX}`, issuer: chain.intermediate, sans: [] });
    for (const [leaf, mxHost] of [
      [partial, 'mx1.example.com'],
      [cnOnly, MX],
    ] as const) {
      const { result } = await probeLab(
        { cert: serverCert([leaf, chain.intermediate]) },
        { ca: [chain.root.pem], mxHost },
      );
      assert.equal(success(result).pkix.nameMatches, false, leaf.name);
    }
  });

  it('expired leaf: invalid, CERT_HAS_EXPIRED, negative daysLeft', async () => {
    const expired = standardChain(pki, {
      prefix: 'expired-',
      host: MX,
      leafNotBefore: new Date('2020-01-01T00:00:00Z'),
      leafNotAfter: new Date('2021-01-01T00:00:00Z'),
    });
    const { result } = await probeLab(
      { cert: serverCert([expired.leaf, expired.intermediate]) },
      { ca: [expired.root.pem] },
    );
    const r = success(result);
    assert.equal(r.pkix.valid, false);
    assert.equal(r.tls.authorizationError, 'CERT_HAS_EXPIRED');
    assert.match(r.pkix.error ?? '', /expired/);
    assert.ok(r.pkix.daysLeft < 0, `daysLeft ${r.pkix.daysLeft}`);
    assert.equal(r.pkix.nameMatches, true);
  });

  it('captures the chain as presented: order kept, strays kept, trusted root never added', async () => {
    const stray = pki.issue('stray', { subject: '/CN=Stray CA' });
    const { result } = await probeLab(
      { cert: serverCert([chain.leaf, stray, chain.intermediate], chain.leaf.key.path) },
      { ca: [chain.root.pem] },
    );
    const r = success(result);
    assert.deepEqual(
      r.tls.chain.map((c) => c.raw),
      [chain.leaf.der, stray.der, chain.intermediate.der],
    );
    assert.equal(r.pkix.valid, true, 'OpenSSL finds the path past the stray certificate');
  });

  it('captures a chain that includes the root, to the end', async () => {
    const { result } = await probeLab({
      cert: serverCert([chain.leaf, chain.intermediate, chain.root], chain.leaf.key.path),
    });
    const r = success(result);
    assert.deepEqual(
      r.tls.chain.map((c) => c.raw),
      [chain.leaf.der, chain.intermediate.der, chain.root.der],
    );
    assert.equal(r.tls.authorizationError, 'SELF_SIGNED_CERT_IN_CHAIN');
  });

  it('reads a multi-line banner and uses the given EHLO name', async () => {
    const { result, server } = await probeLab(
      {
        cert: serverCert([chain.leaf, chain.intermediate]),
        behaviour: { banner: '220-mx.lab.test ESMTP\n220-second line\n220 third' },
      },
      { ehloName: 'probe.example.net' },
    );
    assert.equal(success(result).banner, 'mx.lab.test ESMTP\nsecond line\nthird');
    assert.equal(server.sessions[0]?.ehlo, 'probe.example.net');
  });

  it('works over IPv6 on ::1', async (t) => {
    const hasLoopback6 = Object.values(networkInterfaces()).some((list) =>
      (list ?? []).some((a) => a.family === 'IPv6' && a.address === '::1'),
    );
    if (!hasLoopback6) {
      // No ::1 on this machine: the probe must then fail to connect rather than do anything else.
      const r = await probeSmtp({ address: '::1', port: 25, mxHost: MX, timeoutMs: 2000 });
      assert.equal(
        r.ok,
        false,
        '::1 is absent on this machine (os.networkInterfaces), so connecting must fail',
      );
      t.diagnostic('::1 is not configured on this machine: checked that connecting fails instead');
      return;
    }
    const { result, server } = await probeLab(
      { host: '::1', cert: serverCert([chain.leaf, chain.intermediate]) },
      { address: '::1', ca: [chain.root.pem] },
    );
    const r = success(result);
    assert.equal(r.pkix.valid, true);
    assert.equal(server.sessions[0]?.ehlo, '[IPv6:::1]');
    assert.equal(server.sessions[0]?.sni, MX);
  });
});

describe('probeSmtp: failure codes', () => {
  const cert = () => serverCert([chain.leaf, chain.intermediate]);

  it('SMTP_CONNECT when nothing listens', async () => {
    const server = await rawServer(() => undefined);
    const { port } = server;
    await server.stop();
    const r = failure(await probeSmtp({ address: '127.0.0.1', port, mxHost: MX }), 'SMTP_CONNECT', 'connect');
    assert.equal(r.reason, 'ECONNREFUSED');
  });

  it('SMTP_BANNER_REJECT for a 554 greeting, with its text; QUIT is still sent', async () => {
    const { result, server } = await probeLab({ cert: cert(), behaviour: { banner: '554 5.3.2 go away' } });
    const r = failure(result, 'SMTP_BANNER_REJECT', 'banner');
    assert.deepEqual(r.reply, { code: 554, lines: ['5.3.2 go away'] });
    assert.match(r.message, /554 5\.3\.2 go away/);
    assert.equal(server.sessions[0]?.quit, true);
  });

  it('SMTP_BANNER_REJECT for a multi-line 421 greeting followed by a close', async () => {
    const { result } = await probeLab({ behaviour: { banner: '421-busy\n421 try later' } });
    const r = failure(result, 'SMTP_BANNER_REJECT', 'banner');
    assert.deepEqual(r.reply?.lines, ['busy', 'try later']);
  });

  it('SMTP_PROTOCOL for a greeting that is not 220 and not an error', async () => {
    const { result } = await probeLab({ behaviour: { banner: '250 hello' } });
    failure(result, 'SMTP_PROTOCOL', 'banner');
  });

  it('SMTP_EHLO_REJECT for a 4xx EHLO reply, without HELO', async () => {
    const { result, server } = await probeLab({ cert: cert(), behaviour: { ehloReply: '421 4.3.2 busy' } });
    const r = failure(result, 'SMTP_EHLO_REJECT', 'ehlo');
    assert.equal(r.reply?.code, 421);
    assert.equal(server.sessions[0]?.helo, undefined);
  });

  it('SMTP_EHLO_REJECT when EHLO and the HELO fallback are both refused', async () => {
    const { result } = await probeLab({ behaviour: { ehloReply: '550 no', heloReply: '550 still no' } });
    const r = failure(result, 'SMTP_EHLO_REJECT', 'helo');
    assert.deepEqual(r.reply, { code: 550, lines: ['still no'] });
  });

  it('SMTP_NO_STARTTLS after a HELO fallback (5xx to EHLO), recorded as helo', async () => {
    const { result, server } = await probeLab({ cert: cert(), behaviour: { ehloReply: '502 5.5.2 what' } });
    const r = failure(result, 'SMTP_NO_STARTTLS', 'helo');
    assert.equal(r.helo, true);
    assert.equal(server.sessions[0]?.helo, '[127.0.0.1]');
    assert.equal(server.sessions[0]?.quit, true);
  });

  it('SMTP_NO_STARTTLS when EHLO does not offer it (noStartTls, or no certificate)', async () => {
    for (const lab of [{ cert: cert(), behaviour: { noStartTls: true } }, {}]) {
      const { result, server } = await probeLab(lab);
      const r = failure(result, 'SMTP_NO_STARTTLS', 'ehlo');
      assert.deepEqual(r.ehlo, ['PIPELINING', 'SIZE 10240000', '8BITMIME']);
      assert.equal(r.banner, 'mx.lab.test ESMTP mxguard lab');
      assert.deepEqual(server.sessions[0]?.commands, ['EHLO [127.0.0.1]', 'QUIT']);
    }
  });

  it('SMTP_STARTTLS_REFUSED for a 454 to STARTTLS', async () => {
    const { result } = await probeLab({
      cert: cert(),
      behaviour: { starttlsReply: '454 4.7.0 TLS not available' },
    });
    const r = failure(result, 'SMTP_STARTTLS_REFUSED', 'starttls');
    assert.deepEqual(r.reply, { code: 454, lines: ['4.7.0 TLS not available'] });
  });

  it('SMTP_TLS_HANDSHAKE when the server drops the connection after its 220', async () => {
    const { result } = await probeLab({ cert: cert(), behaviour: { dropAfterStartTls: true } });
    const r = failure(result, 'SMTP_TLS_HANDSHAKE', 'tls-handshake');
    assert.ok(r.reason && r.reason.length > 0);
    assert.equal(r.tls, undefined);
  });

  it('SMTP_TLS_HANDSHAKE with the OpenSSL reason when the server answers the ClientHello in plain text', async () => {
    const r = failure(
      await probeRaw(
        plainUntilStartTls((socket) => {
          socket.write('220 go ahead\r\n');
          socket.once('data', () => socket.write('HTTP/1.1 400 Bad Request\r\n\r\n'));
        }),
      ),
      'SMTP_TLS_HANDSHAKE',
      'tls-handshake',
    );
    assert.match(r.reason ?? '', /wrong version number|packet length too long|record layer failure/);
  });

  it('SMTP_PROTOCOL for garbage instead of a greeting', async () => {
    const { result } = await probeLab({ behaviour: { garbage: true } });
    assert.match(failure(result, 'SMTP_PROTOCOL', 'banner').message, /not an SMTP reply line/);
  });

  it('SMTP_PROTOCOL for a 1 MiB line, stopping at the line cap', async () => {
    const { result } = await probeLab({ behaviour: { hugeLine: true } });
    assert.match(failure(result, 'SMTP_PROTOCOL', 'banner').message, /longer than 4096 bytes/);
  });

  it('SMTP_PROTOCOL for a greeting of more than 64 KiB in short lines', async () => {
    const banner = `${`220-${'z'.repeat(500)}\n`.repeat(140)}220 end`;
    const { result } = await probeLab({ behaviour: { banner } });
    assert.match(failure(result, 'SMTP_PROTOCOL', 'banner').message, /larger than 65536 bytes/);
  });

  it('SMTP_PROTOCOL for plain-text data after the 220 to STARTTLS (reply injection)', async () => {
    const { result } = await probeLab({ cert: cert(), behaviour: { extraAfterStartTls: true } });
    assert.match(failure(result, 'SMTP_PROTOCOL', 'starttls').message, /more data after its 220/);
  });

  it('SMTP_PROTOCOL when the server closes the connection instead of answering EHLO', async () => {
    const r = await probeRaw((socket) => {
      socket.write('220 raw\r\n');
      socket.once('data', () => socket.end());
    });
    assert.match(failure(r, 'SMTP_PROTOCOL', 'ehlo').message, /closed the connection/);
  });

  it('random bytes as a greeting only ever give a failure result', async () => {
    for (let i = 0; i < 20; i++) {
      const bytes = randomBytes(1 + ((i * 97) % 600));
      const r = await probeRaw((socket) => socket.end(bytes), 500);
      assert.equal(r.ok, false, bytes.toString('hex'));
      assert.ok(!r.ok && SMTP_FAILURE_CODES.includes(r.code), r.ok ? '' : r.code);
    }
  });
});

describe('probeSmtp: time limits', () => {
  const cert = () => serverCert([chain.leaf, chain.intermediate]);
  // Limits for steps that must first get past earlier ones: generous enough for a loaded machine.
  const later = 1500;

  it('SMTP_TIMEOUT at the banner when the server never speaks', async () => {
    const { result } = await probeLab({ behaviour: { silent: true } }, { timeoutMs: 300 });
    assert.match(
      failure(result, 'SMTP_TIMEOUT', 'banner').message,
      /no answer within 300 ms waiting for the greeting/,
    );
  });

  it('SMTP_TIMEOUT at the banner when it trickles in: the limit is a deadline, not an idle timer', async () => {
    const { result } = await probeLab({ behaviour: { slowBanner: true } }, { timeoutMs: 400 });
    failure(result, 'SMTP_TIMEOUT', 'banner');
  });

  it('SMTP_TIMEOUT at EHLO and at STARTTLS when they get no answer', async () => {
    const steps: Array<[string, SmtpStep]> = [
      ['EHLO', 'ehlo'],
      ['STARTTLS', 'starttls'],
    ];
    for (const [verb, step] of steps) {
      const { result } = await probeLab(
        { cert: cert(), behaviour: { noReplyTo: [verb] } },
        { timeoutMs: later },
      );
      failure(result, 'SMTP_TIMEOUT', step);
    }
  });

  it('SMTP_TIMEOUT in the TLS handshake when the server ignores it', async () => {
    const { result } = await probeLab({ cert: cert(), behaviour: { stallTls: true } }, { timeoutMs: later });
    failure(result, 'SMTP_TIMEOUT', 'tls-handshake');
  });

  it('SMTP_TIMEOUT at EHLO over TLS, keeping the TLS data already captured', async () => {
    const { result } = await probeLab(
      { cert: cert(), behaviour: { silentAfterTls: true } },
      { timeoutMs: later, ca: [chain.root.pem] },
    );
    const f = failure(result, 'SMTP_TIMEOUT', 'ehlo-tls');
    assert.equal(f.pkix?.valid, true);
    assert.equal(f.tls?.chain.length, 2);
    assert.deepEqual(f.ehlo, ['PIPELINING', 'SIZE 10240000', 'STARTTLS', '8BITMIME']);
  });

  it('the total limit cuts a probe whose steps each have more time', async () => {
    const { result } = await probeLab(
      { behaviour: { silent: true } },
      { timeoutMs: 60_000, totalTimeoutMs: 300 },
    );
    assert.match(failure(result, 'SMTP_TIMEOUT', 'banner').message, /total time limit/);
  });
});

describe('probeSmtp: tlsVersions "old" (RFC 8996)', () => {
  const oldServer = () => ({
    ...serverCert([chain.leaf, chain.intermediate]),
    minVersion: 'TLSv1' as const,
    maxVersion: 'TLSv1.1' as const,
    ciphers: 'DEFAULT@SECLEVEL=0',
  });

  it('completes TLS 1.1 with a server limited to 1.0/1.1, which the default probe cannot', async () => {
    const old = await probeLab({ cert: oldServer() }, { tlsVersions: 'old' });
    assert.equal(success(old.result).tls.version, 'TLSv1.1');
    const modern = await probeLab({ cert: oldServer() });
    failure(modern.result, 'SMTP_TLS_HANDSHAKE', 'tls-handshake');
  });

  it('is refused by a server that speaks TLS 1.2+ only', async () => {
    const { result } = await probeLab(
      { cert: serverCert([chain.leaf, chain.intermediate]) },
      { tlsVersions: 'old' },
    );
    failure(result, 'SMTP_TLS_HANDSHAKE', 'tls-handshake');
  });
});

describe('probeSmtp: options', () => {
  const bad: Array<[string, Partial<SmtpProbeOptions>, RegExp]> = [
    ['a host name as address', { address: 'mx.example.com' }, /not an IP address/],
    ['port 0', { port: 0 }, /port 0/],
    ['port 65536', { port: 65536 }, /port 65536/],
    ['empty mxHost', { mxHost: '' }, /mxHost/],
    ['mxHost with a space', { mxHost: 'mx example.com' }, /mxHost/],
    ['ehloName with CRLF', { ehloName: 'a\r\nRSET' }, /ehloName/],
    ['timeoutMs 0', { timeoutMs: 0 }, /timeoutMs/],
    ['totalTimeoutMs NaN', { totalTimeoutMs: Number.NaN }, /totalTimeoutMs/],
    ['tlsVersions "sslv3"', { tlsVersions: 'sslv3' as 'old' }, /tlsVersions/],
  ];
  for (const [name, options, message] of bad) {
    it(`rejects ${name} with SMTP_BAD_OPTIONS`, async () => {
      await assert.rejects(
        probeSmtp({ address: '127.0.0.1', mxHost: MX, ...options }),
        (err: unknown) =>
          err instanceof SmtpError && err.code === 'SMTP_BAD_OPTIONS' && message.test(err.message),
      );
    });
  }
});
