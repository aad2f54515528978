// The JSON API under /api and the dashboard assets at / and /assets/ of `mxguard serve`.
//
// The routes are declared once in src/server/api/ (input and answer schemas, handler, documentation);
// this module registers them with what every route shares: the admin host guard, security headers,
// authentication, the CSRF rules and the error answers (503 STORE_UNAVAILABLE with Retry-After while
// the database cannot be reached: store-unavailable.ts).
//
// Everything here needs the admin (session cookie or bearer token, see auth.ts) except the routes
// declared public (login and the OpenAPI document itself) and the static assets, which hold no
// data. CSRF: the session cookie is SameSite=Strict, a state-changing request must carry
// Content-Type application/json (or a type of the route's raw body, the report import), which a
// cross-site form cannot send, and an Origin header, when sent, must name this host.
//
// Report contents are attacker-controlled: they are returned verbatim as JSON strings, and the
// dashboard only ever renders them as text under a strict Content-Security-Policy.
//
// Every list is a page (limit, opaque cursor, total; src/store/paging.ts) of at most 1 MiB with
// long text clipped; a report's whole values are in its detail view, which refuses (413) a report
// stored larger than REPORT_DETAIL_MAX_BYTES: an older mxguard stored megabyte strings.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RecordsError } from '../records/error.js';
import { StoreError } from '../store/types.js';
import { ApiError, errorBody, registerRoute } from './api/route.js';
import { API_ROUTES } from './api/routes.js';
import { apiFieldName } from './api/views.js';
import { Auth, sendAuthFailure } from './auth.js';
import type { ServerContext } from './context.js';
import { adminHostGuard, adminHostNames } from './hosts.js';
import {
  isStoreUnavailable,
  logStoreUnavailable,
  replyUnavailable,
  STORE_UNAVAILABLE_MESSAGE,
} from './store-unavailable.js';

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/**
 * Registers the API and the dashboard on `app` (in their own encapsulated plugin); returns the Auth
 * it checks credentials with (app.ts guards /metrics with it too).
 */
export function registerApi(app: FastifyInstance, ctx: ServerContext): Auth {
  const auth = new Auth(ctx);
  const assets = loadWebAssets();
  app.register(async (scope) => {
    // Only on admin host names (DNS rebinding), never on a policy host name (hosts.ts).
    scope.addHook('onRequest', adminHostGuard(adminHostNames(ctx.config)));
    scope.addHook('onSend', async (req, reply, payload) => {
      reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
      reply.header('x-content-type-options', 'nosniff');
      reply.header('x-frame-options', 'DENY');
      reply.header('referrer-policy', 'no-referrer');
      reply.header('cross-origin-opener-policy', 'same-origin');
      if (!reply.hasHeader('cache-control')) {
        reply.header('cache-control', req.url.startsWith('/api/') ? 'no-store' : 'no-cache');
      }
      return payload;
    });
    scope.get('/', (_req, reply) => sendAsset(reply, assets.get('index.html')!));
    scope.get<{ Params: { file: string } }>('/assets/:file', (req, reply) => {
      const asset = assets.get(req.params.file);
      if (!asset || req.params.file === 'index.html') throw new ApiError(404, 'no such asset');
      return sendAsset(reply, asset);
    });
    await scope.register(async (api) => apiRoutes(api, ctx, auth), { prefix: '/api' });
  });
  return auth;
}

// ---------------------------------------------------------------------------------------------
// dashboard assets

interface Asset {
  body: Buffer;
  type: string;
}

const ASSET_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** src/server/web when run from source, dist/server/web (copied by `npm run build`) when built. */
export function webDirectory(): string {
  const dir = fileURLToPath(new URL('./web/', import.meta.url));
  if (!existsSync(join(dir, 'index.html')))
    throw new Error(`dashboard assets not found in ${dir} (run npm run build)`);
  return dir;
}

