// The contract of the `mxguard serve` JSON API: zod schemas of every request body (validated by
// src/server/api.ts) and response (typed there), and the OpenAPI 3.1 document built from them that
// is served at /api/openapi.json and described in docs/api.md.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import {
  CLIP_MARK,
  LIST_DOMAINS_MAX,
  LIST_PAGE_MAX_BYTES,
  LIST_TEXT_MAX,
  REPORT_DETAIL_MAX_BYTES,
} from '../store/paging.js';

/** Page size of every list endpoint when `limit` is not given, and the largest allowed. */
export const PAGE_LIMIT_DEFAULT = 100;
export const PAGE_LIMIT_MAX = 1000;

// ---- requests ----

const Mode = z.enum(['testing', 'enforce', 'none']).describe('MTA-STS policy mode (RFC 8461 §5)');
const MxList = z
  .array(z.string().min(1).max(253))
  .max(100)
  .describe('policy mx patterns (RFC 8461 §3.2); "*.example.com" covers one label');
// RFC 8461 §3.2: max_age is at most 31557600
const MaxAge = z.number().int().min(0).max(31557600).describe('policy max_age in seconds');
const RuaList = z
  .array(z.string().min(1).max(2000))
  .min(1)
  .max(20)
  .describe('TLS-RPT rua URIs for _smtp._tls (RFC 8460 §3), mailto: or https:');

export const LoginRequest = z.object({ password: z.string().min(1).max(1024) }).strict();
export const PasswordChangeRequest = z
  .object({ current: z.string().min(1).max(1024), next: z.string().min(10).max(1024) })
  .strict();
export const DomainCreateRequest = z
  .object({
    name: z.string().min(1).max(253).describe('the mail domain (the part after @)'),
    mx: MxList.default([]),
    mode: Mode.default('testing'),
    maxAge: MaxAge.default(604800),
    rua: RuaList.optional().describe('default: mailto:tlsrpt@<name>'),
  })
  .strict();
export const DomainUpdateRequest = z
  .object({ mx: MxList, mode: Mode, maxAge: MaxAge, rua: RuaList })
  .partial()
  .strict()
  .refine((patch) => Object.keys(patch).length > 0, {
    message: 'give at least one of mx, mode, maxAge, rua',
  });
export const TokenCreateRequest = z.object({ name: z.string().trim().min(1).max(100) }).strict();

// ---- responses ----

export const ApiErrorBody = z.object({
  statusCode: z.number().int(),
  error: z.string(),
  message: z.string(),
  issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});
export const SessionInfo = z.object({
  authenticated: z.literal(true),
  via: z.enum(['session', 'password', 'token']),
});
export const TxtRecord = z
  .object({ name: z.string(), type: z.literal('TXT'), value: z.string() })
  .describe('a DNS TXT record to publish');
export const PublishedStatus = z
  .object({
    published: z.string().optional().describe('the id in the published record (absent: see error)'),
    current: z.string().describe('the id of the policy served now'),
    matches: z.boolean().describe('published === current; while false, senders keep their cached policy'),
    error: z
      .string()
      .optional()
      .describe('why there is no usable record: none, several, broken, DNS failure'),
  })
  .describe('the live `_mta-sts` TXT lookup (RFC 8461 §3.1) compared with the current policy id');
export const Domain = z.object({
  name: z.string(),
  mode: Mode,
  mx: z.array(z.string()),
  maxAge: z.number().int(),
  rua: z.array(z.string()),
  policyId: z.string().describe('the current _mta-sts id (UTC YYYYMMDDHHMMSS)'),
  policyText: z.string(),
  policyUrl: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  mtaStsRecord: TxtRecord,
  published: PublishedStatus.optional().describe('in GET /api/domains and GET /api/domains/{name}'),
});
export const SessionTotals = z.object({ successful: z.number().int(), failed: z.number().int() });
export const DomainOverview = Domain.extend({
  last30Days: SessionTotals.describe('sessions in TLS-RPT reports of the last 30 days'),
});
export const DomainChange = z.object({
  domain: Domain,
  policyIdChanged: z.boolean(),
  publish: TxtRecord.optional().describe('present when the policy id changed: publish this TXT value'),
  message: z.string(),
});
export const PolicyVersion = z.object({
  policyId: z.string(),
  policyText: z.string(),
  createdAt: z.string(),
});
export const PolicyWithHistory = z.object({
  domain: z.string(),
  policyId: z.string(),
  policyText: z.string(),
  policyUrl: z.string(),
  history: z.array(PolicyVersion).describe('newest first'),
});
export const DnsRecord = z.object({
  name: z.string(),
  type: z.enum(['TXT', 'CNAME', 'A', 'AAAA']),
  ttl: z.number().int(),
  value: z.string(),
  purpose: z.string(),
});
export const RecordSet = z.object({
  domain: z.string(),
  policy: z.object({
    text: z.string(),
    url: z.string(),
    mode: Mode,
    maxAge: z.number().int(),
    mx: z.array(z.string()),
  }),
  records: z.array(DnsRecord),
  notes: z.array(z.string()),
  bind: z.string().describe('the records as zone-file lines'),
  powershell: z.string().describe('the records as Windows DNS Server cmdlets'),
});
export const DailyCounts = z.object({
  day: z.string().describe('UTC day YYYY-MM-DD'),
  successful: z.number().int(),
  failed: z.number().int(),
});
// ---- lists: pages (src/store/paging.ts) ----

