// `mxguard check DOMAIN...`: the end-to-end audit, printed for people or as JSON / NDJSON for scripts.
import { createWriteStream, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import type { DomainCheck } from '../check/run.js';
import type { DomainReport, Finding, Section } from '../check/types.js';
import { normalizeName } from '../dns/names.js';
import { DEFAULT_BATCH } from '../store/check-queue.js';
import { BULK_FORMATS, type BulkFormat, csvHeader, csvRow, doneDomains, hasContent } from './check-output.js';
import { enqueueDomains, printResults, type QueueOptions } from './check-queue.js';
import {
  addCheckRunOptions,
  type CheckRun,
  type CheckRunOptions,
  checkedDomain,
  exitCodeOf,
  listedLines,
  prepareCheckRun,
  publicReport,
} from './check-run.js';
import { changesSince, humanChanges, jsonChanges, readPrevious, sinceExitCode } from './check-since.js';
import { storeOptions } from './store-options.js';
import { CliError, printJson } from './util.js';

interface CheckOptions extends CheckRunOptions, QueueOptions {
  enqueue?: boolean;
  results?: boolean;
  file?: string;
  format?: string;
  out?: string;
  resume?: boolean;
  json?: boolean;
  state?: string;
  since?: string;
}

export function register(program: Command): void {
  const command = program
    .command('check')
    .description('audit domains end to end: MX, MTA-STS, TLS, DANE, TLS-RPT, SPF, DMARC, DKIM')
    .argument('[domain...]', 'mail domains to check')
    .option('--file <file>', 'read domains from a file (one per line, # comments), stream NDJSON results')
    .option('--format <format>', `output of several domains: ${BULK_FORMATS.join(' or ')} (default ndjson)`)
    .option('--out <file>', 'write the results of several domains to FILE instead of standard output')
    .option('--resume', 'with --out: skip the domains FILE already holds and append the others')
    .option('--json', 'print the report as JSON (one domain) or NDJSON (several)')
    .option(
      '--state <file>',
      'remember each policy between runs to catch an id left unchanged after a policy change',
    )
    .option(
      '--since <file>',
      'compare with a previous --json result: exit 1 only for new fails, and print what changed',
    )
    .option(
      '--enqueue',
      'put the domains in the check queue of --database for `mxguard worker` processes to check',
    )
    .option('--results', 'print the results of a queued batch (NDJSON as --file writes, or --format csv)')
    .option('--batch <name>', `with --enqueue / --results: the batch (without it: "${DEFAULT_BATCH}")`);
  storeOptions(command);
  addCheckRunOptions(command).addHelpText(
    'after',
    `
Exit status: 0 nothing failed (warnings allowed), 1 a check failed, 2 the check could not run
(resolver unreachable, bad options). With --since FILE (a previous --json result): 1 only for fails
that are new since then; the report ends with what changed (+ new, ~ status changed, - gone).
Private, loopback and link-local addresses found in DNS are not contacted unless --allow-private is given.
Within one run, DNS answers are cached by their TTL, each MX address is probed once per MX name (at most
--per-host-concurrency connections to it at a time, 250 ms apart) and each policy is fetched once; --no-cache
checks every domain as if alone. --format csv: one row per domain with each section's status (RFC 4180; a cell
starting with = + - @ gets a leading '). --resume (with --out): skip the domains FILE holds, append the rest.

A survey spread over machines: --enqueue puts the domains in a batch of the database's check queue (enqueueing
again adds only new ones; prints the counts, --json too; exit 1 when lines were not domain names, skipped),
\`mxguard worker --database URL\` processes on any machine check them, and --results prints what they found in
list order, while they work or after (how many are not checked yet goes to standard error).

Examples:
  $ mxguard check example.com
  $ mxguard check example.com --preset exchange-online --json
  $ mxguard check example.com --dkim-selector s1 --resolver 9.9.9.9 --state ~/.mxguard-state.json
  $ mxguard check --file domains.txt > results.ndjson
  $ mxguard check --file domains.txt --format csv --out results.csv --resume
  $ mxguard check example.com --json --since yesterday.json > today.json
  $ mxguard check --file domains.txt --enqueue --batch survey --database postgres://mxguard@db/mxguard
  $ mxguard check --results --batch survey --database postgres://mxguard@db/mxguard > results.ndjson`,
  );
  command.action(async (domains: string[], opts: CheckOptions) => runCheck(domains, opts));
}

async function runCheck(args: string[], opts: CheckOptions): Promise<void> {
  if (opts.enqueue || opts.results) return runQueued(args, opts);
  if (opts.batch !== undefined) throw new CliError(2, '--batch goes with --enqueue or --results');
  if (args.length === 0 && !opts.file) throw new CliError(2, 'give at least one domain, or --file FILE');
  const format = bulkFormat(opts);
  const domains = args.map(checkedDomain);
  const bulk =
    opts.file !== undefined || domains.length > 1 || opts.out !== undefined || opts.format !== undefined;
  const run = await prepareCheckRun(opts, { bulk });
  const state = readState(opts.state);
  const previous = opts.since === undefined ? undefined : readPrevious(opts.since);

  let worst = 0;
  /** Records the result; returns what changed since the previous result (with --since). */
  const record = (result: DomainCheck) => {
    if (result.mtaSts?.id && result.mtaSts.body !== undefined) {
      state[result.domain] = { id: result.mtaSts.id, body: result.mtaSts.body };
    }
    if (previous === undefined) {
      worst = Math.max(worst, exitCodeOf(result));
      return undefined;
    }
    const changes = changesSince(previous.get(result.domain), result.findings);
    worst = Math.max(worst, sinceExitCode(result, changes));
    return changes;
  };
  const json = (result: DomainCheck, changes: ReturnType<typeof record>) =>
    changes === undefined ? publicReport(result) : { ...publicReport(result), changes: jsonChanges(changes) };
  const human = (result: DomainCheck, changes: ReturnType<typeof record>) =>
    humanReport(result) + (changes === undefined ? '' : humanChanges(opts.since!, changes));
  const stream = bulk;
  if (stream) {
    // --resume: the domains the output file already holds are skipped, the others appended.
    const done = opts.resume
      ? await doneDomains(opts.out!, format === 'csv' ? 'csv' : 'ndjson')
      : new Set<string>();
    const appending = opts.resume === true && hasContent(opts.out!);
    const output = opts.out === undefined ? process.stdout : await openOutput(opts.out, appending);
    if (format === 'csv' && !appending) output.write(csvHeader());
    const source = skipDone(opts.file === undefined ? listSource(domains) : fileSource(opts.file), done);
    const listed = !process.stderr.isTTY
      ? 0
      : opts.file === undefined
        ? domains.length
        : await countDomains(opts.file);
    // Each result is written and dropped as it comes (waiting while the output is full): memory stays bounded
    // however long the list.
    await checkMany(source, run, Math.max(0, listed - done.size), state, (result) => {
      const changes = record(result);
      if (format === 'csv') return written(output, csvRow(result));
      if (format === 'ndjson') return written(output, `${JSON.stringify(json(result, changes))}\n`);
      return written(output, human(result, changes));
    });
    if (output !== process.stdout) await new Promise<void>((resolve) => output.end(resolve));
  } else {
    if (process.stderr.isTTY) process.stderr.write(`checking ${domains[0]}…\n`);
    const result = await run.check(domains[0]!, state[domains[0]!]);
    const changes = record(result);
    if (opts.json) printJson(json(result, changes));
    else process.stdout.write(human(result, changes));
  }
  writeState(opts.state, state);
  process.exitCode = worst;
}

/** --enqueue / --results: the store's check queue (check-queue.ts); nothing is checked here. */
async function runQueued(args: string[], opts: CheckOptions): Promise<void> {
  if (opts.enqueue && opts.results) throw new CliError(2, '--enqueue and --results do not go together');
  const local = { '--out': opts.out, '--resume': opts.resume, '--state': opts.state, '--since': opts.since };
  for (const [name, value] of Object.entries(local))
    if (value !== undefined) throw new CliError(2, `${name} does not go with --enqueue or --results`);
  if (opts.enqueue) {
    if (args.length === 0 && !opts.file) throw new CliError(2, 'give the domains to enqueue, or --file FILE');
    return enqueueDomains(args, opts.file, opts);
  }
  if (args.length > 0 || opts.file !== undefined)
    throw new CliError(2, '--results takes no domains: it prints those of the batch');
  const format = opts.format === undefined ? 'ndjson' : bulkFormat(opts);
  return printResults(opts, format === 'human' ? 'ndjson' : format, process.stdout);
}

/** ndjson or csv as asked; without --format: NDJSON for --file or --json, the report for people otherwise. */
function bulkFormat(opts: CheckOptions): BulkFormat | 'human' {
  if (opts.resume && opts.out === undefined)
    throw new CliError(2, '--resume needs --out FILE (the output to resume)');
  if (opts.format === undefined) {
    if (opts.resume && !opts.json && opts.file === undefined)
      throw new CliError(2, '--resume needs --format ndjson or csv (or --file)');
    return opts.json || opts.file !== undefined ? 'ndjson' : 'human';
  }
  const format = BULK_FORMATS.find((f) => f === opts.format);
  if (format === undefined)
    throw new CliError(2, `--format: "${opts.format}" is not one of ${BULK_FORMATS.join(', ')}`);
  return format;
}

async function openOutput(path: string, append: boolean): Promise<Writable> {
  const output = createWriteStream(path, { flags: append ? 'a' : 'w' });
  await new Promise<void>((resolve, reject) => {
    output.once('open', () => resolve());
    output.once('error', (err) =>
      reject(new CliError(2, `--out ${path}: cannot write: ${(err as NodeJS.ErrnoException).code}`)),
    );
  });
  return output;
}

/** Write; when the output is full (a slow pipe or disk), a promise that resolves once it has drained. */
function written(output: Writable, text: string): Promise<void> | undefined {
  if (output.write(text)) return undefined;
  return new Promise((resolve) => output.once('drain', () => resolve()));
}

async function* skipDone(source: AsyncIterable<string>, done: ReadonlySet<string>): AsyncGenerator<string> {
  for await (const line of source) {
    if (done.size > 0 && (done.has(line) || done.has(normalizeName(line.trim())))) continue;
    yield line;
  }
}

async function* listSource(domains: string[]): AsyncGenerator<string> {
  yield* domains;
}

/** The domains a list file names (check-run.ts listedLines), as text. */
async function* fileSource(path: string): AsyncGenerator<string> {
  for await (const { text } of listedLines(path)) yield text;
}

/** How many domains the file lists, for the progress bar; counted as a stream (bounded memory). */
async function countDomains(path: string): Promise<number> {
  if (path === '-') return 0;
  let count = 0;
  try {
    for await (const _ of fileSource(path)) count++;
  } catch {
    return 0;
  }
  return count;
}

/** Run up to --concurrency checks at once, pulling domains from `source` only as slots free up. */
async function checkMany(
  source: AsyncIterable<string>,
  run: CheckRun,
  total: number,
  state: State,
  onResult: (r: DomainCheck) => Promise<void> | undefined,
): Promise<void> {
  const bar =
    process.stderr.isTTY && total > 0
      ? new SingleBar({
          stream: process.stderr,
          etaBuffer: 200,
          format: 'checking [{bar}] {value}/{total} | {rate} domains/s | ETA {eta_formatted}',
        })
      : undefined;
  const started = Date.now();
  let finished = 0;
  const progress = () => {
    finished++;
    const rate = finished / Math.max(0.001, (Date.now() - started) / 1000);
    bar?.increment(1, { rate: rate.toFixed(rate < 10 ? 1 : 0) });
  };
  bar?.start(total, 0, { rate: '0' });
  const iterator = source[Symbol.asyncIterator]();
  const worker = async () => {
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      let domain: string;
      try {
        domain = checkedDomain(next.value);
      } catch (err) {
        await onResult({ domain: next.value, status: 'error', findings: [], error: (err as Error).message });
        progress();
        continue;
      }
      await onResult(await run.check(domain, state[domain]));
      progress();
    }
  };
  await Promise.all(Array.from({ length: run.concurrency }, worker));
  bar?.stop();
}

