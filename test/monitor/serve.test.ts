// The monitor inside `mxguard serve` (the built command, two HTTP workers) against the lab on loopback:
// every watched domain is checked once on start, by one process only; the alert it opens reaches a real
// webhook receiver given with --alert-webhook, while a second receiver that never answers holds up
// nothing; "check now" through the API (answered by a worker) stores a manual run; the webhook's secret
// path never reaches the log; SIGTERM stops it all (exit 0).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { eventually } from '../fixtures/serve/helpers.js';
import { type StandardChain, standardChain, TestPki } from '../helpers/pki.js';
import { httpRequest, type ListeningServe, startServe } from '../helpers/serve-process.js';
import { type LabDnsServer, startDnsServer } from '../lab/dns-server.js';
import { labCert, type PolicyHost, startPolicyHost } from '../lab/https-server.js';
import { type LabSmtpServer, startSmtpServer } from '../lab/smtp-server.js';

const PASSWORD = 'monitor-test-password-1';
const HOOK_PATH = '/hooks/secret-token-4711';

let pki: TestPki;
let chain: StandardChain;
let dns: LabDnsServer;
let smtp: LabSmtpServer;
let https: PolicyHost;
let hookServer: http.Server;
/** Takes the request and never answers. */
let silentServer: http.Server;
let silentRequests = 0;
const hooks: Array<{ event: string; domain: string; code: string; host?: string }> = [];
let dir: string;
let serve: ListeningServe;

before(async () => {
  pki = TestPki.create('mxguard-monitor-serve-');
  chain = standardChain(pki, { host: 'mx.watch.test', sans: ['mx.watch.test', 'mta-sts.watch.test'] });
  const cert = labCert(chain.leaf.key, [chain.leaf, chain.intermediate]);
  smtp = await startSmtpServer({ cert });
  https = await startPolicyHost({
    sites: {
      'mta-sts.watch.test': {
        kind: 'serve',
        body: 'version: STSv1\nmode: enforce\nmx: old.watch.test\nmax_age: 604800\n',
      },
    },
    defaultCert: cert,
  });
  dns = await startDnsServer([
    {
      origin: 'watch.test',
      records: [
        { name: 'watch.test', type: 'MX', data: { preference: 10, exchange: 'mx.watch.test' } },
        { name: 'mx.watch.test', type: 'A', data: '127.0.0.1' },
        { name: '_mta-sts.watch.test', type: 'TXT', data: 'v=STSv1; id=20261201000000' },
        { name: 'mta-sts.watch.test', type: 'A', data: '127.0.0.1' },
      ],
    },
  ]);
  hookServer = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === HOOK_PATH) hooks.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => hookServer.listen(0, '127.0.0.1', resolve));
  const hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}${HOOK_PATH}`;
  silentServer = http.createServer(() => {
    silentRequests++;
  });
  await new Promise<void>((resolve) => silentServer.listen(0, '127.0.0.1', resolve));
  const silentUrl = `http://127.0.0.1:${(silentServer.address() as AddressInfo).port}/never`;

  dir = mkdtempSync(join(tmpdir(), 'mxguard-monitor-serve-'));
  const store = await openSqliteStore(dir);
  await store.addDomain(
    'watch.test',
    { mode: 'testing', mx: ['mx.watch.test'], maxAge: 86400, rua: ['mailto:r@watch.test'], watchOnly: true },
    new Date(),
  );
  await store.close();

  serve = await startServe(
    [
      '--data-dir',
      dir,
      '--workers',
      '2',
      '--resolver',
      `${dns.host}:${dns.port}`,
      '--ca-file',
      chain.root.certPath,
      '--allow-private',
      '--timeout',
      '5',
      '--smtp-port',
      String(smtp.port),
      '--https-port',
      String(https.port),
      '--alert-webhook',
      hookUrl,
      '--alert-webhook',
      silentUrl,
      '--monitor-interval',
      '3600',
    ],
    { env: { MXGUARD_ADMIN_PASSWORD: PASSWORD } },
  );
});

after(async () => {
  await serve?.stop();
  await Promise.all([dns?.stop(), smtp?.stop(), https?.stop()]);
  await new Promise((resolve) => hookServer?.close(resolve));
  silentServer?.closeAllConnections();
  await new Promise((resolve) => silentServer?.close(resolve));
  pki?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const api = (method: string, path: string) =>
  httpRequest(serve.port, {
    method,
    path,
    headers: { authorization: `Bearer ${PASSWORD}` },
    ...(method === 'POST' ? { json: {} } : {}),
  });

describe('the monitor in serve', () => {
  it('checks the watched domain on start and sends the alert it opens to the webhook', async () => {
    const opened = await eventually(
      () => hooks.find((h) => h.event === 'alert.opened'),
      'the webhook of the opened alert',
      60_000,
    );
    assert.equal(opened.domain, 'watch.test');
    assert.equal(opened.code, 'MTASTS_MX_NOT_COVERED');
    assert.equal(opened.host, 'mx.watch.test');
  });

  it('"check now" through the API runs in a worker and stores a manual run; the start check ran once', async () => {
    // The receiver that never answers has the same notification, still unanswered: checks go on.
    await eventually(
      () => (silentRequests > 0 ? true : undefined),
      'the silent receiver to be called',
      60_000,
    );
    const now = await api('POST', '/api/domains/watch.test/check');
    assert.equal(now.status, 200, now.body);
    const run = JSON.parse(now.body) as { trigger: string; status: string };
    assert.equal(run.trigger, 'manual');
    assert.equal(run.status, 'fail');
    const list = await api('GET', '/api/domains/watch.test/checks');
    assert.equal(list.status, 200, list.body);
    const { runs } = JSON.parse(list.body) as { runs: Array<{ trigger: string }> };
    const triggers = runs.map((r) => r.trigger);
    assert.deepEqual(triggers, ['manual', 'start'], 'one start check, by one process');
    // Still the same alert: nothing sent again.
    assert.equal(hooks.length, 1);
    assert.equal(silentRequests, 1, 'the silent receiver is still waiting on its one request');
  });

  it('keeps the webhook path out of the log and stops cleanly', async () => {
    assert.ok(!serve.stdout().includes('secret-token-4711'), 'the webhook path is in the log');
    assert.match(serve.stdout(), /monitor: checking every watched domain/);
    assert.equal(await serve.stop(), 0);
  });
});
