// Benchmark: `mxguard serve` on PostgreSQL against SQLite (issue 16), in the same run.
//
//   npx tsc -p tsconfig.json && node --import tsx bench/serve-postgres.ts [--rounds 3] [--seconds 10]
//       [--connections 8] [--profile-seconds 5] [--nice=-10] [--pg-setting NAME=VALUE...] [--json FILE]
//
// Setups, each on a fresh database with one hosted domain, every serve a separate process (`workers: 1`,
// loopback, HTTPS with one self-signed EC P-256 certificate, its default limits but no intake rate limit):
//   sqlite-1  one serve on SQLite (its default store in the data directory);
//   pg-1      one serve on PostgreSQL;
//   pg-2      two serves (two instances, each with its own data directory) on one PostgreSQL database.
// PostgreSQL 15 (Debian) runs on 127.0.0.1 as this benchmark's child, configured as a real install is:
// fsync, full_page_writes and synchronous_commit on (the defaults), so a report is on disk when it is
// acknowledged, as SQLite's synchronous=FULL does. Only shared_buffers (128 MB) and max_connections
// (100) are PostgreSQL's defaults too.
//
// Two loads per setup, measured with wrk (C, keep-alive, over HTTPS), `--seconds` each:
//   intake   POST /tlsrpt of TLS-RPT JSON reports (application/tlsrpt+json, ~1 KB, one policy and two
//            failure rows, each with its own report-id, made by wrk's Lua script): acknowledged (2xx)
//            reports per second and wrk's p99. With two instances, `--connections` are split over them
//            (one wrk per instance, run together); reports/s add up, p99 is the worse of the two. After
//            the run the store is asked how many reports it holds: every acknowledged one, once.
//   policy   GET /.well-known/mta-sts.txt (Host mta-sts.bench.test): requests/s and p99 (served from
//            memory; each fetch is logged to the store in batches).
// Rounds alternate the order of the setups. CPU time per process group (serve processes, postgres server
// and backends, wrk) is read from /proc over each intake run, and CPU steal from /proc/stat. Then one
// more pg-2 intake run with instance A under `node --cpu-prof` for `--profile-seconds`: the samples
// of each profile it writes (its main thread's) taken during the load are summed by package and by
// function (where its CPU goes). `--nice N` runs everything started here at that niceness (a shared machine: -10 outweighs the
// other users' processes about 9 to 1). Loopback only; every process started here is stopped by its PID
// and the temporary directory removed. Markdown on stdout, progress on stderr.
// Needs root (PostgreSQL runs as the postgres user), wrk, openssl and the Debian package postgresql.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openStore } from '../src/store/index.js';
import { wireReport } from '../test/fixtures/intake/helpers.js';
import { TestPki } from '../test/helpers/pki.js';
import { freePort } from '../test/helpers/ports.js';
import { type ServeProcess, spawnServe } from '../test/helpers/serve-process.js';
import { median } from './stats.js';

const DOMAIN = 'bench.test';
const POLICY_HOST = `mta-sts.${DOMAIN}`;
const PG_BIN = '/usr/lib/postgresql/15/bin';
const ID_MARK = '@@REPORT-ID@@';

type SetupName = 'sqlite-1' | 'pg-1' | 'pg-2';
const SETUPS: SetupName[] = ['sqlite-1', 'pg-1', 'pg-2'];

interface WrkResult {
  requests: number;
  /** Answers with a status outside 2xx/3xx. */
  non2xx: number;
  /** Connect, read, write and timeout errors. */
  socketErrors: number;
  seconds: number;
  p99Ms: number;
}

interface CpuShare {
  serve: number;
  postgres: number;
  wrk: number;
  /** Everything else on the machine (from /proc/stat minus the above). */
  other: number;
  idle: number;
  steal: number;
}

interface LoadResult {
  perSecond: number;
  p99Ms: number;
  failed: number;
}

