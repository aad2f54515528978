// `mxguard records DOMAIN` (every DNS record a domain needs) and `mxguard records validate`.
import { isIP } from 'node:net';
import type { Command } from 'commander';
import { type Problem, ProtocolError, problem } from '../common/errors.js';
import { misleadingMicrosoftWildcard, PRESETS, presetNames } from '../common/presets.js';
import { quoteTxt } from '../common/txt.js';
import { parseTlsa } from '../dane/tlsa.js';
import { parseDkimKey } from '../dkim/record.js';
import { parseDmarc } from '../dmarc/record.js';
import { validateMxPattern } from '../mtasts/match.js';
import { formatPolicy, type StsMode } from '../mtasts/policy.js';
import { formatStsRecord, parseStsRecord, stsIdFromDate } from '../mtasts/record.js';
import { parseSpf } from '../spf/record.js';
import { formatTlsRptRecord, parseTlsRptRecord } from '../tlsrpt/record.js';
import { CliError, collect, formatProblem, intOption, printJson } from './util.js';

const RECORD_TYPES = ['mta-sts', 'tlsrpt', 'spf', 'dmarc', 'dkim', 'tlsa'] as const;
type RecordType = (typeof RECORD_TYPES)[number];
const FORMATS = ['bind', 'powershell', 'json'] as const;
type Format = (typeof FORMATS)[number];

/** One DNS record to publish. `name` is absolute without the trailing dot. */
export interface DnsRecord {
  name: string;
  type: 'TXT' | 'CNAME' | 'A' | 'AAAA';
  ttl: number;
  value: string;
  /** What the record is for, shown as a comment. */
  purpose: string;
}

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
      if (!(RECORD_TYPES as readonly string[]).includes(opts.type)) {
        throw new CliError(
          2,
          `--type: unknown record type "${opts.type}" (one of ${RECORD_TYPES.join(', ')})`,
        );
      }
      runValidate(opts.type as RecordType, text, opts.json === true);
    });
}

// ---------------------------------------------------------------------------------------------
// records validate

export interface ValidationResult {
  type: RecordType;
  valid: boolean;
  record?: unknown;
  errors: Problem[];
  warnings: Problem[];
}

export function validateRecord(type: RecordType, text: string): ValidationResult {
  const { value, notes } = unquotePresentation(text);
  try {
    const { record, warnings } = parseByType(type, value);
    return { type, valid: true, record, errors: [], warnings: [...notes, ...warnings] };
  } catch (err) {
    if (err instanceof ProtocolError) {
      const errors = err.problems.filter((p) => p.severity === 'error');
      const others = err.problems.filter((p) => p.severity !== 'error');
      return { type, valid: false, errors, warnings: [...notes, ...others] };
    }
    throw err;
  }
}

function parseByType(type: RecordType, text: string): { record: unknown; warnings: Problem[] } {
  switch (type) {
    case 'mta-sts':
      return parseStsRecord(text);
    case 'tlsrpt':
      return parseTlsRptRecord(text);
    case 'spf':
      return parseSpf(text);
    case 'dmarc':
      return parseDmarc(text);
    case 'dkim':
      return parseDkimKey(text);
    case 'tlsa': {
      const record = parseTlsa(text);
      const warnings: Problem[] = [];
      // RFC 7672 §3.1.3: PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP.
      if (record.usage === 0 || record.usage === 1) {
        warnings.push(
          problem(
            'warning',
            'TLSA_USAGE_UNUSABLE',
            `usage ${record.usage} is not usable for SMTP (RFC 7672 §3.1.3)`,
          ),
        );
      } else if (record.usage > 3) {
        warnings.push(
          problem('warning', 'TLSA_USAGE_UNKNOWN', `usage ${record.usage} is unknown and never matches`),
        );
      }
      if (record.selector > 1) {
        warnings.push(
          problem('warning', 'TLSA_SELECTOR_UNKNOWN', `selector ${record.selector} never matches`),
        );
      }
      if (record.matchingType > 2) {
        warnings.push(
          problem('warning', 'TLSA_MTYPE_UNKNOWN', `matching type ${record.matchingType} never matches`),
        );
      }
      return { record: { ...record, data: record.data.toString('hex') }, warnings };
    }
  }
}

/** `"v=spf1 a" " -all"` (zone-file form) → `v=spf1 a -all`, with a note; anything else unchanged. */
function unquotePresentation(text: string): { value: string; notes: Problem[] } {
  if (!/^\s*"(?:[^"\\]|\\.)*"(?:\s+"(?:[^"\\]|\\.)*")*\s*$/.test(text)) return { value: text, notes: [] };
  const strings = [...text.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1'));
  const note = problem(
    'note',
    'TXT_QUOTED_INPUT',
    `read as zone-file text: ${strings.length} quoted string(s) joined without spaces (RFC 7208 §3.3)`,
  );
  return { value: strings.join(''), notes: [note] };
}

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

