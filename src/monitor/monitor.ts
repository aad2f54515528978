// One monitored check of one watched domain (issue 12): run `mxguard check`'s audit (src/check/run.ts)
// with serve's network settings, add the monitor's own findings (findings.ts), decide which alerts open
// and resolve (damping.ts), and write the run, the alert changes and their notifications in one store
// transaction (CheckOutcome). The scheduler (scheduler.ts) decides when; this module decides what.
import { checkDomain, type DomainCheck } from '../check/run.js';
import type { CheckEnvironment } from '../check/types.js';
import type { Resolver } from '../dns/resolver.js';
import { domainKey } from '../store/domain-rules.js';
import type {
  Alert,
  AlertEvent,
  CheckOutcome,
  CheckRun,
  CheckRunStatus,
  MonitorStore,
  NewAlert,
  StoredFinding,
} from '../store/monitor-types.js';
import { type Domain, type Store, StoreError } from '../store/types.js';
import type { Condition } from './conditions.js';
import { alertChanges, historyNeeded } from './damping.js';
import { publishedIdFindings, readTlsRptFindings } from './findings.js';
import { deliveriesFor } from './notify/targets.js';
import type { MonitorSettings } from './settings.js';

export type CheckTrigger = CheckRun['trigger'];

/** What the API and the CLI ask of the monitor (ServerContext.monitor). */
export interface MonitorControl {
  /**
   * Checks the domain now (after a check of it already under way) and returns the stored run.
   * Throws StoreError STORE_DOMAIN_UNKNOWN for a domain that is not watched.
   */
  checkNow(domain: string): Promise<CheckRun>;
  /**
   * The audit alone with serve's network, nothing stored, for any domain (the pre-flight of an enforce
   * policy, src/monitor/preflight.ts). Status `error` when it could not run.
   */
  liveCheck(domain: string): Promise<DomainCheck>;
}

/** The network the checks use: serve's common network options (ServerContext resolver + network). */
export interface MonitorNetwork {
  resolver: Resolver;
  ca: string[];
  allowPrivate: boolean;
  timeoutMs: number;
  /** Real ports unless a lab says otherwise. */
  smtpPort?: number;
  httpsPort?: number;
}

export type MonitorStoreView = MonitorStore &
  Pick<Store, 'getDomain' | 'listDomains' | 'dailyCounts' | 'failureBreakdown' | 'getSetting' | 'setSetting'>;

export interface MonitorDeps {
  store: MonitorStoreView;
  settings: MonitorSettings;
  network: MonitorNetwork;
  now(): Date;
  /** The audit; default checkDomain (tests hand in another). */
  check?: (domain: string, env: CheckEnvironment) => Promise<DomainCheck>;
  /** After a run is stored (the deliverer's wake()). */
  recorded?: (run: CheckRun) => void;
}

/** Where the policy first seen under the current `_mta-sts` id is kept, per domain (MTASTS_ID_UNCHANGED). */
const SEEN_POLICY_SETTING = 'monitor.policySeen.';

export class Monitor {
  constructor(private readonly deps: MonitorDeps) {}

  /** One check: run, compare, record. Resolves with the stored run (status `error` when it could not run). */
  async check(name: string, trigger: CheckTrigger): Promise<CheckRun> {
    const { store, settings } = this.deps;
    const domain = await store.getDomain(domainKey(name));
    if (!domain) throw new StoreError('STORE_DOMAIN_UNKNOWN', `domain "${name}" is not configured`);
    const started = this.deps.now();
    const result = await this.audit(domain.name, started, await this.seenPolicy(domain.name));
    const findings = result.status === 'error' ? result.findings : await this.withOwnFindings(domain, result);
    const status: CheckRunStatus = result.status === 'error' ? 'error' : worstOf(findings);
    const at = started.toISOString();
    const run: CheckOutcome['run'] = {
      domain: domain.name,
      at,
      durationMs: Math.max(0, this.deps.now().getTime() - started.getTime()),
      status,
      findings,
      trigger,
      ...(result.error === undefined ? {} : { error: result.error }),
    };
    const [previous, open] = await Promise.all([
      historyNeeded(settings) === 0 ? [] : store.recentCheckRuns(domain.name, historyNeeded(settings)),
      store.openAlerts(domain.name),
    ]);
    const changes = alertChanges(run, previous, open, settings);
    const outcome: CheckOutcome = {
      run,
      open: changes.open.map((c) => {
        const alert = newAlert(domain.name, c);
        return { alert, deliveries: deliveriesFor(this.openedEvent(alert, at), settings) };
      }),
      resolve: changes.resolve.map((a) => ({
        alertId: a.id,
        deliveries: deliveriesFor(this.resolvedEvent(a, at), settings),
      })),
    };
    const { runId } = await store.recordCheck(outcome, this.deps.now());
    await this.rememberPolicy(domain.name, result);
    const stored: CheckRun = { id: runId, ...run };
    this.deps.recorded?.(stored);
    return stored;
  }

