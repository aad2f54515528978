// Rules every Store follows for domains and their MTA-STS policies (RFC 8461), kept apart from
// SQL so that another store (PostgreSQL) applies exactly the same ones: name normalisation,
// settings validation, the policy text, and the policy id bump.
import { domainToASCII } from 'node:url';
import { hostNameProblem, normalizeHost } from '../common/hostname.js';
import { validateMxPattern } from '../mtasts/match.js';
import { formatPolicy, isMode, MAX_AGE_LIMIT, STS_MODES } from '../mtasts/policy.js';
import { stsIdFromDate } from '../mtasts/record.js';
import { checkReportUri } from '../tlsrpt/record.js';
import { type DomainSettings, storeInvalid } from './types.js';

/** The form domains are stored and looked up in: lower case, no trailing dot, A-labels. */
export function domainKey(name: string): string {
  const lower = normalizeHost(name);
  return /[^\x00-\x7f]/.test(lower) ? domainToASCII(lower) || lower : lower;
}

/** A new domain's name, normalised; throws STORE_INVALID saying what is wrong with it. */
export function validDomainName(name: string): string {
  if (typeof name !== 'string') throw storeInvalid('domain: must be a string');
  const key = domainKey(name);
  const why = /[^\x21-\x7e]/.test(key) ? 'not a host name' : hostNameProblem(key);
  if (why) throw storeInvalid(`domain "${name}": ${why}`);
  if (!key.includes('.'))
    throw storeInvalid(`domain "${name}": give the whole mail domain, e.g. example.com`);
  return key;
}

/**
 * Check and normalise a domain's settings: mx patterns lower case without repeats, rua URIs
 * without repeats. Throws STORE_INVALID naming the field.
 */
export function validSettings(s: DomainSettings): DomainSettings {
  if (typeof s !== 'object' || s === null) throw storeInvalid('settings: must be an object');
  if (typeof s.mode !== 'string' || !isMode(s.mode)) {
    throw storeInvalid(`mode: ${describeValue(s.mode)} is not one of ${STS_MODES.join(', ')}`);
  }
  // RFC 8461 §3.2: max_age is at most 31557600
  if (!Number.isSafeInteger(s.maxAge) || s.maxAge < 0 || s.maxAge > MAX_AGE_LIMIT) {
    throw storeInvalid(
      `maxAge: ${describeValue(s.maxAge)} is not a whole number of seconds from 0 to ${MAX_AGE_LIMIT}`,
    );
  }
  const mx = uniqueStrings(s.mx, 'mx').map(normalizeHost);
  for (const pattern of mx) {
    const bad = validateMxPattern(pattern);
    if (bad) throw storeInvalid(`mx: ${bad.message}`);
  }
  // RFC 8461 §3.2: a policy in mode enforce or testing lists the MX hosts it allows.
  if (s.mode !== 'none' && mx.length === 0)
    throw storeInvalid(`mx: mode ${s.mode} needs at least one mx host`);
  const rua = uniqueStrings(s.rua, 'rua');
  // RFC 8460 §3: the _smtp._tls record needs at least one rua URI.
  if (rua.length === 0) throw storeInvalid('rua: give at least one report URI (mailto: or https:)');
  for (const uri of rua) {
    const wrong = checkReportUri(uri);
    if (wrong) throw storeInvalid(`rua: ${wrong}`);
  }
  return { mode: s.mode, maxAge: s.maxAge, mx: [...new Set(mx)], rua };
}

/** The policy file served at https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461 §3.2). */
export function policyTextFor(s: DomainSettings): string {
  return formatPolicy({ mode: s.mode, maxAge: s.maxAge, mx: s.mx, extensions: [] });
}

const ID_TIMESTAMP = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/;

/**
 * The id for a new policy version: the UTC time of `now` as YYYYMMDDHHMMSS (RFC 8461 §3.1), made
 * strictly greater than `previous`. Two changes in one second (or a clock that went back) get the
 * second after `previous`: the format has no finer unit.
 */
export function nextPolicyId(previous: string | undefined, now: Date): string {
  const fresh = stsIdFromDate(now);
  const m = previous === undefined ? null : ID_TIMESTAMP.exec(previous);
  if (!m || fresh > previous!) return fresh;
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  const next = new Date(0);
  next.setUTCFullYear(y!, mo! - 1, d!);
  next.setUTCHours(h!, mi!, s! + 1, 0);
  return stsIdFromDate(next);
}

function uniqueStrings(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    throw storeInvalid(`${field}: must be a list of strings`);
  }
  return [...new Set(value as string[])];
}

/** A value from untrusted input, for a message: never calls its own toString (which may throw). */
export function describeValue(value: unknown): string {
  return typeof value === 'string'
    ? `"${value}"`
    : typeof value === 'number'
      ? String(value)
      : `${/^[aeiou]/.test(typeof value) ? 'an' : 'a'} ${typeof value}`;
}
