// ACME (RFC 8555) certificates for the policy hosts mta-sts.<domain>, with acme-client.
// For every configured domain whose host has no certificate in <dataDir>/certs/<host>/ (or one that
// expires within renewDaysBefore, or does not name the host), order one: the HTTP-01 challenge
// (RFC 8555 §8.3) is answered by our own plain listener from <dataDir>/acme/challenges/<token>
// (app.ts), so every serve process can answer it; the new key and chain are written next to the old
// ones (write, then rename) and tls.ts picks them up without a restart. Hosts whose certificate
// comes from the settings (`certificates`) are managed by their owner and left alone.
// Runs in one process only (the cluster primary, or the single process), at start and hourly.
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { dirname, join } from 'node:path';
import tls from 'node:tls';
import acme from 'acme-client';
import type { Logger } from 'pino';
import { CHALLENGES_SUBDIR } from './app.js';
import type { ServeConfig, ServerContext } from './context.js';
import { serverMetrics } from './metrics.js';
import { hostCertificateFiles } from './tls.js';

export type AcmeSettings = NonNullable<ServeConfig['acme']>;

/** How often the certificates are looked at (renewal is due renewDaysBefore the end). */
export const ACME_CHECK_INTERVAL_MS = 3600_000;
const DAY_MS = 86_400_000;
export const ACCOUNT_KEY_FILE = join('acme', 'account-key.pem');

export interface AcmeOutcome {
  host: string;
  result: 'valid' | 'issued' | 'failed';
  /** Why a new certificate was ordered, or why the order failed. */
  reason?: string;
  notAfter?: string;
}

export interface AcmeManagerOptions {
  /** <dataDir>/certs. */
  certsDirectory: string;
  /** Hosts with certificates from the settings: never ordered. */
  managedElsewhere?: Iterable<string>;
  checkIntervalMs?: number;
  /** acme-client's polling backoff (default 5 s first wait); tests make it short. */
  backoffMinMs?: number;
}

/**
 * Why the certificate in `pem` needs replacing for `host` at `now`, or undefined when it is fine:
 * unreadable, not for the host, not yet valid, or within `renewDaysBefore` days of its end.
 */
export function renewalReason(
  pem: string | undefined,
  host: string,
  now: Date,
  renewDaysBefore: number,
): string | undefined {
  if (pem === undefined) return 'no certificate yet';
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return 'the certificate file does not parse';
  }
  if (cert.checkHost(host) === undefined) return `the certificate is not for ${host}`;
  if (new Date(cert.validFrom) > now) return 'the certificate is not valid yet';
  const left = new Date(cert.validTo).getTime() - now.getTime();
  if (left <= renewDaysBefore * DAY_MS) {
    return left <= 0 ? 'the certificate has expired' : `the certificate ends within ${renewDaysBefore} days`;
  }
  return undefined;
}

export class AcmeManager {
  private client: acme.Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<AcmeOutcome[]> | undefined;
  private readonly log: Logger;
  private readonly managedElsewhere: Set<string>;

  constructor(
    private readonly ctx: ServerContext,
    private readonly settings: AcmeSettings,
    private readonly options: AcmeManagerOptions,
  ) {
    this.log = ctx.logger.child({ component: 'acme' });
    this.managedElsewhere = new Set([...(options.managedElsewhere ?? [])].map((h) => h.toLowerCase()));
    acme.setLogger((message) => this.log.debug(message));
    if (settings.caFile) {
      // The directory's own HTTPS certificate (a test CA such as Pebble's) on top of the system roots.
      const ca = [...tls.rootCertificates, readFileSync(settings.caFile, 'utf8')];
      acme.axios.defaults.httpsAgent = new https.Agent({ ca });
    }
  }

