// The `tls` and `dane` sections of `mxguard check`: STARTTLS on every address of every MX host (RFC 3207),
// the certificate as MTA-STS senders judge it (RFC 8461 §4.2: a PKIX chain valid for the MX name), and DANE
// as RFC 7672 senders judge it (DNSSEC-secure TLSA RRset at _25._tcp.<mx host>, usable DANE-TA/DANE-EE
// records, the live chain matching, readiness for the next key change, RFC 7671 §8.1).
//
// gatherTransport does the I/O (probes through probeSmtp, a few at a time; the TLSA RRsets come from the shared
// sending path, src/sender/host.ts); transportFindings is pure, because the verdicts depend on the MTA-STS
// policy the mtasts section fetches meanwhile.
//
// An MX host that is an alias (the mx section warns: MX_CNAME) has its TLSA records where RFC 7672 §2.2.2 puts
// them (the sending path looks at the expanded name first); the certificate's name is then checked against
// both names (§3.2.2).
import type { X509Certificate } from 'node:crypto';
import net from 'node:net';
import { mapLimit } from '../common/limit.js';
import { associationData, describeCertificate, validityOf } from '../dane/cert.js';
import { formatTlsa, generateTlsa, type TlsaRecord } from '../dane/tlsa.js';
import { type DaneVerdict, isUsableForSmtp, rolloverReady, verifyDane } from '../dane/verify.js';
import type { StsPolicy } from '../mtasts/policy.js';
import type { TlsaView } from '../sender/host.js';
import type { HostTlsFacts } from '../sender/outcome.js';
import { daysUntilExpiry } from '../smtp/pkix.js';
import { probeSmtp, type SmtpProbeFailure, type SmtpProbeResult, type SmtpTlsInfo } from '../smtp/probe.js';
import { dnssecBogusFix, probeable } from './mx.js';
import {
  type CheckEnvironment,
  type Finding,
  finding,
  type MxHost,
  type Section,
  type Status,
} from './types.js';

/** The TLSA lookup of a host, as the shared sending path made it. */
export type TlsaLookup = TlsaView;

export interface HostTransport {
  mx: MxHost;
  tlsa: TlsaLookup;
  /** One probe per address probed, in the order of `mx.addresses`. */
  probes: SmtpProbeResult[];
  /**
   * Per probe, a second one offering only TLS 1.0/1.1 (RFC 8996), made when the first got a TLS session (does
   * the server still accept old versions?) or failed its handshake (old versions only, or broken?).
   */
  oldTls?: Array<SmtpProbeResult | undefined>;
}

export interface TransportData {
  hosts: HostTransport[];
}

/** SMTP probes under way at once, over all hosts of a domain. */
export const PROBE_CONCURRENCY = 4;
/** A certificate that expires sooner than this many days is a warning (unless env.expiryWarningDays says). */
export const EXPIRY_WARNING_DAYS = 14;

const DANE_TA = 2;
const DANE_EE = 3;

// ---------------------------------------------------------------------------------------------------------
// I/O

export async function gatherTransport(
  _domain: string,
  env: CheckEnvironment,
  hosts: MxHost[],
): Promise<TransportData> {
  // Never connect to a private address unless allowed, whatever the caller put in `addresses`.
  const jobs = hosts.flatMap((mx, index) =>
    probeable(mx.addresses, env).map((address) => ({ index, address })),
  );
  const probe = env.probeSmtp ?? probeSmtp;
  const results = await mapLimit(jobs, PROBE_CONCURRENCY, async (job) => {
    const options = {
      address: job.address,
      port: env.smtpPort,
      mxHost: hosts[job.index]!.host,
      timeoutMs: env.timeoutMs,
      ca: env.ca,
    };
    const first = await probe(options);
    const askOld = first.ok ? env.oldTlsProbe !== 'on-failure' : first.code === 'SMTP_TLS_HANDSHAKE';
    return { first, old: askOld ? await probe({ ...options, tlsVersions: 'old' }) : undefined };
  });
  const ofHost = (index: number) => results.filter((_, i) => jobs[i]!.index === index);
  return {
    hosts: hosts.map((mx, index) => ({
      mx,
      tlsa: tlsaOf(mx),
      probes: ofHost(index).map((r) => r.first),
      oldTls: ofHost(index).map((r) => r.old),
    })),
  };
}

