// `mxguard serve` as a child process for end-to-end tests (the built dist/cli/main.js, as `npm test`
// builds it): start it on a free loopback port, read what it prints, send it HTTP requests from a
// chosen loopback source address (every 127.0.0.0/8 address is a different client), stop it by PID.
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import { eventually } from '../fixtures/serve/helpers.js';
import { BIN } from './cli.js';

export interface ServeProcess {
  child: ChildProcess;
  /** The plain HTTP port. */
  port: number;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, then the exit code (SIGKILL when it has not exited after 20 s). */
  stop(): Promise<number | null>;
}

/** Starts `mxguard serve ARGS --listen 127.0.0.1:0` and waits until it listens. */
export async function startServe(
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<ServeProcess> {
  const child = spawn(process.execPath, [BIN, 'serve', '--listen', '127.0.0.1:0', ...args], {
    cwd: options.cwd,
    env: { ...process.env, MXGUARD_ADMIN_PASSWORD: '', MXGUARD_CONFIG: '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let exited = false;
  void exit.then(() => {
    exited = true;
  });
  const listening = await eventually(
    () => {
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(err);
      if (match) return Number(match[1]);
      if (exited) throw new Error(`serve exited before listening:\n${err}\n${out}`);
      return undefined;
    },
    'serve to listen',
    90_000,
  );
  return {
    child,
    port: listening,
    stdout: () => out,
    stderr: () => err,
    async stop() {
      if (!exited) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exit;
      clearTimeout(timer);
      return code;
    },
  };
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP request on a fresh connection; `json` is sent as application/json. */
export function httpRequest(
  port: number,
  options: {
    method?: string;
    path: string;
    headers?: Record<string, string>;
    json?: unknown;
    /** Source address of the connection (any 127.0.0.0/8 address works on Linux). */
    from?: string;
  },
): Promise<HttpAnswer> {
  const body = options.json === undefined ? undefined : Buffer.from(JSON.stringify(options.json));
  const headers: Record<string, string> = { ...options.headers };
  if (body) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(body.length);
  }
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path,
        headers,
        localAddress: options.from,
        agent: false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
