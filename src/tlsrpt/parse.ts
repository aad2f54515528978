// Reading TLS-RPT reports as they arrive: RFC 8460 §5 (delivery), §5.3 (email format).
//
// The format is found from the content, never from a file name: gzip (magic 1f 8b), JSON
// ("{"), or a whole email (a header block), whose report attachments are each one report.
// Every size is capped (input, decompressed output, JSON nesting, the length of any JSON string)
// so that a gzip bomb, a deeply nested document or a megabyte "organization-name" is refused with
// bounded memory: a pre-scan of the JSON text refuses depth and string length before JSON.parse
// builds anything, then report.ts applies the per-field caps (REPORT_CAPS). The decompressed cap of an
// email is for all its report attachments together. Only TlsRptError is ever thrown for bad input.
//
// The default decompressed cap is 10 MiB, the same as the default input cap of `serve`: the real
// reports in the test corpus are at most 9 KB (a whole email), and a report at every field cap with
// 10,000 failure rows fits in about 3 MiB, so more is only ever an attack on memory and storage.
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { Attachment } from 'mailparser';
import { checkSizeLimits, parseEmail, sniffContainer } from '../common/container.js';
import { type Problem, problem } from '../common/errors.js';
import { TlsRptError } from './error.js';
import { MAX_FIELD_LENGTH, reportFromWire, type TlsReport } from './report.js';

const gunzipAsync = promisify(gunzip);
const MiB = 1024 * 1024;

export interface DecodeOptions {
  /** Largest input accepted, and largest attachment in an email (bytes). Default 10 MiB. */
  maxCompressedBytes?: number;
  /** Largest JSON text of one report, after gunzip (bytes). Default 10 MiB. */
  maxDecompressedBytes?: number;
  /** Deepest nesting of JSON objects/arrays accepted. Default 64. */
  maxJsonDepth?: number;
}

export const DEFAULT_DECODE_LIMITS: Readonly<Required<DecodeOptions>> = {
  maxCompressedBytes: 10 * MiB,
  maxDecompressedBytes: 10 * MiB,
  maxJsonDepth: 64,
};

export interface DecodedReports {
  reports: TlsReport[];
  warnings: Problem[];
}

/**
 * Decode every TLS-RPT report in `bytes` (JSON, gzip or an email). Bad input only ever throws
 * TlsRptError; an invalid option (not a positive whole number) is a RangeError.
 */
export async function decodeReports(bytes: Uint8Array, options: DecodeOptions = {}): Promise<DecodedReports> {
  const limits = { ...DEFAULT_DECODE_LIMITS, ...options };
  checkSizeLimits(limits);
  try {
    return await decodeInput(bytes, limits);
  } catch (err) {
    if (err instanceof TlsRptError) throw err;
    // Anything a library throws on hostile input is still just "not a report".
    throw new TlsRptError(
      'TLSRPT_NOT_A_REPORT',
      `could not read the input: ${(err as Error)?.message ?? String(err)}`,
      {
        cause: err,
      },
    );
  }
}

type Limits = Required<DecodeOptions>;

async function decodeInput(bytes: Uint8Array, limits: Limits): Promise<DecodedReports> {
  if (bytes.length === 0) throw new TlsRptError('TLSRPT_NOT_A_REPORT', 'the input is empty');
  if (bytes.length > limits.maxCompressedBytes) {
    throw new TlsRptError(
      'TLSRPT_TOO_LARGE',
      `the input is ${bytes.length} bytes, more than the limit of ${limits.maxCompressedBytes}`,
    );
  }
  switch (sniffContainer(bytes)) {
    case 'gzip':
    case 'json': {
      const { report, warnings } = await decodePayload(bytes, limits);
      return { reports: [report], warnings };
    }
    case 'email':
      return decodeEmail(bytes, limits);
    case 'zip':
      throw new TlsRptError(
        'TLSRPT_NOT_A_REPORT',
        'a ZIP archive, not a TLS-RPT report (RFC 8460 §5.3 uses gzip)',
      );
    default:
      throw new TlsRptError('TLSRPT_NOT_A_REPORT', 'not a TLS-RPT report: neither JSON, gzip nor an email');
  }
}

/**
 * One report from a gzip or JSON payload, of at most `maxJson` bytes of JSON (`capText` says which cap
 * that is, for the message), and the size of that JSON.
 */
