// The one file of a DMARC report .zip (RFC 7489 §7.2.1.1: "zip" is one of the report's compressions).
//
// A report archive holds exactly one XML file, so rather than a general unzip library this reads the
// ZIP structure itself (APPNOTE.TXT 6.3: end of central directory §4.3.16, central directory header
// §4.3.12, local file header §4.3.7) and inflates the one entry with node:zlib's inflateRaw, whose
// maxOutputLength stops inflating as soon as the output passes the cap. That keeps every rule in
// view and in one place: exactly one entry, no path tricks (`../`, absolute or drive names,
// backslashes), no encryption, stored or deflate only, the declared and the real size within the
// cap, the CRC-32 checked. ZIP64 is refused: a report within the 10 MiB caps never needs it.
import { crc32, inflateRawSync } from 'node:zlib';
import { DmarcError } from './error.js';

const EOCD_SIGNATURE = 0x06054b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
/** APPNOTE §4.3.16: the end record is 22 bytes plus a comment of at most 65,535. */
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
/** APPNOTE §4.4.4: general purpose flag bits 0 (encrypted) and 6 (strong encryption). */
const FLAG_ENCRYPTED = 0x0001;
const FLAG_STRONG_ENCRYPTION = 0x0040;
const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;

export interface ZipEntry {
  name: string;
  content: Buffer;
  /** Where its local file header starts (0 in an archive written front to back). */
  localOffset: number;
}

/**
 * The content of the single file in a ZIP archive, at most `maxBytes` bytes once inflated (`capText`
 * names that cap in the message). Anything else (more files, a path trick, encryption, a size over the
 * cap, a damaged archive) is a DmarcError.
 */
