// How the API shows stored data: a domain with its policy URL and `_mta-sts` record, the record set
// to publish, day-by-day counts; and the lookups every domain or report route starts with.
import { formatStsRecord } from '../../mtasts/record.js';
import { policyUrl } from '../../mtasts/url.js';
import { buildRecordSet } from '../../records/build.js';
import type { RecordsField } from '../../records/error.js';
import { formatRecords } from '../../records/format.js';
import { domainKey } from '../../store/domain-rules.js';
import type { Domain as StoredDomain } from '../../store/types.js';
import type { ServerContext } from '../context.js';
import type { PublishedIdStatus } from '../livecheck.js';
import { ApiError } from './route.js';
import type { ApiTypes } from './schemas.js';

export const DAY_MS = 86_400_000;

/** A report id from the URL: 1 to 16 digits, no leading zero; anything else is undefined (a 404). */
export function reportIdParam(text: string): number | undefined {
  const id = /^[1-9]\d{0,15}$/.test(text) ? Number(text) : Number.NaN;
  return Number.isSafeInteger(id) ? id : undefined;
}

/**
 * The store filter of the report lists' otherDomains/noPolicyDomain query (both kinds): reports about
 * domains that are not configured; the store's domain '' for reports that name no policy domain.
 */
export function otherDomainsFilter(query: {
  otherDomains?: 'true';
  noPolicyDomain?: 'true';
  domain?: string;
}): { otherDomains?: true; domain?: string } {
  if (query.noPolicyDomain && query.domain !== undefined) {
    throw new ApiError(400, 'give domain or noPolicyDomain, not both');
  }
  return {
    ...(query.otherDomains ? { otherDomains: true } : {}),
    ...(query.noPolicyDomain ? { domain: '' } : {}),
  };
}

/** A stored domain passed validDomainName, so it has a policy URL (RFC 8461 §3.3). */
export function storedPolicyUrl(domain: string): string {
  const url = policyUrl(domain);
  if (url === undefined) throw new Error(`stored domain ${domain} has no policy URL`);
  return url;
}

export async function existingDomain(ctx: ServerContext, name: string): Promise<StoredDomain> {
  const d = await ctx.store.getDomain(domainKey(name));
  if (!d) throw new ApiError(404, `no domain ${name}`);
  return d;
}

/** A domain as the API shows it; `published` when the live `_mta-sts` lookup was made. */
export function domainView(d: StoredDomain, published?: PublishedIdStatus): ApiTypes['Domain'] {
  return {
    name: d.name,
    mode: d.mode,
    mx: d.mx,
    maxAge: d.maxAge,
    rua: d.rua,
    policyId: d.policyId,
    policyText: d.policyText,
    policyUrl: storedPolicyUrl(d.name),
    createdAt: d.createdAt,
    updatedAt: d.updatedAt,
    // RFC 8461 §3.1: the TXT record at _mta-sts.<domain> announcing the current policy id.
    mtaStsRecord: {
      name: `_mta-sts.${d.name}`,
      type: 'TXT',
      value: formatStsRecord({ id: d.policyId, extensions: [] }),
    },
    ...(published ? { published } : {}),
    ...(d.watchOnly ? { watchOnly: true } : {}),
  };
}

/** A record-set input field as the API calls it: the records query parameter, else the domain's field. */
export function apiFieldName(field: RecordsField): string {
  return field === 'policyHostTargets' ? 'policyHostTarget' : field;
}

/** The records of `mxguard records` for a stored domain, with the stored policy id. */
export function recordSetFor(
  d: StoredDomain,
  query: { policyHostTarget?: string | undefined; ttl: number },
  now: Date,
): ApiTypes['RecordSet'] {
  const targets = query.policyHostTarget
    ?.split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  const set = buildRecordSet(
    {
      domain: d.name,
      mode: d.mode,
      maxAge: d.maxAge,
      ttl: query.ttl,
      mx: d.mx,
      id: d.policyId,
      rua: d.rua,
      policyHostTargets: targets,
    },
    now,
    apiFieldName,
  );
  return { ...set, bind: formatRecords(set, 'bind'), powershell: formatRecords(set, 'powershell') };
}

export function utcDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

export function sumCounts(rows: { successful: number; failed: number }[]): {
  successful: number;
  failed: number;
} {
  let successful = 0;
  let failed = 0;
  for (const r of rows) {
    successful += r.successful;
    failed += r.failed;
  }
  return { successful, failed };
}

/** Every day from `since` on, with zeros where no report started. */
export function fillDays(
  rows: { day: string; successful: number; failed: number }[],
  since: string,
  days: number,
): { day: string; successful: number; failed: number }[] {
  const byDay = new Map(rows.map((r) => [r.day, r]));
  const start = Date.parse(`${since}T00:00:00Z`);
  const out = [];
  for (let i = 0; i < days; i++) {
    const day = utcDay(new Date(start + i * DAY_MS));
    const row = byDay.get(day);
    out.push({ day, successful: row?.successful ?? 0, failed: row?.failed ?? 0 });
  }
  return out;
}

/**
 * The UTC days of a range query: `until` defaults to today, `since` to 29 days before it; refused (400)
 * when since is after until or the range is longer than `maxDays`.
 */
export function dayRange(
  query: { since?: string | undefined; until?: string | undefined },
  now: Date,
  maxDays: number,
): { since: string; until: string; days: number } {
  const until = query.until ?? utcDay(now);
  const untilMs = Date.parse(`${until}T00:00:00Z`);
  const since = query.since ?? utcDay(new Date(untilMs - 29 * DAY_MS));
  const sinceMs = Date.parse(`${since}T00:00:00Z`);
  if (Number.isNaN(untilMs) || utcDay(new Date(untilMs)) !== until)
    throw new ApiError(400, `until: no such day ${until}`);
  if (Number.isNaN(sinceMs) || utcDay(new Date(sinceMs)) !== since)
    throw new ApiError(400, `since: no such day ${since}`);
  if (sinceMs > untilMs) throw new ApiError(400, `since ${since} is after until ${until}`);
  const days = (untilMs - sinceMs) / DAY_MS + 1;
  if (days > maxDays) throw new ApiError(400, `${since} to ${until} is ${days} days; at most ${maxDays}`);
  return { since, until, days };
}