async function decodePayload(
  bytes: Uint8Array,
  limits: Limits,
  maxJson = limits.maxDecompressedBytes,
  capText = `the limit of ${maxJson}`,
): Promise<{ report: TlsReport; warnings: Problem[]; jsonBytes: number }> {
  let json = bytes;
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    json = await gunzipCapped(bytes, maxJson, capText);
    if (json[0] === 0x1f && json[1] === 0x8b) {
      throw new TlsRptError('TLSRPT_NOT_A_REPORT', 'gzip inside gzip: the decompressed content is not JSON');
    }
  }
  if (json.length > maxJson) {
    throw new TlsRptError(
      'TLSRPT_TOO_LARGE',
      `the report JSON is ${json.length} bytes, more than ${capText}`,
    );
  }
  return { ...reportFromWire(parseJson(json, limits.maxJsonDepth)), jsonBytes: json.length };
}

async function gunzipCapped(bytes: Uint8Array, maxOutput: number, capText: string): Promise<Uint8Array> {
  try {
    // maxOutputLength makes zlib stop (and fail) as soon as the output passes the cap.
    return await gunzipAsync(bytes, { maxOutputLength: maxOutput });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException)?.code;
    if (code === 'ERR_BUFFER_TOO_LARGE') {
      throw new TlsRptError('TLSRPT_TOO_LARGE', `the gzip data decompresses to more than ${capText} bytes`, {
        cause: err,
      });
    }
    throw new TlsRptError('TLSRPT_BAD_GZIP', `corrupt gzip data: ${(err as Error)?.message ?? String(err)}`, {
      cause: err,
    });
  }
}

function parseJson(bytes: Uint8Array, maxDepth: number): unknown {
  let text: string;
  try {
    // RFC 8259 §8.1: JSON exchanged between systems is UTF-8.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new TlsRptError('TLSRPT_BAD_JSON', 'the report is not valid UTF-8');
  }
  prescanJson(text, { maxDepth, maxStringLength: MAX_FIELD_LENGTH });
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new TlsRptError('TLSRPT_BAD_JSON', `invalid JSON: ${(err as Error).message}`);
  }
}

/**
 * One pass over JSON text before it is parsed: refuse objects/arrays nested deeper than `maxDepth`
 * and strings (values or keys) longer than `maxStringLength` characters as JSON.parse would decode
 * them (an escape is one UTF-16 code unit), so that neither is ever built.
 */
export function prescanJson(text: string, limits: { maxDepth: number; maxStringLength: number }): void {
  let depth = 0;
  let stringStart = -1;
  let stringLength = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (stringStart >= 0) {
      if (c === 0x22) {
        stringStart = -1;
        continue;
      }
      // RFC 8259 §7: \uXXXX is one code unit, any other escape one character.
      if (c === 0x5c) i += text.charCodeAt(i + 1) === 0x75 ? 5 : 1;
      if (++stringLength > limits.maxStringLength) {
        throw new TlsRptError(
          'TLSRPT_FIELD_TOO_LONG',
          `a JSON string longer than ${limits.maxStringLength} characters, the longest any report field may be`,
          { where: `offset ${stringStart}` },
        );
      }
    } else if (c === 0x22) {
      stringStart = i;
      stringLength = 0;
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > limits.maxDepth) {
        throw new TlsRptError('TLSRPT_TOO_DEEP', `JSON nested more than ${limits.maxDepth} levels deep`, {
          where: `offset ${i}`,
        });
      }
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
}

// RFC 8460 §5.3: the report travels as application/tlsrpt+gzip or application/tlsrpt+json.
const STANDARD_TYPES = ['application/tlsrpt+gzip', 'application/tlsrpt+json'];
// Seen in the wild (or plausible), accepted with a warning.
const TOLERATED_TYPES = ['application/tlsrpt', 'application/gzip', 'application/x-gzip', 'application/json'];
const REPORT_FILENAME = /\.(?:json|json\.gz|gz)$/i;

