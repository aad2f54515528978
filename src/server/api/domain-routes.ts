// The API routes of domains: the list, add, change, remove, the policy with its history, the DNS
// records to publish, the TLS-RPT statistics and the policy fetch log.

import { recentTlsRpt } from '../../monitor/preflight.js';
import { classifyUserAgent } from '../../mtasts/fetcher.js';
import { domainKey } from '../../store/domain-rules.js';
import { decodeCursor, encodeCursor, takePage } from '../../store/paging.js';
import type { BreakdownKey } from '../../store/types.js';
import { publishedIdStatus } from '../livecheck.js';
import { lastPublishOutcome, outcomeSentence, publisherFor, publishFromServe } from '../publish-id.js';
import { enforcePreflight } from './monitor-routes.js';
import { ApiError, defineRoute } from './route.js';
import {
  ApiErrorBody,
  Domain,
  DomainChange,
  DomainCreateRequest,
  DomainList,
  DomainParams,
  DomainStats,
  DomainUpdateRequest,
  FetchLog,
  PageQuery,
  PolicyWithHistory,
  PreflightRefused,
  RANGE_DAYS_MAX,
  RecordSet,
  RecordsQuery,
  StatsQuery,
} from './schemas.js';
import {
  DAY_MS,
  dayRange,
  domainView,
  existingDomain,
  fillDays,
  recordSetFor,
  storedPolicyUrl,
  sumCounts,
  utcDay,
} from './views.js';

const notFound = { 404: { description: 'no such domain', schema: ApiErrorBody } };