export interface RecordSet {
  domain: string;
  policy: { text: string; url: string; mode: StsMode; maxAge: number; mx: string[] };
  records: DnsRecord[];
  notes: string[];
}

const HOSTNAME =
  /^(?=.{1,253}\.?$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.?$/i;

function runRecords(domainArg: string, opts: RecordsOptions): void {
  const format = (opts.json ? 'json' : opts.format) as Format;
  if (!FORMATS.includes(format)) throw new CliError(2, `--format: unknown format "${opts.format}"`);
  const set = buildRecordSet(domainArg, opts, new Date());
  const zone = (opts.zone ?? set.domain).toLowerCase().replace(/\.$/, '');
  if (set.domain !== zone && !set.domain.endsWith(`.${zone}`)) {
    throw new CliError(2, `--zone: ${set.domain} is not inside zone ${zone}`);
  }
  if (format === 'json') printJson(set);
  else process.stdout.write(format === 'bind' ? formatBind(set) : formatPowerShell(set, zone));
  for (const note of set.notes) process.stderr.write(`note: ${note}\n`);
}

/** Build every record the domain needs from the command's options (exported for the server later). */
export function buildRecordSet(domainArg: string, opts: RecordsOptions, now: Date): RecordSet {
  const domain = domainArg.toLowerCase().replace(/\.$/, '');
  if (!HOSTNAME.test(domain)) throw new CliError(2, `${domainArg}: not a valid domain name`);
  const preset = opts.preset === undefined ? undefined : PRESETS[opts.preset];
  if (opts.preset !== undefined && !preset) {
    throw new CliError(2, `--preset: unknown preset "${opts.preset}" (one of ${presetNames().join(', ')})`);
  }
  const notes = [...(preset?.notes ?? [])];
  const mode = opts.mode as StsMode;
  if (!['testing', 'enforce', 'none'].includes(mode)) {
    throw new CliError(2, `--mode: must be testing, enforce or none, got "${opts.mode}"`);
  }
  // RFC 8461 §3.2: max_age is at most 31557600 (about a year).
  const maxAge = intOption('--max-age', opts.maxAge, 0, 31557600);
  const ttl = intOption('--ttl', opts.ttl, 0, 2147483647);

  const mx = [...new Set([...(preset?.mx ?? []), ...(opts.mx ?? [])].map((m) => m.toLowerCase()))];
  if (mx.length === 0 && mode !== 'none')
    throw new CliError(2, '--mx: give at least one MX host (or a --preset)');
  for (const pattern of mx) {
    const bad = validateMxPattern(pattern);
    if (bad) throw new CliError(2, `--mx ${pattern}: ${bad.message}`);
    if (misleadingMicrosoftWildcard(pattern)) {
      throw new CliError(
        2,
        `--mx ${pattern}: a wildcard covers one label only, so it does not match <tenant>.<x>-v1.mx.microsoft; ` +
          'give the exact MX host or *.<x>-v1.mx.microsoft',
      );
    }
  }
  if (mode === 'testing') notes.push('mode testing: switch to enforce once TLS-RPT reports show no failures');

  const id = opts.id ?? stsIdFromDate(now);
  const stsValue = checked('mta-sts', formatStsRecord({ id, extensions: [] }), '--id');

  const rua = opts.rua ?? [`mailto:tlsrpt@${domain}`];
  if (!opts.rua)
    notes.push(`TLS-RPT reports go to mailto:tlsrpt@${domain}: make sure it exists, or set --rua`);
  const tlsRptValue = checked('tlsrpt', formatTlsRptRecord({ rua, extensions: [] }), '--rua');

  const records: DnsRecord[] = [
    {
      name: `_mta-sts.${domain}`,
      type: 'TXT',
      ttl,
      value: stsValue,
      purpose: 'MTA-STS policy id (RFC 8461 §3.1)',
    },
    { name: `_smtp._tls.${domain}`, type: 'TXT', ttl, value: tlsRptValue, purpose: 'TLS-RPT (RFC 8460 §3)' },
  ];
  records.push(...policyHostRecords(domain, opts.policyHostTarget, ttl, notes));

  if (opts.spf !== undefined && opts.spf !== false) {
    const mechanisms = typeof opts.spf === 'string' ? opts.spf : `${preset?.spf ?? 'mx'} ~all`;
    const value = `v=spf1 ${mechanisms.trim()}`;
    records.push({
      name: domain,
      type: 'TXT',
      ttl,
      value: checked('spf', value, '--spf'),
      purpose: 'SPF (RFC 7208)',
    });
  }
  if (opts.dmarc !== undefined && opts.dmarc !== false) {
    const p = typeof opts.dmarc === 'string' ? opts.dmarc : 'none';
    const value = `v=DMARC1; p=${p}; rua=${opts.dmarcRua ?? `mailto:dmarc@${domain}`}`;
    records.push({
      name: `_dmarc.${domain}`,
      type: 'TXT',
      ttl,
      value: checked('dmarc', value, '--dmarc'),
      purpose: 'DMARC (RFC 7489)',
    });
  }

  const policyText = formatPolicy({ mode, maxAge, mx, extensions: [] });
  const url = `https://mta-sts.${domain}/.well-known/mta-sts.txt`;
  return { domain, policy: { text: policyText, url, mode, maxAge, mx }, records, notes };
}

function checked(type: RecordType, value: string, option: string): string {
  const result = validateRecord(type, value);
  if (!result.valid)
    throw new CliError(2, `${option}: ${value}: ${result.errors.map((e) => e.message).join('; ')}`);
  return value;
}

/** The `mta-sts` host record: A/AAAA for addresses, a CNAME for one host name (RFC 1034: CNAME stands alone). */
function policyHostRecords(
  domain: string,
  targets: string[] | undefined,
  ttl: number,
  notes: string[],
): DnsRecord[] {
  const name = `mta-sts.${domain}`;
  const purpose = 'host serving the MTA-STS policy over HTTPS (RFC 8461 §3.3)';
  if (!targets || targets.length === 0) {
    notes.push(
      `${name} needs an A/AAAA or CNAME record to where the policy is hosted (--policy-host-target)`,
    );
    return [];
  }
  const hosts = targets.filter((t) => isIP(t) === 0);
  if (hosts.length > 0) {
    if (targets.length > 1)
      throw new CliError(2, '--policy-host-target: a CNAME target must be the only target');
    const target = hosts[0]!.toLowerCase().replace(/\.$/, '');
    if (!HOSTNAME.test(target))
      throw new CliError(2, `--policy-host-target: ${hosts[0]}: not an IP address or host name`);
    notes.push(`Some validators (reported for Exchange Online) want A/AAAA on ${name} rather than a CNAME`);
    return [{ name, type: 'CNAME', ttl, value: target, purpose }];
  }
  return targets.map((ip) => ({ name, type: isIP(ip) === 4 ? 'A' : 'AAAA', ttl, value: ip, purpose }));
}

export function formatBind(set: RecordSet): string {
  const lines = [
    `; DNS records for ${set.domain} (generated by mxguard)`,
    `; Host this policy at ${set.policy.url} (Content-Type: text/plain):`,
    ...set.policy.text
      .trimEnd()
      .split('\n')
      .map((l) => `;   ${l}`),
    '',
  ];
  for (const r of set.records) {
    const value = r.type === 'TXT' ? quoteTxt(r.value) : r.type === 'CNAME' ? `${r.value}.` : r.value;
    lines.push(`; ${r.purpose}`, `${r.name}.\t${r.ttl}\tIN\t${r.type}\t${value}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The record set in zone-file or Windows DNS form (the zone defaults to the domain). */
export function formatRecords(set: RecordSet, format: 'bind' | 'powershell', zone = set.domain): string {
  return format === 'bind' ? formatBind(set) : formatPowerShell(set, zone);
}

/** Windows DNS Server cmdlets. Single-quoted PowerShell strings: only ' needs escaping (as ''). */
export function formatPowerShell(set: RecordSet, zone: string): string {
  const q = (s: string) => `'${s.replace(/'/g, "''")}'`;
  const lines = [`# DNS records for ${set.domain} (generated by mxguard), zone ${zone}`];
  for (const r of set.records) {
    const relative = r.name === zone ? '@' : r.name.slice(0, -(zone.length + 1));
    const ttl = `-TimeToLive (New-TimeSpan -Seconds ${r.ttl})`;
    const common = `-ZoneName ${q(zone)} -Name ${q(relative)} ${ttl}`;
    lines.push(`# ${r.purpose}`);
    switch (r.type) {
      case 'TXT':
        lines.push(`Add-DnsServerResourceRecord ${common} -Txt -DescriptiveText ${q(r.value)}`);
        break;
      case 'CNAME':
        lines.push(`Add-DnsServerResourceRecordCName ${common} -HostNameAlias ${q(r.value)}`);
        break;
      case 'A':
        lines.push(`Add-DnsServerResourceRecordA ${common} -IPv4Address ${q(r.value)}`);
        break;
      case 'AAAA':
        lines.push(`Add-DnsServerResourceRecordAAAA ${common} -IPv6Address ${q(r.value)}`);
        break;
    }
  }
  return `${lines.join('\n')}\n`;
}
