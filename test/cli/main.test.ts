// The `mxguard` program itself (src/cli/main.ts), through the built binary: the command list, help,
// typos, loading only the command that runs, and a reader that goes away (`mxguard ... | head`).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { BIN, runCli } from '../helpers/cli.js';

const COMMANDS = [
  'admin',
  'check',
  'domain',
  'fetchers',
  'policy',
  'policyd',
  'publish',
  'records',
  'reports',
  'serve',
  'store',
  'tlsa',
  'worker',
];

/** The npm packages a run of `mxguard ARGS` imports, seen by a module resolve hook. */
function packagesLoaded(args: string[]): Set<string> {
  const hook = `export async function resolve(specifier, context, next) {
    const result = await next(specifier, context);
    const name = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(result.url);
    if (name) process.stderr.write('LOADED ' + name[1] + '\\n');
    return result;
  }`;
  const register = `import { register } from 'node:module';
    register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));`;
  const r = spawnSync(
    process.execPath,
    ['--import', `data:text/javascript,${encodeURIComponent(register)}`, BIN, ...args],
    { encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  return new Set([...r.stderr.matchAll(/^LOADED (\S+)$/gm)].map((m) => m[1]!));
}

describe('mxguard', () => {
  it('--help lists every command', () => {
    const r = runCli(['--help']);
    assert.equal(r.code, 0, r.stderr);
    const listed = [...r.stdout.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1]);
    assert.deepEqual(listed, [...COMMANDS.slice(0, 4), 'help', ...COMMANDS.slice(4)]);
  });

  it('`help COMMAND` and `COMMAND --help` show that command', () => {
    for (const args of [
      ['help', 'policyd'],
      ['policyd', '--help'],
    ]) {
      const r = runCli(args);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Usage: mxguard policyd /);
    }
  });

  it('a mistyped command exits 2 with a suggestion', () => {
    const r = runCli(['chek', 'example.com']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command 'chek'/);
    assert.match(r.stderr, /Did you mean check\?/);
  });

  it('loads only the command that runs: policyd does not carry serve’s libraries', () => {
    const policyd = packagesLoaded(['policyd', '--help']);
    const serve = packagesLoaded(['serve', '--help']);
    assert.ok(serve.has('fastify'), `serve loaded ${[...serve].join(', ')}`);
    assert.ok(!policyd.has('fastify'), `policyd loaded ${[...policyd].join(', ')}`);
    assert.ok(policyd.has('commander'));
  });

  it('stops quietly, exit 0, when the reader of its output is gone', async () => {
    const child = spawn(process.execPath, [BIN, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (data) => {
      stderr += data;
    });
    const code = await new Promise((resolve) => child.on('close', resolve));
    assert.equal(stderr, '');
    assert.equal(code, 0);
  });
});
