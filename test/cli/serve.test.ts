// `mxguard serve` as a child process, end to end: a cluster of two workers with HTTPS by SNI (test CA),
// the policy fetched over HTTPS, fetches counted in /metrics across workers and written to the store
// by the primary, a policy changed from another process, a report upload in flight when SIGTERM
// arrives (it completes), exit status 0; and the failures a user sees (bad config, port in use),
// and the first start in an empty folder (what `npm start` does); workers killed during start-up and
// later are restarted (with backoff) while the policy stays served.
// The command is the built one (dist/cli/main.js, as `npm test` builds it).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RESTART, RestartBackoff } from '../../src/server/cluster.js';
import { probeSmtp } from '../../src/smtp/probe.js';
import { openStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import { DOMAIN_SETTINGS, eventually, httpsGet } from '../fixtures/serve/helpers.js';
import { BIN } from '../helpers/cli.js';
import { TestPki } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { httpRequest, type ServeProcess, spawnServe } from '../helpers/serve-process.js';

/** A minimal RFC 8460 §4.4 report about example.test. */
function report(reportId: string): string {
  return JSON.stringify({
    'organization-name': 'Lab Sender',
    'date-range': { 'start-datetime': '2026-03-01T00:00:00Z', 'end-datetime': '2026-03-01T23:59:59Z' },
    'contact-info': 'tlsrpt@sender.test',
    'report-id': reportId,
    policies: [
      {
        policy: { 'policy-type': 'sts', 'policy-domain': 'example.test', 'mx-host': ['mx.example.test'] },
        summary: { 'total-successful-session-count': 10, 'total-failure-session-count': 0 },
      },
    ],
  });
}

describe('serve as a cluster with HTTPS, end to end', () => {
  const pki = TestPki.create('mxguard-serve-cli-');
  const root = pki.issue('root', { subject: '/O=mxguard test/CN=CLI Root CA' });
  const leaf = pki.issue('leaf', {
    subject: '/CN=mta-sts.example.test',
    issuer: root,
    sans: ['mta-sts.example.test'],
  });
  const dir = mkdtempSync(join(tmpdir(), 'mxguard-serve-cli-'));
  const dataDir = join(dir, 'data');
  let serve: ServeProcess;
  let httpPort: number;
  let httpsPort: number;
  let metricsPort: number;
  let store: Store;

  before(async () => {
    // The domain exists before serve starts, as after `mxguard domain add`.
    store = await openStore(dataDir);
    await store.addDomain('example.test', DOMAIN_SETTINGS, new Date());
    const config = join(dir, 'serve.json');
    metricsPort = await freePort();
    writeFileSync(
      config,
      JSON.stringify({
        dataDir: 'data',
        tlsListen: '127.0.0.1:0',
        metricsListen: `127.0.0.1:${metricsPort}`,
        workers: 2,
        certificates: { 'mta-sts.example.test': { cert: leaf.certPath, key: leaf.key.path } },
      }),
    );
    serve = spawnServe(['--config', config, '--listen', '127.0.0.1:0', '--log-level', 'debug'], { cwd: dir });
    const https = await serve.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/, 'the HTTPS listener');
    const plain = await serve.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/, 'the HTTP listener');
    httpsPort = Number(https[1]);
    httpPort = Number(plain[1]);
  });
  after(async () => {
    if (serve?.child.exitCode === null) serve.child.kill('SIGKILL');
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
    pki.remove();
  });

  it('announces two workers and a generated admin password, which never reaches the logs', () => {
    assert.match(serve.stderr(), /2 HTTP processes/);
    const password = /admin password \(generated now, shown only once\): (\S+)/.exec(serve.stderr())?.[1];
    assert.ok(password && password.length >= 10, serve.stderr());
    assert.ok(!serve.stdout().includes(password), 'the generated password is in the logs');
  });

  it('serves the policy over HTTPS, valid under the test CA, from both workers', async () => {
    const expected = (await store.getDomain('example.test'))?.policyText;
    for (let i = 0; i < 6; i++) {
      const res = await httpsGet({ port: httpsPort, servername: 'mta-sts.example.test', ca: root.pem });
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(res.body, expected);
    }
    const pids = new Set([...serve.stdout().matchAll(/"pid":(\d+),"role":"worker-\d+"/g)].map((m) => m[1]));
    assert.equal(pids.size, 2, 'two worker processes log');
  });

  it('sums the fetch counters of all workers in /metrics, for the admin only, without domain labels', async () => {
    assert.equal((await httpRequest(httpPort, { path: '/metrics' })).status, 401);
    const password = /admin password \(generated now, shown only once\): (\S+)/.exec(serve.stderr())?.[1];
    const res = await httpRequest(httpPort, {
      path: '/metrics',
      headers: { authorization: `Bearer ${password}` },
    });
    assert.equal(res.status, 200);
    assert.match(res.body, /mxguard_policy_fetches_total\{client="Google"\} 6\b/);
    assert.doesNotMatch(res.body, /example\.test/);
  });

  it('serves the same sum unauthenticated on metricsListen, from the primary', async () => {
    const res = await httpRequest(metricsPort, { path: '/metrics' });
    assert.equal(res.status, 200);
    assert.match(res.body, /mxguard_policy_fetches_total\{client="Google"\} 6\b/);
    assert.equal((await httpRequest(metricsPort, { path: '/api/session' })).status, 404);
  });

  it('writes every fetch to the store (through the primary)', async () => {
    const fetches = await eventually(async () => {
      const list = (await store.listFetches('example.test')).items;
      return list.length >= 6 ? list : undefined;
    }, 'six logged fetches');
    assert.equal(fetches.length, 6);
    assert.ok(fetches.every((f) => f.clientIp.endsWith('127.0.0.1') && f.userAgent === 'Google-SMTP-STS'));
  });

  it('serves a policy changed by another process', async () => {
    await store.updateDomain('example.test', { mode: 'testing' }, new Date(Date.now() + 5000));
    await eventually(async () => {
      const res = await httpsGet({ port: httpsPort, servername: 'mta-sts.example.test', ca: root.pem });
      return /mode: testing/.test(res.body) ? true : undefined;
    }, 'the changed policy');
  });

  it('finishes a report upload in flight on SIGTERM, then exits 0', async () => {
    const body = Buffer.from(report('sigterm-in-flight'));
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: httpPort,
          method: 'POST',
          path: '/tlsrpt',
          agent: false,
          headers: { 'content-type': 'application/tlsrpt+json', 'content-length': String(body.length) },
        },
        (res) => {
          let text = '';
          res.on('data', (c) => {
            text += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      // Half the body now, SIGTERM, the rest after the shutdown has begun.
      req.write(body.subarray(0, 20));
      setTimeout(() => {
        serve.child.kill('SIGTERM');
        setTimeout(() => req.end(body.subarray(20)), 500);
      }, 300);
    });
    const res = await answer;
    assert.equal(res.status, 201, res.body);
    assert.equal(await serve.exit, 0, serve.stderr());
    assert.match(serve.stdout(), /"role":"primary".*"msg":"stopped"/);
    const stored = (await store.listReports({ domain: 'example.test' })).items;
    assert.ok(stored.some((r) => r.reportId === 'sigterm-in-flight'));
    // Nothing listens any more.
    await assert.rejects(httpRequest(httpPort, { path: '/healthz' }), /ECONNREFUSED/);
  });
});

