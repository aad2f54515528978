// What a report upload or attachment is, found from its content and never from a file name: gzip (magic
// 1f 8b, RFC 1952 §2.3.1), zip (local file header "PK\3\4"), XML ("<"), JSON ("{" or "["), or a whole
// e-mail (a header block, RFC 5322 §2.2). Shared by the TLS-RPT and DMARC report readers, with the option
// check of their size caps and the e-mail parse.
import type { ParsedMail } from 'mailparser';

export type Container = 'gzip' | 'zip' | 'xml' | 'json' | 'email' | 'blank' | 'unknown';

/** How many leading bytes the text forms are judged by. */
const HEAD_BYTES = 4096;

export function sniffContainer(bytes: Uint8Array): Container {
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) return 'gzip';
  if (bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) return 'zip';
  const head = latin1(bytes, HEAD_BYTES);
  const text = head.replace(/^\xef\xbb\xbf/, '').trimStart();
  if (text === '' && bytes.length <= HEAD_BYTES) return 'blank';
  if (text.startsWith('<')) return 'xml';
  if (text.startsWith('{') || text.startsWith('[')) return 'json';
  // RFC 5322 §2.2: a header field is a name of printable characters but ":", then ":". An mbox
  // "From " separator line may come first.
  const firstLine = head.replace(/^From [^\n]*\n/, '');
  if (/^[\x21-\x39\x3b-\x7e]+[ \t]*:/.test(firstLine)) return 'email';
  return 'unknown';
}

/** The first `max` bytes as Latin-1 text (one character per byte), read in place. */
export function latin1(bytes: Uint8Array, max: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1', 0, max);
}

/** Size caps given as options must be positive whole numbers (a RangeError names the first that is not). */
export function checkSizeLimits(limits: Record<string, number>): void {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1)
      throw new RangeError(`${name} must be a positive whole number`);
  }
}

/**
 * A whole e-mail, parsed for its attachments (no HTML/text conversions). A parse failure is handed to
 * `failed`, which returns the reader's own error to throw.
 */
export async function parseEmail(
  bytes: Uint8Array,
  failed: (reason: string, cause: unknown) => Error,
): Promise<ParsedMail> {
  // Loaded on first use: most reports arrive as files, not e-mails, and mailparser takes a third of
  // the start-up of a decoder thread (`reports import`, bench/dmarc-import.ts).
  const { simpleParser } = await import('mailparser');
  try {
    return await simpleParser(Buffer.from(bytes), {
      skipHtmlToText: true,
      skipTextToHtml: true,
      skipImageLinks: true,
    });
  } catch (err) {
    throw failed((err as Error)?.message ?? String(err), err);
  }
}