const pageFields = {
  total: z.number().int().describe('how many match, on every page together'),
  nextCursor: z.string().nullable().describe('pass as `cursor` to get the next page; null on the last page'),
  limit: z
    .number()
    .int()
    .describe(`the page size asked for; a page holds fewer when it reaches ${LIST_PAGE_MAX_BYTES} bytes`),
};
const clipped = z
  .array(z.string())
  .optional()
  .describe(
    `the fields cut to ${LIST_TEXT_MAX} characters, ending in "${CLIP_MARK}" (domains: also to ${LIST_DOMAINS_MAX} entries); the whole values are in the detail view`,
  );

export const BreakdownRow = z.object({
  key: z.string(),
  count: z.number().int(),
  clipped: z
    .literal(true)
    .optional()
    .describe(`key cut to ${LIST_TEXT_MAX} characters, ending in "${CLIP_MARK}"`),
});
export const DomainStats = z.object({
  domain: z.string(),
  since: z.string(),
  until: z.string(),
  daily: z.array(DailyCounts).describe('every UTC day of the range, oldest first'),
  totals: SessionTotals,
  failures: z.object({
    resultType: z.array(BreakdownRow),
    organization: z.array(BreakdownRow),
    receivingMxHostname: z.array(BreakdownRow),
    sendingMtaIp: z.array(BreakdownRow),
  }),
});
export const PolicyFetch = z.object({
  at: z.string(),
  clientIp: z.string(),
  userAgent: z.string(),
  client: z.string().describe('who the User-Agent belongs to (Google, Microsoft, Yahoo...) or "unknown"'),
});
export const FetchLog = z.object({
  domain: z.string(),
  fetches: z.array(PolicyFetch).describe('newest first'),
  clients: z
    .array(z.object({ client: z.string(), count: z.number().int(), lastAt: z.string() }))
    .describe('the fetches of this page grouped by client'),
  ...pageFields,
});
const Source = z.enum(['https', 'smtp', 'imap', 'import']);
const Dkim = z.enum(['pass', 'fail', 'none', 'unverified']);
export const ReportSummary = z.object({
  id: z.number().int(),
  organization: z.string(),
  reportId: z.string(),
  start: z.string(),
  end: z.string(),
  domains: z.array(z.string()),
  successful: z.number().int(),
  failed: z.number().int(),
  source: Source,
  dkim: Dkim,
  receivedAt: z.string(),
  clipped,
});
export const ReportList = z.object({
  reports: z.array(ReportSummary).describe('newest start first'),
  ...pageFields,
});
const TlsFailure = z.object({
  resultType: z.string(),
  count: z.number().int(),
  sendingMtaIp: z.string().optional(),
  receivingMxHostname: z.string().optional(),
  receivingMxHelo: z.string().optional(),
  receivingIp: z.string().optional(),
  additionalInformation: z.string().optional(),
  failureReasonCode: z.string().optional(),
});
const TlsReport = z.object({
  organization: z.string(),
  reportId: z.string(),
  contactInfo: z.string().optional(),
  start: z.string(),
  end: z.string(),
  policies: z.array(
    z.object({
      type: z.string(),
      domain: z.string(),
      policyStrings: z.array(z.string()),
      mxHosts: z.array(z.string()),
      successful: z.number().int(),
      failed: z.number().int(),
      failures: z.array(TlsFailure),
    }),
  ),
});
export const Report = ReportSummary.omit({ clipped: true }).extend({
  report: TlsReport.describe('the report as received (RFC 8460 §4.4), in camelCase'),
  submitter: z.string().optional(),
  warnings: z.array(z.string()),
});
export const ReportTooLarge = ApiErrorBody.extend({
  code: z.literal('REPORT_TOO_LARGE'),
  bytes: z.number().int().describe('what the report, its warnings and submitter take in the store'),
  maxBytes: z.number().int(),
  report: ReportSummary.describe('the report as the list shows it, clipped'),
});
export const Rejected = z.object({
  id: z.number().int(),
  source: Source,
  submitter: z.string().optional(),
  reason: z.string(),
  size: z.number().int(),
  receivedAt: z.string(),
  clipped,
});
export const RejectedList = z.object({ rejected: z.array(Rejected).describe('newest first'), ...pageFields });
export const ImportResult = z.object({
  stored: z
    .array(
      z.object({
        id: z.number().int(),
        created: z.boolean().describe('false when the same organization + report-id was stored before'),
        organization: z.string(),
        reportId: z.string(),
      }),
    )
    .describe('one entry per report in the input (an email may carry several)'),
  warnings: z.array(
    z.object({
      severity: z.enum(['error', 'warning', 'note']),
      code: z.string(),
      message: z.string(),
      where: z.string().optional(),
    }),
  ),
});
export const ImportRejected = ApiErrorBody.extend({
  code: z.string().describe('why: a TLS-RPT decoding error code (TLSRPT_...)'),
  rejectedId: z.number().int().describe('the entry kept in GET /api/rejected'),
});
export const ApiToken = z.object({ id: z.string(), name: z.string(), createdAt: z.string() });
export const ApiTokenCreated = ApiToken.extend({
  token: z.string().describe('the secret: shown only once; send it as Authorization: Bearer <token>'),
});
export const TokenList = z.object({ tokens: z.array(ApiToken) });
export const DomainList = z.object({ domains: z.array(DomainOverview).describe('by name'), ...pageFields });

