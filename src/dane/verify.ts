// DANE verification for SMTP (RFC 7672, with RFC 7671 and RFC 6698): does a presented certificate chain
// match a TLSA RRset? Pure: the chain, the records, the host name and the clock are all passed in.
import type { X509Certificate } from 'node:crypto';
import { type Problem, problem } from '../common/errors.js';
import { normalizeHost } from '../common/hostname.js';
import { associationData, describeCertificate, validityOf } from './cert.js';
import { describeTlsa, type TlsaRecord } from './tlsa.js';

export interface VerifyOptions {
  /**
   * The reference identifier(s) the leaf must match for DANE-TA(2): the TLSA base domain, i.e. the MX host
   * name (RFC 7672 §3.2.2). Several may be given (e.g. the MX name and its CNAME-expanded name).
   */
  host?: string | readonly string[];
  /** The time used for validity checks (default: now). */
  now?: Date;
}

export interface RecordResult {
  record: TlsaRecord;
  /** Whether an SMTP client may use the record at all (RFC 7672 §3.1.3, RFC 7671 §4). */
  usable: boolean;
  matches: boolean;
  /** Why the record did or did not match, in one sentence. */
  reason: string;
  /** The index in the chain of the certificate the record matched (leaf = 0), when it matched. */
  certIndex?: number;
}

export interface DaneVerdict {
  status: 'match' | 'no-match' | 'no-usable-records';
  /** The first record (in the order given) that authenticates the chain. */
  matched?: { record: TlsaRecord; certIndex: number };
  records: RecordResult[];
  problems: Problem[];
}

/** Usage values an SMTP client acts on (RFC 7672 §3.1.3: PKIX-TA(0) and PKIX-EE(1) are not used for SMTP). */
const DANE_TA = 2;
const DANE_EE = 3;

/** Whether an SMTP client can use the record: DANE-TA/DANE-EE with a known selector and matching type. */
export function isUsableForSmtp(r: TlsaRecord): boolean {
  return unusableReason(r) === undefined;
}

function unusableReason(r: TlsaRecord): string | undefined {
  if (r.usage === 0 || r.usage === 1) {
    return `${describeTlsa(r)}: PKIX-TA(0) and PKIX-EE(1) are not used for SMTP (RFC 7672 §3.1.3)`;
  }
  if (r.usage !== DANE_TA && r.usage !== DANE_EE) {
    return `usage ${r.usage} is unknown or private and never matches (RFC 7671 §4)`;
  }
  if (r.selector !== 0 && r.selector !== 1) {
    return `selector ${r.selector} is unknown or private and never matches (RFC 7671 §4)`;
  }
  if (r.matchingType < 0 || r.matchingType > 2) {
    return `matching type ${r.matchingType} is unknown or private and never matches (RFC 7671 §4)`;
  }
  return undefined;
}

/**
 * Check a presented chain (leaf first, as the server sent it) against a TLSA RRset, by RFC 7672 rules:
 * - only DANE-TA(2) and DANE-EE(3) records with known selector and matching type are usable;
 * - DANE-EE(3) matches the leaf only; names and validity dates are ignored (RFC 7672 §3.1.1);
 * - DANE-TA(2) matches a CA certificate presented in the chain (not the leaf); the leaf must chain up to it
 *   by issuer name and signature, every certificate below the trust anchor must be within its validity
 *   dates (the trust anchor's own dates are not checked), and the leaf must match the host name
 *   (RFC 7672 §3.1.2, §3.2.3). Without a host name DANE-TA cannot pass.
 * Every record gets a verdict with a reason; `status` is 'match' when any usable record matched.
 */
