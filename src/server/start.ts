// Starting and stopping `mxguard serve`: builds the ServerContext (store, logger, metrics, lookups, the
// monitor's on-demand checks), the HTTP/HTTPS and metrics listeners, the SMTP receiver, and what runs
// once across every instance on the database (IMAP polling, ACME renewal, report retention, the
// monitor's schedule and the alert deliverer: background.ts, in the instance holding the store's
// "background" lock); waits for SIGTERM/SIGINT and shuts everything down. src/cli/serve.ts turns the
// options into settings, calls startServe and prints what the user sees.
//
// Processes: with workers > 1 the primary process forks node:cluster workers (src/server/cluster.ts)
// that share the HTTP/HTTPS listeners, and itself runs the SMTP receiver and (holding the lock) what
// must run once, and sums the workers' metrics for /metrics. With workers = 1 everything runs in one process. Every process opens the same
// SQLite store (WAL). A StartError (port taken, store unreadable, workers that keep dying) means
// exit status 2.
// Shutdown on SIGTERM/SIGINT: listeners stop accepting, requests in flight finish (up to
// SHUTDOWN_GRACE_MS), keep-alive connections close, then the store closes; exit status 0.
import cluster from 'node:cluster';
import { formatHostPort } from '../common/host-port.js';
import { Deliverer } from '../monitor/notify/deliverer.js';
import { createMonitor, type MonitorService } from '../monitor/service.js';
import { DEFAULT_MONITOR_SETTINGS } from '../monitor/settings.js';
import { describeDatabase, openStore } from '../store/index.js';
import { AcmeManager } from './acme.js';
import { buildApp, ListenError, startListeners, startMetricsListener } from './app.js';
import { ensureAdminPassword } from './auth.js';
import { BackgroundWork, type Running } from './background.js';
import { CLUSTER_FAILED, CLUSTER_LISTENING, CLUSTER_SHUTDOWN, StartError, WorkerPool } from './cluster.js';
import { createLogger, describeSettings, type ServeSettings } from './config.js';
import type { ServerContext } from './context.js';
import { acceptRelayedFetches, FetchLogRelay } from './fetchlog.js';
import { startImapPoller } from './imap.js';
import { startMailIntake } from './mail.js';
import {
  createRegistry,
  type ServerMetrics,
  servePrimaryMetrics,
  serverMetrics,
  serveWorkerMetrics,
} from './metrics.js';
import { startRetention } from './retention.js';
import { CertificateStore, certsDir } from './tls.js';

export { StartError } from './cluster.js';

/** How long requests in flight get to finish on shutdown. */
export const SHUTDOWN_GRACE_MS = 10_000;

/** The live-lookup parts of the context (the CLI builds them from the network options). */
export type ServeLookups = Pick<ServerContext, 'resolver' | 'network'>;

/** What the person starting serve is told once everything listens. */
export interface ServeStarted {
  urls: { http: string; https?: string };
  /** The admin password generated on this start (shown once), if one was. */
  generatedPassword: string | undefined;
  /** Domains in the store. */
  domainCount: number;
}

export interface ServeHooks {
  /** Builds the resolver and network settings, in every process; a StartError stops serve (status 2). */
  lookups(): Promise<ServeLookups>;
  /** Everything listens (in the primary or the single process; never in a worker). */
  started(started: ServeStarted): void;
  /** A second SIGTERM/SIGINT arrived: the process exits at once (status 1) after this. */
  signalAgain(signal: string): void;
}

/**
 * Runs serve in this process's role (single, cluster primary or worker) until it is told to stop.
 * Rejects with a StartError when it cannot start or keep going (exit status 2).
 */
export async function startServe(settings: ServeSettings, hooks: ServeHooks): Promise<void> {
  if (settings.workers > 1 && cluster.isWorker) return runWorker(settings, hooks);
  if (settings.workers > 1) return runPrimary(settings, hooks);
  return runSingle(settings, hooks);
}

// ---- the pieces every role uses ----

/**
 * The context with the monitor service itself (its schedule and stop() are start.ts's business), and
 * how to make a fresh one: a stopped service refuses on-demand checks, so the one whose schedule
 * stopped with the background lock is replaced.
 */
