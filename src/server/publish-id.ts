// Publishes the `_mta-sts.<domain>` TXT record with the new policy id (RFC 8461 §3.1: senders fetch a
// changed policy only once they see a new id) by DNS UPDATE (RFC 2136, signed with TSIG, RFC 8945)
// when a publisher is configured for the domain, then looks it up through the resolver the way
// senders do (src/server/livecheck.ts). The policy is stored before; a failed publish never undoes it.
// The last outcome per domain is kept in <dataDir>/dns-update/<domain>.json, so every serve process
// (the dashboard) and `mxguard domain set` see the same.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Resolver } from '../dns/resolver.js';
import { DnsUpdateError, replaceRRsets } from '../dns/update.js';
import { formatStsRecord } from '../mtasts/record.js';
import { domainKey } from '../store/domain-rules.js';
import type { Domain, Store } from '../store/types.js';
import type { IdPublisher, IdPublishers, ServerContext } from './context.js';
import { publishedIdStatus } from './livecheck.js';

/** published: the authoritative server took it, the resolver does not show it yet; visible: it does. */
export type PublishIdStatus = 'published' | 'visible' | 'failed' | 'not-configured';

export interface PublishIdOutcome {
  status: PublishIdStatus;
  /** The policy id the record carries. */
  policyId: string;
  /** When it was tried (ISO 8601). */
  at: string;
  /** The TXT record: what was published, or what to publish by hand when it failed. */
  record: { name: string; value: string };
  /** The zone updated (published, visible). */
  zone?: string;
  /** Why it failed, or why the resolver does not show it yet. */
  error?: string;
  /** DnsUpdateError code when the UPDATE failed. */
  code?: string;
}

export interface PublishIdDeps {
  store: Store;
  /** The resolver of the visibility check (serve's live lookups). */
  resolver: Resolver;
  dataDir: string;
  logger?: Pick<Logger, 'info' | 'warn'>;
  now(): Date;
  timeoutMs: number;
}

/** Lookups after a publish until the resolver shows the new id: a cached old record may need its TTL. */
const VISIBLE_TRIES = 3;
const VISIBLE_INTERVAL_MS = 1000;
const STATUS_DIR = 'dns-update';

/** The publisher configured for a domain: its own, else the default, else none. */
export function publisherFor(publishers: IdPublishers | undefined, domain: string): IdPublisher | undefined {
  if (publishers === undefined) return undefined;
  return publishers.domains[domainKey(domain)] ?? publishers.default;
}

/** The `_mta-sts` TXT record announcing a policy id (RFC 8461 §3.1). */
export function stsIdRecord(domain: string, policyId: string): { name: string; value: string } {
  return { name: `_mta-sts.${domainKey(domain)}`, value: formatStsRecord({ id: policyId, extensions: [] }) };
}

/**
 * Publish the stored domain's current id with `publisher` (not-configured without one), check that the
 * resolver shows it, remember and log the outcome. Never throws for DNS problems: they are the outcome.
 */
export async function publishPolicyId(
  deps: PublishIdDeps,
  publisher: IdPublisher | undefined,
  domain: Pick<Domain, 'name' | 'policyId'>,
): Promise<PublishIdOutcome> {
  const record = stsIdRecord(domain.name, domain.policyId);
  const base = { policyId: domain.policyId, at: deps.now().toISOString(), record };
  if (publisher === undefined) return { status: 'not-configured', ...base };
  let outcome: PublishIdOutcome;
  try {
    const result = await replaceRRsets(
      // Only the "v=STSv1" record is replaced; other TXT records at the name stay.
      [
        {
          name: record.name,
          type: 'TXT',
          ttl: publisher.ttl,
          records: [record.value],
          replacePrefix: 'v=STSv1',
        },
      ],
      { server: publisher.server, key: publisher.key, zone: publisher.zone, timeoutMs: deps.timeoutMs },
    );
    outcome = { ...base, zone: result.zone, ...(await visibility(deps, domain)) };
  } catch (err) {
    if (!(err instanceof DnsUpdateError)) throw err;
    outcome = { status: 'failed', ...base, error: err.message, code: err.code };
  }
  try {
    rememberOutcome(deps.dataDir, domain.name, outcome);
  } catch (err) {
    // The dashboard then shows the live lookup alone; the change and the publish stand.
    deps.logger?.warn(
      { domain: domain.name, error: (err as Error).message },
      'cannot record the publish outcome',
    );
  }
  const log = { domain: domain.name, policyId: domain.policyId, status: outcome.status, code: outcome.code };
  if (outcome.status === 'failed')
    deps.logger?.warn({ ...log, error: outcome.error }, 'publishing the _mta-sts id failed');
  else deps.logger?.info(log, 'published the _mta-sts id');
  return outcome;
}

