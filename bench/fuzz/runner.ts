// Runs fuzz targets one at a time, each in a child process watched from here. The child reports its
// progress (the next input index and its counts) at least every 100 ms of work; when it goes quiet for
// longer than the watchdog allows, it is killed: an endless loop cannot stop the run. The inputs since its
// last report are then run again, in a new child that announces each input before running it, so the
// input that hangs (or kills the process) is known exactly; the run goes on after it. Inputs are made from
// (seed, target, index) alone, so the parent can make and save the input a child died on.
import { type ChildProcess, fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { DirCorpus, FIXTURES_DIR } from './corpus.js';
import {
  type Counts,
  crashFinding,
  emptyCounts,
  type Finding,
  FindingStore,
  type FuzzTarget,
  generateInput,
  hangFinding,
  runRange,
} from './harness.js';

export interface RunOptions {
  /** Target names; all when empty. */
  targets: readonly string[];
  count: number;
  seed: number;
  /** Extra seed directories laid out like test/fixtures (tlsrpt/, mtasts/, txt/...). */
  corpus: readonly string[];
  hangMs: number;
  watchdogMs: number;
  crashDir: string;
  /** Modules whose `targets` export adds targets (a new parser, or the fake targets of the harness's test). */
  targetModules: readonly string[];
  /** Progress lines (stderr by default). */
  log?: (line: string) => void;
  /** How often a progress line is written (ms). */
  logEveryMs?: number;
}

export interface TargetResult {
  name: string;
  about: string;
  counts: Counts;
  /** The first few findings of each signature (all are counted in `counts`). */
  findings: Finding[];
  /** How many findings had each signature. */
  signatures: Record<string, number>;
  wallMs: number;
  /** Child processes started (1 when nothing had to be killed). */
  processes: number;
}

const FINDINGS_KEPT_PER_SIGNATURE = 5;
const ENTRY = fileURLToPath(new URL('../fuzz.ts', import.meta.url));

/**
 * Built-in targets plus those of `modules`. `builtIn: false` skips the built-in ones (and the parsers
 * they import): a child running a target from a module starts faster.
 */
export async function loadTargets(
  modules: readonly string[],
  builtIn = true,
): Promise<FuzzTarget<unknown>[]> {
  const all: FuzzTarget<unknown>[] = builtIn ? [...(await import('./targets.js')).TARGETS] : [];
  for (const path of modules) {
    const mod = (await import(new URL(path, `file://${process.cwd()}/`).href)) as {
      targets?: FuzzTarget<unknown>[];
    };
    if (!Array.isArray(mod.targets)) throw new Error(`${path} has no "targets" array export`);
    all.push(...mod.targets);
  }
  return all;
}

export function corpusOf(dirs: readonly string[]): DirCorpus {
  return new DirCorpus([FIXTURES_DIR, ...dirs]);
}

/** The command that runs one input of a target again, in this process, with its full stack. */
export function reproduceCommand(
  options: Pick<RunOptions, 'seed' | 'corpus' | 'targetModules'>,
  finding: Finding,
  file?: string,
) {
  const extra = [
    ...options.corpus.map((d) => `--corpus ${d}`),
    ...options.targetModules.map((m) => `--targets-module ${m}`),
  ];
  const which = file ? `--input ${file}` : `--seed ${options.seed} --index ${finding.index}`;
  return ['node --import tsx bench/fuzz.ts', `--target ${finding.target}`, which, ...extra].join(' ');
}

export async function runTargets(options: RunOptions): Promise<TargetResult[]> {
  const all = await loadTargets(options.targetModules);
  const names = options.targets.length > 0 ? options.targets : all.map((t) => t.name);
  const chosen = names.map((name) => {
    const target = all.find((t) => t.name === name);
    if (!target)
      throw new RangeError(`no fuzz target "${name}" (known: ${all.map((t) => t.name).join(', ')})`);
    return target;
  });
  const results: TargetResult[] = [];
  for (const target of chosen) results.push(await runTarget(target, options));
  return results;
}

interface Death {
  kind: 'crash' | 'hang';
  reason: string;
}

interface Segment {
  /** Inputs before this index are done and counted in `counts`. */
  next: number;
  counts: Counts;
  findings: Finding[];
  /** Most inputs between two reports (to size the replay after a death). */
  maxStep: number;
  /** The input running when the child announced it (trace mode). */
  running?: number;
  done: boolean;
  death?: Death;
}

async function runTarget(target: FuzzTarget<unknown>, options: RunOptions): Promise<TargetResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const started = performance.now();
  const total = emptyCounts();
  const findings: Finding[] = [];
  const signatures: Record<string, number> = {};
  const store = new FindingStore(options.crashDir, (f, file) => reproduceCommand(options, f, file));
  let driver: Awaited<ReturnType<FuzzTarget<unknown>['setup']>> | undefined;
  let processes = 0;
  let lastLog = performance.now();

  const record = (finding: Finding) => {
    signatures[finding.signature] = (signatures[finding.signature] ?? 0) + 1;
    if (signatures[finding.signature]! <= FINDINGS_KEPT_PER_SIGNATURE) findings.push(finding);
  };
  /** A finding the parent has to make itself (the child died on it): the input is made here and saved. */
  const recordDeath = async (index: number, death: Death, note = '') => {
    const finding =
      death.kind === 'hang'
        ? hangFinding(target.name, index, `${death.reason}${note}`)
        : {
            ...crashFinding(target.name, index, new Error(`${death.reason}${note}`)),
            signature: death.reason,
          };
    driver ??= await target.setup(corpusOf(options.corpus));
    store.save(target, finding, generateInput(target, driver, options.seed, index));
    record(finding);
    total.inputs++;
    if (death.kind === 'hang') total.hangs++;
    else total.crashes++;
  };
  const progress = (next: number, counts: Counts) => {
    const now = performance.now();
    if (now - lastLog < (options.logEveryMs ?? 5000)) return;
    lastLog = now;
    const done = total.inputs + counts.inputs;
    const rate = done / ((now - started) / 1000);
    const left = (options.count - next) / Math.max(rate, 1e-9);
    log(
      `[fuzz] ${target.name}: ${next.toLocaleString('en')}/${options.count.toLocaleString('en')} ` +
        `(${((100 * next) / options.count).toFixed(1)} %), ${Math.round(rate).toLocaleString('en')}/s, ` +
        `${total.crashes + counts.crashes} crashes, ${total.hangs + counts.hangs} hangs, about ${formatDuration(left)} left`,
    );
  };

  let from = 0;
  let traceUntil = 0;
  /** Set while inputs [from, until) are run again to find the one a child died on. */
  let replay: { from: number; until: number; death: Death } | undefined;
  while (from < options.count) {
    processes++;
    const segment = await runChild(target, options, from, traceUntil, (next, counts) => {
      progress(next, counts);
      if (replay && next >= replay.until) {
        // Run again one by one, every input passed: the death was not caused by one input (memory piling
        // up over many, or the machine too busy for the watchdog). Still a finding, with its range.
        const { death } = replay;
        replay = undefined;
        const note = ` somewhere in inputs ${from}-${next - 1}; not reproduced when they were run again one by one`;
        const finding =
          death.kind === 'hang'
            ? hangFinding(target.name, from, `${death.reason}${note}`)
            : {
                ...crashFinding(target.name, from, new Error(`${death.reason}${note}`)),
                signature: death.reason,
              };
        record(finding);
        if (death.kind === 'hang') total.hangs++;
        else total.crashes++;
      }
    });
    addCounts(total, segment.counts);
    for (const finding of segment.findings) if (finding.index < segment.next) record(finding);
    if (segment.done) break;
    const death = segment.death ?? { kind: 'crash', reason: 'the child process ended early' };
    if (segment.running !== undefined) {
      // The child had announced this input: it is the one.
      await recordDeath(segment.running, death);
      from = segment.running + 1;
      // The rest of the window is still run one by one: another input in it may kill the child too.
      if (from >= traceUntil) traceUntil = 0;
      replay = undefined;
      log(`[fuzz] ${target.name}: input ${segment.running}: ${death.kind} (${death.reason}); going on`);
    } else {
      if (replay) {
        // Died again before the replay window ended, in normal mode: should not happen (trace covers the window).
        await recordDeath(segment.next, death, ' (while replaying)');
        from = segment.next + 1;
        replay = undefined;
        continue;
      }
      from = segment.next;
      traceUntil = Math.min(options.count, from + 2 * segment.maxStep + 200);
      replay = { from, until: traceUntil, death };
      log(
        `[fuzz] ${target.name}: ${death.reason}; running inputs ${from}-${traceUntil - 1} again one by one`,
      );
    }
  }
  return {
    name: target.name,
    about: target.about,
    counts: total,
    findings,
    signatures,
    wallMs: performance.now() - started,
    processes,
  };
}