type RunningContext = ServerContext & { monitor: MonitorService; newMonitor(): MonitorService };

async function createContext(
  settings: ServeSettings,
  hooks: ServeHooks,
  role: string,
): Promise<RunningContext> {
  const lookups = await hooks.lookups();
  const logger = createLogger(settings.logLevel).child({ role });
  let store: ServerContext['store'];
  try {
    store = await openStore(settings.dataDir, { database: settings.database });
  } catch (err) {
    const where = settings.database === undefined ? settings.dataDir : describeDatabase(settings.database);
    throw new StartError(`serve: ${where}: cannot open the store: ${(err as Error).message}`);
  }
  const now = () => new Date();
  const newMonitor = () =>
    createMonitor({
      store,
      settings: settings.monitor ?? DEFAULT_MONITOR_SETTINGS,
      network: { resolver: lookups.resolver, ...lookups.network },
      now,
      logger: logger.child({ component: 'monitor' }),
    });
  return {
    store,
    config: settings,
    logger,
    metrics: createRegistry({ domainLabels: settings.metrics?.domainLabels }),
    resolver: lookups.resolver,
    network: lookups.network,
    monitor: newMonitor(),
    newMonitor,
    now,
  };
}

interface HttpRunning extends Running {
  urls: { http: string; https?: string };
}

async function startHttp(
  ctx: ServerContext,
  settings: ServeSettings,
  relay?: FetchLogRelay,
): Promise<HttpRunning> {
  const metrics = serverMetrics(ctx.metrics);
  let certificates: CertificateStore | undefined;
  if (settings.tlsListen) {
    certificates = startCertificates(ctx, settings, 'tls', metrics);
  }
  const app = buildApp(ctx, { logFetch: relay?.push });
  try {
    const listeners = await startListeners(app, {
      listen: settings.listen,
      tlsListen: settings.tlsListen,
      certificates,
      metrics,
      logger: ctx.logger,
    });
    return {
      urls: listeners.urls,
      async stop() {
        await listeners.close(SHUTDOWN_GRACE_MS);
        await app.close();
        certificates?.stop();
        relay?.flush();
      },
    };
  } catch (err) {
    certificates?.stop();
    await app.close().catch(() => undefined);
    if (err instanceof ListenError) {
      const option = err.address === formatHostPort(settings.listen) ? '--listen' : '--tls-listen';
      throw new StartError(`serve: ${option} ${err.message}`);
    }
    throw err;
  }
}

/** metricsListen, if set: GET /metrics without login (in a cluster, served by the primary). */
async function startMetrics(ctx: ServerContext, settings: ServeSettings): Promise<Running[]> {
  if (!settings.metricsListen) return [];
  try {
    const listener = await startMetricsListener(settings.metricsListen, ctx.metrics);
    ctx.logger.info({ url: listener.url }, 'metrics listener');
    return [{ stop: () => listener.close() }];
  } catch (err) {
    if (err instanceof ListenError) throw new StartError(`serve: --metrics-listen ${err.message}`);
    throw err;
  }
}

/** The configured, ACME-issued and default certificates, loaded and kept reloaded on change. */
function startCertificates(
  ctx: ServerContext,
  settings: ServeSettings,
  component: string,
  metrics?: ServerMetrics,
): CertificateStore {
  const certificates = new CertificateStore({
    certsDirectory: certsDir(settings.dataDir),
    configured: settings.certificates,
    defaultCertificate: settings.defaultCertificate,
    logger: ctx.logger.child({ component }),
    metrics,
  });
  certificates.start();
  return certificates;
}

/**
 * After the HTTP listeners are up: the SMTP receiver (on every instance, as HTTP intake), then what
 * runs once across the instances while this one holds the background lock (startOnceWork).
 */
