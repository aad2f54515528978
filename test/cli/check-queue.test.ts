// `mxguard check --enqueue`, `mxguard worker` and `mxguard check --results` (src/cli/check-queue.ts,
// src/cli/worker.ts) through the built command on a SQLite data directory, against the lab DNS and SMTP servers
// of the survey tests: what --enqueue says and exits with, the usage errors, a worker's results being exactly
// what `check --file` prints for the same domains, and what SIGTERM does to a worker in the middle of its work.
// Several workers on PostgreSQL, one of them killed: test/cli/worker-lab.test.ts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { DATABASE_FILE, openSqliteStore } from '../../src/store/sqlite.js';
import { BIN, runCli, runCliAsync } from '../helpers/cli.js';
import { mxRecord, type SurveyLab, startSurveyLab } from '../helpers/survey-lab.js';

let lab: SurveyLab;
let dir: string;
let made = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mxguard-check-queue-'));
  lab = await startSurveyLab('mx.shared.test', [
    {
      origin: 'test',
      records: [
        { name: 'mx.shared.test', type: 'A', data: '127.0.0.1' },
        { name: 'mx2.shared.test', type: 'A', data: '127.0.0.1' },
        mxRecord('one.test', 'mx.shared.test'),
        mxRecord('two.test', 'mx.shared.test'),
        mxRecord('three.test', 'mx2.shared.test'),
        { name: 'three.test', type: 'TXT', data: 'v=spf1 mx -all' },
      ],
    },
    // A zone whose server never answers: each check of it waits for the resolver's timeouts.
    { origin: 'slow.example', drop: true, records: [mxRecord('slow.example', 'mx.shared.test')] },
  ]);
});