async function decodeEmail(bytes: Uint8Array, limits: Limits): Promise<DecodedReports> {
  const mail = await parseEmail(
    bytes,
    (reason, cause) => new TlsRptError('TLSRPT_BAD_EMAIL', `cannot parse the email: ${reason}`, { cause }),
  );
  const warnings: Problem[] = [];
  const type = structuredHeader(mail.headers.get('content-type'));
  // RFC 8460 §5.3: Content-Type multipart/report with report-type=tlsrpt.
  if (
    type?.value.toLowerCase() !== 'multipart/report' ||
    type.params['report-type']?.toLowerCase() !== 'tlsrpt'
  ) {
    warnings.push(
      problem(
        'warning',
        'TLSRPT_EMAIL_NOT_TLSRPT',
        `email Content-Type is "${describeType(type)}", not "multipart/report; report-type=tlsrpt" (RFC 8460 §5.3)`,
        'email header Content-Type',
      ),
    );
  }
  // RFC 8460 §5.3: TLS-Report-Domain and TLS-Report-Submitter header fields.
  for (const header of ['TLS-Report-Domain', 'TLS-Report-Submitter']) {
    if (!mail.headers.has(header.toLowerCase())) {
      warnings.push(
        problem(
          'warning',
          'TLSRPT_EMAIL_MISSING_HEADER',
          `no ${header} header field (RFC 8460 §5.3)`,
          'email header',
        ),
      );
    }
  }

  const reports: TlsReport[] = [];
  let candidates = 0;
  // One cap for all the attachments together: a message of many small gzip parts must not expand
  // to many times maxDecompressedBytes.
  let jsonBytesLeft = limits.maxDecompressedBytes;
  for (const [i, attachment] of mail.attachments.entries()) {
    const where = `attachment ${i + 1}${attachment.filename ? ` (${attachment.filename})` : ''}`;
    const kind = classify(attachment);
    if (kind === 'skip') continue;
    candidates++;
    if (kind === 'tolerated') {
      warnings.push(
        problem(
          'warning',
          'TLSRPT_EMAIL_CONTENT_TYPE',
          `report sent as ${attachment.contentType}; RFC 8460 §5.3 uses application/tlsrpt+gzip or application/tlsrpt+json`,
          where,
        ),
      );
    }
    const content = attachment.content;
    const isGzip = content[0] === 0x1f && content[1] === 0x8b;
    if (attachment.contentType.toLowerCase().endsWith('+gzip') && !isGzip) {
      warnings.push(
        problem('warning', 'TLSRPT_EMAIL_NOT_GZIP', 'labelled gzip but the content is not gzip', where),
      );
    }
    if (content.length > limits.maxCompressedBytes) {
      throw new TlsRptError(
        'TLSRPT_TOO_LARGE',
        `attachment is ${content.length} bytes, more than the limit of ${limits.maxCompressedBytes}`,
        { where },
      );
    }
    try {
      const left = Math.max(1, jsonBytesLeft);
      const capText = `the ${left} bytes left of the limit of ${limits.maxDecompressedBytes} for all the attachments together`;
      const decoded = await decodePayload(content, limits, left, capText);
      jsonBytesLeft -= decoded.jsonBytes;
      reports.push(decoded.report);
      warnings.push(...decoded.warnings.map((w) => ({ ...w, where: within(where, w.where) })));
    } catch (err) {
      if (!(err instanceof TlsRptError)) throw err;
      throw TlsRptError.fromProblems(err.problems.map((p) => ({ ...p, where: within(where, p.where) })));
    }
  }
  if (candidates === 0) {
    const parts = mail.attachments.map((a) => a.contentType).join(', ') || 'none';
    throw new TlsRptError(
      'TLSRPT_NO_REPORT_IN_EMAIL',
      `the email has no TLS-RPT report attachment (application/tlsrpt+gzip or +json); attachments: ${parts}`,
    );
  }
  return { reports, warnings };
}

function classify(attachment: Attachment): 'standard' | 'tolerated' | 'skip' {
  const type = attachment.contentType.toLowerCase();
  if (STANDARD_TYPES.includes(type)) return 'standard';
  if (TOLERATED_TYPES.includes(type)) return 'tolerated';
  if (attachment.filename && REPORT_FILENAME.test(attachment.filename)) return 'tolerated';
  return 'skip';
}

interface StructuredValue {
  value: string;
  params: Record<string, string>;
}

function structuredHeader(value: unknown): StructuredValue | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Partial<StructuredValue>;
  return typeof v.value === 'string' && typeof v.params === 'object' && v.params !== null
    ? { value: v.value, params: v.params }
    : undefined;
}

function describeType(type: StructuredValue | undefined): string {
  if (!type) return '(none)';
  const params = Object.entries(type.params)
    .filter(([k]) => k !== 'boundary')
    .map(([k, v]) => `; ${k}=${v}`);
  return `${type.value}${params.join('')}`;
}

function within(outer: string, inner: string | undefined): string {
  return inner ? `${outer}, ${inner}` : outer;
}