interface Measured {
  round: number;
  setup: SetupName;
  intake: LoadResult & { acknowledged: number; stored: number; cpu: CpuShare };
  policy: LoadResult;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '10' },
      connections: { type: 'string', default: '8' },
      'profile-seconds': { type: 'string', default: '5' },
      nice: { type: 'string', default: '0' },
      'pg-setting': { type: 'string', multiple: true, default: [] },
      json: { type: 'string' },
    },
  });
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const connections = Number(values.connections);
  const profileSeconds = Number(values['profile-seconds']);
  // On a shared machine: everything this run starts (postgres, serve, wrk) inherits the niceness.
  const nice = Number(values.nice);
  if (nice !== 0) setPriority(0, nice);

  const dir = mkdtempSync(join(tmpdir(), 'mxguard-bench-pg-'));
  // PostgreSQL runs as the postgres user: it must be able to reach its directory inside this one.
  chmodSync(dir, 0o755);
  const stops: Array<() => Promise<unknown>> = [];
  try {
    const pki = TestPki.create();
    stops.push(async () => rmSync(pki.dir, { recursive: true, force: true }));
    const cert = pki.issue(POLICY_HOST, { sans: [POLICY_HOST] });
    const tls = { cert: cert.certPath, key: cert.key.path };
    const script = writeIntakeScript(dir);

    progress('starting PostgreSQL');
    const postgres = await startDurablePostgres(join(dir, 'pg'), values['pg-setting']);
    stops.push(postgres.stop);
    const settings = await postgres.settings();
    progress(`PostgreSQL ${settings}`);

    const runs: Measured[] = [];
    let databases = 0;
    const fresh = async (setup: SetupName) => {
      const name = `${setup.replace('-', '_')}_${++databases}`;
      return setup === 'sqlite-1' ? undefined : postgres.createDatabase(name);
    };
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 === 1 ? [...SETUPS] : [...SETUPS].reverse();
      for (const setup of order) {
        const database = await fresh(setup);
        const instances = await startInstances(dir, `${setup}-${round}`, setup === 'pg-2' ? 2 : 1, {
          database,
          tls,
        });
        try {
          progress(`round ${round}, ${setup}: intake`);
          const intake = await intakeLoad(instances, script, connections, seconds, postgres.pid);
          const stored = await countReports(instances[0]!.dataDir, database);
          progress(`round ${round}, ${setup}: policy`);
          const policy = await policyLoad(instances, connections, seconds);
          runs.push({ round, setup, intake: { ...intake, stored }, policy });
          progress(
            `  intake ${intake.perSecond.toFixed(0)} reports/s p99 ${intake.p99Ms.toFixed(1)} ms ` +
              `(${intake.acknowledged} acknowledged, ${stored} stored); policy ${policy.perSecond.toFixed(0)}/s ` +
              `p99 ${policy.p99Ms.toFixed(2)} ms`,
          );
        } finally {
          await Promise.all(instances.map((i) => i.serve.stop()));
        }
      }
    }

    progress(`profile: pg-2 intake, instance A under --cpu-prof for ${profileSeconds} s`);
    const profileDir = join(dir, 'profile');
    mkdirSync(profileDir);
    const database = await fresh('pg-2');
    const instances = await startInstances(dir, 'profile', 2, { database, tls, cpuProfileDir: profileDir });
    let profiled: LoadResult & { cpu: CpuShare };
    const window = { from: monotonicMicros(), to: 0 };
    try {
      profiled = await intakeLoad(instances, script, connections, profileSeconds, postgres.pid);
      window.to = monotonicMicros();
    } finally {
      await Promise.all(instances.map((i) => i.serve.stop()));
    }
    const profile = summariseProfiles(profileDir, window);

    if (values.json) writeFileSync(values.json, JSON.stringify({ values, settings, runs, profile }, null, 2));
    process.stdout.write(
      report(runs, { rounds, seconds, connections, profileSeconds, nice, settings }, profiled, profile),
    );
  } finally {
    for (const stop of stops.reverse()) await stop().catch((err: Error) => progress(err.message));
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- PostgreSQL as installed ----

/** initdb + postgres as the `postgres` user (we are root), on 127.0.0.1, PostgreSQL's durability defaults. */
async function startDurablePostgres(dir: string, settings: string[]) {
  mkdirSync(dir, { recursive: true });
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
  chownSync(dir, uid, gid);
  const data = join(dir, 'data');
  execFileSync(
    `${PG_BIN}/initdb`,
    ['-D', data, '--auth=trust', '-U', 'postgres', '--encoding=UTF8', '--locale=C'],
    {
      uid,
      gid,
      cwd: dir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const port = await freePort();
  const args = ['-D', data, '-h', '127.0.0.1', '-p', String(port), '-k', dir];
  // --pg-setting NAME=VALUE (diagnostics, e.g. synchronous_commit=off to see what commits cost).
  for (const setting of settings) args.push('-c', setting);
  const child = spawn(`${PG_BIN}/postgres`, args, {
    uid,
    gid,
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (c: Buffer) => {
    log = (log + c.toString()).slice(-16_384);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 30_000;
  while (!/ready to accept connections/.test(log)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`postgres did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = (db: string) => `postgres://postgres@127.0.0.1:${port}/${db}`;
  const admin = async <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: url('postgres') });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };
  return {
    pid: child.pid!,
    async createDatabase(name: string): Promise<string> {
      await admin((c) => c.query(`CREATE DATABASE ${name}`));
      return url(name);
    },
    /** The durability settings in force, as the server reports them. */
    settings: () =>
      admin(async (c) => {
        const names = ['server_version', 'fsync', 'synchronous_commit', 'full_page_writes', 'wal_level'];
        const rows = await c.query<{ name: string; setting: string }>(
          'SELECT name, setting FROM pg_settings WHERE name = ANY($1) ORDER BY name',
          [names],
        );
        return rows.rows.map((r) => `${r.name}=${r.setting}`).join(', ');
      }),
    async stop(): Promise<void> {
      if (child.exitCode !== null) return;
      child.kill('SIGINT'); // fast shutdown
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// ---- serve ----

interface Instance {
  serve: ServeProcess;
  dataDir: string;
  httpsUrl: string;
}

async function startInstances(
  dir: string,
  name: string,
  count: number,
  options: { database?: string; tls: { cert: string; key: string }; cpuProfileDir?: string },
): Promise<Instance[]> {
  const instances: Instance[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const dataDir = join(dir, `${name}-${i}`);
      mkdirSync(dataDir);
      // The domain once per database: the first instance's (every instance on PostgreSQL sees it).
      if (i === 0) await addDomain(dataDir, options.database);
      const tlsPort = await freePort();
      const configPath = join(dataDir, 'serve.json');
      writeFileSync(
        configPath,
        JSON.stringify({
          dataDir,
          ...(options.database ? { database: options.database } : {}),
          listen: `127.0.0.1:${await freePort()}`,
          tlsListen: `127.0.0.1:${tlsPort}`,
          workers: 1,
          logLevel: 'warn',
          defaultCertificate: options.tls,
          intake: { ratePerMinute: 1_000_000 },
        }),
      );
      const nodeArgs =
        options.cpuProfileDir && i === 0 ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] : [];
      const serve = spawnServe(['--config', configPath], { nodeArgs });
      instances.push({ serve, dataDir, httpsUrl: `https://127.0.0.1:${tlsPort}` });
      await serve.waitFor(/listening on https:/, `${name} instance ${i}: the HTTPS listener`);
    }
    return instances;
  } catch (err) {
    await Promise.all(instances.map((i) => i.serve.stop()));
    throw err;
  }
}

async function addDomain(dataDir: string, database: string | undefined): Promise<void> {
  const store = await openStore(dataDir, { database });
  try {
    await store.addDomain(
      DOMAIN,
      { mode: 'enforce', mx: [`mx.${DOMAIN}`], maxAge: 604800, rua: [`mailto:tlsrpt@${DOMAIN}`] },
      new Date(),
    );
  } finally {
    await store.close();
  }
}

async function countReports(dataDir: string, database: string | undefined): Promise<number> {
  const store = await openStore(dataDir, { database });
  try {
    return (await store.listReports({ limit: 1 })).total;
  } finally {
    await store.close();
  }
}

// ---- load ----

/**
 * wrk's Lua script: every request a report of its own (report-id = wrk process tag, thread, counter),
 * the rest of the JSON fixed. Written once per run.
 */
function writeIntakeScript(dir: string): string {
  const json = JSON.stringify(
    wireReport({
      'report-id': ID_MARK,
      policies: [
        {
          policy: {
            'policy-type': 'sts',
            'policy-string': ['version: STSv1', 'mode: enforce', `mx: mx.${DOMAIN}`, 'max_age: 604800'],
            'policy-domain': DOMAIN,
            'mx-host': [`mx.${DOMAIN}`],
          },
          summary: { 'total-successful-session-count': 1200, 'total-failure-session-count': 3 },
          'failure-details': [
            {
              'result-type': 'certificate-expired',
              'sending-mta-ip': '192.0.2.7',
              'receiving-mx-hostname': `mx.${DOMAIN}`,
              'failed-session-count': 2,
            },
            {
              'result-type': 'starttls-not-supported',
              'sending-mta-ip': '192.0.2.8',
              'receiving-mx-hostname': `mx.${DOMAIN}`,
              'failed-session-count': 1,
            },
          ],
        },
      ],
    }),
  );
  const [head, tail] = json.split(ID_MARK);
  const lua = `
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local head = ${luaString(head!)}
local tail = ${luaString(tail!)}
local headers = { ["Content-Type"] = "application/tlsrpt+json" }
local prefix = "r"
local counter = 0
function init(args)
  prefix = (args[1] or "r") .. "-" .. tostring(tid)
end
function request()
  counter = counter + 1
  return wrk.format("POST", "/tlsrpt", headers, head .. prefix .. "-" .. counter .. tail)
end
`;
  const path = join(dir, 'intake.lua');
  writeFileSync(path, lua);
  return path;
}

/** A Lua long string that holds `text` whatever brackets it has. */
function luaString(text: string): string {
  let level = '=';
  while (text.includes(`]${level}]`)) level += '=';
  return `[${level}[${text}]${level}]`;
}

/** One wrk per instance, together, with `connections` split over them. */
async function intakeLoad(
  instances: Instance[],
  script: string,
  connections: number,
  seconds: number,
  postgresPid: number,
): Promise<LoadResult & { acknowledged: number; cpu: CpuShare }> {
  const per = Math.max(1, Math.floor(connections / instances.length));
  const groups = {
    serve: instances.map((i) => i.serve.child.pid!),
    postgres: [postgresPid],
  };
  const before = cpuSnapshot(groups);
  const wrks = instances.map((instance, i) =>
    wrk(
      ['-t', '1', '-c', String(per), '-d', `${seconds}s`, '-s', script, '--latency'],
      `${instance.httpsUrl}/tlsrpt`,
      [`w${i}x${Date.now()}`],
    ),
  );
  const results = await Promise.all(wrks.map((w) => w.result));
  const after = cpuSnapshot(groups);
  const acknowledged = results.reduce((sum, r) => sum + r.requests - r.non2xx, 0);
  const wall = Math.max(...results.map((r) => r.seconds));
  return {
    perSecond: acknowledged / wall,
    p99Ms: Math.max(...results.map((r) => r.p99Ms)),
    failed: results.reduce((sum, r) => sum + r.non2xx + r.socketErrors, 0),
    acknowledged,
    cpu: cpuShare(before, after),
  };
}

async function policyLoad(instances: Instance[], connections: number, seconds: number): Promise<LoadResult> {
  const per = Math.max(1, Math.floor(connections / instances.length));
  const results = await Promise.all(
    instances.map(
      (instance) =>
        wrk(
          ['-t', '1', '-c', String(per), '-d', `${seconds}s`, '--latency', '-H', `Host: ${POLICY_HOST}`],
          `${instance.httpsUrl}/.well-known/mta-sts.txt`,
        ).result,
    ),
  );
  const ok = results.reduce((sum, r) => sum + r.requests - r.non2xx, 0);
  return {
    perSecond: ok / Math.max(...results.map((r) => r.seconds)),
    p99Ms: Math.max(...results.map((r) => r.p99Ms)),
    failed: results.reduce((sum, r) => sum + r.non2xx + r.socketErrors, 0),
  };
}

/** Runs wrk (its Lua `init` gets `scriptArgs`); its summary once it has finished. */
function wrk(
  args: string[],
  url: string,
  scriptArgs: string[] = [],
): { pid: number; result: Promise<WrkResult> } {
  const child: ChildProcess = spawn(
    'wrk',
    [...args, url, ...(scriptArgs.length ? ['--', ...scriptArgs] : [])],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const result = new Promise<WrkResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      const requests = /(\d+) requests in ([\d.]+)(ms|s|m)/.exec(out);
      if (code !== 0 || !requests) return reject(new Error(`wrk ${args.join(' ')} ${url} failed:\n${out}`));
      const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out);
      const unit = { us: 0.001, ms: 1, s: 1000 }[(p99?.[2] ?? 'ms') as 'us' | 'ms' | 's'];
      const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const wallUnit = { ms: 0.001, s: 1, m: 60 }[requests[3] as 'ms' | 's' | 'm'];
      resolve({
        requests: Number(requests[1]),
        seconds: Number(requests[2]) * wallUnit,
        non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0),
        socketErrors: errors ? errors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
        p99Ms: p99 ? Number(p99[1]) * unit : Number.NaN,
      });
    });
  });
  return { pid: child.pid!, result };
}

