// The HTTPS listener (src/server/tls.ts, src/server/app.ts): certificates chosen by SNI (RFC 6066 §3)
// from <dataDir>/certs/<host>/ and from the settings, reloaded without restart when the files change
// (by fs.watch, and by the stat poll alone), unknown names refused or given the default certificate,
// and graceful shutdown with a request in flight. Certificates come from a test CA (test/helpers/pki.ts).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, type Listeners, startListeners } from '../../src/server/app.js';
import type { CertificateFiles } from '../../src/server/config.js';
import { serverMetrics } from '../../src/server/metrics.js';
import { CertificateStore, certsDir, hostCertificateFiles } from '../../src/server/tls.js';
import {
  DOMAIN_SETTINGS,
  eventually,
  handshake,
  httpsGet,
  type TestContext,
  testContext,
} from '../fixtures/serve/helpers.js';
import { type TestCert, TestPki } from '../helpers/pki.js';

const pki = TestPki.create('mxguard-serve-tls-');
const root = pki.issue('root', { subject: '/O=mxguard test/CN=Serve Root CA' });
const intermediate = pki.issue('intermediate', {
  subject: '/O=mxguard test/CN=Serve Issuing CA',
  issuer: root,
  ca: true,
});
function leaf(name: string, host: string): TestCert {
  return pki.issue(name, { subject: `/CN=${host}`, issuer: intermediate, sans: [host] });
}
after(() => pki.remove());

/** Write a leaf (+ intermediate) and its key where the store looks for `host`. */
function install(files: CertificateFiles, cert: TestCert, key = cert.key.path): void {
  mkdirSync(join(files.cert, '..'), { recursive: true });
  writeFileSync(files.key, readFileSync(key));
  writeFileSync(files.cert, cert.pem + intermediate.pem);
}

async function serveTls(
  ctx: TestContext,
  store: CertificateStore,
): Promise<{ app: FastifyInstance; listeners: Listeners }> {
  store.start();
  const app = buildApp(ctx);
  const listeners = await startListeners(app, {
    listen: { host: '127.0.0.1', port: 0 },
    tlsListen: { host: '127.0.0.1', port: 0 },
    certificates: store,
    metrics: serverMetrics(ctx.metrics),
  });
  return { app, listeners };
}

function portOf(url: string | undefined): number {
  return Number(new URL(url ?? '').port);
}

describe('HTTPS with certificates chosen by SNI', () => {
  let ctx: TestContext;
  let store: CertificateStore;
  let app: FastifyInstance;
  let listeners: Listeners;
  let port: number;
  const a1 = leaf('a1', 'mta-sts.a.test');
  const a2 = leaf('a2', 'mta-sts.a.test');
  const b = leaf('b', 'mta-sts.b.test');
  const c = leaf('c', 'mta-sts.c.test');

  before(async () => {
    ctx = await testContext();
    for (const d of ['a.test', 'b.test', 'c.test']) await ctx.store.addDomain(d, DOMAIN_SETTINGS, new Date());
    install(hostCertificateFiles(certsDir(ctx.dataDir), 'mta-sts.a.test'), a1);
    const bChain = pki.writeChain('b-chain.pem', [b, intermediate]);
    store = new CertificateStore({
      certsDirectory: certsDir(ctx.dataDir),
      configured: { 'mta-sts.b.test': { cert: bChain, key: b.key.path } },
      logger: ctx.logger,
      metrics: serverMetrics(ctx.metrics),
      // Long poll: the reloads below must come from fs.watch.
      pollMs: 3600_000,
    });
    ({ app, listeners } = await serveTls(ctx, store));
    port = portOf(listeners.urls.https);
  });
  after(async () => {
    await listeners.close();
    await app.close();
    store.stop();
    await ctx.close();
  });

  it('serves the policy over HTTPS with the certificate of the SNI host, valid under the test CA', async () => {
    const res = await httpsGet({ port, servername: 'mta-sts.a.test', ca: root.pem });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
    assert.match(res.body, /^version: STSv1\r?\n/);
    assert.equal(res.peer.serialNumber, a1.x509.serialNumber);
  });

  it('takes certificates from the settings too', async () => {
    const res = await httpsGet({ port, servername: 'mta-sts.b.test', ca: root.pem });
    assert.equal(res.status, 200);
    assert.equal(res.peer.serialNumber, b.x509.serialNumber);
  });

  it('compares server names without case', async () => {
    const peer = await handshake(port, 'MTA-STS.A.TEST');
    assert.equal(peer.serialNumber, a1.x509.serialNumber);
  });

  it('refuses a handshake for an unknown server name, or without one, when there is no default', async () => {
    await assert.rejects(handshake(port, 'mta-sts.unknown.test'));
    await assert.rejects(handshake(port));
  });

  it('loads a host folder that appears while running (fs.watch)', async () => {
    install(hostCertificateFiles(certsDir(ctx.dataDir), 'mta-sts.c.test'), c);
    const peer = await eventually(async () => {
      const p = await handshake(port, 'mta-sts.c.test').catch(() => undefined);
      return p?.serialNumber === c.x509.serialNumber ? p : undefined;
    }, 'the new host certificate');
    assert.equal(peer.subject.CN, 'mta-sts.c.test');
  });

  it('keeps the old certificate while the new files do not match, then takes the new pair (fs.watch)', async () => {
    const files = hostCertificateFiles(certsDir(ctx.dataDir), 'mta-sts.a.test');
    // A half-done replacement: new certificate, old key.
    writeFileSync(files.cert, a2.pem + intermediate.pem);
    await eventually(
      () =>
        ctx.logLines.find(
          (l) => l.includes('new certificate files do not load') && l.includes('mta-sts.a.test'),
        ),
      'the failed reload to be logged',
    );
    assert.equal((await handshake(port, 'mta-sts.a.test')).serialNumber, a1.x509.serialNumber);
    // The key arrives: the next handshake gets the new certificate.
    writeFileSync(files.key, readFileSync(a2.key.path));
    const peer = await eventually(async () => {
      const p = await handshake(port, 'mta-sts.a.test');
      return p.serialNumber === a2.x509.serialNumber ? p : undefined;
    }, 'the replaced certificate');
    assert.equal(peer.subject.CN, 'mta-sts.a.test');
    const res = await httpsGet({ port, servername: 'mta-sts.a.test', ca: root.pem });
    assert.equal(res.status, 200);
    const metrics = await ctx.metrics.metrics();
    assert.match(metrics, /mxguard_certificate_loads_total\{result="failed"\} [1-9]/);
    assert.match(metrics, /mxguard_tls_handshake_errors_total [1-9]/);
  });
});

