// The fuzz harness: what a target is, and running a range of its inputs in this process with every
// input classified (accepted, rejected with the module's typed error, crash, hang) and timed. The
// watchdog that catches an input that never returns is in runner.ts (a child process per target).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { inputSeed, Rng } from './random.js';

/** What one input did: the parser returned a result, or refused the input with its typed error. */
export type Outcome = 'accepted' | 'rejected';

/** How an input is written to a file and read back (a saved crash can be run again from the file). */
export type InputFormat = 'text' | 'bytes' | 'json';

/** Seed files: test/fixtures first, then each --corpus directory, each in name order. */
export interface Corpus {
  /** Files under `sub` (in every corpus directory) whose name matches `pattern`. */
  files(sub: string, pattern: RegExp): Array<{ name: string; bytes: Buffer }>;
}

/** The generator and the call under test, built once per process by FuzzTarget.setup. */
export interface Driver<I> {
  /** One input, made only from `rng` (so the same seed gives the same input). */
  generate(rng: Rng): I;
  /** Parse the input. Return the outcome, or throw: the typed error is a rejection, anything else a crash. */
  run(input: I): Outcome | Promise<Outcome>;
}

export interface FuzzTarget<I = unknown> {
  name: string;
  /** One line: which functions of which module. */
  about: string;
  format: InputFormat;
  /**
   * The largest input that can reach the parser in mxguard (a DNS TXT record fits in a 65,535-byte
   * message, a policy fetch stops at 64 KiB...): longer text or bytes are cut to this, so a parser is not
   * timed on inputs it can never get. Characters for text, bytes for bytes; no cap when absent.
   */
  maxInput?: number;
  /** True for the errors the module throws for bad input (its typed error class). */
  isTypedError(err: unknown): boolean;
  setup(corpus: Corpus): Driver<I> | Promise<Driver<I>>;
}

export interface Counts {
  inputs: number;
  accepted: number;
  rejected: number;
  crashes: number;
  hangs: number;
  /** The longest time one input took (ms; a slow input is timed again, this keeps the shortest time). */
  slowestMs: number;
  slowestIndex: number;
}

export function emptyCounts(): Counts {
  return { inputs: 0, accepted: 0, rejected: 0, crashes: 0, hangs: 0, slowestMs: 0, slowestIndex: -1 };
}

export interface Finding {
  kind: 'crash' | 'hang';
  target: string;
  index: number;
  /** What went wrong: the error's name and message, or how long the input took. */
  message: string;
  stack?: string;
  /** Groups findings with the same cause (error name, message without numbers, first frame). */
  signature: string;
  /** Where the input was saved, when it was. */
  file?: string;
}

export interface RangeOptions {
  seed: number;
  from: number;
  to: number;
  /** An input taking longer than this (after two more tries) is a hang. */
  hangMs: number;
  /** An async run that has not settled after this long is a hang (it is left behind). */
  settleMs: number;
  /** Called before each input in trace mode (awaited): lets the runner know exactly which input is running. */
  beforeInput?: (index: number, counts: Counts) => Promise<void>;
  /** Called about every `progressMs` with the counts so far and the next index. */
  onProgress?: (next: number, counts: Counts) => void;
  progressMs?: number;
  onFinding?: (finding: Finding, input: unknown) => void;
}

type Attempt = { kind: 'done'; outcome: Outcome; ms: number } | { kind: 'threw'; error: unknown; ms: number };

class SettleTimeout extends Error {}

function isThenable(value: unknown): value is PromiseLike<Outcome> {
  return typeof (value as PromiseLike<Outcome> | undefined)?.then === 'function';
}

async function attempt<I>(driver: Driver<I>, input: I, settleMs: number): Promise<Attempt> {
  const start = performance.now();
  try {
    const result = driver.run(input);
    const outcome = isThenable(result) ? await settleWithin(result, settleMs) : result;
    return { kind: 'done', outcome, ms: performance.now() - start };
  } catch (error) {
    return { kind: 'threw', error, ms: performance.now() - start };
  }
}

