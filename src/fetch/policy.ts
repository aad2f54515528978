// MTA-STS (RFC 8461) policy fetch: GET https://mta-sts.<domain>/.well-known/mta-sts.txt under the
// rules of RFC 8461 §3.3 — PKIX-valid certificate for the "mta-sts" host, only 200 counts, no
// redirects, no HTTP cache, a size limit and a timeout — and returns what happened as data.
//
// The caller hands in the DNS lookup (`resolveHost`), so this module does not depend on src/dns and
// DNS is asked once: the connection goes to the resolved IP addresses directly, in the order given,
// with SNI and certificate name check for mta-sts.<domain>. Only a failed TCP connection (refused,
// unreachable, connect timeout) moves on to the next address; once TLS starts, that address's outcome
// is the result. Non-public addresses are refused unless `allowPrivate` (see ./address.ts).
//
// Every failure has its own code; FETCH_SEVERITY gives each code's fixed severity:
//
// | code                           | severity | when                                                      |
// |--------------------------------|----------|-----------------------------------------------------------|
// | MTASTS_FETCH_DOMAIN            | fail     | the domain is not a host name                             |
// | MTASTS_FETCH_DNS               | fail     | resolveHost failed, found no address, or returned a non-IP |
// | MTASTS_FETCH_PRIVATE_ADDRESS   | fail     | every address is private/loopback/...; nothing was tried  |
// | MTASTS_FETCH_CONNECT           | fail     | no address accepted a TCP connection (in connectTimeoutMs) |
// | MTASTS_FETCH_TIMEOUT           | fail     | no complete answer within timeoutMs (default one minute)  |
// | MTASTS_FETCH_TLS               | fail     | the TLS handshake failed (alert, reset, not TLS)          |
// | MTASTS_FETCH_CERT_UNTRUSTED    | fail     | the chain does not lead to a trusted root (self-signed,   |
// |                                |          | unknown CA, missing intermediate, bad signature, ...)     |
// | MTASTS_FETCH_CERT_NAME         | fail     | the certificate is not valid for mta-sts.<domain>         |
// | MTASTS_FETCH_CERT_EXPIRED      | fail     | a certificate in the chain expired or is not valid yet    |
// | MTASTS_FETCH_REDIRECT          | fail     | 3xx: redirects are never followed (message has Location)  |
// | MTASTS_FETCH_STATUS            | fail     | any other status than 200                                 |
// | MTASTS_FETCH_TOO_LARGE         | fail     | body over 64 KiB (declared or streamed)                   |
// | MTASTS_FETCH_ENCODING          | fail     | Content-Encoding we did not ask for, or body not UTF-8    |
// | MTASTS_FETCH_PROTOCOL          | fail     | the answer is not HTTP, or the connection closed early    |
// | MTASTS_FETCH_POLICY_INVALID    | fail     | (fetchAndParsePolicy) the body is not a valid policy      |
// | MTASTS_FETCH_CONTENT_TYPE      | warn     | Content-Type missing or not text/plain (still parsed)     |
// | MTASTS_FETCH_CHARSET           | warn     | text/plain with a charset other than utf-8 / us-ascii     |
//
// Warnings come back as Problem objects (severity 'warning') in the successful result.
import { X509Certificate } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { type Problem, problem } from '../common/errors.js';
import { MtaStsError } from '../mtasts/error.js';
import { parsePolicy, type StsPolicy } from '../mtasts/policy.js';
import { POLICY_PATH, policyHost, policyUrl } from '../mtasts/url.js';
import { privateAddressReason } from './address.js';

export type FetchFailureCode =
  | 'MTASTS_FETCH_DOMAIN'
  | 'MTASTS_FETCH_DNS'
  | 'MTASTS_FETCH_PRIVATE_ADDRESS'
  | 'MTASTS_FETCH_CONNECT'
  | 'MTASTS_FETCH_TIMEOUT'
  | 'MTASTS_FETCH_TLS'
  | 'MTASTS_FETCH_CERT_UNTRUSTED'
  | 'MTASTS_FETCH_CERT_NAME'
  | 'MTASTS_FETCH_CERT_EXPIRED'
  | 'MTASTS_FETCH_REDIRECT'
  | 'MTASTS_FETCH_STATUS'
  | 'MTASTS_FETCH_TOO_LARGE'
  | 'MTASTS_FETCH_ENCODING'
  | 'MTASTS_FETCH_PROTOCOL'
  | 'MTASTS_FETCH_POLICY_INVALID';

