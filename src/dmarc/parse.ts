// Reading DMARC aggregate reports as they arrive: RFC 7489 §7.2.1.1 (XML, gzip or zip, sent as an
// e-mail attachment) and RFC 9990. Mirrors tlsrpt/parse.ts.
//
// The format is found from the content, never from a file name: gzip (magic 1f 8b), zip ("PK\3\4"),
// XML ("<"), or a whole e-mail (a header block), whose report attachments are each one report. Every
// size is capped: the input, the decompressed XML (counted while inflating: zlib's maxOutputLength
// stops at the cap), and for an e-mail all its attachments' XML together; xml.ts then refuses DTDs,
// long values and too many records before the XML parser builds anything. Only DmarcError is ever
// thrown for bad input. The caps default to TLS-RPT's (10 MiB each).
//
// reportKindOf() tells a DMARC report from a TLS-RPT one for intake that gets both in one mailbox; it
// looks only at the first bytes of the (decompressed) content, and knows TLS-RPT's JSON only by its
// shape, since a protocol folder does not import another.

import { createGunzip, createInflateRaw, gunzipSync } from 'node:zlib';
import type { Attachment } from 'mailparser';
import { checkSizeLimits, latin1, parseEmail, sniffContainer } from '../common/container.js';
import { type Problem, problem } from '../common/errors.js';
import { shown } from '../common/text.js';
import { DmarcError } from './error.js';
import type { DmarcReport } from './report.js';
import { reportFromXml } from './xml.js';
import { singleZipEntry } from './zip.js';

const MiB = 1024 * 1024;

export interface DmarcDecodeOptions {
  /** Largest input accepted, and largest attachment in an e-mail (bytes). Default 10 MiB. */
  maxCompressedBytes?: number;
  /** Largest XML of one report after gunzip / unzip, and of all of an e-mail's reports together. Default 10 MiB. */
  maxDecompressedBytes?: number;
}

export const DEFAULT_DMARC_DECODE_LIMITS: Readonly<Required<DmarcDecodeOptions>> = {
  maxCompressedBytes: 10 * MiB,
  maxDecompressedBytes: 10 * MiB,
};

export interface DecodedDmarcReports {
  reports: DmarcReport[];
  warnings: Problem[];
}

type Limits = Required<DmarcDecodeOptions>;

/**
 * Decode every DMARC aggregate report in `bytes` (XML, gzip, zip or an e-mail). Bad input only ever
 * throws DmarcError; an invalid option (not a positive whole number) is a RangeError.
 */
export async function decodeDmarcReports(
  bytes: Uint8Array,
  options: DmarcDecodeOptions = {},
): Promise<DecodedDmarcReports> {
  const limits = { ...DEFAULT_DMARC_DECODE_LIMITS, ...options };
  checkSizeLimits(limits);
  return readOrRefuse(() => decodeInput(bytes, limits));
}

/** `read`'s result; anything but a DmarcError it throws becomes one. */
async function readOrRefuse<T>(read: () => T | Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof DmarcError) throw err;
    // Anything a library throws on hostile input is still just "not a report".
    throw new DmarcError(
      'DMARC_REPORT_NOT_A_REPORT',
      `could not read the input: ${(err as Error)?.message ?? String(err)}`,
      { cause: err },
    );
  }
}

async function decodeInput(bytes: Uint8Array, limits: Limits): Promise<DecodedDmarcReports> {
  if (bytes.length === 0) throw new DmarcError('DMARC_REPORT_EMPTY', 'the input is empty');
  if (bytes.length > limits.maxCompressedBytes) {
    throw new DmarcError(
      'DMARC_REPORT_TOO_LARGE',
      `the input is ${bytes.length} bytes, more than the limit of ${limits.maxCompressedBytes}`,
    );
  }
  switch (sniffContainer(bytes)) {
    case 'gzip':
    case 'zip':
    case 'xml': {
      const { report, warnings } = await decodePayload(bytes, limits.maxDecompressedBytes);
      return { reports: [report], warnings };
    }
    case 'email':
      return decodeEmail(bytes, limits);
    case 'blank':
      throw new DmarcError('DMARC_REPORT_EMPTY', 'the input holds only whitespace');
    default:
      throw new DmarcError(
        'DMARC_REPORT_NOT_A_REPORT',
        'not a DMARC aggregate report: neither XML, gzip, zip nor an e-mail',
      );
  }
}

/**
 * One report from an XML, gzip or zip payload of at most `maxXml` bytes of XML (`capText` names that
 * cap in messages), with the size of its XML.
 */
async function decodePayload(
  bytes: Uint8Array,
  maxXml: number,
  capText = `the limit of ${maxXml} bytes`,
): Promise<{ report: DmarcReport; warnings: Problem[]; xmlBytes: number }> {
  const warnings: Problem[] = [];
  const { xml } = inflatePayload(bytes, maxXml, capText, warnings);
  return reportFromPayload(bytes, xml, maxXml, capText, warnings);
}

