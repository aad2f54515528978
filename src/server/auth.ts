// Dashboard and API authentication for `mxguard serve`.
//
// - One admin password, stored only as an scrypt hash with a per-hash random salt
//   (setting `admin.passwordHash`). Set on first run (a generated one-time password that serve prints
//   once), or from MXGUARD_ADMIN_PASSWORD / the config file (hashed on start).
// - API tokens for scripts: 256 random bits shown once, stored as SHA-256 (a random 256-bit secret
//   needs no slow hash) in the setting `api.tokens`.
// - Sessions: a random id in an HttpOnly SameSite=Strict cookie; only its SHA-256 is kept, with the
//   expiry, in the store (setting `admin.sessions`), so that every serve worker process knows them.
// - `Authorization: Bearer <password or API token>` for scripts.
// - Failed attempts (login or bearer) are rate-limited per client IP, counted in each process's memory
//   (with N worker processes a client gets at most N times the attempts); every comparison of
//   secrets is constant-time.
import { createHash, randomBytes, randomUUID, scrypt, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext } from './context.js';

export const PASSWORD_SETTING = 'admin.passwordHash';
export const TOKENS_SETTING = 'api.tokens';
export const SESSIONS_SETTING = 'admin.sessions';
export const SESSION_COOKIE = 'mxguard_session';
export const PASSWORD_ENV = 'MXGUARD_ADMIN_PASSWORD';
export const MIN_PASSWORD_LENGTH = 10;
export const SESSION_SECONDS = 12 * 3600;
/** Failed attempts allowed per client IP within FAILURE_WINDOW_SECONDS before 429. */
export const MAX_FAILURES = 10;
export const FAILURE_WINDOW_SECONDS = 15 * 60;
const MAX_SESSIONS = 1000;
const MAX_TRACKED_ADDRESSES = 10000;
const TOKEN_PREFIX = 'mxg_';

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

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** A random secret that is easy to copy: 18 bytes → 24 base64url characters. */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}

/**
 * Makes sure an admin password is set. A configured password (config file adminPassword or
 * MXGUARD_ADMIN_PASSWORD, as config.ts reads them) replaces the stored hash when it differs. Without
 * one, a first run generates a password, stores its hash and returns it so that serve prints it once;
 * otherwise returns undefined.
 */
export async function ensureAdminPassword(
  ctx: ServerContext,
  configured?: string,
): Promise<string | undefined> {
  const stored = await ctx.store.getSetting(PASSWORD_SETTING);
  if (configured !== undefined && configured !== '') {
    if (configured.length < MIN_PASSWORD_LENGTH) {
      throw new Error(
        `adminPassword / ${PASSWORD_ENV}: the admin password must have at least ${MIN_PASSWORD_LENGTH} characters`,
      );
    }
    if (stored === undefined || !(await verifyPassword(configured, stored))) {
      await ctx.store.setSetting(PASSWORD_SETTING, await hashPassword(configured));
    }
    return undefined;
  }
  if (stored !== undefined) return undefined;
  const generated = generatePassword();
  await ctx.store.setSetting(PASSWORD_SETTING, await hashPassword(generated));
  return generated;
}

export interface ApiTokenInfo {
  id: string;
  name: string;
  createdAt: string;
}

interface StoredToken extends ApiTokenInfo {
  /** SHA-256 of the token, base64url. */
  hash: string;
}

export type Principal = { kind: 'session' } | { kind: 'password' } | { kind: 'token'; tokenId: string };

export type AuthResult =
  | { ok: true; principal: Principal }
  | { ok: false; status: 401 | 429; message: string; retryAfterSeconds?: number };

/** Sessions, failure counting and credential checks; one per server process. */
export class Auth {
  private readonly failures = new Map<string, number[]>(); // client IP → failure times (ms)
  /** SHA-256 of the last password that verified, with the hash it verified against (saves scrypt). */
  private verifiedPassword?: { digest: Buffer; against: string };

  constructor(private readonly ctx: ServerContext) {}

