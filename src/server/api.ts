// The JSON API under /api and the dashboard assets at / and /assets/ of `mxguard serve`.
//
// Everything here needs the admin (session cookie or bearer token, see auth.ts) except the routes
// marked public in openapi.ts (login and the OpenAPI document itself) and the static assets, which
// hold no data. CSRF: the session cookie is SameSite=Strict, a state-changing request must carry
// Content-Type application/json (or a report type for the import), which a cross-site form cannot
// send, and an Origin header, when sent, must name this host.
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
import { z } from 'zod';
import { formatStsRecord } from '../mtasts/record.js';
import { policyUrl } from '../mtasts/url.js';
import { buildRecordSet } from '../records/build.js';
import { RecordsError, type RecordsField } from '../records/error.js';
import { formatRecords } from '../records/format.js';
import { domainKey } from '../store/domain-rules.js';
import { decodeCursor, encodeCursor, REPORT_DETAIL_MAX_BYTES, takePage } from '../store/paging.js';
import { type BreakdownKey, type Domain as StoredDomain, StoreError } from '../store/types.js';
import {
  Auth,
  clearedSessionCookie,
  readCookie,
  SESSION_COOKIE,
  sendAuthFailure,
  sessionCookie,
} from './auth.js';
import type { ServerContext } from './context.js';
import { classifyUserAgent } from './fetchlog.js';
import { adminHostGuard, adminHostNames } from './hosts.js';
import { ingestDeps, ingestReport, refusedForSize } from './ingest.js';
import { type PublishedIdStatus, publishedIdStatus } from './livecheck.js';
import {
  DomainCreateRequest,
  type DomainStatsView,
  DomainUpdateRequest,
  type DomainView,
  type FetchLogView,
  IMPORT_CONTENT_TYPES,
  LoginRequest,
  OPERATIONS,
  openApiDocument,
  PAGE_LIMIT_DEFAULT,
  PAGE_LIMIT_MAX,
  PasswordChangeRequest,
  type RecordSetView,
  TokenCreateRequest,
} from './openapi.js';
import { DecoderBusyError } from './report-decoder.js';

/** A request the API refuses, with its HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly issues?: { path: string; message: string }[],
  ) {
    super(message);
  }
}

/** Fastify route URLs (`/api/domains/:name`) that need no authentication. */
const PUBLIC_ROUTES = new Set(
  OPERATIONS.filter((op) => op.public).map((op) => op.path.replace(/\{(\w+)\}/g, ':$1')),
);
const IMPORT_ROUTE = '/api/reports/import';
const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const DAY_MS = 86_400_000;
/** Query of every list: page size and the cursor of the page before (`offset` is gone). */
const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(PAGE_LIMIT_MAX).default(PAGE_LIMIT_DEFAULT),
  cursor: z.string().min(1).max(400).optional(),
  offset: z.never({ error: 'replaced by cursor: pass the nextCursor of the page before' }).optional(),
});

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