/** A host without an address has no TLSA lookup; the tls/dane sections still list it. */
function tlsaOf(mx: MxHost): TlsaView {
  return mx.tlsa ?? { owner: `_25._tcp.${mx.host}.`, status: 'failed', records: [], error: 'no address' };
}

// ---------------------------------------------------------------------------------------------------------
// Verdicts

type CheckEnv = Pick<CheckEnvironment, 'dnssecValidating' | 'now' | 'expiryWarningDays'>;

export function transportFindings(
  data: TransportData,
  policy: StsPolicy | undefined,
  env: CheckEnv,
): Finding[] {
  return data.hosts.flatMap((h) => {
    const views = h.probes.map((probe) => viewOf(probe, h, env));
    return [...tlsFindings(h, views, policy, env), ...daneFindings(h, views, env)];
  });
}

/**
 * What the probes showed of each host, for the senders section: STARTTLS, a PKIX-valid certificate for the
 * host, a matching TLSA record. A fact holds for a host only when it holds on every probed address.
 */
export function hostTlsFacts(data: TransportData, env: CheckEnv): Map<string, HostTlsFacts> {
  const facts = new Map<string, HostTlsFacts>();
  for (const h of data.hosts) {
    const views = h.probes.map((probe) => viewOf(probe, h, env));
    const f: HostTlsFacts = {};
    if (views.length > 0) {
      const noTls = views.some((v) => !v.probe.ok && NO_TLS_CODES.has(v.probe.code));
      const tls = views.filter((v) => v.tls !== undefined);
      if (noTls) f.starttls = false;
      else if (tls.length === views.length) f.starttls = true;
      if (tls.length > 0) {
        f.pkixValid = tls.every(
          (v) =>
            v.probe.pkix?.valid === true &&
            v.probe.pkix.nameMatches &&
            daysUntilExpiry(v.tls!.chain[0]!, env.now) >= 0,
        );
        if (tls.every((v) => v.dane !== undefined))
          f.daneMatch = tls.every((v) => v.dane!.status === 'match');
      }
    }
    facts.set(h.mx.host, f);
  }
  return facts;
}

/** One probed address with what the DANE check made of its chain. */
interface ProbeView {
  probe: SmtpProbeResult;
  tls?: SmtpTlsInfo;
  /** Set when DANE applies to the host and a chain was captured. */
  dane?: DaneVerdict;
}

/** A finding about one address, before the addresses with the same finding are merged into one. */
interface Draft {
  status: Status;
  code: string;
  text: string;
  fix?: string;
  address: string;
}

/** DANE applies: a validating resolver, secure address records, a secure TLSA RRset with usable records. */
function daneApplies(h: HostTransport, env: CheckEnv): boolean {
  return (
    env.dnssecValidating &&
    h.mx.addressesSecure &&
    h.tlsa.status === 'secure' &&
    h.tlsa.records.some(isUsableForSmtp)
  );
}

function viewOf(probe: SmtpProbeResult, h: HostTransport, env: CheckEnv): ProbeView {
  const tls = probe.tls !== undefined && probe.tls.chain.length > 0 ? probe.tls : undefined;
  if (tls === undefined) return { probe };
  if (!daneApplies(h, env)) return { probe, tls };
  // RFC 7672 §3.2.2: with the expanded name as TLSA base domain, it is a reference identifier too.
  const names = h.tlsa.baseDomain === undefined ? h.mx.host : [h.mx.host, h.tlsa.baseDomain];
  return { probe, tls, dane: verifyDane(tls.chain, h.tlsa.records, { host: names, now: env.now }) };
}

/** Findings with the same verdict on several addresses become one, naming the addresses. */
function merge(section: Section, host: string, drafts: Draft[]): Finding[] {
  const merged = new Map<string, { draft: Draft; addresses: string[] }>();
  for (const d of drafts) {
    const key = JSON.stringify([d.status, d.code, d.text, d.fix ?? null]);
    const entry = merged.get(key);
    if (entry) entry.addresses.push(d.address);
    else merged.set(key, { draft: d, addresses: [d.address] });
  }
  return [...merged.values()].map(({ draft, addresses }) =>
    finding(section, draft.status, draft.code, `${addresses.join(', ')}: ${draft.text}`, {
      host,
      ...(draft.fix === undefined ? {} : { fix: draft.fix }),
    }),
  );
}

// ---------------------------------------------------------------------------------------------------------
// tls

