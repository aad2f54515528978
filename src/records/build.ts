// The DNS records a mail domain must publish for MTA-STS (RFC 8461), TLS-RPT (RFC 8460) and,
// on request, SPF (RFC 7208) and DMARC (RFC 7489), with the policy file they go with. Typed input,
// RecordsError on a bad value; `mxguard records`, `mxguard domain` and the API all call this.
import { isIP } from 'node:net';
import { hostNameProblem, normalizeHost } from '../common/hostname.js';
import { misleadingMicrosoftWildcard, PRESETS, presetNames } from '../common/presets.js';
import { validateMxPattern } from '../mtasts/match.js';
import { formatPolicy, isMode, MAX_AGE_LIMIT, type StsMode } from '../mtasts/policy.js';
import { formatStsRecord, stsIdFromDate } from '../mtasts/record.js';
import { policyUrl } from '../mtasts/url.js';
import { formatTlsRptRecord } from '../tlsrpt/record.js';
import { RecordsError, type RecordsErrorCode, type RecordsField } from './error.js';
import { type RecordType, validateRecord } from './validate.js';

/** One DNS record to publish. `name` is absolute without the trailing dot. */
export interface DnsRecord {
  name: string;
  type: 'TXT' | 'CNAME' | 'A' | 'AAAA';
  ttl: number;
  value: string;
  /** What the record is for, shown as a comment. */
  purpose: string;
}

export interface RecordSet {
  domain: string;
  policy: { text: string; url: string; mode: StsMode; maxAge: number; mx: string[] };
  records: DnsRecord[];
  notes: string[];
}

export interface RecordSetInput {
  /** The mail domain (the part after @); case and one trailing dot are ignored. */
  domain: string;
  mode: StsMode;
  /** Policy max_age in seconds. */
  maxAge: number;
  /** TTL of every record, in seconds. */
  ttl: number;
  /** MX hosts or patterns ("*.example.com") the policy allows, on top of the preset's. */
  mx?: string[];
  /** A provider preset name (src/common/presets.ts): its MX patterns, SPF and notes. */
  preset?: string;
  /** The `_mta-sts` id; default: the UTC time YYYYMMDDHHMMSS. */
  id?: string;
  /** TLS-RPT report URIs; default mailto:tlsrpt@DOMAIN. */
  rua?: string[];
  /** Where mta-sts.DOMAIN points: IP addresses (A/AAAA) or one host name (CNAME). */
  policyHostTargets?: string[];
  /** Add SPF: `true` for the preset's mechanisms (else `mx`) and ~all, or the text after "v=spf1 ". */
  spf?: true | string;
  /** Add DMARC with this p= value and aggregate report address (default mailto:dmarc@DOMAIN). */
  dmarc?: { policy: string; rua?: string };
}

/** RFC 2181 §8: a TTL is an unsigned 31-bit number. */
const TTL_LIMIT = 2147483647;

/** A domain name as the records use it: lower case, no trailing dot; undefined when not a host name. */
export function recordsDomain(name: string): string | undefined {
  const domain = normalizeHost(name);
  return domain.includes('.') && hostNameProblem(domain) === undefined ? domain : undefined;
}

/**
 * Every record the domain needs; throws RecordsError naming the first bad field. `fieldName` says
 * how the caller calls an input field (a CLI option, an API parameter), for the notes that name one.
 */
