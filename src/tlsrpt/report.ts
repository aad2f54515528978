// TLS-RPT aggregate report JSON: RFC 8460 §4 (report schema §4.4, result types §4.3).
//
// Strict about what makes a report at all (organization-name, report-id, date-range, policies,
// each policy's policy-type and summary, counts that are whole numbers), tolerant of what real
// senders get wrong, each recorded as a warning or note: datetimes without a time zone
// (Microsoft), mx-host as a string (the RFC's own example), failure counts that do not add up
// (Mail.ru), missing total-failure-session-count or policy-domain, unknown types.
//
// Every field is capped (REPORT_CAPS; lengths in characters, i.e. UTF-16 code units), so that a
// stored report is bounded whatever a sender puts in it. Three ways, decided per field:
// - Refused (TLSRPT_FIELD_TOO_LONG, TLSRPT_LIST_TOO_LONG): what no conforming sender can send. The
//   identity fields organization-name and report-id (256; a report is stored once per organization +
//   report-id, so they are never cut), policy-type and result-type (64; the RFC's longest is 27),
//   DNS names: policy-domain, mx-host, receiving-mx-hostname (253, RFC 1035 §2.3.4), addresses:
//   sending-mta-ip, receiving-ip (45, the longest IPv6 text), a policy-string entry (64 KiB: a whole
//   MTA-STS policy is at most 64 KiB, RFC 8461 §3.3; a TLSA record in presentation form with a
//   certificate of up to 32 KiB), more than 1000 policy-string or mx-host entries, more than 100
//   policies (a report is about one policy domain, RFC 8460 §5.1 names one per file).
// - Clipped with a warning (TLSRPT_FIELD_CLIPPED), ending in "…": free text a sender copies from
//   elsewhere: contact-info, additional-information, failure-reason-code (1 KiB), receiving-mx-helo
//   (253: whatever the MX said in its greeting). No count depends on them.
// - Merged with a warning (TLSRPT_FAILURE_ROWS_MERGED): failure-details rows after the first 1000 of
//   a policy, or after the first 10,000 of the report, become one row per result-type (types not in
//   RFC 8460 §4.3 go to validation-failure, its catch-all) whose count is the exact sum; the other
//   fields of merged rows are dropped and additional-information says how many rows were merged (a
//   row merged before, in a report read again, goes back into its bucket with that many rows).
// Counts are safe integers, and so is their sum per policy (TLSRPT_BAD_COUNT). At most 100 errors and
// 100 warnings are listed; the rest are counted in one last entry.
import { type Problem, problem, type Severity } from '../common/errors.js';
import { TlsRptError, type TlsRptErrorCode } from './error.js';

// ---- wire types (RFC 8460 §4.4 names) ----

export interface TlsReportWire {
  'organization-name': string;
  'date-range': { 'start-datetime': string; 'end-datetime': string };
  'contact-info'?: string;
  'report-id': string;
  policies: TlsPolicyResultWire[];
}

export interface TlsPolicyResultWire {
  policy: TlsPolicyWire;
  summary: TlsSummaryWire;
  'failure-details'?: TlsFailureWire[];
}

export interface TlsPolicyWire {
  'policy-type': string;
  'policy-string'?: string[];
  'policy-domain'?: string;
  'mx-host'?: string | string[];
}

export interface TlsSummaryWire {
  'total-successful-session-count': number;
  'total-failure-session-count'?: number;
}

export interface TlsFailureWire {
  'result-type': string;
  'sending-mta-ip'?: string;
  'receiving-mx-hostname'?: string;
  'receiving-mx-helo'?: string;
  'receiving-ip'?: string;
  'failed-session-count': number;
  'additional-information'?: string;
  'failure-reason-code'?: string;
}

// ---- internal types ----

export interface TlsReport {
  organization: string;
  reportId: string;
  contactInfo?: string;
  /** UTC, ISO 8601 ("2016-04-01T00:00:00Z"). */
  start: string;
  end: string;
  policies: TlsPolicyResult[];
}