function addCounts(total: Counts, part: Counts): void {
  total.inputs += part.inputs;
  total.accepted += part.accepted;
  total.rejected += part.rejected;
  total.crashes += part.crashes;
  total.hangs += part.hangs;
  if (part.slowestMs > total.slowestMs) {
    total.slowestMs = part.slowestMs;
    total.slowestIndex = part.slowestIndex;
  }
}

type ChildMessage =
  | { type: 'ready' }
  | { type: 'progress'; next: number; counts: Counts }
  | { type: 'start'; index: number; counts: Counts }
  | { type: 'finding'; finding: Finding }
  | { type: 'done'; counts: Counts };

/** One child process running inputs [from, count) of the target, watched. */
function runChild(
  target: FuzzTarget<unknown>,
  options: RunOptions,
  from: number,
  traceUntil: number,
  onProgress: (next: number, counts: Counts) => void,
): Promise<Segment> {
  const segment: Segment = { next: from, counts: emptyCounts(), findings: [], maxStep: 0, done: false };
  const args = [
    '--child',
    '--target',
    target.name,
    '--from',
    String(from),
    '--count',
    String(options.count),
    '--trace-until',
    String(traceUntil),
    '--seed',
    String(options.seed),
    '--hang-ms',
    String(options.hangMs),
    '--watchdog',
    String(options.watchdogMs / 1000),
    '--crash-dir',
    options.crashDir,
    ...options.corpus.flatMap((d) => ['--corpus', d]),
    ...options.targetModules.flatMap((m) => ['--targets-module', m]),
  ];
  const child: ChildProcess = fork(ENTRY, args, {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  // A child stuck in a loop outlives its parent unless killed: kill it when this process exits.
  const killChild = () => child.kill('SIGKILL');
  process.on('exit', killChild);
  let stderrTail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString('utf8')).slice(-2000);
  });
  let ready = false;
  let lastHeard = performance.now();
  // Setting up (reading seeds, building the gzip bombs) gets more time than one slice of work.
  const setupMs = Math.max(options.watchdogMs, 120_000);
  const watchdog = setInterval(() => {
    const quiet = performance.now() - lastHeard;
    if (quiet > (ready ? options.watchdogMs : setupMs) && !segment.death) {
      segment.death = {
        kind: 'hang',
        reason: ready
          ? `no progress for ${Math.round(quiet)} ms: killed by the watchdog (an endless loop?)`
          : `setting up took over ${setupMs} ms: killed by the watchdog`,
      };
      child.kill('SIGKILL');
    }
  }, 100);
  child.on('message', (raw) => {
    const message = raw as ChildMessage;
    lastHeard = performance.now();
    switch (message.type) {
      case 'ready':
        ready = true;
        break;
      case 'start':
      case 'progress': {
        const next = message.type === 'start' ? message.index : message.next;
        segment.maxStep = Math.max(segment.maxStep, next - segment.next);
        segment.next = next;
        segment.counts = message.counts;
        segment.running = message.type === 'start' ? message.index : undefined;
        onProgress(next, message.counts);
        break;
      }
      case 'finding':
        segment.findings.push(message.finding);
        break;
      case 'done':
        segment.counts = message.counts;
        segment.next = options.count;
        segment.running = undefined;
        segment.done = true;
        break;
    }
  });
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearInterval(watchdog);
      process.off('exit', killChild);
      if (!segment.done && !segment.death) {
        const why = signal ? `signal ${signal}` : `exit code ${code}`;
        const detail = stderrTail.trim().split('\n').slice(-3).join(' | ').slice(0, 300);
        segment.death = {
          kind: 'crash',
          reason: `the child process died (${why})${detail ? `: ${detail}` : ''}`,
        };
      }
      resolve(segment);
    });
  });
}

