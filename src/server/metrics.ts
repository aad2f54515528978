// Prometheus metrics of `mxguard serve` (prom-client): the server's own counters (policy fetches,
// unknown hosts, errors, TLS handshakes, certificate reloads, ACME orders) and, when serve runs as a
// node:cluster of workers, one /metrics answer for all processes: the worker asked sends a request
// to the primary, which collects every process's metrics over IPC and sums them
// (AggregatorRegistry.aggregate); the primary answers metricsListen the same way.
// Counters (and the gauge of open alerts) carry no label naming a hosted domain (policy domain, mta-sts.<domain> host) unless the
// registry was created with domainLabels (config metrics.domainLabels): /metrics would otherwise
// list every hosted domain to whoever scrapes it.
import cluster, { type Worker } from 'node:cluster';
import {
  AggregatorRegistry,
  Counter,
  collectDefaultMetrics,
  Gauge,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from 'prom-client';

/** Registries whose counters are labelled by domain (createRegistry's option). */
const labelledByDomain = new WeakSet<Registry>();

/** A registry with the process metrics (CPU, memory, event loop lag) every serve process exports. */
export function createRegistry(options: { domainLabels?: boolean } = {}): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'mxguard_' });
  if (options.domainLabels) labelledByDomain.add(registry);
  return registry;
}

/** A counter whose callers always give every label; the domain one is dropped when not wanted. */
export interface LabelledCounter<L extends string> {
  inc(labels: Record<L, string>): void;
}

export interface ServerMetrics {
  /** Policies served, by fetcher label (src/server/fetchlog.ts) and, with domainLabels, policy domain. */
  policyFetches: LabelledCounter<'domain' | 'client'>;
  /** Policy requests for a host name that is not mta-sts.<a configured domain>. */
  policyUnknownHost: Counter;
  /** Requests that ended in an error (handler threw, or a 5xx was sent by the error handler). */
  httpErrors: Counter<'code'>;
  /** TLS handshakes that failed (unknown SNI, protocol errors, clients that gave up). */
  tlsErrors: Counter;
  /** Certificate (re)loads, by result (loaded | failed) and, with domainLabels, host. */
  certificateLoads: LabelledCounter<'host' | 'result'>;
  /** ACME orders, by result (issued | failed) and, with domainLabels, host. */
  acmeOrders: LabelledCounter<'host' | 'result'>;
}

/** The server counters on `registry`, created on first use (registering a name twice throws). */
export function serverMetrics(registry: Registry): ServerMetrics {
  const byDomain = labelledByDomain.has(registry);
  return {
    policyFetches: domainCounter(
      registry,
      byDomain,
      'mxguard_policy_fetches_total',
      'MTA-STS policies served',
      'domain',
      'client',
    ),
    policyUnknownHost: counter(
      registry,
      'mxguard_policy_unknown_host_total',
      'policy requests for a host name that is not mta-sts.<configured domain>',
      [],
    ),
    httpErrors: counter(registry, 'mxguard_http_errors_total', 'HTTP requests that ended in an error', [
      'code',
    ]),
    tlsErrors: counter(registry, 'mxguard_tls_handshake_errors_total', 'failed TLS handshakes', []),
    certificateLoads: domainCounter(
      registry,
      byDomain,
      'mxguard_certificate_loads_total',
      'certificate (re)loads',
      'host',
      'result',
    ),
    acmeOrders: domainCounter(
      registry,
      byDomain,
      'mxguard_acme_orders_total',
      'ACME certificate orders',
      'host',
      'result',
    ),
  };
}

/**
 * mxguard_alerts_open{domain,code}: the open monitoring alerts (issue 12), read from the store at each
 * scrape; without domainLabels only {code}, counting every domain's. Every process reads the same
 * store, so a cluster reports the largest value, not the sum. Created on first use.
 */
export function registerAlertMetrics(
  registry: Registry,
  openAlerts: () => Promise<ReadonlyArray<{ domain: string; code: string }>>,
): void {
  if (registry.getSingleMetric(ALERTS_OPEN)) return;
  const byDomain = labelledByDomain.has(registry);
  new Gauge<'domain' | 'code'>({
    name: ALERTS_OPEN,
    help: 'open monitoring alerts, by alert code' + (byDomain ? ' and domain' : ''),
    labelNames: byDomain ? ['domain', 'code'] : ['code'],
    aggregator: 'max',
    registers: [registry],
    async collect() {
      const counts = new Map<string, { labels: Record<string, string>; count: number }>();
      let alerts: ReadonlyArray<{ domain: string; code: string }>;
      try {
        alerts = await openAlerts();
      } catch {
        // The database cannot tell (mxguard_store_up says why): the last counts stay, and the rest
        // of the scrape goes on, rather than failing the whole /metrics answer during an outage.
        return;
      }
      for (const a of alerts) {
        const labels: Record<string, string> = byDomain
          ? { domain: a.domain, code: a.code }
          : { code: a.code };
        const key = JSON.stringify(labels);
        const entry = counts.get(key) ?? { labels, count: 0 };
        entry.count += 1;
        counts.set(key, entry);
      }
      // Resolved alerts leave the series (no stale 1 for a code that is fine again).
      this.reset();
      for (const { labels, count } of counts.values()) this.set(labels, count);
    },
  });
}
const ALERTS_OPEN = 'mxguard_alerts_open';

