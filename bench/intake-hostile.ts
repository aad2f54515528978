// Benchmark: policy fetch latency of `mxguard serve` while hostile TLS-RPT reports are posted (issue 10),
// with reports decoded in a worker thread (the default, intake.decodeThreads 1) against decoded on the
// event loop (intake.decodeThreads 0: how every version before the pool did it), in the same run.
//
//   npx tsc -p tsconfig.json && node --import tsx bench/intake-hostile.ts [--rounds 3] [--seconds 10]
//       [--rate 200] [--posters 2] [--workers 1] [--baseline-bin OLD/dist/cli/main.js] [--json FILE]
//
// For each decoder mode the built command runs `serve` (loopback, `--workers` processes, its default
// limits but no intake rate limit) with one hosted domain. Policy fetches (GET
// http://127.0.0.1/.well-known/mta-sts.txt, Host mta-sts.bench.test) are sent at a fixed `--rate` per
// second whatever the answers do (an open loop, as independent senders fetch; a closed loop would wait
// out a stall and hide it), each timed from when it was due to be sent to its answer, first alone
// ("quiet"), then while `--posters` closed loops POST /tlsrpt the hostile reports in turn ("hostile"): the 46 KB gzip whose organization-name is 45 MiB, a gzip of 200,000 failure-details rows
// (9 MiB of JSON: under the byte cap, decoded in full and merged), a gzip whose organization-name is 5 MiB
// (under the byte cap: refused by the JSON pre-scan), and a gzip bomb (46 KB, 45 MiB of zeros). Rounds
// alternate the order of the modes. `--baseline-bin` adds a third mode: another build of mxguard (e.g. a
// checkout from before the caps and the decoder pool), run with the same settings minus the decoder
// ones. The report gives p50/p99/max policy latency per phase and mode (medians over rounds) and the
// ratios. Everything runs on loopback; each serve is stopped by its PID
// and the temporary directory removed. Markdown on stdout, progress on stderr.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { gzipBomb } from '../test/fixtures/intake/helpers.js';
import { longOrganizationGzip, manyRowsReport } from '../test/fixtures/intake/hostile.js';
import { BIN } from '../test/helpers/cli.js';
import { freePort } from '../test/helpers/ports.js';
import { spawnServe } from '../test/helpers/serve-process.js';
import { median } from './stats.js';

const DOMAIN = 'bench.test';

/** A way of running serve: which build, and the decoder setting (none: a build without it). */
interface Mode {
  name: string;
  bin: string;
  decodeThreads?: number;
}

interface Hostile {
  name: string;
  body: Buffer;
}

interface PhaseResult {
  fetches: number;
  p50: number;
  p99: number;
  max: number;
  /** Policy fetches answered after more than 100 ms. */
  slow: number;
  /** Policy fetches that did not answer 200. */
  failed: number;
  /** Hostile posts by answer status. */
  posts: Record<string, number>;
}