/** The child's side: set the target up, run its inputs, report to the parent. */
export async function childMain(values: {
  target: string;
  from: number;
  count: number;
  traceUntil: number;
  seed: number;
  hangMs: number;
  watchdogMs: number;
  crashDir: string;
  corpus: string[];
  targetModules: string[];
}): Promise<void> {
  // The parent is gone (killed, or ended early): nobody reads the results.
  process.on('disconnect', () => process.exit(0));
  const send = (message: ChildMessage) =>
    new Promise<void>((resolve) => {
      process.send!(message, undefined, {}, () => resolve());
    });
  const find = async (builtIn: boolean) =>
    (await loadTargets(values.targetModules, builtIn)).find((t) => t.name === values.target);
  const target = (await find(false)) ?? (await find(true));
  if (!target) throw new RangeError(`no fuzz target "${values.target}"`);
  const driver = await target.setup(corpusOf(values.corpus));
  await send({ type: 'ready' });
  const store = new FindingStore(values.crashDir, (f, file) =>
    reproduceCommand(
      { seed: values.seed, corpus: values.corpus, targetModules: values.targetModules },
      f,
      file,
    ),
  );
  const sentPerSignature = new Map<string, number>();
  const counts = await runRange(target, driver, {
    seed: values.seed,
    from: values.from,
    to: values.count,
    hangMs: values.hangMs,
    settleMs: values.watchdogMs / 2,
    beforeInput:
      values.traceUntil > values.from
        ? async (index, soFar) => {
            if (index < values.traceUntil) await send({ type: 'start', index, counts: soFar });
            // Out of trace mode: the parent must stop taking the last announced input for the running one.
            else if (index === values.traceUntil)
              await send({ type: 'progress', next: index, counts: soFar });
          }
        : undefined,
    onProgress: (next, soFar) => void send({ type: 'progress', next, counts: soFar }),
    onFinding: (finding, input) => {
      const sent = sentPerSignature.get(finding.signature) ?? 0;
      if (sent >= FINDINGS_KEPT_PER_SIGNATURE) return;
      sentPerSignature.set(finding.signature, sent + 1);
      store.save(target, finding, input);
      void send({ type: 'finding', finding });
    },
  });
  await send({ type: 'done', counts });
  process.exit(0);
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${Math.round(seconds)}s`;
  if (seconds < 3600)
    return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}
