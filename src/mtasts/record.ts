// MTA-STS (RFC 8461) TXT record at _mta-sts.<domain>: parse, format, select (§3.1).
import { type Problem, problem } from '../common/errors.js';
import { endsWithWsp, selectVersionedRecord, trimWsp, type VersionedSelection } from '../common/txt.js';
import { MtaStsError } from './error.js';
import { clip } from './text.js';

export interface StsRecord {
  /** Policy instance id: 1 to 32 letters and digits; senders re-fetch the policy when it changes. */
  id: string;
  /** Extension fields [name, value] in record order. */
  extensions: Array<[string, string]>;
}

const VERSION = 'v=STSv1';
// RFC 8461 §3.1: sts-id = %s"id=" 1*32(ALPHA / DIGIT)
const ID_VALUE = /^[A-Za-z0-9]{1,32}$/;
// RFC 8461 §3.1: sts-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
const EXT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
// RFC 8461 §3.1: sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E): visible ASCII except ";" and "="
const EXT_VALUE = /^[\x21-\x3a\x3c\x3e-\x7e]+$/;

/**
 * Parse an `_mta-sts` TXT record (its character-strings already joined). RFC 8461 §3.1:
 *   sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
 *   sts-field-delim = *WSP ";" *WSP   (WSP before ";" kept, see erratum 6285)
 * Throws MtaStsError listing every error.
 */
export function parseStsRecord(text: string): { record: StsRecord; warnings: Problem[] } {
  const errors: Problem[] = [];
  const warnings: Problem[] = [];
  const fields = text.split(';');
  // WSP may precede the first ";" (sts-field-delim), but nothing may come before "v=STSv1".
  const versionField = trimWsp(fields[0]!);
  if (!text.startsWith(VERSION) || versionField !== VERSION) {
    const why = text.startsWith(VERSION)
      ? `the record starts with "${clip(versionField)}", not "${VERSION}"`
      : `the record does not start with "${VERSION}"`;
    throw MtaStsError.fromProblems([problem('error', 'MTASTS_RECORD_VERSION', why, 'field 1')]);
  }
  // The final [sts-field-delim] may carry trailing WSP; after a field, WSP is outside the ABNF.
  if (endsWithWsp(text) && !trimWsp(text).endsWith(';')) {
    warnings.push(
      problem('warning', 'MTASTS_RECORD_TRAILING_SPACE', 'the record ends with white space; remove it'),
    );
  }

  let id: string | undefined;
  const extensions: Array<[string, string]> = [];
  for (let i = 1; i < fields.length; i++) {
    const where = `field ${i + 1}`;
    const field = trimWsp(fields[i]!);
    if (field === '') {
      // RFC 8461 §3.1: only one optional ";" may end the record.
      if (i !== fields.length - 1) {
        errors.push(problem('error', 'MTASTS_RECORD_SYNTAX', 'empty field (two ";" in a row)', where));
      }
      continue;
    }
    const eq = field.indexOf('=');
    if (eq < 0) {
      errors.push(
        problem('error', 'MTASTS_RECORD_SYNTAX', `"${clip(field)}" is not a name=value field`, where),
      );
      continue;
    }
    const name = field.slice(0, eq);
    const value = field.slice(eq + 1);
    if (name === 'id') {
      if (id !== undefined) {
        errors.push(problem('error', 'MTASTS_RECORD_DUPLICATE_ID', 'id is given more than once', where));
      } else if (!ID_VALUE.test(value)) {
        errors.push(
          problem(
            'error',
            'MTASTS_RECORD_ID',
            value === '' ? 'id is empty' : `id "${clip(value)}" must be 1 to 32 letters and digits`,
            where,
          ),
        );
        id = value;
      } else id = value;
      continue;
    }
    if (name.toLowerCase() === 'id') {
      errors.push(
        problem(
          'error',
          'MTASTS_RECORD_ID',
          `field names are case-sensitive: write "id", not "${name}"`,
          where,
        ),
      );
    } else if (!EXT_NAME.test(name)) {
      errors.push(
        problem('error', 'MTASTS_RECORD_EXTENSION', `"${clip(name)}" is not a valid field name`, where),
      );
    } else if (!EXT_VALUE.test(value)) {
      errors.push(
        problem(
          'error',
          'MTASTS_RECORD_EXTENSION',
          value === ''
            ? `field "${name}" has an empty value`
            : `field "${name}" has a value with a character other than visible ASCII (not ";" or "=")`,
          where,
        ),
      );
    } else {
      extensions.push([name, value]);
      warnings.push(
        problem('note', 'MTASTS_EXTENSION_FIELD', `unknown field "${name}" is kept as an extension`, where),
      );
    }
  }
  if (id === undefined) errors.push(problem('error', 'MTASTS_RECORD_ID', 'no id field ("id=...")'));
  if (errors.length > 0 || id === undefined) throw MtaStsError.fromProblems(errors, warnings);
  return { record: { id, extensions }, warnings };
}

/** `v=STSv1; id=20261123072800` plus `; name=value` for each extension. */
export function formatStsRecord(r: StsRecord): string {
  return [VERSION, `id=${r.id}`, ...r.extensions.map(([name, value]) => `${name}=${value}`)].join('; ');
}

/** A fresh policy id from a time: UTC YYYYMMDDHHMMSS (letters and digits, as RFC 8461 §3.1 asks). */
export function stsIdFromDate(d: Date): string {
  return d
    .toISOString()
    .replace(/[^0-9]/g, '')
    .slice(0, 14);
}

/**
 * RFC 8461 §3.1: of all TXT records at _mta-sts.<domain>, discard those not starting with
 * "v=STSv1;"; anything but exactly one left means the domain has no policy.
 */
export function selectStsRecord(txts: string[]): VersionedSelection {
  return selectVersionedRecord(txts, VERSION);
}