async function startBackground(ctx: RunningContext, settings: ServeSettings): Promise<Running[]> {
  const running: Running[] = [];
  try {
    if (settings.smtp) {
      // STARTTLS (RFC 3207) with the certificates the HTTPS side uses, reloaded the same way: the default
      // one for clients without SNI (Postfix sends none unless told to), by SNI otherwise.
      const certificates = settings.defaultCertificate
        ? startCertificates(ctx, settings, 'smtp-tls')
        : undefined;
      const pair = certificates?.defaultPair;
      if (certificates && !pair) ctx.logger.warn('SMTP: the default certificate did not load; no STARTTLS');
      const mail = await startMailIntake(ctx, {
        tls: pair && certificates ? { ...pair, sniCallback: certificates.sniCallback } : undefined,
      }).catch((err) => {
        certificates?.stop();
        throw err;
      });
      certificates?.onDefaultChange((changed) => mail.setCertificate(changed));
      running.push({
        stop: async () => {
          certificates?.stop();
          await mail.stop();
        },
      });
    }
    const background = new BackgroundWork({
      store: ctx.store,
      logger: ctx.logger,
      start: () => startOnceWork(ctx, settings),
    });
    await background.begin();
    running.push(background);
  } catch (err) {
    await Promise.all(running.map((r) => r.stop()));
    const code = (err as NodeJS.ErrnoException).code;
    if (settings.smtp && (code === 'EADDRINUSE' || code === 'EACCES')) {
      throw new StartError(
        `serve: --smtp-listen ${formatHostPort(settings.smtp)}: ${(err as Error).message}`,
      );
    }
    throw err;
  }
  return running;
}

/** IMAP polling, ACME, report retention, the alert deliverer and the monitor's schedule. */
async function startOnceWork(ctx: RunningContext, settings: ServeSettings): Promise<Running[]> {
  const running: Running[] = [];
  try {
    if (settings.imap) {
      const poller = await startImapPoller(ctx);
      running.push({ stop: () => poller.stop() });
    }
    if (settings.acme) {
      const acme = new AcmeManager(ctx, settings.acme, {
        certsDirectory: certsDir(settings.dataDir),
        managedElsewhere: Object.keys(settings.certificates),
      });
      acme.start();
      running.push({ stop: () => acme.stop() });
    }
    running.push(startRetention(ctx, { ...settings.retention, checkRunDays: settings.monitor?.historyDays }));
    running.push(startMonitoring(ctx, settings));
  } catch (err) {
    await Promise.all(running.map((r) => r.stop()));
    throw err;
  }
  return running;
}

/**
 * The alert deliverer, then the monitor's schedule, which wakes it after each check. Stopped, the
 * monitor service is replaced by a fresh one for on-demand checks (and the next schedule).
 */
function startMonitoring(ctx: RunningContext, settings: ServeSettings): Running {
  const deliverer = new Deliverer({
    store: ctx.store,
    settings: settings.monitor ?? DEFAULT_MONITOR_SETTINGS,
    log: ctx.logger.child({ component: 'deliverer' }),
    ca: ctx.network.ca,
  });
  deliverer.start();
  ctx.monitor.startSchedule({ recorded: () => deliverer.wake() });
  const monitor = ctx.monitor;
  return {
    async stop() {
      ctx.monitor = ctx.newMonitor();
      await monitor.stop();
      await deliverer.stop();
    },
  };
}

/** Hands what the user is told to the CLI, then logs it (logs go to stdout). */
async function tell(
  ctx: ServerContext,
  settings: ServeSettings,
  hooks: ServeHooks,
  urls: { http: string; https?: string },
  generatedPassword: string | undefined,
): Promise<void> {
  const domains = await ctx.store.listDomains();
  hooks.started({ urls, generatedPassword, domainCount: domains.length });
  ctx.logger.info({ urls, settings: describeSettings(settings), domains: domains.length }, 'serving');
}

/** Resolves on the first SIGTERM/SIGINT (or cluster shutdown message); a second signal exits at once. */
function shutdownRequested(hooks: ServeHooks): Promise<string> {
  return new Promise((resolve) => {
    let received = false;
    const onSignal = (signal: string) => {
      if (received) {
        hooks.signalAgain(signal);
        process.exit(1);
      }
      received = true;
      resolve(signal);
    };
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
    if (cluster.isWorker) {
      process.on('message', (message: { type?: string }) => {
        if (message?.type === CLUSTER_SHUTDOWN && !received) {
          received = true;
          resolve('shutdown');
        }
      });
    }
  });
}