const TITLES: Record<Section, string> = {
  mx: 'MX',
  mtasts: 'MTA-STS',
  tls: 'TLS',
  dane: 'DANE',
  senders: 'What senders will do',
  tlsrpt: 'TLS-RPT',
  spf: 'SPF',
  dmarc: 'DMARC',
  dkim: 'DKIM',
  provider: 'Provider (--preset)',
};

const MARKS: Record<Finding['status'] | DomainReport['status'], string> = {
  pass: '✓',
  warn: '⚠',
  fail: '✗',
  skip: '–',
  info: 'ℹ',
  error: '✗',
};

function color(status: string, text: string): string {
  if (!process.stdout.isTTY || process.env.NO_COLOR) return text;
  const code = { pass: 32, warn: 33, fail: 31, error: 31, info: 36, skip: 90 }[status] ?? 0;
  return `\x1b[${code}m${text}\x1b[0m`;
}

/** The report for people: a headline, then each section with ✓/⚠/✗ lines and copy-pasteable fixes. */
export function humanReport(result: DomainReport): string {
  const lines = [color(result.status, `${MARKS[result.status]} ${result.domain}: ${result.status}`)];
  if (result.error) lines.push(`  could not run: ${result.error}`);
  let section: Section | undefined;
  for (const f of result.findings) {
    if (f.section !== section) {
      section = f.section;
      // Findings stored by the monitor may carry sections of its own (`monitor`): shown by name.
      lines.push('', TITLES[f.section] ?? f.section);
    }
    // A senders finding names its hosts in the message, and says what policyd answers.
    const host = f.host && f.sender === undefined ? `${f.host}: ` : '';
    const answer = f.answer === undefined ? '' : ` (policyd answers "${f.answer}")`;
    lines.push(`  ${color(f.status, MARKS[f.status])} ${host}${f.message}${answer} [${f.code}]`);
    if (f.fix) {
      lines.push('    fix:');
      for (const l of f.fix.split('\n')) lines.push(`      ${l}`);
    }
  }
  const count = (s: Finding['status']) => result.findings.filter((f) => f.status === s).length;
  lines.push('', `${count('pass')} passed, ${count('warn')} warnings, ${count('fail')} failed`, '');
  return lines.join('\n');
}

type State = Record<string, { id: string; body: string }>;

function readState(path: string | undefined): State {
  if (path === undefined) return {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new CliError(2, `--state ${path}: cannot read: ${(err as NodeJS.ErrnoException).code}`);
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as State;
  } catch {
    // fall through
  }
  throw new CliError(2, `--state ${path}: not a state file written by mxguard check`);
}

/** Written to a temp file and renamed, so a crash never leaves half a state file. */
function writeState(path: string | undefined, state: State): void {
  if (path === undefined) return;
  writeFileSync(`${path}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
}
