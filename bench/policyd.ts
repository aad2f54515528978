// Cached-query benchmark of `mxguard policyd` against postfix-mta-sts-resolver (Debian package, on uvloop),
// in the same run, interleaved and repeated (issue 5; results in BENCHMARKS.md as ratios). bench/README.md
// says what each number means.
//
//   npx tsc -p tsconfig.json && node --import tsx bench/policyd.ts [--rounds 3] [--seconds 10]
//     [--concurrency 1,10,50] [--domains 16] [--targets ours,peer,peer-sqlite[,baseline]] [--no-pin]
//     [--daemon-cpu 1] [--client native|node] [--transport tcp|unix] [--peer-cache-grace SECONDS] [--json FILE]
//     [--cpu-prof DIR] [--quiet-threshold PCT] [--quiet-wait SECONDS] [--max-others PCT] [--max-steal PCT]
//     [--attempts N]
//   node --import tsx bench/policyd.ts --from-json FILE   (the report of an earlier --json FILE again)
//
// What it does:
// - a lab on loopback (LAB-NOTES): the lab DNS server on 127.0.62.53:53 and the lab HTTPS policy host on
//   127.0.62.1:443 (the peer reads /etc/resolv.conf and fetches from port 443; it runs in a private mount
//   namespace with the lab's resolv.conf, see test/lab/peer-resolver.ts), `--domains` domains with an
//   `enforce` policy each;
// - the daemons: ours; `peer` (postfix-mta-sts-resolver, in-memory cache); `peer-sqlite` (the same with the
//   sqlite cache Debian's /etc/mta-sts-daemon.yml configures); `baseline` (a bare Node netstring responder:
//   one fixed reply, no logic, reading into one reused buffer as our daemon does);
// - every daemon pinned to CPU 1 (`taskset -c 1`; `--daemon-cpu 0` swaps), this process and the client to the
//   other CPU, so the client's own CPU does not come out of the daemon's; `--no-pin` leaves scheduling to the
//   kernel;
// - every domain queried once on each daemon (the fetch), answers checked to agree, then 2 s of warm-up
//   at the highest concurrency (JIT, caches);
// - rounds x concurrency levels x daemons of `--seconds` each, the daemon order alternating per round: a
//   closed loop per connection (one query outstanding, no pipelining; bench/closed-loop.c, or with
//   `--client node` test/helpers/netstring-client.ts in this process), domains round-robin; throughput,
//   p50/p99 latency (write to last reply byte), the daemon's own CPU time per query (utime+stime from
//   /proc/PID/stat, the daemon and its descendants; stime, the kernel's part, also on its own), the client's
//   CPU per query, and the machine's CPU steal and load (from /proc/stat and /proc/loadavg) during the run;
//   how often the daemon's event-loop thread went to sleep (voluntary context switches: it had nothing to do)
//   or was preempted, and how often the client slept, per 1000 queries; the DNS queries the lab server got
//   (the peer checks a cached policy's TXT id again once it is older than its `cache_grace`,
//   `--peer-cache-grace`, default 60 s as the peer's own default);
// - before each run, a wait (at most --quiet-wait s, default 60) until other processes on the machine use
//   less than --quiet-threshold % (default 10) of both CPUs: this machine is shared; a run during which other
//   processes used more than --max-others % (default 10), or during which the hypervisor stole more than
//   --max-steal % (default 3) of the CPU time, is done again, up to --attempts (default 4) in all,
//   keeping the least disturbed one;
// - medians over rounds, and for each peer the median of the per-round ratios ours/peer, printed as Markdown.
// `--transport unix` has every daemon listen on a UNIX socket instead of 127.0.0.1 (Postfix's
// `socketmap:unix:PATH`; the loopback TCP path is most of a cached query's kernel time).
// `--cpu-prof DIR` runs our daemon under `node --cpu-prof` (profile written when it exits at the end).
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ClosedLoop, type Endpoint, socketmapQuery } from '../test/helpers/netstring-client.js';
import { standardChain, TestPki } from '../test/helpers/pki.js';
import { type LabRecord, startDnsServer } from '../test/lab/dns-server.js';
import { Daemon, requireCommand, requireRoot } from '../test/lab/dnssec.js';
import { labCert, startPolicyHost } from '../test/lab/https-server.js';
import { startPeerResolver, writeLabResolvConf } from '../test/lab/peer-resolver.js';
import { freePort } from '../test/lab/redis.js';
import { buildClosedLoop, NativeClosedLoop } from './closed-loop.js';
import { median } from './stats.js';

const BIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const DNS_ADDRESS = '127.0.62.53';
const WEB_ADDRESS = '127.0.62.1';
const WARMUP_SECONDS = 2;
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/**
 * `peer`: postfix-mta-sts-resolver with its in-memory cache (its fastest configuration); `peer-sqlite`: the same
 * daemon with the sqlite cache that Debian's /etc/mta-sts-daemon.yml configures (what a packaged install runs,
 * and like our default a cache that survives restarts).
 */
const TARGET_NAMES = ['ours', 'peer', 'peer-sqlite', 'baseline'] as const;
type TargetName = (typeof TARGET_NAMES)[number];
const PEERS = ['peer', 'peer-sqlite'] as const;

interface Target {
  name: TargetName;
  endpoint: Endpoint;
  pid: number;
  /** Reply payload expected for each domain's request. */
  expected: string[];
  stop(): Promise<void>;
}

interface Run {
  target: Target['name'];
  concurrency: number;
  round: number;
  queries: number;
  seconds: number;
  qps: number;
  p50us: number;
  p99us: number;
  cpuUsPerQuery: number;
  /** The part of cpuUsPerQuery spent in the kernel (stime): system calls, the loopback TCP path. */
  systemUsPerQuery: number;
  /** The client's own CPU (utime + stime) per query: near 1 s per second of run, the client is the limit. */
  clientUsPerQuery: number;
  /** The client's CPU time over the run's wall time, in % of one CPU. */
  clientBusyPct: number;
  /** Share of all CPU time stolen by the hypervisor during the run, in %. */
  stealPct: number;
  /**
   * Share of all CPU time (both CPUs) used by other processes than the daemon and this client during the run,
   * in % (50 = one whole CPU): other work on the machine competing with the benchmark.
   */
  othersPct: number;
  /** Runs done to get this one (more than 1 when other work disturbed the first ones). */
  attempts: number;
  /** 1-minute load average at the end of the run. */
  load: number;
  mismatches: number;
  /**
   * Voluntary context switches of the daemon's main thread per 1000 queries: how often its event loop found
   * nothing to do and slept (absent in runs saved before this field existed).
   */
  daemonSleepsPerK?: number;
  /** Involuntary context switches of the daemon's main thread per 1000 queries (preempted). */
  daemonPreemptedPerK?: number;
  /** Voluntary context switches of the client per 1000 queries (the native client; 0 for the Node one). */
  clientSleepsPerK?: number;
  /** DNS queries the lab DNS server received during the run (a daemon checking its cache against DNS). */
  dnsQueries?: number;
  /** Moves of the daemon's main thread and of the client to another CPU during the run (/proc/PID/sched). */
  daemonMigrations?: number;
  clientMigrations?: number;
}

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '1,10,50' },
    domains: { type: 'string', default: '16' },
    targets: { type: 'string', default: 'ours,peer,peer-sqlite' },
    'no-pin': { type: 'boolean', default: false },
    transport: { type: 'string', default: 'tcp' },
    json: { type: 'string' },
    'cpu-prof': { type: 'string' },
    client: { type: 'string', default: 'native' },
    'from-json': { type: 'string' },
    'quiet-threshold': { type: 'string', default: '10' },
    'quiet-wait': { type: 'string', default: '60' },
    'max-others': { type: 'string', default: '10' },
    'max-steal': { type: 'string', default: '3' },
    attempts: { type: 'string', default: '4' },
    'peer-cache-grace': { type: 'string', default: '60' },
    'daemon-cpu': { type: 'string', default: '1' },
  },
});
const rounds = positive(args.rounds, '--rounds');
const seconds = positive(args.seconds, '--seconds');
const levels = args.concurrency.split(',').map((c) => positive(c, '--concurrency'));
const domainCount = positive(args.domains, '--domains');
const pin = !args['no-pin'];
/** With pinning, every daemon runs on this CPU and the client (and this process) on the other one. */
const DAEMON_CPU = Number(args['daemon-cpu']);
if (DAEMON_CPU !== 0 && DAEMON_CPU !== 1) throw new Error('--daemon-cpu: 0 or 1');
const CLIENT_CPU = 1 - DAEMON_CPU;
const quietThreshold = Number(args['quiet-threshold']);
const quietWait = Number(args['quiet-wait']);
const maxOthers = Number(args['max-others']);
const maxSteal = Number(args['max-steal']);
const attempts = positive(args.attempts, '--attempts');
/** The peers' `cache_grace` (seconds a cached policy is used before its TXT id is checked again). */
const peerCacheGrace = positive(args['peer-cache-grace'], '--peer-cache-grace');
const wanted = new Set(args.targets.split(','));
if (args.transport !== 'tcp' && args.transport !== 'unix') throw new Error('--transport: tcp or unix');
const unix = args.transport === 'unix';
if (args.client !== 'native' && args.client !== 'node') throw new Error('--client: native or node');
/** The native client's binary (built at start), or undefined for the Node client. */
let nativeClient: string | undefined;
/** How many queries the lab DNS server has received so far. */
let labDnsQueries: () => number = () => 0;
for (const t of wanted) {
  if (!(TARGET_NAMES as readonly string[]).includes(t))
    throw new Error(`--targets: unknown "${t}" (${TARGET_NAMES.join(', ')})`);
}

