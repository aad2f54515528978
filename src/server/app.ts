// The HTTP application of `mxguard serve` (fastify) and its listeners.
//
// Policy hosting, RFC 8461 §3.3: GET https://mta-sts.<domain>/.well-known/mta-sts.txt answers the
// domain's policy with Content-Type text/plain (we add charset=utf-8), chosen by the Host header
// (port and trailing dot dropped, no case); any other host gets 404, and nothing ever redirects
// (§3.3: "HTTP 3xx redirects MUST NOT be followed"). Every GET of a policy is logged in the store's
// fetch log (time, domain, client IP, User-Agent) and counted by fetcher (fetchlog.ts).
// The policies are kept in memory (PolicyCache), so the hot path reads no database: they are re-read
// when the store says a domain changed, through any process on the database (Store.watchDomains:
// PostgreSQL LISTEN/NOTIFY, SQLite's change counter), plus every POLICY_REFRESH_MS in case the feed
// missed something.
//
// Also: /healthz, /metrics (Prometheus; admin host names and login, like the API), HTTP-01 answers
// for ACME (RFC 8555 §8.3) from the files acme.ts writes, TLS-RPT intake (intake.ts, any host) and
// the API and dashboard (api.ts, admin host names only: hosts.ts).
//
// Listeners: the plain HTTP one (local use, or a reverse proxy in front) and optionally HTTPS with
// per-host certificates chosen by SNI (tls.ts). Both hand requests to the same fastify instance,
// after refusing with 400 what breaks RFC 9112 §3.2's Host rules (hosts.ts). Optionally a third one,
// metricsListen, answers only GET /metrics, without login (an operator-only address).
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { formatHostPort, type HostPort } from '../common/host-port.js';
import { classifyUserAgent } from '../mtasts/fetcher.js';
import { POLICY_PATH } from '../mtasts/url.js';
import type { DomainWatch, PolicyFetch, Store } from '../store/types.js';
import { errorBody } from './api/route.js';
import { registerApi } from './api.js';
import { sendAuthFailure } from './auth.js';
import type { ServeSettings } from './config.js';
import type { ServerContext } from './context.js';
import { adminHostGuard, adminHostNames, hostHeaderProblem, policyDomainForHost } from './hosts.js';
import { registerIntake } from './intake.js';
import {
  metricsText,
  registerAlertMetrics,
  registerStoreMetrics,
  type ServerMetrics,
  serverMetrics,
} from './metrics.js';
import {
  HEALTH_TIMEOUT_MS,
  isStoreUnavailable,
  logStoreUnavailable,
  replyUnavailable,
  STORE_HEALTH_MESSAGES,
  STORE_UNAVAILABLE_MESSAGE,
  storeHealth,
} from './store-unavailable.js';
import type { CertificateStore } from './tls.js';

export { policyDomainForHost };

export const ACME_CHALLENGE_PREFIX = '/.well-known/acme-challenge/';
/** The slow safety refresh of the in-memory policies (changes arrive through watchDomains at once). */
export const POLICY_REFRESH_MS = 60_000;
/** Where HTTP-01 key authorizations are kept: one file per token, shared by all processes. */
export const CHALLENGES_SUBDIR = join('acme', 'challenges');
const TEXT_PLAIN = 'text/plain; charset=utf-8';
// RFC 8555 §8.1: a token is base64url.
const CHALLENGE_TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

