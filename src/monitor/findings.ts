// The monitor's own findings (section `monitor`), stored with each check run beside those of `mxguard
// check`: what only `serve` knows. A hosted domain whose published `_mta-sts` id is not the current policy
// id (RFC 8461 §3.1: senders re-fetch only on a new id), and the TLS-RPT reports (RFC 8460) of the domain:
// a failure rate over monitor.tlsrptFailureRate, or a result type never reported before.
import { txtLine } from '../check/lookup.js';
import type { DomainCheck } from '../check/run.js';
import type { StoredFinding } from '../store/monitor-types.js';
import type { BreakdownRow, DailyCounts, Domain, Store } from '../store/types.js';
import type { MonitorSettings } from './settings.js';

const HOUR_MS = 3_600_000;
/**
 * "The last 24 h": reports whose period overlaps it. A report covers up to a day (RFC 8460 §4.1), so those
 * are the reports starting in the last 48 hours (the store files reports under their start).
 */
export const TLSRPT_WINDOW_MS = 48 * HOUR_MS;

type TlsRptSettings = Pick<MonitorSettings, 'tlsrptFailureRate' | 'tlsrptMinSessions'>;

function monitorFinding(
  code: string,
  message: string,
  extra: { host?: string; fix?: string },
): StoredFinding {
  return { section: 'monitor', status: 'warn', code, message, ...extra };
}

/** RFC 8461 §3.1: the published id of a domain `serve` hosts must be the id of the policy it serves. */
export function publishedIdFindings(
  domain: Pick<Domain, 'name' | 'policyId' | 'watchOnly'>,
  check: Pick<DomainCheck, 'mtaSts'>,
): StoredFinding[] {
  const published = check.mtaSts?.id;
  // No usable record at all is the check's own finding (MTASTS_TXT_*, MTASTS_NONE).
  if (domain.watchOnly === true || published === undefined || published === domain.policyId) return [];
  return [
    monitorFinding(
      'MTASTS_ID_NOT_CURRENT',
      `_mta-sts.${domain.name} publishes id "${published}" but the current policy has id "${domain.policyId}": ` +
        'senders that cached the old policy keep it until its max_age runs out',
      { fix: txtLine(`_mta-sts.${domain.name}`, `v=STSv1; id=${domain.policyId}`) },
    ),
  ];
}

/** The TLS-RPT findings from the domain's daily counts and result types (pure). */
export function tlsRptFindings(
  input: {
    /** Sessions of the reports in the window. */
    recent: DailyCounts[];
    /** Result types of the failures in the window, and of all stored reports. */
    recentTypes: BreakdownRow[];
    allTypes: BreakdownRow[];
  },
  settings: TlsRptSettings,
): StoredFinding[] {
  const out: StoredFinding[] = [];
  const successful = input.recent.reduce((n, d) => n + d.successful, 0);
  const failed = input.recent.reduce((n, d) => n + d.failed, 0);
  const total = successful + failed;
  if (total >= settings.tlsrptMinSessions && total > 0 && failed / total > settings.tlsrptFailureRate) {
    const percent = (x: number) => `${Math.round(x * 10000) / 100} %`;
    out.push(
      monitorFinding(
        'TLSRPT_FAILURE_RATE',
        `TLS-RPT: ${failed} of ${total} sessions (${percent(failed / total)}) failed in the reports of the last ` +
          `24 h, over the threshold of ${percent(settings.tlsrptFailureRate)}; see the failure details in the dashboard`,
        {},
      ),
    );
  }
  const before = new Map(input.allTypes.map((r) => [r.key, r.count]));
  for (const row of input.recentTypes) {
    // A type whose every failure is in the window was never reported before it.
    if (row.key === '' || row.count <= 0 || (before.get(row.key) ?? 0) > row.count) continue;
    out.push(
      monitorFinding(
        'TLSRPT_NEW_RESULT_TYPE',
        `TLS-RPT: senders report "${row.key}" (${row.count} session(s)) for the first time`,
        { host: row.key },
      ),
    );
  }
  return out;
}

/** The TLS-RPT findings of a domain, read from the store. */
export async function readTlsRptFindings(
  store: Pick<Store, 'dailyCounts' | 'failureBreakdown'>,
  domain: string,
  settings: TlsRptSettings,
  now: Date,
): Promise<StoredFinding[]> {
  const since = new Date(now.getTime() - TLSRPT_WINDOW_MS).toISOString();
  const [recent, recentTypes, allTypes] = await Promise.all([
    store.dailyCounts(domain, since, now.toISOString()),
    store.failureBreakdown(domain, 'resultType', since),
    store.failureBreakdown(domain, 'resultType'),
  ]);
  return tlsRptFindings({ recent, recentTypes, allTypes }, settings);
}