export interface TlsPolicyResult {
  /** 'sts' | 'tlsa' | 'no-policy-found'; an unknown type is kept as sent. */
  type: string;
  /** Empty when the sender left policy-domain out (a warning says so). */
  domain: string;
  policyStrings: string[];
  mxHosts: string[];
  successful: number;
  failed: number;
  failures: TlsFailure[];
}

export interface TlsFailure {
  resultType: string;
  count: number;
  sendingMtaIp?: string;
  receivingMxHostname?: string;
  receivingMxHelo?: string;
  receivingIp?: string;
  additionalInformation?: string;
  failureReasonCode?: string;
}

// RFC 8460 §4.4: policy-type
export const POLICY_TYPES: readonly string[] = ['sts', 'tlsa', 'no-policy-found'];

// RFC 8460 §4.3: result types (§4.3.1 negotiation failures, §4.3.2 policy failures)
export const RESULT_TYPES: readonly string[] = [
  'starttls-not-supported',
  'certificate-host-mismatch',
  'certificate-expired',
  'certificate-not-trusted',
  'validation-failure',
  'tlsa-invalid',
  'dnssec-invalid',
  'dane-required',
  'sts-policy-fetch-error',
  'sts-policy-invalid',
  'sts-webpki-invalid',
];

/** The caps on report content (see the header comment for what happens over each). */
export const REPORT_CAPS = {
  /** organization-name, report-id: refused over. */
  identity: 256,
  /** policy-type, result-type: refused over. */
  typeName: 64,
  /** policy-domain, mx-host entries, receiving-mx-hostname (RFC 1035 §2.3.4): refused over. */
  hostName: 253,
  /** sending-mta-ip, receiving-ip: refused over. */
  address: 45,
  /** One policy-string entry: refused over. */
  policyString: 65_536,
  /** policy-string and mx-host entries per policy: refused over. */
  listEntries: 1000,
  /** contact-info, additional-information, failure-reason-code: clipped over. */
  freeText: 1024,
  /** receiving-mx-helo: clipped over. */
  helo: 253,
  /** Policies per report: refused over. */
  policies: 100,
  /** failure-details rows kept per policy; the rest are merged. */
  rowsPerPolicy: 1000,
  /** failure-details rows kept per report; the rest are merged. */
  rowsPerReport: 10_000,
  /** Errors and warnings listed; the rest are counted. */
  problems: 100,
} as const;

/** The longest string any field keeps: parse.ts refuses longer JSON strings before parsing. */
export const MAX_FIELD_LENGTH = REPORT_CAPS.policyString;

type OverCap = 'refuse' | 'clip';

// Optional string fields of a failure-details entry: wire name, internal name, cap, over the cap.
const FAILURE_STRING_FIELDS = [
  ['sending-mta-ip', 'sendingMtaIp', REPORT_CAPS.address, 'refuse'],
  ['receiving-mx-hostname', 'receivingMxHostname', REPORT_CAPS.hostName, 'refuse'],
  ['receiving-mx-helo', 'receivingMxHelo', REPORT_CAPS.helo, 'clip'],
  ['receiving-ip', 'receivingIp', REPORT_CAPS.address, 'refuse'],
  ['additional-information', 'additionalInformation', REPORT_CAPS.freeText, 'clip'],
  ['failure-reason-code', 'failureReasonCode', REPORT_CAPS.freeText, 'clip'],
] as const;

// RFC 8460 §4.3.1: "validation-failure" is the general failure for reasons not listed.
const CATCH_ALL_RESULT_TYPE = 'validation-failure';

type JsonObject = Record<string, unknown>;

/** Collects errors and warnings while one report is read; lists at most REPORT_CAPS.problems of each. */
class Findings {
  readonly errors: Problem[] = [];
  private readonly listedWarnings: Problem[] = [];
  private moreErrors = 0;
  private moreWarnings = 0;

