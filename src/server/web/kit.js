// The dashboard's building blocks, shared by its pages (app.js, dmarc.js): calls to the JSON API typed
// from the route declarations, the flash messages, and tables (paged with "Show more" and the total),
// copy buttons. Rendering goes through dom.js only (text nodes, never innerHTML).
// @ts-check
import { append, formatCount, h, replace } from './dom.js';

/** @typedef {import('../api/schemas.js').ApiTypes} Api */
/** @typedef {import('../api/routes.js').ApiExchanges} Exchanges */
/** @typedef {import('./dom.js').Child} Child */

/**
 * An element of index.html.
 * @param {string} id
 */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no #${id}`);
  return el;
}

const flashBox = byId('flash');

/** What the API does on a 401: app.js shows the login page. @type {(message?: string) => void} */
let showLogin = () => {};

/** @param {(message?: string) => void} show */
export function onLoginNeeded(show) {
  showLogin = show;
}

// ---------------------------------------------------------------------------------------------
// API access

export class ApiFailure extends Error {
  /**
   * @param {number} status
   * @param {string} message
   * @param {(Partial<Api['Error']> & Record<string, unknown>) | undefined} body the error answer
   */
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export class LoginNeeded extends Error {}

/**
 * Calls an operation of the API, named as in the OpenAPI document (`GET /api/domains/{name}`):
 * `params` fill the path, `query` the query string (undefined values left out), `json` is the body
 * (`raw`: bytes instead). Answers the operation's success answer; a 401 (outside the login itself)
 * shows the login page. The types come from the route declarations (src/server/api/routes.ts).
 * @template {keyof Exchanges} K
 * @param {K} operation
 * @param {{ params?: Exchanges[K]['params'], query?: Exchanges[K]['query'], json?: Exchanges[K]['body'], raw?: ArrayBuffer }} [options]
 * @returns {Promise<Exchanges[K]['answer']>}
 */
export async function api(operation, { params, query, json, raw } = {}) {
  const [method, template = ''] = operation.split(' ');
  const filled = /** @type {Record<string, string>} */ (params ?? {});
  const path = template.replace(/\{(\w+)\}/g, (_whole, name) => encodeURIComponent(String(filled[name])));
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined) search.set(name, String(value));
  }
  const url = search.toString() ? `${path}?${search}` : path;
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json' };
  /** @type {RequestInit} */
  const init = { method, headers, credentials: 'same-origin' };
  if (raw !== undefined) {
    init.body = raw;
    headers['content-type'] = 'application/octet-stream';
  } else if (method === 'POST' || method === 'PATCH') {
    init.body = JSON.stringify(json ?? {});
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(url, init);
  const body = res.status === 204 ? undefined : await res.json().catch(() => undefined);
  if (res.status === 401 && operation !== 'POST /api/login' && operation !== 'POST /api/password') {
    showLogin(operation === 'GET /api/session' ? undefined : 'Your session ended: log in again.');
    throw new LoginNeeded('not logged in');
  }
  if (!res.ok) throw new ApiFailure(res.status, body?.message ?? `${res.status} ${res.statusText}`, body);
  return body;
}

// ---------------------------------------------------------------------------------------------
// messages

/**
 * @param {string} message
 * @param {'error' | 'ok'} [kind]
 */
export function flash(message, kind = 'error') {
  flashBox.hidden = false;
  flashBox.className = `flash ${kind}`;
  replace(
    flashBox,
    h('span', {}, message),
    h('button', { type: 'button', class: 'link', onclick: clearFlash }, 'dismiss'),
  );
}

export function clearFlash() {
  flashBox.hidden = true;
  flashBox.replaceChildren();
}

/**
 * Runs an action from a form or button, showing its failure instead of throwing.
 * @template T
 * @param {() => Promise<T>} action
 * @param {HTMLFormElement} [form]
 * @returns {Promise<T | undefined>}
 */
export async function attempt(action, form) {
  try {
    return await action();
  } catch (err) {
    if (err instanceof LoginNeeded) return undefined;
    flash(
      err instanceof ApiFailure ? inFormTerms(err.message, form) : `Something went wrong: ${messageOf(err)}`,
    );
    return undefined;
  }
}

/**
 * A message of the API in the words of `form`: a field the API names by its parameter
 * (`maxAge: too big`, `policyHostTarget x: …`, `(policyHostTarget)`) is named by its label instead.
 * @param {string} message
 * @param {HTMLFormElement} [form]
 */
