// The API routes of monitoring (issue 12): the setup status, the alerts, each domain's history of checks,
// one check run with its findings, what changed between two runs, a check on demand (ctx.monitor), and
// the state of the alert notifications (webhooks, e-mail); and the 409 of the enforce pre-flight that
// domain-routes.ts answers.
import { diffFindings } from '../../check/diff.js';
import { type CheckedDomain, preflightProblems } from '../../monitor/preflight.js';
import { domainKey } from '../../store/domain-rules.js';
import type { CheckRun as StoredCheckRun } from '../../store/monitor-types.js';
import type { ServerContext } from '../context.js';
import { setupStatus } from '../setup.js';
import { ApiError, defineRoute, errorBody } from './route.js';
import {
  AlertList,
  AlertsQuery,
  ApiErrorBody,
  CheckDiff,
  CheckDiffQuery,
  CheckParams,
  CheckRun,
  CheckRunList,
  DeliveriesQuery,
  DeliveryList,
  DomainParams,
  MonitorUnavailable,
  PageQuery,
  SetupStatus,
} from './schemas.js';
import { existingDomain, reportIdParam } from './views.js';

/**
 * The pre-flight of an enforce policy with these `mx` patterns (src/monitor/preflight.ts): a 409 answer
 * naming what enforcing senders would bounce, or undefined when nothing would.
 */
export async function enforcePreflight(ctx: ServerContext, domain: string, mx: readonly string[]) {
  const check: CheckedDomain = ctx.monitor
    ? await ctx.monitor.liveCheck(domain)
    : { status: 'error', error: 'this server runs no live checks', findings: [] };
  const problems = preflightProblems(domain, check, { mx });
  if (problems.length === 0) return undefined;
  const message = `${domain}: an enforce policy would make senders bounce mail: ${problems.map((p) => p.message).join('; ')}; fix each problem, or send "force": true to publish it anyway`;
  return {
    status: 409 as const,
    body: { ...errorBody(409, message), code: 'PREFLIGHT_FAILED' as const, problems },
  };
}

const noRun = { 404: { description: 'no such check run', schema: ApiErrorBody } };
const noDomain = { 404: { description: 'no such domain', schema: ApiErrorBody } };

async function existingRun(ctx: ServerContext, id: string): Promise<StoredCheckRun> {
  // The same 1-to-16-digit id rule as reports.
  const n = reportIdParam(id);
  const run = n === undefined ? undefined : await ctx.store.getCheckRun(n);
  if (!run) throw new ApiError(404, `no check run ${id}`);
  return run;
}

/** A run as the history lists it: findings counted, not listed. */
function summaryOf(run: StoredCheckRun) {
  const { findings, ...rest } = run;
  const count = (status: string) => findings.filter((f) => f.status === status).length;
  return { ...rest, counts: { pass: count('pass'), warn: count('warn'), fail: count('fail') } };
}

