// Dashboard and API authentication for `mxguard serve`.
//
// - One admin password (the account "admin"), stored only as an scrypt hash with a per-hash random
//   salt (setting `admin.passwordHash`). Set on first run (a generated one-time password that serve
//   prints once), from MXGUARD_ADMIN_PASSWORD / the config file (hashed on start), or by
//   `mxguard admin reset-password`.
// - Sessions: a random id in an HttpOnly SameSite=Strict cookie; the store keeps only its SHA-256 and
//   expiry, one row per session, so every serve worker sees a login or logout at once. A password
//   change sets the hash and deletes every session in one transaction, and a login whose password was
//   checked against the old hash gets no session (the store re-reads the hash when it inserts the row).
// - API tokens for scripts: `mxg_` + 256 random bits, shown once, kept as SHA-256 rows (a random
//   256-bit secret needs no slow hash). A bearer secret of that form is only looked up as a token:
//   no scrypt, no throttle (it cannot be guessed), so a script with a revoked token locks nobody out.
// - `Authorization: Bearer <password or API token>` for scripts.
// - The password throttle (login, bearer password, password change), shared by every worker through
//   the store: each attempt is reserved BEFORE its scrypt (in-flight attempts count) and settled after.
//   Per client key (client-key.ts: an IPv4 address or an IPv6 /64): MAX_FAILURES failed or in-flight
//   attempts per FAILURE_WINDOW_SECONDS, then 429, even for the right password. Per account: beyond
//   ACCOUNT_MAX_FAILURES in the window (strangers from many addresses), each attempt first waits a
//   delay that grows with the excess, then is checked: slowed, never refused, so strangers cannot
//   lock the admin out from a fresh address. A locked-out address: wait for the window, use a session
//   or an API token, or `mxguard admin unlock` / `reset-password` (docs/serve.md).
// - Every comparison of secrets is constant-time; session and token lookups go by the SHA-256 of
//   the secret, so their timing says nothing about the secret.
import { createHash, randomBytes, randomUUID, scrypt, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Counter } from 'prom-client';
import { ADMIN_PASSWORD_SETTING, type ApiTokenInfo, type AuthAttemptLimits } from '../store/types.js';
import { clientKey } from './client-key.js';
import type { ServerContext } from './context.js';
import { counter } from './metrics.js';

export type { ApiTokenInfo };
export const PASSWORD_SETTING = ADMIN_PASSWORD_SETTING;
export const SESSION_COOKIE = 'mxguard_session';
export const PASSWORD_ENV = 'MXGUARD_ADMIN_PASSWORD';
export const MIN_PASSWORD_LENGTH = 10;
export const SESSION_SECONDS = 12 * 3600;
/** Failed (or in-flight) password attempts per client key within FAILURE_WINDOW_SECONDS before 429. */
export const MAX_FAILURES = 10;
export const FAILURE_WINDOW_SECONDS = 15 * 60;
/** Failed (or in-flight) attempts of the admin account, from anywhere, before every attempt is slowed. */
export const ACCOUNT_MAX_FAILURES = 50;
/** The delay per attempt beyond ACCOUNT_MAX_FAILURES, and its ceiling. */
export const ACCOUNT_DELAY_STEP_MS = 1000;
export const ACCOUNT_DELAY_MAX_MS = 30_000;
/** The one account the throttle counts (there is one admin). */
const ADMIN_ACCOUNT = 'admin';
const LIMITS: AuthAttemptLimits = {
  windowMs: FAILURE_WINDOW_SECONDS * 1000,
  clientMax: MAX_FAILURES,
  accountMax: ACCOUNT_MAX_FAILURES,
};
const TOKEN_PREFIX = 'mxg_';
const TOKEN_FORM = /^mxg_[A-Za-z0-9_-]{43}$/;