  private nowMs(): number {
    return this.ctx.now().getTime();
  }

  /** Seconds until the client may try again, or 0 when it is not blocked. */
  blockedFor(ip: string): number {
    const since = this.nowMs() - FAILURE_WINDOW_SECONDS * 1000;
    const recent = (this.failures.get(ip) ?? []).filter((t) => t > since);
    if (recent.length === 0) this.failures.delete(ip);
    else this.failures.set(ip, recent);
    if (recent.length < MAX_FAILURES) return 0;
    return Math.max(1, Math.ceil((recent[0]! - since) / 1000));
  }

  private recordFailure(ip: string): void {
    // Bounded memory: forget every address when too many are tracked.
    if (this.failures.size >= MAX_TRACKED_ADDRESSES) this.failures.clear();
    const list = this.failures.get(ip) ?? [];
    list.push(this.nowMs());
    this.failures.set(ip, list.slice(-MAX_FAILURES));
    this.ctx.logger.warn({ clientIp: ip }, 'failed admin authentication');
  }

  async checkPassword(password: string): Promise<boolean> {
    const stored = await this.ctx.store.getSetting(PASSWORD_SETTING);
    if (stored === undefined) return false;
    const digest = sha256(password);
    const cached = this.verifiedPassword;
    if (cached && cached.against === stored && timingSafeEqual(cached.digest, digest)) return true;
    const ok = await verifyPassword(password, stored);
    if (ok) this.verifiedPassword = { digest, against: stored };
    return ok;
  }

  /** POST /api/login: the password, rate-limited per client IP; returns a new session id. */
  async login(
    ip: string,
    password: string,
  ): Promise<{ ok: true; sessionId: string } | Extract<AuthResult, { ok: false }>> {
    const wait = this.blockedFor(ip);
    if (wait > 0) return tooMany(wait);
    if (!(await this.checkPassword(password))) {
      this.recordFailure(ip);
      return { ok: false, status: 401, message: 'wrong password' };
    }
    return { ok: true, sessionId: await this.createSession() };
  }

  /** sha256(session id) base64url → expiry (ms since the epoch). */
  private async readSessions(): Promise<Map<string, number>> {
    const raw = await this.ctx.store.getSetting(SESSIONS_SETTING);
    const sessions = new Map<string, number>();
    if (raw === undefined) return sessions;
    try {
      const parsed = JSON.parse(raw) as unknown;
      if (typeof parsed === 'object' && parsed !== null) {
        for (const [key, expiry] of Object.entries(parsed))
          if (typeof expiry === 'number') sessions.set(key, expiry);
      }
    } catch {
      // A damaged entry only logs everyone out.
    }
    return sessions;
  }

  /** Writes the sessions back without the expired ones, and at most MAX_SESSIONS (the newest). */
  private async writeSessions(sessions: Map<string, number>): Promise<void> {
    const now = this.nowMs();
    const live = [...sessions].filter(([, expiry]) => expiry > now).sort((a, b) => b[1] - a[1]);
    await this.ctx.store.setSetting(
      SESSIONS_SETTING,
      JSON.stringify(Object.fromEntries(live.slice(0, MAX_SESSIONS))),
    );
  }

  async createSession(): Promise<string> {
    const id = randomBytes(32).toString('base64url');
    const sessions = await this.readSessions();
    sessions.set(sessionKey(id), this.nowMs() + SESSION_SECONDS * 1000);
    await this.writeSessions(sessions);
    return id;
  }

  async endSession(id: string): Promise<void> {
    const sessions = await this.readSessions();
    if (sessions.delete(sessionKey(id))) await this.writeSessions(sessions);
  }

  /** Logs every session out (after a password change). */
  async endAllSessions(): Promise<void> {
    await this.ctx.store.setSetting(SESSIONS_SETTING, '{}');
  }

  /** The session id is looked up by its SHA-256, so the lookup time says nothing about the id. */
  async sessionValid(id: string): Promise<boolean> {
    const expiry = (await this.readSessions()).get(sessionKey(id));
    return expiry !== undefined && expiry > this.nowMs();
  }