export function verifyDane(
  chain: X509Certificate[],
  records: TlsaRecord[],
  options: VerifyOptions = {},
): DaneVerdict {
  const now = options.now ?? new Date();
  const hosts = (typeof options.host === 'string' ? [options.host] : (options.host ?? []))
    .map(normalizeHost)
    .filter((h) => h !== '');
  const digests = new Map<string, Buffer | undefined>();
  const dataOf = (index: number, r: TlsaRecord): Buffer | undefined => {
    const key = `${index}/${r.selector}/${r.matchingType}`;
    if (!digests.has(key))
      digests.set(key, associationData(chain[index] as X509Certificate, r.selector, r.matchingType));
    return digests.get(key);
  };
  const matchesCert = (index: number, r: TlsaRecord) => dataOf(index, r)?.equals(r.data) === true;

  const results = records.map((record): RecordResult => {
    const unusable = unusableReason(record);
    if (unusable) return { record, usable: false, matches: false, reason: unusable };
    if (chain.length === 0)
      return { record, usable: true, matches: false, reason: 'no certificate was presented' };
    if (record.usage === DANE_EE) return checkDaneEe(chain, record, matchesCert(0, record));
    const taIndexes = chain.map((_, i) => i).filter((i) => i > 0 && matchesCert(i, record));
    return checkDaneTa(chain, record, taIndexes, matchesCert(0, record), hosts, now);
  });

  const problems: Problem[] = [];
  const usable = results.filter((r) => r.usable);
  const firstMatch = results.find((r) => r.matches);
  if (usable.length === 0) {
    // RFC 7672 §2.2: a TLSA RRset with no usable records means opportunistic TLS without authentication.
    problems.push(
      problem(
        'warning',
        'DANE_NO_USABLE_RECORDS',
        'no usable TLSA record (only DANE-TA(2) and DANE-EE(3) with selector 0-1 and matching type 0-2 count): ' +
          'SMTP clients fall back to unauthenticated opportunistic TLS (RFC 7672 §2.2)',
      ),
    );
  }
  const needsHost = hosts.length === 0 && usable.some((r) => r.record.usage === DANE_TA);
  if (needsHost && !firstMatch) {
    problems.push(
      problem(
        'warning',
        'DANE_TA_NEEDS_HOST',
        'DANE-TA needs --host: the leaf name is checked against the MX host name',
      ),
    );
  }
  const status = firstMatch ? 'match' : usable.length === 0 ? 'no-usable-records' : 'no-match';
  const verdict: DaneVerdict = { status, records: results, problems };
  if (firstMatch?.certIndex !== undefined)
    verdict.matched = { record: firstMatch.record, certIndex: firstMatch.certIndex };
  return verdict;
}

// RFC 7672 §3.1.1: DANE-EE(3) authenticates the leaf by key or certificate only; no name, no dates.
function checkDaneEe(chain: X509Certificate[], record: TlsaRecord, matches: boolean): RecordResult {
  const what = record.selector === 1 ? 'public key' : 'certificate';
  const leaf = describeCertificate(chain[0] as X509Certificate);
  if (!matches)
    return { record, usable: true, matches: false, reason: `does not match the leaf ${what} (${leaf})` };
  return {
    record,
    usable: true,
    matches: true,
    certIndex: 0,
    reason: `matches the leaf ${what} (${leaf}); DANE-EE checks neither names nor dates (RFC 7672 §3.1.1)`,
  };
}

function checkDaneTa(
  chain: X509Certificate[],
  record: TlsaRecord,
  taIndexes: number[],
  matchesLeaf: boolean,
  hosts: string[],
  now: Date,
): RecordResult {
  const fail = (reason: string): RecordResult => ({ record, usable: true, matches: false, reason });
  if (taIndexes.length === 0) {
    if (matchesLeaf) {
      return fail(
        'matches the leaf itself, but DANE-TA(2) must match a CA certificate in the chain (use DANE-EE(3) for the leaf)',
      );
    }
    return fail(
      'matches no CA certificate in the presented chain (the server must send its trust anchor, RFC 7672 §3.1.2)',
    );
  }
  let reason = '';
  for (const taIndex of taIndexes) {
    const ta = `certificate ${taIndex} (${describeCertificate(chain[taIndex] as X509Certificate)})`;
    const problemText =
      checkPathToAnchor(chain, taIndex, now) ?? checkName(chain[0] as X509Certificate, hosts);
    if (problemText === undefined) {
      return {
        record,
        usable: true,
        matches: true,
        certIndex: taIndex,
        reason:
          `matches trust anchor ${ta}; the leaf chains to it, the certificates below it are within their dates, ` +
          `and the leaf matches ${hosts.join(' / ')}`,
      };
    }
    if (reason === '') reason = `matches trust anchor ${ta}, but ${problemText}`;
  }
  return fail(reason);
}

/**
 * RFC 7671 §5.2, RFC 7672 §3.1.2: the path from the leaf up to the trust anchor at `taIndex`, in presented
 * order: each certificate issued (name, key identifier, key usage) and signed by the next one, every
 * certificate strictly between leaf and anchor a CA (RFC 5280 §6.1.4 (k)), and every certificate below the
 * anchor within its validity period. The anchor's own dates and constraints are not checked. Returns the
 * first problem found, or undefined.
 */