export type FetchWarningCode = 'MTASTS_FETCH_CONTENT_TYPE' | 'MTASTS_FETCH_CHARSET';

export type FetchCode = FetchFailureCode | FetchWarningCode;

/** The fixed severity of every code (the table in the header). */
export const FETCH_SEVERITY: Readonly<Record<FetchCode, 'fail' | 'warn'>> = {
  MTASTS_FETCH_DOMAIN: 'fail',
  MTASTS_FETCH_DNS: 'fail',
  MTASTS_FETCH_PRIVATE_ADDRESS: 'fail',
  MTASTS_FETCH_CONNECT: 'fail',
  MTASTS_FETCH_TIMEOUT: 'fail',
  MTASTS_FETCH_TLS: 'fail',
  MTASTS_FETCH_CERT_UNTRUSTED: 'fail',
  MTASTS_FETCH_CERT_NAME: 'fail',
  MTASTS_FETCH_CERT_EXPIRED: 'fail',
  MTASTS_FETCH_REDIRECT: 'fail',
  MTASTS_FETCH_STATUS: 'fail',
  MTASTS_FETCH_TOO_LARGE: 'fail',
  MTASTS_FETCH_ENCODING: 'fail',
  MTASTS_FETCH_PROTOCOL: 'fail',
  MTASTS_FETCH_POLICY_INVALID: 'fail',
  MTASTS_FETCH_CONTENT_TYPE: 'warn',
  MTASTS_FETCH_CHARSET: 'warn',
};

/** RFC 8461 §3.3: a suggested maximum policy size is 64 kilobytes. */
export const MAX_POLICY_BYTES = 64 * 1024;
/** RFC 8461 §3.3: a suggested timeout is one minute. */
export const DEFAULT_TIMEOUT_MS = 60_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const USER_AGENT = 'mxguard/0.1 (+MTA-STS policy fetch)';

export interface FetchPolicyOptions {
  /** The A/AAAA addresses of a host name, in the order to try them (the caller's DNS client). */
  resolveHost(host: string): Promise<string[]>;
  /** Default 443. */
  port?: number;
  /**
   * Extra trust anchors (PEM, one or more certificates per string) on top of Node's root store
   * (`tls.rootCertificates`), as `--ca-file` gives them. A string without a PEM certificate makes
   * fetchPolicy reject with a TypeError (a caller mistake, not a fetch outcome). Pass the same array
   * on every call: the TLS context built from it is kept per array.
   */
  ca?: readonly string[];
  /** Connect to private, loopback, link-local... addresses too (default false). */
  allowPrivate?: boolean;
  /** For the whole fetch, DNS included (default DEFAULT_TIMEOUT_MS). */
  timeoutMs?: number;
  /** For each TCP connection (default DEFAULT_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs?: number;
}

export interface CertificateSummary {
  /** One line, "CN=mta-sts.example.com, O=Example". */
  subject: string;
  issuer: string;
  /** ISO 8601. */
  validFrom: string;
  validTo: string;
  /** Whole days until validTo (negative once expired). */
  daysLeft: number;
  /** The dNSName entries of subjectAltName. */
  san: string[];
}

export interface PolicyFetchSuccess {
  ok: true;
  /** The body, decoded as UTF-8 (a byte-order mark is kept, for the parser to report). */
  body: string;
  /** The Content-Type header as sent. */
  contentType?: string;
  /** The server's (leaf) certificate. */
  certificate: CertificateSummary;
  /** The IP address the policy came from. */
  address: string;
  /** MTASTS_FETCH_CONTENT_TYPE / MTASTS_FETCH_CHARSET, severity 'warning'. */
  warnings: Problem[];
}

export interface PolicyFetchFailure {
  ok: false;
  code: FetchFailureCode;
  /** What went wrong, naming the host or URL. */
  message: string;
  /** The IP address the failure happened at, when one was reached. */
  address?: string;
  /** The server's certificate, when the handshake got that far. */
  certificate?: CertificateSummary;
  /** MTASTS_FETCH_POLICY_INVALID: the parser's errors and warnings, and the fetch warnings. */
  problems?: Problem[];
}