/**
 * mxguard_store_up: 1 while the database answers a one-row read at the scrape (store-unavailable.ts
 * storeHealth, bounded in time), else 0. A cluster reports the lowest value. Created on first use.
 */
export function registerStoreMetrics(registry: Registry, storeAnswers: () => Promise<boolean>): void {
  if (registry.getSingleMetric(STORE_UP)) return;
  new Gauge({
    name: STORE_UP,
    help: 'whether the database answers (1) or cannot be reached, is slow or fails (0), checked at each scrape',
    aggregator: 'min',
    registers: [registry],
    async collect() {
      this.set((await storeAnswers()) ? 1 : 0);
    },
  });
}
const STORE_UP = 'mxguard_store_up';

/** A counter with the label `domainLabel` (a domain or host name) only when `byDomain`, then `other`. */
function domainCounter<D extends string, O extends string>(
  registry: Registry,
  byDomain: boolean,
  name: string,
  help: string,
  domainLabel: D,
  other: O,
): LabelledCounter<D | O> {
  if (byDomain) return counter<D | O>(registry, name, help, [domainLabel, other]);
  const total = counter<O>(registry, name, help, [other]);
  return { inc: (labels) => total.inc({ [other]: labels[other] } as Record<O, string>) };
}

/** A counter on `registry`, created on first use (registering a name twice throws). */
export function counter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: L[],
): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: [registry] });
}

// ---- one /metrics answer across cluster workers ----

const ASK_PRIMARY = 'mxguard:metrics-ask';
const ANSWER_WORKER = 'mxguard:metrics-answer';
const COLLECT = 'mxguard:metrics-collect';
const COLLECTED = 'mxguard:metrics-collected';
const IPC_TIMEOUT_MS = 5000;

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];
interface IpcMessage {
  type?: string;
  id?: number;
  text?: string;
  error?: string;
  metrics?: MetricsJson;
}

let nextId = 1;
const waitingAnswers = new Map<number, (message: IpcMessage) => void>();

type Collections = Map<number, { pending: number; parts: MetricsJson[]; done: () => void }>;
/** Set in the cluster primary by servePrimaryMetrics: the collections under way. */
let primaryCollections: Collections | undefined;

/**
 * The Prometheus text for /metrics: this process's registry, or in a cluster the sum over the
 * primary and every worker (a worker asks the primary, see servePrimaryMetrics).
 */
export async function metricsText(registry: Registry): Promise<string> {
  if (primaryCollections) return collectAll(registry, primaryCollections);
  if (!cluster.isWorker || !process.send) return registry.metrics();
  const id = nextId++;
  const answer = await new Promise<IpcMessage>((resolve, reject) => {
    const timer = setTimeout(() => {
      waitingAnswers.delete(id);
      reject(new Error('the primary process did not send the metrics in time'));
    }, IPC_TIMEOUT_MS);
    waitingAnswers.set(id, (message) => {
      clearTimeout(timer);
      resolve(message);
    });
    process.send?.({ type: ASK_PRIMARY, id });
  });
  if (answer.error !== undefined) throw new Error(answer.error);
  return answer.text ?? '';
}

/** In a cluster worker: answer the primary's collection requests and receive its answers. */
export function serveWorkerMetrics(registry: Registry): void {
  process.on('message', (message: IpcMessage) => {
    if (message?.type === COLLECT) {
      registry
        .getMetricsAsJSON()
        .then((metrics) => process.send?.({ type: COLLECTED, id: message.id, metrics }))
        .catch((err: Error) =>
          process.send?.({ type: COLLECTED, id: message.id, metrics: [], error: err.message }),
        );
    } else if (message?.type === ANSWER_WORKER && typeof message.id === 'number') {
      waitingAnswers.get(message.id)?.(message);
      waitingAnswers.delete(message.id);
    }
  });
}

/** In the cluster primary: when a worker asks, collect from all workers, add our own, sum, answer. */
export function servePrimaryMetrics(registry: Registry): void {
  const collections: Collections = new Map();
  primaryCollections = collections;
  cluster.on('message', (worker: Worker, message: IpcMessage) => {
    if (message?.type === ASK_PRIMARY) {
      collectAll(registry, collections)
        .then((text) => worker.send({ type: ANSWER_WORKER, id: message.id, text }))
        .catch((err: Error) => worker.send({ type: ANSWER_WORKER, id: message.id, error: err.message }));
    } else if (message?.type === COLLECTED && typeof message.id === 'number') {
      const collection = collections.get(message.id);
      if (!collection) return;
      collection.parts.push(message.metrics ?? []);
      collection.pending--;
      if (collection.pending === 0) collection.done();
    }
  });
}

async function collectAll(registry: Registry, collections: Collections): Promise<string> {
  const id = nextId++;
  const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w?.isConnected() === true);
  const parts: MetricsJson[] = [await registry.getMetricsAsJSON()];
  await new Promise<void>((resolve) => {
    if (workers.length === 0) return resolve();
    // A worker that does not answer in time (exiting, busy) is left out rather than failing /metrics.
    const timer = setTimeout(finish, IPC_TIMEOUT_MS);
    function finish() {
      clearTimeout(timer);
      collections.delete(id);
      resolve();
    }
    collections.set(id, { pending: workers.length, parts, done: finish });
    for (const w of workers) w.send({ type: COLLECT, id });
  });
  return AggregatorRegistry.aggregate(parts).metrics();
}
