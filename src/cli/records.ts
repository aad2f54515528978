// `mxguard records DOMAIN` (every DNS record a domain needs) and `mxguard records validate`:
// options in, src/records out; RecordsError becomes a usage error naming the option.
import type { Command } from 'commander';
import { presetNames } from '../common/presets.js';
import { isMode, type StsMode } from '../mtasts/policy.js';
import { buildRecordSet, type RecordSet, type RecordSetInput } from '../records/build.js';
import { RecordsError, type RecordsField } from '../records/error.js';
import { formatRecords, recordsZone } from '../records/format.js';
import { isRecordType, RECORD_TYPES, type RecordType, validateRecord } from '../records/validate.js';
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
    .option('--zone <zone>', 'the DNS zone the names live in (default: DOMAIN), for relative names')
    .option('--format <format>', `output: ${FORMATS.join(', ')}`, 'bind')
    .option('--json', 'same as --format json')
    .addHelpText(
      'after',
      `
The _mta-sts id is a fresh UTC timestamp each run: publish it whenever the policy changes.

Examples:
  $ mxguard records example.com --mx mail.example.com --rua mailto:tlsrpt@example.com
  $ mxguard records example.com --preset exchange-online --policy-host-target mta-sts.example.github.io
  $ mxguard records example.com --preset google-workspace --spf --dmarc quarantine --format powershell
  $ mxguard records validate --type spf -- 'v=spf1 include:_spf.google.com ~all'`,
    )
    .action((domain: string | undefined, opts: RecordsOptions) => {
      if (!domain) {
        records.help({ error: true });
        return;
      }
      runRecords(domain, opts);
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
}

function runRecords(domain: string, opts: RecordsOptions): void {
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
  const zone = withOptionNames(() => recordsZone(set, opts.zone ?? set.domain));
  if (format === 'json') printJson(set);
  else process.stdout.write(formatRecords(set, format, zone));
  for (const note of set.notes) process.stderr.write(`note: ${note}\n`);
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