  error(code: TlsRptErrorCode, message: string, where?: string): undefined {
    if (this.errors.length < REPORT_CAPS.problems) this.errors.push(problem('error', code, message, where));
    else this.moreErrors++;
    return undefined;
  }

  warn(code: string, message: string, where?: string, severity: Severity = 'warning'): void {
    if (this.listedWarnings.length < REPORT_CAPS.problems)
      this.listedWarnings.push(problem(severity, code, message, where));
    else this.moreWarnings++;
  }

  get failed(): boolean {
    return this.errors.length > 0;
  }

  /** Every error listed, then one entry counting those that were not. */
  allErrors(): Problem[] {
    if (this.moreErrors === 0) return this.errors;
    const first = this.errors[0]!;
    return [...this.errors, problem('error', first.code, `${this.moreErrors} more errors not listed`)];
  }

  get warnings(): Problem[] {
    if (this.moreWarnings === 0) return this.listedWarnings;
    const more = `${this.moreWarnings} more warnings not listed`;
    return [...this.listedWarnings, problem('warning', 'TLSRPT_TOO_MANY_WARNINGS', more)];
  }
}

/** Turn parsed report JSON into a TlsReport. Throws TlsRptError listing every error found. */
export function reportFromWire(json: unknown): { report: TlsReport; warnings: Problem[] } {
  const f = new Findings();
  const REQUIRED = ['organization-name', 'report-id', 'date-range', 'policies'];
  if (!isObject(json) || REQUIRED.every((key) => !(key in json))) {
    throw new TlsRptError(
      'TLSRPT_NOT_A_REPORT',
      'not a TLS-RPT report: expected a JSON object with organization-name, report-id, date-range and policies (RFC 8460 §4.4)',
    );
  }
  const organization = requiredString(json, 'organization-name', '', f, REPORT_CAPS.identity);
  const reportId = requiredString(json, 'report-id', '', f, REPORT_CAPS.identity);
  const contactInfo = optionalString(json, 'contact-info', '', f, REPORT_CAPS.freeText, 'clip');
  if (contactInfo === undefined && !('contact-info' in json)) {
    f.warn('TLSRPT_MISSING_CONTACT_INFO', 'no contact-info (RFC 8460 §4.4 asks for one)', 'contact-info');
  }
  const range = readDateRange(json, f);
  const policies: TlsPolicyResult[] = [];
  const wirePolicies = json.policies;
  if (wirePolicies === undefined) f.error('TLSRPT_MISSING_FIELD', 'missing required field', 'policies');
  else if (!Array.isArray(wirePolicies)) f.error('TLSRPT_BAD_FIELD', 'must be an array', 'policies');
  else if (wirePolicies.length > REPORT_CAPS.policies) {
    f.error('TLSRPT_LIST_TOO_LONG', tooMany(wirePolicies.length, REPORT_CAPS.policies), 'policies');
  } else {
    if (wirePolicies.length === 0) f.warn('TLSRPT_NO_POLICIES', 'the report lists no policies', 'policies');
    const rowBudget = { left: REPORT_CAPS.rowsPerReport };
    wirePolicies.forEach((p, i) => {
      const result = readPolicyResult(p, `policies[${i}]`, f, rowBudget);
      if (result) policies.push(result);
    });
  }
  if (f.failed) throw TlsRptError.fromProblems(f.allErrors());

  const report: TlsReport = {
    organization: organization!,
    reportId: reportId!,
    start: range!.start,
    end: range!.end,
    policies,
  };
  if (contactInfo !== undefined) report.contactInfo = contactInfo;
  return { report, warnings: f.warnings };
}