async function settleWithin(promise: PromiseLike<Outcome>, ms: number): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SettleTimeout(`did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The input of `index`: the same in every process for the same seed and target. */
export function generateInput<I>(target: FuzzTarget<I>, driver: Driver<I>, seed: number, index: number): I {
  const input = driver.generate(new Rng(inputSeed(seed, target.name, index)));
  const max = target.maxInput;
  if (max === undefined) return input;
  if (typeof input === 'string' && input.length > max) return input.slice(0, max) as I;
  if (Buffer.isBuffer(input) && input.length > max) return input.subarray(0, max) as I;
  return input;
}

/**
 * Run inputs [from, to) of a target and count them. A thrown error the target does not call typed is a
 * crash; an input over `hangMs` (timed three times, the shortest counts, so a busy machine does not
 * make one) or an async run that never settles is a hang. Findings go to `onFinding` with their input.
 */
export async function runRange<I>(
  target: FuzzTarget<I>,
  driver: Driver<I>,
  options: RangeOptions,
): Promise<Counts> {
  const counts = emptyCounts();
  const progressMs = options.progressMs ?? 100;
  let lastYield = performance.now();
  for (let index = options.from; index < options.to; index++) {
    if (options.beforeInput) await options.beforeInput(index, counts);
    const input = generateInput(target, driver, options.seed, index);
    let result = await attempt(driver, input, options.settleMs);
    if (result.ms > options.hangMs && !isSettleTimeout(result)) {
      for (let again = 0; again < 2 && result.ms > options.hangMs; again++) {
        const retry = await attempt(driver, input, options.settleMs);
        if (retry.ms < result.ms) result = retry;
      }
    }
    counts.inputs++;
    if (result.ms > counts.slowestMs) {
      counts.slowestMs = result.ms;
      counts.slowestIndex = index;
    }
    const finding = classify(target, index, result, options.hangMs);
    if (finding === 'accepted') counts.accepted++;
    else if (finding === 'rejected') counts.rejected++;
    else {
      if (finding.kind === 'crash') counts.crashes++;
      else counts.hangs++;
      options.onFinding?.(finding, input);
    }
    const now = performance.now();
    if (now - lastYield >= progressMs) {
      options.onProgress?.(index + 1, counts);
      // Let messages out and timers run (the runner's heartbeat, an async target's own timers).
      await yieldToLoop();
      lastYield = performance.now();
    }
  }
  options.onProgress?.(options.to, counts);
  return counts;
}

function isSettleTimeout(result: Attempt): boolean {
  return result.kind === 'threw' && result.error instanceof SettleTimeout;
}

function classify<I>(
  target: FuzzTarget<I>,
  index: number,
  result: Attempt,
  hangMs: number,
): Outcome | Finding {
  if (result.kind === 'threw' && result.error instanceof SettleTimeout) {
    return hangFinding(target.name, index, `${result.error.message} (an await that never ends)`);
  }
  if (result.ms > hangMs) {
    return hangFinding(target.name, index, `took ${result.ms.toFixed(0)} ms (limit ${hangMs} ms)`);
  }
  if (result.kind === 'done') return result.outcome;
  if (target.isTypedError(result.error)) return 'rejected';
  return crashFinding(target.name, index, result.error);
}

export function hangFinding(target: string, index: number, message: string): Finding {
  return { kind: 'hang', target, index, message, signature: 'hang' };
}

export function crashFinding(target: string, index: number, error: unknown): Finding {
  const err = error instanceof Error ? error : new Error(`a non-Error was thrown: ${String(error)}`);
  const stack = err.stack ?? `${err.name}: ${err.message}`;
  const frame = stack.split('\n').find((line) => /^\s+at /.test(line) && !line.includes('bench/fuzz')) ?? '';
  const shape = err.message.replace(/"[^"]*"|'[^']*'|\d+/g, '#').slice(0, 120);
  return {
    kind: 'crash',
    target,
    index,
    message: `${err.name}: ${err.message}`.slice(0, 500),
    stack: stack.split('\n').slice(0, 15).join('\n'),
    signature: `${err.name}: ${shape} ${frame.trim()}`,
  };
}

// ---- saved inputs ----

/** Write an input to a file that `--input FILE` can run again. */
export function encodeInput(format: InputFormat, input: unknown): Buffer {
  if (format === 'bytes') return Buffer.from(input as Uint8Array);
  // JSON keeps a text exactly (lone surrogates included, as \ud800 escapes).
  return Buffer.from(JSON.stringify(input), 'utf8');
}

export function decodeInput(format: InputFormat, data: Buffer): unknown {
  if (format === 'bytes') return data;
  const value: unknown = JSON.parse(data.toString('utf8'));
  if (format === 'text' && typeof value !== 'string')
    throw new TypeError('a text input file holds one JSON string');
  return value;
}

/**
 * Save the input of a finding in `dir` with a README line saying how to run it again; at most
 * `perSignature` files for one signature (a bug hit 10,000 times is saved a few times, counted always).
 */
export class FindingStore {
  private readonly saved = new Map<string, number>();

  constructor(
    readonly dir: string,
    readonly reproduce: (finding: Finding, file?: string) => string,
    readonly perSignature = 3,
  ) {}

  save(target: FuzzTarget<unknown>, finding: Finding, input: unknown): void {
    const key = `${finding.target} ${finding.signature}`;
    const count = this.saved.get(key) ?? 0;
    if (count >= this.perSignature) return;
    this.saved.set(key, count + 1);
    mkdirSync(this.dir, { recursive: true });
    const base = join(this.dir, `${finding.target}-${finding.index}-${finding.kind}`);
    const file = `${base}.${target.format === 'bytes' ? 'bin' : 'json'}`;
    let shown: string | undefined = relative(process.cwd(), file);
    try {
      writeFileSync(file, encodeInput(target.format, input));
    } catch {
      // Too large to write as one string: the seed and index make it again.
      shown = undefined;
    }
    writeFileSync(
      `${base}.txt`,
      [
        `${finding.kind} in ${finding.target}, input ${finding.index}`,
        finding.message,
        '',
        finding.stack ?? '',
        '',
        'Run it again:',
        `  ${this.reproduce(finding, shown)}`,
        '',
      ].join('\n'),
    );
    if (shown !== undefined) finding.file = shown;
  }
}

export function readInputFile(target: FuzzTarget<unknown>, file: string): unknown {
  return decodeInput(target.format, readFileSync(file));
}
