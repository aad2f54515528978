// POST /tlsrpt and /tlsrpt/:domain (src/server/intake.ts): RFC 8460 §5.4 semantics with fastify's inject,
// then the same app on a real loopback socket (body cap on a chunked upload, a gzip bomb with bounded
// memory, a report end to end). The store is the real SQLite store.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';
import { POLICY_PATH } from '../../src/mtasts/url.js';
import { buildApp, type Listeners, startListeners } from '../../src/server/app.js';
import { ensureAdminPassword } from '../../src/server/auth.js';
import type { ServerContext } from '../../src/server/context.js';
import { registerIntake } from '../../src/server/intake.js';
import { type ReportDecoder, ReportDecoderPool, reportDecoderFor } from '../../src/server/report-decoder.js';
import type { Store } from '../../src/store/types.js';
import {
  counterValue,
  gzipBomb,
  gzippedReport,
  NOW,
  reportBytes,
  reportEmail,
  TEST_LIMITS,
  type TestContext,
  testContext,
  wireReport,
} from '../fixtures/intake/helpers.js';
import { longOrganizationGzip, manyRowsReport } from '../fixtures/intake/hostile.js';
import {
  DOMAIN_SETTINGS,
  eventually,
  type TestContext as ServeTestContext,
  testContext as serveTestContext,
} from '../fixtures/serve/helpers.js';

async function intakeApp(ctx: ServerContext): Promise<FastifyInstance> {
  const app = Fastify();
  await registerIntake(app, ctx);
  // A route outside the intake scope: its JSON parser must keep working.
  app.post('/api/echo', async (request) => ({ body: request.body }));
  await app.ready();
  return app;
}

function post(
  app: FastifyInstance,
  url: string,
  type: string | undefined,
  payload: Buffer | string,
  ip = '192.0.2.1',
) {
  return app.inject({
    method: 'POST',
    url,
    headers: type === undefined ? {} : { 'content-type': type },
    payload,
    remoteAddress: ip,
  });
}

interface Answer {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

/** One request to 127.0.0.1:`port` on a fresh connection; `write` sends the body and ends it. */
function exchange(
  port: number,
  options: { method: string; path: string; headers: http.OutgoingHttpHeaders },
  write: (req: http.ClientRequest) => void,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, agent: false, ...options }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    write(req);
  });
}

let ctx: TestContext;
let app: FastifyInstance;

before(async () => {
  ctx = await testContext();
  app = await intakeApp(ctx);
});
after(async () => {
  await app.close();
  await ctx.close();
});

