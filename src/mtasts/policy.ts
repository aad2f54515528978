// MTA-STS (RFC 8461) policy file: parse and format the text served at
// https://mta-sts.<domain>/.well-known/mta-sts.txt (§3.2).
import { type Problem, problem } from '../common/errors.js';
import { normalizeHost } from '../common/hostname.js';
import { trimWsp } from '../common/txt.js';
import { MtaStsError, type MtaStsErrorCode } from './error.js';
import { validateMxPattern } from './match.js';
import { clip } from './text.js';
import type { StsMode, StsPolicy } from './types.js';

export type { StsMode, StsPolicy };

/** RFC 8461 §3.2: max_age is at most 31557600 seconds (about one year). */
export const MAX_AGE_LIMIT = 31557600;
export const ONE_DAY = 86400;
/** RFC 8461 §3.2 suggests a max_age of weeks; below one week we warn. */
export const ONE_WEEK = 604800;

export const STS_MODES: readonly StsMode[] = ['enforce', 'testing', 'none'];

export interface ParsePolicyOptions {
  /**
   * Refuse what RFC 8461 §3.2 lets a sender tolerate: a repeated version/mode/max_age (otherwise
   * the first wins, with a warning), blank lines and a byte-order mark (otherwise warnings).
   * `policy validate` and `publish` use strict; fetching senders (check, policyd) do not.
   */
  strict?: boolean;
}

const KNOWN_FIELDS = ['version', 'mode', 'max_age', 'mx'] as const;
type SingleField = 'version' | 'mode' | 'max_age';

// RFC 8461 §3.2: sts-policy-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
const EXT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
// RFC 8461 §3.2: sts-policy-ext-value = sts-policy-vchar [*(%x20 / sts-policy-vchar) sts-policy-vchar],
// sts-policy-vchar = %x21-7E / UTF-8 non-ASCII: no control characters, inner spaces only.
const EXT_VALUE = /^[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]*[^\x00-\x20\x7f])?$/u;
// RFC 8461 §3.2: sts-policy-max-age-value = 1*10(DIGIT)
const MAX_AGE_VALUE = /^[0-9]{1,10}$/;

/**
 * Parse a policy file. Returns the policy and its warnings/notes; throws MtaStsError whose
 * `problems` lists every error (and whose `warnings` has the warnings seen on the way).
 */
