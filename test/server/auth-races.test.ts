// The attacks of issue 10 on authentication, run against `mxguard serve` as a child process with two
// node:cluster workers (requests land on either, so a worker's memory is never the whole truth):
// token revocation and creation racing each other, a password change racing logins, 200 concurrent
// wrong passwords from one address, and strangers behind a proxy without trustProxy locking the admin
// out until `mxguard admin reset-password`. Every request uses a fresh connection; distinct clients
// use distinct loopback source addresses (127.0.0.0/8).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MAX_FAILURES } from '../../src/server/auth.js';
import { openStore } from '../../src/store/index.js';
import { runCli } from '../helpers/cli.js';
import { type HttpAnswer, httpRequest, type ListeningServe, startServe } from '../helpers/serve-process.js';

const FIRST_PASSWORD = 'first-admin-password';
const RUNS = 10;

/** The `name=value` of the session cookie a login answer set. */
function cookieOf(answer: HttpAnswer): string {
  const header = answer.headers['set-cookie'];
  const first = Array.isArray(header) ? header[0] : header;
  assert.ok(first, `no Set-Cookie in ${answer.status} ${answer.body}`);
  return first.split(';')[0]!;
}

function login(port: number, password: string, from?: string, headers?: Record<string, string>) {
  return httpRequest(port, { method: 'POST', path: '/api/login', json: { password }, from, headers });
}

function whoAmI(port: number, headers: Record<string, string>, from?: string) {
  return httpRequest(port, { path: '/api/session', headers, from });
}

describe('sessions and API tokens across two serve workers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mxguard-auth-races-'));
  let serve: ListeningServe;
  let port: number;
  /** An API token of the admin: tokens are never throttled, so setup steps cannot lock anything. */
  let admin: Record<string, string>;

  before(async () => {
    serve = await startServe(['--data-dir', join(dir, 'data'), '--workers', '2'], {
      cwd: dir,
      env: { MXGUARD_ADMIN_PASSWORD: FIRST_PASSWORD },
    });
    port = serve.port;
    const created = await httpRequest(port, {
      method: 'POST',
      path: '/api/tokens',
      headers: { authorization: `Bearer ${FIRST_PASSWORD}` },
      json: { name: 'test admin' },
    });
    assert.equal(created.status, 201, created.body);
    admin = { authorization: `Bearer ${JSON.parse(created.body).token}` };
  });
  after(async () => {
    if (serve) assert.equal(await serve.stop(), 0, serve.stderr());
    rmSync(dir, { recursive: true, force: true });
  });

  /** What `mxguard admin unlock` does, on the store serve uses. */
  async function unlock(): Promise<void> {
    const store = await openStore(join(dir, 'data'));
    await store.clearAuthAttempts();
    await store.close();
  }

  it('every revoked token fails on its next request and every created token works (5 runs)', async () => {
    const revokedButAccepted: string[] = [];
    const createdButRefused: string[] = [];
    for (let run = 0; run < 5; run++) {
      const old: { id: string; token: string }[] = [];
      for (let i = 0; i < 10; i++) {
        const res = await httpRequest(port, {
          method: 'POST',
          path: '/api/tokens',
          headers: admin,
          json: { name: `old ${run}.${i}` },
        });
        assert.equal(res.status, 201, res.body);
        old.push(JSON.parse(res.body));
      }
      // 10 deletions beside 10 creations, all at once.
      const [deletions, creations] = await Promise.all([
        Promise.all(
          old.map((t) =>
            httpRequest(port, { method: 'DELETE', path: `/api/tokens/${t.id}`, headers: admin }),
          ),
        ),
        Promise.all(
          old.map((_, i) =>
            httpRequest(port, {
              method: 'POST',
              path: '/api/tokens',
              headers: admin,
              json: { name: `new ${run}.${i}` },
            }),
          ),
        ),
      ]);
      assert.deepEqual(
        deletions.map((d) => d.status),
        Array(10).fill(204),
      );
      assert.deepEqual(
        creations.map((c) => c.status),
        Array(10).fill(201),
      );
      for (const [i, t] of old.entries()) {
        const res = await whoAmI(port, { authorization: `Bearer ${t.token}` }, `127.0.${50 + run}.${i + 1}`);
        if (res.status !== 401) revokedButAccepted.push(`${t.id}: ${res.status}`);
      }
      for (const [i, c] of creations.entries()) {
        const { id, token } = JSON.parse(c.body) as { id: string; token: string };
        const res = await whoAmI(port, { authorization: `Bearer ${token}` }, `127.0.${60 + run}.${i + 1}`);
        if (res.status !== 200) createdButRefused.push(`${id}: ${res.status}`);
      }
    }
    assert.deepEqual(revokedButAccepted, [], 'revoked tokens that still authenticate');
    assert.deepEqual(createdButRefused, [], 'created tokens (201) that never work');
    const listed = JSON.parse((await httpRequest(port, { path: '/api/tokens', headers: admin })).body);
    assert.equal(listed.tokens.length, 1 + 5 * 10, 'the admin token and the 50 created ones');
  });

  it(`a password change during concurrent logins leaves no session from the old password (${RUNS} runs)`, async () => {
    let password = FIRST_PASSWORD;
    const survivors: string[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const next = `changed-password-${run}`;
      const earlier = [];
      for (let i = 0; i < 2; i++) {
        const res = await login(port, password, `127.0.${run}.${100 + i}`);
        assert.equal(res.status, 200, res.body);
        earlier.push(cookieOf(res));
      }
      // 24 logins with the old password, one every 5 ms from when the change is sent.
      const change = httpRequest(port, {
        method: 'POST',
        path: '/api/password',
        headers: admin,
        json: { current: password, next },
      });
      const logins = Array.from(
        { length: 24 },
        (_, i) =>
          new Promise<HttpAnswer>((resolve, reject) =>
            setTimeout(() => login(port, password, `127.0.${run}.${i + 1}`).then(resolve, reject), 5 * i),
          ),
      );
      const [changed, answers] = await Promise.all([change, Promise.all(logins)]);
      assert.equal(changed.status, 204, changed.body);
      for (const a of answers) assert.ok(a.status === 200 || a.status === 401, `${a.status} ${a.body}`);
      const issued = [...earlier, ...answers.filter((a) => a.status === 200).map(cookieOf)];
      for (const cookie of issued) {
        const res = await whoAmI(port, { cookie });
        if (res.status !== 401) survivors.push(`run ${run}: ${res.status}`);
      }
      password = next;
      assert.equal((await login(port, password, `127.0.${run}.200`)).status, 200, 'the new password works');
      // The logins after the change failed: forget them, or the account limit slows the next runs.
      await unlock();
    }
    assert.deepEqual(survivors, [], 'sessions from the old password still valid after the change');
  });

  it(`200 concurrent wrong passwords from one address: at most ${MAX_FAILURES} are checked`, async () => {
    const from = '127.0.99.1';
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) => login(port, `wrong password ${i}`, from)),
    );
    const checked = answers.filter((a) => a.status === 401).length; // 401 only after the scrypt
    const refused = answers.filter((a) => a.status === 429);
    assert.equal(checked + refused.length, 200, answers.map((a) => a.status).join(' '));
    assert.ok(checked >= 1 && checked <= MAX_FAILURES, `${checked} passwords checked`);
    assert.ok(refused.every((a) => Number(a.headers['retry-after']) > 0));
    // The limit is per client address: the admin elsewhere is not affected.
    const current = `changed-password-${RUNS}`;
    assert.equal((await login(port, current, '127.0.99.2')).status, 200);
    assert.equal((await login(port, current, from)).status, 429, 'the locked address stays locked');
  });
});