interface Run {
  round: number;
  mode: string;
  quiet: PhaseResult;
  hostile: PhaseResult;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '10' },
      rate: { type: 'string', default: '200' },
      posters: { type: 'string', default: '2' },
      workers: { type: 'string', default: '1' },
      'baseline-bin': { type: 'string' },
      json: { type: 'string' },
    },
  });
  const rounds = Number(values.rounds);
  const ms = Number(values.seconds) * 1000;
  const rate = Number(values.rate);
  const posters = Number(values.posters);
  const workers = Number(values.workers);
  const modes: Mode[] = [
    { name: 'worker', bin: BIN, decodeThreads: 1 },
    { name: 'event loop', bin: BIN, decodeThreads: 0 },
  ];
  const baseline = values['baseline-bin'];
  if (baseline) modes.push({ name: 'baseline build', bin: baseline });

  const hostile: Hostile[] = [
    { name: '45 MiB organization-name', body: await longOrganizationGzip(45 * 1024 * 1024, 'bench-45') },
    { name: '200,000 rows', body: gzipSync(manyRowsReport(200_000, 'bench-rows')) },
    { name: '5 MiB organization-name', body: await longOrganizationGzip(5 * 1024 * 1024, 'bench-5') },
    { name: 'gzip bomb', body: gzipBomb(45 * 1024 * 1024) },
  ];
  for (const h of hostile) progress(`hostile input: ${h.name}, ${h.body.length} bytes`);

  const runs: Run[] = [];
  for (let round = 1; round <= rounds; round++) {
    const order = [...modes];
    if (round % 2 === 0) order.reverse();
    for (const mode of order) {
      const dir = mkdtempSync(join(tmpdir(), 'mxguard-bench-hostile-'));
      const serve = await startServe(dir, mode, workers);
      try {
        progress(`round ${round}, ${mode.name}: quiet`);
        const quiet = await phase(serve.port, rate, 0, hostile, ms);
        progress(`round ${round}, ${mode.name}: hostile`);
        const loaded = await phase(serve.port, rate, posters, hostile, ms);
        runs.push({ round, mode: mode.name, quiet, hostile: loaded });
        progress(`  quiet p99 ${quiet.p99.toFixed(1)} ms, hostile p99 ${loaded.p99.toFixed(1)} ms`);
      } finally {
        await serve.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  if (values.json) writeFileSync(values.json, JSON.stringify({ values, runs }, null, 2));
  const names = modes.map((m) => m.name);
  process.stdout.write(report(runs, names, { rounds, seconds: ms / 1000, rate, posters, workers }));
  // The machine may be shared: say how busy it was (1-minute load average against its CPUs).
  process.stdout.write(`\nLoad average at the end: ${loadavg()[0]!.toFixed(2)} on ${cpus().length} CPUs.\n`);
}

// ---- serve ----

async function startServe(
  dir: string,
  mode: Mode,
  workers: number,
): Promise<{ port: number; stop(): Promise<unknown> }> {
  const dataDir = join(dir, 'data');
  const { openStore } = await import('../src/store/index.js');
  const store = await openStore(dataDir);
  await store.addDomain(
    DOMAIN,
    { mode: 'enforce', mx: [`mx.${DOMAIN}`], maxAge: 604800, rua: [`mailto:tlsrpt@${DOMAIN}`] },
    new Date(),
  );
  await store.close();
  const port = await freePort();
  writeFileSync(
    join(dir, 'serve.json'),
    JSON.stringify({
      dataDir,
      listen: `127.0.0.1:${port}`,
      workers,
      logLevel: 'warn',
      intake: {
        ratePerMinute: 1_000_000,
        ...(mode.decodeThreads === undefined ? {} : { decodeThreads: mode.decodeThreads }),
      },
    }),
  );
  const serve = spawnServe(['--config', join(dir, 'serve.json')], { bin: mode.bin });
  try {
    await serve.waitFor(/listening on http:/, 'the HTTP listener');
  } catch (err) {
    await serve.stop();
    throw err;
  }
  return { port, stop: serve.stop };
}

// ---- load ----

/** Policy fetches at `rate` per second (timed) beside `posters` hostile post loops, for `ms`. */
async function phase(
  port: number,
  rate: number,
  posters: number,
  hostile: Hostile[],
  ms: number,
): Promise<PhaseResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  const start = performance.now();
  const end = start + ms;
  const latencies: number[] = [];
  const posts: Record<string, number> = {};
  let failed = 0;
  let next = 0;
  const fetches = async () => {
    const answers: Promise<void>[] = [];
    for (let i = 0; start + (i * 1000) / rate < end; i++) {
      const due = start + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      answers.push(
        request(agent, port, 'GET', '/.well-known/mta-sts.txt', `mta-sts.${DOMAIN}`).then((status) => {
          latencies.push(performance.now() - due);
          if (status !== 200) failed++;
        }),
      );
    }
    await Promise.all(answers);
  };
  const postLoop = async () => {
    while (performance.now() < end) {
      const input = hostile[next++ % hostile.length]!;
      const status = await request(agent, port, 'POST', '/tlsrpt', '127.0.0.1', input.body);
      const key = `${input.name}: ${status}`;
      posts[key] = (posts[key] ?? 0) + 1;
    }
  };
  await Promise.all([fetches(), ...Array.from({ length: posters }, postLoop)]);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  const slow = latencies.filter((l) => l > 100).length;
  return { fetches: latencies.length, p50: at(0.5), p99: at(0.99), max: at(1), slow, failed, posts };
}

/** One request; its status, or 0 when it failed (the time still counts). */
function request(
  agent: http.Agent,
  port: number,
  method: 'GET' | 'POST',
  path: string,
  host: string,
  body?: Buffer,
): Promise<number> {
  return new Promise((resolve) => {
    const headers: http.OutgoingHttpHeaders = { host };
    if (body) headers['content-type'] = 'application/tlsrpt+gzip';
    const req = http.request(
      { host: '127.0.0.1', port, method, path, headers, agent, timeout: 60_000 },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

// ---- report ----

function report(
  runs: Run[],
  modes: string[],
  setup: { rounds: number; seconds: number; rate: number; posters: number; workers: number },
): string {
  const lines = [
    `Policy fetch latency (ms) of \`serve\` (${setup.workers} process${setup.workers > 1 ? 'es' : ''}), ` +
      `${setup.rate} fetches/s, ${setup.posters} hostile post loops, ${setup.seconds} s per phase, ` +
      `${setup.rounds} rounds (medians):`,
    '',
    '| decoder | phase | fetches | p50 | p99 | max | over 100 ms | failed |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  const med = (mode: string, phase: 'quiet' | 'hostile', key: keyof Omit<PhaseResult, 'posts'>) =>
    median(runs.filter((r) => r.mode === mode).map((r) => r[phase][key]));
  for (const mode of modes) {
    for (const phase of ['quiet', 'hostile'] as const) {
      const f = (key: 'p50' | 'p99' | 'max') => med(mode, phase, key).toFixed(1);
      lines.push(
        `| ${mode} | ${phase} | ${med(mode, phase, 'fetches')} | ${f('p50')} | ${f('p99')} | ${f('max')} | ${med(mode, phase, 'slow')} | ${med(mode, phase, 'failed')} |`,
      );
    }
  }
  const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(1) : '-');
  const p99 = (mode: string, phase: 'quiet' | 'hostile') => med(mode, phase, 'p99');
  lines.push(
    '',
    `p99 hostile / quiet: ${modes.map((m) => `${m} ${ratio(p99(m, 'hostile'), p99(m, 'quiet'))}`).join(', ')}.`,
    `Hostile p99 against the worker: ${modes
      .filter((m) => m !== 'worker')
      .map((m) => `${m} / worker ${ratio(p99(m, 'hostile'), p99('worker', 'hostile'))}`)
      .join(', ')}.`,
    '',
    'Hostile posts answered (all rounds, status counts):',
    '',
  );
  for (const mode of modes) {
    const totals: Record<string, number> = {};
    for (const r of runs.filter((x) => x.mode === mode)) {
      for (const [key, n] of Object.entries(r.hostile.posts)) totals[key] = (totals[key] ?? 0) + n;
    }
    const text = Object.entries(totals)
      .sort()
      .map(([key, n]) => `${key} x${n}`)
      .join('; ');
    lines.push(`- ${mode}: ${text}`);
  }
  return `${lines.join('\n')}\n`;
}

function progress(text: string): void {
  process.stderr.write(`${text}\n`);
}

await main();
