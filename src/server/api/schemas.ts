// The contract of the `mxguard serve` JSON API in zod: the path parameters, queries and bodies the
// routes of src/server/api/ validate, and the answers they send. src/server/openapi.ts derives the
// OpenAPI 3.1 document (GET /api/openapi.json, docs/api.md) from these same schemas, and the dashboard
// (src/server/web, JSDoc) takes its types from them (ApiTypes, and ApiExchanges of routes.ts).

import { z } from 'zod';
import { CLIP_MARK, LIST_DOMAINS_MAX, LIST_PAGE_MAX_BYTES, LIST_TEXT_MAX } from '../../store/paging.js';
import { CSV_REPORTS_MAX } from './csv-download.js';

/** Page size of every list endpoint when `limit` is not given, and the largest allowed. */
export const PAGE_LIMIT_DEFAULT = 100;
export const PAGE_LIMIT_MAX = 1000;

// ---- path parameters and queries ----

export const TokenParams = z.object({ id: z.string().describe('token id') });
export const DomainParams = z.object({ name: z.string().describe('the mail domain') });
export const ReportParams = z.object({
  id: z.string().describe('report id (1 to 16 digits); anything else is an unknown report (404)'),
});
/** Query of every list: page size and the cursor of the page before (`offset` is gone). */
export const PageQuery = z.object({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(PAGE_LIMIT_MAX)
    .default(PAGE_LIMIT_DEFAULT)
    .describe('how many items per page'),
  cursor: z
    .string()
    .min(1)
    .max(400)
    .optional()
    .describe('the nextCursor of the page before (opaque); absent for the first page'),
  offset: z.never({ error: 'replaced by cursor: pass the nextCursor of the page before' }).optional(),
});
/** A UTC day as the range queries take it. */
const Day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a UTC day YYYY-MM-DD');
/** The longest range a day-by-day view covers (ten years: older imported reports stay reachable). */
export const RANGE_DAYS_MAX = 3660;
export const DayRangeQuery = z.object({
  since: Day.optional().describe('first UTC day (inclusive); default: 29 days before until'),
  until: Day.optional().describe('last UTC day (inclusive); default: today'),
});
/** The filters of both report lists for reports about domains that are not configured (issue 15). */
const OtherDomainsFilters = {
  otherDomains: z
    .enum(['true'])
    .optional()
    .describe('only reports about domains that are not configured ("other domains", intake.otherDomains)'),
  noPolicyDomain: z.enum(['true']).optional().describe('only reports that name no policy domain'),
};
export const ReportsQuery = PageQuery.extend({
  ...OtherDomainsFilters,
  domain: z.string().min(1).max(253).optional().describe('only reports covering this policy domain'),
  since: DayRangeQuery.shape.since.describe('only reports whose range starts on this UTC day or later'),
  until: DayRangeQuery.shape.until.describe('only reports whose range starts on this UTC day or earlier'),
  organization: z
    .string()
    .min(1)
    .max(256)
    .optional()
    .describe('only reports from this sending organization (a row of the failure table)'),
});
export const RecordsQuery = z.object({
  policyHostTarget: z
    .string()
    .max(2000)
    .optional()
    .describe('where mta-sts.<name> points: IP addresses (A/AAAA) or one host name (CNAME), comma-separated'),
  ttl: z.coerce.number().int().min(0).max(2147483647).default(3600).describe('TTL of every record'),
});
export const StatsQuery = DayRangeQuery.extend({
  days: z.coerce
    .number()
    .int()
    .min(1)
    .max(366)
    .default(30)
    .describe('how many days back (when neither since nor until is given)'),
});
export const ImportQuery = z.object({
  filename: z.string().max(255).optional().describe('kept as the submitter'),
});

/** The content types POST /api/reports/import takes (raw report bytes). */
export const IMPORT_CONTENT_TYPES = [
  'application/octet-stream',
  'application/tlsrpt+json',
  'application/tlsrpt+gzip',
  'application/gzip',
  'message/rfc822',
];

// ---- request bodies ----

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

const Force = z
  .boolean()
  .optional()
  .describe(
    'publish an enforce policy although the live check found MX hosts enforcing senders would bounce (409 otherwise)',
  );

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
    force: Force,
    watchOnly: z
      .boolean()
      .optional()
      .describe('only watch the domain (its policy is hosted elsewhere): mx and mode are not used'),
  })
  .strict();