function positive(text: string, option: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${option}: "${text}" is not a positive integer`);
  return n;
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function main(): Promise<void> {
  if (args['from-json']) {
    // Print the report of an earlier run again (e.g. after a change to the report's layout).
    const saved = JSON.parse(readFileSync(args['from-json'], 'utf8')) as {
      rounds: number;
      levels: number[];
      runs: Run[];
    };
    const names = TARGET_NAMES.filter((n) => saved.runs.some((r) => r.target === n));
    process.stdout.write(report(saved.runs, saved.levels, names, saved.rounds));
    return;
  }
  requireRoot('the policyd benchmark');
  const taskset = requireCommand('taskset', 'util-linux');
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build first (npx tsc -p tsconfig.json)`);
  if (wanted.has('ours')) {
    if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build first (npx tsc -p tsconfig.json)`);
    const help = spawnText(process.execPath, [BIN, 'policyd', '--help']);
    if (!help.includes('--listen')) throw new Error('dist/cli/main.js has no `policyd` command yet');
  }
  if (pin)
    execFileSync(taskset, ['-a', '-p', '-c', String(CLIENT_CPU), String(process.pid)], { stdio: 'ignore' });

  const work = mkdtempSync(join(tmpdir(), 'mxguard-bench-'));
  if (args.client === 'native') nativeClient = buildClosedLoop(work);
  const pki = TestPki.create('mxguard-bench-pki-');
  const cleanups: Array<() => Promise<void>> = [];
  try {
    const domains = Array.from({ length: domainCount }, (_, i) => `d${i}.bench.test`);
    const chain = standardChain(pki, {
      host: 'mta-sts.bench.test',
      sans: domains.map((d) => `mta-sts.${d}`),
    });
    const caFile = pki.writeChain('ca.pem', [chain.root]);
    const records: LabRecord[] = [];
    const sites: Record<string, { kind: 'serve'; body: string }> = {};
    for (const d of domains) {
      records.push(
        { name: d, type: 'MX', data: { preference: 10, exchange: `mx.${d}` } },
        { name: `mx.${d}`, type: 'A', data: WEB_ADDRESS },
        { name: `_mta-sts.${d}`, type: 'TXT', data: ['v=STSv1; id=20240101'] },
        { name: `mta-sts.${d}`, type: 'A', data: WEB_ADDRESS },
      );
      sites[`mta-sts.${d}`] = {
        kind: 'serve',
        body: `version: STSv1\nmode: enforce\nmx: mx.${d}\nmx: *.backup.${d}\nmax_age: 604800\n`,
      };
    }
    const dns = await startDnsServer([{ origin: 'bench.test', records }], { host: DNS_ADDRESS, port: 53 });
    cleanups.push(() => dns.stop());
    labDnsQueries = () => dns.queries.length;
    const web = await startPolicyHost({
      host: WEB_ADDRESS,
      port: 443,
      defaultCert: labCert(chain.leaf.key, [chain.leaf, chain.intermediate]),
      sites,
    });
    cleanups.push(() => web.stop());

    const requests = domains.map((d) => `postfix ${d}`);
    const targets: Target[] = [];
    if (wanted.has('ours')) {
      const ours = await startOurs(taskset, caFile, work, domains);
      cleanups.push(() => ours.stop());
      targets.push(ours);
    }
    for (const name of PEERS.filter((p) => wanted.has(p))) {
      const peerDaemon = await startPeerResolver({
        resolvConfPath: writeLabResolvConf(work, DNS_ADDRESS),
        caFile,
        cpu: pin ? DAEMON_CPU : undefined,
        socketPath: unix ? join(work, `${name}.sock`) : undefined,
        cache: name === 'peer-sqlite' ? 'sqlite' : 'internal',
        cacheGrace: peerCacheGrace,
      });
      cleanups.push(() => peerDaemon.stop());
      if (!peerDaemon.uvloop)
        throw new Error('postfix-mta-sts-resolver is not on uvloop: install python3-uvloop');
      targets.push({
        name,
        endpoint: peerDaemon.endpoint,
        pid: peerDaemon.pid,
        expected: [],
        stop: () => peerDaemon.stop(),
      });
    }
    if (wanted.has('baseline')) {
      const baseline = await startBaseline(taskset, work);
      cleanups.push(() => baseline.stop());
      targets.push(baseline);
    }

    // The fetch: each domain once, answers must agree (as sets of match patterns).
    for (const target of targets.filter((t) => t.name !== 'baseline')) {
      for (const d of domains) target.expected.push(await socketmapQuery(target.endpoint, 'postfix', d));
    }
    const ours = targets.find((t) => t.name === 'ours');
    for (const [i, d] of domains.entries()) {
      for (const t of targets.filter((t) => t.name !== 'baseline')) {
        if (!t.expected[i]!.startsWith('OK secure match='))
          throw new Error(`${t.name} ${d}: "${t.expected[i]}" is not an "OK secure match=" answer`);
        if (ours && normalizeAnswer(ours.expected[i]!) !== normalizeAnswer(t.expected[i]!))
          throw new Error(`${d}: answers differ: ours "${ours.expected[i]}", ${t.name} "${t.expected[i]}"`);
      }
    }
    for (const target of targets) {
      // The fetch answers must be what the cache answers from now on.
      for (const [i, d] of domains.entries()) {
        const again = await socketmapQuery(target.endpoint, 'postfix', d);
        if (again !== target.expected[i])
          throw new Error(`${target.name} ${d}: "${again}" after "${target.expected[i]}"`);
      }
      log(
        `warm-up ${target.name} (pid ${target.pid}): ${WARMUP_SECONDS} s at ${Math.max(...levels)} connections`,
      );
      await measure(target, requests, Math.max(...levels), WARMUP_SECONDS, 0);
    }

    const runs: Run[] = [];
    for (let round = 1; round <= rounds; round++) {
      for (const concurrency of levels) {
        const order = round % 2 === 1 ? targets : [...targets].reverse();
        for (const target of order) {
          // A run disturbed by other work on the machine or by the hypervisor taking CPU time (steal) is done
          // again; the least disturbed attempt is kept.
          const disturbed = (r: Run) => r.othersPct > maxOthers || r.stealPct > maxSteal;
          const disturbance = (r: Run) => r.othersPct + r.stealPct;
          let run: Run | undefined;
          for (let attempt = 1; attempt <= attempts && (run === undefined || disturbed(run)); attempt++) {
            const waited = await waitForQuiet();
            if (waited !== undefined)
              log(`  (waited ${waited.seconds} s for a quiet machine; others at ${waited.pct.toFixed(0)} %)`);
            const next = await measure(target, requests, concurrency, seconds, round);
            next.attempts = attempt;
            if (run !== undefined)
              log(
                `  (attempt ${attempt}: others at ${next.othersPct.toFixed(1)} %, steal ${next.stealPct.toFixed(1)} %)`,
              );
            if (run === undefined || disturbance(next) < disturbance(run)) run = next;
          }
          if (run === undefined) throw new Error('no run');
          runs.push(run);
          log(
            `round ${round} ${target.name.padEnd(11)} c=${String(concurrency).padStart(2)}: ` +
              `${Math.round(run.qps)} q/s, p50 ${run.p50us.toFixed(0)} µs, p99 ${run.p99us.toFixed(0)} µs, ` +
              `${run.cpuUsPerQuery.toFixed(1)} µs CPU/query (${run.systemUsPerQuery.toFixed(1)} kernel), ` +
              `client ${run.clientUsPerQuery.toFixed(1)} µs/query (${run.clientBusyPct.toFixed(0)} % busy), steal ${run.stealPct.toFixed(1)} %, ` +
              `others ${run.othersPct.toFixed(1)} %, load ${run.load}, per 1000 queries the daemon slept ` +
              `${run.daemonSleepsPerK?.toFixed(0)} times (preempted ${run.daemonPreemptedPerK?.toFixed(0)}), ` +
              `the client ${run.clientSleepsPerK?.toFixed(0)}; ${run.dnsQueries} lab DNS queries; ` +
              `CPU changes: daemon ${run.daemonMigrations}, client ${run.clientMigrations}` +
              (run.mismatches ? `, ${run.mismatches} WRONG ANSWERS` : ''),
          );
        }
      }
    }
    if (runs.some((r) => r.mismatches > 0))
      throw new Error('a daemon gave an answer other than its first one');

    for (const target of targets) {
      log(`${target.name}: VmRSS ${rss(target.pid)} at the end`);
    }
    process.stdout.write(
      report(
        runs,
        levels,
        targets.map((t) => t.name),
        rounds,
      ),
    );
    if (args.json)
      writeFileSync(
        args.json,
        `${JSON.stringify({ rounds, seconds, levels, pin, daemonCpu: DAEMON_CPU, domains: domainCount, transport: args.transport, peerCacheGrace, runs }, null, 2)}\n`,
      );
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err) => log(`cleanup: ${err}`));
    pki.remove();
    rmSync(work, { recursive: true, force: true });
  }
}

async function startOurs(taskset: string, caFile: string, work: string, domains: string[]): Promise<Target> {
  const port = await freePort();
  const dataDir = join(work, 'data');
  mkdirSync(dataDir);
  const node = [process.execPath];
  if (args['cpu-prof']) node.push('--cpu-prof', '--cpu-prof-dir', args['cpu-prof']);
  const endpoint: Endpoint = unix ? { path: join(work, 'ours.sock') } : { host: '127.0.0.1', port };
  const daemonArgs = [
    BIN,
    'policyd',
    ...('path' in endpoint ? ['--socket', endpoint.path] : ['--listen', `127.0.0.1:${port}`]),
    '--resolver',
    `${DNS_ADDRESS}:53`,
    '--ca-file',
    caFile,
    '--allow-private',
    '--https-port',
    '443',
    '--data-dir',
    dataDir,
  ];
  const command = pin
    ? [taskset, '-c', String(DAEMON_CPU), ...node, ...daemonArgs]
    : [...node, ...daemonArgs];
  const daemon = new Daemon('mxguard policyd', command[0]!, command.slice(1));
  await daemon.waitFor(async () => {
    try {
      await socketmapQuery(endpoint, 'postfix', `${domains[0]}.unused.invalid`);
      return true;
    } catch {
      return false;
    }
  });
  return {
    name: 'ours',
    endpoint,
    pid: daemon.process.pid ?? 0,
    expected: [],
    stop: async () => {
      await daemon.stop();
      if (daemon.process.exitCode !== 0 && daemon.process.exitCode !== null) log(daemon.log);
    },
  };
}

/**
 * A netstring responder with no logic at all: one fixed reply per request. The client's ceiling. It reads into
 * one reused buffer (net.Socket's `onread`, on the accepted socket's handle), as src/policyd/server.ts does.
 */
async function startBaseline(taskset: string, work: string): Promise<Target> {
  const endpoint: Endpoint = unix
    ? { path: join(work, 'baseline.sock') }
    : { host: '127.0.0.1', port: await freePort() };
  const reply = 'OK secure match=mx.d0.bench.test:.backup.d0.bench.test servername=hostname';
  const code = `
    const net = require('node:net');
    const reply = Buffer.from(${JSON.stringify(`${reply.length}:${reply},`)});
    const buffer = Buffer.alloc(65536);
    net.createServer({ pauseOnConnect: true }, (accepted) => {
      const handle = accepted._handle;
      accepted._handle = null;
      accepted.destroy();
      const s = new net.Socket({ handle, onread: { buffer, callback: (n) => {
        for (let i = 0; i < n; i++) if (buffer[i] === 44) s.write(reply);
      } } });
      s.setNoDelay(true);
      s.on('error', () => {});
    }).listen(${JSON.stringify(endpoint)}, () => console.log('ready'));
    process.on('SIGTERM', () => process.exit(0));`;
  const command = pin
    ? [taskset, '-c', String(DAEMON_CPU), process.execPath, '-e', code]
    : [process.execPath, '-e', code];
  const daemon = new Daemon('baseline', command[0]!, command.slice(1));
  await daemon.waitFor(/ready/);
  return {
    name: 'baseline',
    endpoint,
    pid: daemon.process.pid ?? 0,
    expected: Array.from({ length: domainCount }, () => reply),
    stop: () => daemon.stop(),
  };
}

async function measure(
  target: Target,
  requests: string[],
  concurrency: number,
  duration: number,
  round: number,
): Promise<Run> {
  const load = await (nativeClient === undefined ? openNodeLoad : openNativeLoad)(
    target,
    requests,
    concurrency,
  );
  // The daemon's, the client's and the machine's CPU are read just before the loops start and just after the
  // run's time.
  const sample = () => ({
    daemon: processTreeTicks(target.pid),
    self: processTicks(process.pid),
    client: load.clientTicks(),
    stat: machineTicks(),
    daemonSwitches: contextSwitches(target.pid),
    clientSwitches: load.clientPid === undefined ? undefined : contextSwitches(load.clientPid),
    dns: labDnsQueries(),
  });
  let result: LoadResult;
  let begin: ReturnType<typeof sample>;
  let end: ReturnType<typeof sample>;
  try {
    begin = sample();
    load.go();
    await new Promise((resolve) => setTimeout(resolve, duration * 1000));
    end = sample();
    result = await load.stop();
  } finally {
    load.close();
  }
  if (result.error !== undefined)
    throw new Error(`${target.name} at ${concurrency} connections: ${result.error}`);
  const { queries, seconds: elapsed } = result;
  const total = end.stat.total - begin.stat.total;
  const daemonTicks = end.daemon.total - begin.daemon.total;
  const clientTicks = end.client - begin.client;
  // The Node client's ticks are this process's own.
  const otherTicks = daemonTicks + (end.self - begin.self) + (nativeClient ? clientTicks : 0);
  const perQuery = (ticks: number) => (queries === 0 ? 0 : ((ticks / CLOCK_TICKS) * 1e6) / queries);
  const perThousand = (count: number) => (queries === 0 ? 0 : (count * 1000) / queries);
  return {
    target: target.name,
    concurrency,
    round,
    queries,
    seconds: elapsed,
    qps: queries / elapsed,
    p50us: result.p50us,
    p99us: result.p99us,
    cpuUsPerQuery: perQuery(daemonTicks),
    systemUsPerQuery: perQuery(end.daemon.system - begin.daemon.system),
    clientUsPerQuery: perQuery(clientTicks),
    clientBusyPct: (clientTicks / CLOCK_TICKS / elapsed) * 100,
    stealPct: total > 0 ? ((end.stat.steal - begin.stat.steal) / total) * 100 : 0,
    othersPct: total > 0 ? (Math.max(0, end.stat.busy - begin.stat.busy - otherTicks) / total) * 100 : 0,
    load: Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]),
    mismatches: result.mismatches,
    attempts: 1,
    daemonSleepsPerK: perThousand(end.daemonSwitches.voluntary - begin.daemonSwitches.voluntary),
    daemonPreemptedPerK: perThousand(end.daemonSwitches.involuntary - begin.daemonSwitches.involuntary),
    clientSleepsPerK: perThousand(
      (end.clientSwitches?.voluntary ?? 0) - (begin.clientSwitches?.voluntary ?? 0),
    ),
    dnsQueries: end.dns - begin.dns,
    daemonMigrations: end.daemonSwitches.migrations - begin.daemonSwitches.migrations,
    clientMigrations: (end.clientSwitches?.migrations ?? 0) - (begin.clientSwitches?.migrations ?? 0),
  };
}

/** A client with its connections open: go() starts the loops, stop() ends them and tells what they did. */
interface Load {
  go(): void;
  stop(): Promise<LoadResult>;
  /** The client's CPU time so far (clock ticks). */
  clientTicks(): number;
  /** The client's process when it is not this one (the native client). */
  clientPid?: number;
  close(): void;
}

interface LoadResult {
  /** Replies between go() and stop(). */
  queries: number;
  seconds: number;
  p50us: number;
  p99us: number;
  mismatches: number;
  /** Why the loops ended early, if they did. */
  error?: string;
}

/** bench/closed-loop.c, a child process on this process's CPU; it measures its own latencies. */
async function openNativeLoad(target: Target, requests: string[], concurrency: number): Promise<Load> {
  const queries = requests.map((request, i) => ({ request, expected: target.expected[i]! }));
  const loop = await NativeClosedLoop.start(nativeClient!, target.endpoint, concurrency, queries, tmpdir());
  return {
    go: () => loop.go(),
    clientTicks: () => processTicks(loop.pid),
    clientPid: loop.pid,
    close: () => loop.kill(),
    stop: async () => {
      const result = await loop.stop();
      return {
        queries: result.completed,
        seconds: result.seconds,
        p50us: result.p50Ns / 1000,
        p99us: result.p99Ns / 1000,
        mismatches: result.mismatches,
        error: result.error ?? undefined,
      };
    },
  };
}

/** test/helpers/netstring-client.ts's ClosedLoop, one per connection, in this process. */
async function openNodeLoad(target: Target, requests: string[], concurrency: number): Promise<Load> {
  // Latencies in a typed array grown by doubling: no boxed numbers for the collector to scan mid-run.
  let latencies = new Float64Array(1 << 20);
  let count = 0;
  const record = (ns: number) => {
    if (count === latencies.length) {
      const grown = new Float64Array(latencies.length * 2);
      grown.set(latencies);
      latencies = grown;
    }
    latencies[count++] = ns;
  };
  const loops: ClosedLoop[] = [];
  for (let i = 0; i < concurrency; i++) {
    // Each connection starts at another domain, so the daemon sees a mix at every moment.
    const shift = i % requests.length;
    const rotate = <T>(list: T[]) => [...list.slice(shift), ...list.slice(0, shift)];
    loops.push(await ClosedLoop.open(target.endpoint, rotate(requests), rotate(target.expected), record));
  }
  let t0 = 0n;
  return {
    go: () => {
      t0 = process.hrtime.bigint();
      for (const loop of loops) loop.start();
    },
    clientTicks: () => processTicks(process.pid),
    close: () => {
      for (const loop of loops) loop.close();
    },
    stop: async () => {
      const queries = loops.reduce((n, l) => n + l.completed, 0);
      const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
      const errors = await Promise.all(loops.map((l) => l.stop()));
      const sorted = latencies.subarray(0, count).sort();
      const quantile = (q: number) => (sorted[Math.min(count - 1, Math.floor(q * count))] ?? 0) / 1000;
      return {
        queries,
        seconds: elapsed,
        p50us: quantile(0.5),
        p99us: quantile(0.99),
        mismatches: loops.reduce((n, l) => n + l.mismatches, 0),
        error: errors.find((e) => e !== undefined)?.message,
      };
    },
  };
}

/**
 * Other work on this shared machine distorts a run more than anything else: before each run, wait (at most
 * --quiet-wait seconds) until the processes other than this one and its daemons used less than
 * --quiet-threshold % of both CPUs over one second. Says how long it waited, if it did.
 */
async function waitForQuiet(): Promise<{ seconds: number; pct: number } | undefined> {
  const started = Date.now();
  for (;;) {
    const self0 = processTreeTicks(process.pid).total;
    const stat0 = machineTicks();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const self1 = processTreeTicks(process.pid).total;
    const stat1 = machineTicks();
    const total = stat1.total - stat0.total;
    const pct = total > 0 ? (Math.max(0, stat1.busy - stat0.busy - (self1 - self0)) / total) * 100 : 0;
    const seconds = Math.round((Date.now() - started) / 1000);
    if (pct < quietThreshold) return seconds > 1 ? { seconds, pct } : undefined;
    if (seconds >= quietWait) return { seconds, pct };
  }
}

/**
 * Context switches of a process's main thread (/proc/PID/status): voluntary (it blocked, e.g. in epoll_wait
 * with nothing to do) and involuntary (preempted); and its moves to another CPU (/proc/PID/sched, 0 when the
 * kernel does not have it). The main thread is the event loop of every daemon here.
 */
function contextSwitches(pid: number): { voluntary: number; involuntary: number; migrations: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  let migrations = 0;
  try {
    migrations = Number(
      /^se\.nr_migrations\s*:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/sched`, 'utf8'))?.[1] ?? 0,
    );
  } catch {
    // no /proc/PID/sched (a kernel without CONFIG_SCHED_DEBUG)
  }
  return {
    voluntary: field('voluntary_ctxt_switches'),
    involuntary: field('nonvoluntary_ctxt_switches'),
    migrations,
  };
}

