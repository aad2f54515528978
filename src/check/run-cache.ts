// What a bulk run (`mxguard check --file`) shares between domains so that it stays fast and polite: every MX
// address is probed once per (address, port, MX name) — thousands of domains on the same provider's MX hosts
// cost a handful of SMTP connections — with at most `perHostConcurrency` connections to one address at a time
// and a pause between them; every policy is fetched once per policy host (RFC 8461 §3.3: mta-sts.<domain>).
// Handed to the checks through CheckEnvironment.probeSmtp / fetchPolicy, so a single-domain check is the same
// code. Results are kept for the run only, a bounded number of each (least recently used dropped first).
import { KeyedLimiter } from '../common/limit.js';
import type { PolicyFetchAndParseResult } from '../fetch/policy.js';
import { type FetcherSettings, fetchPolicy } from '../sender/sts.js';
import { probeSmtp, type SmtpProbeOptions, type SmtpProbeResult } from '../smtp/probe.js';

export interface RunCacheOptions {
  /** Connections to one address at the same time (default 2). */
  perHostConcurrency?: number;
  /** Pause after a connection to an address before the next one to it, in ms (default 250). */
  pauseMs?: number;
  /** Probe results kept (default 10,000; one per MX address and name). */
  maxProbes?: number;
  /** Policies kept (default 1,000: a policy host serves one domain, so only a domain listed twice reuses one). */
  maxPolicies?: number;
  /** The real probe and fetch by default; tests may count them. */
  probe?: (options: SmtpProbeOptions) => Promise<SmtpProbeResult>;
  fetch?: (domain: string, settings: FetcherSettings) => Promise<PolicyFetchAndParseResult>;
}

export interface RunCacheStats {
  /** SMTP connections made, and probes answered from the run's results. */
  probes: number;
  probesReused: number;
  policyFetches: number;
  policiesReused: number;
}

export const DEFAULT_PER_HOST_CONCURRENCY = 2;
export const DEFAULT_PER_HOST_PAUSE_MS = 250;

export class RunCache {
  private readonly probes: Memo<SmtpProbeResult>;
  private readonly policies: Memo<PolicyFetchAndParseResult>;
  private readonly limiter: KeyedLimiter;
  private readonly counts: RunCacheStats = {
    probes: 0,
    probesReused: 0,
    policyFetches: 0,
    policiesReused: 0,
  };
  private readonly probe: NonNullable<RunCacheOptions['probe']>;
  private readonly fetch: NonNullable<RunCacheOptions['fetch']>;

  constructor(options: RunCacheOptions = {}) {
    this.probes = new Memo(options.maxProbes ?? 10_000);
    this.policies = new Memo(options.maxPolicies ?? 1_000);
    this.limiter = new KeyedLimiter(
      Math.max(1, options.perHostConcurrency ?? DEFAULT_PER_HOST_CONCURRENCY),
      options.pauseMs ?? DEFAULT_PER_HOST_PAUSE_MS,
    );
    this.probe = options.probe ?? probeSmtp;
    this.fetch = options.fetch ?? fetchPolicy;
  }

  /** probeSmtp, once per (address, port, MX name, TLS versions offered) in the run, under the per-address cap. */
  readonly probeSmtp = (options: SmtpProbeOptions): Promise<SmtpProbeResult> => {
    const key = `${options.address}\0${options.port ?? 25}\0${options.mxHost.toLowerCase()}\0${options.tlsVersions ?? 'modern'}`;
    return this.probes.get(
      key,
      () => {
        this.counts.probes++;
        return this.limiter.run(options.address, () => this.probe(options));
      },
      () => this.counts.probesReused++,
    );
  };

  /** fetchPolicy, once per policy host (and port) in the run. */
  readonly fetchPolicy = (domain: string, settings: FetcherSettings): Promise<PolicyFetchAndParseResult> => {
    const key = `mta-sts.${domain.toLowerCase().replace(/\.$/, '')}\0${settings.port ?? 443}`;
    return this.policies.get(
      key,
      () => {
        this.counts.policyFetches++;
        return this.fetch(domain, settings);
      },
      () => this.counts.policiesReused++,
    );
  };

  stats(): RunCacheStats {
    return { ...this.counts };
  }
}

/** Promises by key (so callers under way share one), bounded, least recently used dropped first. */
class Memo<T> {
  private readonly entries = new Map<string, Promise<T>>();

  constructor(private readonly max: number) {}

  get(key: string, make: () => Promise<T>, onReuse: () => void): Promise<T> {
    const found = this.entries.get(key);
    if (found !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, found);
      onReuse();
      return found;
    }
    const made = make();
    this.entries.set(key, made);
    // A probe or fetch that throws (a bug, not a result) is not kept: the next domain tries again.
    made.catch(() => this.entries.delete(key));
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as string);
    return made;
  }
}
