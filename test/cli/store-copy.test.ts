// `mxguard store copy` as users run it (the built command, dist/cli/main.js): a data directory copied to
// a lab PostgreSQL (test/lab/postgres.ts) and back, the JSON summary and the progress lines, a second run
// adding nothing, exit 1 for a conflicting target and for a failed count check, exit 2 for usage errors
// and unusable databases, and passwords never printed.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { CopySummary } from '../../src/store/copy.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';
import { runCli } from '../helpers/cli.js';
import { type LabPostgres, startPostgres } from '../lab/postgres.js';
import { newReport, policy, report, settings, T0 } from '../store/contract.js';

let lab: LabPostgres;
let root: string;
let count = 0;
const freshDatabase = () => lab.createDatabase(`cli_copy_${++count}`);

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'mxguard-cli-copy-'));
  lab = await startPostgres();
});
after(async () => {
  await lab?.stop();
  rmSync(root, { recursive: true, force: true });
});

/** A data directory with two domains (one with a second policy) and three reports. */
async function dataDir(): Promise<string> {
  const dir = join(root, `data-${++count}`);
  const store = await openSqliteStore(dir);
  try {
    await store.addDomain('example.com', settings, T0);
    await store.updateDomain('example.com', { mode: 'enforce' }, new Date(T0.getTime() + 60_000));
    await store.addDomain('example.org', settings, T0);
    for (const id of ['a', 'b', 'c']) {
      await store.saveReport(newReport(report(id, T0.toISOString(), [policy('example.com', 10, 1)])), T0);
    }
    await store.saveRejected({ source: 'https', reason: 'not a report', size: 3 }, T0);
  } finally {
    await store.close();
  }
  return dir;
}

async function withPostgresStore<T>(url: string, use: (store: Store) => Promise<T>): Promise<T> {
  const store = await openPostgresStore(url);
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}

const table = (summary: CopySummary, name: string) => summary.tables.find((t) => t.table === name)!;

describe('mxguard store copy', () => {
  it('copies a data directory to PostgreSQL (JSON summary, progress per table), again adding nothing, and back', async () => {
    const dir = await dataDir();
    const url = await freshDatabase();
    const first = runCli(['store', 'copy', '--from', dir, '--to', url, '--json']);
    assert.equal(first.code, 0, first.stderr);
    const summary = JSON.parse(first.stdout) as CopySummary;
    assert.equal(summary.ok, true);
    assert.deepEqual(
      [
        table(summary, 'domains').inserted,
        table(summary, 'policy_versions').inserted,
        table(summary, 'reports').inserted,
      ],
      [2, 3, 3],
    );
    assert.ok(summary.notCopied.some((n) => n.table === 'sessions'));
    assert.match(first.stderr, /^mxguard store copy: domains: copied 2\/2$/m);
    assert.match(first.stderr, /^mxguard store copy: reports: checked 3\/3$/m);

    await withPostgresStore(url, async (store) => {
      assert.deepEqual(
        (await store.listDomains()).map((d) => [d.name, d.mode]),
        [
          ['example.com', 'enforce'],
          ['example.org', 'testing'],
        ],
      );
      assert.equal((await store.policyHistory('example.com')).length, 2);
      assert.equal((await store.listReports({})).items.length, 3);
    });

    // The installation now runs from PostgreSQL: the commands reach it with --database.
    const list = runCli(['domain', 'list', '--database', url]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /example\.com[^\n]*enforce/);

    const again = runCli(['store', 'copy', '--from', dir, '--to', url]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^reports\s+3\s+0\s+3\s+3\s+ok$/m);
    assert.match(again.stdout, /every table is complete in postgres:\/\//);

    const back = join(root, `back-${++count}`, 'mxguard.sqlite');
    const home = runCli(['store', 'copy', '--from', url, '--to', back, '--json']);
    assert.equal(home.code, 0, home.stderr);
    assert.equal(table(JSON.parse(home.stdout) as CopySummary, 'reports').present, 3);
    assert.ok(existsSync(back));
  });

  it('exit 1 and COPY_CONFLICT naming the table when the target holds other data', async () => {
    const dir = await dataDir();
    const url = await freshDatabase();
    await withPostgresStore(url, (store) =>
      store.addDomain('example.com', { ...settings, maxAge: 86400 }, T0),
    );
    const r = runCli(['store', 'copy', '--from', dir, '--to', url]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /mxguard: COPY_CONFLICT: table domains: the row name="example.com" differs in the target/,
    );
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });

  it('exit 1 when the count check finds rows missing in the target', async () => {
    const dir = await dataDir();
    const url = await freshDatabase();
    await withPostgresStore(url, async () => {});
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      // The target takes the rejected input, then loses it (as a careless retention job would).
      await client.query(`CREATE FUNCTION drop_rejected() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN DELETE FROM rejected WHERE id = NEW.id; RETURN NULL; END $$`);
      await client.query(
        'CREATE TRIGGER drop_rejected AFTER INSERT ON rejected FOR EACH ROW EXECUTE FUNCTION drop_rejected()',
      );
    } finally {
      await client.end();
    }
    const r = runCli(['store', 'copy', '--from', dir, '--to', url]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^rejected\s+1\s+1\s+0\s+0\s+MISSING$/m);
    assert.match(r.stdout, /^reports\s+3\s+3\s+0\s+3\s+ok$/m);
    assert.match(r.stdout, /rejected: the target lacks rows of the source/);
  });

  it('exit 2 for usage errors and databases that cannot be used; no password printed', async () => {
    const dir = await dataDir();
    const missing = runCli(['store', 'copy', '--from', join(root, 'nowhere'), '--to', join(root, 'new-dir')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /COPY_LOCATION: .*nowhere.*: no such database file/);
    assert.equal(existsSync(join(root, 'new-dir')), false, 'nothing created for a missing source');

    const noTarget = runCli(['store', 'copy', '--from', dir]);
    assert.equal(noTarget.code, 2);
    assert.match(noTarget.stderr, /--to/);

    const scheme = runCli(['store', 'copy', '--from', dir, '--to', 'mysql://u@h/db']);
    assert.equal(scheme.code, 2);
    assert.match(scheme.stderr, /--to: "mysql:\/\/" is not a database/);

    const same = runCli(['store', 'copy', '--from', dir, '--to', join(dir, 'mxguard.sqlite')]);
    assert.equal(same.code, 2);
    assert.match(same.stderr, /COPY_SAME_DATABASE/);

    const secret = `postgres://postgres:s3cret-pw@127.0.0.1:${lab.port}/no_such_database`;
    const unreachable = runCli(['store', 'copy', '--from', dir, '--to', secret]);
    assert.equal(unreachable.code, 2);
    assert.match(unreachable.stderr, /no_such_database/);
    assert.doesNotMatch(unreachable.stderr + unreachable.stdout, /s3cret-pw/);
  });
});
