// The bulk-check queue (src/store/check-queue.ts, src/store/postgres-check-queue.ts) on both stores, through
// Store.checkQueue(): the same contract on a SQLite data directory and on a database of one lab PostgreSQL
// (test/lab/postgres.ts). Enqueueing is idempotent; two processes claiming at once never get the same job;
// a lease that ran out hands the job to the next claim and the old holder can no longer write its result;
// results come back in list order, page by page.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  type CheckQueue,
  CLAIM_MAX,
  type ClaimedCheck,
  MAX_CLAIMS,
  RESULT_MAX_BYTES,
} from '../../src/store/check-queue.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';
import { rejectsWithStoreError } from '../helpers/store.js';
import { type LabPostgres, startPostgres } from '../lab/postgres.js';

const T0 = new Date('2026-12-07T10:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const CLAIMER = fileURLToPath(new URL('./check-queue-claimer.ts', import.meta.url));

let root: string;
let lab: LabPostgres;
let made = 0;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'mxguard-check-queue-'));
  lab = await startPostgres();
});
after(async () => {
  await lab?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

interface Kind {
  name: string;
  /** A new, empty database: where another process opens it (data directory or URL). */
  fresh(): Promise<string>;
  open(where: string): Promise<Store>;
}

const KINDS: Kind[] = [
  {
    name: 'sqlite',
    fresh: async () => join(root, `data-${++made}`),
    open: (dir) => openSqliteStore(dir),
  },
  {
    name: 'postgres',
    fresh: () => lab.createDatabase(`queue_${++made}`),
    open: (url) => openPostgresStore(url) as Promise<Store>,
  },
];

/** `n` domains, not in alphabetical order (results must follow the list, not the names). */
const domains = (n: number, prefix = 'd') =>
  Array.from({ length: n }, (_, i) => `${prefix}${(i * 7919) % 1000}-${i}.example`);

const result = (job: ClaimedCheck, by = 'w') => JSON.stringify({ domain: job.domain, by });

/** Starts the claimer script as its own process on the store at `where`; it claims once `go` is called. */
async function claimer(
  where: string,
  batch: string,
  holder: string,
): Promise<{ go(): void; done: Promise<{ claimed: number[]; written: number[] }> }> {
  const child = spawn(process.execPath, [
    '--import',
    'tsx',
    CLAIMER,
    JSON.stringify({ store: where, batch, holder }),
  ]);
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (out.startsWith('ready\n')) resolve();
    });
    child.on('close', (code) =>
      reject(new Error(`claimer ${holder} exited ${code} before starting: ${err}`)),
    );
  });
  const done = new Promise<{ claimed: number[]; written: number[] }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`claimer ${holder} exited ${code}: ${err}`));
      else resolve(JSON.parse(out.slice('ready\n'.length)));
    });
  });
  await ready;
  return { go: () => child.stdin.end('go\n'), done };
}