// ---- CPU accounting (/proc) ----

/** utime+stime (ticks) of every live process, with its parent. */
function processTable(): Map<number, { ppid: number; ticks: number }> {
  const table = new Map<number, { ppid: number; ticks: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after "(comm)": state ppid ... utime(14) stime(15) counted from 1 over the whole line.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      table.set(Number(entry), { ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) });
    } catch {
      // exited meanwhile
    }
  }
  return table;
}

/** Ticks per group: each root with all its descendants (postgres: the postmaster and every backend). */
interface Snapshot {
  groups: Record<string, number>;
  /** This process's reaped children (cutime + cstime): wrk, once it has exited. */
  reaped: number;
  machine: { total: number; idle: number; steal: number };
}

function cpuSnapshot(roots: Record<string, number[]>): Snapshot {
  const table = processTable();
  const groups: Record<string, number> = {};
  for (const [group, pids] of Object.entries(roots)) {
    const members = new Set(pids);
    let grew = true;
    while (grew) {
      grew = false;
      for (const [pid, p] of table) {
        if (!members.has(pid) && members.has(p.ppid)) {
          members.add(pid);
          grew = true;
        }
      }
    }
    groups[group] = [...members].reduce((sum, pid) => sum + (table.get(pid)?.ticks ?? 0), 0);
  }
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const self = readFileSync('/proc/self/stat', 'utf8');
  const selfFields = self.slice(self.lastIndexOf(')') + 2).split(' ');
  return {
    groups,
    reaped: Number(selfFields[13]) + Number(selfFields[14]),
    machine: {
      total: fields.reduce((a, b) => a + b, 0),
      idle: (fields[3] ?? 0) + (fields[4] ?? 0),
      steal: fields[7] ?? 0,
    },
  };
}

