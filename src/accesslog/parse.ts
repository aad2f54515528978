// Web server access logs, read for the MTA-STS policy fetches in them (`mxguard fetchers`): IIS W3C
// extended format (the `#Fields:` directive names the columns; IIS writes spaces in a value as "+"),
// and the NCSA combined format of nginx and Apache, with Apache's vhost_combined "host:port " prefix.
// One line at a time, from untrusted files: a line over MAX_LINE_CHARS or one that matches no format
// is a named problem, never an exception. Pure: the caller reads the files.

/** Longer lines are refused (a request line of a policy fetch is far shorter). */
export const MAX_LINE_CHARS = 16 * 1024;

export interface AccessEntry {
  /** ISO time (UTC). */
  at: string;
  method: string;
  /** The path without the query. */
  path: string;
  status: number;
  userAgent: string;
  clientIp: string;
  /** The Host the request was for, when the format records it (IIS cs-host, vhost_combined). */
  host?: string;
}

export type LineResult =
  | { kind: 'entry'; entry: AccessEntry }
  /** A comment, a directive, a blank line. */
  | { kind: 'skip' }
  | { kind: 'malformed'; reason: string };

/** IIS's default field list, used until a `#Fields:` directive says otherwise. */
const IIS_DEFAULT_FIELDS = [
  'date',
  'time',
  's-ip',
  'cs-method',
  'cs-uri-stem',
  'cs-uri-query',
  's-port',
  'cs-username',
  'c-ip',
  'cs(user-agent)',
  'cs(referer)',
  'sc-status',
  'sc-substatus',
  'sc-win32-status',
  'time-taken',
];

/** What a reader keeps between lines of one file: the IIS field list in force. */
export interface ParserState {
  iisFields: string[];
}

export function newParserState(): ParserState {
  return { iisFields: IIS_DEFAULT_FIELDS };
}

// NCSA combined: host ident user [time] "request" status bytes "referer" "user-agent", with an optional
// vhost_combined "host:port " before it. Quoted values escape '"' as '\"'.
const COMBINED =
  /^(?:(\S+?)(?::\d+)? )?(\S+) \S+ \S+ \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (?:\d+|-) "(?:[^"\\]|\\.)*" "((?:[^"\\]|\\.)*)"/;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export function parseAccessLine(line: string, state: ParserState): LineResult {
  if (line.length > MAX_LINE_CHARS)
    return { kind: 'malformed', reason: `longer than ${MAX_LINE_CHARS} characters` };
  const text = line.replace(/\r$/, '');
  if (text.trim() === '') return { kind: 'skip' };
  if (text.startsWith('#')) {
    const fields = /^#Fields:\s*(.+)$/i.exec(text);
    if (fields) state.iisFields = fields[1]!.trim().toLowerCase().split(/\s+/);
    return { kind: 'skip' };
  }
  const combined = COMBINED.exec(text);
  if (combined) return combinedEntry(combined);
  return iisEntry(text, state);
}

function combinedEntry(m: RegExpExecArray): LineResult {
  const [, vhost, clientIp, time, request, status, userAgent] = m;
  const at = ncsaTime(time!);
  if (at === undefined) return { kind: 'malformed', reason: `unreadable time "${time}"` };
  const parts = unbackslash(request!).split(' ');
  if (parts.length < 2) return { kind: 'malformed', reason: 'unreadable request line' };
  const entry: AccessEntry = {
    at,
    method: parts[0]!,
    path: stripQuery(parts[1]!),
    status: Number(status),
    userAgent: unbackslash(userAgent!),
    clientIp: clientIp!,
  };
  if (vhost !== undefined) entry.host = vhost.toLowerCase();
  return { kind: 'entry', entry };
}

/** "10/Oct/2023:13:55:36 -0700" as ISO UTC. */
function ncsaTime(text: string): string | undefined {
  const m = /^(\d{2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(text);
  if (!m) return undefined;
  const month = MONTHS.indexOf(m[2]!);
  if (month < 0) return undefined;
  const offset = (m[7] === '-' ? -1 : 1) * (Number(m[8]) * 60 + Number(m[9])) * 60_000;
  const utc = Date.UTC(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6])) - offset;
  return Number.isNaN(utc) ? undefined : new Date(utc).toISOString();
}

function iisEntry(text: string, state: ParserState): LineResult {
  const values = text.split(' ');
  const fields = state.iisFields;
  if (values.length !== fields.length) {
    return {
      kind: 'malformed',
      reason: `${values.length} values for ${fields.length} fields, and not the combined format`,
    };
  }
  const get = (name: string) => {
    const i = fields.indexOf(name);
    const v = i < 0 ? undefined : values[i];
    return v === undefined || v === '-' ? undefined : v;
  };
  const date = get('date');
  const time = get('time');
  const at = date && time ? Date.parse(`${date}T${time}Z`) : Number.NaN;
  const status = Number(get('sc-status'));
  const method = get('cs-method');
  const stem = get('cs-uri-stem');
  if (Number.isNaN(at) || !Number.isInteger(status) || method === undefined || stem === undefined) {
    return { kind: 'malformed', reason: 'no date, time, method, path or status in the IIS fields' };
  }
  // IIS logs times in UTC and writes spaces inside a value as "+".
  const entry: AccessEntry = {
    at: new Date(at).toISOString(),
    method,
    path: stripQuery(stem),
    status,
    userAgent: (get('cs(user-agent)') ?? '').replace(/\+/g, ' '),
    clientIp: get('c-ip') ?? '',
  };
  const host = get('cs-host');
  if (host !== undefined) entry.host = host.toLowerCase().replace(/:\d+$/, '');
  return { kind: 'entry', entry };
}

function stripQuery(path: string): string {
  const q = path.indexOf('?');
  return q < 0 ? path : path.slice(0, q);
}

function unbackslash(text: string): string {
  return text.replace(/\\(.)/g, '$1');
}
