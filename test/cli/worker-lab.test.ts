// `mxguard worker` at survey scale (issue 16), through the built command: 2,000 lab domains (the survey lab of
// test/cli/check-survey.test.ts: one lab DNS server, MX hosts shared between the domains, a lab SMTP server with
// STARTTLS) enqueued with `check --enqueue` on one lab PostgreSQL (test/lab/postgres.ts), three `worker`
// processes checking them, one killed with kill -9 in the middle of its work. Every domain must end with
// exactly one result (read back with `check --results`, in list order), the killed worker's domains finished
// by the others once its lease ran out, and the lab DNS server asked about every domain, more than once only
// for a domain the killed worker held.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { BIN, runCliAsync } from '../helpers/cli.js';
import { type SurveyLab, startSurveyLab } from '../helpers/survey-lab.js';
import type { LabRecord } from '../lab/dns-server.js';
import { type LabPostgres, startPostgres } from '../lab/postgres.js';

const DOMAINS = 2000;
const MX_HOSTS = 5;
const LEASE_SECONDS = 5;
const domainOf = (i: number) => `w${i}.survey.test`;
const mxOf = (i: number) => `mx${i % MX_HOSTS}.shared.test`;

let lab: SurveyLab;
let postgres: LabPostgres;
let dir: string;
let url: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mxguard-worker-'));
  const records: LabRecord[] = [];
  for (let k = 0; k < MX_HOSTS; k++)
    records.push({ name: `mx${k}.shared.test`, type: 'A', data: '127.0.0.1' });
  for (let i = 0; i < DOMAINS; i++)
    records.push({ name: domainOf(i), type: 'MX', data: { preference: 10, exchange: mxOf(i) } });
  lab = await startSurveyLab('mx0.shared.test', [{ origin: 'test', records }]);
  postgres = await startPostgres();
  url = await postgres.createDatabase('survey');
});

