// The one step every report intake channel shares: bytes -> decodeReports (TLS-RPT, RFC 8460: the size,
// decompression, JSON depth and field caps of src/tlsrpt) or decodeDmarcReports (DMARC aggregate
// reports, RFC 7489 §7.2: the caps of src/dmarc), in a worker thread (report-decoder.ts) ->
// store.saveReport / saveDmarcReport for each report, or store.saveRejected with the reason. Used by
// HTTPS (intake.ts, TLS-RPT only: RFC 8460 §5.4; DMARC has no HTTPS delivery), SMTP (mail.ts), IMAP
// (imap.ts), the API's upload and `mxguard reports import` (both kinds, told apart by content: one
// mailbox receives both), so every channel has the same caps. Refusals for size (refusedForSize: over a byte or field cap, or more time or memory
// than a decoder thread may use) are HTTP 413 and SMTP 552; other refusals HTTP 400 and SMTP 250 with
// the code (the report is kept in the rejected list either way). A full decoder queue is neither: it
// is thrown (DecoderBusyError), and the channel answers "try again later".
//
// Nothing is dropped silently: input is either stored (idempotent on organization + report-id, and for
// DMARC + policy domain, so a report delivered twice is stored once) or kept in the rejected list with the reason. Store failures
// are not rejections: they propagate, so the caller answers "try again later" (HTTP 5xx, SMTP 451,
// IMAP message left in the mailbox) and nothing is acknowledged that is not committed.
import type { Counter, Registry } from 'prom-client';
import type { Problem } from '../common/errors.js';
import { DmarcError, type DmarcErrorCode } from '../dmarc/error.js';
import type { StorableDmarcReport } from '../store/dmarc-types.js';
import { domainKey } from '../store/domain-rules.js';
import { type DkimVerdict, type ReportSource, type Store, StoreError } from '../store/types.js';
import { TlsRptError, type TlsRptErrorCode } from '../tlsrpt/error.js';
import type { TlsReport } from '../tlsrpt/report.js';
import type { ServeConfig, ServerContext } from './context.js';
import { counter } from './metrics.js';
import {
  type DecodedInput,
  DecodeLimitError,
  type ReportDecoder,
  reportDecoderFor,
} from './report-decoder.js';

export interface IngestDeps {
  store: Store;
  limits: ServeConfig['intake'];
  now: () => Date;
  /** When given, reports received / rejected are counted on it (see intakeMetrics). */
  metrics?: Registry;
  /** Where reports are decoded; default the process's pool for `limits` (reportDecoderFor). */
  decoder?: ReportDecoder;
  /**
   * `reports import` decodes several files at once but stores them in the order given (report ids follow
   * the files): `wait` is awaited after decoding, before anything is stored; `pass` is called once the
   * last report has been handed to the store (before its commit, so consecutive files share commits).
   * The caller passes the turn itself when nothing was stored.
   */
  storeTurn?: { wait(): Promise<void>; pass(): void };
}

/** The IngestDeps of a serve process. */
export function ingestDeps(ctx: ServerContext): IngestDeps {
  return {
    store: ctx.store,
    limits: ctx.config.intake,
    now: () => ctx.now(),
    metrics: ctx.metrics,
    decoder: ctx.reportDecoder,
  };
}

export interface IngestMeta {
  source: ReportSource;
  /** Client IP (HTTPS), envelope sender / From (mail), file path (import). */
  submitter?: string;
  dkim: DkimVerdict;
  /**
   * The report must cover this policy domain (POST /tlsrpt/:domain). Policies without a
   * policy-domain are taken to be about it (with a warning); a report with no policy for it is rejected.
   */
  policyDomain?: string;
}

/** Which kind of aggregate report: TLS-RPT (RFC 8460) or DMARC (RFC 7489 Appendix C). */
export type ReportKind = 'tlsrpt' | 'dmarc';

/**
 * Why input was refused: a TLS-RPT decoding error, a report about another domain (policyDomain), or a
 * report the store refuses as invalid (e.g. session counts too large to add up).
 */
export type IngestRejectCode =
  | TlsRptErrorCode
  | DmarcErrorCode
  | DecodeLimitError['code']
  | 'INTAKE_WRONG_DOMAIN'
  | 'INTAKE_OTHER_DOMAIN'
  | 'INTAKE_STORE_INVALID';

const SIZE_CODES: readonly string[] = [
  'TLSRPT_TOO_LARGE',
  'TLSRPT_FIELD_TOO_LONG',
  'TLSRPT_LIST_TOO_LONG',
  'DMARC_REPORT_TOO_LARGE',
  'DMARC_REPORT_FIELD_TOO_LONG',
  'DMARC_REPORT_TOO_MANY_RECORDS',
  'INTAKE_DECODE_TIMEOUT',
  'INTAKE_DECODE_MEMORY',
] satisfies IngestRejectCode[];

/** Refused for its size or cost (HTTP 413, SMTP 552) rather than its content (HTTP 400). */
export function refusedForSize(code: string): boolean {
  return SIZE_CODES.includes(code);
}