export type PolicyFetchResult = PolicyFetchSuccess | PolicyFetchFailure;

export type PolicyFetchAndParseResult = (PolicyFetchSuccess & { policy: StsPolicy }) | PolicyFetchFailure;

const DAY_MS = 86_400_000;

/**
 * Fetch the MTA-STS policy of `domain` (RFC 8461 §3.3). Never rejects for network or server
 * behaviour: every outcome is a PolicyFetchResult.
 */
export async function fetchPolicy(domain: string, options: FetchPolicyOptions): Promise<PolicyFetchResult> {
  const host = policyHost(domain);
  if (host === undefined) {
    return failure('MTASTS_FETCH_DOMAIN', `"${domain}" is not a domain name`);
  }
  const target: Target = {
    host,
    port: options.port ?? 443,
    url: `https://${host}${options.port === undefined || options.port === 443 ? '' : `:${options.port}`}${POLICY_PATH}`,
    context: trustContext(options.ca),
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
  };
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), timeoutMs);
  const timedOut = (address?: string) =>
    failure('MTASTS_FETCH_TIMEOUT', `no complete answer from ${target.url} within ${timeoutMs} ms`, address);
  try {
    const resolved = await untilAborted(resolveAddresses(host, options), deadline.signal);
    if (resolved === ABORTED) return timedOut();
    if (!Array.isArray(resolved)) return resolved;

    const allowed = options.allowPrivate
      ? resolved
      : resolved.filter((address) => privateAddressReason(address) === undefined);
    if (allowed.length === 0) {
      const listed = resolved.map((a) => `${a} (${privateAddressReason(a)})`).join(', ');
      return failure(
        'MTASTS_FETCH_PRIVATE_ADDRESS',
        `${host} resolves only to non-public addresses: ${listed}; not connecting without --allow-private`,
        resolved[0],
      );
    }

    const connectErrors: string[] = [];
    for (const address of allowed) {
      if (deadline.signal.aborted) return timedOut(address);
      const outcome = await fetchFrom(address, target, deadline.signal, () => timedOut(address));
      if ('ok' in outcome) return outcome;
      connectErrors.push(`${address} (${outcome.connectError})`);
    }
    return failure(
      'MTASTS_FETCH_CONNECT',
      `could not connect to ${host} port ${target.port}: ${connectErrors.join(', ')}`,
      allowed[allowed.length - 1],
    );
  } finally {
    clearTimeout(timer);
  }
}

/**
 * fetchPolicy, then parsePolicy(body, { strict: false }) (RFC 8461 §3.2, as a sender reads it).
 * An invalid policy becomes MTASTS_FETCH_POLICY_INVALID with the parser's problems; on success the
 * parser's warnings follow the fetch warnings.
 */
export async function fetchAndParsePolicy(
  domain: string,
  options: FetchPolicyOptions,
): Promise<PolicyFetchAndParseResult> {
  const fetched = await fetchPolicy(domain, options);
  if (!fetched.ok) return fetched;
  try {
    const { policy, warnings } = parsePolicy(fetched.body, { strict: false });
    return { ...fetched, policy, warnings: [...fetched.warnings, ...warnings] };
  } catch (err) {
    if (!(err instanceof MtaStsError)) throw err;
    return {
      ok: false,
      code: 'MTASTS_FETCH_POLICY_INVALID',
      message: `the policy at ${policyUrl(domain)} is invalid: ${err.message}`,
      address: fetched.address,
      certificate: fetched.certificate,
      problems: [...err.problems, ...err.warnings, ...fetched.warnings],
    };
  }
}

interface Target {
  host: string;
  port: number;
  url: string;
  context: tls.SecureContext;
  connectTimeoutMs: number;
}

/** fetchFrom's answer when the TCP connection failed, so the next address is tried. */
interface ConnectError {
  connectError: string;
}

function failure(
  code: FetchFailureCode,
  message: string,
  address?: string,
  certificate?: CertificateSummary,
): PolicyFetchFailure {
  const result: PolicyFetchFailure = { ok: false, code, message };
  if (address !== undefined) result.address = address;
  if (certificate !== undefined) result.certificate = certificate;
  return result;
}

