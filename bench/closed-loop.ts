// Builds and drives bench/closed-loop.c, the benchmark's native socketmap load generator (see its header).
//
//   const binary = buildClosedLoop(dir);
//   const loop = await NativeClosedLoop.start(binary, endpoint, 50, queries, dir);
//   loop.go(); await sleep(10_000); const result = await loop.stop();
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Endpoint } from '../test/helpers/netstring-client.js';

const SOURCE = fileURLToPath(new URL('./closed-loop.c', import.meta.url));

export interface ClosedLoopQuery {
  /** Request payload, "NAME KEY". */
  request: string;
  /** The reply payload expected for it. */
  expected: string;
}

export interface ClosedLoopResult {
  /** Replies between go() and stop(). */
  completed: number;
  /** Of those, replies other than the expected one. */
  mismatches: number;
  /** Time between go and stop as the client measured it. */
  seconds: number;
  p50Ns: number;
  p99Ns: number;
  /** Set when the run ended early: the server hung up, a reply was malformed... */
  error: string | null;
}

/** Compile the client into `dir` (gcc, -O2); returns the binary's path. */
export function buildClosedLoop(dir: string): string {
  const binary = join(dir, 'closed-loop');
  execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', binary, SOURCE], { stdio: 'pipe' });
  return binary;
}

export class NativeClosedLoop {
  private output = '';
  private stderr = '';
  private readonly exited: Promise<number | null>;
  private ended = false;

  private constructor(private readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      this.output += text;
    });
    child.stderr!.setEncoding('utf8').on('data', (text: string) => {
      this.stderr += text;
    });
    this.exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        this.ended = true;
        resolve(code);
      }),
    );
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /**
   * Start the client with `connections` connections open (resolves once they all are). `dir` holds the
   * requests file until then; `latenciesFile`, when given, gets every latency (little-endian uint64 ns) at stop().
   */
  static async start(
    binary: string,
    endpoint: Endpoint,
    connections: number,
    queries: ClosedLoopQuery[],
    dir: string,
    latenciesFile?: string,
  ): Promise<NativeClosedLoop> {
    for (const q of queries) {
      if (/[\t\n]/.test(q.request + q.expected))
        throw new Error('closed-loop: a query contains a tab or newline');
    }
    const requests = join(dir, `closed-loop-${process.pid}-${Date.now()}.txt`);
    writeFileSync(requests, queries.map((q) => `${q.request}\t${q.expected}\n`).join(''));
    const target =
      'path' in endpoint ? ['--unix', endpoint.path] : ['--tcp', `${endpoint.host}:${endpoint.port}`];
    const args = [...target, '--connections', String(connections), '--requests', requests];
    if (latenciesFile) args.push('--latencies', latenciesFile);
    const loop = new NativeClosedLoop(spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'] }));
    try {
      await loop.waitForOutput(/^ready\n/);
    } finally {
      rmSync(requests, { force: true }); // read before "ready"
    }
    loop.output = loop.output.replace(/^ready\n/, '');
    return loop;
  }

  go(): void {
    this.child.stdin!.write('go\n');
  }

  /** End the loops; resolves with the client's counts once it has exited. */
  async stop(): Promise<ClosedLoopResult> {
    this.child.stdin!.end('stop\n');
    const code = await this.exited;
    const line = this.output.trim();
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new Error(`closed-loop exited (${code}) without a result: ${this.stderr.trim() || line}`);
    }
    return {
      completed: Number(parsed.completed),
      mismatches: Number(parsed.mismatches),
      seconds: Number(parsed.seconds),
      p50Ns: Number(parsed.p50_ns),
      p99Ns: Number(parsed.p99_ns),
      error: typeof parsed.error === 'string' ? parsed.error : null,
    };
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }

  private async waitForOutput(pattern: RegExp): Promise<void> {
    while (!pattern.test(this.output)) {
      if (this.ended) {
        const code = await this.exited;
        throw new Error(`closed-loop exited (${code}) before it was ready: ${this.stderr.trim()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}