/**
 * The XML of a gzip or zip payload, inflated within `maxXml` (`bytes` themselves for anything else),
 * with where a zip's one entry starts.
 */
function inflatePayload(
  bytes: Uint8Array,
  maxXml: number,
  capText: string,
  warnings: Problem[],
): { xml: Uint8Array; zipOffset?: number } {
  const kind = sniffContainer(bytes);
  if (kind === 'gzip') return { xml: gunzipCapped(bytes, maxXml, capText, warnings) };
  if (kind !== 'zip') return { xml: bytes };
  const entry = singleZipEntry(bytes, maxXml, capText);
  if (!/\.xml$/i.test(entry.name)) {
    warnings.push(
      problem('warning', 'DMARC_ZIP_NAME', `the ZIP entry "${shown(entry.name, 80)}" is not named *.xml`),
    );
  }
  return { xml: entry.content, zipOffset: entry.localOffset };
}

/** The report in `xml`, the content of the payload `bytes` (inflatePayload): the checks on the XML itself. */
function reportFromPayload(
  bytes: Uint8Array,
  xml: Uint8Array,
  maxXml: number,
  capText: string,
  warnings: Problem[],
): { report: DmarcReport; warnings: Problem[]; xmlBytes: number } {
  const content = sniffContainer(xml);
  if (xml !== bytes && (content === 'gzip' || content === 'zip')) {
    throw new DmarcError('DMARC_REPORT_NOT_A_REPORT', 'an archive inside an archive: the content is not XML');
  }
  if (xml.length > maxXml) {
    throw new DmarcError(
      'DMARC_REPORT_TOO_LARGE',
      `the report XML is ${xml.length} bytes, more than ${capText}`,
    );
  }
  if (content === 'blank') throw new DmarcError('DMARC_REPORT_EMPTY', 'the report holds only whitespace');
  if (content !== 'xml') throw new DmarcError('DMARC_REPORT_NOT_A_REPORT', 'the content is not XML');
  const decoded = reportFromXml(decodeText(xml, warnings));
  return { report: decoded.report, warnings: [...warnings, ...decoded.warnings], xmlBytes: xml.length };
}

function gunzipCapped(
  bytes: Uint8Array,
  maxOutput: number,
  capText: string,
  warnings: Problem[],
): Uint8Array {
  try {
    // maxOutputLength makes zlib stop (and fail) as soon as the output passes the cap. Synchronous, as
    // the zip entry's inflateRawSync: at most the 10 MiB cap (~20 ms), and a small report inflates in
    // 25 µs where the thread-pool round trip of zlib's async call costs 300 µs.
    return gunzipSync(bytes, { maxOutputLength: maxOutput });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException)?.code;
    if (code === 'ERR_BUFFER_TOO_LARGE') {
      throw new DmarcError('DMARC_REPORT_TOO_LARGE', `the gzip data decompresses to more than ${capText}`, {
        cause: err,
      });
    }
    // Mimecast sends the gzip member followed by a CRLF (gzip(1): "trailing garbage ignored").
    const trimmed = trimTrailingWhitespace(bytes);
    if (trimmed.length < bytes.length) {
      const xml = gunzipCapped(trimmed, maxOutput, capText, warnings);
      warnings.push(
        problem(
          'warning',
          'DMARC_REPORT_GZIP_TRAILING',
          `${bytes.length - trimmed.length} bytes after the gzip data ignored`,
        ),
      );
      return xml;
    }
    throw new DmarcError(
      'DMARC_REPORT_BAD_GZIP',
      `corrupt gzip data: ${(err as Error)?.message ?? String(err)}`,
      {
        cause: err,
      },
    );
  }
}

function trimTrailingWhitespace(bytes: Uint8Array): Uint8Array {
  let end = bytes.length;
  while (end > 0 && [0x0d, 0x0a, 0x20, 0x09].includes(bytes[end - 1]!)) end--;
  return bytes.subarray(0, end);
}

/**
 * The XML's text: UTF-8 (XML 1.0 §4.3.3 default), or the Latin-1 family when the declaration names it.
 * Bytes that are not valid UTF-8 are read as U+FFFD with a warning, as parsedmarc reads them.
 */
function decodeText(xml: Uint8Array, warnings: Problem[]): string {
  const declared = /^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*encoding\s*=\s*["']([\w.-]+)["']/i.exec(
    latin1(xml, 200),
  )?.[1];
  if (declared && /^(iso-8859-1|latin1|windows-1252|us-ascii)$/i.test(declared)) {
    return new TextDecoder('windows-1252').decode(xml);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(xml);
  } catch {
    warnings.push(
      problem(
        'warning',
        'DMARC_REPORT_BAD_UTF8',
        'the XML is not valid UTF-8; the bad bytes are read as U+FFFD',
      ),
    );
    return new TextDecoder('utf-8').decode(xml);
  }
}

