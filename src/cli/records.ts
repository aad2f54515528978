// `mxguard records DOMAIN` (every DNS record a domain needs) and `mxguard records validate`:
// options in, src/records out; RecordsError becomes a usage error naming the option. With
// --dns-server and --tsig-key the TXT records are published by DNS UPDATE (src/dns/update.ts).
import type { Command } from 'commander';
import { formatHostPort } from '../common/host-port.js';
import { presetNames } from '../common/presets.js';
import { DnsUpdateError, type PublishResult, type RRsetReplacement, replaceRRsets } from '../dns/update.js';
import { isMode, type StsMode } from '../mtasts/policy.js';
import { buildRecordSet, type RecordSet, type RecordSetInput } from '../records/build.js';
import { RecordsError, type RecordsField } from '../records/error.js';
import { formatRecords, recordsZone } from '../records/format.js';
import { isRecordType, RECORD_TYPES, type RecordType, validateRecord } from '../records/validate.js';
import { type Publisher, publisherOf } from './tlsa-rollover.js';
import { CliError, collect, formatProblem, intOption, printJson } from './util.js';

const FORMATS = ['bind', 'powershell', 'json'] as const;
type Format = (typeof FORMATS)[number];

export function register(program: Command): void {
  const records = program
    .command('records')
    .enablePositionalOptions() // `records validate --json` belongs to validate, not to records
    .description('print every DNS record a domain needs for MTA-STS, TLS-RPT, SPF and DMARC')
    .argument('[domain]', 'the mail domain (the part after @)')
    .option(
      '--mx <host...>',
      'MX host or pattern the policy allows (repeatable; *.example.com = one label)',
      collect,
    )
    .option('--preset <name>', `provider preset: ${presetNames().join(', ')}`)
    .option('--mode <mode>', 'policy mode: testing, enforce or none', 'testing')
    .option('--max-age <seconds>', 'policy max_age in seconds', '604800')
    .option('--id <id>', 'the _mta-sts id (1-32 letters/digits; default: UTC time YYYYMMDDHHMMSS)')
    .option(
      '--rua <uri...>',
      'TLS-RPT report address(es), mailto: or https: (default mailto:tlsrpt@DOMAIN)',
      collect,
    )
    .option(
      '--policy-host-target <target...>',
      'where mta-sts.DOMAIN points: IPv4/IPv6 addresses (A/AAAA) or one host name (CNAME)',
      collect,
    )
    .option(
      '--spf [mechanisms]',
      'also print SPF; the mechanisms after v=spf1 (default from --preset, then ~all)',
    )
    .option('--dmarc [policy]', 'also print DMARC with this p= (none, quarantine, reject; default none)')
    .option('--dmarc-rua <uri>', 'DMARC aggregate report address (default mailto:dmarc@DOMAIN)')
    .option('--ttl <seconds>', 'TTL of every record', '3600')
    .option(
      '--zone <zone>',
      'the DNS zone the names live in (default: DOMAIN, or found by SOA at --dns-server)',
    )
    .option('--format <format>', `output: ${FORMATS.join(', ')}`, 'bind')
    .option('--json', 'same as --format json')
    .option(
      '--dns-server <ip[:port]>',
      'publish the TXT records by DNS UPDATE (RFC 2136) to this primary server',
    )
    .option('--tsig-key <file>', 'TSIG key for --dns-server: BIND/Knot key file or hmac-sha256:NAME:BASE64')
    .option('--timeout <seconds>', 'with --dns-server: wait this long for each answer', '5')
    .addHelpText(
      'after',
      `
The _mta-sts id is a fresh UTC timestamp each run: publish it whenever the policy changes.

With --dns-server and --tsig-key the TXT records (_mta-sts, _smtp._tls, and with --spf/--dmarc those)
are published instead of printed, each RRset replaced atomically (RFC 2136 prerequisites); at the
apex only the SPF record is replaced. A/AAAA/CNAME for mta-sts.DOMAIN are listed, not published.
Exit 0 published (or already up to date), 1 the server refused or failed the update, 2 could not
run (bad option, unreadable key, server unreachable). See docs/dns-update.md.

Examples:
  $ mxguard records example.com --mx mail.example.com --rua mailto:tlsrpt@example.com
  $ mxguard records example.com --preset exchange-online --policy-host-target mta-sts.example.github.io
  $ mxguard records example.com --preset google-workspace --spf --dmarc quarantine --format powershell
  $ mxguard records example.com --mx mail.example.com --dns-server 192.0.2.53 --tsig-key /etc/mxguard/upd.key
  $ mxguard records validate --type spf -- 'v=spf1 include:_spf.google.com ~all'`,
    )
    .action((domain: string | undefined, opts: RecordsOptions) => {
      if (!domain) {
        records.help({ error: true });
        return;
      }
      return runRecords(domain, opts);
    });

  records
    .command('validate')
    .description('validate one DNS record value; exit 0 valid, 1 invalid, 2 usage error')
    .requiredOption('--type <type>', `record type: ${RECORD_TYPES.join(', ')}`)
    .argument('<text>', 'the record value (put -- before it when it starts with - or spaces)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
A TXT value pasted in zone-file form ("part one" "part two") is unquoted and joined first.

Examples:
  $ mxguard records validate --type mta-sts -- 'v=STSv1; id=20261123072800'
  $ mxguard records validate --type dmarc -- 'v=DMARC1; p=reject; rua=mailto:dmarc@example.com'
  $ mxguard records validate --type tlsa -- '3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6'`,
    )
    .action((text: string, opts: { type: string; json?: boolean }) => {
      if (!isRecordType(opts.type)) {
        throw new CliError(
          2,
          `--type: unknown record type "${opts.type}" (one of ${RECORD_TYPES.join(', ')})`,
        );
      }
      runValidate(opts.type, text, opts.json === true);
    });
}

// ---------------------------------------------------------------------------------------------
// records validate

function runValidate(type: RecordType, text: string, json: boolean): void {
  const result = validateRecord(type, text);
  if (json) {
    printJson(result);
  } else {
    const label = `${type} record`;
    for (const p of [...result.errors, ...result.warnings])
      process.stdout.write(`${formatProblem(label, p)}\n`);
    process.stdout.write(`${label}: ${result.valid ? 'valid' : 'invalid'}\n`);
  }
  if (!result.valid) process.exitCode = 1;
}

// ---------------------------------------------------------------------------------------------
// records DOMAIN

interface RecordsOptions {
  mx?: string[];
  preset?: string;
  mode: string;
  maxAge: string;
  id?: string;
  rua?: string[];
  policyHostTarget?: string[];
  spf?: string | boolean;
  dmarc?: string | boolean;
  dmarcRua?: string;
  ttl: string;
  zone?: string;
  format: string;
  json?: boolean;
  dnsServer?: string;
  tsigKey?: string;
  timeout: string;
}

async function runRecords(domain: string, opts: RecordsOptions): Promise<void> {
  const format = (opts.json ? 'json' : opts.format) as Format;
  if (!FORMATS.includes(format)) throw new CliError(2, `--format: unknown format "${opts.format}"`);
  const set = cliRecordSet(
    {
      domain,
      mode: modeOption(opts.mode),
      maxAge: intOption('--max-age', opts.maxAge),
      ttl: intOption('--ttl', opts.ttl),
      mx: opts.mx,
      preset: opts.preset,
      id: opts.id,
      rua: opts.rua,
      policyHostTargets: opts.policyHostTarget,
      ...(opts.spf === undefined || opts.spf === false ? {} : { spf: opts.spf }),
      ...(opts.dmarc === undefined || opts.dmarc === false
        ? {}
        : { dmarc: { policy: opts.dmarc === true ? 'none' : opts.dmarc, rua: opts.dmarcRua } }),
    },
    new Date(),
  );
  if (opts.dnsServer !== undefined || opts.tsigKey !== undefined) {
    if (format !== 'bind' && format !== 'json')
      throw new CliError(2, '--format: nothing is printed with --dns-server');
    const target = { dnsServer: opts.dnsServer, tsigKey: opts.tsigKey, dataDir: '', timeout: opts.timeout };
    const publisher = (await publisherOf(target))!;
    await publishRecords(
      set,
      { ...publisher, zone: opts.zone },
      intOption('--timeout', opts.timeout),
      opts.json === true,
    );
    for (const note of set.notes) process.stderr.write(`note: ${note}\n`);
    return;
  }
  const zone = withOptionNames(() => recordsZone(set, opts.zone ?? set.domain));
  if (format === 'json') printJson(set);
  else process.stdout.write(formatRecords(set, format, zone));
  for (const note of set.notes) process.stderr.write(`note: ${note}\n`);
}

/**
 * Publish the set's TXT records in one DNS UPDATE. Each TXT RRset is replaced for the records of its
 * version tag ("v=spf1", "v=STSv1"...), so other TXT records at a name (the apex) stay.
 */
async function publishRecords(set: RecordSet, publisher: Publisher, timeoutSeconds: number, json: boolean) {
  const changes: RRsetReplacement[] = set.records
    .filter((r) => r.type === 'TXT')
    .map((r) => {
      const tag = /^v=[A-Za-z0-9]+/.exec(r.value)?.[0];
      return {
        name: r.name,
        type: 'TXT',
        ttl: r.ttl,
        records: [r.value],
        ...(tag ? { replacePrefix: tag } : {}),
      };
    });
  const notPublished = set.records.filter((r) => r.type !== 'TXT');
  const server = formatHostPort(publisher.server);
  let result: PublishResult;
  try {
    result = await replaceRRsets(changes, { ...publisher, timeoutMs: timeoutSeconds * 1000 });
  } catch (err) {
    if (!(err instanceof DnsUpdateError)) throw err;
    const couldNotRun = ['UPDATE_UNREACHABLE', 'UPDATE_TIMEOUT', 'UPDATE_BAD_INPUT'].includes(err.code);
    throw new CliError(
      couldNotRun ? 2 : 1,
      `DNS UPDATE of ${set.domain} at ${server}: ${err.code}: ${err.message}`,
    );
  }
  const changed = new Set(result.changed.map((c) => c.name));
  const unchanged = changes.filter((c) => !changed.has(c.name)).map((c) => ({ name: c.name, type: c.type }));
  if (json) {
    printJson({
      domain: set.domain,
      server,
      zone: result.zone,
      changed: result.changed,
      unchanged,
      notPublished,
      policy: set.policy,
    });
    return;
  }
  const quote = (values: string[]) =>
    values.length === 0 ? 'none' : values.map((v) => JSON.stringify(v)).join(' ');
  const lines = [`DNS UPDATE at ${server}, zone ${result.zone}:`];
  for (const c of result.changed) {
    lines.push(`  changed    ${c.name} ${c.type} ${quote(c.after)} (was: ${quote(c.before)})`);
  }
  for (const u of unchanged) lines.push(`  unchanged  ${u.name} ${u.type}`);
  for (const r of notPublished)
    lines.push(`  not published (do it yourself): ${r.name} ${r.type} ${r.value}`);
  lines.push(`Host this policy at ${set.policy.url} (Content-Type: text/plain):`);
  lines.push(
    ...set.policy.text
      .trimEnd()
      .split('\n')
      .map((l) => `  ${l}`),
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** The command-line option behind each field of the record-set input. */
const OPTION_NAMES: Record<RecordsField, string> = {
  domain: '',
  preset: '--preset',
  mode: '--mode',
  maxAge: '--max-age',
  ttl: '--ttl',
  mx: '--mx',
  id: '--id',
  rua: '--rua',
  policyHostTargets: '--policy-host-target',
  spf: '--spf',
  dmarc: '--dmarc',
  zone: '--zone',
};

/** Run `fn`, turning a RecordsError into a usage error (exit 2) that names the option. */
function withOptionNames<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof RecordsError)) throw err;
    throw new CliError(2, err.describe(OPTION_NAMES[err.field]));
  }
}

/** buildRecordSet for a command: a bad value is a usage error naming its option. */
export function cliRecordSet(input: RecordSetInput, now: Date): RecordSet {
  return withOptionNames(() => buildRecordSet(input, now, (field) => OPTION_NAMES[field]));
}

/** `--mode`: testing, enforce or none (RFC 8461 §3.2). */
export function modeOption(value: string): StsMode {
  if (!isMode(value)) throw new CliError(2, `--mode: must be testing, enforce or none, got "${value}"`);
  return value;
}
