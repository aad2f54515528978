// Which host names reach the dashboard and API of `mxguard serve` (src/server/hosts.ts), against DNS
// rebinding: a hostile page whose name resolves to 127.0.0.1 is same-origin with the dashboard for the
// browser, so only the Host header tells it apart. Also RFC 9112 §3.2's one-Host rule on real sockets
// (Node keeps the first of two Host headers and drops the second, so only rawHeaders shows them), and
// what must stay open on any host: policy hosting (by Host) and the TLS-RPT intake.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { POLICY_PATH } from '../../src/mtasts/url.js';
import { buildApp, type Listeners, startListeners } from '../../src/server/app.js';
import { ensureAdminPassword } from '../../src/server/auth.js';
import { adminHostNames, hostNameOf } from '../../src/server/hosts.js';
import { reportBytes } from '../fixtures/intake/helpers.js';
import { DOMAIN_SETTINGS, type TestContext, testContext } from '../fixtures/serve/helpers.js';

const PASSWORD = 'rebinding-test-password';
const BEARER = { authorization: `Bearer ${PASSWORD}` };

describe('hostNameOf: the name a Host header value gives, port and case ignored', () => {
  const table: Array<[string | undefined, string | undefined]> = [
    ['localhost', 'localhost'],
    ['LocalHost:8080', 'localhost'],
    ['admin.example.com.', 'admin.example.com'],
    ['Admin.Example.COM.:8443', 'admin.example.com'],
    ['127.0.0.1:80', '127.0.0.1'],
    ['[::1]', '[::1]'],
    ['[0:0:0:0:0:0:0:1]:8080', '[::1]'],
    ['[::FFFF:7F00:1]', '[::ffff:7f00:1]'],
    ['', undefined],
    [undefined, undefined],
    ['a b', undefined],
    ['a, b', undefined],
    ['host:http', undefined],
    ['host:99999', undefined],
    ['[::1', undefined],
    ['[nope]', undefined],
    ['user@host', undefined],
    ['host/path', undefined],
  ];
  for (const [value, name] of table) {
    it(`${JSON.stringify(value)} -> ${JSON.stringify(name)}`, () => assert.equal(hostNameOf(value), name));
  }
});

describe('adminHostNames', () => {
  it('is the listen hosts, localhost, 127.0.0.1, [::1] and adminHosts, normalized', () => {
    const names = adminHostNames({
      listen: { host: '192.0.2.10', port: 8080 },
      tlsListen: { host: '2001:db8::1', port: 443 },
      adminHosts: ['Admin.Example.com', '[2001:DB8::2]'],
    });
    assert.deepEqual(
      [...names].sort(),
      [
        '127.0.0.1',
        '192.0.2.10',
        '[2001:db8::1]',
        '[2001:db8::2]',
        '[::1]',
        'admin.example.com',
        'localhost',
      ].sort(),
    );
  });

  it('takes a listen host name as it is given', () => {
    const names = adminHostNames({ listen: { host: 'Box.LAN', port: 8080 } });
    assert.ok(names.has('box.lan'));
  });
});

describe('the dashboard and the API answer only on admin host names', () => {
  let ctx: TestContext;
  let app: FastifyInstance;

  before(async () => {
    ctx = await testContext({ settings: { adminHosts: ['admin.example.com'] } });
    await ensureAdminPassword(ctx, PASSWORD);
    await ctx.store.addDomain('example.test', DOMAIN_SETTINGS, new Date());
    app = buildApp(ctx);
    await app.ready();
  });
  after(async () => {
    await app.close();
    await ctx.close();
  });

  it('refuses the API on a rebound host name with 421, even with valid credentials', async () => {
    for (const url of ['/api/session', '/api/domains', '/api/openapi.json', '/api/no-such-route']) {
      const res = await app.inject({ url, headers: { host: 'evil.example', ...BEARER } });
      assert.equal(res.statusCode, 421, url);
      assert.equal(res.json().error, 'Misdirected Request', url);
      assert.doesNotMatch(res.body, /example\.test/, url);
    }
    const login = await app.inject({
      method: 'POST',
      url: '/api/login',
      headers: { host: 'evil.example:8080', 'content-type': 'application/json' },
      payload: { password: PASSWORD },
    });
    assert.equal(login.statusCode, 421);
    assert.equal(login.headers['set-cookie'], undefined);
  });

  it('answers 404 for the dashboard pages on a rebound host name', async () => {
    for (const url of ['/', '/assets/app.js', '/assets/style.css']) {
      const res = await app.inject({ url, headers: { host: 'evil.example' } });
      assert.equal(res.statusCode, 404, url);
      assert.doesNotMatch(res.body, /mxguard|<script/, url);
    }
  });

  it('does not let X-Forwarded-Host stand in for Host, even from a trusted proxy', async () => {
    const proxied = buildApp(ctx, { trustProxy: ['127.0.0.1'] });
    try {
      const res = await proxied.inject({
        url: '/api/session',
        headers: { host: 'evil.example', 'x-forwarded-host': 'localhost', ...BEARER },
        remoteAddress: '127.0.0.1',
      });
      assert.equal(res.statusCode, 421);
    } finally {
      await proxied.close();
    }
  });

  it('answers on every default and configured admin host, whatever the port and case', async () => {
    for (const host of [
      'localhost',
      'localhost:8080',
      '127.0.0.1:41234',
      '[::1]:8080',
      'admin.example.com',
      'ADMIN.Example.Com:8443',
      'admin.example.com.',
    ]) {
      const api = await app.inject({ url: '/api/session', headers: { host, ...BEARER } });
      assert.equal(api.statusCode, 200, host);
      const page = await app.inject({ url: '/', headers: { host } });
      assert.equal(page.statusCode, 200, host);
      assert.match(page.body, /<title>mxguard<\/title>/, host);
    }
  });

  it('keeps serving policies by Host and taking reports on any host', async () => {
    const policy = await app.inject({ url: POLICY_PATH, headers: { host: 'mta-sts.example.test' } });
    assert.equal(policy.statusCode, 200);
    for (const [i, host] of ['evil.example', 'mta-sts.example.test', 'reports.sender.test'].entries()) {
      const res = await app.inject({
        method: 'POST',
        url: '/tlsrpt',
        headers: { host, 'content-type': 'application/tlsrpt+json' },
        payload: reportBytes({ 'report-id': `any-host-${i}` }),
      });
      assert.equal(res.statusCode, 201, `${host}: ${res.body}`);
    }
    assert.equal((await app.inject({ url: '/healthz', headers: { host: 'evil.example' } })).statusCode, 200);
  });
});