async function resolveAddresses(
  host: string,
  options: FetchPolicyOptions,
): Promise<string[] | PolicyFetchFailure> {
  let addresses: string[];
  try {
    addresses = await options.resolveHost(host);
  } catch (err) {
    return failure('MTASTS_FETCH_DNS', `could not resolve ${host}: ${(err as Error)?.message ?? err}`);
  }
  if (addresses.length === 0) return failure('MTASTS_FETCH_DNS', `${host} has no A or AAAA record`);
  const notIp = addresses.find((a) => isIP(a) === 0);
  if (notIp !== undefined) {
    return failure(
      'MTASTS_FETCH_DNS',
      `the resolver returned "${notIp}" for ${host}, which is not an IP address`,
    );
  }
  return addresses;
}

const ABORTED = Symbol('aborted');

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | typeof ABORTED> {
  if (signal.aborted) return Promise.resolve(ABORTED);
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(ABORTED);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** One attempt at one address: TCP, TLS with certificate checks, one HTTP/1.1 GET. */
function fetchFrom(
  address: string,
  target: Target,
  deadline: AbortSignal,
  timedOut: () => PolicyFetchFailure,
): Promise<PolicyFetchResult | ConnectError> {
  const { host, url } = target;
  return new Promise((resolve) => {
    let phase: 'connect' | 'handshake' | 'http' = 'connect';
    let done = false;
    // rejectUnauthorized is off only so that a failed check can describe the certificate:
    // nothing is sent until secureConnect has seen `socket.authorized`.
    const socket = tls.connect({
      host: address,
      port: target.port,
      servername: host,
      secureContext: target.context,
      rejectUnauthorized: false,
      checkServerIdentity: checkDnsId,
      ALPNProtocols: ['http/1.1'],
    });
    const finish = (outcome: PolicyFetchResult | ConnectError) => {
      if (done) return;
      done = true;
      clearTimeout(connectTimer);
      deadline.removeEventListener('abort', onDeadline);
      socket.destroy();
      resolve(outcome);
    };
    const onDeadline = () => finish(timedOut());
    deadline.addEventListener('abort', onDeadline, { once: true });
    const connectTimer = setTimeout(
      () => finish({ connectError: `no connection within ${target.connectTimeoutMs} ms` }),
      target.connectTimeoutMs,
    );

    socket.once('connect', () => {
      phase = 'handshake';
      clearTimeout(connectTimer);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (phase === 'connect') finish({ connectError: err.code ?? err.message });
      else if (phase === 'handshake') {
        finish(failure('MTASTS_FETCH_TLS', `TLS handshake with ${host} failed: ${err.message}`, address));
      }
      // In the http phase the request reports the error.
    });
    socket.once('close', () => {
      if (phase === 'handshake') {
        finish(
          failure('MTASTS_FETCH_TLS', `${host} closed the connection during the TLS handshake`, address),
        );
      }
    });
    socket.once('secureConnect', () => {
      const peer = socket.getPeerX509Certificate();
      const certificate = peer ? summarizeCertificate(peer) : undefined;
      if (!socket.authorized || certificate === undefined) {
        finish(certificateFailure(String(socket.authorizationError), host, address, certificate));
        return;
      }
      phase = 'http';
      const request = http.request({
        createConnection: () => socket,
        method: 'GET',
        path: POLICY_PATH,
        headers: {
          Host: target.port === 443 ? host : `${host}:${target.port}`,
          'User-Agent': USER_AGENT,
          Accept: 'text/plain',
          // We decode nothing: a compressed body is an error (MTASTS_FETCH_ENCODING).
          'Accept-Encoding': 'identity',
          // RFC 8461 §3.3: HTTP caching MUST NOT be used; we keep no cache and ask caches on the way
          // not to answer from theirs.
          'Cache-Control': 'no-cache',
          Connection: 'close',
        },
      });
      request.on('error', (err: NodeJS.ErrnoException) => {
        finish(
          failure('MTASTS_FETCH_PROTOCOL', `${url} did not give an HTTP answer: ${err.message}`, address),
        );
      });
      request.on('response', (response) => readResponse(response, url, address, certificate, finish));
      request.end();
    });
  });
}

function readResponse(
  response: IncomingMessage,
  url: string,
  address: string,
  certificate: CertificateSummary,
  finish: (result: PolicyFetchResult) => void,
): void {
  const status = response.statusCode ?? 0;
  const fail = (code: FetchFailureCode, message: string) =>
    finish(failure(code, message, address, certificate));
  // RFC 8461 §3.3: only a 200 response is a policy; 3xx redirects MUST NOT be followed.
  if (status >= 300 && status < 400) {
    const location = response.headers.location;
    fail(
      'MTASTS_FETCH_REDIRECT',
      `${url} redirects (${status}) to ${location ?? '(no Location header)'}; RFC 8461 §3.3: redirects are ` +
        'not followed, serve the policy at this URL itself',
    );
    return;
  }
  if (status !== 200) {
    fail('MTASTS_FETCH_STATUS', `${url} answered ${status} ${response.statusMessage ?? ''}`.trimEnd());
    return;
  }
  const encoding = response.headers['content-encoding']?.trim().toLowerCase();
  if (encoding && encoding !== 'identity') {
    fail(
      'MTASTS_FETCH_ENCODING',
      `${url} sent Content-Encoding "${encoding}" though the request asked for none`,
    );
    return;
  }
  const tooLarge = `${url} sent more than ${MAX_POLICY_BYTES} bytes (RFC 8461 §3.3 suggests at most 64 KB)`;
  // RFC 8461 §3.3: a suggested maximum policy size is 64 kilobytes.
  if (Number(response.headers['content-length']) > MAX_POLICY_BYTES) {
    fail('MTASTS_FETCH_TOO_LARGE', tooLarge);
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  response.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_POLICY_BYTES) fail('MTASTS_FETCH_TOO_LARGE', tooLarge);
    else chunks.push(chunk);
  });
  response.on('error', () => {}); // reported by 'close' below
  response.on('close', () => {
    if (!response.complete)
      fail('MTASTS_FETCH_PROTOCOL', `${url} closed the connection before the end of the body`);
  });
  response.on('end', () => {
    let body: string;
    try {
      body = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(Buffer.concat(chunks));
    } catch {
      fail('MTASTS_FETCH_ENCODING', `the body of ${url} is not valid UTF-8`);
      return;
    }
    const contentType = response.headers['content-type'];
    const result: PolicyFetchSuccess = {
      ok: true,
      body,
      certificate,
      address,
      warnings: contentTypeWarnings(contentType, url),
    };
    if (contentType !== undefined) result.contentType = contentType;
    finish(result);
  });
}

