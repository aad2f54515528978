// KeyedLimiter (src/common/limit.ts): at most `perKey` calls under way per key, the next call for a key only
// after the pause, other keys not held up; the clock is node:test's mock timers, so nothing depends on speed.
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { KeyedLimiter } from '../../src/common/limit.js';

/** A call that stays under way until its `finish()` is called; `started` says whether fn ran yet. */
function pending() {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const call = {
    started: false,
    finish,
    fn: async () => {
      call.started = true;
      await done;
    },
  };
  return call;
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('KeyedLimiter', () => {
  it('runs at most perKey calls per key at once, and waits out the pause before the next one', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const limiter = new KeyedLimiter(2, 250);
      const calls = Array.from({ length: 4 }, pending);
      const other = pending();
      const runs = calls.map((c) => limiter.run('192.0.2.1', c.fn));
      const otherRun = limiter.run('192.0.2.2', other.fn);
      await settle();
      assert.deepEqual(
        calls.map((c) => c.started),
        [true, true, false, false],
      );
      assert.equal(other.started, true, 'another address is not held up');
      calls[0]!.finish();
      await runs[0];
      await settle();
      assert.equal(calls[2]!.started, false, 'the freed slot waits for the pause');
      mock.timers.tick(249);
      await settle();
      assert.equal(calls[2]!.started, false);
      mock.timers.tick(1);
      await settle();
      assert.equal(calls[2]!.started, true, 'after 250 ms the next call starts');
      assert.equal(calls[3]!.started, false);
      for (const c of [...calls, other]) c.finish();
      mock.timers.tick(250);
      await settle();
      mock.timers.tick(250);
      await Promise.all([...runs, otherRun]);
      assert.equal(calls[3]!.started, true);
    } finally {
      mock.timers.reset();
    }
  });

  it('frees the slot when the call throws', async () => {
    const limiter = new KeyedLimiter(1);
    await assert.rejects(
      limiter.run('k', async () => {
        throw new Error('refused');
      }),
      /refused/,
    );
    assert.equal(await limiter.run('k', async () => 'next'), 'next');
  });
});