describe('one Host header per request, on real sockets (RFC 9112 §3.2)', () => {
  let ctx: TestContext;
  let listeners: Listeners;
  let app: FastifyInstance;
  let port: number;

  before(async () => {
    ctx = await testContext();
    await ensureAdminPassword(ctx, PASSWORD);
    await ctx.store.addDomain('example.test', DOMAIN_SETTINGS, new Date());
    app = buildApp(ctx);
    listeners = await startListeners(app, { listen: { host: '127.0.0.1', port: 0 } });
    port = Number(new URL(listeners.urls.http).port);
  });
  after(async () => {
    await listeners.close(1000);
    await app.close();
    await ctx.close();
  });

  /** Sends `head` (request line and header lines, without the empty line) and `body`; the whole answer. */
  function raw(head: string[], body = ''): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        // Not half-closed: the server closes after its answer (Connection: close).
        socket.write(`${[...head, 'Connection: close'].join('\r\n')}\r\n\r\n${body}`);
      });
      let answer = '';
      socket.on('data', (c: Buffer) => {
        answer += c.toString('latin1');
      });
      socket.on('close', () => resolve(answer));
      socket.on('error', reject);
    });
  }
  const status = (answer: string) => Number(/^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1] ?? 0);

  it('answers the admin host, the policy host and the intake normally with one Host', async () => {
    assert.equal(
      status(
        await raw([
          'GET /api/session HTTP/1.1',
          `Host: 127.0.0.1:${port}`,
          `Authorization: Bearer ${PASSWORD}`,
        ]),
      ),
      200,
    );
    assert.equal(status(await raw([`GET ${POLICY_PATH} HTTP/1.1`, 'Host: mta-sts.example.test'])), 200);
  });

  it('refuses two Host headers with 400 everywhere, whichever comes first', async () => {
    const hostPairs = [
      ['localhost', 'evil.example'],
      ['evil.example', 'localhost'],
      ['localhost', 'localhost'],
      ['mta-sts.example.test', 'evil.example'],
    ];
    for (const [first, second] of hostPairs) {
      for (const target of ['/api/session', '/', POLICY_PATH, '/healthz']) {
        const answer = await raw([
          `GET ${target} HTTP/1.1`,
          `Host: ${first}`,
          `host: ${second}`,
          `Authorization: Bearer ${PASSWORD}`,
        ]);
        assert.equal(status(answer), 400, `${target} ${first}+${second}: ${answer}`);
      }
    }
    const body = reportBytes({ 'report-id': 'two-hosts' }).toString();
    const intake = await raw(
      [
        'POST /tlsrpt HTTP/1.1',
        'Host: reports.example.test',
        'Host: localhost',
        'Content-Type: application/tlsrpt+json',
        `Content-Length: ${Buffer.byteLength(body)}`,
      ],
      body,
    );
    assert.equal(status(intake), 400, intake);
  });

  it('refuses the API to an HTTP/1.0 request without Host, or with an empty one', async () => {
    for (const head of [['GET /api/session HTTP/1.0'], ['GET /api/session HTTP/1.1', 'Host: ']]) {
      const answer = await raw([...head, `Authorization: Bearer ${PASSWORD}`]);
      assert.equal(status(answer), 421, answer);
    }
  });

  it('refuses a Host value that is not host[:port] with 400', async () => {
    for (const host of ['localhost, evil.example', 'local host', 'localhost:http']) {
      const answer = await raw([
        'GET /api/session HTTP/1.1',
        `Host: ${host}`,
        `Authorization: Bearer ${PASSWORD}`,
      ]);
      assert.equal(status(answer), 400, `${host}: ${answer}`);
    }
  });

  it('refuses an absolute-form target whose host differs from Host with 400 (RFC 9112 §3.2.2)', async () => {
    const answer = await raw([
      'GET http://evil.example/api/session HTTP/1.1',
      'Host: localhost',
      `Authorization: Bearer ${PASSWORD}`,
    ]);
    assert.equal(status(answer), 400, answer);
    const same = await raw([
      `GET http://localhost:${port}/api/session HTTP/1.1`,
      `Host: localhost:${port}`,
      `Authorization: Bearer ${PASSWORD}`,
    ]);
    assert.equal(status(same), 200, same);
  });
});