export interface StoredRef {
  kind: ReportKind;
  /** The id in its kind's list (TLS-RPT reports and DMARC reports are numbered apart). */
  id: number;
  /** False when the same organization + report-id (DMARC: + policy domain) was already stored. */
  created: boolean;
  organization: string;
  reportId: string;
}

export type IngestResult =
  | { stored: StoredRef[]; warnings: Problem[] }
  | { rejected: string; code: IngestRejectCode; rejectedId: number };

/** Longest rejection reason kept (the reason can quote attacker-controlled input). */
const MAX_REASON = 1000;

export async function ingestReport(
  deps: IngestDeps,
  bytes: Uint8Array,
  meta: IngestMeta,
): Promise<IngestResult> {
  const decoder = deps.decoder ?? reportDecoderFor(deps.limits);
  const limits = {
    maxCompressedBytes: deps.limits.maxBytes,
    maxDecompressedBytes: deps.limits.maxDecompressedBytes,
  };
  let decoded: DecodedInput | undefined;
  let refusal: { code: IngestRejectCode; message: string } | undefined;
  try {
    // RFC 8460 §5.4: HTTPS delivers TLS-RPT only; mail and files may hold either kind.
    decoded =
      meta.source === 'https'
        ? { kind: 'tlsrpt', ...(await decoder.decode(bytes, limits)) }
        : await decoder.decodeAny(bytes, limits);
  } catch (err) {
    // DecoderBusyError and failures of the decoder itself go up: "try again later".
    if (!(err instanceof TlsRptError || err instanceof DmarcError || err instanceof DecodeLimitError))
      throw err;
    refusal = { code: err.code, message: err.message };
  }
  await deps.storeTurn?.wait();
  if (!decoded) return reject(deps, bytes, meta, refusal!.code, refusal!.message);
  if (decoded.kind === 'dmarc') return ingestDmarc(deps, bytes, meta, decoded.reports, decoded.warnings);
  let { reports } = decoded;
  const { warnings } = decoded;

  if (meta.policyDomain !== undefined) {
    const wanted = domainKey(meta.policyDomain);
    reports = reports.map((r) => fillPolicyDomain(r, wanted, warnings));
    const other = reports.find((r) => !r.policies.some((p) => domainKey(p.domain) === wanted));
    if (other) {
      const about = [...new Set(other.policies.map((p) => p.domain))].join(', ');
      return reject(
        deps,
        bytes,
        meta,
        'INTAKE_WRONG_DOMAIN',
        `report ${JSON.stringify(other.reportId)} is about ${about}, not ${wanted} (the domain in the URL)`,
      );
    }
  }

  const refused = await aboutOtherDomains(
    deps,
    reports.map((r) => ({ reportId: r.reportId, domains: r.policies.map((p) => p.domain) })),
  );
  if (refused) return reject(deps, bytes, meta, 'INTAKE_OTHER_DOMAIN', refused);
  return storeEach(deps, bytes, meta, 'tlsrpt', reports, warnings, (input, now) =>
    deps.store.saveReport(input, now),
  );
}

/** The DMARC half of ingestReport: the same rules (policy domain, store refusals, counters). */
async function ingestDmarc(
  deps: IngestDeps,
  bytes: Uint8Array,
  meta: IngestMeta,
  reports: StorableDmarcReport[],
  warnings: Problem[],
): Promise<IngestResult> {
  if (meta.policyDomain !== undefined) {
    const wanted = domainKey(meta.policyDomain);
    const other = reports.find((r) => domainKey(r.domain) !== wanted);
    if (other) {
      const reason = `report ${JSON.stringify(other.reportId)} is about ${other.domain || 'no domain'}, not ${wanted}`;
      return reject(deps, bytes, meta, 'INTAKE_WRONG_DOMAIN', reason);
    }
  }
  const refused = await aboutOtherDomains(
    deps,
    reports.map((r) => ({ reportId: r.reportId, domains: [r.domain] })),
  );
  if (refused) return reject(deps, bytes, meta, 'INTAKE_OTHER_DOMAIN', refused);
  return storeEach(deps, bytes, meta, 'dmarc', reports, warnings, (input, now) =>
    deps.store.saveDmarcReport(input, now),
  );
}

/**
 * Store each decoded report of one kind with `save`, counting it; a report the store refuses as
 * invalid rejects the input. Store failures go up (the caller answers "try again later").
 */
