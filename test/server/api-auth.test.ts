// Admin authentication of the API: password hashing at rest, first-run password, sessions, bearer
// passwords and API tokens, the login throttle (per client key and per account, reserved before the
// scrypt), the X-Forwarded-For warning and the CSRF rules. In-process (fastify inject) with real
// concurrency across awaits; test/server/auth-races.test.ts runs the races across worker processes.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import Fastify from 'fastify';
import { API_ROUTES } from '../../src/server/api/routes.js';
import { registerApi } from '../../src/server/api.js';
import { buildApp } from '../../src/server/app.js';
import {
  ACCOUNT_MAX_FAILURES,
  ensureAdminPassword,
  FAILURE_WINDOW_SECONDS,
  hashPassword,
  MAX_FAILURES,
  PASSWORD_SETTING,
  readCookie,
  SESSION_SECONDS,
  verifyPassword,
} from '../../src/server/auth.js';
import { counterValue } from '../fixtures/intake/helpers.js';
import { eventually, testContext } from '../fixtures/serve/helpers.js';
import { openTestApp, reportJson, type TestApp } from '../helpers/browser.js';
import { openTestStoreReader, queryTestStore } from '../helpers/test-store.js';

const PASSWORD_CHECKS = 'mxguard_admin_password_checks_total';
const THROTTLED = 'mxguard_admin_auth_throttled_total';

/** Every value of `column` in `table` of the app's database (read by a second connection). */
async function storedColumn(t: TestApp, table: string, column: string): Promise<string[]> {
  const rows = await queryTestStore<{ value: string }>(t.dataDir, `SELECT ${column} AS value FROM ${table}`);
  return rows.map((row) => row.value);
}

async function passwordChecks(t: TestApp): Promise<number> {
  return (
    (await counterValue(t.ctx, PASSWORD_CHECKS, { result: 'right' })) +
    (await counterValue(t.ctx, PASSWORD_CHECKS, { result: 'wrong' }))
  );
}

async function login(t: TestApp, password = t.password, remoteAddress = '127.0.0.1') {
  return t.app.inject({ method: 'POST', url: '/api/login', payload: { password }, remoteAddress });
}

async function sessionCookie(t: TestApp): Promise<string> {
  const res = await login(t);
  assert.equal(res.statusCode, 200, res.body);
  return String(res.headers['set-cookie']).split(';')[0]!;
}

describe('password hashing', () => {
  test('a hash verifies its password and nothing else', async () => {
    const hash = await hashPassword('correct horse battery staple');
    assert.match(hash, /^scrypt\$16384\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    assert.ok(!hash.includes('correct horse'));
    assert.equal(await verifyPassword('correct horse battery staple', hash), true);
    assert.equal(await verifyPassword('correct horse battery stapl', hash), false);
    assert.equal(await verifyPassword('', hash), false);
  });

  test('every hash has its own salt', async () => {
    const [a, b] = await Promise.all([hashPassword('same password'), hashPassword('same password')]);
    assert.notEqual(a, b);
    assert.notEqual(a.split('$')[4], b.split('$')[4]);
  });

  test('malformed stored hashes never match', async () => {
    const good = await hashPassword('pw');
    const bad = [
      '',
      'pw',
      'bcrypt$1$2$3$4$5',
      good.replace(/^scrypt/, 'scrypt2'),
      good.split('$').slice(0, 5).join('$'),
      `${good}$extra`,
      good.replace('$16384$', '$0$'),
      good.replace('$16384$', '$99999999$'),
      good.replace('$8$', '$-1$'),
      good.slice(0, -4),
    ];
    for (const stored of bad) assert.equal(await verifyPassword('pw', stored), false, stored);
  });

  test('property: verify(p, hash(p)) and not verify(q, hash(p)) for q ≠ p', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }), async (p, q) => {
        const hash = await hashPassword(p);
        assert.equal(await verifyPassword(p, hash), true);
        if (q !== p) assert.equal(await verifyPassword(q, hash), false);
      }),
      { numRuns: 15 },
    );
  });
});