/** The RFC 8460 §4.4 JSON for a report (for storing or re-sending). */
export function reportToWire(report: TlsReport): TlsReportWire {
  const wire: TlsReportWire = {
    'organization-name': report.organization,
    'date-range': { 'start-datetime': report.start, 'end-datetime': report.end },
    'report-id': report.reportId,
    policies: report.policies.map((p) => {
      const policy: TlsPolicyWire = { 'policy-type': p.type };
      if (p.policyStrings.length > 0) policy['policy-string'] = [...p.policyStrings];
      if (p.domain !== '') policy['policy-domain'] = p.domain;
      if (p.mxHosts.length > 0) policy['mx-host'] = [...p.mxHosts];
      const failures = p.failures.map((x) => {
        const wireFailure: TlsFailureWire = { 'result-type': x.resultType, 'failed-session-count': x.count };
        for (const [wireName, name] of FAILURE_STRING_FIELDS) {
          const value = x[name];
          if (value !== undefined) wireFailure[wireName] = value;
        }
        return wireFailure;
      });
      return {
        policy,
        summary: { 'total-successful-session-count': p.successful, 'total-failure-session-count': p.failed },
        'failure-details': failures,
      };
    }),
  };
  if (report.contactInfo !== undefined) wire['contact-info'] = report.contactInfo;
  return wire;
}

function readDateRange(json: JsonObject, f: Findings): { start: string; end: string } | undefined {
  const range = json['date-range'];
  if (range === undefined) return f.error('TLSRPT_MISSING_FIELD', 'missing required field', 'date-range');
  if (!isObject(range))
    return f.error(
      'TLSRPT_BAD_FIELD',
      'must be an object with start-datetime and end-datetime',
      'date-range',
    );
  const start = readDatetime(range, 'start-datetime', f);
  const end = readDatetime(range, 'end-datetime', f);
  if (start === undefined || end === undefined) return undefined;
  if (Date.parse(end) < Date.parse(start)) {
    f.warn(
      'TLSRPT_DATE_RANGE_REVERSED',
      `end-datetime ${end} is before start-datetime ${start}`,
      'date-range',
    );
  }
  return { start, end };
}

// RFC 8460 §4.4: date-time as in RFC 3339 §5.6, e.g. "2016-04-01T00:00:00Z".
const DATETIME = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|z|[+-]\d{2}:\d{2})?$/;

function readDatetime(range: JsonObject, key: string, f: Findings): string | undefined {
  const where = `date-range.${key}`;
  const value = range[key];
  if (value === undefined) return f.error('TLSRPT_MISSING_FIELD', 'missing required field', where);
  if (typeof value !== 'string')
    return f.error('TLSRPT_BAD_DATETIME', 'must be an RFC 3339 date-time string', where);
  const m = DATETIME.exec(value);
  if (!m) return f.error('TLSRPT_BAD_DATETIME', `${describe(value)} is not an RFC 3339 date-time`, where);
  const [, year, month, day, hour, minute, second, fraction = '', zone] = m;
  const fields = [year, month, day, hour, minute, second].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const [y, mo, d, h, mi, s] = fields;
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h > 23 || mi > 59 || s > 60) {
    return f.error('TLSRPT_BAD_DATETIME', `"${value}" is not a real date and time`, where);
  }
  let offsetMinutes = 0;
  if (zone === undefined) {
    f.warn(
      'TLSRPT_DATETIME_NO_TIMEZONE',
      `"${value}" has no time zone (RFC 3339 requires one); read as UTC`,
      where,
    );
  } else if (zone !== 'Z' && zone !== 'z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    offsetMinutes = sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  }
  const ms = fraction === '' ? 0 : Math.floor(Number(`0${fraction}`) * 1000);
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d); // not Date.UTC: it reads years 0-99 as 1900-1999
  date.setUTCHours(h, mi, Math.min(s, 59), ms); // a leap second (":60") counts as :59
  return new Date(date.getTime() - offsetMinutes * 60_000).toISOString().replace('.000Z', 'Z');
}

function daysInMonth(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
}

