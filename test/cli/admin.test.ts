// `mxguard admin reset-password` and `mxguard admin unlock`: the recovery when the admin cannot log in
// (password lost, or the login throttle locked by strangers). Run as the built command on a real store.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hashPassword, verifyPassword } from '../../src/server/auth.js';
import { openStore } from '../../src/store/index.js';
import { ADMIN_PASSWORD_SETTING, type AuthAttemptLimits, type Store } from '../../src/store/types.js';
import { runCli } from '../helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'mxguard-cli-admin-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

const LIMITS: AuthAttemptLimits = { windowMs: 15 * 60_000, clientMax: 10, accountMax: 50 };
const OLD_PASSWORD = 'old-admin-password';
const SESSION = createHash('sha256').update('a session id').digest('base64url');
const TOKEN_HASH = createHash('sha256').update('mxg_token').digest('base64url');

/** A data directory whose admin has a session, an API token, and a locked-out address. */
async function lockedOutDataDir(): Promise<string> {
  const dataDir = join(root, `d${++dirs}`);
  const store = await openStore(dataDir);
  try {
    const hash = await hashPassword(OLD_PASSWORD);
    await store.setAdminPassword(hash);
    await store.createSession(
      { idHash: SESSION, expiresAt: new Date(Date.now() + 3_600_000) },
      hash,
      new Date(),
    );
    await store.createApiToken({
      id: 't',
      name: 'ci',
      createdAt: new Date().toISOString(),
      hash: TOKEN_HASH,
    });
    for (let i = 0; i < LIMITS.clientMax; i++) {
      const r = await store.reserveAuthAttempt({ client: '192.0.2.1', account: 'admin' }, LIMITS, new Date());
      if (r.ok) await store.settleAuthAttempt(r.id, false);
    }
    assert.equal(await locked(store), true);
  } finally {
    await store.close();
  }
  return dataDir;
}

async function locked(store: Store): Promise<boolean> {
  const r = await store.reserveAuthAttempt({ client: '192.0.2.1', account: 'admin' }, LIMITS, new Date());
  if (r.ok) await store.settleAuthAttempt(r.id, true);
  return !r.ok;
}

async function inspect(dataDir: string) {
  const store = await openStore(dataDir);
  try {
    return {
      hash: (await store.getSetting(ADMIN_PASSWORD_SETTING))!,
      session: await store.sessionValid(SESSION, new Date()),
      token: await store.findApiToken(TOKEN_HASH),
      locked: await locked(store),
    };
  } finally {
    await store.close();
  }
}

const noEnvPassword = { MXGUARD_ADMIN_PASSWORD: '' };

describe('mxguard admin reset-password', () => {
  it('prints a generated password, ends every session, clears the throttle, keeps API tokens', async () => {
    const dataDir = await lockedOutDataDir();
    const r = runCli(['admin', 'reset-password', '--data-dir', dataDir], { env: noEnvPassword });
    assert.equal(r.code, 0, r.stderr);
    const password = /^new admin password: (\S+)$/m.exec(r.stdout)?.[1];
    assert.ok(password && password.length >= 20, r.stdout);
    assert.match(r.stderr, /every session ended/);
    const after = await inspect(dataDir);
    assert.equal(await verifyPassword(password, after.hash), true);
    assert.equal(await verifyPassword(OLD_PASSWORD, after.hash), false);
    assert.deepEqual(
      { ...after, hash: undefined },
      { hash: undefined, session: false, token: 't', locked: false },
    );
  });

  it('takes the password from stdin (--password-stdin) and never prints it', async () => {
    const dataDir = await lockedOutDataDir();
    const chosen = 'chosen-on-stdin-1';
    const r = runCli(['admin', 'reset-password', '--data-dir', dataDir, '--password-stdin'], {
      input: `${chosen}\n`,
      env: noEnvPassword,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes(chosen) && !r.stderr.includes(chosen));
    assert.equal(await verifyPassword(chosen, (await inspect(dataDir)).hash), true);
  });

  it('takes the password from MXGUARD_ADMIN_PASSWORD, as serve does', async () => {
    const dataDir = await lockedOutDataDir();
    const r = runCli(['admin', 'reset-password', '--data-dir', dataDir], {
      env: { MXGUARD_ADMIN_PASSWORD: 'from-the-environment' },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /new admin password/);
    assert.equal(await verifyPassword('from-the-environment', (await inspect(dataDir)).hash), true);
  });

  it('refuses a short password and changes nothing', async () => {
    const dataDir = await lockedOutDataDir();
    const r = runCli(['admin', 'reset-password', '--data-dir', dataDir, '--password-stdin'], {
      input: 'short\n',
      env: noEnvPassword,
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^mxguard: stdin: the admin password must have at least 10 characters$/m);
    const after = await inspect(dataDir);
    assert.equal(await verifyPassword(OLD_PASSWORD, after.hash), true);
    assert.equal(after.session, true);
  });

  it('refuses a data directory without a database (and does not create one)', () => {
    const missing = join(root, 'nothing-here');
    const r = runCli(['admin', 'reset-password', '--data-dir', missing], { env: noEnvPassword });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /nothing-here.*no mxguard database/);
    assert.equal(existsSync(missing), false);
  });
});

describe('mxguard admin unlock', () => {
  it('clears the throttle and keeps the password and the sessions', async () => {
    const dataDir = await lockedOutDataDir();
    const r = runCli(['admin', 'unlock', '--data-dir', dataDir], { env: noEnvPassword });
    assert.equal(r.code, 0, r.stderr);
    const after = await inspect(dataDir);
    assert.equal(after.locked, false);
    assert.equal(after.session, true);
    assert.equal(await verifyPassword(OLD_PASSWORD, after.hash), true);
  });

  it('is listed in the help', () => {
    const r = runCli(['admin', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /reset-password/);
    assert.match(r.stdout, /unlock/);
  });
});
