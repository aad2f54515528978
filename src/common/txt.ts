// TXT record helpers shared by the record modules.
// RFC 1035 §3.3.14: a TXT RDATA is one or more <character-string>s of at most 255 octets each.

/** Result of picking the one record of a given version out of all TXT records at a name. */
export type VersionedSelection =
  | { kind: 'one'; record: string; ignored: string[] }
  | { kind: 'none'; ignored: string[] }
  | { kind: 'many'; records: string[]; ignored: string[] };

/**
 * RFC 8461 §3.1 / RFC 8460 §3: discard every record that does not start with `<version>;`
 * (e.g. "v=STSv1;"); if anything but exactly one remains, there is no usable record.
 * WSP before the ';' is accepted (RFC 8461 erratum 6285).
 */
export function selectVersionedRecord(records: readonly string[], version: string): VersionedSelection {
  const prefix = new RegExp(`^${version.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[ \\t]*;`);
  const matching = records.filter((r) => prefix.test(r));
  const ignored = records.filter((r) => !prefix.test(r));
  if (matching.length === 1) return { kind: 'one', record: matching[0]!, ignored };
  if (matching.length === 0) return { kind: 'none', ignored };
  return { kind: 'many', records: matching, ignored };
}

/**
 * Split a TXT value into character-strings of at most `max` octets (UTF-8), never cutting a
 * multi-byte character. Many DNS panels reject a single string over 255 characters.
 */
export function splitTxt(value: string, max = 255): string[] {
  if (max < 4) throw new RangeError('max must be at least 4 octets');
  const parts: string[] = [];
  let current = '';
  let currentBytes = 0;
  for (const ch of value) {
    const size = Buffer.byteLength(ch, 'utf8');
    if (currentBytes + size > max) {
      parts.push(current);
      current = '';
      currentBytes = 0;
    }
    current += ch;
    currentBytes += size;
  }
  if (current !== '' || parts.length === 0) parts.push(current);
  return parts;
}

/** Zone-file presentation of a TXT value: split into <=255-octet strings, each quoted and escaped. */
export function quoteTxt(value: string, max = 255): string {
  return splitTxt(value, max)
    .map((s) => `"${s.replace(/["\\]/g, '\\$&')}"`)
    .join(' ');
}

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