for (const kind of KINDS) {
  describe(`bulk-check queue (${kind.name})`, () => {
    let where: string;
    let store: Store;
    let queue: CheckQueue;
    before(async () => {
      where = await kind.fresh();
      store = await kind.open(where);
      queue = store.checkQueue();
    });
    after(async () => {
      await store?.close();
    });

    it('enqueueing the same domains again adds only the new ones, per batch, normalised', async () => {
      assert.deepEqual(await queue.enqueue('idem', ['A.example.', 'b.example', 'c.example'], T0), {
        added: 3,
      });
      assert.deepEqual(await queue.enqueue('idem', ['a.example', 'c.example', 'd.example'], T0), {
        added: 1,
      });
      assert.deepEqual(await queue.enqueue('idem-2', ['a.example'], T0), { added: 1 });
      assert.deepEqual(await queue.enqueue('idem-3', ['x.example', 'X.Example.', 'x.example'], T0), {
        added: 1,
      });
      assert.deepEqual(await queue.counts('idem'), { queued: 4, claimed: 0, done: 0 });
      const jobs = await queue.claim('idem', 'h1', { limit: 10, leaseMs: 1000 }, T0);
      assert.deepEqual(
        jobs.map((j) => j.domain),
        ['a.example', 'b.example', 'c.example', 'd.example'],
      );
      // A done domain enqueued again stays done (its result is kept).
      await queue.complete('h1', [{ job: jobs[0]!, result: result(jobs[0]!) }], T0);
      assert.deepEqual(await queue.enqueue('idem', ['a.example'], T0), { added: 0 });
      assert.deepEqual(await queue.counts('idem'), { queued: 0, claimed: 3, done: 1 });
      assert.deepEqual(await queue.counts('no-such-batch'), { queued: 0, claimed: 0, done: 0 });
    });

    it('refuses bad batch names, domains, holders, leases and results with STORE_INVALID', async () => {
      await rejectsWithStoreError(queue.enqueue('has space', ['a.example'], T0), 'STORE_INVALID', /batch/);
      await rejectsWithStoreError(queue.enqueue('x'.repeat(65), ['a.example'], T0), 'STORE_INVALID', /batch/);
      await rejectsWithStoreError(
        queue.enqueue('bad', ['a.example', 'not a domain'], T0),
        'STORE_INVALID',
        /not a domain/,
      );
      assert.deepEqual(
        await queue.counts('bad'),
        { queued: 0, claimed: 0, done: 0 },
        'nothing of a refused list',
      );
      await rejectsWithStoreError(
        queue.claim('bad', '', { limit: 1, leaseMs: 1000 }, T0),
        'STORE_INVALID',
        /holder/,
      );
      await rejectsWithStoreError(
        queue.claim('bad', 'h', { limit: 1, leaseMs: 0 }, T0),
        'STORE_INVALID',
        /leaseMs/,
      );
      await queue.enqueue('bad', ['a.example'], T0);
      const [job] = await queue.claim('bad', 'h', { limit: 1, leaseMs: 1000 }, T0);
      await rejectsWithStoreError(
        queue.complete('h', [{ job: job!, result: '{"domain":"a.example"}\n{}' }], T0),
        'STORE_INVALID',
        /one line/,
      );
      await rejectsWithStoreError(
        queue.complete('h', [{ job: job!, result: `"${'x'.repeat(RESULT_MAX_BYTES)}"` }], T0),
        'STORE_INVALID',
        /longer than/,
      );
      assert.deepEqual(await queue.counts('bad'), { queued: 0, claimed: 1, done: 0 });
    });

    it('claims at most `limit` jobs, oldest first, only of its batch', async () => {
      await queue.enqueue('other', ['z.example'], T0);
      const list = domains(12, 'lim');
      await queue.enqueue('limits', list, T0);
      const first = await queue.claim('limits', 'h1', { limit: 5, leaseMs: 1000 }, T0);
      const second = await queue.claim('limits', 'h2', { limit: CLAIM_MAX, leaseMs: 1000 }, T0);
      assert.deepEqual(
        [...first, ...second].map((j) => j.domain),
        list,
      );
      assert.ok([...first, ...second].every((j) => j.attempt === 1 && j.batch === 'limits'));
      assert.deepEqual(await queue.claim('limits', 'h3', { limit: 5, leaseMs: 1000 }, T0), []);
      assert.deepEqual(await queue.counts('other'), { queued: 1, claimed: 0, done: 0 });
    });

    it('a lease that ran out hands the job over; the old holder can no longer write or renew it', async () => {
      await queue.enqueue('lease', ['slow.example'], T0);
      const [mine] = await queue.claim('lease', 'a', { limit: 1, leaseMs: 1000 }, T0);
      assert.deepEqual(
        await queue.claim('lease', 'b', { limit: 1, leaseMs: 1000 }, at(999)),
        [],
        'still held',
      );
      // Renewed in time, the lease holds past its first end.
      assert.deepEqual(
        (await queue.renew('a', 1000, at(900))).map((j) => j.id),
        [mine!.id],
      );
      assert.deepEqual(await queue.claim('lease', 'b', { limit: 1, leaseMs: 1000 }, at(1500)), []);
      // Not renewed again: at 1900 it has run out and b takes it over, as attempt 2.
      const [theirs] = await queue.claim('lease', 'b', { limit: 1, leaseMs: 1000 }, at(1900));
      assert.deepEqual(theirs, { ...mine!, attempt: 2 });
      assert.deepEqual(await queue.complete('a', [{ job: mine!, result: result(mine!, 'a') }], at(1950)), []);
      assert.deepEqual(await queue.renew('a', 1000, at(1950)), [], 'a holds nothing any more');
      assert.deepEqual(
        await queue.complete('b', [{ job: theirs!, result: result(theirs!, 'b') }], at(2000)),
        [theirs!.id],
      );
      const page = await queue.results('lease');
      assert.deepEqual(
        page.items.map((r) => JSON.parse(r.result)),
        [{ domain: 'slow.example', by: 'b' }],
      );
      // A late write of the same claim again changes nothing.
      assert.deepEqual(
        await queue.complete('b', [{ job: theirs!, result: result(theirs!, 'late') }], at(2100)),
        [],
      );
      assert.equal(JSON.parse((await queue.results('lease')).items[0]!.result).by, 'b');
    });

    it('released jobs go back to the queue for the next claim', async () => {
      await queue.enqueue('release', ['r1.example', 'r2.example'], T0);
      const jobs = await queue.claim('release', 'stopping', { limit: 2, leaseMs: 60_000 }, T0);
      assert.equal(await queue.release('other-holder', jobs), 0, 'only the holder releases');
      assert.equal(await queue.release('stopping', jobs), 2);
      const again = await queue.claim('release', 'next', { limit: 2, leaseMs: 60_000 }, at(1));
      assert.deepEqual(
        again.map((j) => j.domain),
        ['r1.example', 'r2.example'],
      );
    });

    it(`a job whose holders stopped ${MAX_CLAIMS} times is done with an error result, not handed out again`, async () => {
      await queue.enqueue('poison', ['crash.example'], T0);
      for (let n = 1; n <= MAX_CLAIMS; n++) {
        const [job] = await queue.claim('poison', `h${n}`, { limit: 1, leaseMs: 10 }, at(n * 100));
        assert.equal(job?.attempt, n);
      }
      assert.deepEqual(await queue.claim('poison', 'last', { limit: 1, leaseMs: 10 }, at(10_000)), []);
      assert.deepEqual(await queue.counts('poison'), { queued: 0, claimed: 0, done: 1 });
      const line = JSON.parse((await queue.results('poison')).items[0]!.result);
      assert.equal(line.domain, 'crash.example');
      assert.equal(line.status, 'error');
      assert.match(line.error, new RegExp(`${MAX_CLAIMS} workers`));
    });

    it('results come back in list order, page by page, whatever order they were finished in', async () => {
      const list = domains(25, 'page');
      await queue.enqueue('pages', list.slice(0, 10), T0);
      await queue.enqueue('pages', list.slice(10), T0);
      const jobs = await queue.claim('pages', 'h', { limit: 25, leaseMs: 60_000 }, T0);
      for (const job of [...jobs].reverse()) await queue.complete('h', [{ job, result: result(job) }], T0);
      const seen: string[] = [];
      let after: number | undefined;
      let pages = 0;
      for (;;) {
        const page = await queue.results('pages', { after, limit: 10 });
        pages++;
        seen.push(...page.items.map((r) => JSON.parse(r.result).domain));
        assert.deepEqual(
          page.items.map((r) => r.domain),
          page.items.map((r) => JSON.parse(r.result).domain),
        );
        if (page.next === null) break;
        after = page.next;
      }
      assert.deepEqual(seen, list);
      assert.equal(pages, 3);
    });

    it('two processes claiming at once: every job claimed once, every result written once', async () => {
      const list = domains(600, 'race');
      for (let i = 0; i < list.length; i += 100) await queue.enqueue('race', list.slice(i, i + 100), T0);
      const processes = await Promise.all([
        claimer(where, 'race', 'proc-1'),
        claimer(where, 'race', 'proc-2'),
      ]);
      for (const p of processes) p.go();
      const [one, two] = await Promise.all(processes.map((p) => p.done));
      const claimed = [...one!.claimed, ...two!.claimed];
      assert.equal(new Set(claimed).size, claimed.length, 'no job claimed twice');
      assert.equal(claimed.length, list.length, 'no job left out');
      assert.deepEqual([...one!.written].sort(), [...one!.claimed].sort());
      assert.deepEqual([...two!.written].sort(), [...two!.claimed].sort());
      assert.ok(one!.claimed.length > 0 && two!.claimed.length > 0, 'both processes got work');
      assert.deepEqual(await queue.counts('race'), { queued: 0, claimed: 0, done: list.length });
      const rows: string[] = [];
      for (let after: number | null | undefined; after !== null; ) {
        const page = await queue.results('race', { after, limit: 1000 });
        rows.push(...page.items.map((r) => r.domain));
        after = page.next;
      }
      assert.deepEqual(rows, list);
    });
  });
}
