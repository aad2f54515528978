// PKIX checks of an MX host's certificate for MTA-STS (RFC 8461 §4.2): the chain must be valid up to a trusted
// root and unexpired, and the leaf must carry a subjectAltName DNS-ID matching the MX host name.
//
// How: the chain is judged by OpenSSL itself during the probe's one TLS handshake. The handshake runs with
// `rejectUnauthorized: false` (capture first, judge later) against the trust store below, so the socket's
// `authorized` / `authorizationError` are OpenSSL's verdict on the chain as presented (signatures, issuer
// links, validity dates, CA flags), at no cost of a second connection. Node's own host name check is switched
// off for that handshake, so the verdict is about the chain only; the name is checked here, offline, with
// OpenSSL's X509_check_host (via X509Certificate#checkHost) under RFC 8461's rules.
import type { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { normalizeHost } from '../common/hostname.js';

export interface PkixVerdict {
  /** The chain verifies up to a trust anchor and no certificate in it is expired or not yet valid. */
  valid: boolean;
  /** Why the chain does not verify, in words (the OpenSSL code is in the probe's tls.authorizationError). */
  error?: string;
  /** The leaf has a subjectAltName dNSName matching the MX host (RFC 8461 §4.2). */
  nameMatches: boolean;
  /** Whole days until the leaf expires (negative once it has). */
  daysLeft: number;
}

/**
 * The trust store for the handshake: undefined (Node's default store, which also honours NODE_EXTRA_CA_CERTS
 * and --use-openssl-ca) when there are no extra anchors; otherwise Node's bundled roots plus the extras
 * (each a PEM string that may hold several certificates). Passing `ca` replaces Node's default store, which is
 * why the bundled roots are listed again.
 */
export function trustStore(extraCa: readonly string[] | undefined): string[] | undefined {
  if (extraCa === undefined || extraCa.length === 0) return undefined;
  return [...tls.rootCertificates, ...extraCa];
}

// One TLS context per array of extra anchors: building one from ~150 roots costs ~25 ms of CPU per handshake.
const contexts = new WeakMap<readonly string[], tls.SecureContext>();

/** The trust store of `trustStore` as a SecureContext, made once per `extraCa` array; undefined without extras. */
export function trustContext(extraCa: readonly string[] | undefined): tls.SecureContext | undefined {
  const ca = trustStore(extraCa);
  if (ca === undefined || extraCa === undefined) return undefined;
  let context = contexts.get(extraCa);
  if (context === undefined) {
    context = tls.createSecureContext({ ca });
    contexts.set(extraCa, context);
  }
  return context;
}

/**
 * RFC 8461 §4.2: the certificate MUST have a subjectAltName DNS-ID matching the host (the subject CN is not
 * used), and a wildcard may only be the whole leftmost label ("*.example.com" matches "mx.example.com", not
 * "example.com", "a.mx.example.com", and "mx*.example.com" matches nothing). Case-insensitive; a trailing dot
 * on the host is ignored.
 */
export function certMatchesHost(leaf: X509Certificate, host: string): boolean {
  const name = normalizeHost(host);
  if (name === '') return false;
  const matched = leaf.checkHost(name, {
    subject: 'never',
    wildcards: true,
    partialWildcards: false,
    multiLabelWildcards: false,
    singleLabelSubdomains: false,
  });
  return matched !== undefined;
}

const DAY_MS = 86_400_000;

/** Whole days from `now` until the certificate's notAfter; negative when it is in the past. */
export function daysUntilExpiry(cert: X509Certificate, now: Date = new Date()): number {
  return Math.floor((new Date(cert.validTo).getTime() - now.getTime()) / DAY_MS);
}

/** What an OpenSSL verification code means, for the common ones; the code itself otherwise. */
export function describeVerifyError(code: string): string {
  const known: Record<string, string> = {
    CERT_HAS_EXPIRED: 'a certificate in the chain has expired',
    CERT_NOT_YET_VALID: 'a certificate in the chain is not yet valid',
    DEPTH_ZERO_SELF_SIGNED_CERT: 'the certificate is self-signed',
    SELF_SIGNED_CERT_IN_CHAIN: 'the chain ends in a self-signed certificate that is not trusted',
    UNABLE_TO_GET_ISSUER_CERT: 'the issuer of a certificate in the chain is not trusted or not sent',
    UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      'the chain does not lead to a trusted root (unknown CA or missing intermediate)',
    UNABLE_TO_VERIFY_LEAF_SIGNATURE: "the leaf certificate's issuer is unknown (missing intermediate?)",
    CERT_SIGNATURE_FAILURE: 'a certificate signature does not verify',
    INVALID_CA: 'a certificate used as a CA is not a CA certificate',
    INVALID_PURPOSE: 'the certificate is not for TLS server use',
    CERT_REVOKED: 'a certificate in the chain is revoked',
  };
  const text = known[code];
  return text ? `${text} (${code})` : code;
}

/**
 * The verdict for a chain captured by the probe: `authorizationError` is the socket's OpenSSL code (undefined
 * when the chain verified), `chain` the certificates as presented, leaf first.
 */
export function pkixVerdict(
  chain: readonly X509Certificate[],
  authorizationError: string | undefined,
  host: string,
  now: Date = new Date(),
): PkixVerdict {
  const leaf = chain[0];
  if (!leaf)
    return { valid: false, error: 'the server sent no certificate', nameMatches: false, daysLeft: 0 };
  const verdict: PkixVerdict = {
    valid: authorizationError === undefined,
    nameMatches: certMatchesHost(leaf, host),
    daysLeft: daysUntilExpiry(leaf, now),
  };
  if (authorizationError !== undefined) verdict.error = describeVerifyError(authorizationError);
  return verdict;
}
