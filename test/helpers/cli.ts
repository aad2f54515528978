// Runs the built command (dist/cli/main.js, as `npm test` builds it) the way users and scripts do.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Never the store of the person running the tests: the database variable and serve's config file
 * (which names a database the store commands read) are emptied; a test sets them when it wants them.
 */
const NO_STORE_FROM_ENV = { MXGUARD_DATABASE_URL: '', MXGUARD_CONFIG: '' };

export function runCli(
  args: string[],
  options: { input?: string | Buffer; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    input: options.input,
    cwd: options.cwd,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ...NO_STORE_FROM_ENV, NO_COLOR: '1', ...options.env },
  });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Like runCli, without blocking the event loop: for tests whose lab servers live in the test's own process. */
export function runCliAsync(args: string[], options: { input?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...NO_STORE_FROM_ENV, NO_COLOR: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}
