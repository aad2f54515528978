// A private redis-server (Debian package `redis-server`) for tests of the shared policy cache: 127.0.0.1 on
// an ephemeral port, no persistence (`--save '' --appendonly no`), its own working directory, running in the
// foreground as our child and stopped by its PID (LAB-NOTES: no systemd, loopback only).
//
//   const redis = await startRedis();
//   new RedisPolicyStore({ url: redis.url }); ...; await redis.stop();
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/ports.js';
import { Daemon, requireCommand } from './dnssec.js';

export { freePort };

export interface LabRedis {
  host: string;
  port: number;
  /** redis://127.0.0.1:PORT/0 */
  url: string;
  pid: number;
  /** The server's output so far, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';

export async function startRedis(): Promise<LabRedis> {
  const binary = requireCommand('redis-server', 'redis-server');
  const dir = mkdtempSync(join(tmpdir(), 'mxguard-redis-'));
  try {
    // The port is free when we look; another process may take it before redis binds: then try another.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const daemon = new Daemon('redis-server', binary, [
        '--port',
        String(port),
        '--bind',
        HOST,
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        '--daemonize',
        'no',
        '--protected-mode',
        'yes',
        '--loglevel',
        'notice',
      ]);
      try {
        await daemon.waitFor(/Ready to accept connections/);
      } catch (err) {
        await daemon.stop();
        if (attempt < 5 && /Address already in use/.test(daemon.log)) continue;
        throw err;
      }
      const pid = daemon.process.pid ?? 0;
      return {
        host: HOST,
        port,
        url: `redis://${HOST}:${port}/0`,
        pid,
        log: () => daemon.log,
        stop: async () => {
          await daemon.stop();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