function tlsFindings(
  h: HostTransport,
  views: ProbeView[],
  policy: StsPolicy | undefined,
  env: CheckEnv,
): Finding[] {
  const host = h.mx.host;
  if (views.length === 0) {
    return [
      finding('tls', 'skip', 'TLS_NOT_PROBED', `no address of ${host} was probed (see the mx section)`, {
        host,
      }),
    ];
  }
  const drafts = views.flatMap((v, i): Draft[] => {
    const address = v.probe.address;
    const old = h.oldTls?.[i];
    const out: Draft[] = v.probe.ok
      ? [
          {
            status: 'pass',
            code: 'TLS_STARTTLS',
            text: `STARTTLS offered; ${v.probe.tls.version} with ${v.probe.tls.cipher}`,
            address,
          },
        ]
      : [probeFailureDraft(v.probe, daneApplies(h, env), policy, old)];
    if (v.probe.ok && old?.ok) {
      out.push({
        status: 'warn',
        code: 'TLS_OLD_VERSIONS_ACCEPTED',
        text: `the server also accepts ${old.tls.version}, which RFC 8996 deprecates (a downgrade target)`,
        fix: OLD_TLS_FIX,
        address,
      });
    }
    if (v.tls) out.push(...certificateDrafts(v, host, policy, env));
    return out;
  });
  return merge('tls', host, drafts);
}

const OLD_TLS_FIX =
  'offer TLS 1.2 and 1.3 only (Postfix: smtpd_tls_protocols = >=TLSv1.2, smtpd_tls_mandatory_protocols = >=TLSv1.2; ' +
  'Exchange: disable TLS 1.0/1.1 in SCHANNEL)';

/** The part of the probe's message after "address:port (mx host): ". */
function failureText(p: SmtpProbeFailure): string {
  const hostPort = net.isIPv6(p.address) ? `[${p.address}]:${p.port}` : `${p.address}:${p.port}`;
  const prefix = `${hostPort} (${p.mxHost}): `;
  return p.message.startsWith(prefix) ? p.message.slice(prefix.length) : p.message;
}

const STARTTLS_FIX =
  'offer STARTTLS with a certificate for the MX host (Postfix: smtpd_tls_security_level = may, ' +
  'smtpd_tls_chain_files = /etc/ssl/private/mx.pem)';

function probeFailureDraft(
  p: SmtpProbeFailure,
  dane: boolean,
  policy: StsPolicy | undefined,
  old: SmtpProbeResult | undefined,
): Draft {
  const text = failureText(p);
  const address = p.address;
  switch (p.code) {
    case 'SMTP_NO_STARTTLS': {
      // Always a fail (internet.nl rates it the same): without STARTTLS, an enforced MTA-STS policy (RFC 8461
      // §5) or DNSSEC-secure usable TLSA records (RFC 7672 §2.2) make senders refuse to deliver, and otherwise
      // mail travels in plain text, which is what this tool exists to prevent.
      const consequence =
        policy?.mode === 'enforce'
          ? 'the MTA-STS policy is in enforce mode, so MTA-STS senders will not deliver here'
          : dane
            ? 'TLSA records are published, so DANE senders will not deliver here'
            : 'mail to it travels in plain text';
      return {
        status: 'fail',
        code: 'TLS_NO_STARTTLS',
        text: `${text}; ${consequence}`,
        fix: STARTTLS_FIX,
        address,
      };
    }
    case 'SMTP_STARTTLS_REFUSED':
      return { status: 'fail', code: 'TLS_STARTTLS_REFUSED', text, fix: STARTTLS_FIX, address };
    case 'SMTP_TLS_HANDSHAKE':
      // The second probe tells an old-TLS-only server (it completes TLS 1.0/1.1) from a broken one.
      if (old?.ok) {
        return {
          status: 'fail',
          code: 'TLS_ONLY_OLD_VERSIONS',
          text: `the server offers only ${old.tls.version} (RFC 8996 deprecates TLS 1.0 and 1.1): senders that need TLS 1.2 or newer get no TLS (${p.reason ?? 'handshake failed'})`,
          fix: OLD_TLS_FIX,
          address,
        };
      }
      return {
        status: 'fail',
        code: 'TLS_HANDSHAKE_FAILED',
        text,
        fix: 'enable TLS 1.2 and 1.3 with a certificate and key that belong together',
        address,
      };
    case 'SMTP_CONNECT':
      return {
        status: 'fail',
        code: 'TLS_CONNECT_FAILED',
        text,
        fix: 'make port 25 reachable from the Internet',
        address,
      };
    case 'SMTP_TIMEOUT':
      return { status: 'fail', code: 'TLS_TIMEOUT', text, address };
    case 'SMTP_BANNER_REJECT':
      return { status: 'fail', code: 'TLS_BANNER_REJECTED', text, address };
    case 'SMTP_EHLO_REJECT':
      return { status: 'fail', code: 'TLS_EHLO_REJECTED', text, address };
    case 'SMTP_PROTOCOL':
      return { status: 'fail', code: 'TLS_SMTP_ERROR', text, address };
  }
}

