// Rules every Store follows for DMARC aggregate reports (RFC 7489 Appendix C, RFC 9990), kept apart from
// SQL so that another store applies the same ones: the input is checked field by field before anything
// is written (the parser caps sizes; the store trusts only well-typed input), and the sums a report is
// listed with (messages, DMARC passes, rows) are computed here once.
import type { DmarcReport } from '../dmarc/report.js';
import type { DmarcRowColumns, NewDmarcReport, PreparedDmarcReport } from './dmarc-types.js';
import { describeValue, domainKey } from './domain-rules.js';
import { type DkimVerdict, type ReportSource, storeInvalid } from './types.js';

export const REPORT_SOURCES: readonly ReportSource[] = ['https', 'smtp', 'imap', 'import'];
export const DKIM_VERDICTS: readonly DkimVerdict[] = ['pass', 'fail', 'none', 'unverified'];
const DISPOSITIONS: readonly string[] = ['none', 'quarantine', 'reject'];
const VERDICTS: readonly string[] = ['pass', 'fail'];

/**
 * Check a report before it is stored and prepare it (see PreparedDmarcReport); a report prepared
 * before (in a decoder thread) is checked for its types only. Throws STORE_INVALID naming the field.
 */
export function checkNewDmarcReport(input: NewDmarcReport): PreparedDmarcReport {
  if (typeof input !== 'object' || input === null) throw storeInvalid('report: must be an object');
  if (!REPORT_SOURCES.includes(input.source)) {
    throw storeInvalid(`source: ${describeValue(input.source)} is not a report source`);
  }
  if (!DKIM_VERDICTS.includes(input.dkim))
    throw storeInvalid(`dkim: ${describeValue(input.dkim)} is not a verdict`);
  if (input.submitter !== undefined && typeof input.submitter !== 'string') {
    throw storeInvalid('submitter: must be a string');
  }
  if (!Array.isArray(input.warnings) || input.warnings.some((w) => typeof w !== 'string')) {
    throw storeInvalid('warnings: must be a list of strings');
  }
  const r = input.report;
  if (typeof r === 'object' && r !== null && r.kind === 'dmarc-prepared') return checkPrepared(r);
  return prepareDmarcReport(r);
}

/** Check a DmarcReport field by field and prepare it for a store; throws STORE_INVALID naming the field. */
export function prepareDmarcReport(r: DmarcReport): PreparedDmarcReport {
  if (typeof r !== 'object' || r === null || r.kind !== 'dmarc')
    throw storeInvalid('report: not a DMARC report');
  for (const field of ['organization', 'reportId', 'domain'] as const) {
    if (typeof r[field] !== 'string') throw storeInvalid(`report.${field}: must be a string`);
  }
  const beginMs = typeof r.begin === 'string' ? Date.parse(r.begin) : Number.NaN;
  if (Number.isNaN(beginMs)) throw storeInvalid(`report.begin: ${describeValue(r.begin)} is not a timestamp`);
  if (typeof r.end !== 'string' || Number.isNaN(Date.parse(r.end))) {
    throw storeInvalid(`report.end: ${describeValue(r.end)} is not a timestamp`);
  }
  if (typeof r.policyPublished !== 'object' || r.policyPublished === null) {
    throw storeInvalid('report.policyPublished: must be an object');
  }
  if (!Array.isArray(r.records)) throw storeInvalid('report.records: must be a list');
  let messages = 0;
  let passed = 0;
  const rows: DmarcRowColumns = {
    sourceIp: [],
    count: [],
    disposition: [],
    dkim: [],
    spf: [],
    headerFrom: [],
  };
  r.records.forEach((row, i) => {
    const where = `report.records[${i}]`;
    if (typeof row !== 'object' || row === null) throw storeInvalid(`${where}: must be an object`);
    if (typeof row.sourceIp !== 'string') throw storeInvalid(`${where}.sourceIp: must be a string`);
    if (typeof row.headerFrom !== 'string') throw storeInvalid(`${where}.headerFrom: must be a string`);
    if (!Number.isSafeInteger(row.count) || row.count < 0) {
      throw storeInvalid(`${where}.count: ${describeValue(row.count)} is not a whole number of messages`);
    }
    if (!DISPOSITIONS.includes(row.disposition)) {
      throw storeInvalid(
        `${where}.disposition: ${describeValue(row.disposition)} is not none, quarantine or reject`,
      );
    }
    for (const field of ['dkim', 'spf'] as const) {
      if (!VERDICTS.includes(row[field]))
        throw storeInvalid(`${where}.${field}: ${describeValue(row[field])} is not pass or fail`);
    }
    for (const field of ['dkimResults', 'spfResults', 'reasons'] as const) {
      if (!Array.isArray(row[field])) throw storeInvalid(`${where}.${field}: must be a list`);
    }
    messages += row.count;
    if (row.dkim === 'pass' || row.spf === 'pass') passed += row.count;
    if (!Number.isSafeInteger(messages)) throw storeInvalid('report.records: the counts add up past 2^53');
    rows.sourceIp.push(row.sourceIp);
    rows.count.push(row.count);
    rows.disposition.push(row.disposition);
    rows.dkim.push(row.dkim);
    rows.spf.push(row.spf);
    rows.headerFrom.push(row.headerFrom === '' ? '' : domainKey(row.headerFrom));
  });
  return {
    kind: 'dmarc-prepared',
    organization: r.organization,
    reportId: r.reportId,
    domain: r.domain === '' ? '' : domainKey(r.domain),
    begin: r.begin,
    end: r.end,
    beginMs,
    beginDay: new Date(beginMs).toISOString().slice(0, 10),
    messages,
    passed,
    rows,
    json: JSON.stringify(r),
  };
}

/**
 * A report prepareDmarcReport made, perhaps in another thread: checked for its types (strings, whole
 * numbers, the enumerated values, columns of one length), not prepared again.
 */
function checkPrepared(p: PreparedDmarcReport): PreparedDmarcReport {
  for (const field of ['organization', 'reportId', 'domain', 'begin', 'end', 'beginDay', 'json'] as const) {
    if (typeof p[field] !== 'string') throw storeInvalid(`report.${field}: must be a string`);
  }
  for (const field of ['beginMs', 'messages', 'passed'] as const) {
    if (!Number.isSafeInteger(p[field])) throw storeInvalid(`report.${field}: must be a whole number`);
  }
  const rows = p.rows;
  if (typeof rows !== 'object' || rows === null) throw storeInvalid('report.rows: must be an object');
  const length = Array.isArray(rows.sourceIp) ? rows.sourceIp.length : -1;
  const columns = ['sourceIp', 'count', 'disposition', 'dkim', 'spf', 'headerFrom'] as const;
  for (const column of columns) {
    if (!Array.isArray(rows[column]) || rows[column].length !== length) {
      throw storeInvalid(`report.rows.${column}: must be a list as long as report.rows.sourceIp`);
    }
  }
  for (let i = 0; i < length; i++) {
    const count = rows.count[i]!;
    if (
      typeof rows.sourceIp[i] !== 'string' ||
      typeof rows.headerFrom[i] !== 'string' ||
      !Number.isSafeInteger(count) ||
      count < 0 ||
      !DISPOSITIONS.includes(rows.disposition[i]!) ||
      !VERDICTS.includes(rows.dkim[i]!) ||
      !VERDICTS.includes(rows.spf[i]!)
    ) {
      throw storeInvalid(`report.rows[${i}]: not a row prepareDmarcReport makes`);
    }
  }
  return p;
}
