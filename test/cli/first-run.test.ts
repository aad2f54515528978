// A new user's first run: the next step `mxguard serve` prints on an empty data directory is a
// command that works where the user is: run through `npm start` in the clone (npx), a global
// install on PATH (plain `mxguard`), or `node dist/cli/main.js`; with `--data-dir` when the store
// is not the `./data` of the user's folder. Each printed command is run, as printed, from there.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { eventually } from '../fixtures/serve/helpers.js';
import { BIN } from '../helpers/cli.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const HINT = /no domains yet: (.+) (domain add example\.com --mx mx\.example\.com(?: --data-dir .+)?)\n/;

/** What serve printed: how to run mxguard, and the `domain add …` to run with it. */
interface Hint {
  mxguard: string;
  add: string;
}

/**
 * npm's cache for this run only: `npx mxguard` links the clone into the cache's _npx folder once per path and
 * makes the bin executable only then, so an entry left by an earlier clone at the same path (a rerun on the same
 * machine) would point at a fresh, non-executable dist/cli/main.js.
 */
const NPM_CACHE = mkdtempSync(join(tmpdir(), 'mxguard-first-run-npm-cache-'));
after(() => rmSync(NPM_CACHE, { recursive: true, force: true }));

/** This environment without what npm adds (a test may itself run under `npm test`), npm kept offline. */
function plainEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(npm_|INIT_CWD$)/i.test(k)) env[k] = v;
  return {
    ...env,
    MXGUARD_ADMIN_PASSWORD: '',
    MXGUARD_CONFIG: '',
    NO_COLOR: '1',
    npm_config_offline: 'true',
    npm_config_cache: NPM_CACHE,
    npm_config_update_notifier: 'false',
    // `npx mxguard` in a clone links the clone into npx's cache, and npm runs the linked package's
    // `prepare` (our build) on it: a tsc rewriting dist/ while the other test files run from it.
    // Scripts named on the command line (`npm start`) still run.
    npm_config_ignore_scripts: 'true',
    ...extra,
  };
}

