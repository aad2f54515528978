// Lines of a byte stream with a cap on each line, held while reading: a line longer than `maxChars`
// is never buffered whole (the rest of it is skipped up to its newline) and comes out marked
// `oversized`, so a file without newlines costs bounded memory. UTF-8; "\r\n" and "\n" end lines.
import { StringDecoder } from 'node:string_decoder';

export interface Line {
  /** The line without its newline; cut to maxChars when oversized. */
  text: string;
  /** 1-based. */
  number: number;
  oversized: boolean;
}

export async function* boundedLines(
  chunks: AsyncIterable<Buffer | string>,
  maxChars: number,
): AsyncGenerator<Line> {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  let skipping = false;
  let number = 0;
  const emit = (text: string, oversized: boolean): Line => ({
    text: text.endsWith('\r') ? text.slice(0, -1) : text,
    number: ++number,
    oversized,
  });
  for await (const chunk of chunks) {
    let text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
    for (;;) {
      const newline = text.indexOf('\n');
      if (newline < 0) break;
      const piece = text.slice(0, newline);
      text = text.slice(newline + 1);
      if (skipping) {
        skipping = false;
        yield emit(pending, true);
      } else if (pending.length + piece.length > maxChars) {
        yield emit((pending + piece).slice(0, maxChars), true);
      } else {
        yield emit(pending + piece, false);
      }
      pending = '';
    }
    if (skipping) continue;
    pending += text;
    if (pending.length > maxChars) {
      pending = pending.slice(0, maxChars);
      skipping = true;
    }
  }
  pending += decoder.end();
  if (skipping) yield emit(pending.slice(0, maxChars), true);
  else if (pending !== '') yield emit(pending, pending.length > maxChars);
}
