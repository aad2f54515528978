// ACME certificates (src/server/acme.ts) against Pebble, a real RFC 8555 CA (Debian `pebble`, run by
// test/lab/pebble.ts): the HTTP-01 challenge (RFC 8555 §8.3) is answered by our own plain listener,
// Pebble finds it through the lab DNS server, and the issued certificate is served over HTTPS by SNI
// without a restart. Renewal decisions are table-tested with certificates from the test CA.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { AcmeManager, type AcmeSettings, renewalReason } from '../../src/server/acme.js';
import { buildApp, CHALLENGES_SUBDIR, type Listeners, startListeners } from '../../src/server/app.js';
import { CertificateStore, certsDir, hostCertificateFiles } from '../../src/server/tls.js';
import {
  DOMAIN_SETTINGS,
  eventually,
  freePort,
  handshake,
  httpsGet,
  type TestContext,
  testContext,
} from '../fixtures/serve/helpers.js';
import { TestPki } from '../helpers/pki.js';
import { type LabDnsServer, startDnsServer } from '../lab/dns-server.js';
import { type PebbleLab, startPebble } from '../lab/pebble.js';

describe('renewalReason', () => {
  const pki = TestPki.create('mxguard-acme-');
  after(() => pki.remove());
  const now = new Date('2030-06-01T00:00:00Z');
  const day = 86_400_000;
  const cert = (name: string, host: string, notBefore: Date, notAfter: Date) =>
    pki.issue(name, { subject: `/CN=${host}`, ca: false, sans: [host], notBefore, notAfter }).pem;
  const host = 'mta-sts.example.test';
  const table: Array<[string, string | undefined, RegExp | undefined]> = [
    ['no certificate', undefined, /no certificate yet/],
    ['garbage', 'not a certificate', /does not parse/],
    [
      'other host',
      cert('other', 'mta-sts.other.test', new Date(now.getTime() - day), new Date(now.getTime() + 80 * day)),
      /not for mta-sts\.example\.test/,
    ],
    [
      'not yet valid',
      cert('future', host, new Date(now.getTime() + day), new Date(now.getTime() + 90 * day)),
      /not valid yet/,
    ],
    [
      'expired',
      cert('expired', host, new Date(now.getTime() - 90 * day), new Date(now.getTime() - day)),
      /has expired/,
    ],
    [
      'inside the renewal window',
      cert('soon', host, new Date(now.getTime() - 70 * day), new Date(now.getTime() + 20 * day)),
      /ends within 30 days/,
    ],
    [
      'fine',
      cert('fine', host, new Date(now.getTime() - day), new Date(now.getTime() + 60 * day)),
      undefined,
    ],
  ];
  for (const [name, pem, pattern] of table) {
    it(name, () => {
      const reason = renewalReason(pem, host, now, 30);
      if (pattern === undefined) assert.equal(reason, undefined);
      else assert.match(reason ?? '', pattern);
    });
  }
});

