// Time for the policy daemon. The cache logic takes a Clock so tests can move time by hand; the daemon
// uses a coarse clock that a timer updates, so answering from the cache reads a number instead of
// asking the system for the time on every query.

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to (tests). */
export class ManualClock implements Clock {
  constructor(private time: number) {}

  now(): number {
    return this.time;
  }

  advance(ms: number): void {
    this.time += ms;
  }

  set(ms: number): void {
    this.time = ms;
  }
}

/** Date.now(), read every `resolutionMs` by a timer that does not keep the process alive. */
export class CoarseClock implements Clock {
  private time = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(resolutionMs = 100) {
    this.timer = setInterval(() => {
      this.time = Date.now();
    }, resolutionMs);
    this.timer.unref();
  }

  now(): number {
    return this.time;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