function readPolicyResult(
  entry: unknown,
  where: string,
  f: Findings,
  rowBudget: { left: number },
): TlsPolicyResult | undefined {
  if (!isObject(entry))
    return f.error('TLSRPT_BAD_FIELD', 'must be an object with policy and summary', where);
  const policy = entry.policy;
  const summary = entry.summary;
  if (policy === undefined) f.error('TLSRPT_MISSING_FIELD', 'missing required field', `${where}.policy`);
  else if (!isObject(policy)) f.error('TLSRPT_BAD_FIELD', 'must be an object', `${where}.policy`);
  if (summary === undefined) f.error('TLSRPT_MISSING_FIELD', 'missing required field', `${where}.summary`);
  else if (!isObject(summary)) f.error('TLSRPT_BAD_FIELD', 'must be an object', `${where}.summary`);
  if (!isObject(policy) || !isObject(summary)) return undefined;

  const policyWhere = `${where}.policy`;
  const type = requiredString(policy, 'policy-type', policyWhere, f, REPORT_CAPS.typeName);
  if (type !== undefined && !POLICY_TYPES.includes(type)) {
    f.warn(
      'TLSRPT_UNKNOWN_POLICY_TYPE',
      `unknown policy-type "${type}" (RFC 8460 §4.4 knows sts, tlsa, no-policy-found); kept as sent`,
      `${policyWhere}.policy-type`,
      'note',
    );
  }
  let domain = optionalString(policy, 'policy-domain', policyWhere, f, REPORT_CAPS.hostName);
  if (domain === undefined && !('policy-domain' in policy)) {
    f.warn(
      'TLSRPT_MISSING_POLICY_DOMAIN',
      'no policy-domain: the report does not say which domain this is about',
      policyWhere,
    );
    domain = '';
  }
  const policyStrings = stringList(policy, 'policy-string', policyWhere, f, REPORT_CAPS.policyString);
  if (policy['policy-string'] === undefined && (type === 'sts' || type === 'tlsa')) {
    f.warn(
      'TLSRPT_MISSING_POLICY_STRING',
      `no policy-string for a ${type} policy (RFC 8460 §4.4)`,
      policyWhere,
    );
  }
  const mxHosts = stringList(policy, 'mx-host', policyWhere, f, REPORT_CAPS.hostName);

  const summaryWhere = `${where}.summary`;
  const successful = requiredCount(summary, 'total-successful-session-count', summaryWhere, f);
  const wireFailed = summary['total-failure-session-count'];
  const failedGiven =
    wireFailed === undefined
      ? undefined
      : count(wireFailed, `${summaryWhere}.total-failure-session-count`, f);

  const details = entry['failure-details'];
  let failures: TlsFailure[] = [];
  let detailSum = 0;
  if (details !== undefined && !Array.isArray(details)) {
    f.error('TLSRPT_BAD_FIELD', 'must be an array', `${where}.failure-details`);
  } else if (details !== undefined) {
    const keep = Math.min(REPORT_CAPS.rowsPerPolicy, rowBudget.left);
    if (details.length > keep) {
      // Said first, so that the warnings about single rows cannot push it out of the list.
      f.warn(
        'TLSRPT_FAILURE_ROWS_MERGED',
        `${details.length - keep} failure-details rows after the first ${keep} merged into one row per ` +
          `result-type (at most ${REPORT_CAPS.rowsPerPolicy} rows per policy and ${REPORT_CAPS.rowsPerReport} ` +
          'per report are kept); the counts are exact',
        `${where}.failure-details`,
      );
    }
    const rows = new FailureRows(keep);
    details.forEach((d, i) => {
      const failure = readFailure(d, `${where}.failure-details[${i}]`, f);
      if (failure) rows.add(failure);
    });
    rowBudget.left -= rows.kept.length;
    failures = rows.result();
    detailSum = rows.sum;
    if (!Number.isSafeInteger(detailSum)) {
      f.error(
        'TLSRPT_BAD_COUNT',
        `failed-session-count values add up to more than ${Number.MAX_SAFE_INTEGER}`,
        `${where}.failure-details`,
      );
    }
  }
  let failed = failedGiven ?? 0;
  if (wireFailed === undefined) {
    failed = detailSum;
    f.warn(
      'TLSRPT_MISSING_FAILURE_TOTAL',
      `no total-failure-session-count; using the sum of failure-details (${detailSum})`,
      summaryWhere,
    );
  } else if (failedGiven !== undefined && details !== undefined && detailSum !== failedGiven) {
    // RFC 8460 §4.4: failure-details break down the failed sessions of the summary.
    f.warn(
      'TLSRPT_COUNT_MISMATCH',
      `failed-session-count values add up to ${detailSum} but total-failure-session-count is ${failedGiven}`,
      where,
    );
  } else if (failedGiven !== undefined && failedGiven > 0 && details === undefined) {
    f.warn(
      'TLSRPT_NO_FAILURE_DETAILS',
      `${failedGiven} failed sessions but no failure-details`,
      where,
      'note',
    );
  }

  if (type === undefined || domain === undefined || successful === undefined) return undefined;
  return { type, domain, policyStrings, mxHosts, successful, failed, failures };
}

