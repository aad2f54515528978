// Choosing and opening the store (src/store/index.ts): the order --database > MXGUARD_DATABASE_URL >
// the config file's `database` > the default, what a bad `database` is refused with (named, never
// showing a password), and a SQLite file named by `database` opened, refused or created as asked.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import {
  chooseDatabase,
  DATABASE_ENV,
  databaseProblem,
  describeDatabase,
  openStore,
  resolveDatabasePath,
} from '../../src/store/index.js';
import { DATABASE_FILE } from '../../src/store/sqlite.js';
import { DOMAIN_SETTINGS } from '../fixtures/serve/helpers.js';
import { freePort } from '../helpers/ports.js';
import { rejectsWithStoreError } from '../helpers/store.js';
import { type LabPostgres, startPostgres } from '../lab/postgres.js';

const root = mkdtempSync(join(tmpdir(), 'mxguard-store-index-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `d${++dirs}`);

/** The domain names in the existing store `database` (opened with mustExist, closed again). */
async function domainsOf(dataDir: string, database: string): Promise<string[]> {
  const store = await openStore(dataDir, { database, mustExist: true });
  try {
    return (await store.listDomains()).map((d) => d.name);
  } finally {
    await store.close();
  }
}

const URL_A = 'postgres://mxguard:s3cret-a@db-a.example.net:5432/mxguard';
const URL_B = 'postgresql://mxguard:s3cret-b@db-b.example.net/mxguard?sslmode=require';

describe('chooseDatabase', () => {
  it('--database wins over the variable and the config file', () => {
    const env = { [DATABASE_ENV]: URL_B };
    assert.equal(chooseDatabase({ option: URL_A, env, config: '/srv/c.sqlite' }), URL_A);
  });

  it('the variable wins over the config file', () => {
    assert.equal(chooseDatabase({ env: { [DATABASE_ENV]: URL_B }, config: '/srv/c.sqlite' }), URL_B);
  });

  it('the config file is taken when nothing else names a database', () => {
    assert.equal(chooseDatabase({ env: {}, config: '/srv/c.sqlite' }), '/srv/c.sqlite');
  });

  it('nothing given (or only empty text) is the default: undefined', () => {
    assert.equal(chooseDatabase({ env: {} }), undefined);
    assert.equal(chooseDatabase({ option: '', env: { [DATABASE_ENV]: '  ' }, config: '' }), undefined);
  });

  it('a bad value is refused naming where it came from, even when a later source is good', () => {
    const cases: Array<[Parameters<typeof chooseDatabase>[0], RegExp]> = [
      [{ option: 'mysql://u:p@h/db', env: {} }, /^--database: "mysql:\/\/" is not a database/],
      [
        { env: { [DATABASE_ENV]: 'postgres://u:p@h/db?sslmode=strict' } },
        /^MXGUARD_DATABASE_URL: .*sslmode "strict"/,
      ],
      [
        { env: {}, config: 'postgres://', configFile: '/etc/mxguard/serve.json' },
        /^\/etc\/mxguard\/serve\.json: database: /,
      ],
    ];
    for (const [choices, message] of cases) {
      assert.throws(
        () => chooseDatabase({ ...choices, config: choices.config ?? '/srv/good.sqlite' }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'STORE_INVALID');
          assert.match(err.message, message);
          return true;
        },
      );
    }
  });
});

describe('databaseProblem', () => {
  it('takes postgres URLs (either scheme, any sslmode pg knows, a socket host) and file paths', () => {
    for (const good of [
      URL_A,
      URL_B,
      'POSTGRES://u@127.0.0.1:5433/db',
      'postgres:///mxguard?host=/var/run/postgresql',
      'postgres://u@h/db?sslmode=verify-full',
      './data/other.sqlite',
      '/var/lib/mxguard/mxguard.sqlite',
    ]) {
      assert.equal(databaseProblem(good), undefined, good);
    }
  });

  it('refuses other schemes, URLs without a host, unknown sslmode and empty text, without the password', () => {
    for (const bad of [
      'mysql://u:s3cret@h/db',
      'sqlite://x.db',
      'postgres://u:s3cret@/db',
      'postgres://u:s3cret@h/db?sslmode=maybe',
      'postgres://u:s3cret@[::1/db',
      '',
    ]) {
      const problem = databaseProblem(bad);
      assert.ok(problem !== undefined, bad);
      assert.doesNotMatch(problem, /s3cret/, bad);
    }
  });
});

describe('describeDatabase', () => {
  it('masks the password of a URL (also as a query parameter) and leaves file paths alone', () => {
    assert.equal(describeDatabase(URL_A), 'postgres://mxguard:***@db-a.example.net:5432/mxguard');
    assert.equal(
      describeDatabase('postgres://u@h/db?password=s3cret&sslmode=require'),
      'postgres://u@h/db?password=***&sslmode=require',
    );
    assert.equal(describeDatabase('postgres://u@h/db'), 'postgres://u@h/db');
    assert.equal(describeDatabase('/srv/s3cret.sqlite'), '/srv/s3cret.sqlite');
  });
});

describe('resolveDatabasePath', () => {
  it('makes a relative SQLite path absolute against the base and leaves URLs alone', () => {
    assert.equal(resolveDatabasePath('db/x.sqlite', '/etc/mxguard'), '/etc/mxguard/db/x.sqlite');
    assert.equal(resolveDatabasePath('/srv/x.sqlite', '/etc/mxguard'), '/srv/x.sqlite');
    assert.equal(resolveDatabasePath(URL_A, '/etc/mxguard'), URL_A);
  });
});

describe('openStore', () => {
  it('without database: <dataDir>/mxguard.sqlite, refused with STORE_MISSING under mustExist', async () => {
    const dataDir = freshDir();
    await rejectsWithStoreError(
      openStore(dataDir, { mustExist: true }),
      'STORE_MISSING',
      /no mxguard database here/,
    );
    assert.equal(existsSync(dataDir), false);
    const store = await openStore(dataDir);
    await store.close();
    assert.equal(existsSync(join(dataDir, DATABASE_FILE)), true);
  });

  it('a SQLite file named by database: created in its own folder, not in dataDir; found again by mustExist', async () => {
    const dataDir = freshDir();
    const file = join(freshDir(), 'nested', 'other.sqlite');
    await rejectsWithStoreError(
      openStore(dataDir, { database: file, mustExist: true }),
      'STORE_MISSING',
      /other\.sqlite: no mxguard database here/,
    );
    assert.equal(existsSync(file), false);
    const store = await openStore(dataDir, { database: file });
    await store.addDomain('example.test', DOMAIN_SETTINGS, new Date());
    await store.close();
    assert.equal(existsSync(file), true);
    assert.equal(existsSync(join(dataDir, DATABASE_FILE)), false);
    assert.deepEqual(await domainsOf(dataDir, file), ['example.test']);
  });

  it('a bad database is STORE_INVALID before anything is touched, and names no password', async () => {
    const dataDir = freshDir();
    await rejectsWithStoreError(
      openStore(dataDir, { database: 'mysql://u:s3cret@h/db' }),
      'STORE_INVALID',
      /^database: "mysql:\/\/" is not a database/,
    );
    assert.equal(existsSync(dataDir), false);
  });
});

describe('openStore on PostgreSQL (the lab server)', () => {
  let lab: LabPostgres;
  let databases = 0;
  before(async () => {
    lab = await startPostgres();
  });
  after(async () => {
    await lab?.stop();
  });

  const tables = async (url: string): Promise<number> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query(
        "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public'",
      );
      return rows[0].n as number;
    } finally {
      await client.end();
    }
  };

  it('mustExist refuses a database without the mxguard tables (STORE_MISSING) and creates none', async () => {
    const url = await lab.createDatabase(`index_${++databases}`);
    await rejectsWithStoreError(
      openStore(freshDir(), { database: url, mustExist: true }),
      'STORE_MISSING',
      /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/index_\d+: no mxguard database here/,
    );
    assert.equal(await tables(url), 0);
  });

  it('mustExist on a database name the server does not have is STORE_MISSING too', async () => {
    const url = lab.adminUrl.replace(/\/postgres$/, '/no_such_database');
    await rejectsWithStoreError(
      openStore(freshDir(), { database: url, mustExist: true }),
      'STORE_MISSING',
      /\/no_such_database: no mxguard database here/,
    );
  });

  it('without mustExist the schema is made; then mustExist opens it and sees what was stored', async () => {
    const url = await lab.createDatabase(`index_${++databases}`);
    const dataDir = freshDir();
    const store = await openStore(dataDir, { database: url });
    await store.addDomain('example.test', DOMAIN_SETTINGS, new Date());
    await store.close();
    assert.equal(existsSync(dataDir), false, 'nothing in the data directory');
    assert.deepEqual(await domainsOf(dataDir, url), ['example.test']);
  });

  it('a server that does not answer is STORE_UNAVAILABLE, with or without mustExist, never showing the password', async () => {
    const url = `postgres://mxguard:s3cret@127.0.0.1:${await freePort()}/none`;
    for (const mustExist of [true, false]) {
      await assert.rejects(
        openStore(freshDir(), { database: url, mustExist }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'STORE_UNAVAILABLE', err.message);
          assert.match(err.message, /postgres:\/\/mxguard:\*\*\*@127\.0\.0\.1/);
          assert.doesNotMatch(err.message, /s3cret/);
          return true;
        },
      );
    }
  });
});
