// Showing untrusted text: input quoted inside error messages (`shown`), and attacker-controlled
// report fields printed on a terminal (`terminalText`). Both escape what could change how a
// terminal shows the rest of the line and cut long values, without reading past what they keep.

/** `\x1b` for code points below 0x100, `\u{202e}` above. */
function escaped(cp: number): string {
  return cp < 0x100 ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16)}}`;
}

/** Input text for a message: control and non-ASCII characters escaped, long text cut. */
export function shown(text: string, max = 60): string {
  let out = '';
  for (const c of text) {
    const cp = c.codePointAt(0)!;
    out += cp >= 0x20 && cp <= 0x7e ? c : escaped(cp);
    if (out.length > max) return `${out.slice(0, max)}...`;
  }
  return out;
}

/**
 * Code points a terminal must not get raw from a report: C0 controls, DEL and C1 controls (escape
 * sequences, line breaks), the Unicode bidi controls that reorder what follows (U+061C, U+200E/F,
 * the embeddings and overrides U+202A-202E, the isolates U+2066-2069), the line and paragraph
 * separators U+2028/9, and unpaired surrogates (not text at all).
 */
function unsafeOnTerminal(cp: number): boolean {
  return (
    cp < 0x20 ||
    (cp >= 0x7f && cp <= 0x9f) ||
    cp === 0x061c ||
    cp === 0x200e ||
    cp === 0x200f ||
    (cp >= 0x2028 && cp <= 0x202e) ||
    (cp >= 0x2066 && cp <= 0x2069) ||
    (cp >= 0xd800 && cp <= 0xdfff)
  );
}

/**
 * A report value for a terminal: the characters above escaped (`\x1b`, `\u{202e}`), any other text
 * (names in any script) kept; longer than `max` characters after escaping: cut before the escape
 * that does not fit, followed by `... (N characters)` with `length`, the length of the whole value
 * (when `text` is already a cut, say so: "over 256").
 */
export function terminalText(text: string, max = 200, length: number | string = text.length): string {
  let out = '';
  for (const c of text) {
    const cp = c.codePointAt(0)!;
    const piece = unsafeOnTerminal(cp) ? escaped(cp) : c;
    if (out.length + piece.length > max) return `${out}... (${length} characters)`;
    out += piece;
  }
  return out;
}