/** RFC 8461 §3.2: the policy is text/plain, and senders SHOULD check the media type. */
export function contentTypeWarnings(contentType: string | undefined, url: string): Problem[] {
  if (contentType === undefined) {
    return [
      problem('warning', 'MTASTS_FETCH_CONTENT_TYPE', `${url} has no Content-Type; serve it as text/plain`),
    ];
  }
  const [mediaType = '', ...parameters] = contentType.split(';');
  if (mediaType.trim().toLowerCase() !== 'text/plain') {
    return [
      problem(
        'warning',
        'MTASTS_FETCH_CONTENT_TYPE',
        `${url} has Content-Type "${contentType}"; RFC 8461 §3.2 wants text/plain and senders may refuse others`,
      ),
    ];
  }
  for (const parameter of parameters) {
    const [name = '', value = ''] = parameter.split('=');
    if (name.trim().toLowerCase() !== 'charset') continue;
    const charset = value
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .toLowerCase();
    if (charset !== 'utf-8' && charset !== 'us-ascii') {
      return [
        problem(
          'warning',
          'MTASTS_FETCH_CHARSET',
          `${url} declares charset "${charset}"; the policy is read as UTF-8 (use utf-8 or us-ascii)`,
        ),
      ];
    }
  }
  return [];
}

// OpenSSL verification results (and Node's name check) grouped by what the administrator must fix.
const EXPIRED_ERRORS = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
const NAME_ERRORS = new Set(['ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH']);
const UNTRUSTED_HINTS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the certificate is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'the chain ends in a root CA that is not trusted',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'its issuer is unknown: serve the intermediate certificates too',
  UNABLE_TO_GET_ISSUER_CERT: 'an issuer in the chain is unknown: serve the intermediate certificates too',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the issuing CA is not trusted',
  CERT_SIGNATURE_FAILURE: 'a signature in the chain does not verify',
};