describe('POST /tlsrpt', () => {
  it('201 for a new report, 200 for the same report again, stored once', async () => {
    const body = reportBytes({ 'report-id': 'https-1' });
    const first = await post(app, '/tlsrpt', 'application/tlsrpt+json', body);
    assert.equal(first.statusCode, 201, first.body);
    const json = first.json();
    assert.equal(json.stored[0].created, true);
    assert.equal(json.stored[0].reportId, 'https-1');
    assert.deepEqual(json.warnings, []);

    const second = await post(app, '/tlsrpt', 'application/tlsrpt+json', body);
    assert.equal(second.statusCode, 200);
    assert.equal(second.json().stored[0].created, false);
    assert.equal(second.json().stored[0].id, json.stored[0].id);

    const saved = await ctx.store.getReport(json.stored[0].id);
    assert.equal(saved?.source, 'https');
    assert.equal(saved?.dkim, 'none');
    assert.equal(saved?.submitter, '192.0.2.1');
    const all = (await ctx.store.listReports({ limit: 1000 })).items;
    assert.equal(all.filter((r) => r.reportId === 'https-1').length, 1);
  });

  it('201 for application/tlsrpt+gzip (with parameters and any case)', async () => {
    const res = await post(
      app,
      '/tlsrpt',
      'Application/TLSRPT+GZIP; charset=binary',
      gzippedReport({ 'report-id': 'https-gz' }),
    );
    assert.equal(res.statusCode, 201, res.body);
  });

  it('accepts application/json and application/gzip with a warning', async () => {
    for (const [type, body] of [
      ['application/json', reportBytes({ 'report-id': 'https-plain-json' })],
      ['application/gzip', gzippedReport({ 'report-id': 'https-plain-gzip' })],
    ] as const) {
      const res = await post(app, '/tlsrpt', type, body);
      assert.equal(res.statusCode, 201, res.body);
      assert.ok(res.json().warnings.some((w: { code: string }) => w.code === 'INTAKE_CONTENT_TYPE'));
    }
  });

  it('warns when the label and the content disagree', async () => {
    const res = await post(
      app,
      '/tlsrpt',
      'application/tlsrpt+json',
      gzippedReport({ 'report-id': 'https-mislabel' }),
    );
    assert.equal(res.statusCode, 201, res.body);
    assert.ok(res.json().warnings.some((w: { code: string }) => w.code === 'INTAKE_CONTENT_MISMATCH'));
  });

  const refused: Array<[string, string | undefined, Buffer | string, number, string]> = [
    ['no Content-Type', undefined, reportBytes(), 415, 'INTAKE_UNSUPPORTED_TYPE'],
    ['text/plain', 'text/plain', reportBytes(), 415, 'INTAKE_UNSUPPORTED_TYPE'],
    ['multipart/form-data', 'multipart/form-data; boundary=x', reportBytes(), 415, 'INTAKE_UNSUPPORTED_TYPE'],
    [
      'a body over maxBytes',
      'application/tlsrpt+json',
      Buffer.alloc(TEST_LIMITS.maxBytes + 1, 0x20),
      413,
      'INTAKE_TOO_LARGE',
    ],
    ['an empty body', 'application/tlsrpt+json', '', 400, 'TLSRPT_NOT_A_REPORT'],
    ['invalid JSON', 'application/tlsrpt+json', '{"organization-name": "x",', 400, 'TLSRPT_BAD_JSON'],
    ['JSON that is no report', 'application/tlsrpt+json', '{"a": 1}', 400, 'TLSRPT_NOT_A_REPORT'],
    ['a JSON array', 'application/tlsrpt+json', '[1, 2]', 400, 'TLSRPT_NOT_A_REPORT'],
    [
      'JSON nested too deep',
      'application/tlsrpt+json',
      `{"a":${'['.repeat(200)}${']'.repeat(200)}}`,
      400,
      'TLSRPT_TOO_DEEP',
    ],
    ['an email posted over HTTPS', 'application/tlsrpt+json', reportEmail(), 400, 'TLSRPT_NOT_A_REPORT'],
    ['corrupt gzip', 'application/tlsrpt+gzip', gzippedReport().subarray(0, 30), 400, 'TLSRPT_BAD_GZIP'],
    [
      'a gzip bomb',
      'application/tlsrpt+gzip',
      gzipBomb(TEST_LIMITS.maxDecompressedBytes * 20),
      413,
      'TLSRPT_TOO_LARGE',
    ],
  ];
  for (const [name, type, body, status, code] of refused) {
    it(`${status} ${code}: ${name}`, async () => {
      const res = await post(app, '/tlsrpt', type, body);
      assert.equal(res.statusCode, status, res.body);
      assert.match(String(res.headers['content-type']), /^application\/json/);
      const error = res.json().error;
      assert.equal(error.code, code);
      assert.equal(typeof error.message, 'string');
      assert.ok(error.message.length > 5);
    });
  }

  it('keeps decoder refusals in the rejected list with the client IP, and counts every refusal', async () => {
    const res = await post(app, '/tlsrpt', 'application/tlsrpt+json', '{"broken": ', '203.0.113.50');
    assert.equal(res.statusCode, 400);
    const rejected = (await ctx.store.listRejected({ limit: 1000 })).items;
    const row = rejected.find((r) => r.submitter === '203.0.113.50');
    assert.equal(row?.source, 'https');
    assert.match(row!.reason, /JSON/);
    assert.ok(
      (await counterValue(ctx, 'mxguard_reports_rejected_total', { code: 'INTAKE_UNSUPPORTED_TYPE' })) >= 1,
    );
    assert.ok((await counterValue(ctx, 'mxguard_reports_rejected_total', { code: 'INTAKE_TOO_LARGE' })) >= 1);
  });

  it('stores attacker HTML in fields verbatim and returns it JSON-encoded', async () => {
    const evil = '</script><script>alert(document.cookie)</script>';
    const res = await post(app, '/tlsrpt', 'application/tlsrpt+json', reportBytes({ 'report-id': evil }));
    assert.equal(res.statusCode, 201, res.body);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    const saved = await ctx.store.getReport(res.json().stored[0].id);
    assert.equal(saved?.reportId, evil);
  });

  it('leaves the JSON parser of routes outside the intake alone', async () => {
    const res = await post(app, '/api/echo', 'application/json', '{"a":1}');
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { body: { a: 1 } });
  });
});

