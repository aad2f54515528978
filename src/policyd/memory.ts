// A PolicyStore in memory only: for `policyd query` when there is no cache file yet, and for tests.
import type { CachedPolicy, PolicyStore } from './store.js';

export class MemoryPolicyStore implements PolicyStore {
  private readonly entries = new Map<string, CachedPolicy>();

  async get(domain: string): Promise<CachedPolicy | undefined> {
    return this.entries.get(domain);
  }

  async set(entry: CachedPolicy): Promise<void> {
    this.entries.set(entry.domain, entry);
  }

  async delete(domain: string): Promise<boolean> {
    return this.entries.delete(domain);
  }

  async all(): Promise<CachedPolicy[]> {
    return [...this.entries.values()].sort((a, b) => a.domain.localeCompare(b.domain));
  }

  async close(): Promise<void> {}
}
