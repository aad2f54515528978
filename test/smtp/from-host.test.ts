// presentedChain (src/smtp/from-host.ts): implicit TLS against loopback servers that behave and that do not,
// STARTTLS through the lab SMTP server, and which ports default to implicit TLS.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { defaultTlsStart, presentedChain } from '../../src/smtp/from-host.js';
import { type StandardChain, standardChain, TestPki } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { type LabSmtpServer, startSmtpServer } from '../lab/smtp-server.js';

const HOST = 'mx.example.com';
let pki: TestPki;
let chain: StandardChain;
let cert: { key: string; cert: string };
const servers: net.Server[] = [];
let smtp: LabSmtpServer;

async function listen(server: net.Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

before(async () => {
  pki = TestPki.create();
  chain = standardChain(pki, { host: HOST });
  cert = { key: readFileSync(chain.leaf.key.path, 'utf8'), cert: chain.leaf.pem + chain.intermediate.pem };
  smtp = await startSmtpServer({ cert });
});
after(async () => {
  for (const s of servers) s.close();
  await smtp?.stop();
  pki?.remove();
});

const options = (port: number, starttls: 'smtp' | 'none' = 'none') => ({
  address: '127.0.0.1',
  port,
  host: HOST,
  starttls,
  timeoutMs: 1000,
});

describe('presentedChain', () => {
  it('implicit TLS: the chain as the server sends it, leaf first', async () => {
    const port = await listen(tls.createServer(cert, (s) => s.end()));
    const result = await presentedChain(options(port));
    assert.equal(result.ok, true);
    if (!result.ok) return;
    assert.deepEqual(
      result.tls.chain.map((c) => c.raw),
      [chain.leaf.der, chain.intermediate.der],
    );
  });

  it('STARTTLS goes through the SMTP probe', async () => {
    const result = await presentedChain(options(smtp.port, 'smtp'));
    assert.equal(result.ok, true);
    assert.equal(smtp.sessions.at(-1)?.starttls, true);
  });

  it('nothing listening: SMTP_CONNECT', async () => {
    const result = await presentedChain(options(await freePort()));
    assert.deepEqual([result.ok, !result.ok && result.code], [false, 'SMTP_CONNECT']);
  });

  it('a plain-text server (an SMTP greeting) on an implicit-TLS port: SMTP_TLS_HANDSHAKE', async () => {
    const port = await listen(net.createServer((s) => s.end('220 mx.example.com ESMTP\r\n')));
    const result = await presentedChain(options(port));
    assert.deepEqual([result.ok, !result.ok && result.code], [false, 'SMTP_TLS_HANDSHAKE']);
  });

  it('a server that never answers the handshake: SMTP_TIMEOUT, not a hang', async () => {
    const held: net.Socket[] = [];
    const port = await listen(net.createServer((s) => held.push(s)));
    const result = await presentedChain(options(port));
    for (const s of held) s.destroy();
    assert.deepEqual([result.ok, !result.ok && result.code], [false, 'SMTP_TIMEOUT']);
    assert.match(!result.ok ? result.message : '', /127\.0\.0\.1:\d+ \(mx\.example\.com\): .*tls-handshake/);
  });

  it('implicit TLS by default on 443, 465, 993 and 995 (RFC 8314), STARTTLS elsewhere', () => {
    assert.deepEqual([25, 587, 443, 465, 993, 995, 2525].map(defaultTlsStart), [
      'smtp',
      'smtp',
      'none',
      'none',
      'none',
      'none',
      'smtp',
    ]);
  });
});