after(async () => {
  await lab?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const network = () => lab.checkOptions(1);

function listFile(lines: string[]): string {
  const path = join(dir, `list-${++made}.txt`);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

const freshDataDir = () => join(dir, `data-${++made}`);

async function counts(dataDir: string, batch = 'default') {
  const store = await openSqliteStore(dataDir);
  try {
    return await store.checkQueue().counts(batch);
  } finally {
    await store.close();
  }
}

describe('mxguard check --enqueue / --results', () => {
  it('enqueues a list once, names the lines that are not domains (exit 1), and prints the counts', async () => {
    const dataDir = freshDataDir();
    const list = listFile(['one.test', '# a comment', 'two.test', 'not a domain', 'ONE.test.']);
    const first = await runCliAsync(['check', '--file', list, '--enqueue', '--data-dir', dataDir, '--json']);
    assert.equal(first.code, 1, first.stderr);
    assert.match(first.stderr, new RegExp(`${list}:4: "not a domain" is not a domain name`));
    assert.deepEqual(JSON.parse(first.stdout), {
      batch: 'default',
      listed: 3,
      added: 2,
      alreadyInBatch: 1,
      invalid: 1,
      queued: 2,
      claimed: 0,
      done: 0,
    });
    const again = await runCliAsync(['check', '--enqueue', 'two.test', 'three.test', '--data-dir', dataDir]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(
      again.stdout,
      'batch default: 1 added, 1 already in it; now 3 queued, 0 being checked, 0 done\n',
    );
    assert.deepEqual(await counts(dataDir), { queued: 3, claimed: 0, done: 0 });

    // Nothing checked yet: no results, and standard error says how many wait.
    const results = await runCliAsync(['check', '--results', '--data-dir', dataDir]);
    assert.equal(results.code, 0, results.stderr);
    assert.equal(results.stdout, '');
    assert.match(results.stderr, /batch default: 3 domains not checked yet \(3 queued, 0 being checked\)/);
  });

  it('reads a list in bounded memory: a 150 MB line is one bad line (in a 48 MB heap); CRLF, comments, no last break', async () => {
    const dataDir = freshDataDir();
    const path = join(dir, `long-${++made}.txt`);
    writeFileSync(path, `one.test\r\n${'x'.repeat(150_000_000)}\r\ntwo.test # a comment\r\nthree.test`);
    // A reader that keeps whole lines runs out of this heap (V8 aborts the process); a line is cut at 4096.
    const r = runCli(['check', '--file', path, '--enqueue', '--data-dir', dataDir, '--json'], {
      env: { NODE_OPTIONS: '--max-old-space-size=48' },
    });
    rmSync(path);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`${path}:2: "x{100}" is not a domain name`));
    assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, 'one bad line');
    assert.deepEqual(JSON.parse(r.stdout), {
      batch: 'default',
      listed: 3,
      added: 3,
      alreadyInBatch: 0,
      invalid: 1,
      queued: 3,
      claimed: 0,
      done: 0,
    });
  });

  it('refuses what does not go together, bad batch names and unknown batches (exit 2)', async () => {
    const dataDir = freshDataDir();
    await runCliAsync(['check', '--enqueue', 'one.test', '--data-dir', dataDir]);
    const refusals: Array<[string[], RegExp]> = [
      [['--enqueue', '--results'], /--enqueue and --results do not go together/],
      [['--enqueue', 'one.test', '--out', join(dir, 'x')], /--out does not go with --enqueue or --results/],
      [['--results', 'one.test'], /--results takes no domains/],
      [['--enqueue'], /give the domains to enqueue/],
      [['one.test', '--batch', 'b'], /--batch goes with --enqueue or --results/],
      [['--results', '--batch', 'no such'], /--batch: batch "no such": use 1 to 64 letters/],
      [['--results', '--batch', 'other'], /batch other: no such batch/],
      [['--results', '--format', 'xml'], /--format: "xml" is not one of ndjson, csv/],
    ];
    for (const [args, message] of refusals) {
      const r = await runCliAsync(['check', ...args, '--data-dir', dataDir]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    }
    const missing = await runCliAsync(['check', '--results', '--data-dir', join(dir, 'nothing-here')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no mxguard database/);
  });
});

describe('mxguard worker (SQLite)', () => {
  it('writes for each domain the line check --file prints for it, read back in list order', async () => {
    const dataDir = freshDataDir();
    const domains = ['two.test', 'three.test', 'one.test', 'nxdomain.test'];
    const list = listFile(domains);
    await runCliAsync(['check', '--file', list, '--enqueue', '--batch', 'cmp', '--data-dir', dataDir]);
    const worker = await runCliAsync([
      'worker',
      '--batch',
      'cmp',
      '--data-dir',
      dataDir,
      '--concurrency',
      '2',
      '--json',
      ...network(),
    ]);
    assert.equal(worker.code, 0, worker.stderr);
    const summary = JSON.parse(worker.stdout);
    assert.equal(summary.checked, 4);
    assert.equal(summary.written, 4);
    assert.deepEqual(summary.batchCounts, { queued: 0, claimed: 0, done: 4 });

    const results = await runCliAsync(['check', '--results', '--batch', 'cmp', '--data-dir', dataDir]);
    const direct = await runCliAsync(['check', '--file', list, ...network()]);
    assert.equal(results.code, direct.code, 'the same exit status as check --file');
    const lines = results.stdout.trim().split('\n');
    assert.deepEqual(
      lines.map((l) => JSON.parse(l).domain),
      domains,
    );
    // The suggested _mta-sts id is the time of the check: the one part of a line that differs between two runs.
    const sameRun = (text: string) => text.replace(/id=\d{14}/g, 'id=YYYYMMDDhhmmss');
    assert.deepEqual(lines.map(sameRun).sort(), direct.stdout.trim().split('\n').map(sameRun).sort());

    const csv = await runCliAsync([
      'check',
      '--results',
      '--batch',
      'cmp',
      '--format',
      'csv',
      '--data-dir',
      dataDir,
    ]);
    const directCsv = await runCliAsync(['check', '--file', list, '--format', 'csv', ...network()]);
    const rows = csv.stdout.split('\r\n');
    assert.equal(rows[0], directCsv.stdout.split('\r\n')[0], 'the same header');
    assert.deepEqual([...rows].sort(), directCsv.stdout.split('\r\n').sort());
  });

  /** Starts a worker on `dataDir`; resolves once it holds `holding` domains. */
  async function busyWorker(dataDir: string, holding: number, options: string[] = network()) {
    const child = spawn(
      process.execPath,
      [BIN, 'worker', '--data-dir', dataDir, '--concurrency', String(holding), '--json', ...options],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
      child.on('close', (code) => resolve({ code, stdout, stderr })),
    );
    while ((await counts(dataDir)).claimed < holding) await new Promise((r) => setTimeout(r, 50));
    return { child, exited };
  }

  it('renews the lease of a domain while it is still checking it', async () => {
    const dataDir = freshDataDir();
    await runCliAsync(['check', '--enqueue', 'r.slow.example', '--data-dir', dataDir]);
    // The check waits 2 s twice for the DNS server that never answers: twice the 2 s lease.
    const { exited } = await busyWorker(dataDir, 1, [...lab.checkOptions(2), '--lease', '2']);
    const leases = new Set<number>();
    let finished = false;
    void exited.then(() => {
      finished = true;
    });
    while (!finished) {
      const db = new Database(join(dataDir, DATABASE_FILE), { readonly: true, timeout: 10_000 });
      const row = db.prepare(`SELECT lease_until_ms FROM check_jobs WHERE state = 'claimed'`).pluck().get();
      db.close();
      if (typeof row === 'number') leases.add(row);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const { code, stdout, stderr } = await exited;
    assert.equal(code, 0, stderr);
    assert.equal(JSON.parse(stdout).written, 1);
    assert.ok(leases.size >= 3, `the lease was extended while the check ran: ${[...leases]}`);
    const db = new Database(join(dataDir, DATABASE_FILE), { readonly: true });
    assert.equal(db.prepare('SELECT attempts FROM check_jobs').pluck().get(), 1, 'claimed once');
    db.close();
  });

  it('SIGTERM: the checks in progress are finished and written, the rest stays queued for others', async () => {
    const dataDir = freshDataDir();
    await runCliAsync([
      'check',
      '--enqueue',
      ...Array.from({ length: 6 }, (_, i) => `s${i}.slow.example`),
      '--data-dir',
      dataDir,
    ]);
    const { child, exited } = await busyWorker(dataDir, 2);
    child.kill('SIGTERM');
    const { code, stdout, stderr } = await exited;
    assert.equal(code, 0, stderr);
    assert.match(stderr, /stopping: finishing 2 checks in progress/);
    assert.equal(JSON.parse(stdout).written, 2);
    assert.deepEqual(await counts(dataDir), { queued: 4, claimed: 0, done: 2 });
  });

  it('a second signal hands back the checks in progress too, at once', async () => {
    const dataDir = freshDataDir();
    await runCliAsync([
      'check',
      '--enqueue',
      ...Array.from({ length: 6 }, (_, i) => `t${i}.slow.example`),
      '--data-dir',
      dataDir,
    ]);
    const { child, exited } = await busyWorker(dataDir, 2);
    child.kill('SIGTERM');
    child.kill('SIGINT');
    const { code, stderr } = await exited;
    assert.equal(code, 130, stderr);
    assert.match(stderr, /stopping now: handing back 2 checks in progress/);
    assert.deepEqual(await counts(dataDir), { queued: 6, claimed: 0, done: 0 });
  });
});
