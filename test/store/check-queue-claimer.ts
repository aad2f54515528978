// A separate process claiming jobs of a bulk-check batch for test/store/check-queue.test.ts, as a worker on
// another machine would: opens the store given on the command line (a SQLite data directory or a
// PostgreSQL URL), claims a few jobs at a time until the batch has none left, writes a result for each,
// and prints the ids it claimed and the ids its results were written for, as JSON. It starts claiming when
// a line arrives on its standard input (after printing "ready"), so that several start at the same time.
//   node --import tsx test/store/check-queue-claimer.ts '{"store":"...","batch":"b","holder":"h"}'
import { openPostgresStore } from '../../src/store/postgres.js';
import { openSqliteStore } from '../../src/store/sqlite.js';

const {
  store: where,
  batch,
  holder,
} = JSON.parse(process.argv[2]!) as {
  store: string;
  batch: string;
  holder: string;
};
const store = where.startsWith('postgres') ? await openPostgresStore(where) : await openSqliteStore(where);
const queue = store.checkQueue();
process.stdout.write('ready\n');
await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
process.stdin.pause();
const claimed: number[] = [];
const written: number[] = [];
try {
  for (;;) {
    const jobs = await queue.claim(batch, holder, { limit: 7, leaseMs: 600_000 }, new Date());
    if (jobs.length === 0) break;
    claimed.push(...jobs.map((j) => j.id));
    // The time checking takes, in which the other claimers take their turns at the database.
    await new Promise((resolve) => setTimeout(resolve, 10));
    const finished = jobs.map((job) => ({ job, result: JSON.stringify({ domain: job.domain, holder }) }));
    written.push(...(await queue.complete(holder, finished, new Date())));
  }
} finally {
  await store.close();
}
process.stdout.write(JSON.stringify({ claimed, written }));
