// The in-memory policies of serve (PolicyCache, src/server/app.ts): re-read when the store's change feed
// (Store.watchDomains) says a domain changed in any process, not by a fast poll of every domain. The
// safety refresh is set to an hour here, so only the feed can bring a change in.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { PolicyCache } from '../../src/server/app.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Domain, DomainSettings, Store } from '../../src/store/types.js';
import { eventually } from '../fixtures/serve/helpers.js';

const HOUR = 3_600_000;
const SETTINGS: DomainSettings = {
  mode: 'enforce',
  mx: ['mx.example.test'],
  maxAge: 86400,
  rua: ['mailto:tlsrpt@example.test'],
};
const logger = pino({ level: 'silent' });

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('PolicyCache', () => {
  it('serves a change made through another store on the same database (another process), by its feed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mxguard-policy-cache-'));
    dirs.push(dir);
    const serving = await openSqliteStore(dir);
    const writer = await openSqliteStore(dir);
    const cache = new PolicyCache(serving, logger, HOUR);
    try {
      await writer.addDomain('example.test', SETTINGS, new Date());
      await cache.start();
      assert.match(cache.get('example.test')?.toString() ?? '', /mode: enforce/);

      const changed = await writer.updateDomain(
        'example.test',
        { mode: 'testing' },
        new Date(Date.now() + 2000),
      );
      await eventually(
        () => (cache.get('example.test')?.toString() === changed.policyText ? true : undefined),
        'the changed policy in memory',
      );
      await writer.addDomain('new.example.test', SETTINGS, new Date());
      await writer.removeDomain('example.test');
      await eventually(
        () => (cache.get('new.example.test') && !cache.get('example.test') ? true : undefined),
        'the added domain served and the removed one gone',
      );
      // A watch-only domain's policy is hosted elsewhere.
      await writer.updateDomain('new.example.test', { watchOnly: true }, new Date(Date.now() + 4000));
      await eventually(
        () => (cache.get('new.example.test') ? undefined : true),
        'the watch-only domain gone',
      );
    } finally {
      await cache.stop();
      await serving.close();
      await writer.close();
    }
  });

  it('a refresh asked for while a read is under way reads again after it (that read may predate the change)', async () => {
    // A stub store whose reads wait until the test lets them finish, each returning the policy of its time.
    let current = 'version: STSv1\nmode: testing\n';
    const pending: Array<() => void> = [];
    const store = {
      watchDomains: async () => ({ stop: async () => undefined }),
      listDomains: () => {
        const seen = current;
        return new Promise<Domain[]>((resolve) => {
          pending.push(() => resolve([{ name: 'example.test', policyText: seen } as Domain]));
        });
      },
    } as unknown as Store;
    const cache = new PolicyCache(store, logger, HOUR);
    const first = cache.refresh();
    current = 'version: STSv1\nmode: enforce\n'; // committed after the first read started
    const second = cache.refresh();
    const third = cache.refresh();
    assert.equal(pending.length, 1, 'one read at a time');
    pending.shift()?.();
    await first;
    assert.equal(cache.get('example.test')?.toString(), 'version: STSv1\nmode: testing\n');
    await eventually(() => (pending.length === 1 ? true : undefined), 'the second read');
    pending.shift()?.();
    await Promise.all([second, third]);
    assert.equal(cache.get('example.test')?.toString(), current);
    assert.equal(pending.length, 0, 'the calls that came meanwhile share one read');
  });
});