describe('POST /tlsrpt/:domain', () => {
  it('201 for a report about the domain', async () => {
    const res = await post(
      app,
      '/tlsrpt/example.com',
      'application/tlsrpt+json',
      reportBytes({ 'report-id': 'd-1' }),
    );
    assert.equal(res.statusCode, 201, res.body);
  });

  it('400 INTAKE_WRONG_DOMAIN for a report about another domain, kept in the rejected list', async () => {
    const res = await post(
      app,
      '/tlsrpt/other.example',
      'application/tlsrpt+json',
      reportBytes({ 'report-id': 'd-2' }),
      '203.0.113.51',
    );
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.code, 'INTAKE_WRONG_DOMAIN');
    const rejected = (await ctx.store.listRejected({ limit: 1000 })).items;
    assert.ok(rejected.some((r) => r.submitter === '203.0.113.51' && /other\.example/.test(r.reason)));
  });

  it('400 INTAKE_BAD_DOMAIN for a URL that names no host', async () => {
    const res = await post(app, '/tlsrpt/-bad-.example', 'application/tlsrpt+json', reportBytes());
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.code, 'INTAKE_BAD_DOMAIN');
  });
});

describe('rate limit per client IP', () => {
  it('IPv6 clients are counted per /64: fresh addresses of one /64 share its tokens', async () => {
    const limited = await testContext({ intake: { ratePerMinute: 2 } });
    limited.now = () => NOW;
    const limitedApp = await intakeApp(limited);
    try {
      const from = (ip: string, id: string) =>
        post(limitedApp, '/tlsrpt', 'application/tlsrpt+json', reportBytes({ 'report-id': id }), ip);
      assert.equal((await from('2001:db8:1:2::1', 'v6-a')).statusCode, 201);
      assert.equal((await from('2001:db8:1:2::ffff', 'v6-b')).statusCode, 201);
      const third = await from('2001:db8:1:2:dead:beef:0:1', 'v6-c');
      assert.equal(third.statusCode, 429, 'a third address of the same /64 has no token left');
      assert.equal((await from('2001:db8:1:3::1', 'v6-d')).statusCode, 201, 'another /64 has its own');
    } finally {
      await limitedApp.close();
      await limited.close();
    }
  });

  it('429 with Retry-After once a client has used its tokens; other clients go on; tokens come back', async () => {
    let now = NOW.getTime();
    const limited = await testContext({ intake: { ratePerMinute: 3 } });
    limited.now = () => new Date(now);
    const limitedApp = await intakeApp(limited);
    try {
      for (let i = 0; i < 3; i++) {
        const res = await post(
          limitedApp,
          '/tlsrpt',
          'application/tlsrpt+json',
          reportBytes({ 'report-id': `rl-${i}` }),
        );
        assert.equal(res.statusCode, 201, res.body);
      }
      const refused = await post(
        limitedApp,
        '/tlsrpt',
        'application/tlsrpt+json',
        reportBytes({ 'report-id': 'rl-x' }),
      );
      assert.equal(refused.statusCode, 429);
      assert.equal(refused.json().error.code, 'INTAKE_RATE_LIMITED');
      assert.equal(refused.headers['retry-after'], '20');
      assert.equal((await limited.store.listReports({ limit: 100 })).items.length, 3);

      const other = await post(
        limitedApp,
        '/tlsrpt',
        'application/tlsrpt+json',
        reportBytes({ 'report-id': 'rl-other' }),
        '192.0.2.2',
      );
      assert.equal(other.statusCode, 201);

      now += 20_000; // one token back (3 per minute)
      const later = await post(
        limitedApp,
        '/tlsrpt',
        'application/tlsrpt+json',
        reportBytes({ 'report-id': 'rl-later' }),
      );
      assert.equal(later.statusCode, 201);
      assert.equal(
        await counterValue(limited, 'mxguard_reports_rejected_total', { code: 'INTAKE_RATE_LIMITED' }),
        1,
      );
    } finally {
      await limitedApp.close();
      await limited.close();
    }
  });
});

