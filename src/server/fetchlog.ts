// Who fetches a hosted MTA-STS policy (RFC 8461 §3.3: sending MTAs fetch
// https://mta-sts.<domain>/.well-known/mta-sts.txt): the User-Agent of each fetch, sorted into the
// few fetchers a domain owner wants to recognise ("Gmail has my policy") and a handful of buckets.
// The label is used in the dashboard's fetch log and as a metrics label, so the set is closed.
//
// Only Google's fetcher names itself in a documented way (`Google-SMTP-STS`). Microsoft and Yahoo
// are recognised by their company names in the User-Agent, which is a heuristic: a User-Agent is
// whatever the client chose to send.
import cluster, { type Worker } from 'node:cluster';
import type { PolicyFetch, Store } from '../store/types.js';

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

// ---- one writer for the fetch log ----
// In a cluster, every worker writing its own fetch-log batches to SQLite makes the workers wait for
// each other's write lock (a blocked event loop: slow answers for everyone). Instead the workers
// send their fetches to the primary in small batches over IPC, and only the primary writes them.

const RELAY_MESSAGE = 'mxguard:fetches';
const RELAY_BATCH = 200;
const RELAY_FLUSH_MS = 100;

/** Worker side: collects fetches and sends them to the primary (call flush() before exiting). */
export class FetchLogRelay {
  private pending: PolicyFetch[] = [];
  private timer: NodeJS.Timeout | undefined;

  /** Queue one fetch (bound, so it can be handed around as a function). */
  readonly push = (entry: PolicyFetch): void => {
    this.pending.push(entry);
    if (this.pending.length >= RELAY_BATCH) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), RELAY_FLUSH_MS).unref();
  };

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0 || !process.send || !process.connected) return;
    const entries = this.pending;
    this.pending = [];
    process.send({ type: RELAY_MESSAGE, entries });
  }
}

/** Primary side: write the fetches the workers send into the store's fetch log. */
export function acceptRelayedFetches(store: Pick<Store, 'logFetch'>): void {
  cluster.on('message', (_worker: Worker, message: { type?: string; entries?: unknown }) => {
    if (message?.type !== RELAY_MESSAGE || !Array.isArray(message.entries)) return;
    for (const entry of message.entries as PolicyFetch[]) store.logFetch(entry);
  });
}