export const MONITOR_ROUTES = [
  defineRoute({
    method: 'GET',
    path: '/api/setup',
    summary: 'What still stands between the admin and a working setup, each with its fix (live DNS lookups)',
    tag: 'monitoring',
    responses: { 200: { description: 'the setup status', schema: SetupStatus } },
  }).handle(async ({ ctx }) => ({ status: 200, body: await setupStatus(ctx) })),

  defineRoute({
    method: 'GET',
    path: '/api/alerts',
    summary: 'Alerts of the watched domains, newest first: open ones and resolved ones',
    tag: 'monitoring',
    query: AlertsQuery,
    responses: { 200: { description: 'a page of the alerts', schema: AlertList } },
  }).handle(async ({ query: { domain, state, limit, cursor }, ctx }) => {
    const page = await ctx.store.listAlerts({
      ...(domain === undefined ? {} : { domain: domainKey(domain) }),
      ...(state === undefined ? {} : { state }),
      limit,
      ...(cursor === undefined ? {} : { cursor }),
    });
    return {
      status: 200,
      body: { alerts: page.items, total: page.total, nextCursor: page.nextCursor, limit },
    };
  }),

  defineRoute({
    method: 'GET',
    path: '/api/domains/{name}/checks',
    summary: "A domain's history of checks, newest first (findings counted; GET /api/checks/{id} lists them)",
    tag: 'monitoring',
    params: DomainParams,
    query: PageQuery,
    responses: { 200: { description: 'a page of the check runs', schema: CheckRunList }, ...noDomain },
  }).handle(async ({ params, query: { limit, cursor }, ctx }) => {
    const d = await existingDomain(ctx, params.name);
    const page = await ctx.store.listCheckRuns(d.name, {
      limit,
      ...(cursor === undefined ? {} : { cursor }),
    });
    return {
      status: 200,
      body: { domain: d.name, runs: page.items, total: page.total, nextCursor: page.nextCursor, limit },
    };
  }),

  defineRoute({
    method: 'POST',
    path: '/api/domains/{name}/check',
    summary: 'Check a domain now; the run is stored and opens or resolves alerts like a scheduled one',
    tag: 'monitoring',
    params: DomainParams,
    responses: {
      200: { description: 'the check run with its findings', schema: CheckRun },
      ...noDomain,
      503: { description: 'this server runs no monitor', schema: MonitorUnavailable },
    },
  }).handle(async ({ params, ctx }) => {
    const d = await existingDomain(ctx, params.name);
    if (!ctx.monitor) {
      return {
        status: 503,
        body: {
          ...errorBody(503, 'this server runs no monitor, so it cannot check domains'),
          code: 'MONITOR_UNAVAILABLE',
        },
      };
    }
    return { status: 200, body: await ctx.monitor.checkNow(d.name) };
  }),

  defineRoute({
    method: 'GET',
    path: '/api/checks/{id}',
    summary: 'One check run with every finding (and the certificate and TLSA data it saw)',
    tag: 'monitoring',
    params: CheckParams,
    responses: { 200: { description: 'the check run', schema: CheckRun }, ...noRun },
  }).handle(async ({ params, ctx }) => ({ status: 200, body: await existingRun(ctx, params.id) })),

  defineRoute({
    method: 'GET',
    path: '/api/checks/{id}/diff',
    summary: 'What changed between an older run (against) and this one: new, gone and changed findings',
    tag: 'monitoring',
    params: CheckParams,
    query: CheckDiffQuery,
    responses: {
      200: { description: 'the changes', schema: CheckDiff },
      ...noRun,
      409: { description: 'the two runs are of different domains', schema: ApiErrorBody },
    },
  }).handle(async ({ params, query, ctx }) => {
    const to = await existingRun(ctx, params.id);
    const from = await existingRun(ctx, query.against);
    if (from.domain !== to.domain) {
      throw new ApiError(
        409,
        `check run ${from.id} is of ${from.domain} and run ${to.id} of ${to.domain}: compare two runs of one domain`,
      );
    }
    const diff = diffFindings(from.findings, to.findings);
    return {
      status: 200,
      body: { domain: to.domain, from: summaryOf(from), to: summaryOf(to), ...diff },
    };
  }),

  defineRoute({
    method: 'GET',
    path: '/api/deliveries',
    summary: 'Alert notifications (webhooks, e-mail) and their delivery state, newest first',
    tag: 'monitoring',
    query: DeliveriesQuery,
    responses: { 200: { description: 'a page of the deliveries', schema: DeliveryList } },
  }).handle(async ({ query: { state, alertId, limit, cursor }, ctx }) => {
    const page = await ctx.store.listDeliveries({
      ...(state === undefined ? {} : { state }),
      ...(alertId === undefined ? {} : { alertId }),
      limit,
      ...(cursor === undefined ? {} : { cursor }),
    });
    return {
      status: 200,
      body: { deliveries: page.items, total: page.total, nextCursor: page.nextCursor, limit },
    };
  }),
];
