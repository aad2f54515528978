// The pre-flight before an `enforce` MTA-STS policy is published (issue 12): from a live check of the
// domain, what enforcing senders would bounce. RFC 8461 §5: under `enforce`, a sender delivers only to an
// MX host that matches a policy `mx` pattern (§4.1) and that offers STARTTLS with a certificate valid
// for its name under PKIX (§4.2); every other MX host is refused. One rule, used by `mxguard domain
// add/set --mode enforce` and by the API's POST/PATCH of a domain (409).
import { mxPatternMatches } from '../mtasts/match.js';
import type { Store } from '../store/types.js';

/** The part of a check result the rule reads (check/run.ts DomainCheck and a stored CheckRun fit). */
export interface CheckedDomain {
  status: string;
  error?: string;
  findings: ReadonlyArray<{
    section: string;
    code: string;
    status: string;
    message: string;
    host?: string;
    fix?: string;
  }>;
}

export type PreflightCode =
  | 'PREFLIGHT_NOT_CHECKED'
  | 'PREFLIGHT_MX_NOT_COVERED'
  | 'PREFLIGHT_STARTTLS'
  | 'PREFLIGHT_PKIX';

/** One reason enforcing senders would bounce mail, with its fix. */
export interface PreflightProblem {
  code: PreflightCode;
  /** The MX host it is about. */
  host?: string;
  message: string;
  fix: string;
}

/** tls-section codes of an MX host without a working STARTTLS (RFC 3207): §4.2 has no TLS to check. */
const STARTTLS_CODES: ReadonlySet<string> = new Set([
  'TLS_NO_STARTTLS',
  'TLS_STARTTLS_REFUSED',
  'TLS_HANDSHAKE_FAILED',
]);
/** tls-section codes of a certificate that fails PKIX validation for the MX host's name (RFC 8461 §4.2). */
const PKIX_CODES: ReadonlySet<string> = new Set([
  'TLS_CERT_UNTRUSTED',
  'TLS_CERT_NAME_MISMATCH',
  'TLS_CERT_EXPIRED',
]);

/** What the tls section adds about the current policy (check/transport.ts); the pre-flight says its own. */
const CONSEQUENCE =
  /; (mail (arrives|to it travels) in plain text|TLSA records are published|the MTA-STS policy is in|no MTA-STS policy in force).*$/;

/**
 * What would bounce if `domain` published an enforce policy with these `mx` patterns, from a live
 * check of the domain. Empty: nothing found that enforcing senders would refuse.
 */
export function preflightProblems(
  domain: string,
  check: CheckedDomain,
  policy: { mx: readonly string[] },
): PreflightProblem[] {
  if (check.status === 'error') {
    return [
      {
        code: 'PREFLIGHT_NOT_CHECKED',
        message: `${domain}: the live check could not run (${check.error ?? 'no reason given'}), so nothing shows that enforcing senders can deliver`,
        fix: 'check that the resolver answers (--resolver) and try again, or publish in testing mode first',
      },
    ];
  }
  const problems: PreflightProblem[] = [];
  // The MX hosts in DNS: every one the mx and tls sections report on.
  const hosts = [
    ...new Set(
      check.findings.filter((f) => (f.section === 'mx' || f.section === 'tls') && f.host).map((f) => f.host!),
    ),
  ];
  for (const host of hosts) {
    if (!policy.mx.some((pattern) => mxPatternMatches(pattern, host))) {
      problems.push({
        code: 'PREFLIGHT_MX_NOT_COVERED',
        host,
        message: `${host} is an MX host of ${domain} in DNS, but no mx pattern of the new policy (${policy.mx.join(', ') || 'none'}) matches it: enforcing senders will not deliver to it (RFC 8461 §4.1)`,
        fix: `add it to the policy: --mx ${host}`,
      });
    }
  }
  for (const f of check.findings) {
    if (f.section !== 'tls' || !f.host) continue;
    const starttls = STARTTLS_CODES.has(f.code);
    if (!starttls && !PKIX_CODES.has(f.code)) continue;
    problems.push({
      code: starttls ? 'PREFLIGHT_STARTTLS' : 'PREFLIGHT_PKIX',
      host: f.host,
      message: `${f.host}: ${f.message.replace(CONSEQUENCE, '')}: enforcing senders will not deliver to it (RFC 8461 §4.2)`,
      fix: f.fix ?? `give ${f.host} STARTTLS with a certificate for its name from a public CA`,
    });
  }
  return problems;
}

/** Before testing turns to enforce, the TLS-RPT reports of this many days are shown (issue 12). */
export const PREFLIGHT_REPORT_DAYS = 14;

/**
 * What TLS-RPT reported for `domain` in the last PREFLIGHT_REPORT_DAYS days (RFC 8460): the session
 * counts and the failures by result type, and one sentence saying it (the failures are what enforcing
 * senders would refuse instead of reporting).
 */
export async function recentTlsRpt(
  store: Pick<Store, 'dailyCounts' | 'failureBreakdown'>,
  domain: string,
  now: Date,
): Promise<{
  successful: number;
  failed: number;
  resultTypes: Array<{ key: string; count: number }>;
  text: string;
}> {
  const day = (d: Date) => d.toISOString().slice(0, 10);
  const since = day(new Date(now.getTime() - (PREFLIGHT_REPORT_DAYS - 1) * 86_400_000));
  const counts = await store.dailyCounts(domain, since, day(now));
  const successful = counts.reduce((sum, c) => sum + c.successful, 0);
  const failed = counts.reduce((sum, c) => sum + c.failed, 0);
  const resultTypes = failed > 0 ? await store.failureBreakdown(domain, 'resultType', since) : [];
  const kinds = resultTypes.map((r) => `${r.count} ${r.key || '(no result type)'}`).join(', ');
  const text =
    `TLS-RPT of the last ${PREFLIGHT_REPORT_DAYS} days: ${successful} sessions succeeded, ${failed} failed` +
    (failed > 0 ? ` (${kinds}): under enforce, those senders would not deliver` : '');
  return { successful, failed, resultTypes, text };
}
