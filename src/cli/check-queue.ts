// `mxguard check --enqueue` and `mxguard check --results`: the two ends of a bulk audit spread over machines
// (issue 16). --enqueue puts the domains of a list (or the arguments) in a named batch of the store's check
// queue (src/store/check-queue.ts), `mxguard worker` processes claim and check them, and --results streams
// what they found, in list order, as the same NDJSON (or CSV) `check --file` writes.
import type { Writable } from 'node:stream';
import type { DomainReport } from '../check/types.js';
import { type CheckQueue, checkedBatch, DEFAULT_BATCH, ENQUEUE_MAX } from '../store/check-queue.js';
import { validDomainName } from '../store/domain-rules.js';
import { StoreError } from '../store/types.js';
import { type BulkFormat, csvHeader, csvRow } from './check-output.js';
import { exitCodeOf, listedLines } from './check-run.js';
import { type StoreOptions, withStore } from './store-options.js';
import { CliError, printJson } from './util.js';

export interface QueueOptions extends StoreOptions {
  batch?: string;
  json?: boolean;
}

/** Invalid lines named one by one on standard error; beyond this, only counted. */
const INVALID_SHOWN = 20;

/**
 * Adds the domains (arguments, or the lines of `file`) to the batch, ENQUEUE_MAX per transaction; lines that
 * are not domain names are skipped and named on standard error. Exit 1 when there were such lines.
 */
export async function enqueueDomains(
  args: string[],
  file: string | undefined,
  opts: QueueOptions,
): Promise<void> {
  const batch = batchOption(opts.batch);
  const source = file === undefined ? argumentLines(args) : listedLines(file);
  const outcome = await withStore(
    opts,
    async (store) => {
      const queue = store.checkQueue();
      const now = new Date();
      let listed = 0;
      let added = 0;
      let invalid = 0;
      let chunk: string[] = [];
      const flush = async () => {
        if (chunk.length > 0) added += (await queue.enqueue(batch, chunk, now)).added;
        chunk = [];
      };
      for await (const { text, line } of source) {
        const domain = queueDomain(text);
        if (domain === undefined) {
          if (++invalid <= INVALID_SHOWN)
            process.stderr.write(
              `${file ?? 'argument'}:${line}: "${text.slice(0, 100)}" is not a domain name (skipped)\n`,
            );
          continue;
        }
        listed++;
        chunk.push(domain);
        if (chunk.length === ENQUEUE_MAX) await flush();
      }
      await flush();
      return { listed, added, invalid, counts: await queue.counts(batch) };
    },
    { create: true },
  );
  if (outcome.invalid > INVALID_SHOWN)
    process.stderr.write(
      `… ${outcome.invalid - INVALID_SHOWN} more lines that are not domain names (skipped)\n`,
    );
  const { listed, added, invalid, counts } = outcome;
  if (opts.json) printJson({ batch, listed, added, alreadyInBatch: listed - added, invalid, ...counts });
  else
    process.stdout.write(
      `batch ${batch}: ${added} added, ${listed - added} already in it; now ${counts.queued} queued, ` +
        `${counts.claimed} being checked, ${counts.done} done\n`,
    );
  process.exitCode = invalid > 0 ? 1 : 0;
}

/**
 * Writes the batch's results in list order to `output` (NDJSON as `check --file --json`, or CSV), page by page;
 * says on standard error how many domains are still waiting. Exit status as `check --file`: 1 when a domain
 * failed, 2 when one could not be checked (or the batch does not exist), else 0.
 */
export async function printResults(opts: QueueOptions, format: BulkFormat, output: Writable): Promise<void> {
  const batch = batchOption(opts.batch);
  const { worst, counts } = await withStore(opts, async (store) => {
    const queue = store.checkQueue();
    const before = await queue.counts(batch);
    if (before.queued + before.claimed + before.done === 0)
      throw new CliError(2, `batch ${batch}: no such batch (enqueue one with check --file FILE --enqueue)`);
    if (format === 'csv') await written(output, csvHeader());
    const worst = await writeResults(queue, batch, format, output);
    // Workers may go on while the results are read: what is still waiting is counted at the end.
    return { worst, counts: await queue.counts(batch) };
  });
  const waiting = counts.queued + counts.claimed;
  if (waiting > 0)
    process.stderr.write(
      `batch ${batch}: ${waiting} domains not checked yet (${counts.queued} queued, ${counts.claimed} being checked)\n`,
    );
  process.exitCode = worst;
}

/** Each page's results written as they come (waiting while the output is full); the worst exit status. */
async function writeResults(
  queue: CheckQueue,
  batch: string,
  format: BulkFormat,
  output: Writable,
): Promise<number> {
  let worst = 0;
  let after: number | undefined;
  for (;;) {
    const page = await queue.results(batch, { after, limit: 500 });
    for (const row of page.items) {
      const report = JSON.parse(row.result) as DomainReport;
      worst = Math.max(worst, exitCodeOf(report));
      await written(output, format === 'csv' ? csvRow(report) : `${row.result}\n`);
    }
    if (page.next === null) return worst;
    after = page.next;
  }
}

/** Write; when the output is full (a slow pipe), wait until it has drained. */
async function written(output: Writable, text: string): Promise<void> {
  if (!output.write(text)) await new Promise<void>((resolve) => output.once('drain', () => resolve()));
}

/** The domain as the queue keeps it, or undefined when the text is not a domain name the queue takes. */
function queueDomain(text: string): string | undefined {
  try {
    return validDomainName(text);
  } catch (err) {
    if (err instanceof StoreError) return undefined;
    throw err;
  }
}

async function* argumentLines(args: string[]): AsyncGenerator<{ text: string; line: number }> {
  for (const [i, text] of args.entries()) yield { text, line: i + 1 };
}

/** --batch (default DEFAULT_BATCH), checked: a name the queue refuses is a usage error (exit 2). */
export function batchOption(batch: string | undefined): string {
  try {
    return checkedBatch(batch ?? DEFAULT_BATCH);
  } catch (err) {
    if (err instanceof StoreError) throw new CliError(2, `--batch: ${err.message}`);
    throw err;
  }
}
