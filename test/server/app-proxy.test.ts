// `mxguard serve` behind a reverse proxy: the session cookie gets `Secure` when the request reached the
// proxy over HTTPS (X-Forwarded-Proto, believed only from a trusted proxy: fastify's trustProxy), and
// the nginx example of docs/serve.md ("Behind a reverse proxy"), run as written in a real nginx on
// loopback in front of serve: the policy by Host, a login on the admin host name with a Secure
// cookie, and the client address taken from the proxy and not from what the client claims.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { POLICY_PATH } from '../../src/mtasts/url.js';
import { buildApp, type Listeners, startListeners } from '../../src/server/app.js';
import { ensureAdminPassword } from '../../src/server/auth.js';
import type { TrustProxy } from '../../src/server/config.js';
import { DOMAIN_SETTINGS, eventually, type TestContext, testContext } from '../fixtures/serve/helpers.js';
import { TestPki } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';

const PASSWORD = 'proxy-test-password';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function collect(res: http.IncomingMessage, resolve: (answer: Answer) => void): void {
  let body = '';
  res.on('data', (c) => {
    body += c;
  });
  res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
}

function login(port: number, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ password: PASSWORD });
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/api/login',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': String(body.length), ...headers },
      },
      (res) => collect(res, resolve),
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('the session cookie is Secure when a trusted proxy says the client used HTTPS', () => {
  let ctx: TestContext;

  before(async () => {
    ctx = await testContext();
    await ensureAdminPassword(ctx, PASSWORD);
  });
  after(async () => ctx.close());

  async function cookieVia(trustProxy: TrustProxy, headers: Record<string, string>): Promise<string> {
    const app = buildApp(ctx, { trustProxy });
    const listeners = await startListeners(app, { listen: { host: '127.0.0.1', port: 0 } });
    try {
      const res = await login(Number(new URL(listeners.urls.http).port), headers);
      assert.equal(res.status, 200, res.body);
      return String(res.headers['set-cookie']);
    } finally {
      await listeners.close(1000);
      await app.close();
    }
  }

  it('sets Secure for X-Forwarded-Proto: https from the trusted proxy address', async () => {
    const cookie = await cookieVia(['127.0.0.1'], { 'x-forwarded-proto': 'https' });
    assert.match(cookie, /; Secure\b/);
    assert.match(cookie, /; HttpOnly; SameSite=Strict;/);
  });

  it('ignores X-Forwarded-Proto from a peer that is not the trusted proxy', async () => {
    const cookie = await cookieVia(['192.0.2.1'], { 'x-forwarded-proto': 'https' });
    assert.doesNotMatch(cookie, /Secure/);
  });

  it('ignores X-Forwarded-Proto without trustProxy', async () => {
    const cookie = await cookieVia(false, { 'x-forwarded-proto': 'https' });
    assert.doesNotMatch(cookie, /Secure/);
  });

  it('does not set Secure for plain HTTP through the trusted proxy', async () => {
    const cookie = await cookieVia(['127.0.0.1'], { 'x-forwarded-proto': 'http' });
    assert.doesNotMatch(cookie, /Secure/);
  });
});

/** The nginx server blocks of docs/serve.md's "Behind a reverse proxy" section, as written there. */
function documentedNginxServers(): string {
  const doc = readFileSync(new URL('../../docs/serve.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Behind a reverse proxy'));
  const block = /```nginx\n([\s\S]*?)```/.exec(section);
  assert.ok(block, 'docs/serve.md has an nginx example under "Behind a reverse proxy"');
  return block[1]!;
}