/** The failure-details rows of one policy: the first `keep` as sent, the rest merged by result-type. */
class FailureRows {
  readonly kept: TlsFailure[] = [];
  private readonly merged = new Map<string, { resultType: string; count: number; rows: number }>();
  sum = 0;

  constructor(private readonly keep: number) {}

  add(failure: TlsFailure): void {
    this.sum += failure.count;
    if (this.kept.length < this.keep) {
      this.kept.push(failure);
      return;
    }
    // A row that mxguard merged before (a report read, written out and read again) goes back into
    // its bucket with the rows it stands for, so that reading a report twice gives the same report.
    const earlier = MERGED_NOTE.exec(failure.additionalInformation ?? '');
    const rows = earlier ? Number(earlier[1]) : 1;
    const known = RESULT_TYPES.includes(failure.resultType) && !earlier?.[2];
    // Unknown types share one bucket, so that their number cannot grow the merged rows.
    const key = known ? failure.resultType : '';
    const bucket = this.merged.get(key);
    if (bucket) {
      bucket.count += failure.count;
      bucket.rows += rows;
    } else {
      const resultType = known ? failure.resultType : CATCH_ALL_RESULT_TYPE;
      this.merged.set(key, { resultType, count: failure.count, rows });
    }
  }

  result(): TlsFailure[] {
    const merged = [...this.merged].map(([key, b]): TlsFailure => {
      const what = key === '' ? `${MERGED_ROWS} ${OF_UNKNOWN_TYPES}` : MERGED_ROWS;
      return {
        resultType: b.resultType,
        count: b.count,
        additionalInformation: `${b.rows} ${what} merged by mxguard: more than ${this.keep} rows`,
      };
    });
    return [...this.kept, ...merged];
  }
}

const MERGED_ROWS = 'failure-details rows';
const OF_UNKNOWN_TYPES = 'of result types not in RFC 8460 §4.3';
/** The additional-information of a merged row (FailureRows.result): how many rows, which bucket. */
const MERGED_NOTE =
  /^([1-9][0-9]{0,14}) failure-details rows( of result types not in RFC 8460 §4\.3)? merged by mxguard: more than [0-9]+ rows$/;

function readFailure(entry: unknown, where: string, f: Findings): TlsFailure | undefined {
  if (!isObject(entry)) return f.error('TLSRPT_BAD_FIELD', 'must be an object', where);
  const resultType = requiredString(entry, 'result-type', where, f, REPORT_CAPS.typeName);
  if (resultType !== undefined && !RESULT_TYPES.includes(resultType)) {
    f.warn(
      'TLSRPT_UNKNOWN_RESULT_TYPE',
      `unknown result-type "${resultType}" (not in RFC 8460 §4.3); kept as sent`,
      `${where}.result-type`,
      'note',
    );
  }
  const failureCount = requiredCount(entry, 'failed-session-count', where, f);
  if (entry['sending-mta-ip'] === undefined) {
    f.warn('TLSRPT_MISSING_SENDING_MTA_IP', 'no sending-mta-ip (RFC 8460 §4.4 asks for one)', where);
  }
  const failure: TlsFailure = { resultType: resultType ?? '', count: failureCount ?? 0 };
  for (const [wireName, name, cap, overCap] of FAILURE_STRING_FIELDS) {
    const value = optionalString(entry, wireName, where, f, cap, overCap);
    if (value !== undefined) failure[name] = value;
  }
  if (resultType === undefined || failureCount === undefined) return undefined;
  return failure;
}