describe('ensureAdminPassword', () => {
  let t: TestApp;
  before(async () => {
    t = await openTestApp();
  });
  after(() => t.close());

  test('first run generated a password and stored only its hash', async () => {
    assert.ok(t.password.length >= 20);
    const stored = await t.ctx.store.getSetting(PASSWORD_SETTING);
    assert.ok(stored !== undefined);
    assert.ok(stored.startsWith('scrypt$'));
    assert.ok(!stored.includes(t.password));
    assert.equal(await verifyPassword(t.password, stored), true);
  });

  test('later runs keep the stored password and print nothing', async () => {
    const stored = await t.ctx.store.getSetting(PASSWORD_SETTING);
    assert.equal(await ensureAdminPassword(t.ctx, undefined), undefined);
    assert.equal(await ensureAdminPassword(t.ctx, ''), undefined);
    assert.equal(await t.ctx.store.getSetting(PASSWORD_SETTING), stored);
  });

  test('a configured password replaces the stored one, once', async () => {
    assert.equal(await ensureAdminPassword(t.ctx, 'configured-password-1'), undefined);
    const stored = await t.ctx.store.getSetting(PASSWORD_SETTING);
    assert.equal(await verifyPassword('configured-password-1', stored!), true);
    assert.equal(await verifyPassword(t.password, stored!), false);
    assert.equal(await ensureAdminPassword(t.ctx, 'configured-password-1'), undefined);
    assert.equal(await t.ctx.store.getSetting(PASSWORD_SETTING), stored, 'same password: hash not rewritten');
    assert.equal((await login(t, 'configured-password-1')).statusCode, 200);
    assert.equal((await login(t, t.password)).statusCode, 401);
  });

  test('a configured password that is too short is refused, naming the variable', async () => {
    await assert.rejects(
      ensureAdminPassword(t.ctx, 'short'),
      (err: Error) =>
        /^adminPassword \/ MXGUARD_ADMIN_PASSWORD: .*at least 10/.test(err.message) &&
        !err.message.includes('short'),
    );
  });
});

