// The work serve runs once across its instances (src/server/background.ts): only the holder of the
// store's "background" lock runs it; the others take over when it stops; a holder that loses the lock
// stops the work and asks again. Two SQLite stores on one file stand for two instances; the lost lock
// uses a stub lock (the stores' own loss of a lock is tested in test/store/cluster.test.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { BACKGROUND_LOCK, BackgroundWork } from '../../src/server/background.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { HeldLock, Store } from '../../src/store/types.js';
import { eventually } from '../fixtures/serve/helpers.js';

const logger = pino({ level: 'silent' });
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Work that records whether it runs. */
function job() {
  const state = { starts: 0, stops: 0 };
  return {
    state,
    get running() {
      return state.starts > state.stops;
    },
    start: async () => {
      state.starts++;
      return [
        {
          stop: async () => {
            state.stops++;
          },
        },
      ];
    },
  };
}

describe('background work across instances', () => {
  it('runs in one instance only; the other takes over when it stops', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mxguard-background-'));
    dirs.push(dir);
    const storeA = await openSqliteStore(dir);
    const storeB = await openSqliteStore(dir);
    const jobA = job();
    const jobB = job();
    const a = new BackgroundWork({ store: storeA, logger, start: jobA.start, retryMs: 50 });
    const b = new BackgroundWork({ store: storeB, logger, start: jobB.start, retryMs: 50 });
    try {
      await a.begin();
      await b.begin();
      assert.equal(jobA.running, true);
      assert.equal(a.active, true);
      assert.equal(jobB.state.starts, 0, 'standby while the other runs it');
      assert.equal(b.active, false);
      await a.stop();
      assert.equal(jobA.running, false);
      await eventually(() => (jobB.running ? true : undefined), 'the standby instance taking over');
      assert.equal(jobB.state.starts, 1);
    } finally {
      await a.stop();
      await b.stop();
      await storeA.close();
      await storeB.close();
    }
  });

  it('a holder that loses the lock stops the work, then takes it again when it can', async () => {
    let lose: () => void = () => undefined;
    let locks = 0;
    const store: Pick<Store, 'tryLock'> = {
      tryLock: async (name: string): Promise<HeldLock> => {
        assert.equal(name, BACKGROUND_LOCK);
        locks++;
        return {
          lost: new Promise<void>((resolve) => {
            lose = resolve;
          }),
          release: async () => undefined,
        };
      },
    };
    const work = job();
    const background = new BackgroundWork({ store, logger, start: work.start, retryMs: 10 });
    try {
      await background.begin();
      assert.equal(work.running, true);
      lose();
      await eventually(() => (work.state.stops === 1 ? true : undefined), 'the work stopped');
      await eventually(() => (work.state.starts === 2 && work.running ? true : undefined), 'the work again');
      assert.equal(locks, 2);
    } finally {
      await background.stop();
    }
    assert.equal(work.running, false);
  });

  it('a first start that fails rejects begin() and frees the lock for the others', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mxguard-background-'));
    dirs.push(dir);
    const store = await openSqliteStore(dir);
    try {
      const failing = new BackgroundWork({
        store,
        logger,
        start: async () => {
          throw new Error('IMAP: cannot log in');
        },
      });
      await assert.rejects(failing.begin(), /IMAP: cannot log in/);
      assert.equal(failing.active, false);
      const lock = await store.tryLock(BACKGROUND_LOCK);
      assert.ok(lock, 'the lock is free again');
      await lock.release();
    } finally {
      await store.close();
    }
  });
});
