// A clock driven by hand for the monitor's scheduler (src/monitor/scheduler.ts SchedulerClock): timers fire
// only when the test moves the time forward, in order, so nothing in a test waits for real time.
import type { SchedulerClock } from '../../src/monitor/scheduler.js';

export class ManualClock implements SchedulerClock {
  private timers: Array<{ at: number; callback: () => void; id: number }> = [];
  private nextId = 1;

  constructor(public time = 0) {}

  now(): number {
    return this.time;
  }

  /** The time as a Date (the monitor's `now`). */
  date(): Date {
    return new Date(this.time);
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ at: this.time + ms, callback, id });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  /** Moves the time forward, firing the timers that come due on the way, in order. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      await settle();
      const next = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.time = next.at;
      next.callback();
    }
    this.time = end;
    await settle();
  }
}

/** Lets every promise callback that can run, run (no time passes on a manual clock). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}