after(async () => {
  await Promise.all([lab?.stop(), postgres?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The options of the check run, as a survey would give them to `check --file` and to every worker. */
const checkOptions = () => lab.checkOptions(5);

interface Worker {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>;
}

function startWorker(database = url, batch = 'lab'): Worker {
  const child = spawn(
    process.execPath,
    [
      BIN,
      'worker',
      '--database',
      database,
      '--batch',
      batch,
      '--lease',
      String(LEASE_SECONDS),
      '--concurrency',
      '16',
      '--json',
      ...checkOptions(),
    ],
    { env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => {
    stdout += d;
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>(
    (resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout })),
  );
  return { child, stderr: () => stderr, exited };
}

/** `check --enqueue` of the domains into the batch on the lab database: its --json answer. */
async function enqueue(batch: string, domains: string[]): Promise<unknown> {
  const list = join(dir, `${batch}.txt`);
  writeFileSync(list, `${domains.join('\n')}\n`);
  const r = await runCliAsync([
    'check',
    '--file',
    list,
    '--enqueue',
    '--batch',
    batch,
    '--database',
    url,
    '--json',
  ]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

interface ResultLine {
  domain: string;
  status: string;
  findings: Array<{ section: string }>;
}

/** The batch's results by `check --results`, which must say nothing is left unchecked. */
async function results(batch: string): Promise<ResultLine[]> {
  const r = await runCliAsync(['check', '--results', '--batch', batch, '--database', url]);
  assert.ok([0, 1].includes(r.code), r.stderr);
  assert.equal(r.stderr, '', 'nothing left unchecked');
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as ResultLine);
}

async function sql<R extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(text, params)).rows;
  } finally {
    await client.end();
  }
}

/** Jobs the worker with this process id holds now (its holder name is host/pid/random). */
async function heldBy(pid: number): Promise<Array<{ id: string; domain: string }>> {
  return sql(`SELECT id, domain FROM check_jobs WHERE state = 'claimed' AND holder LIKE $1 ORDER BY id`, [
    `%/${pid}/%`,
  ]);
}

describe('mxguard worker: three workers, one killed, 2,000 lab domains', () => {
  it('checks every domain exactly once and loses none when a worker dies mid-run', async () => {
    const domains = Array.from({ length: DOMAINS }, (_, i) => domainOf(i));
    assert.deepEqual(await enqueue('lab', domains), {
      batch: 'lab',
      listed: DOMAINS,
      added: DOMAINS,
      alreadyInBatch: 0,
      invalid: 0,
      queued: DOMAINS,
      claimed: 0,
      done: 0,
    });

    const workers = [startWorker(), startWorker(), startWorker()];
    const [victim, ...survivors] = workers as [Worker, Worker, Worker];
    // Kill the first worker once the run is well under way and it holds domains (in progress or not started).
    let held: Array<{ id: string; domain: string }> = [];
    for (;;) {
      const done = (await sql<{ n: string }>(`SELECT count(*) AS n FROM check_jobs WHERE state = 'done'`))[0]!
        .n;
      held = await heldBy(victim.child.pid!);
      if (Number(done) >= DOMAINS / 5 && held.length > 0) break;
      assert.ok(
        Number(done) < DOMAINS,
        `the run ended before the worker could be killed: ${victim.stderr()}`,
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    victim.child.kill('SIGKILL');
    const killed = await victim.exited;
    assert.equal(killed.signal, 'SIGKILL');
    held = await heldBy(victim.child.pid!);
    assert.ok(held.length > 0, 'the killed worker held domains when it died');

    for (const worker of survivors) {
      const { code, stdout } = await worker.exited;
      assert.equal(code, 0, worker.stderr());
      const summary = JSON.parse(stdout) as { checked: number; lost: number; batchCounts: unknown };
      assert.ok(summary.checked > 0, 'each surviving worker checked domains');
      assert.equal(summary.lost, 0, 'no result of a living worker was refused');
    }

    // Every domain has exactly one result, read back in list order, in the shape check --file writes.
    const lines = await results('lab');
    assert.deepEqual(
      lines.map((l) => l.domain),
      domains,
    );
    for (const line of lines) {
      assert.ok(['pass', 'warn', 'fail'].includes(line.status), JSON.stringify(line).slice(0, 300));
      assert.ok(line.findings.some((f) => f.section === 'mx'));
    }

    // The killed worker's domains went to the others once its lease ran out: claimed again, then done.
    const afterwards = await sql<{ id: string; state: string; attempts: string; holder: string | null }>(
      'SELECT id, state, attempts, holder FROM check_jobs WHERE id = ANY($1::bigint[])',
      [held.map((h) => h.id)],
    );
    assert.equal(afterwards.length, held.length);
    for (const job of afterwards) {
      assert.equal(job.state, 'done');
      assert.ok(Number(job.attempts) >= 2, `job ${job.id} was claimed again after the kill`);
    }

    // The lab DNS side: every domain was looked up; more than once only if the killed worker held it (each
    // worker process has its own DNS cache, so a domain checked by two workers is asked for twice).
    const asked = new Map<string, number>();
    for (const q of lab.dns.queries)
      if (q.type === 'MX') asked.set(q.name.toLowerCase(), (asked.get(q.name.toLowerCase()) ?? 0) + 1);
    const victimHeld = new Set(held.map((h) => h.domain));
    for (const domain of domains) {
      const times = asked.get(domain) ?? 0;
      assert.ok(times >= 1, `${domain} was never looked up`);
      assert.ok(times === 1 || victimHeld.has(domain), `${domain} was checked ${times} times`);
    }
  });
});

/** A TCP relay to the lab PostgreSQL that can be cut (every connection dropped, new ones refused) and restored. */
async function relay(): Promise<{ url: string; cut(): void; restore(): void; close(): Promise<void> }> {
  const target = new URL(url);
  const sockets = new Set<Socket>();
  let down = false;
  const server = createServer((client) => {
    if (down) return void client.destroy();
    const upstream = connect(Number(target.port), target.hostname);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(a);
      a.pipe(b);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        sockets.delete(a);
        b.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const through = new URL(url);
  through.port = String((server.address() as AddressInfo).port);
  return {
    url: through.toString(),
    cut() {
      down = true;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      down = false;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('mxguard worker: the database out of reach for a while', () => {
  it('waits and tries again, then finishes: every domain once, none lost', async () => {
    const domains = Array.from({ length: 300 }, (_, i) => domainOf(i));
    await enqueue('outage', domains);
    const link = await relay();
    try {
      const worker = startWorker(link.url, 'outage');
      const done = async () =>
        Number(
          (
            await sql<{ n: string }>(
              `SELECT count(*) AS n FROM check_jobs WHERE batch = 'outage' AND state = 'done'`,
            )
          )[0]!.n,
        );
      while ((await done()) < 30) await new Promise((resolve) => setTimeout(resolve, 50));
      link.cut();
      await new Promise((resolve) => setTimeout(resolve, 3000));
      link.restore();
      const { code } = await worker.exited;
      assert.equal(code, 0, worker.stderr());
      assert.match(worker.stderr(), /database unreachable, trying again/);
      assert.deepEqual(
        (await results('outage')).map((l) => l.domain),
        domains,
      );
    } finally {
      await link.close();
    }
  });
});