export type DomainView = z.output<typeof Domain>;
export type DomainStatsView = z.output<typeof DomainStats>;
export type FetchLogView = z.output<typeof FetchLog>;
export type RecordSetView = z.output<typeof RecordSet>;

/** Every schema of the document by component name. */
export const SCHEMAS = {
  LoginRequest,
  PasswordChangeRequest,
  DomainCreateRequest,
  DomainUpdateRequest,
  TokenCreateRequest,
  Error: ApiErrorBody,
  SessionInfo,
  TxtRecord,
  PublishedStatus,
  Domain,
  DomainOverview,
  DomainList,
  DomainChange,
  PolicyVersion,
  PolicyWithHistory,
  DnsRecord,
  RecordSet,
  DailyCounts,
  BreakdownRow,
  DomainStats,
  PolicyFetch,
  FetchLog,
  ReportSummary,
  ReportList,
  Report,
  ReportTooLarge,
  Rejected,
  RejectedList,
  ImportResult,
  ImportRejected,
  ApiToken,
  ApiTokenCreated,
  TokenList,
} as const;
export type SchemaName = keyof typeof SCHEMAS;

// ---- operations ----

interface Parameter {
  name: string;
  in: 'path' | 'query';
  description: string;
  schema: Record<string, unknown>;
  required?: boolean;
}

export interface Operation {
  method: 'get' | 'post' | 'patch' | 'delete';
  /** OpenAPI form: /api/domains/{name}. */
  path: string;
  summary: string;
  tag: 'auth' | 'domains' | 'reports' | 'tokens';
  /** No authentication needed. */
  public?: boolean;
  parameters?: Parameter[];
  body?: { schema: SchemaName } | { raw: string[]; description: string };
  /** Status → schema (undefined: no body). */
  responses: Record<number, { description: string; schema?: SchemaName }>;
}