/** The dashboard files: src/server/web next to this module, or from dist/server/ the source tree. */
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
    const route = req.routeOptions.url ?? '';
    if (STATE_CHANGING.has(req.method)) checkCsrf(req, route);
    if (PUBLIC_ROUTES.has(route)) return;
    const result = await auth.authenticate(req);
    if (!result.ok) return sendAuthFailure(reply, result);
    req.principal = result.principal.kind;
  });

  // ---- auth ----

  api.get('/openapi.json', async () => openApiDocument());

  api.post('/login', async (req, reply) => {
    const { password } = parse(LoginRequest, req.body);
    const result = await auth.login(req.ip, password);
    if (!result.ok) return sendAuthFailure(reply, result);
    reply.header('set-cookie', sessionCookie(result.sessionId, req.protocol === 'https'));
    return { authenticated: true, via: 'session' };
  });

  api.post('/logout', async (req, reply) => {
    const session = readCookie(req.headers.cookie, SESSION_COOKIE);
    if (session !== undefined) await auth.endSession(session);
    reply.header('set-cookie', clearedSessionCookie(req.protocol === 'https'));
    return reply.code(204).send();
  });

  api.get('/session', async (req) => ({ authenticated: true, via: req.principal ?? 'session' }));

  api.post('/password', async (req, reply) => {
    const { current, next } = parse(PasswordChangeRequest, req.body);
    const result = await auth.changePassword(req.ip, current, next);
    if (!result.ok) return sendAuthFailure(reply, result);
    reply.header('set-cookie', clearedSessionCookie(req.protocol === 'https'));
    return reply.code(204).send();
  });

  api.get('/tokens', async () => ({ tokens: await auth.listTokens() }));

  api.post('/tokens', async (req, reply) => {
    const { name } = parse(TokenCreateRequest, req.body);
    return reply.code(201).send(await auth.createToken(name));
  });

  api.delete<{ Params: { id: string } }>('/tokens/:id', async (req, reply) => {
    if (!(await auth.deleteToken(req.params.id))) throw new ApiError(404, `no API token ${req.params.id}`);
    return reply.code(204).send();
  });

  // ---- domains ----

  api.get('/domains', async (req) => {
    const { limit, cursor } = parse(PageQuery, req.query);
    const after = cursor === undefined ? undefined : decodeCursor('domains', cursor)[0];
    const today = utcDay(ctx.now());
    const since = utcDay(new Date(ctx.now().getTime() - 29 * DAY_MS));
    // By name; the admin adds domains, so the whole list is read and only the page is looked up.
    const all = await ctx.store.listDomains();
    const rest = after === undefined ? all : all.filter((d) => d.name > after);
    const views = await Promise.all(
      rest.slice(0, limit).map(async (d) => {
        const [daily, published] = await Promise.all([
          ctx.store.dailyCounts(d.name, since, today),
          publishedIdStatus(ctx, d.name),
        ]);
        return { ...domainView(d, published), last30Days: sumCounts(daily) };
      }),
    );
    const page = takePage(views, {
      more: rest.length > limit,
      total: all.length,
      cursorOf: (i) => encodeCursor('domains', [views[i]!.name]),
    });
    return { domains: page.items, total: page.total, nextCursor: page.nextCursor, limit };
  });

  api.post('/domains', async (req, reply) => {
    const body = parse(DomainCreateRequest, req.body);
    const name = domainKey(body.name);
    const settings = {
      mode: body.mode,
      mx: body.mx,
      maxAge: body.maxAge,
      rua: body.rua ?? [`mailto:tlsrpt@${name}`],
    };
    const added = await ctx.store.addDomain(name, settings, ctx.now());
    const view = domainView(added);
    return reply.code(201).send({
      domain: view,
      policyIdChanged: true,
      publish: view.mtaStsRecord,
      message: `added ${added.name}: publish the TXT record ${view.mtaStsRecord.name} "${view.mtaStsRecord.value}" and the records of GET /api/domains/${added.name}/records`,
    });
  });

  api.get<{ Params: { name: string } }>('/domains/:name', async (req) => {
    const d = await existingDomain(ctx, req.params.name);
    return domainView(d, await publishedIdStatus(ctx, d.name));
  });

  api.patch<{ Params: { name: string } }>('/domains/:name', async (req) => {
    const patch = parse(DomainUpdateRequest, req.body);
    const before = await existingDomain(ctx, req.params.name);
    const after = await ctx.store.updateDomain(before.name, patch, ctx.now());
    const view = domainView(after);
    const changed = after.policyId !== before.policyId;
    const ruaChanged = patch.rua !== undefined && patch.rua.join(' ') !== before.rua.join(' ');
    const messages = [
      changed
        ? `the policy changed, so its id is now ${after.policyId}: publish the TXT record ${view.mtaStsRecord.name} "${view.mtaStsRecord.value}" (senders fetch the new policy only once they see the new id)`
        : 'saved; the policy text is unchanged, so its id stays',
      ...(ruaChanged ? [`rua changed: publish the new _smtp._tls.${after.name} TXT record`] : []),
    ];
    return {
      domain: view,
      policyIdChanged: changed,
      ...(changed ? { publish: view.mtaStsRecord } : {}),
      message: messages.join('; '),
    };
  });

  api.delete<{ Params: { name: string } }>('/domains/:name', async (req, reply) => {
    if (!(await ctx.store.removeDomain(domainKey(req.params.name)))) {
      throw new ApiError(404, `no domain ${req.params.name}`);
    }
    return reply.code(204).send();
  });

  api.get<{ Params: { name: string } }>('/domains/:name/policy', async (req) => {
    const d = await existingDomain(ctx, req.params.name);
    return {
      domain: d.name,
      policyId: d.policyId,
      policyText: d.policyText,
      policyUrl: storedPolicyUrl(d.name),
      history: await ctx.store.policyHistory(d.name),
    };
  });

  api.get<{ Params: { name: string } }>('/domains/:name/records', async (req): Promise<RecordSetView> => {
    const query = parse(
      z.object({
        policyHostTarget: z.string().max(2000).optional(),
        ttl: z.coerce.number().int().min(0).max(2147483647).default(3600),
      }),
      req.query,
    );
    const d = await existingDomain(ctx, req.params.name);
    return recordSetFor(d, query, ctx.now());
  });

  api.get<{ Params: { name: string } }>('/domains/:name/stats', async (req): Promise<DomainStatsView> => {
    const { days } = parse(
      z.object({ days: z.coerce.number().int().min(1).max(366).default(30) }),
      req.query,
    );
    const d = await existingDomain(ctx, req.params.name);
    const now = ctx.now();
    const until = utcDay(now);
    const since = utcDay(new Date(now.getTime() - (days - 1) * DAY_MS));
    const stored = await ctx.store.dailyCounts(d.name, since, until);
    const daily = fillDays(stored, since, days);
    const breakdown = async (by: BreakdownKey) => ctx.store.failureBreakdown(d.name, by, since);
    const [resultType, organization, receivingMxHostname, sendingMtaIp] = await Promise.all([
      breakdown('resultType'),
      breakdown('organization'),
      breakdown('receivingMxHostname'),
      breakdown('sendingMtaIp'),
    ]);
    return {
      domain: d.name,
      since,
      until,
      daily,
      totals: sumCounts(daily),
      failures: { resultType, organization, receivingMxHostname, sendingMtaIp },
    };
  });

  api.get<{ Params: { name: string } }>('/domains/:name/fetches', async (req): Promise<FetchLogView> => {
    const { limit, cursor } = parse(PageQuery, req.query);
    const d = await existingDomain(ctx, req.params.name);
    const page = await ctx.store.listFetches(d.name, { limit, cursor });
    const fetches = page.items.map((f) => ({
      at: f.at,
      clientIp: f.clientIp,
      userAgent: f.userAgent,
      client: classifyUserAgent(f.userAgent),
    }));
    const clients = new Map<string, { client: string; count: number; lastAt: string }>();
    for (const f of fetches) {
      const entry = clients.get(f.client) ?? { client: f.client, count: 0, lastAt: f.at };
      entry.count += 1;
      if (f.at > entry.lastAt) entry.lastAt = f.at;
      clients.set(f.client, entry);
    }
    return {
      domain: d.name,
      fetches,
      clients: [...clients.values()].sort(
        (a, b) => b.count - a.count || (a.client < b.client ? -1 : a.client > b.client ? 1 : 0),
      ),
      total: page.total,
      nextCursor: page.nextCursor,
      limit,
    };
  });

  // ---- reports ----

  api.get('/reports', async (req) => {
    const query = parse(PageQuery.extend({ domain: z.string().min(1).max(253).optional() }), req.query);
    const page = await ctx.store.listReports(query);
    return { reports: page.items, total: page.total, nextCursor: page.nextCursor, limit: query.limit };
  });

  api.get<{ Params: { id: string } }>('/reports/:id', async (req, reply) => {
    const id = reportIdParam(req.params.id);
    const report =
      id === undefined ? undefined : await ctx.store.getReport(id, { maxBytes: REPORT_DETAIL_MAX_BYTES });
    if (!report) throw new ApiError(404, `no report ${req.params.id}`);
    if ('tooLarge' in report) {
      const { tooLarge, ...summary } = report;
      return reply.code(413).send({
        statusCode: 413,
        error: STATUS_TEXT[413],
        message: `report ${id} is stored with ${tooLarge.bytes} bytes, more than the ${tooLarge.maxBytes} this view shows; delete it, or read it with: mxguard reports show ${id} --json`,
        code: 'REPORT_TOO_LARGE',
        bytes: tooLarge.bytes,
        maxBytes: tooLarge.maxBytes,
        report: summary,
      });
    }
    return report;
  });

  api.delete<{ Params: { id: string } }>('/reports/:id', async (req, reply) => {
    const id = reportIdParam(req.params.id);
    const deleted = id === undefined ? [] : await ctx.store.deleteReports([id]);
    if (deleted.length === 0) throw new ApiError(404, `no report ${req.params.id}`);
    return reply.code(204).send();
  });

  api.get('/rejected', async (req) => {
    const query = parse(PageQuery, req.query);
    const page = await ctx.store.listRejected(query);
    return { rejected: page.items, total: page.total, nextCursor: page.nextCursor, limit: query.limit };
  });

  await api.register(async (upload) => {
    // Raw bytes: whatever parsers the parent registered do not apply here.
    upload.removeAllContentTypeParsers();
    upload.addContentTypeParser(
      IMPORT_CONTENT_TYPES,
      { parseAs: 'buffer', bodyLimit: ctx.config.intake.maxBytes },
      (_req, body, done) => done(null, body),
    );
    upload.post('/reports/import', async (req, reply) => {
      const { filename } = parse(z.object({ filename: z.string().max(255).optional() }), req.query);
      let result: Awaited<ReturnType<typeof ingestReport>>;
      try {
        result = await ingestReport(ingestDeps(ctx), req.body as Buffer, {
          source: 'import',
          dkim: 'unverified',
          submitter: filename ?? 'dashboard upload',
        });
      } catch (err) {
        if (!(err instanceof DecoderBusyError)) throw err;
        reply.header('retry-after', String(err.retryAfterSeconds));
        return reply.code(503).send({
          statusCode: 503,
          error: STATUS_TEXT[503],
          message: err.message,
          code: err.code,
        });
      }
      if ('rejected' in result) {
        // The same answers as POST /tlsrpt: 413 for a cap (size, field length, decode time/memory).
        const status = refusedForSize(result.code) ? 413 : 400;
        return reply.code(status).send({
          statusCode: status,
          error: STATUS_TEXT[status],
          message: result.rejected,
          code: result.code,
          rejectedId: result.rejectedId,
        });
      }
      return result;
    });
  });
}