describe('API authentication', () => {
  let t: TestApp;
  before(async () => {
    t = await openTestApp({ start: new Date('2026-03-01T12:00:00Z') });
  });
  after(() => t.close());

  test('every API route except the public ones answers 401 without credentials', async () => {
    for (const op of API_ROUTES) {
      const url = op.path.replace('{name}', 'example.com').replace('{id}', '1');
      const method = op.method;
      const body = op.raw
        ? { payload: '{}', headers: { 'content-type': 'application/tlsrpt+json' } }
        : method === 'POST' || method === 'PATCH'
          ? { payload: {} }
          : {};
      const res = await t.app.inject({ method, url, ...body });
      if (op.public) assert.notEqual(res.statusCode, 401, `${method} ${url} is public`);
      else {
        assert.equal(res.statusCode, 401, `${method} ${url} needs authentication`);
        assert.equal(res.headers['www-authenticate'], 'Bearer realm="mxguard"');
        assert.doesNotMatch(res.body, /example\.com|"domains"/);
      }
    }
  });

  test('policy hosting and report intake need no login; policy hosts never show the dashboard', async () => {
    const auth = { authorization: `Bearer ${t.password}` };
    const add = await t.app.inject({
      method: 'POST',
      url: '/api/domains',
      headers: auth,
      payload: { name: 'hosted.example', mx: ['mx.hosted.example'] },
    });
    assert.equal(add.statusCode, 201);
    const host = { host: 'mta-sts.hosted.example' };
    let policy = await t.app.inject({ url: '/.well-known/mta-sts.txt', headers: host });
    for (let i = 0; i < 50 && policy.statusCode !== 200; i++) {
      await new Promise((r) => setTimeout(r, 100)); // the policy cache refreshes in the background
      policy = await t.app.inject({ url: '/.well-known/mta-sts.txt', headers: host });
    }
    assert.equal(policy.statusCode, 200);
    assert.match(policy.body, /^version: STSv1\nmode: testing\nmx: mx\.hosted\.example\n/);
    const report = reportJson({
      organization: 'O',
      reportId: 'open-intake',
      domain: 'hosted.example',
      day: '2026-03-01',
      successful: 1,
    });
    const intake = await t.app.inject({
      method: 'POST',
      url: '/tlsrpt',
      headers: { 'content-type': 'application/tlsrpt+json' },
      payload: report,
    });
    assert.ok(intake.statusCode >= 200 && intake.statusCode < 300, `${intake.statusCode} ${intake.body}`);
    for (const url of ['/', '/assets/app.js', '/api/openapi.json', '/api/domains', '/api/session']) {
      const res = await t.app.inject({ url, headers: { ...host, ...auth } });
      assert.equal(res.statusCode, 404, url);
      assert.doesNotMatch(res.body, /mxguard|hosted\.example/, url);
    }
  });

  test('the dashboard assets are public (they hold no data)', async () => {
    for (const url of ['/', '/assets/app.js', '/assets/style.css']) {
      assert.equal((await t.app.inject({ url })).statusCode, 200, url);
    }
  });

  test('login sets an HttpOnly SameSite=Strict session cookie that opens the API', async () => {
    const res = await login(t);
    assert.equal(res.statusCode, 200);
    const setCookie = String(res.headers['set-cookie']);
    assert.match(setCookie, /^mxguard_session=[A-Za-z0-9_-]{43}; /);
    for (const attr of ['HttpOnly', 'SameSite=Strict', 'Path=/', `Max-Age=${SESSION_SECONDS}`]) {
      assert.ok(setCookie.split('; ').includes(attr), `${attr} in ${setCookie}`);
    }
    assert.ok(!setCookie.includes('Secure'), 'plain HTTP: no Secure attribute');
    const cookie = setCookie.split(';')[0]!;
    const session = await t.app.inject({ url: '/api/session', headers: { cookie } });
    assert.deepEqual(session.json(), { authenticated: true, via: 'session' });
  });

  test('wrong or malformed login bodies', async () => {
    assert.equal((await login(t, 'wrong password')).statusCode, 401);
    for (const payload of [{}, { password: '' }, { password: 5 }, { password: 'x', extra: 1 }, []]) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/login',
        payload,
        remoteAddress: '10.9.9.9',
      });
      assert.equal(res.statusCode, 400, JSON.stringify(payload));
      assert.equal(res.json().statusCode, 400);
    }
    const broken = await t.app.inject({
      method: 'POST',
      url: '/api/login',
      payload: '{"password":',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(broken.statusCode, 400);
  });

  test('a forged or unknown session cookie is refused', async () => {
    for (const cookie of [
      'mxguard_session=abc',
      'mxguard_session=',
      'other=1',
      `mxguard_session=${'A'.repeat(43)}`,
    ]) {
      assert.equal(
        (await t.app.inject({ url: '/api/domains', headers: { cookie } })).statusCode,
        401,
        cookie,
      );
    }
  });

  test('logout ends the session', async () => {
    const cookie = await sessionCookie(t);
    const out = await t.app.inject({ method: 'POST', url: '/api/logout', headers: { cookie }, payload: {} });
    assert.equal(out.statusCode, 204);
    assert.match(String(out.headers['set-cookie']), /^mxguard_session=; .*Max-Age=0/);
    assert.equal((await t.app.inject({ url: '/api/session', headers: { cookie } })).statusCode, 401);
  });

  test('sessions live in the store, hashed: every worker process knows them', async () => {
    const other = Fastify(); // a second serve worker on the same store
    registerApi(other, t.ctx);
    await other.ready();
    try {
      const cookie = await sessionCookie(t);
      const id = cookie.split('=')[1]!;
      const stored = await storedColumn(t, 'sessions', 'id_hash');
      assert.ok(!stored.some((h) => h.includes(id)), 'the session id itself is not stored');
      assert.ok(stored.includes(createHash('sha256').update(id).digest('base64url')), 'its SHA-256 is');
      assert.equal((await other.inject({ url: '/api/session', headers: { cookie } })).statusCode, 200);
      const out = await other.inject({
        method: 'POST',
        url: '/api/logout',
        headers: { cookie },
        payload: {},
      });
      assert.equal(out.statusCode, 204);
      assert.equal((await t.app.inject({ url: '/api/session', headers: { cookie } })).statusCode, 401);
    } finally {
      await other.close();
    }
  });

  test('sessions expire', async () => {
    const cookie = await sessionCookie(t);
    t.clock.advance(SESSION_SECONDS - 1);
    assert.equal((await t.app.inject({ url: '/api/session', headers: { cookie } })).statusCode, 200);
    t.clock.advance(2);
    assert.equal((await t.app.inject({ url: '/api/session', headers: { cookie } })).statusCode, 401);
  });

  test('Authorization: Bearer with the admin password', async () => {
    const ok = await t.app.inject({
      url: '/api/session',
      headers: { authorization: `Bearer ${t.password}` },
    });
    assert.deepEqual(ok.json(), { authenticated: true, via: 'password' });
    for (const authorization of [
      'Bearer wrong-password',
      `Basic ${t.password}`,
      'Bearer',
      `Bearer ${t.password} x`,
    ]) {
      const res = await t.app.inject({
        url: '/api/session',
        headers: { authorization },
        remoteAddress: '10.1.1.1',
      });
      assert.equal(res.statusCode, 401, authorization);
    }
  });

  test('API tokens: shown once, stored hashed, usable as bearer, revocable', async () => {
    const auth = { authorization: `Bearer ${t.password}` };
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/tokens',
      headers: auth,
      payload: { name: 'backup' },
    });
    assert.equal(created.statusCode, 201, created.body);
    const { id, token, name } = created.json();
    assert.equal(name, 'backup');
    assert.match(token, /^mxg_[A-Za-z0-9_-]{43}$/);
    const stored = await storedColumn(t, 'api_tokens', 'hash');
    assert.ok(!stored.some((h) => h.includes(token.slice(4))), 'token secret not stored');
    assert.ok(stored.includes(createHash('sha256').update(token).digest('base64url')), 'its SHA-256 is');

    const listed = await t.app.inject({ url: '/api/tokens', headers: auth });
    assert.deepEqual(
      listed.json().tokens.map((x: Record<string, unknown>) => Object.keys(x).sort()),
      [['createdAt', 'id', 'name']],
    );
    const use = await t.app.inject({ url: '/api/session', headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual(use.json(), { authenticated: true, via: 'token' });
    const tampered = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
    assert.equal(
      (await t.app.inject({ url: '/api/session', headers: { authorization: `Bearer ${tampered}` } }))
        .statusCode,
      401,
    );

    assert.equal(
      (await t.app.inject({ method: 'DELETE', url: `/api/tokens/${id}`, headers: auth })).statusCode,
      204,
    );
    assert.equal(
      (await t.app.inject({ method: 'DELETE', url: `/api/tokens/${id}`, headers: auth })).statusCode,
      404,
    );
    assert.equal(
      (await t.app.inject({ url: '/api/session', headers: { authorization: `Bearer ${token}` } })).statusCode,
      401,
    );
  });

  test('failed attempts are rate-limited per client address', async () => {
    const ip = '192.0.2.77';
    for (let i = 0; i < MAX_FAILURES; i++) assert.equal((await login(t, `wrong-${i}`, ip)).statusCode, 401);
    const blocked = await login(t, t.password, ip);
    assert.equal(blocked.statusCode, 429, 'even the right password waits');
    assert.ok(Number(blocked.headers['retry-after']) > 0);
    const bearer = await t.app.inject({
      url: '/api/session',
      headers: { authorization: `Bearer ${t.password}` },
      remoteAddress: ip,
    });
    assert.equal(bearer.statusCode, 429, 'bearer attempts count too');
    assert.equal(
      (await login(t, t.password, '192.0.2.78')).statusCode,
      200,
      'another address is not blocked',
    );
    t.clock.advance(FAILURE_WINDOW_SECONDS + 1);
    assert.equal((await login(t, t.password, ip)).statusCode, 200, 'unblocked after the window');
  });

  test('IPv6 clients in one /64 share a limit; the next /64 has its own', async () => {
    for (let i = 0; i < MAX_FAILURES; i++) {
      const res = await login(t, `wrong-${i}`, `2001:db8:1:2::${(i + 1).toString(16)}`);
      assert.equal(res.statusCode, 401);
    }
    assert.equal((await login(t, t.password, '2001:db8:1:2:ffff:ffff:ffff:ffff')).statusCode, 429);
    assert.equal((await login(t, t.password, '2001:db8:1:3::1')).statusCode, 200);
  });

  test('a script with a revoked API token does not lock its address out', async () => {
    const ip = '192.0.2.90';
    const auth = { authorization: `Bearer ${t.password}` };
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/tokens',
      headers: auth,
      payload: { name: 'old' },
    });
    const { id, token } = created.json();
    await t.app.inject({ method: 'DELETE', url: `/api/tokens/${id}`, headers: auth });
    const before = await passwordChecks(t);
    for (let i = 0; i < 2 * MAX_FAILURES; i++) {
      const res = await t.app.inject({
        url: '/api/session',
        headers: { authorization: `Bearer ${token}` },
        remoteAddress: ip,
      });
      assert.equal(res.statusCode, 401);
      assert.match(res.json().message, /API token/);
    }
    assert.equal(await passwordChecks(t), before, 'a token-shaped secret never reaches scrypt');
    assert.equal((await login(t, t.password, ip)).statusCode, 200);
  });

  test(`200 concurrent wrong passwords from one address: at most ${MAX_FAILURES} reach scrypt`, async () => {
    const ip = '192.0.2.200';
    const before = await passwordChecks(t);
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => login(t, `concurrent-${i}`, ip)));
    const checks = (await passwordChecks(t)) - before;
    assert.ok(checks >= 1 && checks <= MAX_FAILURES, `${checks} scrypt checks`);
    assert.equal(answers.filter((a) => a.statusCode === 401).length, checks);
    assert.equal(answers.filter((a) => a.statusCode === 429).length, 200 - checks);
  });

  test('concurrent token creations and deletions: every revoked token fails, every created one works', async () => {
    const auth = { authorization: `Bearer ${t.password}` };
    const create = (name: string) =>
      t.app.inject({ method: 'POST', url: '/api/tokens', headers: auth, payload: { name } });
    const old = [];
    for (let i = 0; i < 10; i++) old.push((await create(`race-old-${i}`)).json());
    const [deleted, created] = await Promise.all([
      Promise.all(
        old.map((o) => t.app.inject({ method: 'DELETE', url: `/api/tokens/${o.id}`, headers: auth })),
      ),
      Promise.all(old.map((_, i) => create(`race-new-${i}`))),
    ]);
    assert.ok(deleted.every((d) => d.statusCode === 204));
    assert.ok(created.every((c) => c.statusCode === 201));
    const use = (token: string) =>
      t.app.inject({ url: '/api/session', headers: { authorization: `Bearer ${token}` } });
    for (const o of old) assert.equal((await use(o.token)).statusCode, 401, `revoked ${o.id}`);
    for (const c of created)
      assert.equal((await use(c.json().token)).statusCode, 200, `created ${c.json().id}`);
  });

  test('CSRF: state-changing requests need application/json and a same-host Origin', async () => {
    const cookie = await sessionCookie(t);
    const body = JSON.stringify({ name: 'csrf.example', mx: ['mx.csrf.example'] });
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      undefined,
    ]) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/domains',
        headers: { cookie, ...(type ? { 'content-type': type } : {}) },
        payload: body,
      });
      assert.equal(res.statusCode, 415, String(type));
    }
    const evil = await t.app.inject({
      method: 'POST',
      url: '/api/domains',
      headers: { cookie, origin: 'http://evil.example', 'content-type': 'application/json' },
      payload: body,
    });
    assert.equal(evil.statusCode, 403);
    const evilDelete = await t.app.inject({
      method: 'DELETE',
      url: '/api/domains/csrf.example',
      headers: { cookie, origin: 'null' },
    });
    assert.equal(evilDelete.statusCode, 403);
    assert.equal(await t.ctx.store.getDomain('csrf.example'), undefined, 'nothing was added');
    const same = await t.app.inject({
      method: 'POST',
      url: '/api/domains',
      headers: {
        cookie,
        origin: 'http://localhost:80',
        host: 'localhost:80',
        'content-type': 'application/json',
      },
      payload: body,
    });
    assert.equal(same.statusCode, 201, same.body);
  });

  test('changing the password logs every session out', async () => {
    const cookie = await sessionCookie(t);
    const wrong = await t.app.inject({
      method: 'POST',
      url: '/api/password',
      headers: { cookie },
      payload: { current: 'not it', next: 'a-new-password' },
      remoteAddress: '10.2.2.2',
    });
    assert.equal(wrong.statusCode, 401);
    const short = await t.app.inject({
      method: 'POST',
      url: '/api/password',
      headers: { cookie },
      payload: { current: t.password, next: 'short' },
    });
    assert.equal(short.statusCode, 400);
    assert.match(short.json().message, /^next: /);
    const changed = await t.app.inject({
      method: 'POST',
      url: '/api/password',
      headers: { cookie },
      payload: { current: t.password, next: 'a-new-password' },
    });
    assert.equal(changed.statusCode, 204);
    assert.equal((await t.app.inject({ url: '/api/session', headers: { cookie } })).statusCode, 401);
    assert.equal((await login(t, t.password, '10.3.3.3')).statusCode, 401);
    assert.equal((await login(t, 'a-new-password')).statusCode, 200);
  });

  test('security headers on the dashboard and the API', async () => {
    for (const url of ['/', '/assets/app.js', '/api/session']) {
      const res = await t.app.inject({ url });
      const csp = String(res.headers['content-security-policy']);
      assert.match(csp, /default-src 'none'/, url);
      assert.match(csp, /script-src 'self'(;|$)/, url);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, url);
      assert.equal(res.headers['x-content-type-options'], 'nosniff', url);
      assert.equal(res.headers['x-frame-options'], 'DENY', url);
    }
    assert.equal((await t.app.inject({ url: '/api/session' })).headers['cache-control'], 'no-store');
  });

  test('readCookie', () => {
    const cases: [string | undefined, string | undefined][] = [
      [undefined, undefined],
      ['', undefined],
      ['mxguard_session=abc', 'abc'],
      ['a=1; mxguard_session=abc; b=2', 'abc'],
      ['xmxguard_session=abc', undefined],
      ['mxguard_session_x=abc', undefined],
      ['a=1;mxguard_session=a=b', 'a=b'],
    ];
    for (const [header, expected] of cases)
      assert.equal(readCookie(header, 'mxguard_session'), expected, header);
  });
});

