// The store contract, authentication part (see contract.ts): the admin password change that ends every
// session, sessions refused when the password changed while the login was checked, API tokens and their
// cap, the login throttle (in-flight attempts count, the account's excess, clearing). What needs a second
// connection or the database's own rows stays in each implementation's tests (auth.test.ts for SQLite,
// postgres.test.ts for several PostgreSQL instances).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { MAX_API_TOKENS } from '../../src/store/sqlite.js';
import {
  ADMIN_PASSWORD_SETTING,
  type AuthAttemptLimits,
  type Store,
  type StoreError,
} from '../../src/store/types.js';

export const T0 = new Date('2026-03-01T12:00:00Z');
export const LIMITS: AuthAttemptLimits = { windowMs: 15 * 60_000, clientMax: 10, accountMax: 50 };
export const ADMIN = 'admin';

export function at(ms: number): Date {
  return new Date(T0.getTime() + ms);
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

/** The authentication tests, each on a fresh store from `withStore`. */
export function authContract(withStore: (work: (store: Store) => Promise<void>) => Promise<void>): void {
  describe('authentication: admin password and sessions', () => {
    it('a session is valid until it expires, and ends on logout', async () => {
      await withStore(async (store) => {
        await store.setAdminPassword('hash-1');
        assert.equal(await store.getSetting(ADMIN_PASSWORD_SETTING), 'hash-1');
        const session = { idHash: sha256('session-a'), expiresAt: at(60_000) };
        assert.equal(await store.createSession(session, 'hash-1', T0), true);
        assert.equal(await store.sessionValid(session.idHash, at(59_999)), true);
        assert.equal(await store.sessionValid(session.idHash, at(60_000)), false, 'expired');
        assert.equal(await store.sessionValid(sha256('other'), T0), false, 'unknown');
        await store.endSession(session.idHash);
        assert.equal(await store.sessionValid(session.idHash, T0), false, 'ended');
        await store.endSession(session.idHash); // ending twice is harmless
      });
    });

    it('changing the password ends every session in the same transaction', async () => {
      await withStore(async (store) => {
        await store.setAdminPassword('hash-1');
        const ids = ['a', 'b', 'c'].map(sha256);
        for (const idHash of ids) await store.createSession({ idHash, expiresAt: at(60_000) }, 'hash-1', T0);
        await store.setAdminPassword('hash-2');
        for (const idHash of ids) assert.equal(await store.sessionValid(idHash, T0), false);
      });
    });

    it('a login checked against the old password gets no session once the password changed', async () => {
      await withStore(async (store) => {
        await store.setAdminPassword('hash-1');
        await store.setAdminPassword('hash-2'); // committed while the login was running its scrypt
        const late = { idHash: sha256('late'), expiresAt: at(60_000) };
        assert.equal(await store.createSession(late, 'hash-1', T0), false);
        assert.equal(await store.sessionValid(late.idHash, T0), false);
        assert.equal(await store.createSession(late, 'hash-2', T0), true);
      });
    });
  });

  describe('authentication: API tokens', () => {
    it('create, list, find by hash, delete', async () => {
      await withStore(async (store) => {
        const a = { id: 'id-a', name: 'backup', createdAt: T0.toISOString(), hash: sha256('mxg_secret-a') };
        const b = { id: 'id-b', name: 'ci', createdAt: at(1000).toISOString(), hash: sha256('mxg_secret-b') };
        await store.createApiToken(a);
        await store.createApiToken(b);
        assert.deepEqual(await store.listApiTokens(), [
          { id: 'id-a', name: 'backup', createdAt: a.createdAt },
          { id: 'id-b', name: 'ci', createdAt: b.createdAt },
        ]);
        assert.equal(await store.findApiToken(a.hash), 'id-a');
        assert.equal(await store.findApiToken(sha256('mxg_other')), undefined);
        assert.equal(await store.deleteApiToken('id-a'), true);
        assert.equal(await store.deleteApiToken('id-a'), false);
        assert.equal(await store.findApiToken(a.hash), undefined, 'a deleted token is gone at once');
        assert.equal(await store.findApiToken(b.hash), 'id-b');
      });
    });

    it(`at most MAX_API_TOKENS (${MAX_API_TOKENS}) at once: one more is refused until one is revoked`, async () => {
      await withStore(async (store) => {
        const token = (i: number) => ({
          id: `id-${i}`,
          name: `t${i}`,
          createdAt: T0.toISOString(),
          hash: sha256(`mxg_secret-${i}`),
        });
        for (let i = 0; i < MAX_API_TOKENS; i++) await store.createApiToken(token(i));
        await assert.rejects(store.createApiToken(token(MAX_API_TOKENS)), (err: StoreError) => {
          assert.equal(err.code, 'STORE_INVALID');
          assert.match(err.message, /revoke one/);
          return true;
        });
        assert.equal((await store.listApiTokens()).length, MAX_API_TOKENS);
        assert.equal(await store.findApiToken(token(MAX_API_TOKENS).hash), undefined);
        await store.deleteApiToken('id-0');
        await store.createApiToken(token(MAX_API_TOKENS));
        assert.equal(await store.findApiToken(token(MAX_API_TOKENS).hash), `id-${MAX_API_TOKENS}`);
      });
    });
  });

  describe('authentication: the login throttle', () => {
    const keys = (client: string) => ({ client, account: ADMIN });

    it('in-flight attempts count: the client key is refused at its limit before any check ends', async () => {
      await withStore(async (store) => {
        const ids: number[] = [];
        for (let i = 0; i < LIMITS.clientMax; i++) {
          const r = await store.reserveAuthAttempt(keys('192.0.2.1'), LIMITS, at(i * 1000));
          assert.ok(r.ok);
          ids.push(r.id);
        }
        const refused = await store.reserveAuthAttempt(keys('192.0.2.1'), LIMITS, at(20_000));
        assert.deepEqual(refused, { ok: false, retryAfterMs: LIMITS.windowMs - 20_000 });
        assert.ok((await store.reserveAuthAttempt(keys('192.0.2.2'), LIMITS, at(20_000))).ok, 'other key');
        // A success frees its slot; a failure keeps it until the window ends.
        await store.settleAuthAttempt(ids[0]!, true);
        await store.settleAuthAttempt(ids[1]!, false);
        assert.ok((await store.reserveAuthAttempt(keys('192.0.2.1'), LIMITS, at(21_000))).ok);
        assert.equal((await store.reserveAuthAttempt(keys('192.0.2.1'), LIMITS, at(21_000))).ok, false);
        // The second-oldest (failed, at 1 s) leaves the window first.
        assert.ok((await store.reserveAuthAttempt(keys('192.0.2.1'), LIMITS, at(LIMITS.windowMs + 1000))).ok);
      });
    });

    it('the account counts every client; beyond its limit the excess is reported, never a refusal', async () => {
      await withStore(async (store) => {
        for (let i = 0; i < LIMITS.accountMax; i++) {
          const r = await store.reserveAuthAttempt(keys(`198.51.100.${i}`), LIMITS, T0);
          assert.ok(r.ok && r.accountExcess === 0, `attempt ${i}`);
          await store.settleAuthAttempt(r.id, false);
        }
        const over = await store.reserveAuthAttempt(keys('203.0.113.1'), LIMITS, T0);
        assert.ok(over.ok && over.accountExcess === 1, JSON.stringify(over));
        const further = await store.reserveAuthAttempt(keys('203.0.113.2'), LIMITS, T0);
        assert.ok(further.ok && further.accountExcess === 2, JSON.stringify(further));
        const other = await store.reserveAuthAttempt(
          { client: '203.0.113.3', account: 'someone' },
          LIMITS,
          T0,
        );
        assert.ok(other.ok && other.accountExcess === 0);
      });
    });

    it('clearAuthAttempts forgets every client', async () => {
      await withStore(async (store) => {
        for (let i = 0; i < LIMITS.clientMax; i++)
          await store.reserveAuthAttempt(keys('192.0.2.1'), LIMITS, T0);
        assert.equal((await store.reserveAuthAttempt(keys('192.0.2.1'), LIMITS, T0)).ok, false);
        await store.clearAuthAttempts();
        assert.ok((await store.reserveAuthAttempt(keys('192.0.2.1'), LIMITS, T0)).ok);
      });
    });
  });
}
