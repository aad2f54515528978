// `mxguard fetchers FILE...`: who fetches an MTA-STS policy hosted elsewhere (IIS, nginx, Apache in front
// of GitHub Pages, a Worker...), read from the web server's access logs: per UTC day, per fetcher (the
// User-Agent rules `serve` uses) and per policy host when the log records it, the fetches, their status
// codes and the ones a sender could not use. Plain or gzip files (rotations), found by content.
// Malformed lines are counted and skipped, never fatal; a file that cannot be opened exits 2 after the
// others were read.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import type { Command } from 'commander';
import { MAX_LINE_CHARS, newParserState, parseAccessLine } from '../accesslog/parse.js';
import { FetchTally, type FetchTallyResult } from '../accesslog/tally.js';
import { normalizeHost } from '../common/hostname.js';
import { mxguardCommand } from '../common/invocation.js';
import { boundedLines } from '../common/lines.js';
import { terminalText } from '../common/text.js';
import { policyHost } from '../mtasts/url.js';
import type { Store } from '../store/types.js';
import { type StoreOptions, storeArgument, storeOptions, withStore } from './store-options.js';
import { CliError, formatTable, printJson } from './util.js';

interface FetchersOptions extends StoreOptions {
  json?: boolean;
  domain?: string;
  import?: boolean;
}

/** Where imported fetches go: the serve store, and the newest fetch it held before (nothing at or before it is taken). */
interface ImportTarget {
  store: Store;
  domain: string;
  after: string;
  imported: number;
}

export function register(program: Command): void {
  const command = program
    .command('fetchers')
    .description('Who fetches your MTA-STS policy, from web server access logs (IIS, nginx, Apache; .gz too)')
    .argument('<file...>', 'access log files, plain or gzip-compressed')
    .option('--domain <domain>', 'count only fetches for mta-sts.<domain> (when the log records the host)')
    .option('--json', 'print the counts as JSON')
    .option(
      '--import',
      "also store the domain's fetches in serve's fetch log (needs --domain), for the dashboard",
    )
    .addHelpText(
      'after',
      `
Formats: IIS W3C extended (the #Fields: line is followed), the combined format of nginx and Apache, and
Apache's vhost_combined. A fetch is a GET or HEAD of /.well-known/mta-sts.txt; senders need a 200 and
follow no redirect (RFC 8461 §3.3), so every other status is counted as failed.

--import adds the fetches of --domain to the fetch log of \`mxguard serve\` (the domain must be configured there,
e.g. with \`domain add DOMAIN --watch-only\`): only fetches newer than the newest one stored are taken, so
importing the same or an older file again adds nothing.

Examples:
  mxguard fetchers C:\\inetpub\\logs\\LogFiles\\W3SVC1\\u_ex2307*.log
  mxguard fetchers /var/log/nginx/access.log /var/log/nginx/access.log.*.gz --domain example.com --json
  mxguard fetchers u_ex2307*.log --domain example.com --import --data-dir /var/lib/mxguard
`,
    );
  storeOptions(command).action(async (files: string[], opts: FetchersOptions) => {
    const host = opts.domain === undefined ? undefined : policyHost(opts.domain);
    if (opts.domain !== undefined && host === undefined) {
      throw new CliError(2, `--domain: "${opts.domain}" is not a domain name`);
    }
    if (opts.import && opts.domain === undefined) throw new CliError(2, '--import needs --domain');
    if (opts.import) {
      await withStore(opts, async (store) => {
        const domain = normalizeHost(opts.domain!);
        if ((await store.getDomain(domain)) === undefined) {
          throw new CliError(
            2,
            `${domain} is not configured in this store; add it first: \`${mxguardCommand()} domain add ${domain} --watch-only${storeArgument(opts)}\``,
          );
        }
        const target: ImportTarget = { store, domain, after: await newestFetch(store, domain), imported: 0 };
        await readAll(files, opts, host, target);
        if (!opts.json)
          process.stdout.write(`${target.imported} fetches imported into the fetch log of ${domain}\n`);
      });
      return;
    }
    await readAll(files, opts, host, undefined);
  });
}