describe('ACME with Pebble: HTTP-01 answered by the plain listener, certificate served by SNI', () => {
  let dns: LabDnsServer;
  let pebble: PebbleLab;
  let ctx: TestContext;
  let app: FastifyInstance;
  let listeners: Listeners;
  let certificates: CertificateStore;
  let settings: AcmeSettings;
  let tlsPort: number;

  before(async () => {
    dns = await startDnsServer([
      {
        origin: 'test',
        records: [
          { name: 'mta-sts.acme.test', type: 'A', data: '127.0.0.1' },
          { name: 'mta-sts.managed.test', type: 'A', data: '127.0.0.1' },
          // Nothing listens on 127.0.0.2: validation of this one fails.
          { name: 'mta-sts.unreachable.test', type: 'A', data: '127.0.0.2' },
        ],
      },
    ]);
    const httpPort = await freePort();
    pebble = await startPebble({ dns: { host: dns.host, port: dns.port }, httpPort });
    ctx = await testContext({ settings: { listen: { host: '127.0.0.1', port: httpPort } } });
    await ctx.store.addDomain('acme.test', DOMAIN_SETTINGS, new Date());
    certificates = new CertificateStore({
      certsDirectory: certsDir(ctx.dataDir),
      logger: ctx.logger,
      pollMs: 100,
    });
    certificates.start();
    app = buildApp(ctx);
    listeners = await startListeners(app, {
      listen: { host: '127.0.0.1', port: httpPort },
      tlsListen: { host: '127.0.0.1', port: 0 },
      certificates,
    });
    tlsPort = Number(new URL(listeners.urls.https ?? '').port);
    settings = {
      directoryUrl: pebble.directoryUrl,
      email: 'hostmaster@acme.test',
      renewDaysBefore: 30,
      caFile: pebble.caFile,
    };
  });
  after(async () => {
    await listeners?.close();
    await app?.close();
    certificates?.stop();
    await ctx?.close();
    await pebble?.stop();
    await dns?.stop();
  });

  it('orders a certificate for mta-sts.<domain>, stores it, and serves it without a restart', async () => {
    await assert.rejects(handshake(tlsPort, 'mta-sts.acme.test'), 'no certificate before the order');
    const manager = new AcmeManager(ctx, settings, {
      certsDirectory: certsDir(ctx.dataDir),
      backoffMinMs: 100,
    });
    const outcomes = await manager.checkAll();
    assert.deepEqual(
      outcomes.map((o) => [o.host, o.result]),
      [['mta-sts.acme.test', 'issued']],
      `${JSON.stringify(outcomes)}\n${pebble.output().slice(-3000)}`,
    );
    const files = hostCertificateFiles(certsDir(ctx.dataDir), 'mta-sts.acme.test');
    assert.equal(statSync(files.key).mode & 0o777, 0o600);
    assert.equal(statSync(join(ctx.dataDir, 'acme', 'account-key.pem')).mode & 0o777, 0o600);
    // The challenge file is gone once the order is done.
    assert.deepEqual(readdirSync(join(ctx.dataDir, CHALLENGES_SUBDIR)), []);

    const root = await pebble.issuingRoot();
    const res = await eventually(
      () => httpsGet({ port: tlsPort, servername: 'mta-sts.acme.test', ca: root }).catch(() => undefined),
      'the issued certificate to be served',
    );
    assert.equal(res.status, 200);
    assert.match(res.body, /^version: STSv1/);
    assert.match(res.peer.subjectaltname ?? '', /DNS:mta-sts\.acme\.test/);

    // A second check finds the certificate valid and orders nothing.
    const again = await manager.checkAll();
    assert.deepEqual(
      again.map((o) => o.result),
      ['valid'],
    );
  });

  it('renews a certificate inside the renewal window, and the new one is served', async () => {
    const before = await handshake(tlsPort, 'mta-sts.acme.test');
    // Pebble's certificates live for years: a window longer than that makes this one due.
    const manager = new AcmeManager(
      ctx,
      { ...settings, renewDaysBefore: 100_000 },
      {
        certsDirectory: certsDir(ctx.dataDir),
        backoffMinMs: 100,
      },
    );
    const [outcome] = await manager.checkAll();
    assert.equal(outcome?.result, 'issued', JSON.stringify(outcome));
    assert.match(outcome?.reason ?? '', /ends within 100000 days/);
    const after = await eventually(async () => {
      const peer = await handshake(tlsPort, 'mta-sts.acme.test');
      return peer.serialNumber !== before.serialNumber ? peer : undefined;
    }, 'the renewed certificate');
    assert.match(after.subjectaltname ?? '', /DNS:mta-sts\.acme\.test/);
  });

  it('leaves hosts with certificates from the settings alone, and reports failed orders', async () => {
    await ctx.store.addDomain('managed.test', DOMAIN_SETTINGS, new Date());
    await ctx.store.addDomain('unreachable.test', DOMAIN_SETTINGS, new Date());
    const manager = new AcmeManager(ctx, settings, {
      certsDirectory: certsDir(ctx.dataDir),
      managedElsewhere: ['mta-sts.managed.test'],
      backoffMinMs: 100,
    });
    const outcomes = await manager.checkAll();
    assert.deepEqual(
      outcomes.map((o) => [o.host, o.result]),
      [
        ['mta-sts.acme.test', 'valid'],
        ['mta-sts.unreachable.test', 'failed'],
      ],
      JSON.stringify(outcomes),
    );
    assert.ok(!existsSync(hostCertificateFiles(certsDir(ctx.dataDir), 'mta-sts.unreachable.test').cert));
    assert.ok(!existsSync(hostCertificateFiles(certsDir(ctx.dataDir), 'mta-sts.managed.test').cert));
    // One failed order (unreachable.test); no host label without metrics.domainLabels.
    assert.match(await ctx.metrics.metrics(), /mxguard_acme_orders_total\{result="failed"\} 1/);
  });
});