declare module 'fastify' {
  interface FastifyRequest {
    /** How the admin authenticated (set by the API's onRequest hook). */
    principal?: 'session' | 'password' | 'token';
  }
}

/** CSRF guard for POST/PUT/PATCH/DELETE (see the header comment). */
function checkCsrf(req: FastifyRequest, route: string): void {
  const origin = req.headers.origin;
  if (origin !== undefined && !sameHost(origin, req.host)) {
    throw new ApiError(403, `cross-origin request from ${origin} refused`);
  }
  if (req.method === 'DELETE') return; // no body; a cross-site page cannot send DELETE without CORS
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (route === IMPORT_ROUTE) {
    if (!IMPORT_CONTENT_TYPES.includes(type)) {
      throw new ApiError(415, `Content-Type must be one of ${IMPORT_CONTENT_TYPES.join(', ')}`);
    }
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

function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
  throw new ApiError(
    400,
    issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; '),
    issues,
  );
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

function sendError(err: unknown, req: FastifyRequest, reply: FastifyReply, ctx: ServerContext): FastifyReply {
  let status = 500;
  let message = 'internal error';
  let issues: { path: string; message: string }[] | undefined;
  if (err instanceof ApiError) {
    status = err.statusCode;
    message = err.message;
    issues = err.issues;
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
  return reply.code(status).send({
    statusCode: status,
    error: STATUS_TEXT[status] ?? 'Error',
    message,
    ...(issues ? { issues } : {}),
  });
}

// ---------------------------------------------------------------------------------------------
// views

/** A report id from the URL: 1 to 16 digits, no leading zero; anything else is undefined (a 404). */
function reportIdParam(text: string): number | undefined {
  const id = /^[1-9]\d{0,15}$/.test(text) ? Number(text) : Number.NaN;
  return Number.isSafeInteger(id) ? id : undefined;
}

/** A stored domain passed validDomainName, so it has a policy URL (RFC 8461 §3.3). */
function storedPolicyUrl(domain: string): string {
  const url = policyUrl(domain);
  if (url === undefined) throw new Error(`stored domain ${domain} has no policy URL`);
  return url;
}

async function existingDomain(ctx: ServerContext, name: string): Promise<StoredDomain> {
  const d = await ctx.store.getDomain(domainKey(name));
  if (!d) throw new ApiError(404, `no domain ${name}`);
  return d;
}

/** A domain as the API shows it; `published` when the live `_mta-sts` lookup was made. */
function domainView(d: StoredDomain, published?: PublishedIdStatus): DomainView {
  return {
    name: d.name,
    mode: d.mode,
    mx: d.mx,
    maxAge: d.maxAge,
    rua: d.rua,
    policyId: d.policyId,
    policyText: d.policyText,
    policyUrl: storedPolicyUrl(d.name),
    createdAt: d.createdAt,
    updatedAt: d.updatedAt,
    // RFC 8461 §3.1: the TXT record at _mta-sts.<domain> announcing the current policy id.
    mtaStsRecord: {
      name: `_mta-sts.${d.name}`,
      type: 'TXT',
      value: formatStsRecord({ id: d.policyId, extensions: [] }),
    },
    ...(published ? { published } : {}),
  };
}

/** A record-set input field as the API calls it: the records query parameter, else the domain's field. */
function apiFieldName(field: RecordsField): string {
  return field === 'policyHostTargets' ? 'policyHostTarget' : field;
}

/** The records of `mxguard records` for a stored domain, with the stored policy id. */
function recordSetFor(
  d: StoredDomain,
  query: { policyHostTarget?: string; ttl: number },
  now: Date,
): RecordSetView {
  const targets = query.policyHostTarget
    ?.split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  const set = buildRecordSet(
    {
      domain: d.name,
      mode: d.mode,
      maxAge: d.maxAge,
      ttl: query.ttl,
      mx: d.mx,
      id: d.policyId,
      rua: d.rua,
      policyHostTargets: targets,
    },
    now,
    apiFieldName,
  );
  return { ...set, bind: formatRecords(set, 'bind'), powershell: formatRecords(set, 'powershell') };
}

function utcDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

function sumCounts(rows: { successful: number; failed: number }[]): { successful: number; failed: number } {
  let successful = 0;
  let failed = 0;
  for (const r of rows) {
    successful += r.successful;
    failed += r.failed;
  }
  return { successful, failed };
}

/** Every day from `since` on, with zeros where no report started. */
function fillDays(
  rows: { day: string; successful: number; failed: number }[],
  since: string,
  days: number,
): { day: string; successful: number; failed: number }[] {
  const byDay = new Map(rows.map((r) => [r.day, r]));
  const start = Date.parse(`${since}T00:00:00Z`);
  const out = [];
  for (let i = 0; i < days; i++) {
    const day = utcDay(new Date(start + i * DAY_MS));
    const row = byDay.get(day);
    out.push({ day, successful: row?.successful ?? 0, failed: row?.failed ?? 0 });
  }
  return out;
}