export function parsePolicy(
  text: string,
  options: ParsePolicyOptions = {},
): { policy: StsPolicy; warnings: Problem[] } {
  const strict = options.strict ?? false;
  const errors: Problem[] = [];
  const warnings: Problem[] = [];
  // Strict mode turns what senders tolerate into errors; otherwise it is a warning.
  const tolerable = (code: MtaStsErrorCode, message: string, where?: string) =>
    (strict ? errors : warnings).push(problem(strict ? 'error' : 'warning', code, message, where));

  let body = text;
  if (body.startsWith('\uFEFF')) {
    tolerable('MTASTS_POLICY_BOM', 'the file starts with a byte-order mark; remove it', 'line 1');
    body = body.slice(1);
  }
  if (/^[ \t\r\n]*$/.test(body)) {
    throw MtaStsError.fromProblems([problem('error', 'MTASTS_POLICY_EMPTY', 'the policy is empty')]);
  }

  // RFC 8461 §3.2: sts-policy-term = LF / CRLF (they may be mixed); the last line may lack one.
  const lines = body.split(/\r?\n/);
  if (lines[lines.length - 1] === '') lines.pop();

  const firstLine: Partial<Record<SingleField, number>> = {};
  let firstFieldLine: number | undefined;
  let version: string | undefined;
  let mode: StsMode | undefined;
  let maxAge: number | undefined;
  let mxLines = 0;
  const mx: string[] = [];
  const mxSeen = new Map<string, number>();
  const extensions: Array<[string, string]> = [];

  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const where = `line ${lineNo}`;
    const err = (code: MtaStsErrorCode, message: string) =>
      errors.push(problem('error', code, message, where));

    if (/^[ \t]*$/.test(raw)) {
      tolerable(
        'MTASTS_POLICY_BLANK_LINE',
        'blank line; RFC 8461 §3.2 has no empty lines between fields',
        where,
      );
      return;
    }
    firstFieldLine ??= lineNo;
    // RFC 8461 §3.2: a field name starts at the beginning of the line (no leading *WSP).
    if (raw.startsWith(' ') || raw.startsWith('\t')) {
      err('MTASTS_POLICY_SYNTAX', 'line starts with white space; a field name must start the line');
    }
    const line = trimWsp(raw);
    const colon = line.indexOf(':');
    if (colon < 0) {
      err('MTASTS_POLICY_SYNTAX', `"${clip(line)}" is not a "name: value" field`);
      return;
    }
    const name = line.slice(0, colon);
    // RFC 8461 §3.2: field-delim = ":" *WSP, and *WSP may follow every field.
    const value = trimWsp(line.slice(colon + 1));

    if (name === 'version' || name === 'mode' || name === 'max_age') {
      const first = firstLine[name];
      if (first !== undefined) {
        // RFC 8461 §3.2: if a field is repeated, senders use the first instance.
        tolerable(
          'MTASTS_POLICY_DUPLICATE',
          strict
            ? `"${name}" appears again (first on line ${first})`
            : `"${name}" appears again (first on line ${first}); senders use the first one`,
          where,
        );
        return;
      }
      firstLine[name] = lineNo;
    }

    switch (name) {
      case 'version':
        version = value;
        // RFC 8461 §3.2: sts-policy-version-value = %s"STSv1" (exactly, case-sensitive).
        if (value !== 'STSv1') err('MTASTS_POLICY_VERSION', `version "${clip(value)}" is not "STSv1"`);
        return;
      case 'mode':
        // RFC 8461 §3.2: sts-policy-mode-value = %s"testing" / %s"enforce" / %s"none".
        if (isMode(value)) mode = value;
        else if (isMode(value.toLowerCase())) {
          err('MTASTS_POLICY_MODE', `mode "${clip(value)}" must be lower case ("${value.toLowerCase()}")`);
        } else err('MTASTS_POLICY_MODE', `mode "${clip(value)}" is not one of enforce, testing, none`);
        return;
      case 'max_age': {
        const problemText = maxAgeProblem(value);
        if (problemText) err('MTASTS_POLICY_MAX_AGE', problemText);
        else maxAge = Number(value);
        return;
      }
      case 'mx': {
        mxLines++;
        const invalid = validateMxPattern(value);
        if (invalid) {
          errors.push({ ...invalid, where });
          return;
        }
        const key = normalizeHost(value);
        const seenOn = mxSeen.get(key);
        if (seenOn !== undefined) {
          warnings.push(
            problem(
              'warning',
              'MTASTS_DUPLICATE_MX',
              `mx "${value}" is already listed on line ${seenOn}`,
              where,
            ),
          );
        } else mxSeen.set(key, lineNo);
        mx.push(value);
        return;
      }
      default:
        parseExtension(name, value, where, errors, warnings, extensions);
    }
  });

  // RFC 8461 §3.2: version, mode and max_age are required once; mx unless mode is "none".
  if (firstLine.version === undefined) {
    errors.push(problem('error', 'MTASTS_POLICY_VERSION', 'no "version: STSv1" field'));
  } else if (version === 'STSv1' && firstLine.version !== firstFieldLine) {
    warnings.push(
      problem(
        'warning',
        'MTASTS_VERSION_NOT_FIRST',
        '"version: STSv1" is not the first line; RFC 8461 allows any order but some senders require it first',
        `line ${firstLine.version}`,
      ),
    );
  }
  if (firstLine.mode === undefined) errors.push(problem('error', 'MTASTS_POLICY_MODE', 'no "mode" field'));
  if (firstLine.max_age === undefined) {
    errors.push(problem('error', 'MTASTS_POLICY_MAX_AGE', 'no "max_age" field'));
  }
  if ((mode === 'enforce' || mode === 'testing') && mxLines === 0) {
    errors.push(problem('error', 'MTASTS_POLICY_MX', `mode ${mode} needs at least one "mx" field`));
  }
  if (maxAge !== undefined) warnings.push(...maxAgeWarnings(maxAge, `line ${firstLine.max_age}`));

  if (errors.length > 0 || mode === undefined || maxAge === undefined) {
    throw MtaStsError.fromProblems(errors, warnings);
  }
  return { policy: { mode, maxAge, mx, extensions }, warnings };
}

