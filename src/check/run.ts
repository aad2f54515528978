// The domain audit: runs every section against one domain and returns its findings (no printing).
// Order: MX first (the shared sending path: everything else needs the hosts), then the DNS-record sections and
// the SMTP probes in parallel, then the TLS/DANE verdicts, which depend on the MTA-STS policy (an enforced
// policy makes a certificate problem fatal, RFC 8461 §4.2), and what each kind of sender does.
import { stsViewOf } from '../sender/sts.js';
import { checkDkim } from './dkim.js';
import { checkDmarc } from './dmarc.js';
import { checkMtaSts } from './mtasts.js';
import { checkMx } from './mx.js';
import { checkProvider } from './provider.js';
import { sendersFindings } from './senders.js';
import { checkSpf } from './spf.js';
import { checkMxTlsRpt, checkTlsRpt } from './tlsrpt.js';
import { gatherTransport, hostTlsFacts, transportFindings } from './transport.js';
import {
  type CheckEnvironment,
  type DomainReport,
  type Finding,
  type MtaStsState,
  SECTIONS,
  worstStatus,
} from './types.js';

export interface DomainCheck extends DomainReport {
  /** What this run saw of the policy, for the next run's "id unchanged" check. */
  mtaSts?: MtaStsState;
}

export async function checkDomain(domain: string, env: CheckEnvironment): Promise<DomainCheck> {
  const mx = await checkMx(domain, env);
  if (mx.fatal) return { domain, status: 'error', findings: mx.findings, error: mx.fatal };
  // A domain that does not exist gets that one finding: no records to publish for a name that is not there.
  if (mx.path.mx.status === 'nxdomain') return { domain, status: 'fail', findings: mx.findings };

  const [sts, tlsrpt, mxTlsrpt, spf, dmarc, dkim, transport] = await Promise.all([
    checkMtaSts(domain, env, mx.hosts),
    checkTlsRpt(domain, env),
    checkMxTlsRpt(domain, mx.hosts, env),
    checkSpf(domain, env),
    checkDmarc(domain, env),
    checkDkim(domain, env),
    gatherTransport(domain, env, mx.hosts),
  ]);
  const provider =
    env.preset === undefined
      ? []
      : await checkProvider(
          {
            domain,
            preset: env.preset,
            hosts: mx.hosts,
            mxSecure: mx.path.mx.secure,
            policy: sts.state.policy,
            stsFindings: sts.findings,
          },
          env,
        );
  const findings = [
    ...mx.findings,
    ...sts.findings,
    ...transportFindings(transport, sts.state.policy, env),
    ...sendersFindings(mx.path, stsViewOf(sts.seen), hostTlsFacts(transport, env)),
    ...tlsrpt,
    ...mxTlsrpt,
    ...spf,
    ...dmarc,
    ...dkim,
    ...provider,
  ];
  // Stable order for people and diffs: by section as listed in SECTIONS, then as found.
  const order = (s: string) => SECTIONS.indexOf(s as (typeof SECTIONS)[number]);
  findings.sort((a, b) => order(a.section) - order(b.section));
  markDnssecConsequences(findings);
  return { domain, status: worstStatus(findings), findings, mtaSts: sts.state };
}

/** What our DNS failure texts say of a bogus answer (src/sender/dns-failure.ts, and RFC 8914 EDE text). */
const BOGUS_TEXT = /fails DNSSEC validation \(bogus\)|DNSSEC Bogus/i;
const ROOT_CODES: ReadonlySet<string> = new Set(['MX_DNSSEC_BOGUS', 'MX_HOST_DNSSEC_BOGUS']);

/**
 * One DNSSEC cause is reported once: when the domain's zone (MX_DNSSEC_BOGUS) or an MX host's zone
 * (MX_HOST_DNSSEC_BOGUS) answers bogus, every other failure that is only that bogus answer again (the
 * `_mta-sts`, TLS-RPT, SPF, DMARC lookups of the same zone; the TLSA lookup of the same host) becomes `skip`
 * with `cause` naming the first, and loses its fix: repairing the signatures fixes them all.
 */
export function markDnssecConsequences(findings: Finding[]): void {
  const roots = new Map<string, Finding>();
  for (const f of findings) {
    const key = f.code === 'MX_DNSSEC_BOGUS' ? '' : f.host;
    if (ROOT_CODES.has(f.code) && key !== undefined && !roots.has(key)) roots.set(key, f);
  }
  if (roots.size === 0) return;
  const causes = new Set(roots.values());
  for (const [i, f] of findings.entries()) {
    if (causes.has(f)) continue;
    if (f.status !== 'fail' || !BOGUS_TEXT.test(f.message)) continue;
    const root = (f.host !== undefined ? roots.get(f.host) : undefined) ?? roots.get('');
    if (root === undefined) continue;
    const { fix: _theirs, ...rest } = f;
    findings[i] = {
      ...rest,
      status: 'skip',
      cause: root.code,
      message: `${f.message} (follows from ${root.code})`,
    };
  }
}