/** Every domain's policy text, in memory, re-read when the store reports a domain change. */
export class PolicyCache {
  private policies = new Map<string, Buffer>();
  private timer: NodeJS.Timeout | undefined;
  private watch: DomainWatch | undefined;
  private refreshing: Promise<void> | undefined;
  /** The read after the one under way, for changes that came while it ran. */
  private queued: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
    private readonly refreshMs = POLICY_REFRESH_MS,
  ) {}

  get(domain: string): Buffer | undefined {
    return this.policies.get(domain);
  }

  get size(): number {
    return this.policies.size;
  }

  /**
   * Re-read every domain; resolves once a read that started after this call is in memory. A read
   * under way may predate the change that asks for this one: then one more follows it (shared by
   * every call that comes meanwhile).
   */
  refresh(): Promise<void> {
    if (this.refreshing === undefined) {
      this.refreshing = this.load().finally(() => {
        this.refreshing = undefined;
      });
      return this.refreshing;
    }
    this.queued ??= this.refreshing
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.refresh();
      });
    return this.queued;
  }

  /** Follow the store's domain changes (and refresh every refreshMs); then read every domain. */
  async start(): Promise<void> {
    this.watch ??= await this.store.watchDomains(() => this.refreshInBackground());
    this.timer ??= setInterval(() => this.refreshInBackground(), this.refreshMs);
    this.timer.unref();
    await this.refresh();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    const watch = this.watch;
    this.watch = undefined;
    await watch?.stop();
  }

  private refreshInBackground(): void {
    this.refresh().catch((err: Error) =>
      this.logger.error({ err: err.message }, 'cannot re-read the policies; serving the ones in memory'),
    );
  }

  private async load(): Promise<void> {
    const domains = await this.store.listDomains();
    // A watch-only domain's policy is hosted elsewhere: serve answers 404 for it (issue 12).
    const hosted = domains.filter((d) => !d.watchOnly);
    this.policies = new Map(hosted.map((d) => [d.name, Buffer.from(d.policyText, 'utf8')]));
  }
}

const POLICIES_DECORATION = 'mxguardPolicies';

/** The policy cache of an app from buildApp (e.g. to refresh it at once after a change). */
export function policyCacheOf(app: FastifyInstance): PolicyCache {
  return (app as unknown as Record<string, PolicyCache>)[POLICIES_DECORATION]!;
}

export interface AppOptions {
  /** Overrides settings.trustProxy. */
  trustProxy?: ServeSettings['trustProxy'];
  /** Overrides POLICY_REFRESH_MS, the safety refresh (tests). */
  policyRefreshMs?: number;
  /** Where policy fetches are logged (default ctx.store.logFetch; cluster workers relay them). */
  logFetch?: (entry: PolicyFetch) => void;
  /** Overrides HEALTH_TIMEOUT_MS (tests). */
  healthTimeoutMs?: number;
}

