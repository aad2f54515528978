// One DNS record value checked by its own parser: MTA-STS (RFC 8461 §3.1), TLS-RPT (RFC 8460 §3),
// SPF (RFC 7208), DMARC (RFC 7489), DKIM key (RFC 6376 §3.6.1) and TLSA (RFC 6698, RFC 7672).
import { type Problem, ProtocolError, problem } from '../common/errors.js';
import { parseTlsa } from '../dane/tlsa.js';
import { parseDkimKey } from '../dkim/record.js';
import { parseDmarc } from '../dmarc/record.js';
import { parseStsRecord } from '../mtasts/record.js';
import { parseSpf } from '../spf/record.js';
import { parseTlsRptRecord } from '../tlsrpt/record.js';

export const RECORD_TYPES = ['mta-sts', 'tlsrpt', 'spf', 'dmarc', 'dkim', 'tlsa'] as const;
export type RecordType = (typeof RECORD_TYPES)[number];

export interface ValidationResult {
  type: RecordType;
  valid: boolean;
  record?: unknown;
  errors: Problem[];
  warnings: Problem[];
}

export function isRecordType(value: string): value is RecordType {
  return (RECORD_TYPES as readonly string[]).includes(value);
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
