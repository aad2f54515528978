// MTA-STS (RFC 8461) MX patterns: syntax of policy `mx` values (§3.2) and matching them
// against MX host names (§4.1).
import { domainToASCII } from 'node:url';
import { type Problem, problem } from '../common/errors.js';
import { hostNameProblem, normalizeHost } from '../common/hostname.js';
import type { StsPolicy } from './types.js';

/**
 * RFC 8461 §4.1: a pattern matches a host when they are equal, or when the pattern is "*.rest"
 * and the host is exactly one label followed by ".rest". Case-insensitive; trailing dots ignored.
 * "*.example.com" matches "mx.example.com" but neither "example.com" nor "a.b.example.com".
 */
export function mxPatternMatches(pattern: string, host: string): boolean {
  const p = normalizeHost(pattern);
  const h = normalizeHost(host);
  if (!p.startsWith('*.')) return p === h;
  const suffix = p.slice(1); // ".rest"
  if (!h.endsWith(suffix)) return false;
  const label = h.slice(0, -suffix.length);
  return label.length > 0 && !label.includes('.');
}

/** RFC 8461 §4.1: does any `mx` pattern of the policy match this MX host? */
export function policyCoversMx(p: StsPolicy, host: string): boolean {
  return p.mx.some((pattern) => mxPatternMatches(pattern, host));
}

/**
 * RFC 8461 §3.2: sts-policy-mx-value = ["*."] Domain, with Domain from RFC 5321 §4.1.2 (ASCII
 * labels of letters, digits and inner hyphens). DNS limits (RFC 1035 §2.3.4) also apply: labels
 * of at most 63 octets, names of at most 253. Returns an error Problem, or undefined when valid.
 */
export function validateMxPattern(pattern: string): Problem | undefined {
  const bad = (why: string) => problem('error', 'MTASTS_POLICY_MX', `mx "${pattern}": ${why}`);
  if (pattern === '') return problem('error', 'MTASTS_POLICY_MX', 'mx value is empty');
  if (/[^\x21-\x7e]/.test(pattern)) {
    if (/\s/.test(pattern)) return bad('contains white space; give one host name per mx line');
    if (/[\x00-\x1f\x7f]/.test(pattern)) return bad('contains a control character');
    const ascii = domainToASCII(pattern);
    const hint = ascii ? ` (write it as "${ascii}")` : '';
    return bad(`not an ASCII host name; use the A-label (xn--) form${hint}`);
  }
  if (pattern.endsWith('.')) return bad('ends with a dot; write policy mx values without the final dot');
  const wildcard = pattern.startsWith('*.');
  const domain = wildcard ? pattern.slice(2) : pattern;
  if (domain.includes('*')) {
    return bad('a wildcard is only allowed as the whole leftmost label, once ("*.example.com")');
  }
  const why = hostNameProblem(domain);
  return why ? bad(why) : undefined;
}