describe('password change while a login is being checked', () => {
  let t: TestApp;
  before(async () => {
    t = await openTestApp();
  });
  after(() => t.close());

  test('a login whose scrypt overlaps the change gets no session (5 runs)', async () => {
    const db = await openTestStoreReader(t.dataDir);
    const checking = async () =>
      Number(
        (
          await db.rows<{ n: number | string }>(
            "SELECT count(*) AS n FROM auth_attempts WHERE state = 'checking'",
          )
        )[0]!.n,
      );
    try {
      let password = t.password;
      for (let run = 1; run <= 5; run++) {
        const next = `in-process-password-${run}`;
        const nextHash = await hashPassword(next);
        const earlier = await sessionCookie({ ...t, password });
        // A second serve worker on the same store: its password cache is cold, so it runs scrypt.
        const worker = Fastify();
        registerApi(worker, t.ctx);
        await worker.ready();
        try {
          const racing = worker.inject({
            method: 'POST',
            url: '/api/login',
            payload: { password },
            remoteAddress: `10.${run}.0.1`,
          });
          await eventually(
            async () => ((await checking()) === 0 ? undefined : true),
            'the login in scrypt',
            15_000,
            0,
          );
          await t.ctx.store.setAdminPassword(nextHash); // the change commits during the login's scrypt
          const answer = await racing;
          assert.equal(answer.statusCode, 401, answer.body);
          assert.match(answer.json().message, /password changed/);
          assert.equal(answer.headers['set-cookie'], undefined);
          assert.deepEqual(await storedColumn(t, 'sessions', 'id_hash'), [], 'no session row');
          assert.equal(
            (await t.app.inject({ url: '/api/session', headers: { cookie: earlier } })).statusCode,
            401,
          );
        } finally {
          await worker.close();
        }
        password = next;
        assert.equal((await login(t, password, `10.${run}.0.2`)).statusCode, 200);
      }
    } finally {
      await db.close();
    }
  });
});