/** What a certificate problem means under the domain's MTA-STS policy (RFC 8461 §4.2, §5). */
function policyEffect(policy: StsPolicy | undefined): { status: Status; text: string } {
  if (policy?.mode === 'enforce') {
    return {
      status: 'fail',
      text: 'the MTA-STS policy is in enforce mode: MTA-STS senders will not deliver to this MX (RFC 8461 §5)',
    };
  }
  if (policy?.mode === 'testing') {
    return {
      status: 'warn',
      text: 'the MTA-STS policy is in testing mode: senders deliver but report the failure (TLS-RPT); enforce mode would stop delivery',
    };
  }
  return {
    status: 'warn',
    text: 'no MTA-STS policy in force now, but an enforce policy would stop delivery to this MX (RFC 8461 §4.2)',
  };
}

function certificateDrafts(
  v: ProbeView,
  host: string,
  policy: StsPolicy | undefined,
  env: CheckEnv,
): Draft[] {
  const tls = v.tls!;
  const address = v.probe.address;
  const leaf = tls.chain[0]!;
  const pkix = v.probe.pkix;
  const days = daysUntilExpiry(leaf, env.now);
  const warningDays = env.expiryWarningDays ?? EXPIRY_WARNING_DAYS;
  const notAfter = validityOf(leaf).notAfter.toISOString().slice(0, 10);
  const effect = policyEffect(policy);
  // RFC 7672 §3.1.1: DANE-EE ignores names and dates, so a PKIX failure is not a DANE failure.
  const daneNote =
    v.dane?.status === 'match' ? '; DANE senders are not affected (the TLSA records match)' : '';
  const drafts: Draft[] = [];

  const expiredOnly = days < 0 && tls.authorizationError === 'CERT_HAS_EXPIRED';
  if (pkix && !pkix.valid && !expiredOnly) {
    drafts.push({
      status: effect.status,
      code: 'TLS_CERT_UNTRUSTED',
      text: `the certificate chain does not verify: ${pkix.error ?? tls.authorizationError}; ${effect.text}${daneNote}`,
      fix: `use a certificate for ${host} from a public CA and send the whole chain (leaf, then intermediates)`,
      address,
    });
  }
  if (pkix && !pkix.nameMatches) {
    const names = leaf.subjectAltName ?? `no subjectAltName, subject ${describeCertificate(leaf)}`;
    drafts.push({
      status: effect.status,
      code: 'TLS_CERT_NAME_MISMATCH',
      text: `the certificate (${names}) does not name ${host} (RFC 8461 §4.2 needs a subjectAltName DNS name); ${effect.text}${daneNote}`,
      fix: `get a certificate with subjectAltName DNS:${host}`,
      address,
    });
  }
  if (days < 0) {
    drafts.push({
      status: 'fail',
      code: 'TLS_CERT_EXPIRED',
      text: `the certificate expired on ${notAfter} (${-days} days ago); ${effect.text}${daneNote}`,
      fix: `renew the certificate of ${host}`,
      address,
    });
  } else if (days < warningDays) {
    drafts.push({
      status: 'warn',
      code: 'TLS_CERT_EXPIRING',
      text: `the certificate expires on ${notAfter}, in ${days} days`,
      fix: `renew the certificate of ${host} now (and check that automatic renewal works)`,
      address,
    });
  }
  if (pkix?.valid && pkix.nameMatches && days >= warningDays) {
    drafts.push({
      status: 'pass',
      code: 'TLS_CERT_VALID',
      text: `the certificate is valid for ${host} (${describeCertificate(leaf)}; expires ${notAfter}, in ${days} days)`,
      address,
    });
  }
  return drafts;
}