const domainParam: Parameter = {
  name: 'name',
  in: 'path',
  required: true,
  description: 'the mail domain',
  schema: { type: 'string' },
};
const intQuery = (name: string, description: string, min: number, max: number): Parameter => ({
  name,
  in: 'query',
  description,
  schema: { type: 'integer', minimum: min, maximum: max },
});
/** `limit` and `cursor` of every list endpoint. */
const pageParams = (what: string): Parameter[] => [
  intQuery('limit', `how many ${what} per page (default ${PAGE_LIMIT_DEFAULT})`, 1, PAGE_LIMIT_MAX),
  {
    name: 'cursor',
    in: 'query',
    description: 'the nextCursor of the page before (opaque); absent for the first page',
    schema: { type: 'string' },
  },
];
const unauthorized = { 401: { description: 'not logged in', schema: 'Error' as const } };
const notFound = { 404: { description: 'no such domain', schema: 'Error' as const } };
// The password throttle of auth.ts: failed or in-flight password attempts per client address.
const throttled = {
  429: {
    description:
      'too many failed password attempts from this client address (IPv4 address or IPv6 /64) in 15 minutes (Retry-After)',
    schema: 'Error' as const,
  },
};
const reportIdParam: Parameter = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'report id',
  schema: { type: 'integer' },
};
const invalid = {
  400: { description: 'invalid request (issues lists each problem)', schema: 'Error' as const },
};

/** The content types POST /api/reports/import takes (raw report bytes). */
export const IMPORT_CONTENT_TYPES = [
  'application/octet-stream',
  'application/tlsrpt+json',
  'application/tlsrpt+gzip',
  'application/gzip',
  'message/rfc822',
];