describe('the per-account limit slows strangers down but never locks the admin out', () => {
  let t: TestApp;
  before(async () => {
    t = await openTestApp();
  });
  after(() => t.close());

  test(`after ${ACCOUNT_MAX_FAILURES} failures from many addresses the right password still gets in`, async () => {
    const strangers = await Promise.all(
      Array.from({ length: ACCOUNT_MAX_FAILURES }, (_, i) => login(t, `guess-${i}`, `198.51.100.${i + 1}`)),
    );
    assert.ok(strangers.every((s) => s.statusCode === 401));
    assert.equal(await counterValue(t.ctx, THROTTLED, { limit: 'account' }), 0);
    const admin = await login(t, t.password, '203.0.113.7');
    assert.equal(admin.statusCode, 200, admin.body);
    assert.equal(await counterValue(t.ctx, THROTTLED, { limit: 'account' }), 1, 'it was slowed down');
    const wrong = await login(t, 'one more guess', '203.0.113.8');
    assert.equal(wrong.statusCode, 401, 'still checked, not refused');
  });
});

describe('X-Forwarded-For without trustProxy', () => {
  for (const trustProxy of [false, true]) {
    test(`trustProxy ${trustProxy}: ${trustProxy ? 'no warning' : 'one warning, however many requests'}`, async () => {
      const ctx = await testContext({ settings: { trustProxy } });
      const app = buildApp(ctx);
      await app.ready();
      try {
        for (let i = 0; i < 5; i++) {
          await app.inject({ url: '/api/session', headers: { 'x-forwarded-for': `203.0.113.${i}` } });
        }
        const warnings = ctx.logLines.filter((l) => /X-Forwarded-For.*trustProxy/.test(l));
        assert.equal(warnings.length, trustProxy ? 0 : 1, warnings.join('\n'));
        if (!trustProxy) assert.equal(JSON.parse(warnings[0]!).level, 40, 'level warn');
      } finally {
        await app.close();
        await ctx.close();
      }
    });
  }
});