/** The fastify app with every route; call `await app.ready()` (startListeners does) before use. */
export function buildApp(ctx: ServerContext, options: AppOptions = {}): FastifyInstance {
  const settings = ctx.config as Partial<ServeSettings>;
  const app = Fastify({
    loggerInstance: ctx.logger,
    // One log line per request would cost more than serving a policy; errors are logged in onError.
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger (with its redaction pass) per request: request.log is the app's logger.
    childLoggerFactory: (logger) => logger,
    trustProxy: options.trustProxy ?? settings.trustProxy ?? false,
  }) as unknown as FastifyInstance;
  const metrics = serverMetrics(ctx.metrics);
  registerAlertMetrics(ctx.metrics, () => ctx.store.openAlerts());
  registerStoreMetrics(
    ctx.metrics,
    async () => (await storeHealth(ctx.store, HEALTH_TIMEOUT_MS)).state === 'ok',
  );
  const policies = new PolicyCache(ctx.store, ctx.logger, options.policyRefreshMs);
  const logFetch = options.logFetch ?? ((entry: PolicyFetch) => ctx.store.logFetch(entry));
  app.decorate(POLICIES_DECORATION, policies);

  app.addHook('onReady', async () => {
    await policies.start();
  });
  app.addHook('onClose', () => policies.stop());
  // Routes without their own error handler (policy hosting's neighbours, /metrics, the dashboard's
  // assets): an unreachable store is 503 (store-unavailable.ts), anything else fastify's default.
  app.setErrorHandler((error, request, reply) => {
    if (!isStoreUnavailable(error)) throw error;
    logStoreUnavailable(ctx.logger, error, request.url);
    metrics.httpErrors.inc({ code: '503' });
    return replyUnavailable(reply).send({
      ...errorBody(503, STORE_UNAVAILABLE_MESSAGE),
      code: error.code,
    });
  });
  app.addHook('onError', async (request, _reply, error) => {
    const code = error.statusCode ?? 500;
    metrics.httpErrors.inc({ code: String(code) });
    if (code >= 500)
      request.log.error({ err: error, method: request.method, url: request.url }, 'request failed');
  });

  app.get(POLICY_PATH, (request, reply) => {
    const domain = policyDomainForHost(request.headers.host);
    const policy = domain === undefined ? undefined : policies.get(domain);
    if (domain === undefined || policy === undefined) {
      metrics.policyUnknownHost.inc();
      return reply.code(404).type(TEXT_PLAIN).send('no MTA-STS policy is hosted for this host name\n');
    }
    if (request.method === 'GET') {
      const userAgent = request.headers['user-agent'] ?? '';
      logFetch({ at: ctx.now().toISOString(), domain, clientIp: request.ip, userAgent });
      metrics.policyFetches.inc({ domain, client: classifyUserAgent(userAgent) });
    }
    return reply.type(TEXT_PLAIN).send(policy);
  });

  app.get<{ Params: { token: string } }>(`${ACME_CHALLENGE_PREFIX}:token`, async (request, reply) => {
    const keyAuthorization = await readChallenge(ctx.config.dataDir, request.params.token);
    if (keyAuthorization === undefined) return reply.code(404).type(TEXT_PLAIN).send('no such challenge\n');
    return reply.type(TEXT_PLAIN).send(keyAuthorization);
  });

  // For load balancers: 200 while the store answers a one-row read, else 503 naming it (the only
  // dependency; policies are served from memory either way).
  app.get('/healthz', async (request, reply) => {
    const store = await storeHealth(ctx.store, options.healthTimeoutMs ?? HEALTH_TIMEOUT_MS);
    if (store.state === 'ok') return { status: 'ok', store: 'ok', domains: policies.size };
    request.log.warn({ err: store.detail }, `/healthz: the store is ${store.state}`);
    if (store.state === 'unavailable') replyUnavailable(reply);
    else reply.code(503);
    return { status: 'error', store: store.state, message: STORE_HEALTH_MESSAGES[store.state] };
  });

  app.register(async (scope) => registerIntake(scope, ctx));
  const auth = registerApi(app, ctx);

  // The same guard and login as the API; metricsListen serves it without login instead.
  app.get('/metrics', { onRequest: adminHostGuard(adminHostNames(ctx.config)) }, async (request, reply) => {
    const result = await auth.authenticate(request);
    if (!result.ok) return sendAuthFailure(reply, result);
    return reply.type(ctx.metrics.contentType).send(await metricsText(ctx.metrics));
  });
  return app;
}

/** The key authorization acme.ts stored for an HTTP-01 token, if any. */
export async function readChallenge(dataDir: string, token: string): Promise<string | undefined> {
  if (!CHALLENGE_TOKEN.test(token)) return undefined;
  try {
    return await readFile(join(dataDir, CHALLENGES_SUBDIR, token), 'utf8');
  } catch {
    return undefined;
  }
}

// ---- listeners ----

export interface ListenOptions {
  listen: HostPort;
  tlsListen?: HostPort;
  /** Needed with tlsListen. */
  certificates?: CertificateStore;
  metrics?: ServerMetrics;
  logger?: Logger;
}

export interface Listeners {
  http: http.Server;
  https?: https.Server;
  /** "http://127.0.0.1:8080", "https://[::1]:8443": where they actually listen (port 0 resolved). */
  urls: { http: string; https?: string };
  /**
   * Stop accepting connections, let requests in flight finish (their connections then close),
   * close idle keep-alive connections at once, and cut whatever is still open after `graceMs`.
   */
  close(graceMs?: number): Promise<void>;
}

/** A failure to listen, naming the address (EADDRINUSE, EACCES...). */
export class ListenError extends Error {
  constructor(
    readonly address: string,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'ListenError';
  }
}