export const OPERATIONS: readonly Operation[] = [
  {
    method: 'get',
    path: '/api/openapi.json',
    summary: 'This OpenAPI document',
    tag: 'auth',
    public: true,
    responses: { 200: { description: 'the OpenAPI 3.1 document' } },
  },
  {
    method: 'post',
    path: '/api/login',
    summary: 'Log in with the admin password; sets an HttpOnly SameSite=Strict session cookie',
    tag: 'auth',
    public: true,
    body: { schema: 'LoginRequest' },
    responses: {
      200: { description: 'logged in (Set-Cookie: mxguard_session)', schema: 'SessionInfo' },
      ...invalid,
      401: {
        description: 'wrong password, or the password was changed while this login was checked',
        schema: 'Error',
      },
      ...throttled,
    },
  },
  {
    method: 'post',
    path: '/api/logout',
    summary: 'End the session and clear its cookie',
    tag: 'auth',
    responses: { 204: { description: 'logged out' }, ...unauthorized },
  },
  {
    method: 'get',
    path: '/api/session',
    summary: 'Who is asking: 200 when the cookie or bearer token is accepted',
    tag: 'auth',
    responses: { 200: { description: 'authenticated', schema: 'SessionInfo' }, ...unauthorized },
  },
  {
    method: 'post',
    path: '/api/password',
    summary: 'Change the admin password (logs every session out)',
    tag: 'auth',
    body: { schema: 'PasswordChangeRequest' },
    responses: {
      204: { description: 'changed' },
      ...invalid,
      401: { description: 'not logged in, or the current password is wrong', schema: 'Error' },
      ...throttled,
    },
  },
  {
    method: 'get',
    path: '/api/tokens',
    summary: 'List API tokens (without their secrets)',
    tag: 'tokens',
    responses: { 200: { description: 'the tokens', schema: 'TokenList' }, ...unauthorized },
  },
  {
    method: 'post',
    path: '/api/tokens',
    summary: 'Create an API token for scripts; the secret is shown only in this answer',
    tag: 'tokens',
    body: { schema: 'TokenCreateRequest' },
    responses: { 201: { description: 'created', schema: 'ApiTokenCreated' }, ...invalid, ...unauthorized },
  },
  {
    method: 'delete',
    path: '/api/tokens/{id}',
    summary: 'Revoke an API token',
    tag: 'tokens',
    parameters: [
      { name: 'id', in: 'path', required: true, description: 'token id', schema: { type: 'string' } },
    ],
    responses: {
      204: { description: 'revoked' },
      ...unauthorized,
      404: { description: 'no such token', schema: 'Error' },
    },
  },
  {
    method: 'get',
    path: '/api/domains',
    summary: 'Every domain with its policy, the TXT record to publish and the last 30 days of sessions',
    tag: 'domains',
    parameters: pageParams('domains'),
    responses: {
      200: { description: 'a page of the domains, by name', schema: 'DomainList' },
      ...invalid,
      ...unauthorized,
    },
  },
  {
    method: 'post',
    path: '/api/domains',
    summary: 'Add a domain; the answer shows the _mta-sts TXT value to publish',
    tag: 'domains',
    body: { schema: 'DomainCreateRequest' },
    responses: {
      201: { description: 'added', schema: 'DomainChange' },
      ...invalid,
      ...unauthorized,
      409: { description: 'the domain exists already', schema: 'Error' },
    },
  },
  {
    method: 'get',
    path: '/api/domains/{name}',
    summary: 'One domain',
    tag: 'domains',
    parameters: [domainParam],
    responses: { 200: { description: 'the domain', schema: 'Domain' }, ...unauthorized, ...notFound },
  },
  {
    method: 'patch',
    path: '/api/domains/{name}',
    summary: 'Change mode, mx, maxAge or rua; a changed policy gets a new id (shown with the TXT value)',
    tag: 'domains',
    parameters: [domainParam],
    body: { schema: 'DomainUpdateRequest' },
    responses: {
      200: { description: 'changed', schema: 'DomainChange' },
      ...invalid,
      ...unauthorized,
      ...notFound,
    },
  },
  {
    method: 'delete',
    path: '/api/domains/{name}',
    summary: 'Remove a domain (its reports stay)',
    tag: 'domains',
    parameters: [domainParam],
    responses: { 204: { description: 'removed' }, ...unauthorized, ...notFound },
  },
  {
    method: 'get',
    path: '/api/domains/{name}/policy',
    summary: 'The policy served for the domain and every earlier version',
    tag: 'domains',
    parameters: [domainParam],
    responses: {
      200: { description: 'policy and history', schema: 'PolicyWithHistory' },
      ...unauthorized,
      ...notFound,
    },
  },
  {
    method: 'get',
    path: '/api/domains/{name}/records',
    summary: 'The DNS records to publish, as data and as bind / PowerShell text',
    tag: 'domains',
    parameters: [
      domainParam,
      {
        name: 'policyHostTarget',
        in: 'query',
        description:
          'where mta-sts.<name> points: IP addresses (A/AAAA) or one host name (CNAME), comma-separated',
        schema: { type: 'string' },
      },
      intQuery('ttl', 'TTL of every record (default 3600)', 0, 2147483647),
    ],
    responses: {
      200: { description: 'the records', schema: 'RecordSet' },
      ...invalid,
      ...unauthorized,
      ...notFound,
    },
  },
  {
    method: 'get',
    path: '/api/domains/{name}/stats',
    summary:
      'TLS-RPT picture: sessions per UTC day and failures by result type, organization, MX host, sending IP',
    tag: 'reports',
    parameters: [domainParam, intQuery('days', 'how many days back (default 30)', 1, 366)],
    responses: {
      200: { description: 'the statistics', schema: 'DomainStats' },
      ...unauthorized,
      ...notFound,
    },
  },
  {
    method: 'get',
    path: '/api/domains/{name}/fetches',
    summary: 'Who fetches the policy: the latest policy fetches with the recognised client',
    tag: 'domains',
    parameters: [domainParam, ...pageParams('fetches')],
    responses: {
      200: { description: 'a page of the fetch log, newest first', schema: 'FetchLog' },
      ...invalid,
      ...unauthorized,
      ...notFound,
    },
  },
  {
    method: 'get',
    path: '/api/reports',
    summary: 'Stored TLS-RPT reports, newest first',
    tag: 'reports',
    parameters: [
      {
        name: 'domain',
        in: 'query',
        description: 'only reports covering this policy domain',
        schema: { type: 'string' },
      },
      ...pageParams('reports'),
    ],
    responses: {
      200: { description: 'a page of the reports, long values clipped', schema: 'ReportList' },
      ...invalid,
      ...unauthorized,
    },
  },
  {
    method: 'get',
    path: '/api/reports/{id}',
    summary: 'One stored report with every failure detail and whole values',
    tag: 'reports',
    parameters: [reportIdParam],
    responses: {
      200: { description: 'the report', schema: 'Report' },
      ...unauthorized,
      404: { description: 'no such report', schema: 'Error' },
      413: {
        description: `stored with more than ${REPORT_DETAIL_MAX_BYTES} bytes: the clipped summary; delete it or use the CLI`,
        schema: 'ReportTooLarge',
      },
    },
  },
  {
    method: 'delete',
    path: '/api/reports/{id}',
    summary: 'Delete a report with its policy and failure rows (the statistics no longer count it)',
    tag: 'reports',
    parameters: [reportIdParam],
    responses: {
      204: { description: 'deleted' },
      ...unauthorized,
      403: { description: 'cross-site request', schema: 'Error' },
      404: { description: 'no such report', schema: 'Error' },
    },
  },
  {
    method: 'post',
    path: '/api/reports/import',
    summary: 'Import a report file: JSON, gzip or a whole email (stored with dkim "unverified")',
    tag: 'reports',
    parameters: [
      { name: 'filename', in: 'query', description: 'kept as the submitter', schema: { type: 'string' } },
    ],
    body: { raw: IMPORT_CONTENT_TYPES, description: 'the file as it is' },
    responses: {
      200: { description: 'stored (or already known)', schema: 'ImportResult' },
      400: { description: 'not a TLS-RPT report (kept in the rejected list)', schema: 'ImportRejected' },
      ...unauthorized,
      413: { description: 'larger than the intake limit', schema: 'Error' },
      415: { description: 'wrong Content-Type', schema: 'Error' },
    },
  },
  {
    method: 'get',
    path: '/api/rejected',
    summary: 'Input that was refused (malformed reports, unsigned mail), newest first',
    tag: 'reports',
    parameters: pageParams('entries'),
    responses: {
      200: { description: 'a page of the rejected inputs', schema: 'RejectedList' },
      ...invalid,
      ...unauthorized,
    },
  },
];

