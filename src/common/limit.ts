// Bounded concurrency for I/O fan-out (probing MX hosts, refreshing policies).

/** Run `fn` over `items` with at most `limit` calls under way; results in the order of `items`. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * At most `perKey` calls under way per key (an address), each slot held `pauseMs` longer after its call ends, so
 * calls for one key never exceed the cap and follow each other with a pause. Keys with nothing under way or
 * waiting are forgotten (memory follows the keys in use, not every key ever seen).
 */
export class KeyedLimiter {
  private readonly slots = new Map<string, { active: number; waiting: Array<() => void> }>();

  constructor(
    private readonly perKey: number,
    private readonly pauseMs = 0,
  ) {}

  async run<R>(key: string, fn: () => Promise<R>): Promise<R> {
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = { active: 0, waiting: [] };
      this.slots.set(key, slot);
    }
    if (slot.active >= this.perKey) await new Promise<void>((resolve) => slot!.waiting.push(resolve));
    else slot.active++;
    const held = slot;
    // Hand the slot straight to the next waiter (active stays the same), or free it; after the pause, which
    // delays the next call for this key, not the result of this one.
    const release = () => {
      const next = held.waiting.shift();
      if (next !== undefined) next();
      else if (--held.active === 0) this.slots.delete(key);
    };
    try {
      return await fn();
    } finally {
      if (this.pauseMs > 0) setTimeout(release, this.pauseMs);
      else release();
    }
  }
}