// ---- e-mail ----

// RFC 7489 §7.2.1.1: gzip or zip; text/xml and application/xml for the plain XML. The others are what
// real reporters send (Amazon SES: application/octet-stream; Exchange: application/x-zip-compressed).
const REPORT_TYPES = [
  'application/gzip',
  'application/x-gzip',
  'application/zip',
  'application/x-zip-compressed',
  'application/x-zip',
  'application/xml',
  'text/xml',
];
const REPORT_FILENAME = /\.(?:xml|xml\.gz|gz|zip)$/i;

async function decodeEmail(bytes: Uint8Array, limits: Limits): Promise<DecodedDmarcReports> {
  const attachments = await emailAttachments(bytes);
  const reports: DmarcReport[] = [];
  const warnings: Problem[] = [];
  let candidates = 0;
  // One cap for all the attachments together: many small gzip parts must not expand to many times
  // maxDecompressedBytes.
  let xmlBytesLeft = limits.maxDecompressedBytes;
  for (const [i, attachment] of attachments.entries()) {
    if (!isReportAttachment(attachment)) continue;
    candidates++;
    const where = `attachment ${i + 1}${attachment.filename ? ` (${shown(attachment.filename, 120)})` : ''}`;
    const content = attachment.content;
    if (content.length > limits.maxCompressedBytes) {
      throw new DmarcError(
        'DMARC_REPORT_TOO_LARGE',
        `attachment is ${content.length} bytes, more than the limit of ${limits.maxCompressedBytes}`,
        { where },
      );
    }
    try {
      const left = Math.max(1, xmlBytesLeft);
      const capText = `the ${left} bytes left of the limit of ${limits.maxDecompressedBytes} for all the attachments together`;
      const decoded = await decodePayload(content, left, capText);
      xmlBytesLeft -= decoded.xmlBytes;
      reports.push(decoded.report);
      warnings.push(...decoded.warnings.map((w) => ({ ...w, where: within(where, w.where) })));
    } catch (err) {
      if (!(err instanceof DmarcError)) throw err;
      throw DmarcError.fromProblems(err.problems.map((p) => ({ ...p, where: within(where, p.where) })));
    }
  }
  if (candidates === 0) {
    const parts = attachments.map((a) => a.contentType).join(', ') || 'none';
    throw new DmarcError(
      'DMARC_EMAIL_NO_REPORT',
      `the e-mail has no DMARC report attachment (XML, gzip or zip); parts: ${shown(parts, 200)}`,
    );
  }
  return { reports, warnings };
}

async function emailAttachments(bytes: Uint8Array): Promise<Attachment[]> {
  const mail = await parseEmail(
    bytes,
    (reason, cause) => new DmarcError('DMARC_EMAIL_BAD', `cannot parse the e-mail: ${reason}`, { cause }),
  );
  return mail.attachments;
}

/** A part that may hold a report: by its type, its file name, or (octet-stream and the like) its content. */
function isReportAttachment(attachment: Attachment): boolean {
  const type = attachment.contentType.toLowerCase();
  if (REPORT_TYPES.includes(type)) return true;
  if (attachment.filename && REPORT_FILENAME.test(attachment.filename)) return true;
  if (type === 'application/octet-stream') {
    const kind = sniffContainer(attachment.content);
    return kind === 'gzip' || kind === 'zip' || kind === 'xml';
  }
  return false;
}

function within(outer: string, inner: string | undefined): string {
  return inner ? `${outer}, ${inner}` : outer;
}

// ---- which kind of report ----

/** How much decompressed content reportKindOf looks at. */
const SNIFF_BYTES = 16 * 1024;

/**
 * Which kind of aggregate report `bytes` holds, looking inside gzip, zip and e-mail: a DMARC report
 * (XML with a <feedback> element) or a TLS-RPT one (JSON with RFC 8460 §4.4 member names). Never
 * throws; anything it cannot tell is 'unknown'. Cheap: it inflates at most SNIFF_BYTES.
 */
