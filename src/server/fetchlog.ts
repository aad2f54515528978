// The fetch log of hosted policies: one writer. Who the fetchers are is src/mtasts/fetcher.ts.
import cluster, { type Worker } from 'node:cluster';
import type { PolicyFetch, Store } from '../store/types.js';

// ---- one writer for the fetch log ----
// In a cluster, every worker writing its own fetch-log batches to SQLite makes the workers wait for
// each other's write lock (a blocked event loop: slow answers for everyone). Instead the workers
// send their fetches to the primary in small batches over IPC, and only the primary writes them.

const RELAY_MESSAGE = 'mxguard:fetches';
const RELAY_BATCH = 200;
const RELAY_FLUSH_MS = 100;

/** Worker side: collects fetches and sends them to the primary (call flush() before exiting). */
export class FetchLogRelay {
  private pending: PolicyFetch[] = [];
  private timer: NodeJS.Timeout | undefined;

  /** Queue one fetch (bound, so it can be handed around as a function). */
  readonly push = (entry: PolicyFetch): void => {
    this.pending.push(entry);
    if (this.pending.length >= RELAY_BATCH) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), RELAY_FLUSH_MS).unref();
  };

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0 || !process.send || !process.connected) return;
    const entries = this.pending;
    this.pending = [];
    process.send({ type: RELAY_MESSAGE, entries });
  }
}

/** Primary side: write the fetches the workers send into the store's fetch log. */
export function acceptRelayedFetches(store: Pick<Store, 'logFetch'>): void {
  cluster.on('message', (_worker: Worker, message: { type?: string; entries?: unknown }) => {
    if (message?.type !== RELAY_MESSAGE || !Array.isArray(message.entries)) return;
    for (const entry of message.entries as PolicyFetch[]) store.logFetch(entry);
  });
}
