// `--database` on the commands that open the store (src/cli/store-options.ts) and on `serve`
// (src/server/config.ts): --database > MXGUARD_DATABASE_URL > `database` in serve's config file
// (--config or MXGUARD_CONFIG) > <data-dir>/mxguard.sqlite, each shown by which of several SQLite files
// a command reads; a bad value is a usage error (exit 2) naming where it came from; a password never
// shows. The commands are the built ones (dist/cli/main.js, as `npm test` builds it).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { describeSettings, loadServeSettings } from '../../src/server/config.js';
import { runCli } from '../helpers/cli.js';
import { httpRequest, startServe } from '../helpers/serve-process.js';
import { type LabPostgres, startPostgres } from '../lab/postgres.js';

const root = mkdtempSync(join(tmpdir(), 'mxguard-cli-database-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** No database from the test runner's own environment. */
const CLEAN = { MXGUARD_DATABASE_URL: '', MXGUARD_CONFIG: '' };
const PASSWORD = 'pw-s3cret-42';

function cli(args: string[], env: NodeJS.ProcessEnv = {}, cwd = root) {
  return runCli(args, { env: { ...CLEAN, ...env }, cwd });
}

function domainsIn(args: string[], env: NodeJS.ProcessEnv = {}): string[] {
  const r = cli(['domain', 'list', '--json', ...args], env);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { domains: Array<{ name: string }> }).domains.map((d) => d.name);
}

describe('which database a command opens', () => {
  const option = join(root, 'option.sqlite');
  const variable = join(root, 'variable.sqlite');
  const configDir = join(root, 'etc');
  const configFile = join(configDir, 'serve.json');
  // Relative in the file: relative to the file's folder, as serve reads it.
  const fromConfig = join(configDir, 'db', 'config.sqlite');

  before(() => {
    mkdirSync(configDir);
    writeFileSync(configFile, JSON.stringify({ database: 'db/config.sqlite', listen: '127.0.0.1:0' }));
    for (const [file, name] of [
      [option, 'option.test'],
      [variable, 'variable.test'],
      [fromConfig, 'config.test'],
    ]) {
      const add = cli(['domain', 'add', name!, '--mx', `mx.${name}`, '--database', file!]);
      assert.equal(add.code, 0, add.stderr);
    }
  });

  it('domain add --database creates that SQLite file, not one in the data directory', () => {
    assert.equal(existsSync(option), true);
    assert.equal(existsSync(join(root, 'data')), false);
  });

  it('--database wins over MXGUARD_DATABASE_URL and the config file', () => {
    const env = { MXGUARD_DATABASE_URL: variable, MXGUARD_CONFIG: configFile };
    assert.deepEqual(domainsIn(['--database', option], env), ['option.test']);
  });

  it('MXGUARD_DATABASE_URL wins over the config file', () => {
    const env = { MXGUARD_DATABASE_URL: variable, MXGUARD_CONFIG: configFile };
    assert.deepEqual(domainsIn([], env), ['variable.test']);
  });

  it("serve's config file (MXGUARD_CONFIG) names the database when nothing else does", () => {
    assert.deepEqual(domainsIn([], { MXGUARD_CONFIG: configFile }), ['config.test']);
  });

  it('domain set --config reads the database from that file too', () => {
    const r = cli(['domain', 'set', 'config.test', '--mode', 'testing', '--config', configFile, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(domainsIn(['--database', fromConfig]), ['config.test']);
  });

  it('with none of them, the data directory (here: none, so refused)', () => {
    const r = cli(['domain', 'list']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no mxguard database here \(mxguard\.sqlite\)/);
  });

  it('a printed next step names the same store: --database when given, nothing when the variable chose it', () => {
    const add = cli(['domain', 'add', 'watched.test', '--watch-only', '--database', option]);
    assert.equal(add.code, 0, add.stderr);
    assert.match(
      add.stdout,
      new RegExp(`domain check watched\\.test --database ${option.replace(/[.]/g, '\\.')}\n`),
    );
    const env = { MXGUARD_DATABASE_URL: variable };
    const viaEnv = cli(['domain', 'add', 'watched.test', '--watch-only'], env);
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.match(viaEnv.stdout, /domain check watched\.test\n/);
    assert.deepEqual(domainsIn(['--database', option]), ['option.test', 'watched.test']);
  });

  it('reports and admin take --database as well', () => {
    const list = cli(['reports', 'list', '--json', '--database', option]);
    assert.equal(list.code, 0, list.stderr);
    const unlock = cli(['admin', 'unlock', '--database', variable]);
    assert.equal(unlock.code, 0, unlock.stderr);
  });
});

describe('a bad database is a usage error naming its source, never the password', () => {
  const configFile = join(root, 'bad-serve.json');
  before(() => writeFileSync(configFile, JSON.stringify({ database: `mysql://u:${PASSWORD}@db/x` })));

  const cases: Array<{ what: string; args: string[]; env: NodeJS.ProcessEnv; message: RegExp }> = [
    {
      what: '--database with another scheme',
      args: ['--database', `mysql://u:${PASSWORD}@db/x`],
      env: {},
      message: /^mxguard: --database: "mysql:\/\/" is not a database this store opens/,
    },
    {
      what: 'MXGUARD_DATABASE_URL with an unknown sslmode',
      args: [],
      env: { MXGUARD_DATABASE_URL: `postgres://u:${PASSWORD}@db/x?sslmode=yes` },
      message: /^mxguard: MXGUARD_DATABASE_URL: postgres:\/\/u:\*\*\*@db\/x\?sslmode=yes: sslmode "yes"/,
    },
    {
      what: 'the config file',
      args: [],
      env: { MXGUARD_CONFIG: configFile },
      message: /^mxguard: .*bad-serve\.json: database: "mysql:\/\/"/,
    },
  ];
  for (const { what, args, env, message } of cases) {
    for (const command of [
      ['domain', 'list'],
      ['reports', 'list'],
      ['admin', 'unlock'],
    ]) {
      it(`${command.join(' ')}: ${what}`, () => {
        const r = cli([...command, ...args], env);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, message);
        assert.doesNotMatch(r.stderr + r.stdout, new RegExp(PASSWORD));
      });
    }
  }

  it('a PostgreSQL server that cannot be reached: exit 2, the URL named without its password', () => {
    const r = cli(['domain', 'list', '--database', `postgres://mxguard:${PASSWORD}@127.0.0.1:1/mxguard`]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /postgres:\/\/mxguard:\*\*\*@127\.0\.0\.1:1\/mxguard/);
    assert.doesNotMatch(r.stderr + r.stdout, new RegExp(PASSWORD));
  });
});

describe('serve --database', () => {
  const configFile = join(root, 'serve-db.json');
  const url = `postgres://mxguard:${PASSWORD}@db.example.net:5432/mxguard?sslmode=require`;
  before(() => writeFileSync(configFile, JSON.stringify({ database: 'from-config.sqlite' })));

  it('takes --database over MXGUARD_DATABASE_URL over the config file; a relative file is resolved', () => {
    const load = (cli: { database?: string; config?: string }, env: NodeJS.ProcessEnv = {}) =>
      loadServeSettings({ cli: { config: configFile, ...cli }, env, cwd: '/srv/app' }).database;
    assert.equal(load({}), join(root, 'from-config.sqlite'));
    assert.equal(load({}, { MXGUARD_DATABASE_URL: 'env.sqlite' }), '/srv/app/env.sqlite');
    assert.equal(load({ database: url }, { MXGUARD_DATABASE_URL: 'env.sqlite' }), url);
    assert.equal(loadServeSettings({ cli: {}, env: {}, cwd: '/srv/app' }).database, undefined);
  });

  it('shows the database in its settings with the password masked', () => {
    const settings = loadServeSettings({ cli: { database: url }, env: {}, cwd: '/srv/app' });
    const shown = JSON.stringify(describeSettings(settings));
    assert.doesNotMatch(shown, new RegExp(PASSWORD));
    assert.match(shown, /postgres:\/\/mxguard:\*\*\*@db\.example\.net:5432\/mxguard\?sslmode=require/);
  });

  it('refuses a bad --database before starting (exit 2), naming the option', () => {
    const r = cli(['serve', '--listen', '127.0.0.1:0', '--database', `mysql://u:${PASSWORD}@db/x`]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^mxguard: serve: --database: "mysql:\/\/" is not a database/);
    assert.doesNotMatch(r.stderr, new RegExp(PASSWORD));
  });

  it('opens the SQLite file it names and says so when it starts', async () => {
    const dataDir = join(root, 'serve-data');
    const file = join(root, 'serve-file', 'served.sqlite');
    const serve = await startServe(['--data-dir', dataDir, '--workers', '1'], {
      env: { ...CLEAN, MXGUARD_DATABASE_URL: file },
    });
    try {
      await serve.waitFor(/data in .*serve-data, database .*served\.sqlite;/, 'the data line');
      assert.equal(existsSync(file), true);
      assert.equal(existsSync(join(dataDir, 'mxguard.sqlite')), false);
    } finally {
      assert.equal(await serve.stop(), 0);
    }
  });
});

describe('--database postgres:// (the lab server)', () => {
  let lab: LabPostgres;
  before(async () => {
    lab = await startPostgres();
  });
  after(async () => {
    await lab?.stop();
  });

  it('domain add through PostgreSQL, then domain list, reports list and admin unlock there see that database', async () => {
    const url = await lab.createDatabase('cli_add');
    const add = cli(['domain', 'add', 'pg.test', '--mx', 'mx.pg.test', '--database', url]);
    assert.equal(add.code, 0, add.stderr);
    assert.deepEqual(domainsIn([], { MXGUARD_DATABASE_URL: url }), ['pg.test']);
    assert.equal(existsSync(join(root, 'data')), false, 'nothing in the data directory');
    for (const command of [
      ['reports', 'list'],
      ['admin', 'unlock'],
    ]) {
      const r = cli([...command, '--database', url]);
      assert.equal(r.code, 0, `${command.join(' ')}: ${r.stderr}`);
    }
  });

  it('a database without the mxguard tables is refused (exit 2), and no table is created there', async () => {
    const url = await lab.createDatabase('cli_empty');
    const r = cli(['domain', 'list', '--database', url]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /^mxguard: postgres:\/\/postgres@127\.0\.0\.1:\d+\/cli_empty: no mxguard database here \(no mxguard tables\); create one with `.+ serve --database postgres:/,
    );
    const again = cli(['domain', 'list', '--database', url]);
    assert.match(again.stderr, /no mxguard tables/, 'still none: the first refusal created nothing');
  });

  it('serve --workers 2 on PostgreSQL: every worker opens its own pool and hosts the policy stored by the CLI', async () => {
    const url = await lab.createDatabase('cli_serve');
    const add = cli(['domain', 'add', 'served.test', '--mx', 'mx.served.test', '--database', url]);
    assert.equal(add.code, 0, add.stderr);
    const serve = await startServe(['--data-dir', join(root, 'pg-serve-data'), '--workers', '2'], {
      env: { ...CLEAN, MXGUARD_DATABASE_URL: url },
    });
    try {
      await serve.waitFor(
        /, database postgres:\/\/postgres@127\.0\.0\.1:\d+\/cli_serve; 2 HTTP processes/,
        'the data line',
      );
      const answers = await Promise.all(
        Array.from({ length: 20 }, () =>
          httpRequest(serve.port, {
            path: '/.well-known/mta-sts.txt',
            headers: { host: 'mta-sts.served.test' },
          }),
        ),
      );
      for (const answer of answers) {
        assert.equal(answer.status, 200, answer.body);
        assert.match(answer.body, /^version: STSv1\r?\nmode: testing\r?\nmx: mx\.served\.test/);
      }
    } finally {
      assert.equal(await serve.stop(), 0);
    }
  });
});
