// TLS-RPT aggregate report JSON: RFC 8460 §4 (report schema §4.4, result types §4.3).
//
// Strict about what makes a report at all (organization-name, report-id, date-range, policies,
// each policy's policy-type and summary, counts that are whole numbers), tolerant of what real
// senders get wrong, each recorded as a warning or note: datetimes without a time zone
// (Microsoft), mx-host as a string (the RFC's own example), failure counts that do not add up
// (Mail.ru), missing total-failure-session-count or policy-domain, unknown types.
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

// Optional string fields of a failure-details entry, wire name -> internal name.
const FAILURE_STRING_FIELDS = [
  ['sending-mta-ip', 'sendingMtaIp'],
  ['receiving-mx-hostname', 'receivingMxHostname'],
  ['receiving-mx-helo', 'receivingMxHelo'],
  ['receiving-ip', 'receivingIp'],
  ['additional-information', 'additionalInformation'],
  ['failure-reason-code', 'failureReasonCode'],
] as const;

type JsonObject = Record<string, unknown>;

/** Collects errors and warnings while one report is read. */
class Findings {
  readonly errors: Problem[] = [];
  readonly warnings: Problem[] = [];

  error(code: TlsRptErrorCode, message: string, where?: string): undefined {
    this.errors.push(problem('error', code, message, where));
    return undefined;
  }

  warn(code: string, message: string, where?: string, severity: Severity = 'warning'): void {
    this.warnings.push(problem(severity, code, message, where));
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
  const organization = requiredString(json, 'organization-name', '', f);
  const reportId = requiredString(json, 'report-id', '', f);
  const contactInfo = optionalString(json, 'contact-info', '', f);
  if (contactInfo === undefined && !('contact-info' in json)) {
    f.warn('TLSRPT_MISSING_CONTACT_INFO', 'no contact-info (RFC 8460 §4.4 asks for one)', 'contact-info');
  }
  const range = readDateRange(json, f);
  const policies: TlsPolicyResult[] = [];
  const wirePolicies = json.policies;
  if (wirePolicies === undefined) f.error('TLSRPT_MISSING_FIELD', 'missing required field', 'policies');
  else if (!Array.isArray(wirePolicies)) f.error('TLSRPT_BAD_FIELD', 'must be an array', 'policies');
  else {
    if (wirePolicies.length === 0) f.warn('TLSRPT_NO_POLICIES', 'the report lists no policies', 'policies');
    wirePolicies.forEach((p, i) => {
      const result = readPolicyResult(p, `policies[${i}]`, f);
      if (result) policies.push(result);
    });
  }
  if (f.errors.length > 0) throw TlsRptError.fromProblems(f.errors);

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
  if (!m) return f.error('TLSRPT_BAD_DATETIME', `"${value}" is not an RFC 3339 date-time`, where);
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

function readPolicyResult(entry: unknown, where: string, f: Findings): TlsPolicyResult | undefined {
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
  const type = requiredString(policy, 'policy-type', policyWhere, f);
  if (type !== undefined && !POLICY_TYPES.includes(type)) {
    f.warn(
      'TLSRPT_UNKNOWN_POLICY_TYPE',
      `unknown policy-type "${type}" (RFC 8460 §4.4 knows sts, tlsa, no-policy-found); kept as sent`,
      `${policyWhere}.policy-type`,
      'note',
    );
  }
  let domain = optionalString(policy, 'policy-domain', policyWhere, f);
  if (domain === undefined && !('policy-domain' in policy)) {
    f.warn(
      'TLSRPT_MISSING_POLICY_DOMAIN',
      'no policy-domain: the report does not say which domain this is about',
      policyWhere,
    );
    domain = '';
  }
  const policyStrings = stringList(policy, 'policy-string', policyWhere, f);
  if (policy['policy-string'] === undefined && (type === 'sts' || type === 'tlsa')) {
    f.warn(
      'TLSRPT_MISSING_POLICY_STRING',
      `no policy-string for a ${type} policy (RFC 8460 §4.4)`,
      policyWhere,
    );
  }
  const mxHosts = stringList(policy, 'mx-host', policyWhere, f);

  const summaryWhere = `${where}.summary`;
  const successful = requiredCount(summary, 'total-successful-session-count', summaryWhere, f);
  const wireFailed = summary['total-failure-session-count'];
  const failedGiven =
    wireFailed === undefined
      ? undefined
      : count(wireFailed, `${summaryWhere}.total-failure-session-count`, f);

  const failures: TlsFailure[] = [];
  const details = entry['failure-details'];
  if (details !== undefined && !Array.isArray(details)) {
    f.error('TLSRPT_BAD_FIELD', 'must be an array', `${where}.failure-details`);
  } else if (details !== undefined) {
    details.forEach((d, i) => {
      const failure = readFailure(d, `${where}.failure-details[${i}]`, f);
      if (failure) failures.push(failure);
    });
  }
  const detailSum = failures.reduce((sum, x) => sum + x.count, 0);
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

function readFailure(entry: unknown, where: string, f: Findings): TlsFailure | undefined {
  if (!isObject(entry)) return f.error('TLSRPT_BAD_FIELD', 'must be an object', where);
  const resultType = requiredString(entry, 'result-type', where, f);
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
  if (resultType === undefined || failureCount === undefined) return undefined;
  const failure: TlsFailure = { resultType, count: failureCount };
  for (const [wireName, name] of FAILURE_STRING_FIELDS) {
    const value = optionalString(entry, wireName, where, f);
    if (value !== undefined) failure[name] = value;
  }
  return failure;
}

// ---- small field readers; each records its own error and returns undefined on failure ----

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function path(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

function requiredString(obj: JsonObject, key: string, parent: string, f: Findings): string | undefined {
  if (obj[key] === undefined)
    return f.error('TLSRPT_MISSING_FIELD', 'missing required field', path(parent, key));
  return optionalString(obj, key, parent, f);
}

function optionalString(obj: JsonObject, key: string, parent: string, f: Findings): string | undefined {
  const value = obj[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string')
    return f.error('TLSRPT_BAD_FIELD', `must be a string, got ${describe(value)}`, path(parent, key));
  return value;
}

/** A list of strings; a single string is accepted as a one-element list (the RFC 8460 example does this for mx-host). */
function stringList(obj: JsonObject, key: string, parent: string, f: Findings): string[] {
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
    return [value];
  }
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    f.error('TLSRPT_BAD_FIELD', `must be a list of strings, got ${describe(value)}`, where);
    return [];
  }
  return value as string[];
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
