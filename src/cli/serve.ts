// `mxguard serve`: policy hosting, TLS-RPT intake (HTTPS, SMTP, IMAP), the API and dashboard, ACME.
//
// Processes: with workers > 1 (the default on a machine with two cores or more) the primary process
// forks node:cluster workers that share the HTTP/HTTPS listeners, and itself runs what must run once
// (the SMTP receiver, IMAP polling, ACME renewal) and sums the workers' metrics for /metrics. With
// workers = 1 everything runs in one process. Every process opens the same SQLite store (WAL).
// A worker that dies (killed, out of memory, crashed while starting) is replaced after a pause that
// doubles from 1 s to 30 s while they keep dying (RestartBackoff); serve stops with exit status 2
// when a worker reports that it cannot start (port taken, store unreadable: no restart would help)
// or after RESTART.maxInARow deaths in a row.
// Shutdown on SIGTERM/SIGINT: listeners stop accepting, requests in flight finish (up to
// SHUTDOWN_GRACE_MS), keep-alive connections close, then the store closes; exit status 0.
import cluster, { type Worker } from 'node:cluster';
import type { Command } from 'commander';
import { formatHostPort } from '../common/host-port.js';
import { dataDirHint, mxguardCommand } from '../common/invocation.js';
import { AcmeManager } from '../server/acme.js';
import { buildApp, ListenError, startListeners, startMetricsListener } from '../server/app.js';
import { ensureAdminPassword } from '../server/auth.js';
import {
  type CliSettings,
  ConfigError,
  createLogger,
  describeSettings,
  LOG_LEVELS,
  loadServeSettings,
  type ServeSettings,
} from '../server/config.js';
import type { ServerContext } from '../server/context.js';
import { acceptRelayedFetches, FetchLogRelay } from '../server/fetchlog.js';
import { startImapPoller } from '../server/imap.js';
import { startMailIntake } from '../server/mail.js';
import {
  createRegistry,
  type ServerMetrics,
  servePrimaryMetrics,
  serverMetrics,
  serveWorkerMetrics,
} from '../server/metrics.js';
import { startRetention } from '../server/retention.js';
import { CertificateStore, certsDir } from '../server/tls.js';
import { DEFAULT_DATA_DIR, openStore } from '../store/index.js';
import { addNetworkOptions, type NetworkOptions, networkFromOptions } from './netopts.js';
import { CliError, collect } from './util.js';

/** How long requests in flight get to finish on shutdown. */
export const SHUTDOWN_GRACE_MS = 10_000;

const EXAMPLES = `
Examples:
  $ mxguard serve
      policy hosting, intake and dashboard on http://127.0.0.1:8080, data in ./data
  $ mxguard serve --listen 127.0.0.1:8080 --tls-listen 0.0.0.0:443 --data-dir /var/lib/mxguard
      HTTPS with the certificates in /var/lib/mxguard/certs/mta-sts.<domain>/ (chosen by SNI)
  $ mxguard serve --config /etc/mxguard/serve.json --smtp-listen 0.0.0.0:25
      settings from a file (see docs/serve.md), reports by mail on port 25
Settings come from defaults < config file (--config or MXGUARD_CONFIG) < MXGUARD_* environment < options.
`;

const CLUSTER_LISTENING = 'mxguard:listening';
const CLUSTER_FAILED = 'mxguard:failed';
const CLUSTER_SHUTDOWN = 'mxguard:shutdown';

interface ServeCommandOptions extends Partial<NetworkOptions> {
  dataDir?: string;
  listen?: string;
  tlsListen?: string;
  smtpListen?: string;
  config?: string;
  workers?: string;
  logLevel?: string;
  trustProxy?: string;
  adminHost?: string[];
  metricsListen?: string;
}

