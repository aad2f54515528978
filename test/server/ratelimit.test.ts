// The per-client token bucket of the HTTPS intake (src/server/ratelimit.ts), on an injected clock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { RateLimiter } from '../../src/server/ratelimit.js';

function limiter(perMinute: number, maxClients?: number) {
  let now = 1_000_000;
  const rl = new RateLimiter({ perMinute, now: () => now, maxClients });
  return { rl, advance: (ms: number) => (now += ms) };
}

describe('RateLimiter', () => {
  it('allows a burst of perMinute, then refuses with the wait for one token', () => {
    const { rl } = limiter(6);
    for (let i = 0; i < 6; i++) assert.deepEqual(rl.take('a'), { allowed: true });
    assert.deepEqual(rl.take('a'), { allowed: false, retryAfterSeconds: 10 });
  });

  it('refills continuously at perMinute / 60 per second, never above perMinute', () => {
    const { rl, advance } = limiter(60);
    for (let i = 0; i < 60; i++) rl.take('a');
    assert.equal(rl.take('a').allowed, false);
    advance(1000);
    assert.equal(rl.take('a').allowed, true);
    assert.equal(rl.take('a').allowed, false);
    advance(10 * 60_000);
    for (let i = 0; i < 60; i++) assert.equal(rl.take('a').allowed, true, `token ${i}`);
    assert.equal(rl.take('a').allowed, false);
  });

  it('keeps clients apart', () => {
    const { rl } = limiter(1);
    assert.equal(rl.take('192.0.2.1').allowed, true);
    assert.equal(rl.take('192.0.2.1').allowed, false);
    assert.equal(rl.take('192.0.2.2').allowed, true);
  });

  it('Retry-After rounds up and is at least 1 second', () => {
    const table: Array<[number, number]> = [
      [1, 60],
      [7, 9],
      [60, 1],
      [600, 1],
    ];
    for (const [perMinute, seconds] of table) {
      const { rl } = limiter(perMinute);
      for (let i = 0; i < perMinute; i++) rl.take('a');
      assert.deepEqual(
        rl.take('a'),
        { allowed: false, retryAfterSeconds: seconds },
        `perMinute ${perMinute}`,
      );
    }
  });

  it('remembers at most maxClients clients, forgetting the least recently seen', () => {
    const { rl } = limiter(1, 3);
    for (const ip of ['a', 'b', 'c']) rl.take(ip);
    rl.take('a'); // refused, but now the most recent
    rl.take('d'); // pushes out b
    assert.equal(rl.size, 3);
    assert.equal(rl.take('a').allowed, false);
    assert.equal(rl.take('b').allowed, true, 'b was forgotten and starts full');
  });

  it('refuses a rate that is not positive', () => {
    for (const perMinute of [0, -1, Number.NaN]) {
      assert.throws(() => new RateLimiter({ perMinute }), RangeError);
    }
  });

  it('property: over any schedule, no client gets more than the burst plus the refill', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 120 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 5000 }), fc.constantFrom('a', 'b')), { maxLength: 300 }),
        (perMinute, schedule) => {
          const { rl, advance } = limiter(perMinute);
          let elapsed = 0;
          const allowed = { a: 0, b: 0 };
          for (const [wait, ip] of schedule) {
            advance(wait);
            elapsed += wait;
            if (rl.take(ip).allowed) allowed[ip as 'a' | 'b']++;
          }
          const most = perMinute + Math.floor((elapsed * perMinute) / 60_000) + 1;
          assert.ok(allowed.a <= most && allowed.b <= most);
        },
      ),
    );
  });
});