/** utime + stime (clock ticks) of one process (all its threads, not its children). */
function processTicks(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** utime + stime (total) and stime alone (system), in clock ticks, of a process and all its descendants. */
function processTreeTicks(root: number): { total: number; system: number } {
  const stats = new Map<number, { ppid: number; utime: number; stime: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const text = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after "(comm)": state ppid ... utime(14) stime(15), numbered from 1 with pid and comm.
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(entry), {
        ppid: Number(fields[1]),
        utime: Number(fields[11]),
        stime: Number(fields[12]),
      });
    } catch {
      // the process ended meanwhile
    }
  }
  const tree = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, s] of stats) {
      if (!tree.has(pid) && tree.has(s.ppid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  let total = 0;
  let system = 0;
  for (const pid of tree) {
    total += (stats.get(pid)?.utime ?? 0) + (stats.get(pid)?.stime ?? 0);
    system += stats.get(pid)?.stime ?? 0;
  }
  return { total, system };
}

/** The first line of /proc/stat: all CPUs' ticks in total, stolen, and busy (neither idle nor stolen). */
function machineTicks(): { total: number; steal: number; busy: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
  const at = (i: number) => v[i] ?? 0;
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { total, steal: at(7), busy: at(0) + at(1) + at(2) + at(5) + at(6) };
}

function rss(pid: number): string {
  try {
    return /VmRSS:\s*(.*)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';
  } catch {
    return '?';
  }
}

/** The answer with its match patterns sorted (the peer lists them in Python set order). */
function normalizeAnswer(answer: string): string {
  return answer.replace(/match=(\S*)/, (_, list: string) => `match=${list.split(':').sort().join(':')}`);
}

function report(runs: Run[], levels: number[], names: Target['name'][], roundCount: number): string {
  const lines: string[] = [];
  const pick = (name: string, c: number) => runs.filter((r) => r.target === name && r.concurrency === c);
  /** One ratio column per peer measured beside ours. */
  const peers = names.includes('ours') ? PEERS.filter((p) => names.includes(p)) : [];
  /** The median over rounds of ours/peer, each round's runs paired (they ran back to back). */
  const ratio = (peerName: string, c: number, metric: (r: Run) => number) => {
    const peer = new Map(pick(peerName, c).map((r) => [r.round, r]));
    return median(
      pick('ours', c)
        .filter((r) => peer.has(r.round))
        .map((r) => metric(r) / metric(peer.get(r.round)!)),
    );
  };
  const fmt = (n: number, digits = 0) => n.toFixed(digits);
  const metrics: Array<[string, (r: Run) => number, number]> = [
    ['throughput (queries/s)', (r) => r.qps, 0],
    ['p50 latency (µs)', (r) => r.p50us, 0],
    ['p99 latency (µs)', (r) => r.p99us, 0],
    ['daemon CPU per query (µs)', (r) => r.cpuUsPerQuery, 1],
    ['of which in the kernel (µs)', (r) => r.systemUsPerQuery, 1],
  ];
  lines.push('');
  lines.push(
    `| connections | metric (median of ${roundCount} rounds) | ${names.join(' | ')} |${peers.map((p) => ` ours / ${p} |`).join('')}`,
  );
  lines.push(`|---:|---|${names.map(() => '---:|').join('')}${peers.map(() => '---:|').join('')}`);
  for (const c of levels) {
    for (const [label, metric, digits] of metrics) {
      const cells = names.map((n) => fmt(median(pick(n, c).map(metric)), digits));
      lines.push(
        `| ${c} | ${label} | ${cells.join(' | ')} |${peers.map((p) => ` ${fmt(ratio(p, c, metric), 2)} |`).join('')}`,
      );
    }
    // How the daemon and the client waited for each other (not in runs saved before these were counted).
    for (const [label, metric] of [
      ['daemon slept, per 1000 queries', (r: Run) => r.daemonSleepsPerK],
      ['client slept, per 1000 queries', (r: Run) => r.clientSleepsPerK],
    ] as const) {
      if (runs.some((r) => metric(r) === undefined)) continue;
      const cells = names.map((n) => fmt(median(pick(n, c).map((r) => metric(r) ?? 0))));
      lines.push(`| ${c} | ${label} | ${cells.join(' | ')} |${peers.map(() => ' |').join('')}`);
    }
    for (const [label, metric] of [
      ['client busy (% of its CPU, min to max)', (r: Run) => r.clientBusyPct],
      ['CPU steal (% of both CPUs, min to max)', (r: Run) => r.stealPct],
      ['other processes (% of both CPUs, min to max)', (r: Run) => r.othersPct],
    ] as const) {
      const cells = names.map((n) => {
        const v = pick(n, c).map(metric);
        return `${fmt(Math.min(...v), 1)} to ${fmt(Math.max(...v), 1)}`;
      });
      lines.push(`| ${c} | ${label} | ${cells.join(' | ')} |${peers.map(() => ' |').join('')}`);
    }
  }
  lines.push('');
  if (peers.length > 0)
    lines.push("Ratios: the median over rounds of ours / peer, each round's pair run back to back.", '');
  lines.push(
    'Every run (round, daemon, connections, queries/s, p50 µs, p99 µs, CPU µs/query, of which kernel µs/query, ' +
      'client CPU µs/query, client busy %, steal %, others %, load, attempts; then, per 1000 queries, the ' +
      "daemon's sleeps and preemptions and the client's sleeps, and the lab DNS queries during the run):",
  );
  lines.push('');
  lines.push('```');
  for (const r of runs) {
    lines.push(
      [
        r.round,
        r.target.padEnd(11),
        String(r.concurrency).padStart(2),
        fmt(r.qps).padStart(7),
        fmt(r.p50us).padStart(6),
        fmt(r.p99us).padStart(6),
        fmt(r.cpuUsPerQuery, 1).padStart(6),
        fmt(r.systemUsPerQuery, 1).padStart(6),
        fmt(r.clientUsPerQuery, 1).padStart(6),
        fmt(r.clientBusyPct).padStart(4),
        fmt(r.stealPct, 1).padStart(5),
        fmt(r.othersPct, 1).padStart(5),
        String(r.load).padStart(5),
        r.attempts,
        ...(r.daemonSleepsPerK === undefined
          ? []
          : [
              fmt(r.daemonSleepsPerK).padStart(4),
              fmt(r.daemonPreemptedPerK ?? 0).padStart(4),
              fmt(r.clientSleepsPerK ?? 0).padStart(4),
              String(r.dnsQueries ?? 0).padStart(4),
            ]),
      ].join(' '),
    );
  }
  lines.push('```');
  lines.push('');
  return `${lines.join('\n')}\n`;
}

function spawnText(command: string, argv: string[]): string {
  try {
    return execFileSync(command, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return `${e.stdout ?? ''}${e.stderr ?? ''}`;
  }
}

main().catch((err) => {
  log(`bench/policyd: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