// ---- small field readers; each records its own error and returns undefined on failure ----

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function path(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

function requiredString(
  obj: JsonObject,
  key: string,
  parent: string,
  f: Findings,
  cap: number,
  overCap: OverCap = 'refuse',
): string | undefined {
  if (obj[key] === undefined)
    return f.error('TLSRPT_MISSING_FIELD', 'missing required field', path(parent, key));
  return optionalString(obj, key, parent, f, cap, overCap);
}

function optionalString(
  obj: JsonObject,
  key: string,
  parent: string,
  f: Findings,
  cap: number,
  overCap: OverCap = 'refuse',
): string | undefined {
  const value = obj[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string')
    return f.error('TLSRPT_BAD_FIELD', `must be a string, got ${describe(value)}`, path(parent, key));
  return capped(value, cap, overCap, path(parent, key), f);
}

/** `value` if it is at most `cap` characters; otherwise refused (an error) or clipped (a warning). */
function capped(
  value: string,
  cap: number,
  overCap: OverCap,
  where: string,
  f: Findings,
): string | undefined {
  if (value.length <= cap) return value;
  const message = `${value.length} characters, more than the limit of ${cap}`;
  if (overCap === 'refuse') return f.error('TLSRPT_FIELD_TOO_LONG', message, where);
  f.warn('TLSRPT_FIELD_CLIPPED', `${message}; clipped`, where);
  // The last character kept must not be the first half of a surrogate pair.
  let end = cap - 1;
  const last = value.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${value.slice(0, end)}…`;
}

function tooMany(length: number, cap: number): string {
  return `${length} entries, more than the limit of ${cap}`;
}

/**
 * A list of strings, each at most `cap` characters, at most REPORT_CAPS.listEntries of them; a single
 * string is accepted as a one-element list (the RFC 8460 example does this for mx-host).
 */
function stringList(obj: JsonObject, key: string, parent: string, f: Findings, cap: number): string[] {
  const value = obj[key];
  const where = path(parent, key);
  if (value === undefined) return [];
  if (typeof value === 'string') {
    f.warn(
      'TLSRPT_STRING_NOT_LIST',
      `${key} is a string, not a list of strings; read as a one-element list`,
      where,
      'note',
    );
    const one = capped(value, cap, 'refuse', where, f);
    return one === undefined ? [] : [one];
  }
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    f.error('TLSRPT_BAD_FIELD', `must be a list of strings, got ${describe(value)}`, where);
    return [];
  }
  if (value.length > REPORT_CAPS.listEntries) {
    f.error('TLSRPT_LIST_TOO_LONG', tooMany(value.length, REPORT_CAPS.listEntries), where);
    return [];
  }
  const list: string[] = [];
  value.forEach((entry: string, i) => {
    const kept = capped(entry, cap, 'refuse', `${where}[${i}]`, f);
    if (kept !== undefined) list.push(kept);
  });
  return list;
}

function requiredCount(obj: JsonObject, key: string, parent: string, f: Findings): number | undefined {
  const value = obj[key];
  if (value === undefined)
    return f.error('TLSRPT_MISSING_FIELD', 'missing required field', path(parent, key));
  return count(value, path(parent, key), f);
}

function count(value: unknown, where: string, f: Findings): number | undefined {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    return f.error(
      'TLSRPT_BAD_COUNT',
      `must be a whole number of sessions (0 or more), got ${describe(value)}`,
      where,
    );
  }
  return value;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `"${value.length > 40 ? `${value.slice(0, 40)}...` : value}"`;
  if (typeof value === 'object') return 'an object';
  return String(value);
}