describe('acknowledgement only after the store committed', () => {
  it('the reply waits for saveReport; a failing store gives 503 and nothing is acknowledged', async () => {
    const gated = await testContext();
    const realStore = gated.store;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let reached!: () => void;
    const saving = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let failNext = false;
    gated.store = new Proxy(realStore, {
      get(target, key, receiver) {
        if (key === 'saveReport') {
          return async (...args: Parameters<Store['saveReport']>) => {
            if (failNext) throw new Error('database is locked');
            reached();
            await gate;
            return target.saveReport(...args);
          };
        }
        const value = Reflect.get(target, key, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const gatedApp = await intakeApp(gated);
    try {
      let answered = false;
      const pending = post(
        gatedApp,
        '/tlsrpt',
        'application/tlsrpt+json',
        reportBytes({ 'report-id': 'gate-1' }),
      ).then((res) => {
        answered = true;
        return res;
      });
      await saving;
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
      assert.equal(answered, false, 'replied before the store committed');
      release();
      assert.equal((await pending).statusCode, 201);

      failNext = true;
      const failed = await post(
        gatedApp,
        '/tlsrpt',
        'application/tlsrpt+json',
        reportBytes({ 'report-id': 'gate-2' }),
      );
      assert.equal(failed.statusCode, 503);
      assert.equal(failed.json().error.code, 'INTAKE_UNAVAILABLE');
      assert.ok(failed.headers['retry-after']);
      assert.ok(!failed.body.includes('database is locked'), 'internal error text leaked');
    } finally {
      await gatedApp.close();
      await gated.close();
    }
  });
});

describe('on a real loopback socket', () => {
  let server: TestContext;
  let live: FastifyInstance;
  let listeners: Listeners;
  let port: number;

  before(async () => {
    server = await testContext({
      intake: { maxBytes: 2 * 1024 * 1024, maxDecompressedBytes: 4 * 1024 * 1024 },
    });
    live = await intakeApp(server);
    // The listeners `mxguard serve` runs, not fastify's own.
    listeners = await startListeners(live, { listen: { host: '127.0.0.1', port: 0 } });
    port = Number(new URL(listeners.urls.http).port);
  });
  after(async () => {
    await listeners.close();
    await live.close();
    await server.close();
  });

  const request = (path: string, type: string, write: (req: http.ClientRequest) => void) =>
    exchange(port, { method: 'POST', path, headers: { 'content-type': type } }, write);

  it('stores a gzip report sent over TCP', async () => {
    const res = await request('/tlsrpt', 'application/tlsrpt+gzip', (req) =>
      req.end(gzippedReport({ 'report-id': 'tcp-1' })),
    );
    assert.equal(res.status, 201, res.body);
    assert.equal(JSON.parse(res.body).stored[0].reportId, 'tcp-1');
  });

  it('takes a body above fastify’s default 1 MiB limit when maxBytes allows it', async () => {
    // 1000 failure rows (the most one policy keeps) with 1 KiB of additional-information each
    const report = wireReport({ 'report-id': 'tcp-big' });
    const policy = (report.policies as Array<Record<string, unknown>>)[0]!;
    policy['failure-details'] = Array.from({ length: 1000 }, () => ({
      'result-type': 'certificate-expired',
      'sending-mta-ip': '192.0.2.7',
      'failed-session-count': 2,
      'additional-information': 'x'.repeat(1500),
    }));
    policy.summary = { 'total-successful-session-count': 1, 'total-failure-session-count': 2000 };
    const padded = Buffer.from(JSON.stringify(report));
    assert.ok(padded.length > 1024 * 1024 && padded.length < 2 * 1024 * 1024);
    const res = await request('/tlsrpt', 'application/tlsrpt+json', (req) => req.end(padded));
    assert.equal(res.status, 201, res.body);
  });

  /** A chunked upload far above the cap, on a raw socket that stops writing when the answer comes. */
  async function oversizedChunkedUpload(): Promise<{ answer: string; written: number; error?: string }> {
    const total = 64 * 1024 * 1024;
    const chunk = `${(64 * 1024).toString(16)}\r\n${' '.repeat(64 * 1024)}\r\n`;
    const socket = net.connect(port, '127.0.0.1');
    let written = 0;
    let answer = '';
    let error: string | undefined;
    const done = new Promise<void>((resolve) => {
      socket.on('data', (data) => {
        answer += data.toString('latin1');
      });
      socket.on('error', (err: NodeJS.ErrnoException) => {
        error = err.code ?? err.message;
        resolve();
      });
      socket.on('close', () => resolve());
    });
    socket.write(
      'POST /tlsrpt HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/tlsrpt+json\r\n' +
        'Transfer-Encoding: chunked\r\n\r\n',
    );
    while (written < total && answer === '' && !socket.destroyed) {
      written += 64 * 1024;
      if (!socket.write(chunk, 'latin1')) {
        await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), done]);
      }
    }
    // The server answers, then closes its side: wait for the end of the connection.
    await done;
    return { answer, written, error };
  }

  it('cuts a chunked upload off at the body cap with 413, and the client gets the answer', async () => {
    // Closing while the client still sends would make the kernel reset the connection, and a client
    // busy writing would get EPIPE before it read the 413 (it did, 1 time in 3). The server lingers
    // instead (app.ts, lingeringClose): so every one of these rounds must read its answer.
    for (let round = 0; round < 20; round++) {
      const { answer, written, error } = await oversizedChunkedUpload();
      assert.equal(error, undefined, `round ${round}: the connection failed`);
      assert.match(answer, /^HTTP\/1\.1 413 /, `round ${round}`);
      assert.match(answer, /INTAKE_TOO_LARGE/);
      assert.match(answer, /\r\nconnection: close\r\n/i);
      assert.ok(written < 64 * 1024 * 1024, `the server read all ${written} bytes`);
    }
  });

  it('refuses a 1 GiB gzip bomb with 413 without inflating it', async () => {
    // 64 gzip members of 16 MiB of zeros each: about 1 MiB on the wire, 1 GiB inflated.
    const member = gzipSync(Buffer.alloc(16 * 1024 * 1024), { level: 9 });
    const bomb = Buffer.concat(Array.from({ length: 64 }, () => member));
    assert.ok(bomb.length < 2 * 1024 * 1024);
    const rssBefore = process.memoryUsage().rss;
    const res = await request('/tlsrpt', 'application/tlsrpt+gzip', (req) => req.end(bomb));
    const grown = process.memoryUsage().rss - rssBefore;
    assert.equal(res.status, 413, res.body);
    assert.equal(JSON.parse(res.body).error.code, 'TLSRPT_TOO_LARGE');
    assert.ok(grown < 256 * 1024 * 1024, `memory grew by ${grown} bytes`);
    const rejected = (await server.store.listRejected({ limit: 10 })).items;
    assert.ok(rejected.some((r) => r.size === bomb.length && /decompresses to more than/.test(r.reason)));
  });
});

describe('mounted by buildApp (src/server/app.ts)', () => {
  it('takes reports on any Host and counts them on /metrics', async () => {
    const appCtx = await testContext();
    const full = buildApp(appCtx);
    try {
      await ensureAdminPassword(appCtx, 'metrics-scrape-password');
      await full.ready();
      const res = await full.inject({
        method: 'POST',
        url: '/tlsrpt/example.com',
        headers: { 'content-type': 'application/tlsrpt+gzip', host: 'mta-sts.example.com' },
        payload: gzippedReport({ 'report-id': 'app-1' }),
      });
      assert.equal(res.statusCode, 201, res.body);
      const metrics = await full.inject({
        method: 'GET',
        url: '/metrics',
        headers: { authorization: 'Bearer metrics-scrape-password' },
      });
      assert.match(metrics.body, /mxguard_reports_received_total\{source="https",outcome="created"\} 1/);
    } finally {
      await full.close();
      await appCtx.close();
    }
  });
});

// Issue 10: hostile reports posted to the app `serve` runs (policy hosting and intake), with its
// default limits, on a real loopback socket.
describe('hostile reports beside policy hosting, on a real socket (issue 10)', () => {
  function send(
    base: string,
    options: { method: 'GET' | 'POST'; path: string; host?: string; type?: string; body?: Buffer },
  ): Promise<Answer> {
    const url = new URL(base);
    const headers: http.OutgoingHttpHeaders = { host: options.host ?? url.host };
    if (options.type) headers['content-type'] = options.type;
    return exchange(Number(url.port), { method: options.method, path: options.path, headers }, (req) =>
      req.end(options.body),
    );
  }
  const postReport = (base: string, body: Buffer, type = 'application/tlsrpt+gzip') =>
    send(base, { method: 'POST', path: '/tlsrpt', type, body });
  const getPolicy = (base: string) =>
    send(base, { method: 'GET', path: POLICY_PATH, host: 'mta-sts.example.test' });

  interface Served {
    ctx: ServeTestContext;
    app: FastifyInstance;
    listeners: Listeners;
    base: string;
    policyText: string;
  }
  async function serveApp(decoder?: ReportDecoder): Promise<Served> {
    const served = await serveTestContext();
    served.reportDecoder = decoder;
    const { policyText } = await served.store.addDomain('example.test', DOMAIN_SETTINGS, new Date());
    const full = buildApp(served);
    const listeners = await startListeners(full, { listen: { host: '127.0.0.1', port: 0 } });
    return { ctx: served, app: full, listeners, base: listeners.urls.http, policyText };
  }
  async function stop(s: Served): Promise<void> {
    await s.listeners.close();
    await s.app.close();
    await s.ctx.close();
  }

  /**
   * POST `body` as JSON, and come back once `decoder` runs a job or the post was answered (no deadline
   * of its own: the test's); `answered()` says whether it has been since.
   */
  async function postWhileDecoding(
    base: string,
    body: Buffer,
    decoder: ReportDecoder,
  ): Promise<{ answer: Promise<Answer>; answered(): boolean }> {
    let answered = false;
    const answer = postReport(base, body, 'application/tlsrpt+json').then((res) => {
      answered = true;
      return res;
    });
    await eventually(
      () => (decoder.running === 0 && !answered ? undefined : true),
      'the decode to start',
      15_000,
      1,
    );
    return { answer, answered: () => answered };
  }

  describe('with the default decoder', () => {
    let s: Served;
    before(async () => {
      s = await serveApp();
    });
    after(async () => stop(s));

    it('413 TLSRPT_TOO_LARGE for the 46 KB gzip with a 45 MiB organization-name; nothing stored', async () => {
      const attack = await longOrganizationGzip(45 * 1024 * 1024, 'amplify-https');
      const res = await postReport(s.base, attack);
      assert.equal(res.status, 413, res.body);
      assert.equal(JSON.parse(res.body).error.code, 'TLSRPT_TOO_LARGE');
      const rejected = (await s.ctx.store.listRejected({ limit: 100 })).items;
      assert.ok(rejected.some((r) => r.source === 'https' && r.size === attack.length));
      const stored = (await s.ctx.store.listReports({ limit: 100 })).items;
      assert.ok(!stored.some((r) => r.reportId === 'amplify-https'));
    });

    it('413 TLSRPT_FIELD_TOO_LONG for a 5 MiB organization-name within the byte cap', async () => {
      const res = await postReport(s.base, await longOrganizationGzip(5 * 1024 * 1024, 'amplify-https-5'));
      assert.equal(res.status, 413, res.body);
      assert.equal(JSON.parse(res.body).error.code, 'TLSRPT_FIELD_TOO_LONG');
    });

    it('201 for 200,000 failure rows, stored as 1001 rows with exact counts', async () => {
      const res = await postReport(s.base, gzipSync(manyRowsReport(200_000, 'rows-https')));
      assert.equal(res.status, 201, res.body);
      const answer = JSON.parse(res.body);
      assert.ok(answer.warnings.some((w: { code: string }) => w.code === 'TLSRPT_FAILURE_ROWS_MERGED'));
      const saved = await s.ctx.store.getReport(answer.stored[0].id);
      const policy = saved!.report.policies[0]!;
      assert.equal(policy.failures.length, 1001);
      assert.equal(
        policy.failures.reduce((sum, f) => sum + f.count, 0),
        200_000,
      );
    });

    it('a policy GET is answered while a decoder thread still works on a hostile report', async () => {
      const decoder = reportDecoderFor(s.ctx.config.intake);
      const post = await postWhileDecoding(s.base, manyRowsReport(200_000, 'rows-beside'), decoder);
      const policy = await getPolicy(s.base);
      assert.equal(policy.status, 200);
      assert.equal(policy.body, s.policyText);
      assert.equal(post.answered(), false, 'the report was answered before the policy GET');
      assert.equal(decoder.running, 1, 'the decoder job was over before the policy GET was answered');
      assert.equal((await post.answer).status, 201);
    });
  });

  describe('with a decoder thread stuck on its input', () => {
    let s: Served;
    let decoder: ReportDecoderPool;
    before(async () => {
      decoder = new ReportDecoderPool({
        threads: 1,
        queue: 0,
        timeoutMs: 3000,
        maxHeapMiB: 256,
        idleMs: 60_000,
        workerUrl: new URL('../fixtures/intake/decoder-worker.ts', import.meta.url),
      });
      s = await serveApp(decoder);
    });
    after(async () => {
      await stop(s);
      await decoder.close();
    });

    it('policies are served, a full queue is 503 with Retry-After, the stuck job ends 413, the next report is stored', async () => {
      const stuck = await postWhileDecoding(s.base, Buffer.from('{"hang": true}'), decoder);

      const policy = await getPolicy(s.base);
      assert.equal(policy.status, 200);
      assert.equal(policy.body, s.policyText);

      const busy = await postReport(s.base, gzippedReport({ 'report-id': 'while-busy' }));
      assert.equal(busy.status, 503, busy.body);
      assert.equal(JSON.parse(busy.body).error.code, 'INTAKE_BUSY');
      assert.ok(Number(busy.headers['retry-after']) >= 1);
      assert.equal(stuck.answered(), false);

      const ended = await stuck.answer;
      assert.equal(ended.status, 413, ended.body);
      assert.equal(JSON.parse(ended.body).error.code, 'INTAKE_DECODE_TIMEOUT');

      const next = await postReport(s.base, gzippedReport({ 'report-id': 'after-stuck' }));
      assert.equal(next.status, 201, next.body);
    });
  });
});
