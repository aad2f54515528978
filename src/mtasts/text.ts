// Small text helpers for the MTA-STS (RFC 8461) parsers.

/** Keep quoted input short in messages. */
export function clip(s: string, max = 60): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