// ---------------------------------------------------------------------------------------------------------
// dane

function daneFindings(h: HostTransport, views: ProbeView[], env: CheckEnv): Finding[] {
  const host = h.mx.host;
  const { owner, records } = h.tlsa;
  const leaf = views.find((v) => v.tls)?.tls?.chain[0];
  // The record for the live certificate; a template when no certificate was captured.
  const suggested = leaf
    ? formatTlsa(generateTlsa(leaf, DANE_EE, 1, 1), owner)
    : `${owner} IN TLSA 3 1 1 <SHA-256 of the server's public key: mxguard tlsa generate --cert CERT.pem --host ${host}>`;
  const one = (status: Status, code: string, message: string, fix?: string): Finding[] => [
    finding('dane', status, code, message, fix === undefined ? { host } : { host, fix }),
  ];

  if (!env.dnssecValidating) {
    return one(
      'warn',
      'DANE_NOT_VALIDATING',
      `resolver does not validate DNSSEC: DANE for ${host} cannot be checked`,
      'run the check with a validating resolver (--resolver IP, e.g. a local unbound)',
    );
  }
  if (!h.mx.addressesSecure || h.tlsa.status === 'insecure') {
    const what = h.mx.addressesSecure
      ? `the TLSA RRset at ${owner} is`
      : `the address records of ${host} are`;
    const ignored =
      records.length > 0 ? `; ${records.length} TLSA record(s) are published but senders ignore them` : '';
    return one(
      'skip',
      'DANE_ZONE_INSECURE',
      `MX host zone is not DNSSEC-signed; DANE not possible (${what} insecure, RFC 7672 §2.2)${ignored}`,
      `sign the zone of ${host} with DNSSEC, then publish: ${suggested}`,
    );
  }
  if (h.tlsa.status === 'bogus') {
    return one(
      'fail',
      'DANE_TLSA_BOGUS',
      `the TLSA lookup at ${owner} fails DNSSEC validation (bogus): DANE senders defer mail to ${host}`,
      dnssecBogusFix(owner, 'TLSA'),
    );
  }
  if (h.tlsa.status === 'failed') {
    // RFC 7672 §2.2: a TLSA lookup that fails (other than a secure denial) makes DANE senders defer mail.
    return one(
      'fail',
      'DANE_TLSA_LOOKUP_FAILED',
      `the TLSA lookup at ${owner} failed (${h.tlsa.error}): DANE senders defer mail to ${host}`,
      `make the name servers of ${host} answer TLSA queries for ${owner} (NODATA when there are none)`,
    );
  }
  if (records.length === 0) {
    return one(
      'info',
      'DANE_NO_TLSA',
      `the zone is DNSSEC-signed but has no TLSA records at ${owner}: DANE is not in use for ${host}`,
      suggested,
    );
  }
  if (!records.some(isUsableForSmtp)) {
    return one(
      'fail',
      'DANE_TLSA_UNUSABLE',
      `no usable TLSA records (RFC 7672 §3.1.3) at ${owner}: only DANE-TA(2) and DANE-EE(3) count for SMTP, ` +
        'so senders get no authentication',
      suggested,
    );
  }
  if (views.length === 0) {
    return one(
      'skip',
      'DANE_NOT_PROBED',
      `no address of ${host} was probed, so the TLSA records were not compared`,
    );
  }
  return merge(
    'dane',
    host,
    views.flatMap((v) => daneDrafts(v, h)),
  );
}

const NO_TLS_CODES: ReadonlySet<string> = new Set([
  'SMTP_NO_STARTTLS',
  'SMTP_STARTTLS_REFUSED',
  'SMTP_TLS_HANDSHAKE',
]);

