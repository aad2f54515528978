// The domain audit's data: findings, the environment the checks run in, and what sections share.
// Verdicts are data, not exceptions (ARCHITECTURE.md); nothing here prints.
import type { Preset } from '../common/presets.js';
import type { Resolver } from '../dns/resolver.js';
import type { PolicyFetchAndParseResult } from '../fetch/policy.js';
import type { StsPolicy } from '../mtasts/policy.js';
import type { TlsaView } from '../sender/host.js';
import type { SenderKind } from '../sender/outcome.js';
import type { FetcherSettings } from '../sender/sts.js';
import type { SmtpProbeOptions, SmtpProbeResult } from '../smtp/probe.js';

export const SECTIONS = [
  'mx',
  'mtasts',
  'tls',
  'dane',
  'senders',
  'tlsrpt',
  'spf',
  'dmarc',
  'dkim',
  'provider',
] as const;
export type Section = (typeof SECTIONS)[number];

export const STATUSES = ['pass', 'warn', 'fail', 'skip', 'info'] as const;
export type Status = (typeof STATUSES)[number];

/** One verdict. `code` is stable (documented in README); `fix` is the concrete record or file to publish. */
export interface Finding {
  section: Section;
  status: Status;
  code: string;
  message: string;
  /** The MX host (or policy host) the finding is about, when it is about one. */
  host?: string;
  fix?: string;
  /** `senders` section: the kind of sender the finding is about. */
  sender?: SenderKind;
  /** `senders` section, `dane-mta-sts`: the socketmap reply `mxguard policyd` gives for the domain. */
  answer?: string;
  /**
   * The code of the finding this one follows from (a bogus DNSSEC answer for the zone): such a finding is
   * `skip`, without a fix of its own; the cause carries the fix.
   */
  cause?: string;
}

/** The JSON schema of `mxguard check --json` (documented in README; stable). */
export interface DomainReport {
  domain: string;
  /** fail if any finding fails, warn if any warns, else pass; `error` when the check could not run. */
  status: 'pass' | 'warn' | 'fail' | 'error';
  findings: Finding[];
  /** Why the check could not run (resolver unreachable...), with status `error` (exit 2). */
  error?: string;
}

/** Everything the checks need from the outside world, handed in (ARCHITECTURE.md: I/O is passed in). */
export interface CheckEnvironment {
  resolver: Resolver;
  /** The resolver validates DNSSEC (root DNSKEY came back with AD); decided once per run. */
  dnssecValidating: boolean;
  /** Extra trust anchors (PEM) on top of the system ones, for HTTPS and SMTP. */
  ca: string[];
  /** Connect to private, loopback and link-local addresses found in DNS (otherwise refused). */
  allowPrivate: boolean;
  /** Time limit for each network step (policy fetch total, each SMTP step). */
  timeoutMs: number;
  /** Real ports by default; tests point them at the lab. */
  smtpPort: number;
  httpsPort: number;
  /** DKIM selectors to look up (from --dkim-selector and the preset). */
  dkimSelectors: string[];
  /** `--preset`: the provider the domain's mail is hosted at; adds the `provider` section (provider.ts). */
  preset?: Preset;
  /** What an earlier run saw of this domain's policy, for the "id unchanged" finding. */
  previousPolicy?: { id: string; body: string };
  /**
   * A certificate (MX or policy host) expiring within this many days is a warning (default 14;
   * `serve`'s monitor passes monitor.expiryDays).
   */
  expiryWarningDays?: number;
  now: Date;
  /**
   * When to make the second probe offering only TLS 1.0/1.1 (RFC 8996): `always` (default: also learns whether
   * a working server still accepts old versions) or `on-failure` (only to tell an old-TLS-only server from a
   * broken one; bulk runs, so that each MX address costs one connection).
   */
  oldTlsProbe?: 'always' | 'on-failure';
  /** The SMTP probe and policy fetch to use; a bulk run shares one per address / policy host (run-cache.ts). */
  probeSmtp?: (options: SmtpProbeOptions) => Promise<SmtpProbeResult>;
  fetchPolicy?: (domain: string, settings: FetcherSettings) => Promise<PolicyFetchAndParseResult>;
}

/** An MX host of the domain with its addresses, as the mx section found them. */
export interface MxHost {
  host: string;
  preference: number;
  addresses: string[];
  /** The A/AAAA answers were DNSSEC-secure (AD). */
  addressesSecure: boolean;
  /** Where the host name's CNAME chain ends, when it is an alias. */
  cnameTarget?: string;
  /** The TLSA lookup of the sending path (RFC 7672 §2.2.2 CNAME rule applied), when the host has an address. */
  tlsa?: TlsaView;
}

/** What the MTA-STS section learned, shared with the tls section (an enforced policy makes TLS failures fatal). */
export interface MtaStsState {
  policy?: StsPolicy;
  /** The TXT id, when exactly one valid `_mta-sts` record exists. */
  id?: string;
  /** The policy body as fetched, for the next run's "id unchanged" check. */
  body?: string;
}

export function finding(
  section: Section,
  status: Status,
  code: string,
  message: string,
  extra: { host?: string; fix?: string } = {},
): Finding {
  return { section, status, code, message, ...extra };
}

export function worstStatus(findings: readonly Finding[]): 'pass' | 'warn' | 'fail' {
  if (findings.some((f) => f.status === 'fail')) return 'fail';
  if (findings.some((f) => f.status === 'warn')) return 'warn';
  return 'pass';
}
