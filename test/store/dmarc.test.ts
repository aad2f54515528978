// DMARC reports in the SQLite store, what only SQLite shows: migration 5 over a database of version 4. The
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