/** publishPolicyId with serve's publisher for the domain, resolver, logger and clock. */
export function publishFromServe(
  ctx: Pick<ServerContext, 'store' | 'resolver' | 'config' | 'logger' | 'now' | 'network'>,
  domain: Pick<Domain, 'name' | 'policyId'>,
): Promise<PublishIdOutcome> {
  const deps = {
    store: ctx.store,
    resolver: ctx.resolver,
    dataDir: ctx.config.dataDir,
    logger: ctx.logger,
    now: ctx.now,
    timeoutMs: ctx.network.timeoutMs,
  };
  return publishPolicyId(deps, publisherFor(ctx.config.dnsUpdate, domain.name), domain);
}

/** What to tell the user about an outcome, after the policy change itself. */
export function outcomeSentence(outcome: PublishIdOutcome): string {
  const txt = `the TXT record ${outcome.record.name} "${outcome.record.value}"`;
  switch (outcome.status) {
    case 'visible':
      return `published ${txt} by DNS UPDATE (zone ${outcome.zone}); the resolver answers it`;
    case 'published':
      return `published ${txt} by DNS UPDATE (zone ${outcome.zone}); not visible through the resolver yet: ${outcome.error}`;
    case 'failed':
      return `publishing ${txt} by DNS UPDATE failed (${outcome.code}): ${outcome.error}; the policy is stored: publish the record by hand`;
    case 'not-configured':
      return `publish ${txt}`;
  }
}

/** visible once the resolver answers the new id; otherwise the reason it does not (yet). */
async function visibility(
  deps: PublishIdDeps,
  domain: Pick<Domain, 'name'>,
): Promise<Pick<PublishIdOutcome, 'status' | 'error'>> {
  let reason = '';
  for (let attempt = 1; attempt <= VISIBLE_TRIES; attempt++) {
    const seen = await publishedIdStatus(deps, domain.name);
    if (seen.matches) return { status: 'visible' };
    reason = seen.error ?? `the resolver still answers id ${seen.published}`;
    if (attempt < VISIBLE_TRIES) await sleep(VISIBLE_INTERVAL_MS);
  }
  return { status: 'published', error: `${reason} (a cached record lasts until its TTL ends)` };
}

function statusFile(dataDir: string, domain: string): string {
  return join(dataDir, STATUS_DIR, `${domainKey(domain)}.json`);
}

function rememberOutcome(dataDir: string, domain: string, outcome: PublishIdOutcome): void {
  const file = statusFile(dataDir, domain);
  mkdirSync(join(dataDir, STATUS_DIR), { recursive: true });
  // Written whole, then renamed: a reader in another process never sees half a file.
  writeFileSync(`${file}.${process.pid}.tmp`, JSON.stringify(outcome));
  renameSync(`${file}.${process.pid}.tmp`, file);
}

/** The last outcome of publishing this domain's id, if any was recorded (and is readable). */
export function lastPublishOutcome(dataDir: string, domain: string): PublishIdOutcome | undefined {
  try {
    const parsed = JSON.parse(readFileSync(statusFile(dataDir, domain), 'utf8')) as PublishIdOutcome;
    return typeof parsed.status === 'string' && typeof parsed.policyId === 'string' ? parsed : undefined;
  } catch {
    return undefined;
  }
}
