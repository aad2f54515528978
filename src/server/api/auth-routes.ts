// The API routes of logging in, the session, the admin password and API tokens (the checks
// themselves are in src/server/auth.ts).
import { clearedSessionCookie, readCookie, SESSION_COOKIE, sendAuthFailure, sessionCookie } from '../auth.js';
import { ApiError, defineRoute } from './route.js';
import {
  ApiErrorBody,
  ApiTokenCreated,
  LoginRequest,
  PasswordChangeRequest,
  SessionInfo,
  TokenCreateRequest,
  TokenList,
  TokenParams,
} from './schemas.js';

// The password throttle of auth.ts: failed or in-flight password attempts per client address.
const throttled = {
  description:
    'too many failed password attempts from this client address (IPv4 address or IPv6 /64) in 15 minutes (Retry-After)',
  schema: ApiErrorBody,
};

export const AUTH_ROUTES = [
  defineRoute({
    method: 'POST',
    path: '/api/login',
    summary: 'Log in with the admin password; sets an HttpOnly SameSite=Strict session cookie',
    tag: 'auth',
    public: true,
    body: LoginRequest,
    responses: {
      200: { description: 'logged in (Set-Cookie: mxguard_session)', schema: SessionInfo },
      401: {
        description: 'wrong password, or the password was changed while this login was checked',
        schema: ApiErrorBody,
      },
      429: throttled,
    },
  }).handle(async ({ body, req, reply, auth }) => {
    const result = await auth.login(req.ip, body.password);
    if (!result.ok) return sendAuthFailure(reply, result);
    reply.header('set-cookie', sessionCookie(result.sessionId, req.protocol === 'https'));
    return { status: 200, body: { authenticated: true, via: 'session' } };
  }),

  defineRoute({
    method: 'POST',
    path: '/api/logout',
    summary: 'End the session and clear its cookie',
    tag: 'auth',
    responses: { 204: { description: 'logged out' } },
  }).handle(async ({ req, reply, auth }) => {
    const session = readCookie(req.headers.cookie, SESSION_COOKIE);
    if (session !== undefined) await auth.endSession(session);
    reply.header('set-cookie', clearedSessionCookie(req.protocol === 'https'));
    return { status: 204 };
  }),

  defineRoute({
    method: 'GET',
    path: '/api/session',
    summary: 'Who is asking: 200 when the cookie or bearer token is accepted',
    tag: 'auth',
    responses: { 200: { description: 'authenticated', schema: SessionInfo } },
  }).handle(async ({ req }) => {
    return { status: 200, body: { authenticated: true, via: req.principal ?? 'session' } };
  }),

  defineRoute({
    method: 'POST',
    path: '/api/password',
    summary: 'Change the admin password (logs every session out)',
    tag: 'auth',
    body: PasswordChangeRequest,
    responses: {
      204: { description: 'changed' },
      401: { description: 'not logged in, or the current password is wrong', schema: ApiErrorBody },
      429: throttled,
    },
  }).handle(async ({ body, req, reply, auth }) => {
    const result = await auth.changePassword(req.ip, body.current, body.next);
    if (!result.ok) return sendAuthFailure(reply, result);
    reply.header('set-cookie', clearedSessionCookie(req.protocol === 'https'));
    return { status: 204 };
  }),

  defineRoute({
    method: 'GET',
    path: '/api/tokens',
    summary: 'List API tokens (without their secrets)',
    tag: 'tokens',
    responses: { 200: { description: 'the tokens', schema: TokenList } },
  }).handle(async ({ auth }) => {
    return { status: 200, body: { tokens: await auth.listTokens() } };
  }),

  defineRoute({
    method: 'POST',
    path: '/api/tokens',
    summary: 'Create an API token for scripts; the secret is shown only in this answer',
    tag: 'tokens',
    body: TokenCreateRequest,
    responses: {
      201: { description: 'created', schema: ApiTokenCreated },
      400: { description: 'invalid request, or there are 100 tokens already', schema: ApiErrorBody },
    },
  }).handle(async ({ body, auth }) => {
    return { status: 201, body: await auth.createToken(body.name) };
  }),

  defineRoute({
    method: 'DELETE',
    path: '/api/tokens/{id}',
    summary: 'Revoke an API token',
    tag: 'tokens',
    params: TokenParams,
    responses: {
      204: { description: 'revoked' },
      404: { description: 'no such token', schema: ApiErrorBody },
    },
  }).handle(async ({ params, auth }) => {
    if (!(await auth.deleteToken(params.id))) throw new ApiError(404, `no API token ${params.id}`);
    return { status: 204 };
  }),
];