export function inFormTerms(message, form) {
  if (!form) return message;
  /** @type {Map<string, string>} */
  const labels = new Map();
  for (const field of form.querySelectorAll('[name]')) {
    const label = field.id ? form.querySelector(`label[for="${field.id}"]`) : null;
    const name = field.getAttribute('name');
    if (label && name) labels.set(name, `“${label.textContent}”`);
  }
  /** @type {(whole: string, lead?: string, inParens?: string) => string} */
  const rename = (whole, lead, inParens) => {
    const label = labels.get(lead ?? inParens ?? '');
    if (!label) return whole;
    return lead ? label : `(${label})`;
  };
  return message.replace(/^(\w+)(?=[: ])|\((\w+)\)/g, rename);
}

/**
 * The message of anything thrown.
 * @param {unknown} err
 */
export function messageOf(err) {
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------------------------
// small building blocks

/**
 * @param {string} title
 * @param {...Child} children
 */
export function section(title, ...children) {
  return h('section', { class: 'card' }, h('h2', {}, title), ...children);
}

/**
 * A stored report's facts (label, value) and the warnings its parser gave, as the card of its page.
 * @param {string} title
 * @param {string} testid
 * @param {string[][]} facts pairs of label and value
 * @param {string[]} warnings
 */
export function reportFactsSection(title, testid, facts, warnings) {
  return section(
    title,
    h(
      'dl',
      { class: 'facts', 'data-testid': testid },
      facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
    ),
    warnings.length > 0
      ? h(
          'ul',
          { class: 'notes' },
          warnings.map((w) => h('li', {}, w)),
        )
      : null,
  );
}

/**
 * One table row; a cell is a <td> already, or anything `h` takes as content.
 * @param {Child[]} cells
 */
export function tableRow(cells) {
  return h(
    'tr',
    {},
    cells.map((c) => (c instanceof Node && c.nodeName === 'TD' ? c : h('td', {}, c))),
  );
}

/**
 * @param {string[]} headers
 * @param {Child[][]} rows the cells of each row
 * @param {{ empty?: string, testid?: string }} [options]
 */
export function table(headers, rows, { empty = 'Nothing yet.', testid } = {}) {
  if (rows.length === 0) return h('p', { class: 'muted' }, empty);
  const bodyRows = rows.map(tableRow);
  // A column of numbers (td.num) gets a right-aligned header.
  const numeric = [...(bodyRows[0]?.children ?? [])].map((td) => td.classList.contains('num'));
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { 'data-testid': testid },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          headers.map((x, i) => h('th', { scope: 'col', class: numeric[i] ? 'num' : undefined }, x)),
        ),
      ),
      h('tbody', {}, bodyRows),
    ),
  );
}

/** @param {number} n */
export const num = (n) => h('td', { class: 'num' }, formatCount(n));

/**
 * A text cell of a list. A word longer than 32 characters may break anywhere (class `long`), so one
 * long value cannot push the other columns away; the API cut the value when the item's `clipped`
 * names the field (a hint says so). `content` is what the cell shows (default: the text itself).
 * @param {{ clipped?: string[] }} item
 * @param {string} field
 * @param {string} text
 * @param {{ mono?: boolean, content?: Child }} [options]
 */
export function listValue(item, field, text, { mono = false, content = text } = {}) {
  const classes = [mono ? 'mono' : '', /\S{33}/.test(text) ? 'long' : ''].filter(Boolean).join(' ');
  return h(
    'td',
    {
      class: classes || undefined,
      title: item.clipped?.includes(field) ? 'shortened: the report page shows the whole value' : undefined,
    },
    content,
  );
}

/**
 * A table over a paged list: `first` is the first page's answer, `key` the list in it, `row` makes
 * a row's cells; "Show more" loads the page after `cursor` and appends, until the last page.
 * @template {string} K
 * @template T
 * @param {string[]} headers
 * @param {Record<NoInfer<K>, T[]> & { total: number, nextCursor: string | null }} first
 * @param {{ key: K, next: (cursor: string) => Promise<Record<NoInfer<K>, T[]> & { total: number, nextCursor: string | null }>, row: (item: T) => Child[], empty?: string, testid: string }} options
 */