export async function reportKindOf(bytes: Uint8Array): Promise<'dmarc' | 'tlsrpt' | 'unknown'> {
  try {
    if (bytes.length === 0 || bytes.length > DEFAULT_DMARC_DECODE_LIMITS.maxCompressedBytes) return 'unknown';
    if (sniffContainer(bytes) !== 'email') return kindOfPayload(bytes);
    for (const attachment of await emailAttachments(bytes)) {
      const kind = await kindOfPayload(attachment.content);
      if (kind !== 'unknown') return kind;
    }
    return 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Whether `bytes` go to decodeDmarcReports rather than TLS-RPT's decoder: DMARC content, or content of
 * neither kind that starts like XML or a zip (TLS-RPT is never either, RFC 8460 §5.3), so that a broken
 * DMARC report gets the DMARC decoder's error. For intake and `reports parse`, which take both kinds.
 */
export async function isDmarcInput(bytes: Uint8Array): Promise<boolean> {
  const kind = await reportKindOf(bytes);
  if (kind !== 'unknown') return kind === 'dmarc';
  const container = sniffContainer(bytes);
  return container === 'xml' || container === 'zip';
}

/**
 * decodeDmarcReports(bytes) when isDmarcInput(bytes), else undefined (for TLS-RPT's decoder): the two
 * steps of intake that takes both kinds, with the same results and errors. A gzip or zip file (where
 * its one entry's header comes first) is inflated once for both: the kind is then judged on the first
 * SNIFF_BYTES of the whole XML rather than of a separate partial inflate. Anything else, and any
 * payload that does not inflate, takes the two steps.
 */
export async function decodeIfDmarc(
  bytes: Uint8Array,
  options: DmarcDecodeOptions = {},
): Promise<DecodedDmarcReports | undefined> {
  const limits = { ...DEFAULT_DMARC_DECODE_LIMITS, ...options };
  checkSizeLimits(limits);
  const container = sniffContainer(bytes);
  // reportKindOf looks at nothing over the default cap, whatever the options say.
  const sniffable = Math.min(limits.maxCompressedBytes, DEFAULT_DMARC_DECODE_LIMITS.maxCompressedBytes);
  if ((container === 'gzip' || container === 'zip') && bytes.length <= sniffable) {
    const max = limits.maxDecompressedBytes;
    const capText = `the limit of ${max} bytes`;
    const warnings: Problem[] = [];
    let inflated: { xml: Uint8Array; zipOffset?: number } | undefined;
    try {
      inflated = inflatePayload(bytes, max, capText, warnings);
    } catch {
      inflated = undefined; // the two steps below give the error of the reader that takes it
    }
    const kind =
      inflated && (inflated.zipOffset ?? 0) === 0
        ? kindOfContent(inflated.xml.subarray(0, SNIFF_BYTES))
        : 'unknown';
    if (kind === 'tlsrpt') return undefined;
    if (kind === 'dmarc') {
      const xml = inflated!.xml;
      return readOrRefuse(() => {
        const decoded = reportFromPayload(bytes, xml, max, capText, warnings);
        return { reports: [decoded.report], warnings: decoded.warnings };
      });
    }
  }
  return (await isDmarcInput(bytes)) ? decodeDmarcReports(bytes, options) : undefined;
}

async function kindOfPayload(bytes: Uint8Array): Promise<'dmarc' | 'tlsrpt' | 'unknown'> {
  let head = bytes.subarray(0, SNIFF_BYTES);
  const kind = sniffContainer(bytes);
  if (kind === 'gzip') head = await inflatedHead(createGunzip(), trimTrailingWhitespace(bytes));
  else if (kind === 'zip') head = await zipHead(bytes);
  return kindOfContent(head);
}

/** The kind of report the first (inflated) bytes of a payload begin. */
function kindOfContent(head: Uint8Array): 'dmarc' | 'tlsrpt' | 'unknown' {
  const text = latin1(head, SNIFF_BYTES);
  const content = sniffContainer(head);
  if (content === 'xml' && /<(?:[A-Za-z_][\w.-]*:)?feedback[\s>]/.test(text)) return 'dmarc';
  // RFC 8460 §4.4: every report has "organization-name", "report-id" and "policies".
  if (content === 'json' && /"(?:organization-name|report-id|policies)"\s*:/.test(text)) return 'tlsrpt';
  return 'unknown';
}

/** The first SNIFF_BYTES of the one file of a ZIP archive (from its first local header). */
async function zipHead(bytes: Uint8Array): Promise<Uint8Array> {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 30) return new Uint8Array();
  const method = b.readUInt16LE(8);
  const start = 30 + b.readUInt16LE(26) + b.readUInt16LE(28);
  const data = b.subarray(start);
  if (method === 0) return data.subarray(0, SNIFF_BYTES);
  if (method !== 8) return new Uint8Array();
  return inflatedHead(createInflateRaw(), data);
}

/** Up to SNIFF_BYTES of what `stream` makes of `input`, then the stream is dropped. */
function inflatedHead(
  stream: NodeJS.ReadWriteStream & { destroy(): void },
  input: Uint8Array,
): Promise<Uint8Array> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      stream.removeAllListeners('data');
      stream.destroy();
      resolve(Buffer.concat(chunks).subarray(0, SNIFF_BYTES));
    };
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= SNIFF_BYTES) done();
    });
    stream.on('end', done);
    stream.on('error', done);
    stream.end(input);
  });
}
