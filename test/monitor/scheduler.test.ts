// The monitor's scheduler (src/monitor/scheduler.ts) with a clock driven by hand: every domain on start,
// then every interval with jitter, the concurrency cap, no check overlapping itself, on-demand checks, and
// stop() waiting for checks under way. Nothing waits for real time: checks are promises the test settles.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DOMAIN_LIST_REFRESH_MS, Scheduler, type Trigger } from '../../src/monitor/scheduler.js';
import { ManualClock, settle } from '../helpers/manual-clock.js';

/** Checks the test finishes by hand. */
class Checks {
  started: Array<{
    domain: string;
    trigger: Trigger;
    at: number;
    finish: () => void;
    fail: (e: Error) => void;
  }> = [];
  running = new Map<string, number>();
  maxAtOnce = 0;
  overlapped = false;
  constructor(private readonly clock: ManualClock) {}
  check = (domain: string, trigger: Trigger): Promise<string> =>
    new Promise((resolve, reject) => {
      const n = (this.running.get(domain) ?? 0) + 1;
      if (n > 1) this.overlapped = true;
      this.running.set(domain, n);
      const total = [...this.running.values()].reduce((a, b) => a + b, 0);
      this.maxAtOnce = Math.max(this.maxAtOnce, total);
      const done = () => this.running.set(domain, (this.running.get(domain) ?? 1) - 1);
      this.started.push({
        domain,
        trigger,
        at: this.clock.now(),
        finish: () => {
          done();
          resolve(`${domain}@${trigger}`);
        },
        fail: (e) => {
          done();
          reject(e);
        },
      });
    });
  /** Finishes every check under way. */
  async finishAll(): Promise<void> {
    for (const s of this.started) s.finish();
    await settle();
  }
}

function setup(
  domains: string[],
  options: { concurrency?: number; intervalMs?: number; random?: number } = {},
) {
  const clock = new ManualClock();
  const checks = new Checks(clock);
  const list = [...domains];
  const errors: unknown[] = [];
  const scheduler = new Scheduler({
    domains: async () => [...list],
    check: checks.check,
    intervalMs: options.intervalMs ?? 3_600_000,
    concurrency: options.concurrency ?? 4,
    clock,
    random: () => options.random ?? 0.5,
    onError: (e) => errors.push(e),
  });
  return { clock, checks, list, scheduler, errors };
}

