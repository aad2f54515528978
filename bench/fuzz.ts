// Fuzz run of every parser of outside input (issue 10): generated inputs per target, each classified as
// accepted, refused with the module's typed error, a crash (any other thrown error, or a broken round
// trip) or a hang (over --hang-ms, or no progress for --watchdog seconds). Not part of CI; results in
// BENCHMARKS.md ("Fuzzing"), how it works in bench/README.md.
//
//   node --import tsx bench/fuzz.ts [--target NAME]... [--count N] [--seed S] [--corpus DIR]...
//     [--hang-ms MS] [--watchdog SECONDS] [--crash-dir DIR] [--json FILE] [--targets-module FILE]...
//   node --import tsx bench/fuzz.ts --target NAME --seed S --index I      (one input again, in this process)
//   node --import tsx bench/fuzz.ts --target NAME --input FILE            (a saved input again)
//   node --import tsx bench/fuzz.ts --list
//
// Each target runs in its own child process, one after the other (runner.ts); crashing and hanging
// inputs are saved in --crash-dir (default bench/fuzz-crashes/, not committed) with the command that
// runs them again. Progress goes to stderr, the Markdown summary to stdout; exit 1 when anything was found.
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { inspect, parseArgs } from 'node:util';
import { crashFinding, type FuzzTarget, generateInput, readInputFile } from './fuzz/harness.js';
import {
  childMain,
  corpusOf,
  formatDuration,
  loadTargets,
  runTargets,
  type TargetResult,
} from './fuzz/runner.js';

const { values: args } = parseArgs({
  options: {
    target: { type: 'string', multiple: true, default: [] },
    count: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: '1' },
    corpus: { type: 'string', multiple: true, default: [] },
    'hang-ms': { type: 'string', default: '1000' },
    watchdog: { type: 'string', default: '30' },
    'crash-dir': { type: 'string', default: 'bench/fuzz-crashes' },
    'targets-module': { type: 'string', multiple: true, default: [] },
    json: { type: 'string' },
    index: { type: 'string' },
    input: { type: 'string' },
    list: { type: 'boolean', default: false },
    // Used by the runner to start a child: not for people.
    child: { type: 'boolean', default: false },
    from: { type: 'string', default: '0' },
    'trace-until': { type: 'string', default: '0' },
  },
});

function whole(name: string, text: string, min = 0): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) {
    process.stderr.write(`--${name} must be a whole number >= ${min}, got "${text}"\n`);
    process.exit(2);
  }
  return value;
}

const targetNames = args.target.flatMap((t) => t.split(',')).filter((t) => t !== '');
const seed = whole('seed', args.seed);
const count = whole('count', args.count, 1);
const hangMs = whole('hang-ms', args['hang-ms'], 1);
const watchdogMs = whole('watchdog', args.watchdog, 1) * 1000;

if (args.child) {
  await childMain({
    target: targetNames[0] ?? '',
    from: whole('from', args.from),
    count,
    traceUntil: whole('trace-until', args['trace-until']),
    seed,
    hangMs,
    watchdogMs,
    crashDir: args['crash-dir'],
    corpus: args.corpus,
    targetModules: args['targets-module'],
  });
} else if (args.list) {
  for (const t of await loadTargets(args['targets-module']))
    process.stdout.write(`${t.name.padEnd(16)} ${t.about}\n`);
} else if (args.index !== undefined || args.input !== undefined) {
  process.exitCode = await runOne();
} else {
  // Ctrl-C: end through process.exit, so that the running child is killed too (runner.ts).
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));
  process.exitCode = await runAll();
}

/** One input in this process: the outcome, and for a crash the whole stack. */
async function runOne(): Promise<number> {
  const all = await loadTargets(args['targets-module']);
  const target = all.find((t) => t.name === targetNames[0]);
  if (!target || targetNames.length !== 1) {
    process.stderr.write(
      `--index and --input need exactly one --target (one of: ${all.map((t) => t.name).join(', ')})\n`,
    );
    return 2;
  }
  const driver = await target.setup(corpusOf(args.corpus));
  const input =
    args.input !== undefined
      ? readInputFile(target, args.input)
      : generateInput(target, driver, seed, whole('index', args.index ?? ''));
  process.stdout.write(`input: ${inspect(input, { maxStringLength: 2000, maxArrayLength: 50, depth: 6 })}\n`);
  const start = performance.now();
  let line: string;
  let failed = false;
  try {
    line = await driver.run(input);
  } catch (err) {
    if (target.isTypedError(err)) line = `rejected: ${(err as Error).message}`;
    else {
      line = `CRASH: ${crashFinding(target.name, -1, err).message}\n${(err as Error)?.stack ?? ''}`;
      failed = true;
    }
  }
  const ms = performance.now() - start;
  const slow = ms > hangMs ? ` (HANG: over the ${hangMs} ms limit)` : '';
  process.stdout.write(`${ms.toFixed(1)} ms${slow}: ${line}\n`);
  return failed || slow !== '' ? 1 : 0;
}

async function runAll(): Promise<number> {
  const started = new Date();
  const t0 = performance.now();
  const results = await runTargets({
    targets: targetNames,
    count,
    seed,
    corpus: args.corpus,
    hangMs,
    watchdogMs,
    crashDir: args['crash-dir'],
    targetModules: args['targets-module'],
  });
  const wallS = (performance.now() - t0) / 1000;
  process.stdout.write(report(results, started, wallS));
  if (args.json) {
    writeFileSync(
      args.json,
      `${JSON.stringify({ started: started.toISOString(), wallS, seed, count, corpus: args.corpus, results }, null, 2)}\n`,
    );
  }
  return results.some((r) => r.counts.crashes > 0 || r.counts.hangs > 0) ? 1 : 0;
}

function report(results: TargetResult[], started: Date, wallS: number): string {
  const n = (v: number) => v.toLocaleString('en');
  const lines = [
    `Fuzz run of ${started.toISOString()}: seed ${seed}, ${n(count)} inputs per target, hang limit ${hangMs} ms, ` +
      `watchdog ${watchdogMs / 1000} s, node ${process.version}; ${formatDuration(wallS)} in all.`,
    '',
    '| target | inputs | accepted | typed errors | crashes | hangs | slowest input (ms) | inputs/s | wall |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const c = r.counts;
    lines.push(
      `| ${r.name} | ${n(c.inputs)} | ${n(c.accepted)} | ${n(c.rejected)} | ${n(c.crashes)} | ${n(c.hangs)} | ` +
        `${c.slowestMs.toFixed(1)} (#${c.slowestIndex}) | ${n(Math.round(c.inputs / (r.wallMs / 1000)))} | ` +
        `${formatDuration(r.wallMs / 1000)} |`,
    );
  }
  const found = results.flatMap((r) => r.findings);
  if (found.length > 0) {
    lines.push('', 'Findings (the first few of each kind):', '');
    for (const r of results) {
      for (const [signature, times] of Object.entries(r.signatures)) {
        lines.push(`- ${r.name}: ${times} x ${signature}`);
        for (const f of r.findings.filter((x) => x.signature === signature)) {
          lines.push(`  - input ${f.index}: ${f.message}${f.file ? ` (saved: ${f.file})` : ''}`);
        }
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

export type { FuzzTarget };
