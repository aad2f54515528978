// Rules every Store applies to a TLS-RPT report before storing it (RFC 8460 §4.4), kept apart from SQL so
// that the SQLite and PostgreSQL stores refuse exactly the same input: the shape, the report source and
// DKIM verdict, and whole-number session counts whose totals stay exact.
import { DKIM_VERDICTS, REPORT_SOURCES } from './dmarc-rules.js';
import { describeValue } from './domain-rules.js';
import { type NewReport, storeInvalid } from './types.js';

/**
 * Check what the database cannot: a report from a caller that did not come out of the parser
 * must still have the shape and whole-number counts the queries rely on.
 */
export function checkNewReport(input: NewReport): { startMs: number; successful: number; failed: number } {
  if (typeof input !== 'object' || input === null) throw storeInvalid('report: must be an object');
  if (!REPORT_SOURCES.includes(input.source))
    throw storeInvalid(`source: "${String(input.source)}" is not a report source`);
  if (!DKIM_VERDICTS.includes(input.dkim))
    throw storeInvalid(`dkim: "${String(input.dkim)}" is not a DKIM verdict`);
  if (input.submitter !== undefined && typeof input.submitter !== 'string') {
    throw storeInvalid('submitter: must be a string');
  }
  if (!Array.isArray(input.warnings) || input.warnings.some((w) => typeof w !== 'string')) {
    throw storeInvalid('warnings: must be a list of strings');
  }
  const r = input.report;
  if (typeof r !== 'object' || r === null) throw storeInvalid('report: must be an object');
  if (typeof r.organization !== 'string') throw storeInvalid('report.organization: must be a string');
  if (typeof r.reportId !== 'string') throw storeInvalid('report.reportId: must be a string');
  const startMs = typeof r.start === 'string' ? Date.parse(r.start) : Number.NaN;
  if (Number.isNaN(startMs)) throw storeInvalid(`report.start: "${String(r.start)}" is not a timestamp`);
  if (typeof r.end !== 'string' || Number.isNaN(Date.parse(r.end))) {
    throw storeInvalid(`report.end: "${String(r.end)}" is not a timestamp`);
  }
  if (!Array.isArray(r.policies)) throw storeInvalid('report.policies: must be a list');
  let successful = 0;
  let failed = 0;
  r.policies.forEach((p, i) => {
    const where = `report.policies[${i}]`;
    if (typeof p !== 'object' || p === null) throw storeInvalid(`${where}: must be an object`);
    if (typeof p.type !== 'string' || typeof p.domain !== 'string') {
      throw storeInvalid(`${where}: type and domain must be strings`);
    }
    wholeNumber(p.successful, `${where}.successful`);
    wholeNumber(p.failed, `${where}.failed`);
    if (!Array.isArray(p.failures)) throw storeInvalid(`${where}.failures: must be a list`);
    p.failures.forEach((f, j) => {
      if (typeof f !== 'object' || f === null || typeof f.resultType !== 'string') {
        throw storeInvalid(`${where}.failures[${j}]: must be an object with a resultType`);
      }
      wholeNumber(f.count, `${where}.failures[${j}].count`);
    });
    successful = wholeNumber(successful + p.successful, 'report successful total');
    failed = wholeNumber(failed + p.failed, 'report failed total');
  });
  return { startMs, successful, failed };
}

function wholeNumber(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw storeInvalid(`${field}: ${describeValue(value)} is not a whole number of sessions`);
  }
  return value;
}