function checkPathToAnchor(chain: X509Certificate[], taIndex: number, now: Date): string | undefined {
  for (let i = 0; i < taIndex; i++) {
    const cert = chain[i] as X509Certificate;
    const issuer = chain[i + 1] as X509Certificate;
    const name = `certificate ${i} (${describeCertificate(cert)})`;
    if (!cert.checkIssued(issuer))
      return `${name} was not issued by certificate ${i + 1} (${describeCertificate(issuer)})`;
    if (!cert.verify(issuer.publicKey))
      return `the signature on ${name} does not verify with the key of certificate ${i + 1}`;
    if (i > 0 && !cert.ca)
      return `${name} sits between the leaf and the trust anchor but is not a CA certificate`;
    const { notBefore, notAfter } = validityOf(cert);
    if (now.getTime() < notBefore.getTime()) return `${name} is not valid before ${notBefore.toISOString()}`;
    if (now.getTime() > notAfter.getTime()) return `${name} expired on ${notAfter.toISOString()}`;
  }
  return undefined;
}

/**
 * RFC 7672 §3.2.3 name check: a DNS-ID (subjectAltName dNSName) equal to a reference identifier, or a
 * wildcard "*" that is the complete left-most label matching exactly one label; the subject CN is used only
 * when the certificate has no dNSName at all (OpenSSL's default, via X509Certificate.checkHost).
 */
function checkName(leaf: X509Certificate, hosts: string[]): string | undefined {
  if (hosts.length === 0)
    return 'DANE-TA needs --host: the leaf name must be checked against the MX host name';
  const options = {
    subject: 'default',
    wildcards: true,
    partialWildcards: false,
    multiLabelWildcards: false,
  } as const;
  if (hosts.some((h) => leaf.checkHost(h, options) !== undefined)) return undefined;
  const names = leaf.subjectAltName ?? describeCertificate(leaf);
  return `the leaf (${names}) does not match the host name ${hosts.join(' / ')}`;
}

/**
 * Is the RRset ready for a key rollover (RFC 7671 §8.1, RFC 7672 §4)? Only usable records count (see
 * isUsableForSmtp). True when either:
 * 1. a DANE-TA(2) record sits beside a DANE-EE(3) record (a new leaf from the same CA still matches), or
 * 2. the records pin at least two distinct keys or certificates. Without `chain`, records pin distinct
 *    things only when they share usage, selector and matching type but differ in data (a `3 0 1` and a
 *    `3 1 1` cannot be told apart from one key, so they count as one). With `chain`, records that match a
 *    presented certificate (DANE-EE the leaf, DANE-TA a CA) count once per certificate matched, so
 *    `3 0 1` + `3 1 1` of the current leaf is one key; records that match nothing presented count as one
 *    more key per distinct data within the same usage/selector/matching type (the next key, not yet in use).
 */
export function rolloverReady(records: TlsaRecord[], chain?: X509Certificate[]): boolean {
  const usable = records.filter(isUsableForSmtp);
  if (usable.some((r) => r.usage === DANE_TA) && usable.some((r) => r.usage === DANE_EE)) return true;
  const matchedCerts = new Set<number>();
  const unmatched = new Map<string, Set<string>>();
  for (const r of usable) {
    const index = chain ? matchingCertIndex(chain, r) : undefined;
    if (index !== undefined) {
      matchedCerts.add(index);
      continue;
    }
    const group = `${r.usage} ${r.selector} ${r.matchingType}`;
    const seen = unmatched.get(group) ?? new Set<string>();
    seen.add(r.data.toString('hex'));
    unmatched.set(group, seen);
  }
  const otherKeys = Math.max(0, ...[...unmatched.values()].map((s) => s.size));
  return matchedCerts.size + otherKeys >= 2;
}

function matchingCertIndex(chain: X509Certificate[], r: TlsaRecord): number | undefined {
  const candidates = r.usage === DANE_EE ? [0] : chain.map((_, i) => i).filter((i) => i > 0);
  return candidates.find((i) =>
    associationData(chain[i] as X509Certificate, r.selector, r.matchingType)?.equals(r.data),
  );
}
