// What each kind of sending MTA does with mail to a domain today, per MX host: deliver with DANE, with
// MTA-STS, with unauthenticated TLS, in plain text, or refuse (defer or bounce), and why. `check`'s
// "senders" section shows it; `policyd query` uses the dane-mta-sts line to say when its own answer
// will make Postfix defer. The dane-mta-sts sender acts on the daemon's answer (decide.ts), so the
// prediction and the daemon cannot disagree.
//
// Kinds: `dane-mta-sts` (Postfix with mxguard policyd, Exchange Online: DANE first, RFC 8461 §2),
// `mta-sts` (MTA-STS only, as Gmail), `opportunistic` (STARTTLS when offered, no authentication).
import { normalizeHost } from '../common/hostname.js';
import { policyCoversMx } from '../mtasts/match.js';
import type { StsPolicy } from '../mtasts/policy.js';
import { type DaneDiscovery, daneDiscovery, type HostDane } from './dane.js';
import { type Answer, DEFAULT_DECIDE_OPTIONS, decideAnswer, type StsView } from './decide.js';
import type { SendingPath } from './path.js';

export const SENDER_KINDS = ['dane-mta-sts', 'mta-sts', 'opportunistic'] as const;
export type SenderKind = (typeof SENDER_KINDS)[number];

export type Delivery = 'dane' | 'mta-sts' | 'tls' | 'plain' | 'refuse';

/** What a probe showed of one MX host (from `check`; unknown to the daemon, which never connects). */
export interface HostTlsFacts {
  /** STARTTLS was offered and a TLS session made (false: not offered or refused; absent: unknown). */
  starttls?: boolean;
  /** The chain verifies (PKIX) and names the host (RFC 8461 §4.2). */
  pkixValid?: boolean;
  /** A usable TLSA record matches the chain (RFC 7672 §3). */
  daneMatch?: boolean;
}

export interface HostOutcome {
  host: string;
  delivery: Delivery;
  /** Why, in one sentence. */
  why: string;
}

export interface SenderOutcome {
  sender: SenderKind;
  /** Per MX host that counts (hosts without an address are left out: senders skip them). */
  hosts: HostOutcome[];
  /** When no host is left (null MX, NXDOMAIN, failed MX lookup, no address): why nothing is delivered. */
  none?: string;
  /** For dane-mta-sts: the socketmap reply `mxguard policyd` gives (its defaults). */
  answer?: Answer;
}

export interface OutcomeInput {
  /** The DANE view of the domain (daneDiscovery of the path). */
  dane: DaneDiscovery;
  /** The gathered path, when there is one (check): hosts without an address are then left out. */
  path?: SendingPath;
  sts: StsView;
  /** Per MX host name, what a probe showed. */
  tls?: ReadonlyMap<string, HostTlsFacts>;
  /** The daemon's answer when it is known (policyd query, with its own modes); else decided with the defaults. */
  answer?: Answer;
}

/** What every kind of sender does with a gathered path. */
export function senderOutcomes(
  path: SendingPath,
  sts: StsView,
  tls?: ReadonlyMap<string, HostTlsFacts>,
): SenderOutcome[] {
  const input: OutcomeInput = { dane: daneDiscovery(path), path, sts, ...(tls === undefined ? {} : { tls }) };
  return SENDER_KINDS.map((kind) => senderOutcome(kind, input));
}

export function senderOutcome(kind: SenderKind, input: OutcomeInput): SenderOutcome {
  const { dane } = input;
  const facts = (host: string) => input.tls?.get(host) ?? {};
  const hostNames = countedHosts(dane, input.path);
  const outcome: SenderOutcome = { sender: kind, hosts: [] };
  if (kind === 'dane-mta-sts') {
    outcome.answer = input.answer ?? decideAnswer(dane.verdict, input.sts, DEFAULT_DECIDE_OPTIONS);
  }
  const none = noDelivery(dane, hostNames, input.path);
  if (none !== undefined) return { ...outcome, none };
  const statuses = new Map(dane.hosts.map((h) => [h.host, h]));
  for (const host of hostNames) {
    const f = facts(host);
    let result: Omit<HostOutcome, 'host'>;
    if (kind === 'opportunistic') result = opportunistic(f);
    else if (kind === 'mta-sts') result = mtaSts(host, input.sts, f);
    else result = daneMtaSts(host, outcome.answer!, statuses.get(host), input.sts, f);
    outcome.hosts.push({ host, ...result });
  }
  return outcome;
}

/** The MX hosts a sender tries: those with an address (or not known to have none). */
function countedHosts(dane: DaneDiscovery, path: SendingPath | undefined): string[] {
  if (path !== undefined && path.hosts.length > 0) {
    return path.hosts
      .filter((h) => h.mx.form === 'name' && (h.addresses === undefined || h.addresses.all.length > 0))
      .map((h) => h.mx.host);
  }
  const without = new Set(dane.hosts.filter((h) => h.status === 'no-address').map((h) => h.host));
  return dane.mx.hosts.filter((h) => !without.has(h));
}