export const DOMAIN_ROUTES = [
  defineRoute({
    method: 'GET',
    path: '/api/domains',
    summary: 'Every domain with its policy, the TXT record to publish and the last 30 days of sessions',
    tag: 'domains',
    query: PageQuery,
    responses: { 200: { description: 'a page of the domains, by name', schema: DomainList } },
  }).handle(async ({ query: { limit, cursor }, ctx }) => {
    const after = cursor === undefined ? undefined : decodeCursor('domains', cursor)[0];
    const today = utcDay(ctx.now());
    const since = utcDay(new Date(ctx.now().getTime() - 29 * DAY_MS));
    // By name; the admin adds domains, so the whole list is read and only the page is looked up.
    const all = await ctx.store.listDomains();
    const rest = after === undefined ? all : all.filter((d) => d.name > after);
    const views = await Promise.all(
      rest.slice(0, limit).map(async (d) => {
        const [daily, published] = await Promise.all([
          ctx.store.dailyCounts(d.name, since, today),
          publishedIdStatus(ctx, d.name),
        ]);
        return { ...domainView(d, published), last30Days: sumCounts(daily) };
      }),
    );
    const page = takePage(views, {
      more: rest.length > limit,
      total: all.length,
      cursorOf: (i) => encodeCursor('domains', [views[i]!.name]),
    });
    return {
      status: 200,
      body: { domains: page.items, total: page.total, nextCursor: page.nextCursor, limit },
    };
  }),

  defineRoute({
    method: 'POST',
    path: '/api/domains',
    summary: 'Add a domain; the answer shows the _mta-sts TXT value to publish',
    tag: 'domains',
    body: DomainCreateRequest,
    responses: {
      201: { description: 'added', schema: DomainChange },
      409: {
        description:
          'the domain exists already, or (mode enforce without force) the live check found MX hosts enforcing senders would bounce',
        schema: PreflightRefused.or(ApiErrorBody),
      },
    },
  }).handle(async ({ body, ctx }) => {
    const name = domainKey(body.name);
    if (body.watchOnly) {
      // Mode none without mx: stored, never served (policy hosting answers 404 for it).
      const added = await ctx.store.addDomain(
        name,
        { mode: 'none', mx: [], maxAge: 86400, rua: body.rua ?? [`mailto:tlsrpt@${name}`], watchOnly: true },
        ctx.now(),
      );
      return {
        status: 201,
        body: {
          domain: domainView(added),
          policyIdChanged: false,
          message: `added ${added.name} (watch-only): serve checks it on its schedule; its policy stays where it is hosted`,
        },
      };
    }
    // Without an mx the store refuses an enforce policy anyway (400).
    if (body.mode === 'enforce' && !body.force && body.mx.length > 0) {
      if (await ctx.store.getDomain(name)) throw new ApiError(409, `domain "${name}" exists already`);
      const refused = await enforcePreflight(ctx, name, body.mx);
      if (refused) return refused;
    }
    const settings = {
      mode: body.mode,
      mx: body.mx,
      maxAge: body.maxAge,
      rua: body.rua ?? [`mailto:tlsrpt@${name}`],
    };
    const added = await ctx.store.addDomain(name, settings, ctx.now());
    const view = domainView(added);
    // After the store commit: a failed publish is reported, the domain stays added.
    const dnsUpdate = await publishFromServe(ctx, added);
    return {
      status: 201,
      body: {
        domain: view,
        policyIdChanged: true,
        publish: view.mtaStsRecord,
        dnsUpdate,
        message: `added ${added.name}: ${outcomeSentence(dnsUpdate)} and the records of GET /api/domains/${added.name}/records`,
      },
    };
  }),

  defineRoute({
    method: 'GET',
    path: '/api/domains/{name}',
    summary: 'One domain',
    tag: 'domains',
    params: DomainParams,
    responses: { 200: { description: 'the domain', schema: Domain }, ...notFound },
  }).handle(async ({ params, ctx }) => {
    const d = await existingDomain(ctx, params.name);
    const view = domainView(d, await publishedIdStatus(ctx, d.name));
    const lastUpdate = publisherFor(ctx.config.dnsUpdate, d.name)
      ? lastPublishOutcome(ctx.config.dataDir, d.name)
      : undefined;
    return { status: 200, body: lastUpdate ? { ...view, dnsUpdate: lastUpdate } : view };
  }),

  defineRoute({
    method: 'PATCH',
    path: '/api/domains/{name}',
    summary: 'Change mode, mx, maxAge or rua; a changed policy gets a new id (shown with the TXT value)',
    tag: 'domains',
    params: DomainParams,
    body: DomainUpdateRequest,
    responses: {
      200: { description: 'changed', schema: DomainChange },
      ...notFound,
      409: {
        description:
          'enforce (mode, or the mx of an enforce policy) without force: the live check found MX hosts enforcing senders would bounce',
        schema: PreflightRefused,
      },
    },
  }).handle(async ({ params, body: { force, ...patch }, ctx }) => {
    const before = await existingDomain(ctx, params.name);
    const enforcing =
      (patch.mode ?? before.mode) === 'enforce' &&
      (before.mode !== 'enforce' || (patch.mx !== undefined && patch.mx.join(' ') !== before.mx.join(' ')));
    const mx = patch.mx ?? before.mx;
    if (enforcing && !force && !before.watchOnly && mx.length > 0) {
      const refused = await enforcePreflight(ctx, before.name, mx);
      if (refused) return refused;
    }
    const after = await ctx.store.updateDomain(before.name, patch, ctx.now());
    const view = domainView(after);
    const changed = after.policyId !== before.policyId;
    const ruaChanged = patch.rua !== undefined && patch.rua.join(' ') !== before.rua.join(' ');
    // After the store commit: a failed publish is reported, the policy change stays.
    const dnsUpdate = changed && !after.watchOnly ? await publishFromServe(ctx, after) : undefined;
    const messages = [
      changed
        ? `the policy changed, so its id is now ${after.policyId}: ${dnsUpdate ? outcomeSentence(dnsUpdate) : `publish the TXT record ${view.mtaStsRecord.name} "${view.mtaStsRecord.value}"`} (senders fetch the new policy only once they see the new id)`
        : 'saved; the policy text is unchanged, so its id stays',
      ...(ruaChanged ? [`rua changed: publish the new _smtp._tls.${after.name} TXT record`] : []),
      ...(before.mode === 'testing' && after.mode === 'enforce'
        ? [(await recentTlsRpt(ctx.store, after.name, ctx.now())).text]
        : []),
    ];
    return {
      status: 200,
      body: {
        domain: view,
        policyIdChanged: changed,
        ...(changed ? { publish: view.mtaStsRecord } : {}),
        ...(dnsUpdate ? { dnsUpdate } : {}),
        message: messages.join('; '),
      },
    };
  }),

  defineRoute({
    method: 'DELETE',
    path: '/api/domains/{name}',
    summary: 'Remove a domain (its reports stay)',
    tag: 'domains',
    params: DomainParams,
    responses: { 204: { description: 'removed' }, ...notFound },
  }).handle(async ({ params, ctx }) => {
    if (!(await ctx.store.removeDomain(domainKey(params.name)))) {
      throw new ApiError(404, `no domain ${params.name}`);
    }
    return { status: 204 };
  }),

  defineRoute({
    method: 'GET',
    path: '/api/domains/{name}/policy',
    summary: 'The policy served for the domain and every earlier version',
    tag: 'domains',
    params: DomainParams,
    responses: { 200: { description: 'policy and history', schema: PolicyWithHistory }, ...notFound },
  }).handle(async ({ params, ctx }) => {
    const d = await existingDomain(ctx, params.name);
    return {
      status: 200,
      body: {
        domain: d.name,
        policyId: d.policyId,
        policyText: d.policyText,
        policyUrl: storedPolicyUrl(d.name),
        history: await ctx.store.policyHistory(d.name),
      },
    };
  }),

  defineRoute({
    method: 'GET',
    path: '/api/domains/{name}/records',
    summary: 'The DNS records to publish, as data and as bind / PowerShell text',
    tag: 'domains',
    params: DomainParams,
    query: RecordsQuery,
    responses: { 200: { description: 'the records', schema: RecordSet }, ...notFound },
  }).handle(async ({ params, query, ctx }) => {
    const d = await existingDomain(ctx, params.name);
    return { status: 200, body: recordSetFor(d, query, ctx.now()) };
  }),

  defineRoute({
    method: 'GET',
    path: '/api/domains/{name}/stats',
    summary:
      'TLS-RPT picture: sessions per UTC day and failures by result type, organization, MX host, sending IP',
    tag: 'reports',
    params: DomainParams,
    query: StatsQuery,
    responses: { 200: { description: 'the statistics', schema: DomainStats }, ...notFound },
  }).handle(async ({ params, query, ctx }) => {
    const d = await existingDomain(ctx, params.name);
    const now = ctx.now();
    // A range of days (any length up to RANGE_DAYS_MAX), or the last `days` days.
    const { since, until, days } =
      query.since !== undefined || query.until !== undefined
        ? dayRange(query, now, RANGE_DAYS_MAX)
        : dayRange({ since: utcDay(new Date(now.getTime() - (query.days - 1) * DAY_MS)) }, now, query.days);
    const stored = await ctx.store.dailyCounts(d.name, since, until);
    const daily = fillDays(stored, since, days);
    const breakdown = async (by: BreakdownKey) => ctx.store.failureBreakdown(d.name, by, since, until);
    const [resultType, organization, receivingMxHostname, sendingMtaIp] = await Promise.all([
      breakdown('resultType'),
      breakdown('organization'),
      breakdown('receivingMxHostname'),
      breakdown('sendingMtaIp'),
    ]);
    return {
      status: 200,
      body: {
        domain: d.name,
        since,
        until,
        daily,
        totals: sumCounts(daily),
        failures: { resultType, organization, receivingMxHostname, sendingMtaIp },
      },
    };
  }),

  defineRoute({
    method: 'GET',
    path: '/api/domains/{name}/fetches',
    summary: 'Who fetches the policy: the latest policy fetches with the recognised client',
    tag: 'domains',
    params: DomainParams,
    query: PageQuery,
    responses: {
      200: { description: 'a page of the fetch log, newest first', schema: FetchLog },
      ...notFound,
    },
  }).handle(async ({ params, query: { limit, cursor }, ctx }) => {
    const d = await existingDomain(ctx, params.name);
    const page = await ctx.store.listFetches(d.name, { limit, cursor });
    const fetches = page.items.map((f) => ({
      at: f.at,
      clientIp: f.clientIp,
      userAgent: f.userAgent,
      client: classifyUserAgent(f.userAgent),
    }));
    const clients = new Map<string, { client: string; count: number; lastAt: string }>();
    for (const f of fetches) {
      const entry = clients.get(f.client) ?? { client: f.client, count: 0, lastAt: f.at };
      entry.count += 1;
      if (f.at > entry.lastAt) entry.lastAt = f.at;
      clients.set(f.client, entry);
    }
    return {
      status: 200,
      body: {
        domain: d.name,
        fetches,
        clients: [...clients.values()].sort(
          (a, b) => b.count - a.count || (a.client < b.client ? -1 : a.client > b.client ? 1 : 0),
        ),
        total: page.total,
        nextCursor: page.nextCursor,
        limit,
      },
    };
  }),
];
