// Is the `_mta-sts` TXT record that is published in DNS the one for the current policy? RFC 8461 §3.1:
// senders re-fetch the policy only when the record's `id` changes, so after every policy change the
// published id must be updated too; until it is, the dashboard warns. Looked up live through
// ctx.resolver each time it is asked.
import { failureSentence } from '../sender/dns-failure.js';
import { lookupStsRecord } from '../sender/sts.js';
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
export async function publishedIdStatus(
  ctx: Pick<ServerContext, 'store' | 'resolver'>,
  domain: string,
): Promise<PublishedIdStatus> {
  const stored = await ctx.store.getDomain(domain);
  if (!stored) throw new StoreError('STORE_DOMAIN_UNKNOWN', `domain "${domain}" is not configured`);
  const current = stored.policyId;
  const name = `_mta-sts.${domainKey(stored.name)}`;
  const fail = (error: string): PublishedIdStatus => ({ current, matches: false, error });
  // The lookup every sender makes (src/sender/sts.ts, RFC 8461 §3.1).
  const lookup = await lookupStsRecord(ctx.resolver, domainKey(stored.name));
  switch (lookup.kind) {
    case 'id':
      return { published: lookup.id, current, matches: lookup.id === current };
    case 'failed':
      return fail(`${name}: DNS lookup failed: ${failureSentence(lookup.failure)}`);
    case 'many':
      return fail(
        `${name}: ${lookup.records.length} "v=STSv1" records; senders ignore them all (RFC 8461 §3.1)`,
      );
    case 'invalid':
      return fail(`${name}: ${lookup.error}`);
    case 'absent':
      return fail(`${name}: no TXT record starting with "v=STSv1;" is published`);
  }
}