export const DomainUpdateRequest = z
  .object({ mx: MxList, mode: Mode, maxAge: MaxAge, rua: RuaList, force: Force })
  .partial()
  .strict()
  .refine((patch) => Object.keys(patch).some((key) => key !== 'force'), {
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
export const IdPublishOutcome = z
  .object({
    status: z
      .enum(['published', 'visible', 'failed', 'not-configured'])
      .describe(
        'visible: published by DNS UPDATE and the resolver answers it; published: the DNS server took it, the resolver does not show it yet; failed: not published (see error, code); not-configured: no dnsUpdate publisher for the domain',
      ),
    policyId: z.string().describe('the id the record carries'),
    at: z.string().describe('when it was tried'),
    record: z
      .object({ name: z.string(), value: z.string() })
      .describe('the TXT record published, or to publish by hand when it failed'),
    zone: z.string().optional().describe('the zone updated'),
    error: z.string().optional().describe('why it failed, or why the resolver does not show it yet'),
    code: z.string().optional().describe('the DNS UPDATE error code (TSIG_BADKEY, UPDATE_REFUSED, ...)'),
  })
  .describe('publishing the `_mta-sts` id by DNS UPDATE (RFC 2136) after a policy change (config dnsUpdate)');
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
  dnsUpdate: IdPublishOutcome.optional().describe(
    'in GET /api/domains/{name}: the last DNS UPDATE of its _mta-sts id, when a publisher is configured',
  ),
  watchOnly: z
    .literal(true)
    .optional()
    .describe('only watched: its policy is hosted elsewhere, serve hosts nothing for it (404)'),
});
export const SessionTotals = z.object({ successful: z.number().int(), failed: z.number().int() });
export const DomainOverview = Domain.extend({
  last30Days: SessionTotals.describe('sessions in TLS-RPT reports of the last 30 days'),
});
export const DomainChange = z.object({
  domain: Domain,
  policyIdChanged: z.boolean(),
  publish: TxtRecord.optional().describe('present when the policy id changed: publish this TXT value'),
  dnsUpdate: IdPublishOutcome.optional().describe(
    'present when the policy id changed: whether serve published it by DNS UPDATE itself',
  ),
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
        kind: z
          .enum(['tlsrpt', 'dmarc'])
          .describe('TLS-RPT or DMARC aggregate report (found from the content); ids are numbered per kind'),
        id: z.number().int(),
        created: z
          .boolean()
          .describe(
            'false when the same organization + report-id (DMARC: + policy domain) was stored before',
          ),
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

// ---- monitoring (issue 12): check runs, their diff, alerts, notification deliveries ----

export const CheckParams = z.object({
  id: z.string().describe('check run id (1 to 16 digits); anything else is an unknown run (404)'),
});
export const CheckDiffQuery = z.object({
  against: z
    .string()
    .regex(/^[0-9]{1,16}$/, 'a check run id')
    .describe('the id of the older run to compare with (another run of the same domain)'),
});
export const AlertsQuery = PageQuery.extend({
  domain: z.string().min(1).max(253).optional().describe('only alerts of this domain'),
  state: z.enum(['open', 'resolved']).optional().describe('only open or only resolved alerts (default both)'),
});
export const DeliveriesQuery = PageQuery.extend({
  state: z
    .enum(['pending', 'delivered', 'abandoned'])
    .optional()
    .describe('only deliveries in this state (default all)'),
  alertId: z.coerce.number().int().min(1).optional().describe('only the deliveries of this alert'),
});
const CheckStatus = z.enum(['pass', 'warn', 'fail', 'error']);
const CheckTrigger = z.enum(['schedule', 'start', 'manual']).describe('what started the check');
export const CheckFinding = z
  .object({
    section: z.string(),
    status: z.string().describe('pass, warn, fail, skip or info'),
    code: z.string(),
    message: z.string(),
    host: z.string().optional(),
    fix: z.string().optional().describe('the record or setting that fixes it'),
    sender: z.string().optional().describe('senders section: dane-mta-sts, mta-sts or opportunistic'),
    answer: z
      .string()
      .optional()
      .describe("senders section, dane-mta-sts: mxguard policyd's socketmap reply"),
    cause: z
      .string()
      .optional()
      .describe('the code of the finding this one follows from (a bogus DNSSEC answer)'),
  })
  .describe('a finding as `mxguard check --json` writes it');
const checkRunFields = {
  id: z.number().int(),
  domain: z.string(),
  at: z.string().describe('when the check started'),
  durationMs: z.number().int(),
  status: CheckStatus,
  error: z.string().optional().describe('why the check could not run (status error)'),
  trigger: CheckTrigger,
  omittedFindings: z
    .number()
    .int()
    .optional()
    .describe('findings of the check that were not stored (beyond the store bounds); absent when none'),
};
export const CheckRunSummary = z.object({
  ...checkRunFields,
  counts: z.object({ pass: z.number().int(), warn: z.number().int(), fail: z.number().int() }),
  clipped,
});
export const CheckRun = z.object({ ...checkRunFields, findings: z.array(CheckFinding) });
export const CheckRunList = z.object({
  domain: z.string(),
  runs: z.array(CheckRunSummary).describe('newest first'),
  ...pageFields,
});
export const CheckDiff = z.object({
  domain: z.string(),
  from: CheckRunSummary.describe('the older run (`against`)'),
  to: CheckRunSummary.describe('the newer run'),
  added: z.array(CheckFinding).describe('findings only the newer run has'),
  gone: z.array(CheckFinding).describe('findings only the older run has'),
  changed: z
    .array(z.object({ before: CheckFinding, after: CheckFinding }))
    .describe('the same finding (section, code, host, sender) with another status, message or fix'),
  unchanged: z.number().int(),
});
export const Alert = z.object({
  id: z.number().int(),
  domain: z.string(),
  code: z.string().describe('the finding code of the condition (DANE_TLSA_MISMATCH...)'),
  subject: z.string().describe("the MX host, address or policy host it is about; '' for the whole domain"),
  severity: z.enum(['fail', 'warn']),
  message: z.string(),
  fix: z.string().optional(),
  openedAt: z.string(),
  resolvedAt: z.string().optional().describe('absent while open'),
  openedBy: z.number().int().describe('the check run that opened it'),
  resolvedBy: z.number().int().optional().describe('the check run that resolved it'),
});
export const AlertList = z.object({ alerts: z.array(Alert).describe('newest first'), ...pageFields });
export const AlertEvent = z
  .object({
    event: z.enum(['alert.opened', 'alert.resolved']),
    domain: z.string(),
    code: z.string(),
    severity: z.enum(['fail', 'warn']),
    message: z.string(),
    host: z.string().optional(),
    fix: z.string().optional(),
    openedAt: z.string(),
    resolvedAt: z.string().optional(),
    dashboardUrl: z.string().optional(),
  })
  .describe('the JSON a webhook receives');
export const Delivery = z.object({
  id: z.number().int(),
  alertId: z.number().int(),
  channel: z.enum(['webhook', 'email']),
  target: z.string().describe('the webhook URL, or the e-mail recipients'),
  event: AlertEvent,
  state: z.enum(['pending', 'delivered', 'abandoned']),
  attempts: z.number().int(),
  createdAt: z.string(),
  nextAttemptAt: z.string().optional().describe('pending only'),
  lastAttemptAt: z.string().optional(),
  lastError: z.string().optional(),
  deliveredAt: z.string().optional(),
});
export const DeliveryList = z.object({
  deliveries: z.array(Delivery).describe('newest first'),
  ...pageFields,
});
export const PreflightProblem = z.object({
  code: z
    .string()
    .describe('PREFLIGHT_MX_NOT_COVERED, PREFLIGHT_STARTTLS, PREFLIGHT_PKIX, PREFLIGHT_NOT_CHECKED'),
  host: z.string().optional().describe('the MX host'),
  message: z.string().describe('what would bounce under the enforce policy, and why'),
  fix: z.string(),
});
export const PreflightRefused = ApiErrorBody.extend({
  code: z.literal('PREFLIGHT_FAILED'),
  problems: z.array(PreflightProblem).describe('each reason senders would bounce mail, with its fix'),
});
export const SetupStatus = z.object({
  receiving: z
    .boolean()
    .describe('false while serve cannot receive anything (no domain, or no way in at all)'),
  summary: z.string().describe('one sentence for the top of the page'),
  items: z
    .array(
      z.object({
        domain: z.string().optional().describe('absent: about the server as a whole'),
        code: z.string().describe('SETUP_NO_DOMAIN, SETUP_NO_HTTPS, SETUP_ID_NOT_CURRENT...'),
        message: z.string(),
        fix: z.string(),
      }),
    )
    .describe('what still stands between the admin and a working setup, each with its fix'),
});
export const MonitorUnavailable = ApiErrorBody.extend({
  code: z.literal('MONITOR_UNAVAILABLE').describe('this server runs no live checks'),
});

export const DecoderBusy = ApiErrorBody.extend({
  code: z.literal('INTAKE_BUSY').describe('every report decoder is busy: retry after Retry-After seconds'),
});
export const StoreUnavailable = ApiErrorBody.extend({
  code: z
    .literal('STORE_UNAVAILABLE')
    .describe('the database cannot be reached: retry after Retry-After seconds'),
});
// ---- DMARC aggregate reports (issue 15): src/server/api/dmarc-routes.ts ----

const DmarcDispositionEnum = z.enum(['none', 'quarantine', 'reject']);
export const DmarcReportsQuery = PageQuery.extend({
  ...DayRangeQuery.shape,
  ...OtherDomainsFilters,
  domain: z.string().min(1).max(253).optional().describe('only reports about this policy domain'),
  organization: z.string().min(1).max(256).optional().describe('only reports from this reporter'),
  sourceIp: z.string().min(1).max(45).optional().describe('only reports with a row from this source IP'),
  disposition: DmarcDispositionEnum.optional().describe('only reports with a row of this disposition'),
});
/** The limit of a CSV download (api/csv-download.ts): reports per file. */
const CsvLimit = z.coerce
  .number()
  .int()
  .min(1)
  .max(CSV_REPORTS_MAX)
  .default(CSV_REPORTS_MAX)
  .describe('how many reports per file (the Link header names the next file)');
export const DmarcReportsCsvQuery = DmarcReportsQuery.extend({ limit: CsvLimit });
export const ReportsCsvQuery = ReportsQuery.extend({ limit: CsvLimit });
export const DmarcSourcesQuery = PageQuery.extend({
  ...DayRangeQuery.shape,
  verdict: z.enum(['pass', 'fail']).optional().describe('only rows with this DMARC result'),
});
export const DmarcReportSummary = z.object({
  id: z.number().int(),
  organization: z.string(),
  reportId: z.string(),
  domain: z.string().describe('the policy domain; "" when the report names none'),
  begin: z.string(),
  end: z.string(),
  messages: z.number().int(),
  passed: z.number().int().describe('messages that passed DMARC (aligned SPF or DKIM)'),
  rows: z.number().int(),
  source: Source,
  receivedAt: z.string(),
  clipped,
});
export const DmarcReportList = z.object({
  reports: z.array(DmarcReportSummary).describe('newest begin first'),
  ...pageFields,
});
const DmarcRow = z.object({
  sourceIp: z.string(),
  count: z.number().int(),
  disposition: DmarcDispositionEnum,
  dkim: z.enum(['pass', 'fail']).describe('DMARC-aligned DKIM result'),
  spf: z.enum(['pass', 'fail']).describe('DMARC-aligned SPF result'),
  headerFrom: z.string(),
  envelopeFrom: z.string().optional(),
  envelopeTo: z.string().optional(),
  dkimResults: z.array(z.object({ domain: z.string(), selector: z.string().optional(), result: z.string() })),
  spfResults: z.array(z.object({ domain: z.string(), scope: z.string().optional(), result: z.string() })),
  reasons: z.array(z.object({ type: z.string(), comment: z.string().optional() })),
});
const DmarcPolicyName = z.enum(['none', 'quarantine', 'reject']);
export const DmarcReport = DmarcReportSummary.omit({ clipped: true }).extend({
  report: z
    .object({
      kind: z.literal('dmarc'),
      organization: z.string(),
      reportId: z.string(),
      email: z.string().optional(),
      begin: z.string(),
      end: z.string(),
      domain: z.string(),
      policyPublished: z.object({
        domain: z.string(),
        p: DmarcPolicyName,
        sp: DmarcPolicyName.optional(),
        pct: z.number().optional(),
        adkim: z.enum(['r', 's']).optional(),
        aspf: z.enum(['r', 's']).optional(),
        np: DmarcPolicyName.optional(),
        fo: z.string().optional(),
      }),
      records: z.array(DmarcRow),
    })
    .describe('the aggregate report as received (RFC 7489 Appendix C, RFC 9990), in camelCase'),
  submitter: z.string().optional(),
  warnings: z.array(z.string()),
});
export const OtherDomain = z.object({
  domain: z.string().describe('the policy domain as reported; "" for reports that name none'),
  tlsrptReports: z
    .number()
    .int()
    .describe('TLS-RPT reports with a policy for it ("": with no named policy domain at all)'),
  dmarcReports: z.number().int(),
  lastReportAt: z.string().describe("the newest report's range start"),
});
export const OtherDomainList = z.object({
  domains: z.array(OtherDomain).describe('by name, "" first'),
  setting: z
    .enum(['keep', 'refuse'])
    .describe('intake.otherDomains: "keep" stores such reports, "refuse" puts them in the rejected list'),
  ...pageFields,
});
export const DmarcDailyCounts = z.object({
  day: z.string().describe('UTC day YYYY-MM-DD (report begin)'),
  pass: z.number().int().describe('DMARC pass'),
  fail: z.number().int().describe('DMARC fail, delivered (disposition none)'),
  quarantined: z.number().int(),
  rejected: z.number().int(),
});
export const DmarcNextStep = z.object({
  code: z.string().describe('NO_REPORTS, FIX_SOURCES, WAIT, MOVE_TO_QUARANTINE, MOVE_TO_REJECT, AT_REJECT'),
  message: z.string(),
  record: TxtRecord.optional().describe('the _dmarc record to publish for this step'),
});
export const DmarcOverview = z.object({
  domain: z.string(),
  since: z.string(),
  until: z.string(),
  daily: z.array(DmarcDailyCounts).describe('every UTC day of the range, oldest first'),
  totals: DmarcDailyCounts.omit({ day: true }),
  reporters: z
    .array(z.object({ organization: z.string(), reports: z.number().int(), messages: z.number().int() }))
    .describe('who sent reports in the range, most messages first'),
  reportersCut: z.boolean().describe('true when the range holds more reports than the reporters table reads'),
  policy: z
    .string()
    .optional()
    .describe('the p= of the newest report in the range (what receivers saw published)'),
  nextStep: DmarcNextStep,
});
export const DmarcSource = z.object({
  sourceIp: z.string(),
  messages: z.number().int(),
  spfAligned: z.number().int(),
  dkimAligned: z.number().int(),
  dmarcPass: z.number().int(),
  headerFrom: z.array(z.string()),
  ptr: z.string().optional().describe('reverse DNS name (looked up in the background; absent until then)'),
  legitimacy: z
    .enum(['own-mx', 'spf-authorised', 'known-provider', 'aligned', 'unknown'])
    .describe('why the source looks legitimate, or unknown'),
  provider: z.string().optional().describe('the known provider its reverse DNS name belongs to'),
});
export const DmarcSourceList = z.object({
  domain: z.string(),
  since: z.string(),
  until: z.string(),
  sources: z.array(DmarcSource).describe('most messages first'),
  ...pageFields,
});

export const OpenApiDocument = z
  .looseObject({
    openapi: z.literal('3.1.0'),
    info: z.looseObject({ title: z.string(), version: z.string() }),
    paths: z.record(z.string(), z.record(z.string(), z.unknown())),
    components: z.looseObject({ schemas: z.record(z.string(), z.unknown()) }),
  })
  .describe('this document');

/** The request bodies by component name (described as the API reads them). */
export const REQUEST_SCHEMAS = {
  LoginRequest,
  PasswordChangeRequest,
  DomainCreateRequest,
  DomainUpdateRequest,
  TokenCreateRequest,
} as const;

/** The answers by component name (described as the API writes them: no other properties). */
export const RESPONSE_SCHEMAS = {
  Error: ApiErrorBody,
  SessionInfo,
  TxtRecord,
  PublishedStatus,
  IdPublishOutcome,
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
  DecoderBusy,
  StoreUnavailable,
  OtherDomain,
  OtherDomainList,
  DmarcReportSummary,
  DmarcReportList,
  DmarcReport,
  DmarcDailyCounts,
  DmarcNextStep,
  DmarcOverview,
  DmarcSource,
  DmarcSourceList,
  CheckFinding,
  CheckRunSummary,
  CheckRun,
  CheckRunList,
  CheckDiff,
  Alert,
  AlertList,
  AlertEvent,
  Delivery,
  DeliveryList,
  PreflightProblem,
  PreflightRefused,
  MonitorUnavailable,
  SetupStatus,
  ApiToken,
  ApiTokenCreated,
  TokenList,
  OpenApiDocument,
} as const;

/** Every schema of the document by component name. */
export const SCHEMAS = { ...REQUEST_SCHEMAS, ...RESPONSE_SCHEMAS } as const;
export type SchemaName = keyof typeof SCHEMAS;

/** The TypeScript type of each component (what the JSON holds), for the API code and the dashboard. */
export type ApiTypes = { [K in SchemaName]: z.output<(typeof SCHEMAS)[K]> };
