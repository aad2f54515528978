// A private PostgreSQL 15 server (Debian package `postgresql`) for the PostgreSQL store tests: a fresh
// cluster (initdb) in a temporary directory, `postgres` in the foreground as our child listening on
// 127.0.0.1 on a free port, its unix socket in the same directory, stopped by its PID (LAB-NOTES: no
// systemd, loopback only). initdb and postgres refuse to run as root: when the tests run as root, both
// run as the `postgres` user (uid/gid of the spawn), and the directory is handed to that user.
// Test-only settings: fsync=off and full_page_writes=off (a crash of the lab machine may lose the lab
// cluster, which is thrown away anyway); synchronous_commit stays on, as in production.
//
//   const pg = await startPostgres();
//   const url = await pg.createDatabase('contract');   // postgres://postgres@127.0.0.1:PORT/contract
//   ...; await pg.stop();
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { accessSync, chownSync, constants, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../helpers/ports.js';

export interface LabPostgres {
  host: string;
  port: number;
  pid: number;
  /** postgres://postgres@127.0.0.1:PORT/postgres (trust authentication on loopback). */
  adminUrl: string;
  /** Creates an empty database (a fresh name per test file or suite) and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** The server's output so far, for failure messages. */
  log(): string;
  /**
   * Stops the server (fast shutdown: sessions ended), runs `whileStopped` (an outage), then starts it
   * again on the same data and port.
   */
  restart(whileStopped?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const BIN = '/usr/lib/postgresql/15/bin';
const USER = 'postgres';

function requireBinary(name: string): string {
  const path = join(BIN, name);
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(
      `${path} is not installed: install the Debian package "postgresql" (apt-get install --no-install-recommends postgresql; .ci/run does)`,
    );
  }
  return path;
}

/** uid/gid to run the server as: the `postgres` user when we are root, else ourselves. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', USER], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

export async function startPostgres(): Promise<LabPostgres> {
  const initdb = requireBinary('initdb');
  const postgres = requireBinary('postgres');
  const as = runAs();
  const dir = mkdtempSync(join(tmpdir(), 'mxguard-postgres-'));
  try {
    const data = join(dir, 'data');
    mkdirSync(data, { mode: 0o700 });
    if (as) {
      chownSync(dir, as.uid, as.gid);
      chownSync(data, as.uid, as.gid);
    }
    const init = spawnSync(
      initdb,
      ['-D', data, '--auth=trust', '-U', USER, '--encoding=UTF8', '--locale=C', '--no-sync'],
      { ...as, encoding: 'utf8', cwd: dir },
    );
    if (init.status !== 0) throw new Error(`initdb failed (${init.status}):\n${init.stdout}${init.stderr}`);

    // The port is free when we look; another process may take it before postgres binds: then try another.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const launch = () =>
        spawn(
          postgres,
          [
            '-D',
            data,
            '-h',
            HOST,
            '-p',
            String(port),
            '-k',
            dir,
            '-c',
            'fsync=off',
            '-c',
            'full_page_writes=off',
            '-c',
            'max_connections=200',
          ],
          { ...as, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
        );
      let child = launch();
      let server = watch(child);
      try {
        await server.waitFor(/database system is ready to accept connections/);
      } catch (err) {
        await server.stop();
        if (attempt < 5 && /Address already in use|could not bind/.test(server.log())) continue;
        throw err;
      }
      const adminUrl = `postgres://${USER}@${HOST}:${port}/postgres`;
      return {
        host: HOST,
        port,
        get pid() {
          return child.pid ?? 0;
        },
        adminUrl,
        log: () => server.log(),
        createDatabase: async (name) => {
          if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name))
            throw new Error(`database name "${name}": use [a-z0-9_]`);
          const client = new pg.Client({ connectionString: adminUrl });
          await client.connect();
          try {
            await client.query(`CREATE DATABASE ${name}`);
          } finally {
            await client.end();
          }
          return `postgres://${USER}@${HOST}:${port}/${name}`;
        },
        restart: async (whileStopped) => {
          await server.stop();
          try {
            await whileStopped?.();
          } finally {
            child = launch();
            server = watch(child);
            await server.waitFor(/database system is ready to accept connections/);
          }
        },
        stop: async () => {
          await server.stop();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Output collection, readiness and stop-by-PID of the server process. */
function watch(child: ChildProcess) {
  let output = '';
  let exited = false;
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-64 * 1024);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const done = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
    child.once('error', (err) => {
      output += `\npostgres: ${err.message}`;
      exited = true;
      resolve();
    });
  });
  return {
    log: () => output,
    async waitFor(ready: RegExp, timeoutMs = 30_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (ready.test(output)) return;
        if (exited) throw new Error(`postgres exited during start-up (code ${child.exitCode}):\n${output}`);
        if (Date.now() > deadline)
          throw new Error(`postgres was not ready after ${timeoutMs} ms:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    /** SIGINT = "fast shutdown" (ends open sessions); SIGKILL after 10 s. */
    async stop(): Promise<void> {
      if (exited || child.pid === undefined) return;
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await done;
      clearTimeout(timer);
    },
  };
}