/** Read once at start: a fixed set of names, so no request path ever reaches the file system. */
function loadWebAssets(): Map<string, Asset> {
  const dir = webDirectory();
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = ASSET_TYPES[extname(name)];
    if (type) assets.set(name, { body: readFileSync(join(dir, name)), type });
  }
  return assets;
}

function sendAsset(reply: FastifyReply, asset: Asset): FastifyReply {
  return reply.type(asset.type).send(asset.body);
}

// ---------------------------------------------------------------------------------------------
// the API

async function apiRoutes(api: FastifyInstance, ctx: ServerContext, auth: Auth): Promise<void> {
  api.setErrorHandler((err, req, reply) => sendError(err, req, reply, ctx));
  api.setNotFoundHandler((req, reply) =>
    sendError(new ApiError(404, `no API route ${req.method} ${req.url}`), req, reply, ctx),
  );

  api.addHook('onRequest', async (req, reply) => {
    auth.warnIfForwardedWithoutTrust(req);
    const route = req.routeOptions.config?.apiRoute;
    if (STATE_CHANGING.has(req.method)) checkCsrf(req, route?.raw?.types);
    if (route?.public) return;
    const result = await auth.authenticate(req);
    if (!result.ok) return sendAuthFailure(reply, result);
    req.principal = result.principal.kind;
  });

  for (const route of API_ROUTES) await registerRoute(api, route, { ctx, auth });
}

/** CSRF guard for POST/PUT/PATCH/DELETE (see the header comment). */
/** `rawTypes`: the content types of a route that takes raw bytes instead of JSON. */
function checkCsrf(req: FastifyRequest, rawTypes: readonly string[] | undefined): void {
  const origin = req.headers.origin;
  if (origin !== undefined && !sameHost(origin, req.host)) {
    throw new ApiError(403, `cross-origin request from ${origin} refused`);
  }
  if (req.method === 'DELETE') return; // no body; a cross-site page cannot send DELETE without CORS
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (rawTypes) {
    if (!rawTypes.includes(type))
      throw new ApiError(415, `Content-Type must be one of ${rawTypes.join(', ')}`);
  } else if (type !== 'application/json') {
    throw new ApiError(415, 'Content-Type must be application/json');
  }
}

/** Origin and Host name the same host and port (the Host read with the Origin's scheme for its default port). */
function sameHost(origin: string, host: string): boolean {
  try {
    const o = new URL(origin);
    return o.host === new URL(`${o.protocol}//${host}`).host;
  } catch {
    return false;
  }
}

function sendError(err: unknown, req: FastifyRequest, reply: FastifyReply, ctx: ServerContext): FastifyReply {
  let status = 500;
  let message = 'internal error';
  let issues: { path: string; message: string }[] | undefined;
  if (err instanceof ApiError) {
    status = err.statusCode;
    message = err.message;
    issues = err.issues;
  } else if (isStoreUnavailable(err)) {
    logStoreUnavailable(ctx.logger, err, req.url);
    const body = { ...errorBody(503, STORE_UNAVAILABLE_MESSAGE), code: err.code };
    return replyUnavailable(reply).send(body);
  } else if (err instanceof StoreError && err.code !== 'STORE_IO') {
    status = err.code === 'STORE_DOMAIN_EXISTS' ? 409 : err.code === 'STORE_DOMAIN_UNKNOWN' ? 404 : 400;
    message = err.message;
  } else if (err instanceof RecordsError) {
    // the records route's query parameters are named as in the URL
    status = 400;
    message = err.describe(apiFieldName(err.field));
  } else {
    const code = (err as { statusCode?: unknown }).statusCode;
    if (typeof code === 'number' && code >= 400 && code < 500) {
      status = code;
      message = (err as Error).message;
    }
  }
  if (status >= 500) ctx.logger.error({ err, url: req.url }, 'API request failed');
  return reply.code(status).send({ ...errorBody(status, message), ...(issues ? { issues } : {}) });
}