export function pagedTable(headers, first, { key, next, row, empty, testid }) {
  const wrap = table(headers, first[key].map(row), { empty, testid });
  if (first.nextCursor === null) return wrap;
  const tbody = /** @type {HTMLTableSectionElement} */ (wrap.querySelector('tbody'));
  let shown = first[key].length;
  /** @type {string | null} */
  let cursor = first.nextCursor;
  let total = first.total;
  const more = h('button', { type: 'button', class: 'more', 'data-testid': `${testid}-more` });
  const label = () => {
    more.textContent = `Show more (${formatCount(shown)} of ${formatCount(total)} shown)`;
  };
  label();
  more.addEventListener('click', () =>
    attempt(async () => {
      more.disabled = true;
      try {
        const page = await next(cursor ?? '');
        append(
          tbody,
          page[key].map((item) => tableRow(row(item))),
        );
        shown += page[key].length;
        total = page.total;
        cursor = page.nextCursor;
      } finally {
        more.disabled = false;
      }
      if (cursor === null) more.remove();
      else label();
    }),
  );
  return [wrap, h('p', { class: 'more-row' }, more)];
}

/**
 * Copies text to the clipboard (falls back to selecting it in a hidden text area).
 * @param {string} text
 */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h('textarea', { class: 'offscreen', value: text });
    document.body.append(area);
    area.select();
    const ok = document.execCommand('copy');
    area.remove();
    return ok;
  }
}

/**
 * @param {() => string} getText
 * @param {string} [label]
 */
export function copyButton(getText, label = 'Copy') {
  const button = h('button', { type: 'button', class: 'copy' }, label);
  button.addEventListener('click', async () => {
    const ok = await copyText(getText());
    button.textContent = ok ? 'Copied' : 'Copy failed';
    setTimeout(() => {
      button.textContent = label;
    }, 1500);
  });
  return button;
}

/**
 * A <pre> with a copy button.
 * @param {string} text
 * @param {string} testid
 */
export function copyBlock(text, testid) {
  return h(
    'div',
    { class: 'copyblock' },
    copyButton(() => text),
    h('pre', { 'data-testid': testid }, text),
  );
}

// ---- the URL fragment's query (#/path?since=...) and the range of days ----

/**
 * A fragment `#/path?name=value...` with empty and undefined values left out.
 * @param {string} path
 * @param {Record<string, string | undefined>} [params]
 */
export function hashLink(path, params = {}) {
  const query = queryString(params);
  return query ? `#${path}?${query}` : `#${path}`;
}

/**
 * A link to download the reports a list's filters select as CSV (GET /api/reports.csv and
 * /api/dmarc/reports.csv: the session cookie goes with it, and the answer's Content-Disposition makes it a
 * download; at most 10,000 reports, the newest).
 * @param {'/api/reports.csv' | '/api/dmarc/reports.csv'} path
 * @param {Record<string, string | undefined>} filters
 * @param {number} total the reports the filters match
 */
export function csvDownload(path, filters, total) {
  if (total === 0) return null;
  const query = queryString(filters);
  const note = total > 10_000 ? ` (the newest 10,000 of ${formatCount(total)})` : '';
  return h(
    'p',
    { class: 'muted' },
    // The answer's Content-Disposition (attachment) makes it a download.
    h('a', { href: query ? `${path}?${query}` : path, 'data-testid': 'csv-download' }, 'Download CSV'),
    ` in parsedmarc's columns${note}`,
  );
}

/**
 * `name=value&...` with empty and undefined values left out.
 * @param {Record<string, string | undefined>} params
 */
function queryString(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) search.set(name, value);
  return search.toString();
}

/** @param {number} daysBack */
function utcDayBefore(daysBack) {
  return new Date(Date.now() - daysBack * 86_400_000).toISOString().slice(0, 10);
}

/** Presets of the range picker: label and days up to today. */
const RANGE_PRESETS = /** @type {const} */ ([
  ['7 days', 7],
  ['30 days', 30],
  ['90 days', 90],
  ['1 year', 365],
  ['10 years', 3660],
]);

/**
 * The range of UTC days a page shows: two date fields (Apply) and presets ending today; `go` opens
 * the page for the range chosen.
 * @param {{ since: string, until: string }} range what the page shows now
 * @param {(range: { since?: string, until?: string }) => void} go
 */
export function rangePicker(range, go) {
  const since = h('input', { type: 'date', name: 'since', value: range.since, 'aria-label': 'first day' });
  const until = h('input', { type: 'date', name: 'until', value: range.until, 'aria-label': 'last day' });
  const form = h(
    'form',
    { class: 'inline-form range', 'data-testid': 'range-picker' },
    since,
    ' to ',
    until,
    h('button', { type: 'submit' }, 'Show'),
    RANGE_PRESETS.map(([label, days]) =>
      h(
        'button',
        {
          type: 'button',
          class: 'link',
          onclick: () => go({ since: utcDayBefore(days - 1), until: utcDayBefore(0) }),
        },
        label,
      ),
    ),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    go({ since: since.value || undefined, until: until.value || undefined });
  });
  return form;
}