  /** The audit of any domain, nothing stored (MonitorControl.liveCheck). */
  liveCheck(name: string): Promise<DomainCheck> {
    return this.audit(domainKey(name), this.deps.now(), undefined);
  }

  /** The audit with serve's network; a resolver that does not answer, or a crash, is a run with `error`. */
  private async audit(
    name: string,
    now: Date,
    previousPolicy: CheckEnvironment['previousPolicy'],
  ): Promise<DomainCheck> {
    const { network, settings } = this.deps;
    const fail = (error: string): DomainCheck => ({
      domain: name,
      status: 'error',
      findings: [],
      error,
    });
    try {
      const validating = await network.resolver.checkValidating();
      if (validating.result.outcome === 'timeout' || validating.result.outcome === 'error') {
        return fail(`resolver unreachable: ${validating.result.error ?? validating.result.outcome}`);
      }
      const env: CheckEnvironment = {
        resolver: network.resolver,
        dnssecValidating: validating.validating,
        ca: network.ca,
        allowPrivate: network.allowPrivate,
        timeoutMs: network.timeoutMs,
        smtpPort: network.smtpPort ?? 25,
        httpsPort: network.httpsPort ?? 443,
        dkimSelectors: [],
        previousPolicy,
        expiryWarningDays: settings.expiryDays,
        now,
      };
      return await (this.deps.check ?? checkDomain)(name, env);
    } catch (err) {
      return fail(`internal error: ${(err as Error).message}`);
    }
  }

  /** The monitor's findings first (the store keeps the first MAX_STORED_FINDINGS), then the audit's. */
  private async withOwnFindings(domain: Domain, result: DomainCheck): Promise<StoredFinding[]> {
    const own = [
      ...publishedIdFindings(domain, result),
      ...(await readTlsRptFindings(this.deps.store, domain.name, this.deps.settings, this.deps.now())),
    ];
    return [...own, ...result.findings.map(storedFinding)];
  }

  private async seenPolicy(domain: string): Promise<{ id: string; body: string } | undefined> {
    const text = await this.deps.store.getSetting(SEEN_POLICY_SETTING + domain);
    if (text === undefined) return undefined;
    try {
      const seen = JSON.parse(text) as { id?: unknown; body?: unknown };
      return typeof seen.id === 'string' && typeof seen.body === 'string'
        ? { id: seen.id, body: seen.body }
        : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Keeps the policy first seen under each id: compared with it, a changed body under the same id stays
   * a finding (MTASTS_ID_UNCHANGED) until the id changes, not only in the first check after the change.
   */
  private async rememberPolicy(domain: string, result: DomainCheck): Promise<void> {
    const id = result.mtaSts?.id;
    const body = result.mtaSts?.body;
    if (id === undefined || body === undefined) return;
    const seen = await this.seenPolicy(domain);
    if (seen?.id === id) return;
    await this.deps.store.setSetting(SEEN_POLICY_SETTING + domain, JSON.stringify({ id, body }));
  }

  private openedEvent(alert: NewAlert, at: string): AlertEvent {
    return this.event('alert.opened', alert, at);
  }

  private resolvedEvent(alert: Alert, at: string): AlertEvent {
    return { ...this.event('alert.resolved', alert, alert.openedAt), resolvedAt: at };
  }

  private event(kind: AlertEvent['event'], alert: NewAlert, openedAt: string): AlertEvent {
    const event: AlertEvent = {
      event: kind,
      domain: alert.domain,
      code: alert.code,
      severity: alert.severity,
      message: alert.message,
      openedAt,
    };
    const host = hostOf(alert.code, alert.subject);
    if (host !== undefined) event.host = host;
    if (alert.fix !== undefined) event.fix = alert.fix;
    const base = this.deps.settings.dashboardUrl;
    if (base !== undefined) {
      event.dashboardUrl = `${base.replace(/\/+$/, '')}/#/domains/${encodeURIComponent(alert.domain)}`;
    }
    return event;
  }
}

function newAlert(domain: string, c: Condition): NewAlert {
  const alert: NewAlert = {
    domain,
    code: c.code,
    subject: c.subject,
    severity: c.severity,
    message: c.message,
  };
  if (c.fix !== undefined) alert.fix = c.fix;
  return alert;
}

/** The event's `host`: the alert's subject (an MX host, `host/address` or the policy host), if a host. */
function hostOf(code: string, subject: string): string | undefined {
  return subject === '' || code.startsWith('TLSRPT_') ? undefined : subject;
}

function storedFinding(f: DomainCheck['findings'][number]): StoredFinding {
  return { ...f };
}

function worstOf(findings: readonly StoredFinding[]): CheckRunStatus {
  if (findings.some((f) => f.status === 'fail')) return 'fail';
  if (findings.some((f) => f.status === 'warn')) return 'warn';
  return 'pass';
}