// scrypt cost: N=2^14, r=8, p=1 (16 MiB, tens of milliseconds): the parameters are kept in the hash.
const SCRYPT = { N: 16384, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;

function scryptAsync(secret: string, salt: Buffer, N: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, KEY_LENGTH, { N, r, p, maxmem: 256 * N * r }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/** `scrypt$N$r$p$<salt base64url>$<hash base64url>` with a fresh 16-byte salt. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p);
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), key.toString('base64url')].join(
    '$',
  );
}

/** Constant-time check of a password against a stored hash; a malformed hash never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![N, r, p].every((n) => Number.isSafeInteger(n) && n > 0) || N > 2 ** 20 || r > 32 || p > 16)
    return false;
  const salt = Buffer.from(parts[4]!, 'base64url');
  const expected = Buffer.from(parts[5]!, 'base64url');
  if (expected.length !== KEY_LENGTH) return false;
  const actual = await scryptAsync(password, salt, N, r, p);
  return timingSafeEqual(actual, expected);
}

/** A random secret that is easy to copy: 18 bytes → 24 base64url characters. */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}

/** Why a new admin password cannot be used, or undefined when it can. */
export function passwordProblem(password: string): string | undefined {
  return password.length < MIN_PASSWORD_LENGTH
    ? `the admin password must have at least ${MIN_PASSWORD_LENGTH} characters`
    : undefined;
}

/**
 * Makes sure an admin password is set. A configured password (config file adminPassword or
 * MXGUARD_ADMIN_PASSWORD, as config.ts reads them) replaces the stored hash when it differs (which
 * ends every session). Without one, a first run generates a password, stores its hash and returns it
 * so that serve prints it once; otherwise returns undefined.
 */
export async function ensureAdminPassword(
  ctx: Pick<ServerContext, 'store'>,
  configured?: string,
): Promise<string | undefined> {
  const stored = await ctx.store.getSetting(PASSWORD_SETTING);
  if (configured !== undefined && configured !== '') {
    const problem = passwordProblem(configured);
    if (problem !== undefined) throw new Error(`adminPassword / ${PASSWORD_ENV}: ${problem}`);
    if (stored === undefined || !(await verifyPassword(configured, stored))) {
      await ctx.store.setAdminPassword(await hashPassword(configured));
    }
    return undefined;
  }
  if (stored !== undefined) return undefined;
  const generated = generatePassword();
  await ctx.store.setAdminPassword(await hashPassword(generated));
  return generated;
}

export type Principal = { kind: 'session' } | { kind: 'password' } | { kind: 'token'; tokenId: string };

export type AuthResult =
  | { ok: true; principal: Principal }
  | { ok: false; status: 401 | 429; message: string; retryAfterSeconds?: number };

type AuthFailure = Extract<AuthResult, { ok: false }>;

interface AuthMetrics {
  /** Admin password checks that ran scrypt, by result (right | wrong). */
  passwordChecks: Counter<'result'>;
  /** Password attempts refused (limit=client) or slowed down (limit=account) by the throttle. */
  throttled: Counter<'limit'>;
}

/** Sessions, tokens and the throttled password check; one per server process, state in the store. */
export class Auth {
  /** SHA-256 of the last password that verified, with the hash it verified against (saves scrypt). */
  private verifiedPassword?: { digest: Buffer; against: string };
  private warnedForwardedFor = false;
  private readonly metrics: AuthMetrics;

  constructor(private readonly ctx: ServerContext) {
    this.metrics = {
      passwordChecks: counter(
        ctx.metrics,
        'mxguard_admin_password_checks_total',
        'admin password checks that ran scrypt, by result',
        ['result'],
      ),
      throttled: counter(
        ctx.metrics,
        'mxguard_admin_auth_throttled_total',
        'password attempts refused (limit=client) or slowed down (limit=account) by the login throttle',
        ['limit'],
      ),
    };
  }

  /**
   * One password attempt under the throttle: reserved in the store before the scrypt, settled after.
   * On success, the stored hash the password matched (a session is issued only under that hash).
   */
  private async attemptPassword(
    ip: string,
    password: string,
  ): Promise<{ ok: true; against: string } | AuthFailure> {
    const store = this.ctx.store;
    const keys = { client: clientKey(ip), account: ADMIN_ACCOUNT };
    const stored = await store.getSetting(PASSWORD_SETTING);
    if (stored !== undefined && this.cachedMatch(password, stored)) {
      // Known right without scrypt: no slot needed, but the same refusal as any other attempt (a
      // locked address learning "right" or "wrong" without the lock would be a free oracle).
      const allowed = await store.authAttemptAllowed(keys, LIMITS, this.ctx.now());
      if (!allowed.ok) return this.refused(allowed.retryAfterMs);
      return { ok: true, against: stored };
    }
    const reservation = await store.reserveAuthAttempt(keys, LIMITS, this.ctx.now());
    if (!reservation.ok) return this.refused(reservation.retryAfterMs);
    let ok = false;
    let against = stored;
    try {
      if (reservation.accountExcess > 0) {
        this.metrics.throttled.inc({ limit: 'account' });
        await sleep(Math.min(ACCOUNT_DELAY_MAX_MS, reservation.accountExcess * ACCOUNT_DELAY_STEP_MS));
        against = await store.getSetting(PASSWORD_SETTING); // it may have changed while waiting
      }
      if (against !== undefined) {
        ok = await verifyPassword(password, against);
        this.metrics.passwordChecks.inc({ result: ok ? 'right' : 'wrong' });
        if (ok) this.verifiedPassword = { digest: sha256(password), against };
      }
    } finally {
      await store.settleAuthAttempt(reservation.id, ok);
    }
    if (!ok) {
      this.ctx.logger.warn({ clientIp: ip }, 'failed admin authentication');
      return { ok: false, status: 401, message: 'wrong password' };
    }
    return { ok: true, against: against! };
  }

  private refused(retryAfterMs: number): AuthFailure {
    this.metrics.throttled.inc({ limit: 'client' });
    return tooMany(Math.ceil(retryAfterMs / 1000));
  }

  /** The password verified before against this same stored hash (no scrypt needed). */
  private cachedMatch(password: string, stored: string): boolean {
    const cached = this.verifiedPassword;
    return (
      cached !== undefined && cached.against === stored && timingSafeEqual(cached.digest, sha256(password))
    );
  }

  /** POST /api/login: the password, throttled; returns a new session id. */
  async login(ip: string, password: string): Promise<{ ok: true; sessionId: string } | AuthFailure> {
    const checked = await this.attemptPassword(ip, password);
    if (!checked.ok) return checked;
    const sessionId = randomBytes(32).toString('base64url');
    const expiresAt = new Date(this.ctx.now().getTime() + SESSION_SECONDS * 1000);
    const created = await this.ctx.store.createSession(
      { idHash: sessionKey(sessionId), expiresAt },
      checked.against,
      this.ctx.now(),
    );
    if (!created) {
      return { ok: false, status: 401, message: 'the admin password changed while logging in; log in again' };
    }
    return { ok: true, sessionId };
  }

  async endSession(id: string): Promise<void> {
    await this.ctx.store.endSession(sessionKey(id));
  }

  /** The session id is looked up by its SHA-256, so the lookup time says nothing about the id. */
  async sessionValid(id: string): Promise<boolean> {
    return this.ctx.store.sessionValid(sessionKey(id), this.ctx.now());
  }

  /** Cookie session or `Authorization: Bearer <password or API token>`. */
  async authenticate(req: FastifyRequest): Promise<AuthResult> {
    const header = req.headers.authorization;
    if (header !== undefined) {
      const match = /^Bearer +(\S+)\s*$/i.exec(header);
      if (!match) return { ok: false, status: 401, message: 'Authorization must be "Bearer <token>"' };
      const secret = match[1]!;
      if (TOKEN_FORM.test(secret)) {
        const tokenId = await this.ctx.store.findApiToken(sha256(secret).toString('base64url'));
        if (tokenId !== undefined) return { ok: true, principal: { kind: 'token', tokenId } };
        return { ok: false, status: 401, message: 'unknown or revoked API token' };
      }
      const checked = await this.attemptPassword(req.ip, secret);
      if (!checked.ok)
        return checked.status === 401 ? { ...checked, message: 'bearer token not accepted' } : checked;
      return { ok: true, principal: { kind: 'password' } };
    }
    const session = readCookie(req.headers.cookie, SESSION_COOKIE);
    if (session !== undefined && (await this.sessionValid(session)))
      return { ok: true, principal: { kind: 'session' } };
    return { ok: false, status: 401, message: 'log in first (session cookie or Authorization: Bearer)' };
  }

  /**
   * Logs once per process when a request carries X-Forwarded-For but trustProxy is off (fastify then
   * sets no `ips`): every client behind the proxy has the proxy's address, so they all share one
   * login throttle, and strangers' bad guesses lock the admin out.
   */
  warnIfForwardedWithoutTrust(req: FastifyRequest): void {
    if (this.warnedForwardedFor || req.ips !== undefined || req.headers['x-forwarded-for'] === undefined)
      return;
    this.warnedForwardedFor = true;
    this.ctx.logger.warn(
      { clientIp: req.ip },
      'requests carry X-Forwarded-For but trustProxy is off: every client behind the proxy counts as the proxy ' +
        "(one login throttle and one intake rate for all); set trustProxy to the proxy's address " +
        '(docs/serve.md, "Behind a reverse proxy")',
    );
  }

  // ---- API tokens ----

  async listTokens(): Promise<ApiTokenInfo[]> {
    return this.ctx.store.listApiTokens();
  }

  /** Creates a token; the secret is returned only here. */
  async createToken(name: string): Promise<ApiTokenInfo & { token: string }> {
    const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const info: ApiTokenInfo = { id: randomUUID(), name, createdAt: this.ctx.now().toISOString() };
    await this.ctx.store.createApiToken({ ...info, hash: sha256(token).toString('base64url') });
    return { ...info, token };
  }

  async deleteToken(id: string): Promise<boolean> {
    return this.ctx.store.deleteApiToken(id);
  }

  /** Changes the admin password (the current one checked first, throttled) and ends every session. */
  async changePassword(ip: string, current: string, next: string): Promise<{ ok: true } | AuthFailure> {
    const checked = await this.attemptPassword(ip, current);
    if (!checked.ok)
      return checked.status === 401 ? { ...checked, message: 'current password is wrong' } : checked;
    await this.ctx.store.setAdminPassword(await hashPassword(next));
    this.verifiedPassword = undefined;
    return { ok: true };
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function sessionKey(id: string): string {
  return sha256(id).toString('base64url');
}

function tooMany(retryAfterSeconds: number): AuthFailure {
  return {
    ok: false,
    status: 429,
    message: `too many failed attempts from this address; try again in ${retryAfterSeconds} s`,
    retryAfterSeconds,
  };
}

/** The value of one cookie from a Cookie header (RFC 6265 §5.4), or undefined. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Set-Cookie for a session; `Secure` when the request came over TLS. */
export function sessionCookie(id: string, secure: boolean): string {
  return [
    `${SESSION_COOKIE}=${id}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${SESSION_SECONDS}`,
    ...(secure ? ['Secure'] : []),
  ].join('; ');
}

export function clearedSessionCookie(secure: boolean): string {
  return [
    `${SESSION_COOKIE}=`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    'Max-Age=0',
    ...(secure ? ['Secure'] : []),
  ].join('; ');
}

/** Sends the 401/429 answer of a failed authentication. */
export function sendAuthFailure(
  reply: FastifyReply,
  failure: Extract<AuthResult, { ok: false }>,
): FastifyReply {
  if (failure.retryAfterSeconds !== undefined) reply.header('retry-after', String(failure.retryAfterSeconds));
  if (failure.status === 401) reply.header('www-authenticate', 'Bearer realm="mxguard"');
  return reply.code(failure.status).send({
    statusCode: failure.status,
    error: failure.status === 401 ? 'Unauthorized' : 'Too Many Requests',
    message: failure.message,
  });
}
