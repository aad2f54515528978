// DMARC reports in the SQLite store, what only SQLite shows: migration 5 over a database of version 4, and
// how commits are paced (sqlite-dmarc.ts commitDelay; a store opened with `bulk` for an import). The
// behaviour both stores share is the contract part test/store/contract-dmarc.ts (run by sqlite.test.ts and
// postgres.test.ts).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { DATABASE_FILE, openSqliteStore } from '../../src/store/sqlite.js';
import { commitDelay } from '../../src/store/sqlite-dmarc.js';
import { input, NOW, report } from './contract-dmarc.js';

let root: string;
let counter = 0;
const freshDir = () => join(root, `data-${++counter}`);

before(() => {
  root = mkdtempSync(join(tmpdir(), 'mxguard-dmarc-store-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

describe('migration 5', () => {
  it('adds the DMARC tables to a database left at version 4 with its TLS-RPT reports', async () => {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    const db = new Database(join(dir, DATABASE_FILE));
    for (const sql of MIGRATIONS.slice(0, 4)) db.exec(sql);
    db.pragma('user_version = 4');
    db.exec(`INSERT INTO settings (key, value) VALUES ('kept', 'yes')`);
    db.close();
    const store = await openSqliteStore(dir);
    try {
      assert.match(MIGRATIONS[4]!, /CREATE TABLE dmarc_reports/, 'migration 5 is the DMARC one');
      assert.equal(await store.getSetting('kept'), 'yes');
      assert.equal((await store.saveDmarcReport(input(report('m1')), NOW)).created, true);
    } finally {
      await store.close();
    }
  });
});

describe('commit pacing', () => {
  it("'shared' waits as long as the last commit took (10 ms at least); 'eager' 10 ms whatever it took", () => {
    // The last commit ended at t = 1000 after 60 ms; it is now t = 1005.
    assert.equal(commitDelay('shared', 1000, 60, 1005), 55);
    assert.equal(commitDelay('eager', 1000, 60, 1005), 5);
    // A quick commit: both wait the 10 ms that let saves gather.
    assert.equal(commitDelay('shared', 1000, 2, 1000), 10);
    assert.equal(commitDelay('eager', 1000, 2, 1000), 10);
    // Long after the last commit: at once.
    assert.ok(commitDelay('shared', 1000, 60, 2000) <= 0);
  });

  it('a store opened for a bulk import stores reports saved at once, each once', async () => {
    const dir = freshDir();
    const store = await openSqliteStore(dir, undefined, { bulk: true });
    try {
      const ids = Array.from({ length: 50 }, (_, i) => `bulk-${i}`);
      const saved = await Promise.all(ids.map((id) => store.saveDmarcReport(input(report(id)), NOW)));
      assert.ok(saved.every((s) => s.created));
      assert.equal(new Set(saved.map((s) => s.id)).size, 50);
      const again = await Promise.all(ids.map((id) => store.saveDmarcReport(input(report(id)), NOW)));
      assert.deepEqual(
        again.map((s) => s.id),
        saved.map((s) => s.id),
      );
      assert.equal((await store.listDmarcReports({ limit: 1 })).total, 50);
    } finally {
      await store.close();
    }
  });
});
