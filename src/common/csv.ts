// CSV as spreadsheets and scripts read it (RFC 4180): CRLF-terminated rows, a field with a comma, quote or
// line break quoted, quotes doubled. A field that starts with = + - @ (or a tab / carriage return) gets a
// leading ' so that a spreadsheet never runs text a reporter wrote as a formula (OWASP "CSV injection").
// Used by the report exports (TLS-RPT and DMARC, parsedmarc's columns).

/** One field, RFC 4180 §2 quoted when needed, formulas defused. */
export function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

/** One row of fields, CRLF-terminated (RFC 4180 §2). */
export function csvRow(values: readonly string[]): string {
  return `${values.map(csvCell).join(',')}\r\n`;
}

/** One row per record: the value of each column in `columns` order ('' when absent). */
export function csvRecord<C extends string>(
  columns: readonly C[],
  values: Partial<Record<C, string>>,
): string {
  return csvRow(columns.map((c) => values[c] ?? ''));
}