  /** Cookie session or `Authorization: Bearer <password or API token>`. */
  async authenticate(req: FastifyRequest): Promise<AuthResult> {
    const header = req.headers.authorization;
    if (header !== undefined) {
      const match = /^Bearer +(\S+)\s*$/i.exec(header);
      if (!match) return { ok: false, status: 401, message: 'Authorization must be "Bearer <token>"' };
      const wait = this.blockedFor(req.ip);
      if (wait > 0) return tooMany(wait);
      const secret = match[1]!;
      const tokenId = await this.tokenId(secret);
      if (tokenId !== undefined) return { ok: true, principal: { kind: 'token', tokenId } };
      if (await this.checkPassword(secret)) return { ok: true, principal: { kind: 'password' } };
      this.recordFailure(req.ip);
      return { ok: false, status: 401, message: 'bearer token not accepted' };
    }
    const session = readCookie(req.headers.cookie, SESSION_COOKIE);
    if (session !== undefined && (await this.sessionValid(session)))
      return { ok: true, principal: { kind: 'session' } };
    return { ok: false, status: 401, message: 'log in first (session cookie or Authorization: Bearer)' };
  }

  // ---- API tokens ----

  private async storedTokens(): Promise<StoredToken[]> {
    const raw = await this.ctx.store.getSetting(TOKENS_SETTING);
    if (raw === undefined) return [];
    try {
      const parsed = JSON.parse(raw) as unknown;
      return Array.isArray(parsed) ? (parsed as StoredToken[]) : [];
    } catch {
      return [];
    }
  }

  private async tokenId(secret: string): Promise<string | undefined> {
    if (!secret.startsWith(TOKEN_PREFIX)) return undefined;
    const digest = sha256(secret);
    let found: string | undefined;
    // Compare against every token so the time does not depend on which one matched.
    for (const token of await this.storedTokens()) {
      const hash = Buffer.from(token.hash, 'base64url');
      if (hash.length === digest.length && timingSafeEqual(hash, digest)) found = token.id;
    }
    return found;
  }

  async listTokens(): Promise<ApiTokenInfo[]> {
    return (await this.storedTokens()).map(({ id, name, createdAt }) => ({ id, name, createdAt }));
  }

  /** Creates a token; the secret is returned only here. */
  async createToken(name: string): Promise<ApiTokenInfo & { token: string }> {
    const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const info: ApiTokenInfo = { id: randomUUID(), name, createdAt: this.ctx.now().toISOString() };
    const tokens = await this.storedTokens();
    tokens.push({ ...info, hash: sha256(token).toString('base64url') });
    await this.ctx.store.setSetting(TOKENS_SETTING, JSON.stringify(tokens));
    return { ...info, token };
  }

  async deleteToken(id: string): Promise<boolean> {
    const tokens = await this.storedTokens();
    const kept = tokens.filter((t) => t.id !== id);
    if (kept.length === tokens.length) return false;
    await this.ctx.store.setSetting(TOKENS_SETTING, JSON.stringify(kept));
    return true;
  }

  /** Changes the admin password (checked first) and logs every session out. */
  async changePassword(
    ip: string,
    current: string,
    next: string,
  ): Promise<{ ok: true } | Extract<AuthResult, { ok: false }>> {
    const wait = this.blockedFor(ip);
    if (wait > 0) return tooMany(wait);
    if (!(await this.checkPassword(current))) {
      this.recordFailure(ip);
      return { ok: false, status: 401, message: 'current password is wrong' };
    }
    await this.ctx.store.setSetting(PASSWORD_SETTING, await hashPassword(next));
    this.verifiedPassword = undefined;
    await this.endAllSessions();
    return { ok: true };
  }
}

function sessionKey(id: string): string {
  return sha256(id).toString('base64url');
}

function tooMany(retryAfterSeconds: number): Extract<AuthResult, { ok: false }> {
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