/** Starts `command args` in `cwd`, waits for serve's "no domains yet" hint, stops it. */
async function hintOf(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Hint> {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let err = '';
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let exited = false;
  void exit.then(() => {
    exited = true;
  });
  try {
    const match = await eventually(
      () => {
        const m = HINT.exec(err);
        if (m) return m;
        if (exited) throw new Error(`${command} exited before the hint:\n${err}`);
        return undefined;
      },
      `the "no domains yet" hint; stderr so far:\n${err}`,
      90_000,
    );
    return { mxguard: match[1] as string, add: match[2] as string };
  } finally {
    // npm start runs serve under a shell: signal the whole process group it leads.
    if (!exited) process.kill(-(child.pid as number), 'SIGTERM');
    await exit;
  }
}

/** Runs a command line through the shell in `cwd`, as the user would paste it. */
function shell(line: string, cwd: string, env: NodeJS.ProcessEnv) {
  const r = spawnSync('/bin/sh', ['-c', line], { cwd, env, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The printed `domain add` runs as printed from `cwd`; `domain list` there then finds the domain. */
function assertHintWorks(hint: Hint, cwd: string, env: NodeJS.ProcessEnv, listFrom = cwd): void {
  const add = shell(`${hint.mxguard} ${hint.add}`, cwd, env);
  assert.equal(add.code, 0, `${hint.mxguard} ${hint.add}: ${add.stderr}`);
  const dataDir = / --data-dir .+$/.exec(hint.add)?.[0] ?? '';
  const list = shell(`${hint.mxguard} domain list --json${dataDir}`, listFrom, env);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(
    (JSON.parse(list.stdout) as { domains: { name: string }[] }).domains.map((d) => d.name),
    ['example.com'],
  );
}

describe('first run: the next step serve prints works where the user is', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mxguard-first-run-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const serveArgs = ['--listen', '127.0.0.1:0', '--workers', '1'];

  it('npm start in the clone prints `npx mxguard … --data-dir DIR`, which runs from the clone and below', async () => {
    const dataDir = join(dir, 'npm-start');
    const env = plainEnv();
    const hint = await hintOf('npm', ['start', '--', ...serveArgs, '--data-dir', dataDir], REPO, env);
    assert.equal(hint.mxguard, 'npx mxguard');
    assert.equal(hint.add, `domain add example.com --mx mx.example.com --data-dir ${dataDir}`);
    assertHintWorks(hint, REPO, env, join(REPO, 'src'));
  });

  it('npm start from a folder of the clone with a relative --data-dir prints the store it uses', async () => {
    // npm runs the script in the clone's root: the relative path is from there, not from src/
    const dataDir = join(dir, 'npm-start-src');
    const env = plainEnv();
    const args = ['start', '--', ...serveArgs, '--data-dir', relative(REPO, dataDir)];
    const hint = await hintOf('npm', args, join(REPO, 'src'), env);
    assert.equal(hint.mxguard, 'npx mxguard');
    assert.equal(hint.add, `domain add example.com --mx mx.example.com --data-dir ${dataDir}`);
    assertHintWorks(hint, join(REPO, 'src'), env);
  });

  it('npm --prefix CLONE start from outside the clone prints `node /path/main.js`, which runs there', async () => {
    const cwd = mkdtempSync(join(dir, 'cwd-'));
    const env = plainEnv();
    const dataDir = join(dir, 'prefix');
    const args = ['--prefix', REPO, 'start', '--', ...serveArgs, '--data-dir', relative(REPO, dataDir)];
    const hint = await hintOf('npm', args, cwd, env);
    assert.equal(hint.mxguard, `node ${BIN}`);
    assert.equal(hint.add, `domain add example.com --mx mx.example.com --data-dir ${dataDir}`);
    assertHintWorks(hint, cwd, env);
  });

  it('node dist/cli/main.js in the clone prints that command, and it runs', async () => {
    const dataDir = join(dir, 'node');
    const env = plainEnv();
    const args = [join('dist', 'cli', 'main.js'), 'serve', ...serveArgs, '--data-dir', dataDir];
    const hint = await hintOf(process.execPath, args, REPO, env);
    assert.equal(hint.mxguard, 'node dist/cli/main.js');
    assert.equal(hint.add, `domain add example.com --mx mx.example.com --data-dir ${dataDir}`);
    assertHintWorks(hint, REPO, env);
  });

  it('node with the path from another folder prints the absolute path; ./data there needs no --data-dir', async () => {
    const cwd = mkdtempSync(join(dir, 'cwd-'));
    const env = plainEnv();
    const hint = await hintOf(process.execPath, [BIN, 'serve', ...serveArgs], cwd, env);
    assert.equal(hint.mxguard, `node ${BIN}`);
    assert.equal(hint.add, 'domain add example.com --mx mx.example.com');
    assertHintWorks(hint, cwd, env);
  });

  it('a global install (a bin link on PATH) prints the plain `mxguard`, and it runs', async () => {
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    // what `npm install -g` makes: a link on PATH to the bin, which npm marks executable
    symlinkSync(BIN, join(bin, 'mxguard'));
    chmodSync(BIN, 0o755);
    const cwd = mkdtempSync(join(dir, 'cwd-'));
    const env = plainEnv({
      PATH: `${bin}${delimiter}${dirname(process.execPath)}${delimiter}${process.env.PATH}`,
    });
    const hint = await hintOf('mxguard', ['serve', ...serveArgs], cwd, env);
    assert.equal(hint.mxguard, 'mxguard');
    assertHintWorks(hint, cwd, env);
  });

  it('an unknown domain points to a `domain list` that runs', () => {
    const dataDir = join(dir, 'unknown');
    const env = plainEnv();
    const node = `node ${join('dist', 'cli', 'main.js')}`;
    const add = shell(`${node} domain add example.com --mx mx.example.com --data-dir ${dataDir}`, REPO, env);
    assert.equal(add.code, 0, add.stderr);
    const unknown = shell(`${node} domain show nosuch.example --data-dir ${dataDir}`, REPO, env);
    assert.equal(unknown.code, 2, unknown.stderr);
    const [, see] = /\(see `(.+)`\)/.exec(unknown.stderr) ?? [];
    assert.equal(see, `${node} domain list`);
    const list = shell(`${see} --data-dir ${dataDir}`, REPO, env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /example\.com/);
  });
});