function noDelivery(dane: DaneDiscovery, hosts: string[], path: SendingPath | undefined): string | undefined {
  switch (dane.mx.status) {
    case 'null':
      return 'the domain publishes a null MX (RFC 7505): mail to it bounces';
    case 'nxdomain':
      return 'the domain does not exist (NXDOMAIN): mail to it bounces';
    case 'failed':
      return `the MX lookup failed (${dane.mx.detail}): mail is deferred until it succeeds`;
    default:
      break;
  }
  if (hosts.length > 0) return undefined;
  const unresolved =
    dane.hosts.some((h) => h.status === 'unresolved') ||
    (path?.hosts.some((h) => (h.addresses?.failures.length ?? 0) > 0) ?? false);
  return unresolved
    ? 'no MX host could be resolved: mail is deferred'
    : 'no MX host has an address: mail to it bounces';
}

function opportunistic(f: HostTlsFacts): Omit<HostOutcome, 'host'> {
  if (f.starttls === false) return { delivery: 'plain', why: 'no STARTTLS: delivers in plain text' };
  if (f.starttls === true) return { delivery: 'tls', why: 'STARTTLS without authenticating the server' };
  return { delivery: 'tls', why: 'STARTTLS when offered, without authenticating the server (not probed)' };
}

/** The MTA-STS policy a sender enforces (RFC 8461 §5: `testing` is only reported). */
function enforced(sts: StsView): StsPolicy | undefined {
  return sts.kind === 'policy' && sts.policy.mode === 'enforce' && sts.policy.mx.length > 0
    ? sts.policy
    : undefined;
}

function mtaSts(host: string, sts: StsView, f: HostTlsFacts): Omit<HostOutcome, 'host'> {
  const policy = enforced(sts);
  if (policy === undefined) {
    const why = sts.kind === 'none' ? sts.reason : `the policy is in ${sts.policy.mode} mode, not enforced`;
    const o = opportunistic(f);
    return { ...o, why: `no MTA-STS policy to enforce (${why}); ${o.why}` };
  }
  return authenticatedByPolicy(host, policy, f);
}

/**
 * RFC 8461 §4.1, §4.2, §5: an enforced policy needs the host listed, STARTTLS and a valid certificate.
 * `postfix`: Postfix matches the `secure match=` list of the daemon's answer, where "*.example.com" is
 * written ".example.com" and covers names at any depth (looser than §4.1's one label).
 */
function authenticatedByPolicy(
  host: string,
  policy: StsPolicy,
  f: HostTlsFacts,
  matching: 'rfc8461' | 'postfix' = 'rfc8461',
): Omit<HostOutcome, 'host'> {
  const listed =
    matching === 'postfix' ? policy.mx.some((p) => postfixMatches(p, host)) : policyCoversMx(policy, host);
  if (!listed) {
    return {
      delivery: 'refuse',
      why: `the enforced MTA-STS policy lists no mx pattern matching ${host} (${policy.mx.join(', ')}): mail is deferred (RFC 8461 §4.1)`,
    };
  }
  if (f.starttls === false) {
    return { delivery: 'refuse', why: 'the enforced MTA-STS policy needs TLS and no STARTTLS is offered' };
  }
  if (f.pkixValid === false) {
    return {
      delivery: 'refuse',
      why: 'the certificate does not verify for this host, which the enforced MTA-STS policy requires (RFC 8461 §4.2)',
    };
  }
  return { delivery: 'mta-sts', why: 'TLS with a certificate valid for the host (enforced MTA-STS policy)' };
}

/** What Postfix does with the daemon's answer for one host (docs/policyd.md; RFC 7672 §2.2). */
function daneMtaSts(
  host: string,
  answer: Answer,
  status: HostDane | undefined,
  sts: StsView,
  f: HostTlsFacts,
): Omit<HostOutcome, 'host'> {
  const usable = status?.status === 'usable';
  switch (answer.kind) {
    case 'dane-only':
      return usable
        ? danePinned(f)
        : {
            delivery: 'refuse',
            why: `dane-only, and ${status === undefined ? 'DANE could not be checked' : status.detail}: Postfix defers mail to this host`,
          };
    case 'dane':
      if (usable) return danePinned(f);
      if (status?.status === 'unusable') {
        return f.starttls === false
          ? { delivery: 'refuse', why: 'secure TLSA records make TLS mandatory and no STARTTLS is offered' }
          : {
              delivery: 'tls',
              why: 'secure TLSA records, none usable: TLS is mandatory but not authenticated',
            };
      }
      return opportunistic(f);
    case 'secure': {
      const policy = sts.kind === 'policy' ? sts.policy : undefined;
      return policy === undefined
        ? { delivery: 'refuse', why: 'no policy behind the secure answer' }
        : authenticatedByPolicy(host, policy, f, 'postfix');
    }
    default:
      return opportunistic(f);
  }
}

function danePinned(f: HostTlsFacts): Omit<HostOutcome, 'host'> {
  if (f.starttls === false) {
    return { delivery: 'refuse', why: 'usable TLSA records make TLS mandatory and no STARTTLS is offered' };
  }
  if (f.daneMatch === false) {
    return {
      delivery: 'refuse',
      why: 'no usable TLSA record matches the certificate: 450 4.7.323 tlsa-invalid, mail is deferred',
    };
  }
  return { delivery: 'dane', why: 'TLS authenticated by DNSSEC-secure TLSA records (RFC 7672)' };
}

/** Postfix's `match=` rule for one policy pattern (see authenticatedByPolicy). */
function postfixMatches(pattern: string, host: string): boolean {
  const p = normalizeHost(pattern);
  const h = normalizeHost(host);
  return p.startsWith('*.') ? h.endsWith(p.slice(1)) : p === h;
}
