// What a DANE-and-MTA-STS sender (Postfix with `mxguard policyd`) does with a domain: the daemon's
// socketmap answer from the DANE verdict and the MTA-STS state, the decision table of docs/policyd.md.
// DANE first (RFC 8461 §2): MTA-STS never overrides DANE, and a failed DANE lookup never turns into an
// MTA-STS `secure` answer. `policyd` answers with it and `check` predicts that answer with it. Pure: no
// I/O, no clock.
import type { StsPolicy } from '../mtasts/policy.js';
import type { DaneVerdict } from './dane.js';

/** What a reply tells Postfix; the daemon's metrics count queries by this. */
export type AnswerKind = 'secure' | 'dane' | 'dane-only' | 'notfound' | 'perm';
export const ANSWER_KINDS: readonly AnswerKind[] = ['secure', 'dane', 'dane-only', 'notfound', 'perm'];

/** What to answer when every MX host has usable TLSA records (`--dane-mode`). */
export type DaneMode = 'dane' | 'dane-only';
/** `testing` policies: not enforced (RFC 8461 §5, the default) or enforced like `enforce`. */
export type TestingMode = 'enforce' | 'ignore';

export interface DecideOptions {
  daneMode: DaneMode;
  testingMode: TestingMode;
}

/** The daemon's defaults (`--dane-mode dane-only`, `--testing-mode ignore`). */
export const DEFAULT_DECIDE_OPTIONS: DecideOptions = { daneMode: 'dane-only', testingMode: 'ignore' };

/** What is known of the domain's MTA-STS policy: a usable (unexpired) policy, or why there is none. */
export type StsView = { kind: 'policy'; id: string; policy: StsPolicy } | { kind: 'none'; reason: string };

export interface Answer {
  kind: AnswerKind;
  /** The socketmap reply, e.g. "OK dane-only" or "NOTFOUND ". */
  text: string;
  /** Why, in one or two sentences (for `policyd query`). */
  why: string;
}

/**
 * The answer, or undefined while it depends on something not yet known (the DANE verdict, or the
 * MTA-STS state when DANE does not settle the answer alone).
 */
export function decideAnswer(
  dane: DaneVerdict | undefined,
  sts: StsView | undefined,
  options: DecideOptions,
): Answer | undefined {
  if (dane === undefined) return undefined;
  const daneWhy = `DANE: ${dane.reason}`;
  switch (dane.kind) {
    case 'all-usable':
      // RFC 8461 §2: where DANE is in use, MTA-STS does not apply.
      return ok(options.daneMode, `${daneWhy}; DANE takes precedence over MTA-STS (RFC 8461 §2)`);
    case 'indeterminate':
      return ok(
        'dane-only',
        `${daneWhy}; dane-only lets Postfix look up DANE itself and defer what fails, never falling ` +
          'back to MTA-STS or unauthenticated TLS (RFC 8461 §2, RFC 7672 §2.2)',
      );
    default:
      break;
  }
  if (sts === undefined) return undefined;
  const enforced = enforcedPolicy(sts, options);
  switch (dane.kind) {
    case 'some-usable':
      return enforced
        ? ok(
            'dane-only',
            `${daneWhy}; the MTA-STS policy is enforced, so hosts without TLSA records must not get ` +
              'unauthenticated TLS: dane-only (DANE where published, no delivery elsewhere)',
          )
        : ok('dane', `${daneWhy}; dane: DANE where published, opportunistic TLS elsewhere (RFC 7672 §2.2)`);
    case 'unusable-only':
      return enforced
        ? secure(
            enforced,
            `${daneWhy}; the enforced MTA-STS policy applies (it requires TLS too, and authenticates)`,
          )
        : ok('dane', `${daneWhy}; dane: Postfix requires TLS without authentication (RFC 7672 §2.2)`);
    default:
      break;
  }
  // DANE does not apply: MTA-STS decides (RFC 8461 §5).
  const why = `${daneWhy}. MTA-STS: ${policyWhy(sts, enforced !== undefined)}`;
  return enforced ? secure(enforced, why) : { kind: 'notfound', text: 'NOTFOUND ', why };
}

/** The policy, when it is to be enforced. */
function enforcedPolicy(sts: StsView, options: DecideOptions): StsPolicy | undefined {
  if (sts.kind !== 'policy' || sts.policy.mx.length === 0) return undefined;
  const { mode } = sts.policy;
  return mode === 'enforce' || (mode === 'testing' && options.testingMode === 'enforce')
    ? sts.policy
    : undefined;
}

function policyWhy(sts: StsView, enforced: boolean): string {
  if (sts.kind === 'none') return sts.reason;
  const { mode } = sts.policy;
  const summary = `policy id ${sts.id}, mode ${mode}`;
  if (enforced)
    return mode === 'enforce' ? `${summary}: enforced` : `${summary}: enforced (--testing-mode enforce)`;
  if (mode === 'testing') {
    return `${summary}: not enforced (RFC 8461 §5: testing policies are only reported; see --testing-mode)`;
  }
  return `${summary}: nothing to enforce`;
}

function ok(kind: 'dane' | 'dane-only', why: string): Answer {
  return { kind, text: `OK ${kind}`, why };
}

function secure(policy: StsPolicy, why: string): Answer {
  return { kind: 'secure', text: secureAnswerText(policy.mx), why };
}

/**
 * The `secure` answer for an enforced MTA-STS policy, as postfix-mta-sts-resolver writes it:
 * RFC 8461 §4.1 patterns joined with ":", "*.example.com" written as Postfix's ".example.com"
 * (Postfix then matches names at any depth below example.com, looser than §4.1's one label), and
 * "servername=hostname" so Postfix sends SNI.
 */
export function secureAnswerText(mx: readonly string[]): string {
  const patterns = [...new Set(mx.map((p) => (p.startsWith('*.') ? p.slice(1) : p).toLowerCase()))];
  return `OK secure match=${patterns.join(':')} servername=hostname`;
}