describe('serve: what a user sees', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mxguard-serve-user-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('starts in an empty folder with no config (npm start), answers /healthz, and stops on SIGINT', async () => {
    const cwd = mkdtempSync(join(dir, 'fresh-'));
    const serve = spawnServe(['--listen', '127.0.0.1:0', '--workers', '1'], { cwd });
    const plain = await serve.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/, 'the HTTP listener');
    assert.match(serve.stderr(), new RegExp(`data in ${cwd.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/data`));
    assert.match(serve.stderr(), /no domains yet: .+ domain add example\.com/);
    const res = await httpRequest(Number(plain[1]), { path: '/healthz' });
    assert.equal(res.status, 200);
    serve.child.kill('SIGINT');
    assert.equal(await serve.exit, 0, serve.stderr());
  });

  it('--help teaches the config file and the MXGUARD_* variables', () => {
    const help = spawnSync(process.execPath, [BIN, 'serve', '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /--config <file>/);
    assert.match(
      help.stdout,
      /config file \(--config or MXGUARD_CONFIG\) < MXGUARD_\* environment < options/,
    );
    assert.match(
      help.stdout,
      /MXGUARD_ \+ the config key in upper case \(MXGUARD_DATA_DIR, MXGUARD_TLS_LISTEN/,
    );
  });

  it('refuses a bad config file with exit status 2, naming the file and the key', async () => {
    const config = join(dir, 'bad.json');
    writeFileSync(config, JSON.stringify({ listen: 'everywhere', intake: { maxBytes: 'lots' } }));
    const serve = spawnServe(['--config', config], { cwd: dir });
    assert.equal(await serve.exit, 2);
    assert.match(
      serve.stderr(),
      new RegExp(
        `mxguard: serve: ${config.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: listen: expected HOST:PORT`,
      ),
    );
    assert.match(serve.stderr(), /bad\.json: intake\.maxBytes: /);
    assert.doesNotMatch(serve.stderr(), /\n\s+at /, 'no stack trace');
  });

  it('says which listener cannot start when the port is taken, with exit status 2', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const serve = spawnServe(
        ['--listen', `127.0.0.1:${port}`, '--workers', '2', '--data-dir', join(dir, 'taken')],
        { cwd: dir },
      );
      assert.equal(await serve.exit, 2, serve.stderr());
      assert.match(
        serve.stderr(),
        new RegExp(`--listen cannot listen on 127\\.0\\.0\\.1:${port}: address already in use`),
      );
    } finally {
      taken.close();
    }
  });

  it('needs a working environment variable, or says which one is wrong', async () => {
    const serve = spawnServe([], { cwd: dir, env: { MXGUARD_WORKERS: 'two' } });
    assert.equal(await serve.exit, 2);
    assert.match(serve.stderr(), /MXGUARD_WORKERS: /);
  });
});