/** Percent of the machine's CPU time (all cores) each group used between two snapshots. */
function cpuShare(before: Snapshot, after: Snapshot): CpuShare {
  const total = Math.max(1, after.machine.total - before.machine.total);
  const pct = (ticks: number) => (ticks / total) * 100;
  const delta = (group: string) => (after.groups[group] ?? 0) - (before.groups[group] ?? 0);
  const serve = delta('serve');
  const postgres = delta('postgres');
  // wrk ran between the snapshots and has exited: its time is in our reaped children's.
  const wrkTicks = after.reaped - before.reaped;
  const idle = after.machine.idle - before.machine.idle;
  const steal = after.machine.steal - before.machine.steal;
  return {
    serve: pct(serve),
    postgres: pct(postgres),
    wrk: pct(wrkTicks),
    other: pct(Math.max(0, total - idle - steal - serve - postgres - wrkTicks)),
    idle: pct(idle),
    steal: pct(steal),
  };
}

// ---- the profile ----

/** CLOCK_MONOTONIC in µs: process.hrtime's clock, and V8's for profile sample times on Linux. */
function monotonicMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface ThreadProfile {
  /** "main" or "worker <tid>" (the report decoder thread). */
  thread: string;
  /** Samples taken during the load, and how many of them found the thread idle. */
  samples: number;
  idlePercent: number;
  /** Shares of the busy samples. */
  byPackage: Array<{ name: string; percent: number }>;
  byFunction: Array<{ name: string; percent: number }>;
}