export function singleZipEntry(zip: Uint8Array, maxBytes: number, capText = `${maxBytes} bytes`): ZipEntry {
  const bytes = Buffer.from(zip.buffer, zip.byteOffset, zip.byteLength);
  const eocd = findEndRecord(bytes);
  const entries = bytes.readUInt16LE(eocd + 10);
  const centralSize = bytes.readUInt32LE(eocd + 12);
  const centralOffset = bytes.readUInt32LE(eocd + 16);
  if (entries === 0xffff || centralOffset === 0xffffffff) bad('ZIP64 archives are not accepted');
  if (entries !== 1) {
    throw new DmarcError(
      'DMARC_ZIP_ENTRIES',
      `the ZIP archive holds ${entries} entries; a DMARC report archive holds exactly one XML file`,
    );
  }
  if (centralOffset + centralSize > eocd) bad('the central directory lies outside the archive');
  // APPNOTE §4.3.12: the central directory header of the one entry.
  const c = centralOffset;
  if (c + 46 > bytes.length || bytes.readUInt32LE(c) !== CENTRAL_SIGNATURE)
    bad('no central directory header');
  const flags = bytes.readUInt16LE(c + 8);
  const method = bytes.readUInt16LE(c + 10);
  const crc = bytes.readUInt32LE(c + 16);
  const compressedSize = bytes.readUInt32LE(c + 20);
  const declaredSize = bytes.readUInt32LE(c + 24);
  const nameLength = bytes.readUInt16LE(c + 28);
  const centralLength = 46 + nameLength + bytes.readUInt16LE(c + 30) + bytes.readUInt16LE(c + 32);
  const localOffset = bytes.readUInt32LE(c + 42);
  if (centralLength !== centralSize) {
    // A second header hidden behind an entry count of 1 is still a second file.
    throw new DmarcError(
      'DMARC_ZIP_ENTRIES',
      `the ZIP central directory is ${centralSize} bytes, not the ${centralLength} of one entry: more than one file`,
    );
  }
  const name = bytes.subarray(c + 46, c + 46 + nameLength).toString('latin1');
  checkName(name);
  if (flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION)) {
    throw new DmarcError('DMARC_ZIP_ENCRYPTED', `the ZIP entry "${name}" is encrypted`);
  }
  if (method !== METHOD_STORED && method !== METHOD_DEFLATE) {
    throw new DmarcError(
      'DMARC_ZIP_METHOD',
      `the ZIP entry "${name}" uses compression method ${method}; only stored (0) and deflate (8) are read`,
    );
  }
  if (compressedSize === 0xffffffff || declaredSize === 0xffffffff) bad('ZIP64 sizes are not accepted');
  if (declaredSize > maxBytes) {
    throw new DmarcError(
      'DMARC_REPORT_TOO_LARGE',
      `the ZIP entry "${name}" declares ${declaredSize} bytes, more than ${capText}`,
    );
  }

  // APPNOTE §4.3.7: the local header repeats the name; its extra field may differ in length.
  const l = localOffset;
  if (l + 30 > bytes.length || bytes.readUInt32LE(l) !== LOCAL_SIGNATURE) bad('no local file header');
  const localNameLength = bytes.readUInt16LE(l + 26);
  checkName(bytes.subarray(l + 30, l + 30 + localNameLength).toString('latin1'));
  if (bytes.readUInt16LE(l + 6) & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION)) {
    throw new DmarcError('DMARC_ZIP_ENCRYPTED', `the ZIP entry "${name}" is encrypted`);
  }
  const dataStart = l + 30 + localNameLength + bytes.readUInt16LE(l + 28);
  if (dataStart + compressedSize > bytes.length) bad('the compressed data runs past the end of the archive');
  const data = bytes.subarray(dataStart, dataStart + compressedSize);

  let content: Buffer;
  if (method === METHOD_STORED) {
    if (data.length > maxBytes) {
      throw new DmarcError('DMARC_REPORT_TOO_LARGE', `the ZIP entry "${name}" is more than ${capText}`);
    }
    content = data;
  } else {
    try {
      content = inflateRawSync(data, { maxOutputLength: maxBytes });
    } catch (err) {
      if ((err as NodeJS.ErrnoException)?.code === 'ERR_BUFFER_TOO_LARGE') {
        throw new DmarcError(
          'DMARC_REPORT_TOO_LARGE',
          `the ZIP entry "${name}" inflates to more than ${capText} (it declares ${declaredSize})`,
          { cause: err },
        );
      }
      bad(`the ZIP entry "${name}" does not inflate: ${(err as Error)?.message ?? String(err)}`, err);
    }
  }
  if (content.length !== declaredSize) {
    bad(`the ZIP entry "${name}" is ${content.length} bytes, but declares ${declaredSize}`);
  }
  if (crc32(content) !== crc) bad(`the ZIP entry "${name}" fails its CRC-32 check`);
  return { name, content, localOffset };
}

function findEndRecord(bytes: Buffer): number {
  const lowest = Math.max(0, bytes.length - EOCD_SIZE - MAX_COMMENT);
  for (let i = bytes.length - EOCD_SIZE; i >= lowest; i--) {
    if (bytes.readUInt32LE(i) === EOCD_SIGNATURE) return i;
  }
  return bad('no end of central directory record (a truncated or damaged ZIP archive)');
}

/** A name that would land outside the folder it is unpacked into, or is not a plain file name. */
function checkName(name: string): void {
  const trick =
    name.length === 0 ||
    name.startsWith('/') ||
    name.includes('\\') ||
    name.includes('\0') ||
    /^[a-z]:/i.test(name) ||
    name.endsWith('/') ||
    name.split('/').some((part) => part === '..');
  if (trick) {
    throw new DmarcError(
      'DMARC_ZIP_PATH',
      `the ZIP entry name "${name.slice(0, 256)}" is not a plain relative file name (absolute, "..", backslash or a folder)`,
    );
  }
}

function bad(message: string, cause?: unknown): never {
  throw new DmarcError('DMARC_ZIP_BAD', message, cause === undefined ? {} : { cause });
}