export function buildRecordSet(
  input: RecordSetInput,
  now: Date,
  fieldName: (field: RecordsField) => string = (field) => field,
): RecordSet {
  const domain = recordsDomain(input.domain);
  if (!domain) fail('RECORDS_DOMAIN', 'domain', `${input.domain}: not a valid domain name`);
  // RFC 8461 §3.3: the policy host mta-sts.<domain> must itself be a host name (at most 253 octets).
  const url = policyUrl(domain);
  if (url === undefined) {
    fail('RECORDS_DOMAIN', 'domain', `${input.domain}: too long for its policy host mta-sts.${domain}`);
  }
  const preset = input.preset === undefined ? undefined : PRESETS[input.preset];
  if (input.preset !== undefined && !preset) {
    fail('RECORDS_PRESET', 'preset', `unknown preset "${input.preset}" (one of ${presetNames().join(', ')})`);
  }
  const notes = [...(preset?.notes ?? [])];
  const mode = input.mode;
  if (!isMode(mode)) fail('RECORDS_MODE', 'mode', `must be testing, enforce or none, got "${mode}"`);
  // RFC 8461 §3.2: max_age is at most 31557600 (about a year).
  const maxAge = wholeNumber('RECORDS_MAX_AGE', 'maxAge', input.maxAge, MAX_AGE_LIMIT);
  const ttl = wholeNumber('RECORDS_TTL', 'ttl', input.ttl, TTL_LIMIT);

  const mx = [...new Set([...(preset?.mx ?? []), ...(input.mx ?? [])].map((m) => m.toLowerCase()))];
  if (mx.length === 0 && mode !== 'none') {
    fail('RECORDS_NO_MX', 'mx', 'give at least one MX host (or a preset)');
  }
  for (const pattern of mx) {
    const bad = validateMxPattern(pattern);
    if (bad) fail('RECORDS_MX', 'mx', bad.message, pattern);
    // RFC 8461 §4.1: a wildcard covers one label only.
    if (misleadingMicrosoftWildcard(pattern)) {
      fail(
        'RECORDS_MX',
        'mx',
        `a wildcard covers one label only, so it does not match <tenant>.<x>-v1.mx.microsoft; ` +
          'give the exact MX host or *.<x>-v1.mx.microsoft',
        pattern,
      );
    }
  }
  if (mode === 'testing') notes.push('mode testing: switch to enforce once TLS-RPT reports show no failures');

  const id = input.id ?? stsIdFromDate(now);
  const stsValue = checked('mta-sts', formatStsRecord({ id, extensions: [] }), 'RECORDS_ID', 'id');

  const rua = input.rua ?? [`mailto:tlsrpt@${domain}`];
  if (!input.rua)
    notes.push(
      `TLS-RPT reports go to mailto:tlsrpt@${domain}: make sure it exists, or set ${fieldName('rua')}`,
    );
  const tlsRptValue = checked('tlsrpt', formatTlsRptRecord({ rua, extensions: [] }), 'RECORDS_RUA', 'rua');

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
  records.push(
    ...policyHostRecords(domain, input.policyHostTargets, ttl, notes, fieldName('policyHostTargets')),
  );

  if (input.spf !== undefined) {
    const mechanisms = typeof input.spf === 'string' ? input.spf : `${preset?.spf ?? 'mx'} ~all`;
    const value = `v=spf1 ${mechanisms.trim()}`;
    records.push({
      name: domain,
      type: 'TXT',
      ttl,
      value: checked('spf', value, 'RECORDS_SPF', 'spf'),
      purpose: 'SPF (RFC 7208)',
    });
  }
  if (input.dmarc !== undefined) {
    const value = `v=DMARC1; p=${input.dmarc.policy}; rua=${input.dmarc.rua ?? `mailto:dmarc@${domain}`}`;
    records.push({
      name: `_dmarc.${domain}`,
      type: 'TXT',
      ttl,
      value: checked('dmarc', value, 'RECORDS_DMARC', 'dmarc'),
      purpose: 'DMARC (RFC 7489)',
    });
  }

  const policyText = formatPolicy({ mode, maxAge, mx, extensions: [] });
  return { domain, policy: { text: policyText, url, mode, maxAge, mx }, records, notes };
}

function fail(code: RecordsErrorCode, field: RecordsField, detail: string, value?: string): never {
  throw new RecordsError(code, field, detail, value);
}

function wholeNumber(code: RecordsErrorCode, field: RecordsField, value: number, max: number): number {
  if (!Number.isSafeInteger(value)) fail(code, field, `expected a whole number, got ${value}`);
  if (value < 0 || value > max) fail(code, field, `must be between 0 and ${max}, got ${value}`);
  return value;
}

/** The record value when its own parser accepts it. */
function checked(type: RecordType, value: string, code: RecordsErrorCode, field: RecordsField): string {
  const result = validateRecord(type, value);
  if (!result.valid) fail(code, field, `${value}: ${result.errors.map((e) => e.message).join('; ')}`);
  return value;
}

/** The `mta-sts` host record: A/AAAA for addresses, a CNAME for one host name (RFC 1034 §3.6.2: CNAME stands alone). */
function policyHostRecords(
  domain: string,
  targets: string[] | undefined,
  ttl: number,
  notes: string[],
  targetsName: string,
): DnsRecord[] {
  const name = `mta-sts.${domain}`;
  const purpose = 'host serving the MTA-STS policy over HTTPS (RFC 8461 §3.3)';
  if (!targets || targets.length === 0) {
    notes.push(`${name} needs an A/AAAA or CNAME record to where the policy is hosted (${targetsName})`);
    return [];
  }
  const hosts = targets.filter((t) => isIP(t) === 0);
  if (hosts.length > 0) {
    if (targets.length > 1)
      fail('RECORDS_POLICY_HOST', 'policyHostTargets', 'a CNAME target must be the only target');
    const target = recordsDomain(hosts[0]!);
    if (!target) fail('RECORDS_POLICY_HOST', 'policyHostTargets', 'not an IP address or host name', hosts[0]);
    notes.push(`Some validators (reported for Exchange Online) want A/AAAA on ${name} rather than a CNAME`);
    return [{ name, type: 'CNAME', ttl, value: target, purpose }];
  }
  return targets.map((ip) => ({ name, type: isIP(ip) === 4 ? 'A' : 'AAAA', ttl, value: ip, purpose }));
}
