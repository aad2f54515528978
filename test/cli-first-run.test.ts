// A new user's first run: the next step `mxguard serve` prints on an empty data directory is a
// command that works where the user is: run through `npm start` in the clone (npx), a global
// install on PATH (plain `mxguard`), or `node dist/cli/main.js`. Each printed command is run.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { eventually } from './fixtures/serve/helpers.js';
import { BIN } from './helpers/cli.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const HINT = /no domains yet: (.+) domain add example\.com --mx mx\.example\.com\n/;

/** This environment without what npm adds (a test may itself run under `npm test`), npm kept offline. */
function plainEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return {
    ...env,
    MXGUARD_ADMIN_PASSWORD: '',
    MXGUARD_CONFIG: '',
    NO_COLOR: '1',
    npm_config_offline: 'true',
    npm_config_update_notifier: 'false',
    ...extra,
  };
}

/** Starts `command args` in `cwd`, waits for serve's "no domains yet" hint, stops it; returns the command prefix it printed. */
async function hintOf(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
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
    return match[1] as string;
  } finally {
    // npm start runs serve under a shell: signal the whole process group it leads.
    if (!exited) process.kill(-(child.pid as number), 'SIGTERM');
    await exit;
  }
}

/** Runs `PREFIX domain ARGS --data-dir DIR` through the shell in `cwd`, as the user would paste it. */
function runHinted(prefix: string, args: string, dataDir: string, cwd: string, env: NodeJS.ProcessEnv) {
  const r = spawnSync('/bin/sh', ['-c', `${prefix} ${args} --data-dir '${dataDir}'`], {
    cwd,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('first run: the next step serve prints works where the user is', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mxguard-first-run-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** The printed `domain add` succeeds, and the domain is then stored. */
  function assertHintWorks(prefix: string, dataDir: string, cwd: string, env: NodeJS.ProcessEnv): void {
    const add = runHinted(prefix, 'domain add example.com --mx mx.example.com', dataDir, cwd, env);
    assert.equal(add.code, 0, `${prefix} domain add: ${add.stderr}`);
    const list = runHinted(prefix, 'domain list --json', dataDir, cwd, env);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      (JSON.parse(list.stdout) as { domains: { name: string }[] }).domains.map((d) => d.name),
      ['example.com'],
    );
  }

  it('npm start in the clone prints `npx mxguard`, and that command runs from the clone', async () => {
    const dataDir = join(dir, 'npm-start');
    const env = plainEnv();
    const args = ['start', '--', '--listen', '127.0.0.1:0', '--workers', '1', '--data-dir', dataDir];
    const prefix = await hintOf('npm', args, REPO, env);
    assert.equal(prefix, 'npx mxguard');
    assertHintWorks(prefix, dataDir, REPO, env);
    // and from a folder inside the clone, where a user may well be
    assertHintWorks(prefix, join(dir, 'npm-start-src'), join(REPO, 'src'), env);
  });

  it('node dist/cli/main.js in the clone prints that command, and it runs', async () => {
    const dataDir = join(dir, 'node');
    const env = plainEnv();
    const args = [join('dist', 'cli', 'main.js'), 'serve', '--listen', '127.0.0.1:0', '--workers', '1'];
    const prefix = await hintOf(process.execPath, [...args, '--data-dir', dataDir], REPO, env);
    assert.equal(prefix, 'node dist/cli/main.js');
    assertHintWorks(prefix, dataDir, REPO, env);
  });

  it('node with the path from another folder prints the absolute path, and it runs there', async () => {
    const dataDir = join(dir, 'elsewhere');
    const cwd = mkdtempSync(join(dir, 'cwd-'));
    const env = plainEnv();
    const args = [BIN, 'serve', '--listen', '127.0.0.1:0', '--workers', '1', '--data-dir', dataDir];
    const prefix = await hintOf(process.execPath, args, cwd, env);
    assert.equal(prefix, `node ${BIN}`);
    assertHintWorks(prefix, dataDir, cwd, env);
  });

  it('a global install (a bin link on PATH) prints the plain `mxguard`, and it runs', async () => {
    const dataDir = join(dir, 'global');
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    // what `npm install -g` makes: a link on PATH to the bin, which npm marks executable
    symlinkSync(BIN, join(bin, 'mxguard'));
    chmodSync(BIN, 0o755);
    const cwd = mkdtempSync(join(dir, 'cwd-'));
    const env = plainEnv({
      PATH: `${bin}${delimiter}${dirname(process.execPath)}${delimiter}${process.env.PATH}`,
    });
    const args = ['serve', '--listen', '127.0.0.1:0', '--workers', '1', '--data-dir', dataDir];
    const prefix = await hintOf('mxguard', args, cwd, env);
    assert.equal(prefix, 'mxguard');
    assertHintWorks(prefix, dataDir, cwd, env);
  });

  it('an unknown domain points to a `domain list` that runs', () => {
    const dataDir = join(dir, 'unknown');
    const env = plainEnv();
    const node = `node ${join('dist', 'cli', 'main.js')}`;
    assert.equal(runHinted(node, 'domain add example.com --mx mx.example.com', dataDir, REPO, env).code, 0);
    const unknown = runHinted(node, 'domain show nosuch.example', dataDir, REPO, env);
    assert.equal(unknown.code, 2, unknown.stderr);
    const [, see] = /\(see `(.+)`\)/.exec(unknown.stderr) ?? [];
    assert.equal(see, `${node} domain list`);
    const list = runHinted(see as string, '', dataDir, REPO, env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /example\.com/);
  });
});