/** The policy file text: `version: STSv1` first, LF line ends, a final newline. */
export function formatPolicy(p: StsPolicy): string {
  const lines = [
    'version: STSv1',
    `mode: ${p.mode}`,
    ...p.mx.map((m) => `mx: ${m}`),
    `max_age: ${p.maxAge}`,
    ...p.extensions.map(([name, value]) => `${name}: ${value}`),
  ];
  return `${lines.join('\n')}\n`;
}

export function isMode(value: string): value is StsMode {
  return (STS_MODES as readonly string[]).includes(value);
}

/** Why a max_age value is invalid, or undefined when it is fine. */
export function maxAgeProblem(value: string): string | undefined {
  if (!/^[0-9]+$/.test(value)) return `max_age "${clip(value)}" is not a whole number of seconds`;
  // RFC 8461 §3.2: sts-policy-max-age-value = 1*10(DIGIT)
  if (!MAX_AGE_VALUE.test(value)) return `max_age "${clip(value)}" has more than 10 digits`;
  // RFC 8461 §3.2: max_age is at most 31557600
  if (Number(value) > MAX_AGE_LIMIT) {
    return `max_age ${Number(value)} is above the maximum ${MAX_AGE_LIMIT} (one year)`;
  }
  return undefined;
}

/** Advice on a valid max_age: under a day, or under the recommended weeks (RFC 8461 §3.2). */
export function maxAgeWarnings(maxAge: number, where?: string): Problem[] {
  if (maxAge < ONE_DAY) {
    return [
      problem(
        'warning',
        'MTASTS_MAX_AGE_UNDER_DAY',
        `max_age ${maxAge} is under one day (86400): cached policies expire almost at once, so an ` +
          'attacker who blocks the policy fetch soon removes the protection',
        where,
      ),
    ];
  }
  if (maxAge < ONE_WEEK) {
    return [
      problem(
        'warning',
        'MTASTS_MAX_AGE_UNDER_WEEK',
        `max_age ${maxAge} is under one week (604800); RFC 8461 §3.2 recommends weeks or more once the policy is stable`,
        where,
      ),
    ];
  }
  return [];
}

function parseExtension(
  name: string,
  value: string,
  where: string,
  errors: Problem[],
  warnings: Problem[],
  extensions: Array<[string, string]>,
): void {
  const trimmedName = trimWsp(name);
  if (!EXT_NAME.test(name)) {
    const known = KNOWN_FIELDS.find((f) => f === trimmedName);
    let why: string;
    if (known) why = `white space before ":" is not allowed; write "${known}:"`;
    else if (name === '') why = 'the line has no field name before ":"';
    else if (name.length > 32 && EXT_NAME.test(name.slice(0, 32))) {
      why = `field name "${clip(name)}" is longer than 32 characters`;
    } else {
      why = `"${clip(name)}" is not a valid field name (a letter or digit, then up to 31 letters, digits, "_", "-", ".")`;
    }
    errors.push(problem('error', 'MTASTS_POLICY_EXTENSION', why, where));
    return;
  }
  if (value === '') {
    errors.push(problem('error', 'MTASTS_POLICY_EXTENSION', `field "${name}" has an empty value`, where));
    return;
  }
  if (!EXT_VALUE.test(value)) {
    errors.push(
      problem(
        'error',
        'MTASTS_POLICY_EXTENSION',
        `field "${name}" has a control character in its value`,
        where,
      ),
    );
    return;
  }
  extensions.push([name, value]);
  const meant = likelyTypoOf(name);
  if (meant) {
    warnings.push(
      problem(
        'warning',
        'MTASTS_FIELD_TYPO',
        `unknown field "${name}" is ignored by senders; did you mean "${meant}"?`,
        where,
      ),
    );
  } else {
    warnings.push(
      problem(
        'note',
        'MTASTS_EXTENSION_FIELD',
        `unknown field "${name}" is kept as an extension; senders ignore it (RFC 8461 §3.2)`,
        where,
      ),
    );
  }
}

/** The known field an unknown name probably meant: same letters in another case, or one edit away. */
function likelyTypoOf(name: string): string | undefined {
  const lower = name.toLowerCase();
  return KNOWN_FIELDS.find((f) => f === lower || editDistance(f, lower) <= 1);
}

/** Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}