export function register(program: Command): void {
  const command = program
    .command('serve')
    .description('host MTA-STS policies, take in TLS-RPT reports, serve the dashboard and its API')
    .option('--data-dir <dir>', 'database, certificates and ACME state (default ./data)')
    .option('--listen <host:port>', 'plain HTTP listener (default 127.0.0.1:8080)')
    .option('--tls-listen <host:port>', 'HTTPS listener, certificates chosen by SNI (default: none)')
    .option('--smtp-listen <host:port>', 'SMTP receiver for reports by mail (default: none)')
    .option('--config <file>', 'JSON config file (docs/serve.md)')
    .option('--workers <n>', 'processes serving HTTP (default: 2, or 1 on a single core)')
    .option('--log-level <level>', `log level: ${LOG_LEVELS.join(', ')} (default info)`)
    .option(
      '--trust-proxy <list>',
      'client address from X-Forwarded-For: true, or proxy addresses/CIDRs',
      collect,
    )
    .option(
      '--admin-host <name>',
      'a host name the dashboard and API answer on, besides the listen hosts and localhost (repeatable)',
      collect,
    )
    .option('--metrics-listen <host:port>', 'GET /metrics without login here, loopback only (default: none)');
  addNetworkOptions(command).addHelpText('after', EXAMPLES);
  // The lab-only port options of the common set mean nothing to serve's lookups.
  for (const option of command.options) {
    if (option.long === '--smtp-port' || option.long === '--https-port') option.hideHelp();
  }
  command.action(async (options: ServeCommandOptions, cmd: Command) => {
    await serve(userSetOptions(options, cmd));
  });
}

/** Only the options the user gave (commander fills in defaults for the network options). */
function userSetOptions(options: ServeCommandOptions, cmd: Command): CliSettings {
  const given = <K extends keyof ServeCommandOptions>(key: K) =>
    cmd.getOptionValueSource(key) === 'default' ? undefined : options[key];
  const trustProxy = options.trustProxy as unknown as string[] | undefined;
  const adminHosts = options.adminHost;
  return {
    dataDir: given('dataDir'),
    listen: given('listen'),
    tlsListen: given('tlsListen'),
    smtpListen: given('smtpListen'),
    config: given('config'),
    workers: given('workers'),
    logLevel: given('logLevel'),
    trustProxy: trustProxy?.join(','),
    adminHosts: adminHosts?.join(','),
    metricsListen: given('metricsListen'),
    resolver: given('resolver'),
    caFile: given('caFile'),
    allowPrivate: given('allowPrivate'),
    timeout: given('timeout'),
  };
}

export async function serve(cli: CliSettings): Promise<void> {
  let settings: ServeSettings;
  try {
    settings = loadServeSettings({ cli, env: process.env, cwd: process.cwd() });
  } catch (err) {
    if (err instanceof ConfigError)
      throw new CliError(2, `serve: ${err.problems.join('\nmxguard: serve: ')}`);
    throw err;
  }
  if (settings.workers > 1 && cluster.isWorker) return runWorker(settings);
  if (settings.workers > 1) return runPrimary(settings);
  return runSingle(settings);
}

// ---- the pieces every role uses ----

async function createContext(settings: ServeSettings, role: string): Promise<ServerContext> {
  const network = await networkFromOptions({
    resolver: settings.network.resolver.length > 0 ? settings.network.resolver : undefined,
    caFile: settings.network.caFile,
    allowPrivate: settings.network.allowPrivate,
    timeout: String(settings.network.timeoutSeconds),
    smtpPort: '25',
    httpsPort: '443',
  });
  const logger = createLogger(settings.logLevel).child({ role });
  let store: ServerContext['store'];
  try {
    store = await openStore(settings.dataDir);
  } catch (err) {
    throw new CliError(2, `serve: ${settings.dataDir}: cannot open the store: ${(err as Error).message}`);
  }
  return {
    store,
    config: settings,
    logger,
    metrics: createRegistry({ domainLabels: settings.metrics?.domainLabels }),
    resolver: network.resolver,
    network: { ca: network.ca, allowPrivate: network.allowPrivate, timeoutMs: network.timeoutMs },
    now: () => new Date(),
  };
}

