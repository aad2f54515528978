// `mxguard store copy --from DIR|FILE|URL --to DIR|FILE|URL`: moves an installation between databases
// (a SQLite data directory or file, a PostgreSQL database; either way) with src/store/copy.ts: every
// table, ids and history as they were, idempotent, progress per table on stderr, a count check at the end.
import type { Command } from 'commander';
import { mxguardCommand } from '../common/invocation.js';
import {
  type CopyProgress,
  type CopySummary,
  copyLocation,
  copyStore,
  describeLocation,
  NOT_COPIED,
  StoreCopyError,
} from '../store/copy.js';
import { StoreError } from '../store/types.js';
import { CliError, formatTable, printJson } from './util.js';

/** Progress lines of one table at most this often (and when it is done). */
const PROGRESS_EVERY_MS = 2000;

const EXIT_STATUS = `
Exit status: 0 copied and every table passed the count check; 1 the count check failed for a table, or
the target holds a different row under a key of the source (COPY_CONFLICT: nothing of that batch is
written); 2 usage error, or a database cannot be used (missing, unreachable, the same database on
both sides, different schema versions).`;

interface CopyOptions {
  from: string;
  to: string;
  json?: boolean;
}

export function register(program: Command): void {
  const store = program
    .command('store')
    .description('move an installation between databases (SQLite, PostgreSQL)')
    .addHelpText(
      'after',
      `\nExamples:\n  $ mxguard store copy --from ./data --to postgres://mxguard@db.example.net/mxguard\n`,
    );

  store
    .command('copy')
    .description(
      'copy every table of one mxguard database into another (SQLite -> PostgreSQL or back), keeping ids and history',
    )
    .requiredOption(
      '--from <dir|file|url>',
      'the database to copy: a data directory, a SQLite file or postgres://…',
    )
    .requiredOption(
      '--to <dir|file|url>',
      'where to: a data directory, a SQLite file (.sqlite/.db) or postgres://…; created or migrated first',
    )
    .option('--json', 'print the summary as JSON')
    .addHelpText(
      'after',
      `
Domains, policies and their history, TLS-RPT and DMARC reports with their rows, rejected input, the
policy fetch log, settings (the admin password), API tokens, monitoring runs, alerts and deliveries
and the PTR cache are copied table by table with their ids. Not copied:
${Object.entries(NOT_COPIED)
  .map(([table, reason]) => `  ${table}: ${reason}`)
  .join('\n')}

The source is read from one snapshot and never changed; stop \`mxguard serve\` first so nothing
arrives after it. Running the copy again adds only rows that are new; a row that changed since an
earlier copy, or a target holding another installation, is refused (COPY_CONFLICT, naming the table).
Both databases must have the same schema version: the target is migrated first, an older source is
upgraded by opening it once with this mxguard. A PostgreSQL password is best left out of the URL
(the process list shows it): PGPASSWORD or ~/.pgpass are read when the URL has none.

Examples:
  $ PGPASSWORD=... mxguard store copy --from /var/lib/mxguard --to postgres://mxguard@db.example.net/mxguard
  $ mxguard store copy --from postgres://mxguard@db.example.net/mxguard --to ./back/mxguard.sqlite
${EXIT_STATUS}`,
    )
    .action(async (options: CopyOptions) => {
      const summary = await runCopy(options);
      if (options.json === true) printJson(summary);
      else process.stdout.write(humanSummary(summary));
      if (!summary.ok) process.exitCode = 1;
    });
}

async function runCopy(options: CopyOptions): Promise<CopySummary> {
  const from = location(options.from, '--from');
  const to = location(options.to, '--to');
  say(`copying ${describeLocation(from)} to ${describeLocation(to)}`);
  try {
    return await copyStore(from, to, { onProgress: progressPrinter() });
  } catch (err) {
    if (err instanceof StoreCopyError) {
      throw new CliError(
        err.code === 'COPY_CONFLICT' ? 1 : 2,
        hidePasswords(`${err.code}: ${err.message}`, options),
      );
    }
    if (err instanceof StoreError) throw new CliError(2, hidePasswords(err.message, options));
    throw err;
  }
}

function location(text: string, option: string) {
  try {
    return copyLocation(text, option);
  } catch (err) {
    if (err instanceof StoreCopyError) throw new CliError(2, err.message);
    throw err;
  }
}

/** A driver's message may repeat a URL it was given: never with its password. */
function hidePasswords(message: string, options: CopyOptions): string {
  let text = message;
  for (const given of [options.from, options.to]) {
    text = text.replaceAll(given, describeLocation(location(given, '')));
  }
  return text;
}

/** "reports: 12000/50000" on stderr, per table now and then and when its copy or its check is done. */
function progressPrinter(): (progress: CopyProgress) => void {
  let last = 0;
  return ({ table, done, total, phase }) => {
    const now = Date.now();
    const finished = done === total;
    if (!finished && now - last < PROGRESS_EVERY_MS) return;
    if (phase === 'check' && !finished) return;
    last = now;
    say(`${table}: ${phase === 'copy' ? 'copied' : 'checked'} ${done}/${total}`);
  };
}

function humanSummary(summary: CopySummary): string {
  const rows = [['table', 'source', 'added', 'already there', 'in target', 'check']];
  for (const t of summary.tables) {
    rows.push([
      t.table,
      String(t.source),
      String(t.inserted),
      String(t.alreadyPresent),
      String(t.present),
      t.ok ? 'ok' : 'MISSING',
    ]);
  }
  const failed = summary.tables.filter((t) => !t.ok).map((t) => t.table);
  const verdict = summary.ok
    ? `every table is complete in ${summary.to}; point serve at it with --database (or MXGUARD_DATABASE_URL)`
    : `${failed.join(', ')}: the target lacks rows of the source; run \`${mxguardCommand()} store copy\` again`;
  return `${formatTable(rows)}${verdict}\n`;
}

function say(line: string): void {
  process.stderr.write(`mxguard store copy: ${line}\n`);
}