function daneDrafts(v: ProbeView, h: HostTransport): Draft[] {
  const address = v.probe.address;
  const { owner, records } = h.tlsa;
  if (!v.tls || !v.dane) {
    const failure = v.probe.ok ? 'no certificate was captured' : failureText(v.probe);
    if (!v.probe.ok && NO_TLS_CODES.has(v.probe.code)) {
      // RFC 7672 §2.2: with usable TLSA records TLS is mandatory; without it DANE senders defer mail.
      return [
        {
          status: 'fail',
          code: 'DANE_NO_TLS',
          text: `TLSA records are published but no TLS session could be made (${failure}): DANE senders defer mail`,
          fix: STARTTLS_FIX,
          address,
        },
      ];
    }
    return [
      {
        status: 'skip',
        code: 'DANE_NOT_VERIFIED',
        text: `the certificate could not be compared (${failure})`,
        address,
      },
    ];
  }
  const chain = v.tls.chain;
  const leaf = chain[0]!;
  const matched = v.dane.records.find((r) => r.matches);
  if (v.dane.status !== 'match' || matched === undefined) {
    const tried = v.dane.records.filter((r) => r.usable).map((r) => `${shortTlsa(r.record)}: ${r.reason}`);
    return [
      {
        status: 'fail',
        code: 'DANE_TLSA_MISMATCH',
        text:
          `no usable TLSA record at ${owner} matches the certificate presented (${describeCertificate(leaf)}): ` +
          `DANE senders will not deliver here (${tried.join('; ')})`,
        fix: formatTlsa(generateTlsa(leaf, DANE_EE, 1, 1), owner),
        address,
      },
    ];
  }
  const drafts: Draft[] = [
    {
      status: 'pass',
      code: 'DANE_TLSA_MATCH',
      text: `${shortTlsa(matched.record)} ${matched.reason}`,
      address,
    },
  ];
  drafts.push(...rolloverDrafts(records, chain, h, address));
  return drafts;
}

/**
 * RFC 7671 §8.1, RFC 7672 §4: the RRset must still match after the next key change. Not ready: every usable
 * record is tied to the current key. "Current key only": ready only thanks to DANE-TA records whose CA the
 * server does not present, so today every matching record is tied to the current key all the same.
 */
function rolloverDrafts(
  records: TlsaRecord[],
  chain: X509Certificate[],
  h: HostTransport,
  address: string,
): Draft[] {
  const { owner } = h.tlsa;
  const consequence = 'the next key change will stop inbound mail with 450 4.7.323 tlsa-invalid';
  const issuer = chain[1];
  const fix = issuer?.ca
    ? formatTlsa(generateTlsa(issuer, DANE_TA, 1, 1), owner)
    : `${owner} IN TLSA 3 1 1 <SHA-256 of the next key> (publish it beside the current one before switching keys: ` +
      `mxguard tlsa generate --cert next.pem --host ${h.mx.host})`;
  if (!rolloverReady(records, chain)) {
    // Only DANE-TA records: they pin one CA key, which a change of CA breaks just as a key change breaks 3 1 1.
    const onlyTa = records.every((r) => !isUsableForSmtp(r) || r.usage === DANE_TA);
    const pinned = onlyTa ? 'a single CA key' : `the current key (${describeCertificate(chain[0]!)})`;
    return [
      {
        status: 'warn',
        code: 'DANE_ROLLOVER_NOT_READY',
        text: onlyTa
          ? `every usable TLSA record pins one key, ${pinned}: a change of CA will stop inbound mail with 450 4.7.323 tlsa-invalid`
          : `every usable TLSA record is tied to ${pinned}: ${consequence}`,
        fix: onlyTa ? formatTlsa(generateTlsa(chain[0]!, DANE_EE, 1, 1), owner) : fix,
        address,
      },
    ];
  }
  const presented = records.filter((r) => r.usage !== DANE_TA || presentsCa(chain, r));
  if (!rolloverReady(presented, chain)) {
    return [
      {
        status: 'warn',
        code: 'DANE_CURRENT_KEY_ONLY',
        text:
          'every matching TLSA record is tied to the current key; the DANE-TA record(s) match no CA certificate ' +
          `the server presents, so unless it then sends that CA, ${consequence}`,
        fix,
        address,
      },
    ];
  }
  return [
    {
      status: 'pass',
      code: 'DANE_ROLLOVER_READY',
      text: 'the TLSA records cover more than the current key (RFC 7671 §8.1)',
      address,
    },
  ];
}

/** A DANE-TA record's data matches a CA certificate the server presented (not the leaf). */
function presentsCa(chain: X509Certificate[], r: TlsaRecord): boolean {
  return chain
    .slice(1)
    .some((cert) => associationData(cert, r.selector, r.matchingType)?.equals(r.data) === true);
}

/** "3 1 1 0c72ac70b745ac19…" */
function shortTlsa(r: TlsaRecord): string {
  const hex = r.data.toString('hex');
  return `${r.usage} ${r.selector} ${r.matchingType} ${hex.length > 16 ? `${hex.slice(0, 16)}…` : hex}`;
}