describe('the documented nginx example, in a real nginx in front of serve', () => {
  const pki = TestPki.create('mxguard-proxy-');
  const root = pki.issue('root', { subject: '/CN=Proxy Test Root' });
  const names = ['mta-sts.example.com', 'mta-sts.example.org', 'mxguard.example.com'];
  const leaf = pki.issue('leaf', { subject: '/CN=mta-sts.example.com', issuer: root, sans: names });
  const dir = mkdtempSync(join(tmpdir(), 'mxguard-nginx-'));
  let ctx: TestContext;
  let app: FastifyInstance;
  let listeners: Listeners;
  let nginx: ChildProcess;
  let nginxPort: number;
  let policyText: string;

  before(async () => {
    ctx = await testContext({
      settings: { trustProxy: ['127.0.0.1'], adminHosts: ['mxguard.example.com'] },
    });
    await ensureAdminPassword(ctx, PASSWORD);
    policyText = (await ctx.store.addDomain('example.com', DOMAIN_SETTINGS, new Date())).policyText;
    app = buildApp(ctx);
    listeners = await startListeners(app, { listen: { host: '127.0.0.1', port: 0 } });
    const servePort = new URL(listeners.urls.http).port;
    nginxPort = await freePort();
    const servers = documentedNginxServers()
      .replaceAll('listen 443 ssl;', `listen 127.0.0.1:${nginxPort} ssl;`)
      .replace(/ssl_certificate\s+\S+;/g, `ssl_certificate ${leaf.certPath};`)
      .replace(/ssl_certificate_key\s+\S+;/g, `ssl_certificate_key ${leaf.key.path};`)
      .replaceAll('http://127.0.0.1:8080', `http://127.0.0.1:${servePort}`);
    const temp = join(dir, 'tmp');
    mkdirSync(temp);
    const config = `daemon off;
master_process off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')};
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${temp}; proxy_temp_path ${temp}; fastcgi_temp_path ${temp};
  uwsgi_temp_path ${temp}; scgi_temp_path ${temp};
${servers}
}
`;
    writeFileSync(join(dir, 'nginx.conf'), config);
    nginx = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
    await eventually(
      () =>
        new Promise<true | undefined>((resolve) => {
          const socket = https.get(
            {
              host: '127.0.0.1',
              port: nginxPort,
              path: '/healthz',
              ca: root.pem,
              servername: names[0],
              agent: false,
            },
            (res) => {
              res.resume();
              resolve(true);
            },
          );
          socket.on('error', () => resolve(undefined));
        }),
      'nginx to listen',
    );
  });
  after(async () => {
    nginx?.kill('SIGTERM');
    await listeners?.close(1000);
    await app?.close();
    await ctx?.close();
    rmSync(dir, { recursive: true, force: true });
    pki.remove();
  });

  function viaNginx(
    name: string,
    options: { method?: string; path: string; headers?: Record<string, string>; body?: string },
  ): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: nginxPort,
          servername: name,
          ca: root.pem,
          agent: false,
          method: options.method ?? 'GET',
          path: options.path,
          headers: { host: name, ...options.headers },
        },
        (res) => collect(res, resolve),
      );
      req.on('error', reject);
      req.end(options.body);
    });
  }

  it('serves the policy of mta-sts.<domain> through the proxy', async () => {
    const res = await viaNginx('mta-sts.example.com', {
      path: POLICY_PATH,
      headers: { 'user-agent': 'via-nginx', 'x-forwarded-for': '203.0.113.66' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.body, policyText);
  });

  it('logs the address nginx saw, not one the client claims in X-Forwarded-For', async () => {
    const fetch = await eventually(
      async () => (await ctx.store.listFetches('example.com')).items.find((f) => f.userAgent === 'via-nginx'),
      'the logged fetch',
    );
    assert.equal(fetch.clientIp, '127.0.0.1');
  });

  it('logs in on the admin host name with a Secure session cookie', async () => {
    const body = JSON.stringify({ password: PASSWORD });
    const res = await viaNginx('mxguard.example.com', {
      method: 'POST',
      path: '/api/login',
      headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
      body,
    });
    assert.equal(res.status, 200, res.body);
    assert.match(String(res.headers['set-cookie']), /; Secure\b/);
  });

  it('keeps the dashboard off the policy host names', async () => {
    const res = await viaNginx('mta-sts.example.com', { path: '/api/session' });
    assert.equal(res.status, 404);
  });
});
