// The PostgreSQL pass (test/postgres-pass.ts, `npm run test:postgres`) stays complete: every test file
// that builds a serve context or app (testContext, openTestApp) is either run on PostgreSQL too or
// named as SQLite-only with its reason, and every file named exists.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { POSTGRES_PASS, SQLITE_ONLY } from './postgres-pass.js';

const root = fileURLToPath(new URL('..', import.meta.url));

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return testFiles(path);
    return entry.name.endsWith('.test.ts') ? [relative(root, path)] : [];
  });
}

describe('the PostgreSQL pass', () => {
  it('names every test file that builds a serve context or app, once', () => {
    const building = testFiles(join(root, 'test')).filter((file) =>
      /\b(testContext|openTestApp)\(/.test(readFileSync(join(root, file), 'utf8')),
    );
    const named = [...POSTGRES_PASS, ...Object.keys(SQLITE_ONLY)];
    const missing = building.filter((file) => !named.includes(file));
    assert.deepEqual(missing, [], 'put each in POSTGRES_PASS or SQLITE_ONLY (test/postgres-pass.ts)');
    assert.equal(new Set(named).size, named.length, 'a file named twice');
  });

  it('names only files that exist', () => {
    for (const file of [...POSTGRES_PASS, ...Object.keys(SQLITE_ONLY)]) {
      assert.ok(existsSync(join(root, file)), file);
    }
  });
});
