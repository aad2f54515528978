// Prometheus metrics of the policy daemon (prom-client), served at http://HOST:PORT/metrics. The query
// path only bumps plain numbers (the latency histogram included: a typed array of bucket counts); the
// metrics read them when Prometheus scrapes.
//
// mxguard_policyd_queries_total{answer}            replies by kind: secure, dane, dane-only, notfound, perm
// mxguard_policyd_cache_lookups_total{result}      hit (answered from memory) / miss (needed lookups)
// mxguard_policyd_policy_fetches_total{result}     ok, or the failure code (MTASTS_FETCH_...)
// mxguard_policyd_answer_timeouts_total            first lookups that outlasted the answer timeout
// mxguard_policyd_overloaded_total                 new domains answered NOTFOUND because too many lookups ran
// mxguard_policyd_protocol_errors_total{error}     malformed requests (NETSTRING_*, BAD_REQUEST, REQUEST_TIMEOUT)
// mxguard_policyd_connections                      open client connections
// mxguard_policyd_connections_rejected_total       connections closed at once because of --max-connections
// mxguard_policyd_domains                          domains in memory
// mxguard_policyd_query_duration_seconds           from a complete request to its reply
// plus prom-client's default process metrics (CPU, memory, event loop lag).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, collectDefaultMetrics, Gauge, type Metric, Registry } from 'prom-client';
import { ANSWER_KINDS } from '../sender/decide.js';

export class PolicydMetrics {
  readonly registry = new Registry();
  /** Replies by ANSWER_KINDS index. */
  readonly answers = new Float64Array(ANSWER_KINDS.length);
  hits = 0;
  misses = 0;
  answerTimeouts = 0;
  overloaded = 0;
  rejectedConnections = 0;
  /** Set by the server and the engine owner. */
  openConnections: () => number = () => 0;
  domains: () => number = () => 0;

  private readonly fetches: Counter<'result'>;
  private readonly protocolErrors: Counter<'error'>;
  private readonly latency: CountingHistogram;

  constructor() {
    const registers = [this.registry];
    const metrics = this;
    new Counter({
      name: 'mxguard_policyd_queries_total',
      help: 'Socketmap replies by answer kind.',
      labelNames: ['answer'],
      registers,
      collect() {
        this.reset();
        for (const [i, answer] of ANSWER_KINDS.entries()) this.inc({ answer }, metrics.answers[i]);
      },
    });
    new Counter({
      name: 'mxguard_policyd_cache_lookups_total',
      help: 'Queries for a valid domain answered from memory (hit) or after lookups (miss).',
      labelNames: ['result'],
      registers,
      collect() {
        this.reset();
        this.inc({ result: 'hit' }, metrics.hits);
        this.inc({ result: 'miss' }, metrics.misses);
      },
    });
    this.fetches = new Counter({
      name: 'mxguard_policyd_policy_fetches_total',
      help: 'MTA-STS policy fetches by result: ok or the failure code.',
      labelNames: ['result'],
      registers,
    });
    new Counter({
      name: 'mxguard_policyd_answer_timeouts_total',
      help: 'First lookups that took longer than the answer timeout (NOTFOUND was answered meanwhile).',
      registers,
      collect() {
        this.reset();
        this.inc(metrics.answerTimeouts);
      },
    });
    new Counter({
      name: 'mxguard_policyd_overloaded_total',
      help: 'New domains answered NOTFOUND without lookup because too many lookups were under way.',
      registers,
      collect() {
        this.reset();
        this.inc(metrics.overloaded);
      },
    });
    this.protocolErrors = new Counter({
      name: 'mxguard_policyd_protocol_errors_total',
      help: 'Malformed or timed-out requests; the connection was closed.',
      labelNames: ['error'],
      registers,
    });
    new Gauge({
      name: 'mxguard_policyd_connections',
      help: 'Open socketmap client connections.',
      registers,
      collect() {
        this.set(metrics.openConnections());
      },
    });
    new Counter({
      name: 'mxguard_policyd_connections_rejected_total',
      help: 'Connections closed on arrival because the connection limit was reached.',
      registers,
      collect() {
        this.reset();
        this.inc(metrics.rejectedConnections);
      },
    });
    new Gauge({
      name: 'mxguard_policyd_domains',
      help: 'Domains held in memory.',
      registers,
      collect() {
        this.set(metrics.domains());
      },
    });
    this.latency = new CountingHistogram(
      'mxguard_policyd_query_duration_seconds',
      'Time from a complete request to its reply.',
      [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1, 1, 5, 10],
    );
    // The registry only calls get() and reset() on what it holds; its type names its own classes.
    this.registry.registerMetric(this.latency as unknown as Metric);
    collectDefaultMetrics({ register: this.registry });
  }

  /** A reply was written: count its kind and its latency (seconds). */
  answered(kindIndex: number, seconds: number): void {
    this.answers[kindIndex]!++;
    this.latency.observe(seconds);
  }

  fetched(result: string): void {
    this.fetches.inc({ result });
  }

  protocolError(error: string): void {
    this.protocolErrors.inc({ error });
  }

  /** Serve GET /metrics (anything else: 404) on HOST:PORT. */
  async serve(host: string, port: number): Promise<{ address: AddressInfo; close(): Promise<void> }> {
    const server = http.createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return {
      address: server.address() as AddressInfo,
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  }
}

interface HistogramValue {
  labels: { le?: number | string };
  value: number;
  metricName: string;
}

/**
 * A histogram without labels whose observe() only bumps numbers in a typed array (prom-client's
 * Histogram.observe validates labels and hashes them on every call: a few percent of the daemon's CPU
 * at 100k queries/s). get() gives what prom-client's Histogram gives: cumulative `_bucket` values
 * (`le` bounds, then "+Inf"), `_sum` and `_count`.
 */
class CountingHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** Observations per bucket (not cumulative); the last one counts those above every bound. */
  private readonly counts: Float64Array;
  private sum = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
  }

  async get(): Promise<{
    name: string;
    help: string;
    type: 'histogram';
    aggregator: 'sum';
    values: HistogramValue[];
  }> {
    const bucket = `${this.name}_bucket`;
    const values: HistogramValue[] = [];
    let total = 0;
    for (const [i, le] of [...this.bounds, '+Inf'].entries()) {
      total += this.counts[i]!;
      values.push({ labels: { le }, value: total, metricName: bucket });
    }
    values.push(
      { labels: {}, value: this.sum, metricName: `${this.name}_sum` },
      { labels: {}, value: total, metricName: `${this.name}_count` },
    );
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