function certificateFailure(
  reason: string,
  host: string,
  address: string,
  certificate: CertificateSummary | undefined,
): PolicyFetchFailure {
  const about = certificate
    ? ` (subject ${certificate.subject}, issuer ${certificate.issuer}, valid until ${certificate.validTo})`
    : '';
  // RFC 8461 §3.3: the certificate must be non-expired ...
  if (EXPIRED_ERRORS.has(reason)) {
    const what =
      reason === 'CERT_NOT_YET_VALID'
        ? 'a certificate in the chain is not valid yet'
        : certificate && certificate.daysLeft < 0
          ? `the certificate expired on ${certificate.validTo}`
          : 'a CA certificate in the chain has expired';
    return failure('MTASTS_FETCH_CERT_EXPIRED', `${host}: ${what}${about}`, address, certificate);
  }
  // ... valid for the "mta-sts" DNS-ID (RFC 6125) ...
  if (NAME_ERRORS.has(reason)) {
    const names = certificate?.san.length ? certificate.san.join(', ') : 'no DNS name';
    return failure(
      'MTASTS_FETCH_CERT_NAME',
      `the certificate of ${host} is valid for ${names}, not for ${host}${about}`,
      address,
      certificate,
    );
  }
  // ... and chain to a root CA that is trusted by the sending MTA.
  const hint = UNTRUSTED_HINTS[reason] ?? 'verification failed';
  return failure(
    'MTASTS_FETCH_CERT_UNTRUSTED',
    `the certificate of ${host} is not trusted: ${hint} (${reason})${about}`,
    address,
    certificate,
  );
}

/**
 * RFC 8461 §3.3: the certificate must be valid for the "mta-sts" DNS-ID. Node would fall back to the
 * subject CN when there is no subjectAltName dNSName; RFC 9525 §6.3 drops that fallback (and public
 * CAs always include the SAN), so a certificate without one is refused.
 */
function checkDnsId(host: string, cert: tls.PeerCertificate): Error | undefined {
  if (!/(?:^|, )DNS:/.test(cert.subjectaltname ?? '')) {
    return Object.assign(new Error(`the certificate has no DNS name in subjectAltName`), {
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
  }
  return tls.checkServerIdentity(host, cert);
}

export function summarizeCertificate(cert: X509Certificate, now: number = Date.now()): CertificateSummary {
  const validTo = new Date(cert.validTo);
  return {
    subject: oneLine(cert.subject),
    issuer: oneLine(cert.issuer),
    validFrom: new Date(cert.validFrom).toISOString(),
    validTo: validTo.toISOString(),
    daysLeft: Math.floor((validTo.getTime() - now) / DAY_MS),
    san: (cert.subjectAltName ?? '')
      .split(', ')
      .filter((entry) => entry.startsWith('DNS:'))
      .map((entry) => entry.slice(4)),
  };
}

function oneLine(distinguishedName: string): string {
  return distinguishedName.split('\n').filter(Boolean).join(', ');
}

// One SecureContext per set of trust anchors: building one from ~150 roots takes milliseconds.
let systemContext: tls.SecureContext | undefined;
const extraContexts = new WeakMap<readonly string[], tls.SecureContext>();

/** Node's root store (tls.rootCertificates) plus `extra`, as --ca-file adds anchors. */
function trustContext(extra: readonly string[] | undefined): tls.SecureContext {
  if (extra === undefined || extra.length === 0) {
    systemContext ??= tls.createSecureContext({ ca: [...tls.rootCertificates] });
    return systemContext;
  }
  let context = extraContexts.get(extra);
  if (context === undefined) {
    extra.forEach((pem, index) => {
      // createSecureContext silently skips what is not a certificate: refuse it here instead.
      try {
        if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate');
        new X509Certificate(pem);
      } catch {
        throw new TypeError(`fetchPolicy: options.ca[${index}] is not a PEM certificate`);
      }
    });
    context = tls.createSecureContext({ ca: [...tls.rootCertificates, ...extra] });
    extraContexts.set(extra, context);
  }
  return context;
}
