// Is the `_mta-sts` TXT record that is published in DNS the one for the current policy? RFC 8461 §3.1:
// senders re-fetch the policy only when the record's `id` changes, so after every policy change the
// published id must be updated too; until it is, the dashboard warns. Looked up live through
// ctx.resolver each time it is asked.
import { MtaStsError } from '../mtasts/error.js';
import { parseStsRecord, selectStsRecord } from '../mtasts/record.js';
import { domainKey } from '../store/domain-rules.js';
import { StoreError } from '../store/types.js';
import type { ServerContext } from './context.js';

export interface PublishedIdStatus {
  /** The id in the published record; absent when there is no usable record (see `error`). */
  published?: string;
  /** The id of the policy served now. */
  current: string;
  /** published === current. */
  matches: boolean;
  /** Why there is no published id: no record, several records, a broken record, DNS failure. */
  error?: string;
}

/** Compare the published `_mta-sts.<domain>` id with the current policy id (throws STORE_DOMAIN_UNKNOWN). */
export async function publishedIdStatus(ctx: ServerContext, domain: string): Promise<PublishedIdStatus> {
  const stored = await ctx.store.getDomain(domain);
  if (!stored) throw new StoreError('STORE_DOMAIN_UNKNOWN', `domain "${domain}" is not configured`);
  const current = stored.policyId;
  const name = `_mta-sts.${domainKey(stored.name)}`;
  const lookup = await ctx.resolver.txt(name);
  const fail = (error: string): PublishedIdStatus => ({ current, matches: false, error });
  switch (lookup.outcome) {
    case 'ok':
      break;
    case 'nxdomain':
    case 'nodata':
      return fail(`${name}: no TXT record published`);
    default:
      return fail(
        `${name}: DNS lookup failed (${lookup.outcome}${lookup.result.error ? `: ${lookup.result.error}` : ''})`,
      );
  }
  // RFC 8461 §3.1: exactly one record starting with "v=STSv1;" counts; others are ignored.
  const selection = selectStsRecord(lookup.values);
  if (selection.kind === 'none') return fail(`${name}: no TXT record starts with "v=STSv1;"`);
  if (selection.kind === 'many') {
    return fail(
      `${name}: ${selection.records.length} "v=STSv1" records; senders ignore them all (RFC 8461 §3.1)`,
    );
  }
  try {
    const { record } = parseStsRecord(selection.record);
    return { published: record.id, current, matches: record.id === current };
  } catch (err) {
    if (err instanceof MtaStsError) return fail(`${name}: ${err.message}`);
    throw err;
  }
}
