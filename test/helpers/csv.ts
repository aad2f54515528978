// Reading back the CSV the exports write (RFC 4180: CRLF-terminated rows, quoted cells may hold commas,
// quotes and line breaks), for the CSV tests.

/** The rows of `text`, each a list of cells. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += c;
  }
  if (quoted || cell !== '' || row.length > 0)
    throw new Error('the CSV does not end with CRLF after its last row');
  return rows;
}

/** The rows after the header as records by column name. */
export function csvRecords(text: string): Record<string, string>[] {
  const [header, ...rows] = parseCsv(text);
  return rows.map((r) => Object.fromEntries((header ?? []).map((c, i) => [c, r[i] ?? ''])));
}