export async function startListeners(app: FastifyInstance, options: ListenOptions): Promise<Listeners> {
  await app.ready();
  let closing = false;
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    // While closing, a keep-alive connection ends after its current response.
    if (closing) res.setHeader('connection', 'close');
    req.socket.destroySoon = lingeringClose;
    const problem = hostHeaderProblem(req);
    if (problem !== undefined) {
      options.metrics?.httpErrors.inc({ code: '400' });
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
      res.end(`bad request: ${problem}\n`);
      return;
    }
    app.routing(req, res);
  };
  const servers: http.Server[] = [];
  const plain = http.createServer(handler);
  tune(plain);
  servers.push(plain);
  let secure: https.Server | undefined;
  if (options.tlsListen) {
    const certificates = options.certificates;
    if (!certificates) throw new Error('startListeners: tlsListen needs a CertificateStore');
    // Handshakes without SNI use the default certificate (or fail without one).
    const server = https.createServer(
      { SNICallback: certificates.sniCallback, minVersion: 'TLSv1.2', ...certificates.defaultPair },
      handler,
    );
    certificates.onDefaultChange((pair) => server.setSecureContext({ minVersion: 'TLSv1.2', ...pair }));
    secure = server;
    secure.on('tlsClientError', (err) => {
      options.metrics?.tlsErrors.inc();
      options.logger?.debug({ err: err.message }, 'TLS handshake failed');
    });
    tune(secure);
    servers.push(secure);
  }
  try {
    const httpAddress = await listen(plain, options.listen);
    const httpsAddress = secure && options.tlsListen ? await listen(secure, options.tlsListen) : undefined;
    const urls = {
      http: `http://${formatHostPort(httpAddress)}`,
      https: httpsAddress ? `https://${formatHostPort(httpsAddress)}` : undefined,
    };
    return {
      http: plain,
      https: secure,
      urls,
      async close(graceMs = 10_000) {
        closing = true;
        await Promise.all(servers.map((s) => closeServer(s, graceMs)));
      },
    };
  } catch (err) {
    for (const s of servers) s.close();
    throw err;
  }
}

export interface RunningListener {
  /** "http://127.0.0.1:9464": where it actually listens. */
  url: string;
  close(): Promise<void>;
}

/**
 * metricsListen: GET /metrics without login (in a cluster, answered by the primary with every
 * process's sum); anything else 404. No Host check: the address itself is what keeps it private.
 */
export async function startMetricsListener(address: HostPort, registry: Registry): Promise<RunningListener> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if ((req.method !== 'GET' && req.method !== 'HEAD') || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /metrics\n');
      return;
    }
    metricsText(registry).then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) =>
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`${err.message}\n`),
    );
  });
  tune(server);
  const where = await listen(server, address);
  return {
    url: `http://${formatHostPort(where)}`,
    close: () => closeServer(server, 1000),
  };
}

function tune(server: http.Server): void {
  // Slow clients may not hold connections forever (a policy is tiny; a report upload is bounded).
  server.headersTimeout = 10_000;
  server.requestTimeout = 60_000;
  server.keepAliveTimeout = 5_000;
}

/** How long a closing connection goes on reading, and dropping, what the client still sends. */
const LINGER_MS = 2_000;

/**
 * Node ends a connection after a `Connection: close` response with socket.destroySoon(): FIN, then
 * close. If the client is still sending (a 413 for a too-large upload), closing with unread bytes
 * makes the kernel send a reset, and a client busy writing gets EPIPE and may never read the answer.
 * Like nginx's lingering close: send FIN after the answer, go on reading (Node's HTTP parser drops a
 * refused body) until the client closes too, for at most LINGER_MS, then close.
 */
function lingeringClose(this: Socket): void {
  this.end();
  const timer = setTimeout(() => this.destroy(), LINGER_MS);
  this.once('close', () => clearTimeout(timer));
}

function listen(server: http.Server, address: HostPort): Promise<HostPort> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const where = formatHostPort(address);
      const why =
        err.code === 'EADDRINUSE'
          ? 'address already in use'
          : err.code === 'EACCES'
            ? 'permission denied'
            : err.message;
      reject(new ListenError(where, err.code, `cannot listen on ${where}: ${why}`));
    };
    server.once('error', onError);
    server.listen({ host: address.host, port: address.port }, () => {
      server.off('error', onError);
      const info = server.address() as AddressInfo;
      resolve({ host: info.address, port: info.port });
    });
  });
}

function closeServer(server: http.Server, graceMs: number): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    // Connections become idle when their request in flight is answered: close them then.
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    const deadline = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearInterval(sweep);
      clearTimeout(deadline);
      resolve();
    });
    server.closeIdleConnections();
  });
}
