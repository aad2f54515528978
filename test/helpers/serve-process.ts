// `mxguard serve` as a child process for end-to-end tests and benchmarks (the built dist/cli/main.js,
// as `npm test` builds it, or another build): start it, read what it prints, wait for a line, send
// it HTTP requests from a chosen loopback source address (every 127.0.0.0/8 address is a different
// client), stop it by PID.
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import { eventually } from '../fixtures/serve/helpers.js';
import { BIN } from './cli.js';

export interface ServeProcess {
  child: ChildProcess;
  /** Its exit code once it has exited (null after a signal). */
  exit: Promise<number | null>;
  stdout(): string;
  stderr(): string;
  /** Waits (up to 90 s) until stderr matches `pattern`; throws when serve exits first. */
  waitFor(pattern: RegExp, what: string): Promise<RegExpMatchArray>;
  /** SIGTERM, then the exit code (SIGKILL when it has not exited after 20 s). */
  stop(): Promise<number | null>;
}

/** A serve that listens: `port` is its plain HTTP port. */
export interface ListeningServe extends ServeProcess {
  port: number;
}

export interface ServeProcessOptions {
  /** Working directory (default: this process's). */
  cwd?: string;
  /** Added to the environment, after MXGUARD_ADMIN_PASSWORD, MXGUARD_CONFIG and MXGUARD_DATABASE_URL are emptied. */
  env?: NodeJS.ProcessEnv;
  /** The command to run (default: this checkout's dist/cli/main.js). */
  bin?: string;
  /** Node options before the command (e.g. --cpu-prof, which NODE_OPTIONS does not take). */
  nodeArgs?: string[];
}

/** Starts `mxguard serve ARGS`, with nothing added, and returns at once. */
export function spawnServe(args: string[], options: ServeProcessOptions = {}): ServeProcess {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), options.bin ?? BIN, 'serve', ...args], {
    cwd: options.cwd,
    env: {
      ...process.env,
      MXGUARD_ADMIN_PASSWORD: '',
      MXGUARD_CONFIG: '',
      MXGUARD_DATABASE_URL: '',
      ...options.env,
    },
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
  return {
    child,
    exit,
    stdout: () => out,
    stderr: () => err,
    waitFor: (pattern, what) =>
      eventually(
        () => {
          const match = pattern.exec(err);
          if (match) return match;
          if (exited) throw new Error(`serve exited before ${what}:\n${err}\n${out}`);
          return undefined;
        },
        `${what}; stderr so far:\n${err}`,
        90_000,
      ),
    async stop() {
      if (!exited) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exit;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Starts `mxguard serve --listen 127.0.0.1:0 ARGS` and waits until it listens. */
export async function startServe(args: string[], options: ServeProcessOptions = {}): Promise<ListeningServe> {
  const serve = spawnServe(['--listen', '127.0.0.1:0', ...args], options);
  const [, port] = await serve.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/, 'serve to listen');
  return { ...serve, port: Number(port) };
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
