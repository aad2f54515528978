// Netstrings as Postfix's socketmap protocol uses them (socketmap_table(5); D. J. Bernstein,
// "Netstrings", 1997): `<length>:<bytes>,` where <length> is the decimal byte count of <bytes>.
//
// NetstringReader parses a byte stream in place: a netstring that arrives whole inside one chunk is
// handed on as (buffer, start, end) without copying; only an incomplete tail is copied and kept, so
// the caller may read the next chunk into the same memory. A malformed stream cannot be
// resynchronised (the length is the only framing), so every error ends the stream for the caller.

export type NetstringError =
  /** The length is empty, has a non-digit, or more than 10 digits. */
  | 'NETSTRING_LENGTH'
  /** The length is more than the reader's maxLength (reported as soon as the digits show it). */
  | 'NETSTRING_TOO_LONG'
  /** The byte after the payload is not ",". */
  | 'NETSTRING_COMMA';

const COLON = 0x3a;
const COMMA = 0x2c;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const MAX_DIGITS = 10;
const EMPTY = Buffer.alloc(0);

/** Called for each complete netstring; return false to stop parsing until `resume`. */
export type NetstringHandler = (buffer: Buffer, start: number, end: number) => boolean;

export class NetstringReader {
  /** Unparsed bytes kept from earlier chunks (copied, so a socket's read buffer is not kept alive). */
  private pending: Buffer = EMPTY;

  constructor(readonly maxLength: number) {}

  /** Bytes held for an incomplete netstring (or not yet parsed after a stop). */
  get buffered(): number {
    return this.pending.length;
  }

  /**
   * Parse the first `bytes` bytes of `chunk` (all of it by default) after whatever is pending.
   * Nothing of `chunk` is kept: the caller may reuse it. Returns an error when the stream is malformed.
   */
  feed(chunk: Buffer, onString: NetstringHandler, bytes = chunk.length): NetstringError | undefined {
    let buffer = chunk;
    let size = bytes;
    if (this.pending.length > 0) {
      buffer = size === 0 ? this.pending : Buffer.concat([this.pending, chunk.subarray(0, size)]);
      size = buffer.length;
      this.pending = EMPTY;
    }
    let pos = 0;
    while (pos < size) {
      let length = 0;
      let i = pos;
      for (;;) {
        if (i === size) return this.keep(buffer, pos, size);
        const c = buffer[i]!;
        if (c === COLON) break;
        if (c < DIGIT_0 || c > DIGIT_9 || i - pos === MAX_DIGITS) return 'NETSTRING_LENGTH';
        length = length * 10 + (c - DIGIT_0);
        if (length > this.maxLength) return 'NETSTRING_TOO_LONG';
        i++;
      }
      if (i === pos) return 'NETSTRING_LENGTH';
      const start = i + 1;
      const end = start + length;
      if (end >= size) return this.keep(buffer, pos, size);
      if (buffer[end] !== COMMA) return 'NETSTRING_COMMA';
      pos = end + 1;
      if (!onString(buffer, start, end)) return this.keep(buffer, pos, size);
    }
    return undefined;
  }

  /** Go on parsing what was kept after a handler returned false. */
  resume(onString: NetstringHandler): NetstringError | undefined {
    return this.feed(EMPTY, onString);
  }

  private keep(buffer: Buffer, from: number, size: number): undefined {
    this.pending = from < size ? Buffer.from(buffer.subarray(from, size)) : EMPTY;
    return undefined;
  }
}

/** `<length>:<text>,` with the UTF-8 byte length. */
export function encodeNetstring(text: string): Buffer {
  return Buffer.from(`${Buffer.byteLength(text, 'utf8')}:${text},`, 'utf8');
}

/** Parse a buffer holding exactly one netstring (tests, clients); throws on anything else. */
export function decodeNetstring(buffer: Buffer): string {
  const strings: string[] = [];
  const reader = new NetstringReader(buffer.length);
  const error = reader.feed(buffer, (b, start, end) => {
    strings.push(b.toString('utf8', start, end));
    return true;
  });
  if (error !== undefined || strings.length !== 1 || reader.buffered > 0) {
    throw new Error(
      `not exactly one netstring: ${error ?? `${strings.length} found, ${reader.buffered} bytes left`}`,
    );
  }
  return strings[0]!;
}