describe('Scheduler', () => {
  it('checks every domain on start, at most `concurrency` at once, the rest as places free up', async () => {
    const { clock, checks, scheduler } = setup(['a.test', 'b.test', 'c.test'], { concurrency: 2 });
    scheduler.start();
    await clock.advance(0);
    assert.deepEqual(
      checks.started.map((s) => s.domain),
      ['a.test', 'b.test'],
    );
    assert.equal(scheduler.inFlight, 2);
    checks.started[0]!.finish();
    await settle();
    assert.deepEqual(
      checks.started.map((s) => `${s.domain} ${s.trigger}`),
      ['a.test start', 'b.test start', 'c.test start'],
    );
    await checks.finishAll();
    assert.equal(checks.maxAtOnce, 2);
    await scheduler.stop();
  });

  it('checks each domain again one interval (less the jitter) after its last check ended', async () => {
    const { clock, checks, scheduler } = setup(['a.test'], { intervalMs: 1_000_000, random: 0.5 });
    scheduler.start();
    await clock.advance(0);
    await clock.advance(10);
    await checks.finishAll(); // ended at t = 10
    // Jitter 0.5 of 10 %: the next check 950,000 ms after the end.
    await clock.advance(949_999);
    assert.equal(checks.started.length, 1);
    await clock.advance(1);
    assert.equal(checks.started.length, 2);
    assert.deepEqual(
      { trigger: checks.started[1]!.trigger, at: checks.started[1]!.at },
      { trigger: 'schedule', at: 950_010 },
    );
    await checks.finishAll();
    await scheduler.stop();
  });

  it('the jitter only shortens the interval, by at most 10 %', async () => {
    for (const random of [0, 0.999]) {
      const { clock, checks, scheduler } = setup(['a.test'], { intervalMs: 1_000_000, random });
      scheduler.start();
      await clock.advance(0);
      await checks.finishAll();
      await clock.advance(1_000_000);
      const second = checks.started[1]!.at;
      assert.ok(second >= 900_000 && second <= 1_000_000, `second check at ${second}`);
      await checks.finishAll();
      await scheduler.stop();
    }
  });

  it('a check that takes longer than the interval is not started again meanwhile', async () => {
    const { clock, checks, scheduler } = setup(['a.test'], { intervalMs: 100_000 });
    scheduler.start();
    await clock.advance(0);
    await clock.advance(1_000_000);
    assert.equal(checks.started.length, 1);
    assert.equal(checks.overlapped, false);
    await checks.finishAll();
    await scheduler.stop();
  });

  it('checkNow waits for the check of the domain under way, then runs its own and returns its result', async () => {
    const { clock, checks, scheduler } = setup(['a.test']);
    scheduler.start();
    await clock.advance(0);
    const now = scheduler.checkNow('a.test');
    await settle();
    assert.equal(checks.started.length, 1, 'not while the start check runs');
    checks.started[0]!.finish();
    await settle();
    assert.equal(checks.started.length, 2);
    assert.equal(checks.started[1]!.trigger, 'manual');
    checks.started[1]!.finish();
    assert.equal(await now, 'a.test@manual');
    assert.equal(checks.overlapped, false);
    await scheduler.stop();
  });

  it('two checkNow of one domain run one after the other', async () => {
    const { checks, scheduler } = setup(['a.test']);
    const first = scheduler.checkNow('a.test');
    const second = scheduler.checkNow('a.test');
    await settle();
    assert.equal(checks.started.length, 1);
    checks.started[0]!.finish();
    await settle();
    assert.equal(checks.started.length, 2);
    checks.started[1]!.finish();
    assert.deepEqual(await Promise.all([first, second]), ['a.test@manual', 'a.test@manual']);
    assert.equal(checks.overlapped, false);
    await scheduler.stop();
  });

  it('checkNow goes before the scheduled checks waiting for a place', async () => {
    const { clock, checks, scheduler } = setup(['a.test', 'b.test', 'c.test'], { concurrency: 1 });
    scheduler.start();
    await clock.advance(0);
    const now = scheduler.checkNow('c.test');
    checks.started[0]!.finish();
    await settle();
    assert.deepEqual(
      checks.started.map((s) => `${s.domain} ${s.trigger}`),
      ['a.test start', 'c.test manual'],
    );
    checks.started[1]!.finish();
    await now;
    await settle();
    assert.equal(checks.started[2]?.domain, 'b.test');
    await checks.finishAll();
    await scheduler.stop();
  });

  it('checkNow of a domain the schedule does not know yet runs, and works without start()', async () => {
    const { checks, scheduler } = setup([]);
    const now = scheduler.checkNow('new.test');
    await settle();
    checks.started[0]!.finish();
    assert.equal(await now, 'new.test@manual');
    await scheduler.stop();
  });

  it('picks up domains added and forgets domains removed within a minute', async () => {
    const { clock, checks, list, scheduler } = setup(['a.test'], { intervalMs: 3_600_000 });
    scheduler.start();
    await clock.advance(0);
    await checks.finishAll();
    list.push('b.test');
    list.splice(0, 1);
    await clock.advance(DOMAIN_LIST_REFRESH_MS);
    assert.deepEqual(
      checks.started.map((s) => `${s.domain} ${s.trigger}`),
      ['a.test start', 'b.test schedule'],
    );
    await checks.finishAll();
    await clock.advance(3_600_000);
    assert.deepEqual(
      checks.started.slice(2).map((s) => s.domain),
      ['b.test'],
      'a.test is no longer checked',
    );
    await checks.finishAll();
    await scheduler.stop();
  });

  it('a failing check is reported and the domain stays on schedule', async () => {
    const { clock, checks, scheduler, errors } = setup(['a.test'], { intervalMs: 1000, random: 0 });
    scheduler.start();
    await clock.advance(0);
    checks.started[0]!.fail(new Error('store is gone'));
    await settle();
    assert.equal(errors.length, 1);
    await clock.advance(1000);
    assert.equal(checks.started.length, 2);
    await checks.finishAll();
    await scheduler.stop();
  });

  it('stop() waits for the checks under way, starts no more, and refuses waiting checkNow', async () => {
    const { clock, checks, scheduler } = setup(['a.test', 'b.test'], { concurrency: 1 });
    scheduler.start();
    await clock.advance(0);
    const waiting = scheduler.checkNow('b.test').then(
      () => 'ran',
      (e: Error) => e.name,
    );
    let stopped = false;
    const stopping = scheduler.stop().then(() => {
      stopped = true;
    });
    await settle();
    assert.equal(stopped, false, 'stop() resolved while a check was under way');
    checks.started[0]!.finish();
    await stopping;
    assert.equal(await waiting, 'SchedulerStopped');
    await clock.advance(10_000_000);
    assert.equal(checks.started.length, 1);
    await assert.rejects(scheduler.checkNow('a.test'), { name: 'SchedulerStopped' });
  });
});
