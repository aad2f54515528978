// Small text helpers for the MTA-STS (RFC 8461) parsers.

/** RFC 5234 WSP (space or TAB). */
function isWsp(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t';
}

/** Remove WSP (space and TAB only) from both ends; a plain loop, so long runs of WSP stay linear. */
export function trimWsp(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isWsp(s[start])) start++;
  while (end > start && isWsp(s[end - 1])) end--;
  return s.slice(start, end);
}

/** Does the text end with WSP? */
export function endsWithWsp(s: string): boolean {
  return isWsp(s[s.length - 1]);
}

/** Keep quoted input short in messages. */
export function clip(s: string, max = 60): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