describe('strangers behind a proxy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mxguard-auth-proxy-'));
  const dataDir = join(dir, 'data');
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('without trustProxy: they lock the admin out, serve warns once, reset-password lets the admin in', async () => {
    const serve = await startServe(['--data-dir', dataDir, '--workers', '2'], {
      cwd: dir,
      env: { MXGUARD_ADMIN_PASSWORD: FIRST_PASSWORD },
    });
    try {
      // The proxy (127.0.0.1) forwards everyone; without trustProxy they all count as the proxy.
      const proxied = (client: string) => ({ 'x-forwarded-for': client });
      const session = cookieOf(await login(serve.port, FIRST_PASSWORD, undefined, proxied('198.51.100.7')));
      for (let i = 0; i < MAX_FAILURES; i++) {
        const res = await login(serve.port, `guess ${i}`, undefined, proxied(`203.0.113.${i + 1}`));
        assert.equal(res.status, 401, res.body);
      }
      const locked = await login(serve.port, FIRST_PASSWORD, undefined, proxied('198.51.100.7'));
      assert.equal(locked.status, 429, 'documented: one limit for everyone behind the proxy');
      const warnings = serve.stdout().match(/X-Forwarded-For[^\n]*trustProxy/g) ?? [];
      assert.ok(
        warnings.length >= 1 && warnings.length <= 2,
        `${warnings.length} warnings (once per worker)`,
      );

      const reset = runCli(['admin', 'reset-password', '--data-dir', dataDir], {
        env: { MXGUARD_ADMIN_PASSWORD: '' },
      });
      assert.equal(reset.code, 0, reset.stderr);
      const fresh = /^new admin password: (\S+)$/m.exec(reset.stdout)?.[1];
      assert.ok(fresh, reset.stdout);
      const back = await login(serve.port, fresh, undefined, proxied('198.51.100.7'));
      assert.equal(back.status, 200, back.body);
      assert.equal((await whoAmI(serve.port, { cookie: session })).status, 401, 'earlier sessions ended');
      assert.equal((await login(serve.port, FIRST_PASSWORD, '127.0.0.9')).status, 401, 'old password');
    } finally {
      assert.equal(await serve.stop(), 0, serve.stderr());
    }
  });

  it('with trustProxy: each forwarded client has its own limit, the admin gets in', async () => {
    const serve = await startServe(['--data-dir', dataDir, '--workers', '2', '--trust-proxy', 'loopback'], {
      cwd: dir,
      env: { MXGUARD_ADMIN_PASSWORD: FIRST_PASSWORD },
    });
    try {
      const proxied = (client: string) => ({ 'x-forwarded-for': client });
      for (let i = 0; i < MAX_FAILURES + 2; i++) {
        const res = await login(serve.port, `guess ${i}`, undefined, proxied('203.0.113.50'));
        assert.equal(res.status, i < MAX_FAILURES ? 401 : 429, res.body);
      }
      const admin = await login(serve.port, FIRST_PASSWORD, undefined, proxied('198.51.100.7'));
      assert.equal(admin.status, 200, admin.body);
      assert.doesNotMatch(serve.stdout(), /X-Forwarded-For[^\n]*trustProxy/);
    } finally {
      assert.equal(await serve.stop(), 0, serve.stderr());
    }
  });
});
