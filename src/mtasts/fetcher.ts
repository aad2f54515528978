// Who fetches an MTA-STS policy (RFC 8461 §3.3: sending MTAs fetch
// https://mta-sts.<domain>/.well-known/mta-sts.txt): the User-Agent of each fetch, sorted into the
// few fetchers a domain owner wants to recognise ("Gmail has my policy") and a handful of buckets.
// `serve`'s fetch log and metrics and `mxguard fetchers` (web server access logs) use it; the set of
// labels is closed, since it is a metrics label.
//
// Only Google's fetcher names itself in a documented way (`Google-SMTP-STS`). Microsoft and Yahoo
// are recognised by their company names in the User-Agent, which is a heuristic: a User-Agent is
// whatever the client chose to send.

export type FetcherLabel =
  | 'Google'
  | 'Microsoft'
  | 'Yahoo'
  | 'postfix-mta-sts-resolver'
  | 'mailauth'
  | 'mxguard'
  | 'command-line'
  | 'browser'
  | 'other'
  | 'none';

/** Every label classifyUserAgent can return, in the order they are tried. */
export const FETCHER_LABELS: readonly FetcherLabel[] = [
  'Google',
  'Microsoft',
  'Yahoo',
  'postfix-mta-sts-resolver',
  'mailauth',
  'mxguard',
  'command-line',
  'browser',
  'other',
  'none',
];

// First match wins: the providers before the generic buckets, because their fetchers may also
// carry a "Mozilla/5.0 (compatible; ...)" prefix.
const RULES: ReadonlyArray<readonly [RegExp, FetcherLabel]> = [
  [/\bGoogle-SMTP-STS\b/i, 'Google'],
  [/\b(?:Microsoft|Exchange|Outlook|Office ?365)\b/i, 'Microsoft'],
  [/\bYahoo/i, 'Yahoo'],
  [/\bpostfix-mta-sts-resolver\b/i, 'postfix-mta-sts-resolver'],
  [/\bmailauth\//i, 'mailauth'],
  [/\bmxguard\//i, 'mxguard'],
  [
    /^(?:curl|Wget|HTTPie|python-requests|python-urllib|Go-http-client|okhttp|libwww-perl)\b/i,
    'command-line',
  ],
  [/^Mozilla\/\d/, 'browser'],
];

/** The fetcher a User-Agent header belongs to; 'none' for a missing or blank header. */
export function classifyUserAgent(userAgent: string | undefined): FetcherLabel {
  const ua = (userAgent ?? '').trim();
  if (ua === '') return 'none';
  for (const [pattern, label] of RULES) {
    if (pattern.test(ua)) return label;
  }
  return 'other';
}