type JsonObject = Record<string, unknown>;

function componentSchemas(): JsonObject {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(SCHEMAS)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, { uri: (id) => `#/components/schemas/${id}`, io: 'input' });
  const out: JsonObject = {};
  for (const [id, schema] of Object.entries(schemas)) {
    const { $schema: _s, $id: _i, ...rest } = schema as JsonObject;
    out[id] = rest;
  }
  return out;
}

const ref = (name: SchemaName) => ({ $ref: `#/components/schemas/${name}` });

function operationObject(op: Operation): JsonObject {
  const responses: JsonObject = {};
  for (const [status, r] of Object.entries(op.responses)) {
    responses[status] = {
      description: r.description,
      ...(r.schema ? { content: { 'application/json': { schema: ref(r.schema) } } } : {}),
    };
  }
  let requestBody: JsonObject | undefined;
  if (op.body && 'schema' in op.body) {
    requestBody = { required: true, content: { 'application/json': { schema: ref(op.body.schema) } } };
  } else if (op.body) {
    const content: JsonObject = {};
    for (const type of op.body.raw) content[type] = { schema: { type: 'string', format: 'binary' } };
    requestBody = { required: true, description: op.body.description, content };
  }
  return {
    summary: op.summary,
    tags: [op.tag],
    operationId: `${op.method}${op.path
      .replace(/^\/api/, '')
      .replace(/[{}]/g, '')
      .replace(/[^a-zA-Z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
    ...(op.public ? { security: [] } : {}),
    ...(op.parameters ? { parameters: op.parameters } : {}),
    ...(requestBody ? { requestBody } : {}),
    responses,
  };
}

/** package.json sits two levels up from both src/server/ and dist/server/. */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: string;
  };
  return pkg.version ?? '0.0.0';
}

let cached: JsonObject | undefined;

/** The OpenAPI 3.1 document of the API (built once). */
export function openApiDocument(): JsonObject {
  if (cached) return cached;
  const paths: Record<string, JsonObject> = {};
  for (const op of OPERATIONS) {
    paths[op.path] ??= {};
    paths[op.path]![op.method] = operationObject(op);
  }
  cached = {
    openapi: '3.1.0',
    info: {
      title: 'mxguard serve API',
      version: packageVersion(),
      description:
        'Domains and their MTA-STS policies, the DNS records to publish, TLS-RPT reports and the policy fetch log. ' +
        'Authenticate with the session cookie from POST /api/login, or with Authorization: Bearer <admin password or API token>. ' +
        'Requests that change state must send Content-Type: application/json (CSRF protection); report values are ' +
        'attacker-controlled text and are returned verbatim.',
    },
    servers: [{ url: '/' }],
    tags: [
      { name: 'auth', description: 'logging in, sessions, the admin password' },
      { name: 'tokens', description: 'API tokens for scripts' },
      { name: 'domains', description: 'domains, policies, DNS records, the policy fetch log' },
      { name: 'reports', description: 'TLS-RPT reports and statistics' },
    ],
    security: [{ sessionCookie: [] }, { bearer: [] }],
    components: {
      securitySchemes: {
        sessionCookie: { type: 'apiKey', in: 'cookie', name: 'mxguard_session' },
        bearer: { type: 'http', scheme: 'bearer', description: 'the admin password or an API token' },
      },
      schemas: componentSchemas(),
    },
    paths,
  };
  return cached;
}