describe('serve: STARTTLS on the SMTP report receiver', () => {
  const pki = TestPki.create('mxguard-serve-smtp-');
  const root = pki.issue('root', { subject: '/CN=SMTP Root CA' });
  const first = pki.issue('first', {
    subject: '/CN=mx-a.example.test',
    issuer: root,
    sans: ['mx-a.example.test'],
  });
  const renewed = pki.issue('renewed', {
    subject: '/CN=mx-b.example.test',
    issuer: root,
    sans: ['mx-b.example.test'],
  });
  const dir = mkdtempSync(join(tmpdir(), 'mxguard-serve-smtp-'));
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    pki.remove();
  });

  /** The subject of the certificate offered after STARTTLS to a client that sends no SNI (as Postfix). */
  async function offeredWithoutSni(port: number): Promise<string> {
    const r = spawnSync(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${port}`, '-starttls', 'smtp', '-noservername'],
      { input: 'QUIT\r\n', encoding: 'utf8', timeout: 15_000 },
    );
    return /^subject=(.*)$/m.exec(r.stdout)?.[1]?.trim() ?? `no certificate: ${r.stderr}`;
  }

  it('offers the default certificate, valid for PKIX, and the renewed one after the files change', async () => {
    const certFile = join(dir, 'smtp-cert.pem');
    const keyFile = join(dir, 'smtp-key.pem');
    copyFileSync(first.certPath, certFile);
    copyFileSync(first.key.path, keyFile);
    const port = await freePort();
    const config = join(dir, 'serve.json');
    writeFileSync(
      config,
      JSON.stringify({
        dataDir: 'data',
        workers: 1,
        smtpListen: `127.0.0.1:${port}`,
        defaultCertificate: { cert: certFile, key: keyFile },
      }),
    );
    const serve = spawnServe(['--config', config, '--listen', '127.0.0.1:0'], { cwd: dir });
    try {
      await serve.waitFor(/SMTP report intake on .*, STARTTLS with the default certificate/, 'the SMTP line');
      await serve.waitFor(/listening on http:/, 'the HTTP listener');
      const probe = await probeSmtp({
        address: '127.0.0.1',
        port,
        mxHost: 'mx-a.example.test',
        ca: [root.pem],
        timeoutMs: 5000,
      });
      assert.ok(probe.ok, JSON.stringify(probe));
      assert.equal(probe.pkix.valid, true);
      assert.equal(probe.pkix.nameMatches, true);
      assert.match(await offeredWithoutSni(port), /CN ?= ?mx-a\.example\.test/);

      // A renewal writes new files: the next sessions get the new certificate, without a restart.
      writeFileSync(keyFile, readFileSync(renewed.key.path));
      writeFileSync(certFile, readFileSync(renewed.certPath));
      await eventually(
        async () => (/mx-b\.example\.test/.test(await offeredWithoutSni(port)) ? true : undefined),
        'the renewed certificate without SNI',
        30_000,
      );
      const again = await probeSmtp({
        address: '127.0.0.1',
        port,
        mxHost: 'mx-b.example.test',
        ca: [root.pem],
        timeoutMs: 5000,
      });
      assert.ok(again.ok && again.pkix.nameMatches, JSON.stringify(again));
    } finally {
      serve.child.kill('SIGTERM');
      assert.equal(await serve.exit, 0, serve.stderr());
    }
  });

  it('says when STARTTLS is not offered', async () => {
    const port = await freePort();
    const serve = spawnServe(
      ['--listen', '127.0.0.1:0', '--smtp-listen', `127.0.0.1:${port}`, '--data-dir', join(dir, 'plain')],
      { cwd: dir, env: { MXGUARD_WORKERS: '1' } },
    );
    try {
      await serve.waitFor(/no STARTTLS \(set defaultCertificate to offer it\)/, 'the SMTP line');
    } finally {
      serve.child.kill('SIGTERM');
      await serve.exit;
    }
  });
});

describe('RestartBackoff: when serve starts another worker, and when it gives up', () => {
  it('waits 1 s, doubling up to 30 s, for deaths in a row, and gives up after the last allowed one', () => {
    const backoff = new RestartBackoff();
    const delays: Array<number | undefined> = [];
    for (let i = 0; i <= RESTART.maxInARow; i++) delays.push(backoff.next(i * 1000));
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, undefined]);
  });

  it('starts again at 1 s after workers stayed up for a while', () => {
    const backoff = new RestartBackoff();
    for (let i = 0; i < RESTART.maxInARow; i++) backoff.next(i);
    const later = RESTART.maxInARow + RESTART.stableMs;
    assert.equal(backoff.next(later), 1000);
    assert.equal(backoff.next(later + 10), 2000);
  });
});

/** The process ids of the children of `pid` (the cluster workers of a serve primary). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number);
  } catch {
    return [];
  }
}

describe('serve: workers that die are restarted', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mxguard-serve-restart-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('restarts a worker killed during start-up and one killed later, and goes on serving the policy', async () => {
    const dataDir = join(dir, 'data');
    const store = await openStore(dataDir);
    const expected = (await store.addDomain('example.test', DOMAIN_SETTINGS, new Date())).policyText;
    await store.close();
    const serve = spawnServe(['--listen', '127.0.0.1:0', '--workers', '2', '--data-dir', dataDir], {
      cwd: dir,
    });
    const pid = serve.child.pid!;
    try {
      // The first worker is killed as soon as it exists: long before it can have loaded and listened.
      let first: number | undefined;
      for (let i = 0; i < 20_000 && first === undefined && serve.child.exitCode === null; i++) {
        first = childrenOf(pid)[0];
        if (first === undefined) await new Promise((r) => setTimeout(r, 2));
      }
      assert.ok(first !== undefined, `no worker process appeared: ${serve.stderr()}`);
      process.kill(first, 'SIGKILL');
      assert.doesNotMatch(serve.stderr(), /listening on/);

      const plain = await serve.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/, 'the HTTP listener');
      const port = Number(plain[1]);
      const policy = async () => {
        const { status, body } = await httpRequest(port, {
          path: '/.well-known/mta-sts.txt',
          headers: { host: 'mta-sts.example.test' },
        });
        return { status, body };
      };
      assert.deepEqual(await policy(), { status: 200, body: expected });
      const workers = childrenOf(pid);
      assert.equal(workers.length, 2, String(workers));
      assert.ok(!workers.includes(first));
      assert.match(
        serve.stdout(),
        new RegExp(`"workerPid":${first}[^\\n]*"msg":"worker died; starting another`),
      );
      // It died while starting: it never reported listening.
      assert.doesNotMatch(serve.stdout(), new RegExp(`"workerPid":${first}[^\\n]*"msg":"worker listening"`));

      // A running worker dies: another takes its place, and the policy is answered all along.
      process.kill(workers[0]!, 'SIGKILL');
      assert.deepEqual(await policy(), { status: 200, body: expected });
      const replaced = await eventually(() => {
        const now = childrenOf(pid);
        return now.length === 2 && !now.includes(workers[0]!) ? now : undefined;
      }, 'a new worker process');
      const fresh = replaced.find((w) => w !== workers[1]);
      await eventually(
        () =>
          new RegExp(`"workerPid":${fresh}[^\\n]*"msg":"worker listening"`).test(serve.stdout())
            ? true
            : undefined,
        'the new worker to listen',
      );
      assert.deepEqual(await policy(), { status: 200, body: expected });
      assert.equal(serve.child.exitCode, null, serve.stderr());
    } finally {
      serve.child.kill('SIGTERM');
      assert.equal(await serve.exit, 0, serve.stderr());
    }
  });
});
