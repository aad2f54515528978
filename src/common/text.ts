// Showing input text inside error messages.

/** Input text for a message: control and non-ASCII characters escaped, long text cut. */
export function shown(text: string, max = 60): string {
  const escaped = text.replace(/[^\x20-\x7e]/gu, (c) => {
    const cp = c.codePointAt(0)!;
    return cp < 0x100 ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16)}}`;
  });
  return escaped.length > max ? `${escaped.slice(0, max)}...` : escaped;
}