interface Running {
  stop(): Promise<void>;
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
      throw new CliError(2, `serve: ${option} ${err.message}`);
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
    if (err instanceof ListenError) throw new CliError(2, `serve: --metrics-listen ${err.message}`);
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

/** What runs once: SMTP receiver, IMAP polling, ACME, report retention (after the HTTP listeners are up). */
async function startBackground(ctx: ServerContext, settings: ServeSettings): Promise<Running[]> {
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
    running.push(startRetention(ctx, settings.retention));
  } catch (err) {
    await Promise.all(running.map((r) => r.stop()));
    const code = (err as NodeJS.ErrnoException).code;
    if (settings.smtp && (code === 'EADDRINUSE' || code === 'EACCES')) {
      throw new CliError(
        2,
        `serve: --smtp-listen ${formatHostPort(settings.smtp)}: ${(err as Error).message}`,
      );
    }
    throw err;
  }
  return running;
}

/** Tell the person starting serve where it is and how to log in (stderr; logs go to stdout). */
async function announce(
  ctx: ServerContext,
  settings: ServeSettings,
  urls: { http: string; https?: string },
  generatedPassword: string | undefined,
): Promise<void> {
  const say = (line: string) => process.stderr.write(`mxguard serve: ${line}\n`);
  say(`listening on ${urls.http} (policy hosting, POST /tlsrpt, dashboard at /)`);
  if (urls.https) say(`listening on ${urls.https} (policy hosting, certificate chosen by SNI)`);
  if (settings.metricsListen)
    say(`metrics on http://${formatHostPort(settings.metricsListen)}/metrics (no login: keep it private)`);
  if (settings.smtp) {
    say(
      `SMTP report intake on ${formatHostPort(settings.smtp)}, ${
        settings.defaultCertificate
          ? 'STARTTLS with the default certificate'
          : 'no STARTTLS (set defaultCertificate to offer it)'
      }`,
    );
  }
  if (settings.imap)
    say(`polling IMAP ${settings.imap.user}@${settings.imap.host} every ${settings.imap.intervalSeconds} s`);
  if (settings.acme) say(`ACME certificates from ${settings.acme.directoryUrl}`);
  say(`data in ${settings.dataDir}; ${settings.workers} HTTP process${settings.workers > 1 ? 'es' : ''}`);
  if (generatedPassword !== undefined) {
    say(`admin password (generated now, shown only once): ${generatedPassword}`);
  } else if (settings.adminPassword !== undefined) {
    say('admin login: the password from the config file or MXGUARD_ADMIN_PASSWORD');
  } else {
    say('admin login: the password shown when this data directory was first served');
  }
  const domains = await ctx.store.listDomains();
  if (domains.length === 0)
    say(
      `no domains yet: ${mxguardCommand()} domain add example.com --mx mx.example.com${dataDirHint(settings.dataDir, DEFAULT_DATA_DIR)}`,
    );
  ctx.logger.info({ urls, settings: describeSettings(settings), domains: domains.length }, 'serving');
}