/**
 * Every .cpuprofile in `dir` (one per thread that wrote one: in the runs so far the main thread only),
 * counting only the samples taken within `window` (µs of CLOCK_MONOTONIC, the clock of V8's sample
 * times and of process.hrtime): start-up and shutdown left out. Self time by package and by function,
 * of the busy samples.
 */
function summariseProfiles(dir: string, window: { from: number; to: number }): ThreadProfile[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) throw new Error(`no .cpuprofile written in ${dir}`);
  return files.sort().map((file) => {
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
      nodes: ProfileNode[];
      startTime: number;
      samples: number[];
      timeDeltas: number[];
    };
    const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
    const byPackage = new Map<string, number>();
    const byFunction = new Map<string, number>();
    let at = profile.startTime;
    let samples = 0;
    let idle = 0;
    profile.samples.forEach((id, i) => {
      at += profile.timeDeltas[i] ?? 0;
      if (at < window.from || at > window.to) return;
      samples++;
      const frame = nodes.get(id)!.callFrame;
      if (frame.functionName === '(idle)') {
        idle++;
        return;
      }
      const pkg = packageOf(frame.url, frame.functionName);
      byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + 1);
      const where = frame.url.split('/').slice(-2).join('/');
      const name = `${frame.functionName || '(anonymous)'} ${where}:${frame.lineNumber + 1}`;
      byFunction.set(name, (byFunction.get(name) ?? 0) + 1);
    });
    const busy = Math.max(1, samples - idle);
    const top = (map: Map<string, number>, n: number) =>
      [...map]
        .sort((a, b) => b[1] - a[1])
        .slice(0, n)
        .map(([name, hits]) => ({ name, percent: (hits / busy) * 100 }));
    // CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile: thread 0 is the main thread.
    const tid = file.split('.').at(-3);
    return {
      thread: tid === '0' ? 'main' : `worker ${tid}`,
      samples,
      idlePercent: (idle / Math.max(1, samples)) * 100,
      byPackage: top(byPackage, 12),
      byFunction: top(byFunction, 15),
    };
  });
}

function packageOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1]!;
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const ours = /\/dist\/([^/]+)\//.exec(url);
  return ours ? `mxguard ${ours[1]}/` : url;
}

// ---- report ----

function report(
  runs: Measured[],
  setup: {
    rounds: number;
    seconds: number;
    connections: number;
    profileSeconds: number;
    nice: number;
    settings: string;
  },
  profiled: LoadResult & { cpu: CpuShare },
  profile: ThreadProfile[],
): string {
  const of = (name: SetupName) => runs.filter((r) => r.setup === name);
  const lines = [
    `${setup.rounds} rounds, ${setup.seconds} s per load, ${setup.connections} connections in all (split over the instances), ` +
      `${cpus().length} CPUs, niceness ${setup.nice}. PostgreSQL: ${setup.settings}.`,
    '',
    '| setup | intake reports/s | intake p99 ms | acknowledged / stored | failed | policy req/s | policy p99 ms |',
    '|---|---:|---:|---|---:|---:|---:|',
  ];
  for (const name of SETUPS) {
    const r = of(name);
    const acknowledged = r.reduce((s, x) => s + x.intake.acknowledged, 0);
    const stored = r.reduce((s, x) => s + x.intake.stored, 0);
    lines.push(
      `| ${name} | ${median(r.map((x) => x.intake.perSecond)).toFixed(0)} | ${median(r.map((x) => x.intake.p99Ms)).toFixed(1)} | ` +
        `${acknowledged} / ${stored} | ${r.reduce((s, x) => s + x.intake.failed + x.policy.failed, 0)} | ` +
        `${median(r.map((x) => x.policy.perSecond)).toFixed(0)} | ${median(r.map((x) => x.policy.p99Ms)).toFixed(2)} |`,
    );
  }
  // Ratios per round (each pair ran back to back), then their median.
  const ratio = (a: SetupName, b: SetupName, pick: (m: Measured) => number) =>
    median(
      runs
        .filter((r) => r.setup === a)
        .map((r) => pick(r) / pick(runs.find((x) => x.round === r.round && x.setup === b)!)),
    ).toFixed(2);
  const intakeRate = (m: Measured) => m.intake.perSecond;
  const intakeP99 = (m: Measured) => m.intake.p99Ms;
  const policyRate = (m: Measured) => m.policy.perSecond;
  const policyP99 = (m: Measured) => m.policy.p99Ms;
  lines.push(
    '',
    'Median of the per-round ratios:',
    '',
    `- intake reports/s: pg-1 / sqlite-1 ${ratio('pg-1', 'sqlite-1', intakeRate)}x, pg-2 / sqlite-1 ${ratio('pg-2', 'sqlite-1', intakeRate)}x, pg-2 / pg-1 ${ratio('pg-2', 'pg-1', intakeRate)}x`,
    `- intake p99: pg-1 / sqlite-1 ${ratio('pg-1', 'sqlite-1', intakeP99)}x, pg-2 / sqlite-1 ${ratio('pg-2', 'sqlite-1', intakeP99)}x`,
    `- policy requests/s: pg-1 / sqlite-1 ${ratio('pg-1', 'sqlite-1', policyRate)}x, pg-2 / pg-1 ${ratio('pg-2', 'pg-1', policyRate)}x; p99 pg-1 / sqlite-1 ${ratio('pg-1', 'sqlite-1', policyP99)}x`,
    '',
    'Where the CPU went during the intake runs (percent of both cores, median over rounds):',
    '',
    '| setup | serve (node) | postgres | wrk | other | idle | steal | CPU ms per report (serve + postgres) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const name of SETUPS) {
    const c = (key: keyof CpuShare) => median(of(name).map((x) => x.intake.cpu[key])).toFixed(0);
    // Shares of both cores over the run, as CPU milliseconds per acknowledged report.
    const perReport = median(
      of(name).map(
        (x) =>
          (((x.intake.cpu.serve + x.intake.cpu.postgres) / 100) * cpus().length * setup.seconds * 1000) /
          Math.max(1, x.intake.acknowledged),
      ),
    ).toFixed(2);
    lines.push(
      `| ${name} | ${c('serve')} | ${c('postgres')} | ${c('wrk')} | ${c('other')} | ${c('idle')} | ${c('steal')} | ${perReport} |`,
    );
  }
  const p = profiled.cpu;
  lines.push(
    '',
    `Profiled pg-2 run (${setup.profileSeconds} s, instance A under --cpu-prof): ${profiled.perSecond.toFixed(0)} reports/s; ` +
      `serve ${p.serve.toFixed(0)} %, postgres ${p.postgres.toFixed(0)} %, wrk ${p.wrk.toFixed(0)} %, other ${p.other.toFixed(0)} %, idle ${p.idle.toFixed(0)} %, steal ${p.steal.toFixed(0)} %.`,
  );
  for (const thread of profile) {
    lines.push(
      '',
      `Instance A, ${thread.thread} thread: ${thread.samples} samples during the load, idle in ${thread.idlePercent.toFixed(0)} %. Busy samples by package:`,
      '',
      ...thread.byPackage.map((x) => `- ${x.name}: ${x.percent.toFixed(1)} %`),
      '',
      'Top functions (self time, share of busy samples):',
      '',
      ...thread.byFunction.map((x) => `- ${x.name}: ${x.percent.toFixed(1)} %`),
    );
  }
  return `${lines.join('\n')}\n`;
}

function progress(text: string): void {
  process.stderr.write(`${text}\n`);
}

await main();
