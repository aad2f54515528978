// `mxguard policyd`: the socketmap server, the policy engine, the store, metrics and the timers that
// keep the cache fresh (store sync, proactive refresh), wired together; and stopped again.
import type { AddressInfo } from 'node:net';
import type { HostPort } from '../common/host-port.js';
import type { Resolver } from '../dns/resolver.js';
import type { DaneMode, TestingMode } from '../sender/decide.js';
import { type PolicyFetcher, policyFetcher } from '../sender/sts.js';
import { type Clock, CoarseClock } from './clock.js';
import { type EngineOptions, PolicyEngine } from './engine.js';
import { type Logger, policydLogger } from './log.js';
import { PolicydMetrics } from './metrics.js';
import { type Responder, SocketmapServer, type SocketmapServerOptions } from './server.js';
import { NOTFOUND_REPLY, normalizeKey, type Reply } from './socketmap.js';
import { SqlitePolicyStore } from './sqlite.js';
import type { PolicyStore } from './store.js';

export interface PolicydOptions {
  /** TCP socketmap listener. */
  listen?: HostPort;
  /** UNIX socketmap listener (socket file path). */
  socket?: string;
  /** Prometheus endpoint. */
  metrics?: HostPort;
  /** Where policyd.sqlite lives (unless `store` is given). */
  dataDir: string;
  resolver: Resolver;
  /** Extra trust anchors for policy hosts (PEM). */
  ca?: readonly string[];
  allowPrivate?: boolean;
  /** HTTPS port of policy hosts (labs). */
  httpsPort?: number;
  /** Limit of one policy fetch (default 30 s). */
  fetchTimeoutMs?: number;
  daneMode?: DaneMode;
  testingMode?: TestingMode;
  /** Look for purges and other writers' entries this often (default 5 s). */
  syncIntervalMs?: number;
  /** Queue due proactive refreshes this often (default 30 s). */
  maintenanceIntervalMs?: number;
  /** Further engine settings (idCheckIntervalMs, answerTimeoutMs, ...). */
  engine?: Partial<Omit<EngineOptions, 'resolver' | 'store' | 'fetchPolicy' | 'log' | 'events'>>;
  /** Further server settings (maxConnections, idleTimeoutMs, ...). */
  server?: Partial<Omit<SocketmapServerOptions, 'responder' | 'metrics'>>;
  /** Default: SQLite in dataDir. */
  store?: PolicyStore;
  /** Default: the HTTPS fetch of RFC 8461 §3.3. */
  fetchPolicy?: PolicyFetcher;
  clock?: Clock;
  log?: Logger;
}

export interface RunningPolicyd {
  engine: PolicyEngine;
  metrics: PolicydMetrics;
  server: SocketmapServer;
  tcp?: AddressInfo;
  socketPath?: string;
  metricsAddress?: AddressInfo;
  /** Close listeners (pending replies are sent), wait briefly for lookups, close the store. */
  stop(): Promise<void>;
}

/** Answers socketmap keys from the engine: the raw key first (the common case), then normalised. */
export class PolicyResponder implements Responder {
  constructor(
    private readonly engine: PolicyEngine,
    private readonly metrics?: PolicydMetrics,
  ) {}

  cached(key: string): Reply | undefined {
    let reply = this.engine.cached(key);
    if (reply === undefined) {
      const normal = normalizeKey(key);
      if ('notFound' in normal) return NOTFOUND_REPLY;
      if (normal.domain !== key) reply = this.engine.cached(normal.domain);
      if (reply === undefined) return undefined;
    }
    if (this.metrics) this.metrics.hits++;
    return reply;
  }

  lookup(key: string): Promise<Reply> {
    const normal = normalizeKey(key);
    if ('notFound' in normal) return Promise.resolve(NOTFOUND_REPLY);
    if (this.metrics) this.metrics.misses++;
    return this.engine.resolve(normal.domain);
  }
}

export async function startPolicyd(options: PolicydOptions): Promise<RunningPolicyd> {
  const log = options.log ?? policydLogger();
  const metrics = new PolicydMetrics();
  const store = options.store ?? SqlitePolicyStore.open(options.dataDir);
  const ownClock = options.clock === undefined ? new CoarseClock() : undefined;
  const clock = options.clock ?? ownClock!;
  const daneMode = options.daneMode ?? 'dane-only';
  const testingMode = options.testingMode ?? 'ignore';
  const fetchPolicy =
    options.fetchPolicy ??
    policyFetcher({
      resolver: options.resolver,
      port: options.httpsPort,
      ca: options.ca,
      allowPrivate: options.allowPrivate,
      timeoutMs: options.fetchTimeoutMs ?? 30_000,
    });
  const engine = new PolicyEngine({
    ...options.engine,
    resolver: options.resolver,
    store,
    fetchPolicy,
    clock,
    daneMode,
    testingMode,
    log,
    events: {
      fetched: (_domain, result) => metrics.fetched(result),
      answerTimeout: () => metrics.answerTimeouts++,
      overloaded: () => metrics.overloaded++,
    },
  });
  metrics.domains = () => engine.size;
  const server = new SocketmapServer({
    ...options.server,
    responder: new PolicyResponder(engine, metrics),
    metrics,
  });
  const timers: NodeJS.Timeout[] = [];
  let metricsServer: { address: AddressInfo; close(): Promise<void> } | undefined;
  let stopped: Promise<void> | undefined;

  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      for (const timer of timers) clearInterval(timer);
      await server.close();
      await metricsServer?.close();
      await engine.stop();
      await store.close();
      ownClock?.stop();
      log('info', 'policyd stopped');
    })();
    return stopped;
  };

  let tcp: AddressInfo | undefined;
  let loaded = 0;
  try {
    loaded = await engine.load();
    if (options.listen) tcp = await server.listenTcp(options.listen.host, options.listen.port);
    if (options.socket) await server.listenUnix(options.socket);
    if (options.metrics) metricsServer = await metrics.serve(options.metrics.host, options.metrics.port);
  } catch (err) {
    await stop();
    throw err;
  }

  const every = (ms: number, task: () => unknown) => {
    const timer = setInterval(task, ms);
    timer.unref();
    timers.push(timer);
  };
  every(options.syncIntervalMs ?? 5000, () =>
    engine
      .syncStore()
      .catch((err: Error) => log('error', 'policy store sync failed', { error: err.message })),
  );
  every(options.maintenanceIntervalMs ?? 30_000, () => engine.maintain());
  void engine.warmUp();
  void options.resolver.checkValidating().then(
    (check) => {
      if (!check.validating) {
        log(
          'warn',
          'the resolver does not validate DNSSEC (no AD on the root DNSKEY): DANE is never detected',
          {},
        );
      }
    },
    () => {},
  );

  log('info', 'policyd started', {
    listen: tcp ? `${tcp.address}:${tcp.port}` : undefined,
    socket: options.socket,
    metrics: metricsServer ? `${metricsServer.address.address}:${metricsServer.address.port}` : undefined,
    dataDir: options.store ? undefined : options.dataDir,
    cachedPolicies: loaded,
    daneMode,
    testingMode,
  });
  const running: RunningPolicyd = { engine, metrics, server, stop };
  if (tcp) running.tcp = tcp;
  if (options.socket) running.socketPath = options.socket;
  if (metricsServer) running.metricsAddress = metricsServer.address;
  return running;
}
