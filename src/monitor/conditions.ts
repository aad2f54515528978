// The alert conditions of one check run (issue 12, docs/monitoring.md "Alert codes"): which findings of
// `mxguard check` (and of the monitor's own `monitor` section, see findings.ts) an administrator must
// hear about, each keyed by (code, subject) so that an alert opens once and resolves once. Pure: it reads
// the findings as stored, so the runs of the history give the same conditions again (flap damping).
import { isIP } from 'node:net';
import type { AlertSeverity, StoredFinding } from '../store/monitor-types.js';

/** One bad condition of a domain: the key of an alert (code, subject) and what it says. */
export interface Condition {
  code: string;
  /** `host/address` for a finding about one MX address, the host (MX or policy host), or '' for the domain. */
  subject: string;
  severity: AlertSeverity;
  message: string;
  fix?: string;
}

/** How a code is keyed: one alert per MX address, per host, per domain or per `subject` the finding names. */
type Scope = 'address' | 'host' | 'domain';

/**
 * The finding codes that are alerts (docs/findings/*.md), by scope. Left out on purpose: connection
 * failures and timeouts to an MX (TLS_CONNECT_FAILED, TLS_TIMEOUT: as often the monitoring host's own
 * network as the MX), advice (MTASTS_MODE_TESTING, MTASTS_MAX_AGE_*) and record hygiene (SPF, DMARC, DKIM).
 */
export const ALERT_CODES: Readonly<Record<string, Scope>> = {
  // DANE (RFC 7672): the live certificate matches no TLSA record; TLSA lookups DNSSEC-bogus.
  DANE_TLSA_MISMATCH: 'address',
  DANE_NO_TLS: 'address',
  DANE_TLSA_BOGUS: 'host',
  // Certificates of the MX hosts (RFC 8461 §4.2): expiring within monitor.expiryDays, or already invalid.
  TLS_CERT_EXPIRING: 'address',
  TLS_CERT_EXPIRED: 'address',
  TLS_CERT_UNTRUSTED: 'address',
  TLS_CERT_NAME_MISMATCH: 'address',
  // STARTTLS no longer offered, refused, or no handshake (RFC 3207).
  TLS_NO_STARTTLS: 'address',
  TLS_STARTTLS_REFUSED: 'address',
  TLS_HANDSHAKE_FAILED: 'address',
  // DNSSEC bogus for the domain's MX RRset or an MX host's addresses.
  MX_DNSSEC_BOGUS: 'domain',
  MX_HOST_DNSSEC_BOGUS: 'host',
  // MTA-STS (RFC 8461): an MX not covered, the policy host's certificate, the policy unreachable or invalid.
  MTASTS_MX_NOT_COVERED: 'host',
  MTASTS_CERT_EXPIRING: 'host',
  MTASTS_CERT_EXPIRED: 'host',
  MTASTS_TXT_DNS: 'domain',
  MTASTS_TXT_MULTIPLE: 'domain',
  MTASTS_TXT_SYNTAX: 'domain',
  MTASTS_FETCH_DNS: 'host',
  MTASTS_FETCH_PRIVATE_ADDRESS: 'host',
  MTASTS_FETCH_CONNECT: 'host',
  MTASTS_FETCH_TIMEOUT: 'host',
  MTASTS_FETCH_TLS: 'host',
  MTASTS_FETCH_PROTOCOL: 'host',
  MTASTS_FETCH_CERT_UNTRUSTED: 'host',
  MTASTS_FETCH_CERT_NAME: 'host',
  MTASTS_FETCH_CERT_EXPIRED: 'host',
  MTASTS_FETCH_REDIRECT: 'host',
  MTASTS_FETCH_STATUS: 'host',
  MTASTS_FETCH_TOO_LARGE: 'host',
  MTASTS_FETCH_ENCODING: 'host',
  MTASTS_FETCH_POLICY_INVALID: 'host',
  MTASTS_POLICY_DUPLICATE: 'host',
  MTASTS_ID_UNCHANGED: 'domain',
  // The monitor's own findings (findings.ts): `host` holds the subject.
  MTASTS_ID_NOT_CURRENT: 'domain',
  TLSRPT_FAILURE_RATE: 'domain',
  TLSRPT_NEW_RESULT_TYPE: 'host',
};

/** RFC 7671 §8.1: a TLSA RRset tied to the current key breaks at the next key change. */
const ROLLOVER_CODES: ReadonlySet<string> = new Set(['DANE_ROLLOVER_NOT_READY', 'DANE_CURRENT_KEY_ONLY']);
/** A certificate change is near: these findings for the same MX address (within monitor.expiryDays). */
const NEAR_CHANGE_CODES: ReadonlySet<string> = new Set(['TLS_CERT_EXPIRING', 'TLS_CERT_EXPIRED']);

/**
 * The addresses a tls/dane finding is about: transport.ts merges the addresses with one verdict into one
 * finding whose message starts "192.0.2.1, 2001:db8::1: ". An IPv6 address has ':' but never ': '.
 */
export function addressesOf(message: string): { addresses: string[]; text: string } {
  const end = message.indexOf(': ');
  if (end < 0) return { addresses: [], text: message };
  const addresses = message.slice(0, end).split(', ');
  if (!addresses.every((a) => isIP(a) !== 0)) return { addresses: [], text: message };
  return { addresses, text: message.slice(end + 2) };
}

/** A finding about some addresses of one host, one entry per address (or per host without addresses). */
function perAddress(f: StoredFinding): Array<{ subject: string; message: string }> {
  const host = f.host ?? '';
  const { addresses, text } = addressesOf(f.message);
  if (addresses.length === 0) return [{ subject: host, message: host ? `${host}: ${f.message}` : f.message }];
  return addresses.map((a) => ({ subject: `${host}/${a}`, message: `${host} (${a}): ${text}` }));
}

/** The conditions of one run's findings, in the order of the findings, each key once. */
export function conditionsOf(findings: readonly StoredFinding[]): Condition[] {
  const out = new Map<string, Condition>();
  const add = (f: StoredFinding, code: string, subject: string, message: string) => {
    if (f.status !== 'fail' && f.status !== 'warn') return;
    const key = conditionKey(code, subject);
    if (out.has(key)) return;
    const c: Condition = { code, subject, severity: f.status, message };
    if (f.fix !== undefined) c.fix = f.fix;
    out.set(key, c);
  };
  // Addresses whose certificate changes soon (per host/address subject).
  const nearChange = new Set(
    findings.filter((f) => NEAR_CHANGE_CODES.has(f.code)).flatMap((f) => perAddress(f).map((p) => p.subject)),
  );
  for (const f of findings) {
    const scope = ALERT_CODES[f.code];
    if (ROLLOVER_CODES.has(f.code)) {
      for (const p of perAddress(f)) {
        if (nearChange.has(p.subject)) {
          add(f, f.code, p.subject, `${p.message} (and the certificate is due to change)`);
        }
      }
      continue;
    }
    if (scope === undefined) continue;
    if (scope === 'address') {
      for (const p of perAddress(f)) add(f, f.code, p.subject, p.message);
    } else if (scope === 'host') {
      add(f, f.code, f.host ?? '', f.message);
    } else {
      add(f, f.code, '', f.message);
    }
  }
  return [...out.values()];
}

export function conditionKey(code: string, subject: string): string {
  return `${code}\u0000${subject}`;
}
