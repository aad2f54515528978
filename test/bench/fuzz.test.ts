// The fuzz harness (bench/fuzz.ts, bench/fuzz/*): every real target runs a few hundred inputs without a
// crash and reaches both outcomes; and the harness can fail: fake targets that throw, stall, never settle,
// loop forever or kill their process are counted as crashes and hangs at exactly the inputs that did it.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Finding, type FuzzTarget, runRange } from '../../bench/fuzz/harness.js';
import { inputSeed, Rng } from '../../bench/fuzz/random.js';
import { corpusOf, runTargets } from '../../bench/fuzz/runner.js';
import { TARGETS } from '../../bench/fuzz/targets.js';
import { crashing, unsettled } from '../fixtures/fuzz/fake-targets.js';

const FAKES = fileURLToPath(new URL('../fixtures/fuzz/fake-targets.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'mxguard-fuzz-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The indices in [0, count) whose fake input (a number 0-99 from the input's PRNG) is `value`. */
function indicesOf(target: string, seed: number, count: number, value: number): number[] {
  const found: number[] = [];
  for (let i = 0; i < count; i++) if (new Rng(inputSeed(seed, target, i)).int(100) === value) found.push(i);
  return found;
}

/** The first seed from 1 on whose inputs [0, count) of `target` hold `value` exactly `times` times. */
function seedWith(target: string, count: number, value: number, times: number): number {
  let seed = 1;
  while (indicesOf(target, seed, count, value).length !== times) seed++;
  return seed;
}

async function runInProcess(target: FuzzTarget<unknown>, count: number, seed: number, limits = {}) {
  const findings: Finding[] = [];
  const driver = await target.setup(corpusOf([]));
  const counts = await runRange(target, driver, {
    seed,
    from: 0,
    to: count,
    hangMs: 600_000,
    settleMs: 600_000,
    ...limits,
    onFinding: (f) => findings.push(f),
  });
  return { counts, findings };
}

describe('every fuzz target, 300 inputs of seed 1', () => {
  for (const target of TARGETS) {
    test(target.name, async () => {
      // No hang limit here (no timing in tests): only crashes and broken round trips count.
      const { counts, findings } = await runInProcess(target, 300, 1);
      assert.deepEqual(
        findings.map((f) => `input ${f.index}: ${f.message}`),
        [],
      );
      assert.equal(counts.inputs, 300);
      assert.ok(counts.accepted > 0, 'the generator reaches inputs the parser accepts');
      // The TXT helpers refuse nothing; every parser must also see inputs it refuses.
      if (target.name !== 'txt')
        assert.ok(counts.rejected > 0, 'the generator reaches inputs the parser refuses');
    });
  }
});

describe('the harness counts what a target does wrong', () => {
  test('a thrown error other than the typed one is a crash, at the input that threw', async () => {
    const { counts, findings } = await runInProcess(crashing as FuzzTarget<unknown>, 500, 7);
    const crashes = indicesOf('fake-crash', 7, 500, 0);
    const rejections = indicesOf('fake-crash', 7, 500, 1);
    assert.ok(crashes.length > 0 && rejections.length > 0, 'seed 7 has inputs of both kinds');
    assert.equal(counts.crashes, crashes.length);
    assert.equal(counts.rejected, rejections.length);
    assert.equal(counts.accepted, 500 - crashes.length - rejections.length);
    assert.deepEqual(
      findings.map((f) => [f.kind, f.index, f.message]),
      crashes.map((i) => ['crash', i, 'Error: boom']),
    );
  });

  test('an await that never settles is a hang, and the run goes on', async () => {
    const { counts, findings } = await runInProcess(unsettled as FuzzTarget<unknown>, 200, 3, {
      settleMs: 20,
    });
    const hangs = indicesOf('fake-unsettled', 3, 200, 0);
    assert.ok(hangs.length > 0, 'seed 3 has inputs that never settle');
    assert.equal(counts.hangs, hangs.length);
    assert.equal(counts.accepted, 200 - hangs.length);
    assert.deepEqual(
      findings.map((f) => [f.kind, f.index]),
      hangs.map((i) => ['hang', i]),
    );
  });

  test('an input slower than the hang limit every time it is tried is a hang', async () => {
    const slow: FuzzTarget<number> = {
      ...(crashing as FuzzTarget<number>),
      name: 'fake-slow',
      setup: () => ({
        generate: (rng) => rng.int(100),
        run(n) {
          if (n === 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
          return 'accepted';
        },
      }),
    };
    const seed = seedWith('fake-slow', 100, 0, 1);
    const { counts, findings } = await runInProcess(slow as FuzzTarget<unknown>, 100, seed, { hangMs: 150 });
    const hangs = indicesOf('fake-slow', seed, 100, 0);
    assert.equal(counts.hangs, hangs.length);
    assert.deepEqual(
      findings.map((f) => [f.kind, f.index]),
      hangs.map((i) => ['hang', i]),
    );
  });

  test('an endless loop is killed by the watchdog (a hang), a process that exits is a crash, the run goes on', async () => {
    // A seed whose first 40 inputs hold exactly one endless loop (0) and one exit (1), neither the first.
    const count = 40;
    let seed = 1;
    while (
      indicesOf('fake-deadly', seed, count, 0).length !== 1 ||
      indicesOf('fake-deadly', seed, count, 1).length !== 1 ||
      indicesOf('fake-deadly', seed, 1, 0).length + indicesOf('fake-deadly', seed, 1, 1).length > 0
    )
      seed++;
    const loopAt = indicesOf('fake-deadly', seed, count, 0)[0]!;
    const exitAt = indicesOf('fake-deadly', seed, count, 1)[0]!;
    const crashDir = join(dir, 'crashes');
    const [result] = await runTargets({
      targets: ['fake-deadly'],
      count,
      seed,
      corpus: [],
      hangMs: 60_000,
      watchdogMs: 1000,
      crashDir,
      targetModules: [FAKES],
      log: () => {},
    });
    assert.ok(result, 'a result for fake-deadly');
    assert.deepEqual(
      {
        inputs: result.counts.inputs,
        accepted: result.counts.accepted,
        hangs: result.counts.hangs,
        crashes: result.counts.crashes,
      },
      { inputs: count, accepted: count - 2, hangs: 1, crashes: 1 },
    );
    const byIndex = new Map(result.findings.map((f) => [f.index, f]));
    assert.equal(byIndex.get(loopAt)?.kind, 'hang');
    assert.match(byIndex.get(loopAt)?.message ?? '', /killed by the watchdog/);
    assert.equal(byIndex.get(exitAt)?.kind, 'crash');
    assert.match(byIndex.get(exitAt)?.message ?? '', /exit code 7/);
    // Each input is saved with the command that runs it again.
    const saved = join(crashDir, `fake-deadly-${loopAt}-hang`);
    assert.equal(readFileSync(`${saved}.json`, 'utf8'), '0');
    assert.match(
      readFileSync(`${saved}.txt`, 'utf8'),
      /bench\/fuzz\.ts --target fake-deadly --input \S+-hang\.json/,
    );
    assert.ok(
      existsSync(join(crashDir, `fake-deadly-${exitAt}-crash.json`)),
      'the input that exited is saved',
    );
  });
});