async function storeEach<R extends { organization: string; reportId: string }>(
  deps: IngestDeps,
  bytes: Uint8Array,
  meta: IngestMeta,
  kind: ReportKind,
  reports: R[],
  warnings: Problem[],
  save: (
    input: { report: R; source: ReportSource; dkim: DkimVerdict; submitter?: string; warnings: string[] },
    now: Date,
  ) => Promise<{ id: number; created: boolean }>,
): Promise<IngestResult> {
  const counters = deps.metrics ? intakeMetrics(deps.metrics) : undefined;
  const counter = kind === 'dmarc' ? counters?.dmarcReceived : counters?.received;
  const now = deps.now();
  const stored: StoredRef[] = [];
  const warningTexts = warnings.map(describeProblem);
  for (const [i, report] of reports.entries()) {
    let saved: { id: number; created: boolean };
    try {
      const saving = save(
        { report, source: meta.source, dkim: meta.dkim, submitter: meta.submitter, warnings: warningTexts },
        now,
      );
      if (i === reports.length - 1) deps.storeTurn?.pass();
      saved = await saving;
    } catch (err) {
      // Invalid content is the sender's problem, not the store's: reject it instead of "try again".
      if (!(err instanceof StoreError && err.code === 'STORE_INVALID')) throw err;
      const reason = `report ${JSON.stringify(report.reportId)}: ${err.message}`;
      return reject(deps, bytes, meta, 'INTAKE_STORE_INVALID', reason);
    }
    counter?.inc({ source: meta.source, outcome: saved.created ? 'created' : 'duplicate' });
    stored.push({ kind, ...saved, organization: report.organization, reportId: report.reportId });
  }
  return { stored, warnings };
}

/**
 * Keep input that is refused for a reason other than its TLS-RPT content (no valid DKIM signature,
 * a message over the size cap that was never read) in the rejected list, and count it.
 */
export async function recordRejected(
  deps: IngestDeps,
  input: { source: ReportSource; submitter?: string; reason: string; size: number; code: string },
): Promise<number> {
  const id = await deps.store.saveRejected(
    { source: input.source, submitter: input.submitter, reason: clip(input.reason), size: input.size },
    deps.now(),
  );
  if (deps.metrics) intakeMetrics(deps.metrics).rejected.inc({ source: input.source, code: input.code });
  return id;
}

async function reject(
  deps: IngestDeps,
  bytes: Uint8Array,
  meta: IngestMeta,
  code: IngestRejectCode,
  reason: string,
): Promise<IngestResult> {
  const rejectedId = await recordRejected(deps, {
    source: meta.source,
    submitter: meta.submitter,
    reason,
    size: bytes.length,
    code,
  });
  return { rejected: reason, code, rejectedId };
}

/**
 * With intake.otherDomains 'refuse': why the first report none of whose domains is configured is
 * refused (a report without any domain is about none); undefined when every report may be kept.
 */
async function aboutOtherDomains(
  deps: IngestDeps,
  reports: Array<{ reportId: string; domains: string[] }>,
): Promise<string | undefined> {
  if (deps.limits.otherDomains !== 'refuse') return undefined;
  for (const report of reports) {
    const named = [...new Set(report.domains.filter((d) => d !== '').map(domainKey))];
    let configured = false;
    for (const domain of named) if (await deps.store.getDomain(domain)) configured = true;
    if (!configured) {
      const about = named.length > 0 ? named.join(', ') : 'no domain';
      return `report ${JSON.stringify(report.reportId)} is about ${about}, not a configured domain (intake.otherDomains is "refuse")`;
    }
  }
  return undefined;
}

/** Policies sent without a policy-domain are about the domain the report was posted for. */
function fillPolicyDomain(report: TlsReport, domain: string, warnings: Problem[]): TlsReport {
  if (report.policies.every((p) => p.domain !== '')) return report;
  warnings.push({
    severity: 'warning',
    code: 'INTAKE_POLICY_DOMAIN_FROM_URL',
    message: `policy-domain missing: taken to be ${domain}, the domain in the URL`,
  });
  return { ...report, policies: report.policies.map((p) => (p.domain === '' ? { ...p, domain } : p)) };
}

function describeProblem(p: Problem): string {
  return p.where ? `${p.where}: ${p.message}` : p.message;
}

function clip(text: string): string {
  return text.length <= MAX_REASON ? text : `${text.slice(0, MAX_REASON - 1)}…`;
}

export interface IntakeMetrics {
  /** TLS-RPT reports stored, by source and outcome (created | duplicate). */
  received: Counter<'source' | 'outcome'>;
  /** DMARC aggregate reports stored, by source and outcome (created | duplicate). */
  dmarcReceived: Counter<'source' | 'outcome'>;
  /** Input refused, by source and code (a TLS-RPT or DMARC error code, DKIM_*, INTAKE_*). */
  rejected: Counter<'source' | 'code'>;
}

/** The intake counters on `registry`, created on first use (registering a name twice throws). */
export function intakeMetrics(registry: Registry): IntakeMetrics {
  return {
    received: counter(registry, 'mxguard_reports_received_total', 'TLS-RPT reports stored', [
      'source',
      'outcome',
    ]),
    dmarcReceived: counter(
      registry,
      'mxguard_dmarc_reports_received_total',
      'DMARC aggregate reports stored',
      ['source', 'outcome'],
    ),
    rejected: counter(registry, 'mxguard_reports_rejected_total', 'report input refused (TLS-RPT or DMARC)', [
      'source',
      'code',
    ]),
  };
}