async function stopAll(ctx: RunningContext, parts: Running[]): Promise<void> {
  const results = await Promise.allSettled(parts.map((p) => p.stop()));
  // On-demand checks under way finish before the store closes (the schedule stopped with its part).
  results.push(...(await Promise.allSettled([ctx.monitor.stop()])));
  for (const r of results) {
    if (r.status === 'rejected')
      ctx.logger.error({ err: (r.reason as Error)?.message }, 'error while stopping');
  }
  await ctx.store.close();
}

// ---- roles ----

async function runSingle(settings: ServeSettings, hooks: ServeHooks): Promise<void> {
  // Listening for SIGTERM before anything is announced: a signal sent as soon as the "listening" line is
  // read must stop the server gracefully, not kill it (no listener yet: the default action).
  const shutdown = shutdownRequested(hooks);
  const ctx = await createContext(settings, hooks, 'single');
  const parts: Running[] = [];
  try {
    const generated = await ensureAdminPassword(ctx, settings.adminPassword);
    const web = await startHttp(ctx, settings);
    parts.push(web);
    parts.push(...(await startMetrics(ctx, settings)));
    parts.push(...(await startBackground(ctx, settings)));
    await tell(ctx, settings, hooks, web.urls, generated);
  } catch (err) {
    await stopAll(ctx, parts);
    throw err;
  }
  const signal = await shutdown;
  ctx.logger.info({ signal }, 'shutting down');
  await stopAll(ctx, parts);
  ctx.logger.info('stopped');
  exitSoon();
}

async function runWorker(settings: ServeSettings, hooks: ServeHooks): Promise<void> {
  const shutdown = shutdownRequested(hooks); // before it says it listens (runSingle)
  let ctx: RunningContext | undefined;
  // IPC to a primary that is gone fails with EPIPE; the worker then exits on the disconnect.
  cluster.worker?.on('error', () => undefined);
  try {
    ctx = await createContext(settings, hooks, `worker-${cluster.worker?.id ?? '?'}`);
    serveWorkerMetrics(ctx.metrics);
    const web = await startHttp(ctx, settings, new FetchLogRelay());
    process.send?.({ type: CLUSTER_LISTENING, urls: web.urls });
    const signal = await shutdown;
    ctx.logger.info({ signal }, 'worker shutting down');
    await stopAll(ctx, [web]);
    process.exitCode = 0;
  } catch (err) {
    // The primary reports the failure; this process only says what went wrong.
    process.send?.({
      type: CLUSTER_FAILED,
      message: (err as Error).message,
      usage: err instanceof StartError,
    });
    await ctx?.store.close().catch(() => undefined);
    process.exitCode = 2;
  }
  process.disconnect?.();
  exitSoon();
}

async function runPrimary(settings: ServeSettings, hooks: ServeHooks): Promise<void> {
  const shutdown = shutdownRequested(hooks); // before anything is announced (runSingle)
  const ctx = await createContext(settings, hooks, 'primary');
  const parts: Running[] = [];
  let generated: string | undefined;
  try {
    // Before any worker: the store's migrations and the admin password happen once.
    generated = await ensureAdminPassword(ctx, settings.adminPassword);
  } catch (err) {
    await stopAll(ctx, parts);
    throw err;
  }
  servePrimaryMetrics(ctx.metrics);
  acceptRelayedFetches(ctx.store);
  const pool = new WorkerPool(settings.workers, ctx.logger, SHUTDOWN_GRACE_MS);
  let urls: { http: string; https?: string };
  try {
    parts.push(...(await startMetrics(ctx, settings)));
    urls = await pool.start();
    parts.push(...(await startBackground(ctx, settings)));
    await tell(ctx, settings, hooks, urls, generated);
  } catch (err) {
    await pool.stop();
    await stopAll(ctx, parts);
    throw err;
  }
  const ended = await Promise.race([shutdown, pool.failed]);
  ctx.logger.info(typeof ended === 'string' ? { signal: ended } : { err: ended.message }, 'shutting down');
  await pool.stop();
  await stopAll(ctx, parts);
  ctx.logger.info('stopped');
  exitSoon();
  if (typeof ended !== 'string') throw ended;
}

/** Exit once the event loop is idle, or after a moment if some library keeps a handle open. */
function exitSoon(): void {
  setTimeout(() => process.exit(), 2000).unref();
}