/** The latest time in the domain's fetch log ('' when empty); the log is kept in insertion order. */
async function newestFetch(store: Store, domain: string): Promise<string> {
  let newest = '';
  let cursor: string | undefined;
  do {
    const page = await store.listFetches(domain, { limit: 10_000, ...(cursor ? { cursor } : {}) });
    for (const f of page.items) if (f.at > newest) newest = f.at;
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return newest;
}

async function readAll(
  files: string[],
  opts: FetchersOptions,
  host: string | undefined,
  target: ImportTarget | undefined,
): Promise<void> {
  const tally = new FetchTally();
  const unreadable: string[] = [];
  for (const file of files) {
    try {
      await readLog(file, tally, host, target);
    } catch (err) {
      // fs and zlib errors carry a code (ENOENT, Z_DATA_ERROR...); what was read before still counts.
      const code = (err as NodeJS.ErrnoException).code;
      if (typeof code !== 'string') throw err;
      unreadable.push(`${file}: ${code} (${(err as Error).message})`);
    }
  }
  const result = tally.result();
  if (opts.json) printJson({ ...result, unreadable, ...(target ? { imported: target.imported } : {}) });
  else process.stdout.write(humanSummary(result, unreadable));
  if (unreadable.length > 0) process.exitCode = 2;
}

async function readLog(
  file: string,
  tally: FetchTally,
  host: string | undefined,
  target: ImportTarget | undefined,
): Promise<void> {
  const gzip = await isGzip(file);
  const raw = createReadStream(file);
  const stream = gzip ? raw.pipe(createGunzip()) : raw;
  raw.on('error', (err) => stream.destroy(err));
  const state = newParserState();
  for await (const line of boundedLines(stream, MAX_LINE_CHARS)) {
    tally.line();
    const where = `${file}:${line.number}`;
    if (line.oversized) {
      tally.malformed(where, `longer than ${MAX_LINE_CHARS} characters`);
      continue;
    }
    const parsed = parseAccessLine(line.text, state);
    if (parsed.kind === 'malformed') tally.malformed(where, parsed.reason);
    else if (
      parsed.kind === 'entry' &&
      (host === undefined || parsed.entry.host === undefined || parsed.entry.host === host)
    ) {
      const fetch = tally.entry(parsed.entry);
      if (fetch && target !== undefined && parsed.entry.at > target.after) {
        target.store.logFetch({
          at: parsed.entry.at,
          domain: target.domain,
          clientIp: parsed.entry.clientIp,
          userAgent: parsed.entry.userAgent,
        });
        target.imported++;
      }
    }
  }
}

async function isGzip(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await handle.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

function humanSummary(r: FetchTallyResult, unreadable: string[]): string {
  const lines: string[] = [];
  if (r.rows.length === 0) {
    lines.push(`no policy fetches (GET /.well-known/mta-sts.txt) in ${r.requests} requests`);
  } else {
    const rows = r.rows.map((row) => [
      row.day,
      row.fetcher,
      terminalText(row.host ?? '-', 60),
      String(row.fetches),
      Object.entries(row.statuses)
        .map(([status, n]) => `${status}×${n}`)
        .join(' '),
      row.failed > 0 ? `${row.failed} failed` : '',
    ]);
    lines.push(formatTable([['day', 'fetcher', 'host', 'fetches', 'statuses', ''], ...rows]).trimEnd());
    lines.push(
      '',
      `${r.fetches} policy fetches (${r.failed} failed) in ${r.requests} requests, ${r.lines} lines`,
    );
  }
  if (r.droppedRows > 0)
    lines.push(`${r.droppedRows} fetches left out of the table (more than 100,000 rows)`);
  if (r.malformed > 0) {
    lines.push(`${r.malformed} malformed lines skipped, e.g.:`);
    for (const s of r.malformedSamples) lines.push(`  ${terminalText(s.where, 200)}: ${s.reason}`);
  }
  for (const u of unreadable) lines.push(`mxguard: cannot read ${terminalText(u, 300)}`);
  return `${lines.join('\n')}\n`;
}