  /** Check now (in the background) and every checkIntervalMs. */
  start(): void {
    const run = () => {
      this.checkAll().catch((err: Error) => this.log.error({ err: err.message }, 'certificate check failed'));
    };
    run();
    this.timer = setInterval(run, this.options.checkIntervalMs ?? ACME_CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  /** Stop the timer and wait for a check in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** Look at every domain's certificate, ordering the missing or expiring ones (one at a time). */
  checkAll(): Promise<AcmeOutcome[]> {
    this.running ??= this.checkDomains().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async checkDomains(): Promise<AcmeOutcome[]> {
    const outcomes: AcmeOutcome[] = [];
    for (const domain of await this.ctx.store.listDomains()) {
      if (domain.watchOnly) continue; // its policy host is someone else's (issue 12)
      const host = `mta-sts.${domain.name}`;
      if (this.managedElsewhere.has(host)) continue;
      outcomes.push(await this.ensureCertificate(host));
    }
    return outcomes;
  }

  /** Order a certificate for `host` when it needs one. */
  async ensureCertificate(host: string): Promise<AcmeOutcome> {
    const files = hostCertificateFiles(this.options.certsDirectory, host);
    const current = existsSync(files.cert) ? readFileSync(files.cert, 'utf8') : undefined;
    const reason = renewalReason(current, host, this.ctx.now(), this.settings.renewDaysBefore);
    if (reason === undefined) {
      return { host, result: 'valid', notAfter: new X509Certificate(current!).validTo };
    }
    const metrics = serverMetrics(this.ctx.metrics);
    this.log.info({ host, reason }, 'ordering a certificate');
    try {
      const notAfter = await this.order(host, files.key, files.cert);
      metrics.acmeOrders.inc({ host, result: 'issued' });
      this.log.info({ host, notAfter }, 'certificate issued');
      return { host, result: 'issued', reason, notAfter };
    } catch (err) {
      metrics.acmeOrders.inc({ host, result: 'failed' });
      const message = (err as Error).message;
      this.log.error({ host, err: message }, 'certificate order failed; will retry at the next check');
      return { host, result: 'failed', reason: message };
    }
  }

  private async order(host: string, keyPath: string, certPath: string): Promise<string> {
    const client = await this.acmeClient();
    const key = await acme.crypto.createPrivateEcdsaKey('P-256');
    const [, csr] = await acme.crypto.createCsr({ commonName: host, altNames: [host] }, key);
    const challengeDir = join(this.ctx.config.dataDir, CHALLENGES_SUBDIR);
    mkdirSync(challengeDir, { recursive: true });
    const chain = await client.auto({
      csr,
      email: this.settings.email,
      termsOfServiceAgreed: true,
      challengePriority: ['http-01'],
      // acme-client's own pre-check fetches the URL through the system resolver: the CA checks anyway.
      skipChallengeVerification: true,
      challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
        writeAtomically(join(challengeDir, challenge.token), keyAuthorization);
      },
      challengeRemoveFn: async (_authz, challenge) => {
        rmSync(join(challengeDir, challenge.token), { force: true });
      },
    });
    const leaf = new X509Certificate(chain);
    if (leaf.checkHost(host) === undefined)
      throw new Error(`the CA issued a certificate that is not for ${host}`);
    mkdirSync(dirname(certPath), { recursive: true });
    // Key first: the pair mismatches only until the chain lands, and tls.ts keeps the old pair meanwhile.
    writeAtomically(keyPath, key, 0o600);
    writeAtomically(certPath, chain);
    return leaf.validTo;
  }

  private async acmeClient(): Promise<acme.Client> {
    if (this.client) return this.client;
    const keyPath = join(this.ctx.config.dataDir, ACCOUNT_KEY_FILE);
    let accountKey: Buffer;
    if (existsSync(keyPath)) {
      accountKey = readFileSync(keyPath);
    } else {
      accountKey = await acme.crypto.createPrivateEcdsaKey('P-256');
      mkdirSync(dirname(keyPath), { recursive: true });
      writeAtomically(keyPath, accountKey, 0o600);
    }
    const client = new acme.Client({
      directoryUrl: this.settings.directoryUrl,
      accountKey,
      ...(this.options.backoffMinMs
        ? { backoffMin: this.options.backoffMinMs, backoffMax: this.options.backoffMinMs * 4 }
        : {}),
    });
    await client.createAccount({ termsOfServiceAgreed: true, contact: [`mailto:${this.settings.email}`] });
    this.client = client;
    return client;
  }
}

/** Write a file so that readers see the old or the new content, never half of it. */
function writeAtomically(path: string, content: string | Buffer, mode = 0o644): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, content, { mode });
  chmodSync(temporary, mode);
  renameSync(temporary, path);
}