/** Resolves on the first SIGTERM/SIGINT (or cluster shutdown message); a second signal exits at once. */
function shutdownRequested(): Promise<string> {
  return new Promise((resolve) => {
    let received = false;
    const onSignal = (signal: string) => {
      if (received) {
        process.stderr.write(`mxguard serve: ${signal} again, exiting now\n`);
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

async function stopAll(ctx: ServerContext, parts: Running[]): Promise<void> {
  const results = await Promise.allSettled(parts.map((p) => p.stop()));
  for (const r of results) {
    if (r.status === 'rejected')
      ctx.logger.error({ err: (r.reason as Error)?.message }, 'error while stopping');
  }
  await ctx.store.close();
}

// ---- roles ----

async function runSingle(settings: ServeSettings): Promise<void> {
  const ctx = await createContext(settings, 'single');
  const parts: Running[] = [];
  try {
    const generated = await ensureAdminPassword(ctx, settings.adminPassword);
    const web = await startHttp(ctx, settings);
    parts.push(web);
    parts.push(...(await startMetrics(ctx, settings)));
    parts.push(...(await startBackground(ctx, settings)));
    await announce(ctx, settings, web.urls, generated);
  } catch (err) {
    await stopAll(ctx, parts);
    throw err;
  }
  const signal = await shutdownRequested();
  ctx.logger.info({ signal }, 'shutting down');
  await stopAll(ctx, parts);
  ctx.logger.info('stopped');
  exitSoon();
}

async function runWorker(settings: ServeSettings): Promise<void> {
  let ctx: ServerContext | undefined;
  // IPC to a primary that is gone fails with EPIPE; the worker then exits on the disconnect.
  cluster.worker?.on('error', () => undefined);
  try {
    ctx = await createContext(settings, `worker-${cluster.worker?.id ?? '?'}`);
    serveWorkerMetrics(ctx.metrics);
    const web = await startHttp(ctx, settings, new FetchLogRelay());
    process.send?.({ type: CLUSTER_LISTENING, urls: web.urls });
    const signal = await shutdownRequested();
    ctx.logger.info({ signal }, 'worker shutting down');
    await stopAll(ctx, [web]);
    process.exitCode = 0;
  } catch (err) {
    // The primary reports the failure; this process only says what went wrong.
    process.send?.({ type: CLUSTER_FAILED, message: (err as Error).message, usage: err instanceof CliError });
    await ctx?.store.close().catch(() => undefined);
    process.exitCode = 2;
  }
  process.disconnect?.();
  exitSoon();
}

async function runPrimary(settings: ServeSettings): Promise<void> {
  const ctx = await createContext(settings, 'primary');
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
  const pool = new WorkerPool(settings.workers, ctx);
  let urls: { http: string; https?: string };
  try {
    parts.push(...(await startMetrics(ctx, settings)));
    urls = await pool.start();
    parts.push(...(await startBackground(ctx, settings)));
    await announce(ctx, settings, urls, generated);
  } catch (err) {
    await pool.stop();
    await stopAll(ctx, parts);
    throw err;
  }
  const ended = await Promise.race([shutdownRequested(), pool.failed]);
  ctx.logger.info(typeof ended === 'string' ? { signal: ended } : { err: ended.message }, 'shutting down');
  await pool.stop();
  await stopAll(ctx, parts);
  ctx.logger.info('stopped');
  exitSoon();
  if (typeof ended !== 'string') throw ended;
}

/** How serve restarts workers that die (RestartBackoff). */
export const RESTART = {
  /** The first pause before a restart; it doubles with each death in a row... */
  firstMs: 1000,
  /** ...up to this. */
  maxMs: 30_000,
  /** Deaths at least this far apart are not "in a row" (the workers stayed up a while). */
  stableMs: 60_000,
  /** Restarts in a row before serve gives up (pauses 1+2+4+8+16+30+30+30 s: two minutes of trying). */
  maxInARow: 8,
} as const;

/** The pause before restarting a worker that died, or undefined to give up. */
export class RestartBackoff {
  private inARow = 0;
  private lastDeathMs: number | undefined;

  /** Counts a death at `nowMs`; the pause before the restart, or undefined after too many in a row. */
  next(nowMs: number): number | undefined {
    if (this.lastDeathMs !== undefined && nowMs - this.lastDeathMs >= RESTART.stableMs) this.inARow = 0;
    this.lastDeathMs = nowMs;
    this.inARow++;
    if (this.inARow > RESTART.maxInARow) return undefined;
    return Math.min(RESTART.maxMs, RESTART.firstMs * 2 ** (this.inARow - 1));
  }

  get deathsInARow(): number {
    return this.inARow;
  }
}

interface WorkerMessage {
  type?: string;
  urls?: { http: string; https?: string };
  message?: string;
  usage?: boolean;
}

/**
 * The cluster workers: started together, each replaced when it dies (RestartBackoff), stopped
 * gracefully. A worker that reports CLUSTER_FAILED cannot start (port taken, store unreadable), so
 * the pool gives up at once: start() rejects, or `failed` resolves, with that message.
 */
class WorkerPool {
  private stopping = false;
  private gaveUp = false;
  private readonly listening = new Set<number>();
  private readonly backoff = new RestartBackoff();
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  private started: ((urls: { http: string; https?: string }) => void) | undefined;
  private startFailed: ((err: Error) => void) | undefined;
  private failWith: ((err: Error) => void) | undefined;
  /** Resolves with the reason when the pool gives up after start(). */
  readonly failed: Promise<Error>;

  constructor(
    private readonly size: number,
    private readonly ctx: ServerContext,
  ) {
    this.failed = new Promise((resolve) => {
      this.failWith = resolve;
    });
    // IPC to a worker that is exiting fails with EPIPE: nothing to do about it but note it.
    cluster.on('fork', (worker: Worker) =>
      worker.on('error', (err: Error) =>
        this.ctx.logger.debug({ err: err.message, workerPid: worker.process.pid }, 'IPC error'),
      ),
    );
    cluster.on('exit', (worker: Worker, code, signal) => this.exited(worker, code, signal));
  }

  /** Fork every worker; resolves when all listen, rejects when the pool gives up first. */
  start(): Promise<{ http: string; https?: string }> {
    return new Promise((resolve, reject) => {
      this.started = resolve;
      this.startFailed = reject;
      for (let i = 0; i < this.size; i++) this.fork();
    });
  }

  private fork(): void {
    const worker = cluster.fork();
    this.ctx.logger.info({ workerPid: worker.process.pid }, 'worker started');
    worker.on('message', (message: WorkerMessage) => {
      if (message?.type === CLUSTER_LISTENING && message.urls) {
        this.listening.add(worker.id);
        this.ctx.logger.info({ workerPid: worker.process.pid }, 'worker listening');
        if (this.listening.size === this.size && this.started) {
          this.started(message.urls);
          this.started = undefined;
          this.startFailed = undefined;
        }
      } else if (message?.type === CLUSTER_FAILED) {
        // The worker cannot start: another one would fail the same way.
        const text = message.message ?? 'a worker process could not start';
        this.giveUp(message.usage ? new CliError(2, text) : new Error(text));
      }
    });
  }

  private exited(worker: Worker, code: number | null, signal: string | null): void {
    this.listening.delete(worker.id);
    if (this.stopping || this.gaveUp) return;
    const pid = worker.process.pid;
    const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
    const pause = this.backoff.next(Date.now());
    if (pause === undefined) {
      this.giveUp(
        new CliError(
          2,
          `serve: worker processes keep dying (${this.backoff.deathsInARow} in a row, the last one, ${pid}, ${how}); giving up`,
        ),
      );
      return;
    }
    this.ctx.logger.error(
      { workerPid: pid, code, signal, deathsInARow: this.backoff.deathsInARow, restartInMs: pause },
      `worker died; starting another in ${pause / 1000} s`,
    );
    // Not unref'd: with every worker gone, this timer is what keeps the primary going.
    const timer = setTimeout(() => {
      this.restartTimers.delete(timer);
      if (!this.stopping && !this.gaveUp) this.fork();
    }, pause);
    this.restartTimers.add(timer);
  }

  private giveUp(err: Error): void {
    if (this.gaveUp || this.stopping) return;
    this.gaveUp = true;
    for (const timer of this.restartTimers) clearTimeout(timer);
    this.ctx.logger.error({ err: err.message }, 'giving up on the worker processes');
    if (this.startFailed) this.startFailed(err);
    else this.failWith?.(err);
  }

  /** Ask every worker to shut down gracefully; kill those still there after the grace period. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const timer of this.restartTimers) clearTimeout(timer);
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.isDead()) return resolve();
            const timer = setTimeout(() => worker.kill('SIGKILL'), SHUTDOWN_GRACE_MS + 5000);
            worker.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            if (worker.isConnected()) worker.send({ type: CLUSTER_SHUTDOWN });
            else worker.kill('SIGTERM');
          }),
      ),
    );
  }
}

/** Exit once the event loop is idle, or after a moment if some library keeps a handle open. */
function exitSoon(): void {
  setTimeout(() => process.exit(), 2000).unref();
}