describe('certificate reload by the stat poll alone, and the default certificate', () => {
  let ctx: TestContext;
  let store: CertificateStore;
  let app: FastifyInstance;
  let listeners: Listeners;
  let port: number;
  const d1 = leaf('d1', 'mta-sts.d.test');
  const d2 = leaf('d2', 'mta-sts.d.test');
  const fallback = leaf('fallback', 'default.test');

  before(async () => {
    ctx = await testContext();
    await ctx.store.addDomain('d.test', DOMAIN_SETTINGS, new Date());
    install(hostCertificateFiles(certsDir(ctx.dataDir), 'mta-sts.d.test'), d1);
    store = new CertificateStore({
      certsDirectory: certsDir(ctx.dataDir),
      defaultCertificate: { cert: fallback.certPath, key: fallback.key.path },
      logger: ctx.logger,
      watch: false,
      pollMs: 100,
    });
    ({ app, listeners } = await serveTls(ctx, store));
    port = portOf(listeners.urls.https);
  });
  after(async () => {
    await listeners.close();
    await app.close();
    store.stop();
    await ctx.close();
  });

  it('gives unknown names, and clients without SNI, the default certificate', async () => {
    assert.equal((await handshake(port, 'mta-sts.unknown.test')).serialNumber, fallback.x509.serialNumber);
    assert.equal((await handshake(port)).serialNumber, fallback.x509.serialNumber);
    assert.equal((await handshake(port, 'mta-sts.d.test')).serialNumber, d1.x509.serialNumber);
  });

  it('picks up replaced files on the next poll', async () => {
    install(hostCertificateFiles(certsDir(ctx.dataDir), 'mta-sts.d.test'), d2);
    const peer = await eventually(async () => {
      const p = await handshake(port, 'mta-sts.d.test');
      return p.serialNumber === d2.x509.serialNumber ? p : undefined;
    }, 'the replaced certificate');
    assert.equal(peer.subject.CN, 'mta-sts.d.test');
  });
});

describe('graceful shutdown of the listeners', () => {
  it('lets a request in flight finish, closes idle connections, and accepts no new ones', async () => {
    const ctx = await testContext();
    const app = buildApp(ctx);
    let release: () => void = () => {};
    let arrived: () => void = () => {};
    const requestArrived = new Promise<void>((r) => {
      arrived = r;
    });
    app.get('/test-slow', async () => {
      arrived();
      await new Promise<void>((r) => {
        release = r;
      });
      return 'finished';
    });
    const listeners = await startListeners(app, { listen: { host: '127.0.0.1', port: 0 } });
    const port = Number(new URL(listeners.urls.http).port);
    const agent = new http.Agent({ keepAlive: true });
    try {
      // An idle keep-alive connection, and a request in flight on another one.
      await get(port, '/healthz', agent);
      const slow = get(port, '/test-slow', agent);
      await requestArrived;
      let closed = false;
      const closing = listeners.close(30_000).then(() => {
        closed = true;
      });
      // A refused connection shows close() has begun (and takes a round trip); it must still wait.
      await assert.rejects(get(port, '/healthz', new http.Agent()), /ECONNREFUSED/);
      assert.equal(closed, false, 'close() must wait for the request in flight');
      release();
      const res = await slow;
      assert.equal(res.status, 200);
      assert.equal(res.body, 'finished');
      // The keep-alive connections are closed, so close() completes.
      await closing;
      assert.equal(closed, true);
    } finally {
      agent.destroy();
      await app.close();
      await ctx.close();
    }
  });
});

function get(port: number, path: string, agent: http.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}
