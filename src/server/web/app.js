// The mxguard dashboard: a small single-page app over the JSON API (/api, see /api/openapi.json).
// Routes live in the URL fragment: #/ (domains), #/domains/NAME?since=&until=, #/reports?domain=&since=&until=&organization=,
// #/reports/ID, #/dmarc?filters (dmarc.js), #/dmarc/ID, #/other (other-domains.js), #/settings.
// Rendering goes through dom.js only (text nodes, never innerHTML): report values are attacker-controlled.
// Lists come in pages (limit, cursor, total; docs/api.md): a table shows the first page and a
// "Show more" button appends the next one.
// @ts-check: the types of the API's answers come from its zod schemas (src/server/api/schemas.ts);
// tsconfig.web.json checks this file in `npm run typecheck`.
import { sessionsChart } from './barchart.js';
import { dmarcReportPage, dmarcReportsPage, dmarcSection } from './dmarc.js';
import { append, formatCount, formatTime, h, replace } from './dom.js';
import {
  ApiFailure,
  api,
  attempt,
  byId,
  clearFlash,
  copyBlock,
  copyButton,
  csvDownload,
  flash,
  hashLink,
  inFormTerms,
  LoginNeeded,
  listValue,
  messageOf,
  num,
  onLoginNeeded,
  pagedTable,
  rangePicker,
  reportFactsSection,
  section,
  table,
} from './kit.js';
import { otherDomainsNote, otherDomainsPage } from './other-domains.js';

/** @typedef {import('../api/schemas.js').ApiTypes} Api */
/** @typedef {import('../api/routes.js').ApiExchanges} Exchanges */
/** @typedef {import('./dom.js').Child} Child */

const main = byId('main');
const nav = byId('nav');

function watchBadge() {
  return h(
    'span',
    { class: 'badge mode-none', title: 'its policy is hosted elsewhere; serve only checks it' },
    'watch-only',
  );
}

/** @param {Api['Domain']['mode']} mode */
function modeBadge(mode) {
  return h('span', { class: `badge mode-${mode}` }, mode);
}

/**
 * What to do after an add or a change: publish the new `_mta-sts` TXT record (with a copy button).
 * @param {Api['DomainChange']} change
 */
function noticeBox(change) {
  if (!change.publish) return h('p', { class: 'notice' }, change.message);
  const published = change.dnsUpdate?.status === 'visible' || change.dnsUpdate?.status === 'published';
  if (published) return h('p', { class: 'notice', 'data-testid': 'publish-txt' }, change.message);
  const record = change.publish;
  const added = change.domain.createdAt === change.domain.updatedAt;
  const note = added
    ? `${change.domain.name} added. Publish the DNS records below, starting with this one:`
    : `The policy changed, so its id is now ${change.domain.policyId}. Publish this TXT record: senders fetch the new policy only once they see the new id.`;
  const failed =
    change.dnsUpdate?.status === 'failed'
      ? `Publishing it by DNS UPDATE failed: ${change.dnsUpdate.error} [${change.dnsUpdate.code}]. `
      : '';
  return h(
    'div',
    { class: 'publish', 'data-testid': 'publish-txt' },
    h('p', {}, failed + note),
    h(
      'div',
      { class: 'copyblock' },
      copyButton(() => record.value),
      h('pre', {}, `${record.name}.  TXT  "${record.value}"`),
    ),
  );
}

/** @param {string} text */
const splitList = (text) =>
  text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s !== '');

// ---------------------------------------------------------------------------------------------
// pages

let renderToken = 0;

/** Renders the page for the current URL fragment. */
async function render() {
  const token = ++renderToken;
  const [path = '', search = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const query = new URLSearchParams(search);
  for (const link of nav.querySelectorAll('a')) {
    link.classList.toggle(
      'active',
      link.dataset.nav === (parts[0] === 'domains' || !parts[0] ? 'domains' : parts[0]),
    );
  }
  let page;
  try {
    if (parts[0] === 'domains' && parts[1]) page = await domainPage(parts[1], query);
    else if (parts[0] === 'reports' && parts[1]) page = await reportPage(parts[1]);
    else if (parts[0] === 'reports') page = await reportsPage(query);
    else if (parts[0] === 'dmarc' && parts[1]) page = await dmarcReportPage(parts[1]);
    else if (parts[0] === 'dmarc') page = await dmarcReportsPage(query);
    else if (parts[0] === 'other') page = await otherDomainsPage();
    else if (parts[0] === 'settings') page = await settingsPage();
    else page = await overviewPage();
  } catch (err) {
    if (err instanceof LoginNeeded) return;
    page = h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Could not load this page'),
      h('p', {}, messageOf(err)),
    );
  }
  if (token === renderToken) {
    replace(main, page);
    if (pendingFlash) flash(...pendingFlash);
    pendingFlash = undefined;
  }
}

/**
 * A message to show once the next page is rendered (after a navigation clears the old one).
 * @type {[string, 'error' | 'ok'] | undefined}
 */
let pendingFlash;

// ---- login ----

/** @param {string} [message] */
function showLogin(message) {
  nav.hidden = true;
  renderToken++;
  const password = h('input', {
    type: 'password',
    id: 'password',
    name: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const error = h('p', { class: 'error', role: 'alert' }, message ?? '');
  const form = h(
    'form',
    { class: 'card login', 'data-testid': 'login-form' },
    h('h2', {}, 'Log in'),
    h(
      'p',
      { class: 'muted' },
      'The admin password was printed once by "mxguard serve" on its first start (or set with MXGUARD_ADMIN_PASSWORD).',
    ),
    h('label', { for: 'password' }, 'Admin password'),
    password,
    h('button', { type: 'submit' }, 'Log in'),
    error,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await api('POST /api/login', { json: { password: password.value } });
      password.value = '';
      clearFlash();
      nav.hidden = false;
      await render();
    } catch (err) {
      error.textContent =
        err instanceof ApiFailure && err.status === 401 ? 'Wrong password.' : messageOf(err);
    }
  });
  replace(main, form);
  password.focus();
}

// ---- domains overview ----

const DOMAINS_PAGE = 100;

async function overviewPage() {
  const [first, setup, alerts, deliveries] = await Promise.all([
    api('GET /api/domains', { query: { limit: DOMAINS_PAGE } }),
    api('GET /api/setup'),
    api('GET /api/alerts', { query: { state: 'open', limit: ALERTS_PAGE } }),
    api('GET /api/deliveries', { query: { limit: DELIVERIES_PAGE } }),
  ]);
  /** @param {Api['DomainOverview']} d */
  const row = (d) => {
    const total = d.last30Days.successful + d.last30Days.failed;
    return [
      h('td', {}, h('a', { href: `#/domains/${encodeURIComponent(d.name)}` }, d.name)),
      h('td', {}, d.watchOnly ? watchBadge() : modeBadge(d.mode)),
      h('td', { class: 'mono' }, d.watchOnly ? '–' : d.policyId),
      h('td', {}, publishedText(d.published)),
      num(d.last30Days.successful),
      h('td', { class: d.last30Days.failed > 0 ? 'num bad' : 'num' }, formatCount(d.last30Days.failed)),
      h('td', { class: 'num' }, total === 0 ? '–' : `${((100 * d.last30Days.failed) / total).toFixed(1)}%`),
    ];
  };
  return h(
    'div',
    {},
    setupSection(setup),
    alertsSection(alerts, (cursor) =>
      api('GET /api/alerts', { query: { state: 'open', limit: ALERTS_PAGE, cursor } }),
    ),
    section(
      'Domains',
      pagedTable(
        ['Domain', 'Mode', 'Policy id', 'Published id', 'Successful (30 d)', 'Failed (30 d)', 'Failure rate'],
        first,
        {
          key: 'domains',
          next: (cursor) => api('GET /api/domains', { query: { limit: DOMAINS_PAGE, cursor } }),
          row,
          empty: 'No domains yet: add one below.',
          testid: 'domains-table',
        },
      ),
    ),
    section('Add a domain', domainForm()),
    deliveriesSection(deliveries),
  );
}

/**
 * What the live `_mta-sts` lookup says (see GET /api/domains), as one short text.
 * @param {Api['PublishedStatus'] | undefined} published
 */
function publishedText(published) {
  if (!published) return '–';
  if (published.matches) return h('span', { class: 'good' }, `✓ ${published.published}`);
  if (published.published) return h('span', { class: 'bad' }, `DNS has ${published.published}`);
  return h('span', { class: 'bad' }, published.error ?? 'not published');
}

/**
 * Where serve publishes the id by DNS UPDATE (config dnsUpdate): in DNS yes, not yet, or publishing failed.
 * @param {Api['Domain']} domain
 */
function dnsUpdateText(domain) {
  const last = domain.dnsUpdate;
  if (!last) return null;
  const attrs = (/** @type {string} */ cls) => ({ class: cls, 'data-testid': 'dns-update' });
  if (domain.published?.matches) return h('span', attrs('good'), 'in DNS: yes (published by DNS UPDATE)');
  if (last.status === 'failed' && last.policyId === domain.policyId) {
    return h('span', attrs('bad'), `in DNS: publishing failed: ${last.error} [${last.code}]`);
  }
  return h('span', attrs('muted'), `in DNS: not yet${last.error ? ` (${last.error})` : ''}`);
}

/**
 * The warning while the `_mta-sts` record in DNS does not carry the current policy id.
 * @param {Api['Domain']} domain
 */
function publishedWarning(domain) {
  const p = domain.published;
  if (!p || p.matches) return null;
  const why = p.published
    ? `The _mta-sts TXT record in DNS still has id ${p.published}, but the policy served now is ${p.current}: senders keep using the policy they cached until you publish:`
    : `${p.error}. Publish:`;
  return h(
    'div',
    { class: 'publish warning', 'data-testid': 'published-warning' },
    h('p', {}, why),
    h(
      'div',
      { class: 'copyblock' },
      copyButton(() => domain.mtaStsRecord.value),
      h('pre', {}, `${domain.mtaStsRecord.name}.  TXT  "${domain.mtaStsRecord.value}"`),
    ),
  );
}

/**
 * The policy fields of the add and the change form, filled from `current`.
 * @param {Api['Domain']} [current]
 */
function settingsFields(current) {
  const fields = {
    mode: h(
      'select',
      { id: 'f-mode', name: 'mode' },
      ['testing', 'enforce', 'none'].map((m) =>
        h('option', { value: m, selected: (current?.mode ?? 'testing') === m }, m),
      ),
    ),
    mx: h('textarea', {
      id: 'f-mx',
      name: 'mx',
      rows: 3,
      placeholder: 'mail.example.com\n*.mail.protection.outlook.com',
      value: current?.mx.join('\n') ?? '',
    }),
    maxAge: h('input', {
      id: 'f-maxage',
      name: 'maxAge',
      type: 'number',
      min: 0,
      max: 31557600,
      value: String(current?.maxAge ?? 604800),
    }),
    rua: h('input', {
      id: 'f-rua',
      name: 'rua',
      placeholder: 'mailto:tlsrpt@example.com (default)',
      value: current?.rua.join(' ') ?? '',
    }),
  };
  const rows = [
    h('label', { for: 'f-mode' }, 'Mode'),
    fields.mode,
    h('label', { for: 'f-mx' }, 'MX hosts (one per line)'),
    fields.mx,
    h('label', { for: 'f-maxage' }, 'max_age (seconds)'),
    fields.maxAge,
    h('label', { for: 'f-rua' }, 'TLS-RPT rua (space-separated)'),
    fields.rua,
  ];
  const values = () => ({
    mode: /** @type {Api['Domain']['mode']} */ (fields.mode.value),
    mx: splitList(fields.mx.value),
    maxAge: Number(fields.maxAge.value),
    rua: splitList(fields.rua.value),
  });
  return { rows, values };
}

function domainForm() {
  const name = h('input', { id: 'f-name', name: 'name', required: true, placeholder: 'example.com' });
  const watchOnly = h('input', { id: 'f-watch', name: 'watchOnly', type: 'checkbox' });
  const { rows, values } = settingsFields();
  const form = h(
    'form',
    { class: 'grid-form', 'data-testid': 'add-domain-form' },
    h('label', { for: 'f-name' }, 'Mail domain'),
    name,
    h('label', { for: 'f-watch' }, 'Watch only'),
    h('span', {}, watchOnly, ' its policy is hosted elsewhere (GitHub Pages, a Worker, IIS): only check it'),
    rows,
    h('span', {}),
    h('button', { type: 'submit' }, 'Add domain'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(async () => {
      const v = values();
      /** @type {Exchanges['POST /api/domains']['body']} */
      const body = watchOnly.checked
        ? { name: name.value.trim(), watchOnly: true }
        : { name: name.value.trim(), mode: v.mode, mx: v.mx, maxAge: v.maxAge };
      if (v.rua.length > 0) body.rua = v.rua;
      const change = await withPreflight((force) =>
        api('POST /api/domains', { json: force ? { ...body, force } : body }),
      );
      clearFlash();
      pendingNotice = change;
      location.hash = `#/domains/${encodeURIComponent(change.domain.name)}`;
    }, form);
  });
  return form;
}

/**
 * The answer of the last add/update, shown once on the domain page.
 * @type {Api['DomainChange'] | undefined}
 */
let pendingNotice;

// ---- one domain ----

/**
 * @param {string} name
 * @param {URLSearchParams} query the range of days shown (since, until; default the last 30)
 */
async function domainPage(name, query) {
  const params = { name };
  const chosen = { since: query.get('since') || undefined, until: query.get('until') || undefined };
  const [domain, policy, stats, fetchLog, alerts, checks] = await Promise.all([
    api('GET /api/domains/{name}', { params }),
    api('GET /api/domains/{name}/policy', { params }),
    api('GET /api/domains/{name}/stats', {
      params,
      query: chosen.since || chosen.until ? chosen : { days: 30 },
    }),
    api('GET /api/domains/{name}/fetches', { params, query: { limit: FETCHES_PAGE } }),
    api('GET /api/alerts', { query: { domain: name, state: 'open', limit: ALERTS_PAGE } }),
    api('GET /api/domains/{name}/checks', { params, query: { limit: CHECKS_PAGE } }),
  ]);
  const range = { since: stats.since, until: stats.until };
  const notice = pendingNotice && pendingNotice.domain.name === domain.name ? pendingNotice : undefined;
  pendingNotice = undefined;

  return h(
    'div',
    { class: 'domain-page' },
    h(
      'div',
      { class: 'page-title' },
      h('h1', {}, domain.name),
      domain.watchOnly ? watchBadge() : modeBadge(domain.mode),
      domain.watchOnly ? null : h('span', { class: 'muted mono' }, `policy id ${domain.policyId}`),
      domain.published?.matches ? h('span', { class: 'good' }, '✓ published in DNS') : null,
      dnsUpdateText(domain),
    ),
    domain.watchOnly
      ? h(
          'p',
          { class: 'notice' },
          'Watched only: its policy is hosted elsewhere; serve checks it and reports what breaks.',
        )
      : notice
        ? noticeBox(notice)
        : publishedWarning(domain),
    alertsSection(alerts, (cursor) =>
      api('GET /api/alerts', { query: { domain: name, state: 'open', limit: ALERTS_PAGE, cursor } }),
    ),
    checksSection(domain.name, checks),
    rangeSection(domain.name, range),
    section(
      'TLS-RPT: sessions per day',
      sessionsChart(stats.daily, (day) => {
        location.hash = hashLink('/reports', { domain: domain.name, since: day, until: day });
      }),
      h(
        'p',
        {},
        h(
          'a',
          { href: hashLink('/reports', { domain: domain.name, ...range }) },
          'TLS-RPT reports of these days',
        ),
      ),
    ),
    failureTables(stats, domain.name),
    await dmarcSection(domain.name, range),
    domain.watchOnly ? null : section('DNS records to publish', await recordsView(domain.name)),
    domain.watchOnly ? null : policySection(domain, policy),
    fetchSection(domain.name, fetchLog),
    section(
      'Remove',
      h('p', { class: 'muted' }, 'Stops serving the policy. Reports already received are kept.'),
      h(
        'button',
        {
          type: 'button',
          class: 'danger',
          onclick: () =>
            attempt(async () => {
              if (!confirm(`Remove ${domain.name}? Its policy is no longer served.`)) return;
              await api('DELETE /api/domains/{name}', { params: { name: domain.name } });
              location.hash = '#/';
            }),
        },
        `Remove ${domain.name}`,
      ),
    ),
  );
}

/**
 * The range of days the domain page's charts and tables show, with the picker that changes it.
 * @param {string} name
 * @param {{ since: string, until: string }} range
 */
function rangeSection(name, range) {
  return h(
    'section',
    { class: 'card' },
    h('h2', {}, `Reports from ${range.since} to ${range.until} (UTC)`),
    rangePicker(range, (chosen) => {
      location.hash = hashLink(`/domains/${encodeURIComponent(name)}`, chosen);
    }),
  );
}

/**
 * @param {Api['DomainStats']} stats
 * @param {string} domain
 */
function failureTables(stats, domain) {
  /** @param {Api['BreakdownRow'][]} list */
  const rows = (list) =>
    list.map((r) => [r.key === '' ? h('span', { class: 'muted' }, '(not given)') : r.key, num(r.count)]);
  // A sending organisation opens its reports of these days (a clipped name is no longer the stored one).
  const range = { since: stats.since, until: stats.until };
  /** @param {Api['BreakdownRow'][]} list */
  const organizationRows = (list) =>
    list.map((r) => [
      r.key === '' || r.clipped
        ? r.key || h('span', { class: 'muted' }, '(not given)')
        : h('a', { href: hashLink('/reports', { domain, organization: r.key, ...range }) }, r.key),
      num(r.count),
    ]);
  const f = stats.failures;
  return h(
    'section',
    { class: 'card' },
    h('h2', {}, `Failures from ${stats.since} to ${stats.until}`),
    h(
      'div',
      { class: 'four' },
      h(
        'div',
        {},
        h('h3', {}, 'By result type'),
        table(['Result type', 'Sessions'], rows(f.resultType), {
          empty: 'No failures.',
          testid: 'failures-resultType',
        }),
      ),
      h(
        'div',
        {},
        h('h3', {}, 'By sending organisation'),
        table(['Organisation', 'Sessions'], organizationRows(f.organization), {
          empty: 'No failures.',
          testid: 'failures-organization',
        }),
      ),
      h(
        'div',
        {},
        h('h3', {}, 'By MX host'),
        table(['Receiving MX', 'Sessions'], rows(f.receivingMxHostname), {
          empty: 'No failures.',
          testid: 'failures-mx',
        }),
      ),
      h(
        'div',
        {},
        h('h3', {}, 'By sending IP'),
        table(['Sending MTA IP', 'Sessions'], rows(f.sendingMtaIp), {
          empty: 'No failures.',
          testid: 'failures-ip',
        }),
      ),
    ),
  );
}

/** @param {string} name */
async function recordsView(name) {
  const container = h('div', {});
  const target = h('input', {
    id: 'f-target',
    name: 'policyHostTarget',
    placeholder: '192.0.2.10 or host.example.net',
  });
  const form = h(
    'form',
    { class: 'inline-form' },
    h('label', { for: 'f-target' }, `mta-sts.${name} points to`),
    target,
    h('button', { type: 'submit' }, 'Update'),
  );
  const load = async () => {
    const policyHostTarget = target.value.trim() || undefined;
    const set = await api('GET /api/domains/{name}/records', {
      params: { name },
      query: { policyHostTarget },
    });
    replace(container, recordTabs(set, form));
  };
  await load();
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(load, form);
  });
  return [form, container];
}

/** @typedef {'bind' | 'powershell' | 'json'} RecordFormat */
/** @type {RecordFormat} */
let recordFormat = 'bind';

/**
 * The record set in three tabs; its notes name fields as `form` labels them.
 * @param {Api['RecordSet']} set
 * @param {HTMLFormElement} form
 */
function recordTabs(set, form) {
  /** @type {Record<RecordFormat, string>} */
  const texts = {
    bind: set.bind,
    powershell: set.powershell,
    json: JSON.stringify({ domain: set.domain, policy: set.policy, records: set.records }, null, 2),
  };
  const labels = { bind: 'BIND zone file', powershell: 'PowerShell', json: 'JSON' };
  const panel = h('div', { class: 'tabpanel', role: 'tabpanel' });
  const tabs = h('div', { class: 'tabs', role: 'tablist' });
  /** @param {RecordFormat} format */
  const show = (format) => {
    recordFormat = format;
    for (const tab of tabs.children)
      tab.setAttribute('aria-selected', String(tab.getAttribute('data-format') === format));
    replace(panel, copyBlock(texts[format], `records-${format}`));
  };
  for (const format of /** @type {RecordFormat[]} */ (Object.keys(texts))) {
    append(
      tabs,
      h(
        'button',
        { type: 'button', role: 'tab', 'data-format': format, onclick: () => show(format) },
        labels[format],
      ),
    );
  }
  show(recordFormat);
  return [
    tabs,
    panel,
    set.notes.length > 0
      ? h(
          'ul',
          { class: 'notes' },
          set.notes.map((n) => h('li', {}, inFormTerms(n, form))),
        )
      : null,
  ];
}

/**
 * @param {Api['Domain']} domain
 * @param {Api['PolicyWithHistory']} policy
 */
function policySection(domain, policy) {
  const { rows, values } = settingsFields(domain);
  const form = h(
    'form',
    { class: 'grid-form', 'data-testid': 'edit-domain-form' },
    rows,
    h('span', {}),
    h('button', { type: 'submit' }, 'Save policy'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(async () => {
      const change = await withPreflight((force) =>
        api('PATCH /api/domains/{name}', {
          params: { name: domain.name },
          json: force ? { ...values(), force } : values(),
        }),
      );
      pendingNotice = change;
      clearFlash();
      await render();
    }, form);
  });
  const history = table(
    ['Policy id', 'Since', 'Policy'],
    policy.history.map((v) => [
      h('td', { class: 'mono' }, v.policyId),
      formatTime(v.createdAt),
      h('td', {}, h('details', {}, h('summary', {}, 'show'), h('pre', {}, v.policyText))),
    ]),
    { testid: 'policy-history' },
  );
  return section(
    'Policy',
    h('p', {}, 'Served at ', h('span', { class: 'mono' }, policy.policyUrl), ':'),
    copyBlock(policy.policyText, 'policy-text'),
    h('details', {}, h('summary', {}, 'Change the policy'), form),
    h('h3', {}, 'History'),
    history,
  );
}

const FETCHES_PAGE = 100;

/**
 * @param {string} name
 * @param {Api['FetchLog']} log
 */
function fetchSection(name, log) {
  const summary =
    log.total > log.fetches.length
      ? `Latest ${formatCount(log.fetches.length)} of ${formatCount(log.total)} fetches`
      : `Latest ${formatCount(log.fetches.length)} fetches`;
  return section(
    'Who fetches your policy',
    table(
      ['Client', 'Fetches', 'Last fetch'],
      log.clients.map((c) => [c.client, num(c.count), formatTime(c.lastAt)]),
      { empty: 'No policy fetches logged yet.', testid: 'fetch-clients' },
    ),
    log.fetches.length > 0
      ? h(
          'details',
          {},
          h('summary', {}, summary),
          pagedTable(['Time', 'Client IP', 'Client', 'User-Agent'], log, {
            key: 'fetches',
            next: (cursor) =>
              api('GET /api/domains/{name}/fetches', {
                params: { name },
                query: { limit: FETCHES_PAGE, cursor },
              }),
            row: (f) => [
              formatTime(f.at),
              h('td', { class: 'mono' }, f.clientIp),
              f.client,
              h('td', { class: 'ua' }, f.userAgent),
            ],
            testid: 'fetch-log',
          }),
        )
      : null,
  );
}

// ---- monitoring: setup status, alerts, checks ----

const ALERTS_PAGE = 50;
const CHECKS_PAGE = 20;

/**
 * Sends an add or a change; when the pre-flight of an enforce policy refuses it (409
 * PREFLIGHT_FAILED), says what senders would bounce and sends it again with `force` if the admin
 * agrees. Declining shows the problems (the refusal's message).
 * @template T
 * @param {(force: boolean) => Promise<T>} send
 * @returns {Promise<T>}
 */
async function withPreflight(send) {
  try {
    return await send(false);
  } catch (err) {
    if (!(err instanceof ApiFailure) || err.body?.code !== 'PREFLIGHT_FAILED') throw err;
    const problems = /** @type {Api['PreflightProblem'][]} */ (err.body.problems ?? []);
    const lines = problems.map((p) => `• ${p.message}\n  Fix: ${p.fix}`).join('\n');
    const question = `Enforcing this policy now would make senders bounce mail:\n\n${lines}\n\nEnforce anyway?`;
    if (!confirm(question)) throw err;
    return send(true);
  }
}

/** @param {Api['SetupStatus']} setup */
function setupSection(setup) {
  const items = setup.items.map((item) =>
    h(
      'li',
      {},
      h('span', {}, item.domain ? `${item.domain}: ${item.message}` : item.message),
      h('div', { class: 'fix' }, 'Fix: ', h('code', {}, item.fix)),
    ),
  );
  return h(
    'section',
    { class: 'card', 'data-testid': 'setup-status' },
    h('h2', {}, 'Setup status'),
    h('p', { class: setup.receiving && setup.items.length === 0 ? 'good' : 'bad' }, setup.summary),
    items.length > 0 ? h('ul', { class: 'setup-items' }, items) : null,
  );
}

/**
 * The open alerts (of every domain, or of one), with what to do about each.
 * @param {Api['AlertList']} first
 * @param {(cursor: string) => Promise<Api['AlertList']>} next
 */
function alertsSection(first, next) {
  /** @param {Api['Alert']} a */
  const row = (a) => [
    h('td', {}, h('a', { href: `#/domains/${encodeURIComponent(a.domain)}` }, a.domain)),
    h(
      'td',
      {},
      h('span', { class: `badge status-${a.severity}` }, a.severity),
      ' ',
      h('span', { class: 'mono' }, a.code),
    ),
    h('td', { class: 'mono' }, a.subject || '–'),
    formatTime(a.openedAt),
    h('td', { class: /\S{33}/.test(a.message) ? 'long' : undefined }, a.message),
    h('td', {}, a.fix ? h('pre', { class: 'fix' }, a.fix) : '–'),
  ];
  return section(
    `Open alerts (${formatCount(first.total)})`,
    pagedTable(['Domain', 'Alert', 'About', 'Since', 'What', 'Fix'], first, {
      key: 'alerts',
      next,
      row,
      empty: 'No open alerts.',
      testid: 'open-alerts',
    }),
  );
}

const DELIVERIES_PAGE = 20;

/**
 * The alert notifications (webhooks, e-mail) and whether they arrived.
 * @param {Api['DeliveryList']} first
 */
function deliveriesSection(first) {
  /** @param {Api['Delivery']} d */
  const row = (d) => [
    formatTime(d.createdAt),
    `${d.event.event} ${d.event.domain} ${d.event.code}`,
    d.channel,
    h('td', { class: 'mono long' }, d.target),
    h(
      'td',
      { class: d.state === 'abandoned' ? 'bad' : d.state === 'delivered' ? 'good' : undefined },
      d.state,
    ),
    num(d.attempts),
    h(
      'td',
      { class: 'long' },
      d.lastError ?? (d.nextAttemptAt ? `next try ${formatTime(d.nextAttemptAt)}` : '–'),
    ),
  ];
  return section(
    'Notifications',
    pagedTable(['Created', 'Event', 'Channel', 'To', 'State', 'Attempts', 'Last error'], first, {
      key: 'deliveries',
      next: (cursor) => api('GET /api/deliveries', { query: { limit: DELIVERIES_PAGE, cursor } }),
      row,
      empty: 'No notification yet (alerts are sent to monitor.webhooks and monitor.email).',
      testid: 'deliveries',
    }),
  );
}

/**
 * A domain's history of checks, a "Check now" button, and what changed between a run and the one
 * before it (or any two: pick the older one in the select).
 * @param {string} name
 * @param {Api['CheckRunList']} first
 */
function checksSection(name, first) {
  const diffBox = h('div', { 'data-testid': 'check-diff' });
  /** @type {Api['CheckRunSummary'][]} */
  const runs = [...first.runs];
  /** @param {Api['CheckRunSummary']} run */
  const row = (run) => {
    const index = runs.indexOf(run);
    const older = runs[index + 1];
    return [
      formatTime(run.at),
      run.trigger,
      h(
        'td',
        {},
        h('span', { class: `badge status-${run.status}` }, run.status),
        run.error ? ` ${run.error}` : '',
      ),
      num(run.counts.pass),
      num(run.counts.warn),
      num(run.counts.fail),
      h(
        'td',
        {},
        older
          ? h(
              'button',
              {
                type: 'button',
                class: 'link',
                'data-testid': `diff-${run.id}`,
                onclick: () => attempt(() => showDiff(diffBox, run.id, older.id)),
              },
              'What changed',
            )
          : '–',
      ),
    ];
  };
  // Any two runs: the older one first.
  const older = h('select', { 'aria-label': 'older check', 'data-testid': 'diff-older' });
  const newer = h('select', { 'aria-label': 'newer check', 'data-testid': 'diff-newer' });
  /** @param {Api['CheckRunSummary'][]} list */
  const addChoices = (list) => {
    for (const select of [older, newer]) {
      append(
        select,
        list.map((r) => h('option', { value: String(r.id) }, `${formatTime(r.at)} (${r.status})`)),
      );
    }
  };
  addChoices(runs);
  older.selectedIndex = 1;
  const compare = h(
    'button',
    {
      type: 'button',
      onclick: () => attempt(() => showDiff(diffBox, Number(newer.value), Number(older.value))),
    },
    'Compare',
  );
  const checkNow = h(
    'button',
    {
      type: 'button',
      'data-testid': 'check-now',
      onclick: () =>
        attempt(async () => {
          checkNow.disabled = true;
          checkNow.textContent = 'Checking…';
          try {
            const run = await api('POST /api/domains/{name}/check', { params: { name } });
            pendingFlash = [`Checked ${name}: ${run.status} (${run.findings.length} findings).`, 'ok'];
            await render();
          } finally {
            checkNow.disabled = false;
            checkNow.textContent = 'Check now';
          }
        }),
    },
    'Check now',
  );
  return section(
    'Checks',
    h(
      'p',
      {},
      checkNow,
      ' ',
      h('span', { class: 'muted' }, 'Runs the live check now and stores it like a scheduled one.'),
    ),
    pagedTable(['When', 'Trigger', 'Status', 'Pass', 'Warn', 'Fail', ''], first, {
      key: 'runs',
      next: async (cursor) => {
        const page = await api('GET /api/domains/{name}/checks', {
          params: { name },
          query: { limit: CHECKS_PAGE, cursor },
        });
        runs.push(...page.runs);
        addChoices(page.runs);
        return page;
      },
      row,
      empty: 'Not checked yet.',
      testid: 'check-history',
    }),
    runs.length < 2 ? null : h('p', { class: 'compare' }, 'Compare ', older, ' with ', newer, ' ', compare),
    diffBox,
  );
}

/**
 * Shows what changed from run `against` to run `id` in `box`.
 * @param {HTMLElement} box
 * @param {number} id
 * @param {number} against
 */
async function showDiff(box, id, against) {
  const diff = await api('GET /api/checks/{id}/diff', {
    params: { id: String(id) },
    query: { against: String(against) },
  });
  /** @param {Api['CheckFinding']} f */
  const line = (f) => `${f.status.toUpperCase()} ${f.code}${f.host ? ` (${f.host})` : ''}: ${f.message}`;
  /**
   * @param {string} title
   * @param {string} kind
   * @param {string[]} lines
   */
  const part = (title, kind, lines) =>
    lines.length === 0
      ? null
      : h(
          'div',
          { class: `diff-${kind}` },
          h('h4', {}, title),
          h(
            'ul',
            {},
            lines.map((l) => h('li', {}, l)),
          ),
        );
  const nothing = diff.added.length + diff.gone.length + diff.changed.length === 0;
  replace(
    box,
    h('h3', {}, `What changed from ${formatTime(diff.from.at)} to ${formatTime(diff.to.at)}`),
    nothing ? h('p', { class: 'muted' }, `Nothing: the same ${diff.unchanged} findings.`) : null,
    part('New', 'added', diff.added.map(line)),
    part('Gone', 'gone', diff.gone.map(line)),
    part(
      'Changed',
      'changed',
      diff.changed.map((c) => `${line(c.after)} (was ${c.before.status.toUpperCase()}: ${c.before.message})`),
    ),
  );
}

// ---- reports ----

const REPORTS_PAGE = 50;
const REJECTED_PAGE = 20;

/**
 * @param {URLSearchParams} query filters: domain, since, until (UTC days the report's range starts in), organization,
 * otherDomains / noPolicyDomain ('true': reports about domains that are not configured / naming none)
 */
async function reportsPage(query) {
  const filters = {
    domain: query.get('domain') || undefined,
    since: query.get('since') || undefined,
    until: query.get('until') || undefined,
    organization: query.get('organization') || undefined,
    otherDomains: query.get('otherDomains') === 'true' ? /** @type {const} */ ('true') : undefined,
    noPolicyDomain: query.get('noPolicyDomain') === 'true' ? /** @type {const} */ ('true') : undefined,
  };
  const filtered = Object.values(filters).some(Boolean);
  const [reports, rejected] = await Promise.all([
    api('GET /api/reports', { query: { ...filters, limit: REPORTS_PAGE } }),
    api('GET /api/rejected', { query: { limit: REJECTED_PAGE } }),
  ]);
  return h(
    'div',
    {},
    section('Import a report', importForm()),
    section(
      `Reports (${formatCount(reports.total)})`,
      reportFilters(filters),
      filters.organization
        ? h(
            'p',
            { 'data-testid': 'reports-organization' },
            `From ${filters.organization} only. `,
            h(
              'a',
              { href: hashLink('/reports', { ...filters, organization: undefined }) },
              'Every organisation',
            ),
          )
        : null,
      otherDomainsNote(filters),
      filtered ? h('p', { class: 'muted' }, h('a', { href: '#/reports' }, 'Show all reports')) : null,
      csvDownload('/api/reports.csv', filters, reports.total),
      pagedTable(
        ['Organisation', 'Report id', 'Period start', 'Domains', 'Successful', 'Failed', 'Source', 'DKIM'],
        reports,
        {
          key: 'reports',
          next: (cursor) => api('GET /api/reports', { query: { ...filters, limit: REPORTS_PAGE, cursor } }),
          row: (r) => [
            listValue(r, 'organization', r.organization, {
              content: h('a', { href: `#/reports/${r.id}` }, r.organization || '(no name)'),
            }),
            listValue(r, 'reportId', r.reportId, { mono: true }),
            formatTime(r.start),
            r.domains.length === 0
              ? h('span', { class: 'muted' }, '(no policy domain)')
              : listValue(r, 'domains', r.domains.join(', ')),
            num(r.successful),
            h('td', { class: r.failed > 0 ? 'num bad' : 'num' }, formatCount(r.failed)),
            r.source,
            r.dkim,
          ],
          empty: 'No reports yet.',
          testid: 'reports-table',
        },
      ),
    ),
    section(
      `Rejected input (${formatCount(rejected.total)})`,
      pagedTable(['Received', 'Source', 'Submitter', 'Size', 'Reason'], rejected, {
        key: 'rejected',
        next: (cursor) => api('GET /api/rejected', { query: { limit: REJECTED_PAGE, cursor } }),
        row: (r) => [
          formatTime(r.receivedAt),
          r.source,
          listValue(r, 'submitter', r.submitter ?? ''),
          num(r.size),
          listValue(r, 'reason', r.reason),
        ],
        empty: 'Nothing rejected.',
        testid: 'rejected-table',
      }),
    ),
  );
}

/**
 * The filters of the TLS-RPT report list: a policy domain and a range of days.
 * @param {{ domain?: string, since?: string, until?: string, organization?: string, otherDomains?: 'true' }} filters
 */
function reportFilters(filters) {
  const domain = h('input', { name: 'domain', value: filters.domain ?? '' });
  const since = h('input', { type: 'date', name: 'since', value: filters.since ?? '' });
  const until = h('input', { type: 'date', name: 'until', value: filters.until ?? '' });
  const form = h(
    'form',
    { class: 'filters', 'data-testid': 'report-filters' },
    h('label', {}, 'Domain', domain),
    h('label', {}, 'From', since),
    h('label', {}, 'To', until),
    h('button', { type: 'submit' }, 'Filter'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = hashLink('/reports', {
      domain: domain.value.trim(),
      since: since.value,
      until: until.value,
      organization: filters.organization,
      otherDomains: filters.otherDomains,
    });
  });
  return form;
}

function importForm() {
  const file = h('input', {
    type: 'file',
    id: 'f-file',
    accept: '.json,.gz,.eml,application/json,application/gzip,message/rfc822',
  });
  const form = h(
    'form',
    { class: 'inline-form', 'data-testid': 'import-form' },
    h('label', { for: 'f-file' }, 'TLS-RPT report (.json, .json.gz or .eml)'),
    file,
    h('button', { type: 'submit' }, 'Import'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const chosen = file.files?.[0];
    if (!chosen) {
      flash('Choose a file first.');
      return;
    }
    attempt(async () => {
      const bytes = await chosen.arrayBuffer();
      let outcome;
      try {
        outcome = await api('POST /api/reports/import', { query: { filename: chosen.name }, raw: bytes });
      } catch (err) {
        if (!(err instanceof ApiFailure) || err.body?.rejectedId === undefined) throw err;
        await render(); // the rejected list below now shows it
        flash(`${chosen.name} was not imported: ${err.message}`);
        return;
      }
      clearFlash();
      await render();
      flash(
        outcome.stored
          .map(
            (s) => `${s.created ? 'Stored' : 'Already stored'}: report ${s.reportId} from ${s.organization}`,
          )
          .join('; ') || 'No report in the file.',
        'ok',
      );
    });
  });
  return form;
}

/**
 * The button that deletes report `id` (after asking), then shows the list.
 * @param {string} id
 * @param {string} what
 */
function deleteReportButton(id, what) {
  return h(
    'button',
    {
      type: 'button',
      class: 'danger',
      onclick: () =>
        attempt(async () => {
          if (!confirm(`Delete report ${what}? Its sessions leave the charts and tables.`)) return;
          await api('DELETE /api/reports/{id}', { params: { id } });
          pendingFlash = [`Report ${what} deleted.`, 'ok'];
          location.hash = '#/reports';
        }),
    },
    'Delete this report',
  );
}

/**
 * @param {string} id
 * @param {string} what
 */
function deleteSection(id, what) {
  return section(
    'Delete',
    h(
      'p',
      { class: 'muted' },
      'Removes the report with its policies and failures from every chart and table.',
    ),
    deleteReportButton(id, what),
  );
}

/**
 * A report stored too large for the detail view (413): its clipped summary, and the way out.
 * @param {string} id
 * @param {Api['ReportTooLarge']} body
 */
function tooLargePage(id, body) {
  const r = body.report;
  return h(
    'div',
    {},
    h('p', {}, h('a', { href: '#/reports' }, '← all reports')),
    section(
      'Report',
      h('p', { class: 'notice', 'data-testid': 'report-too-large' }, body.message),
      h(
        'dl',
        { class: 'facts' },
        [
          ['Organisation', r.organization],
          ['Report id', r.reportId],
          ['Period', `${formatTime(r.start)} – ${formatTime(r.end)}`],
          ['Domains', r.domains.join(', ')],
          ['Sessions', `${formatCount(r.successful)} successful, ${formatCount(r.failed)} failed`],
          ['Received', `${formatTime(r.receivedAt)} via ${r.source}`],
        ].map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
      ),
    ),
    deleteSection(id, `#${r.id}`),
  );
}

/** @param {string} id */
async function reportPage(id) {
  /** @type {Api['Report']} */
  let r;
  try {
    r = await api('GET /api/reports/{id}', { params: { id } });
  } catch (err) {
    // Stored too large to show (an older mxguard kept megabyte values): the summary, to delete it.
    if (err instanceof ApiFailure && err.status === 413 && err.body?.report) {
      return tooLargePage(id, /** @type {Api['ReportTooLarge']} */ (err.body));
    }
    throw err;
  }
  const facts = [
    ['Organisation', r.organization],
    ['Report id', r.reportId],
    ['Period', `${formatTime(r.report.start)} – ${formatTime(r.report.end)}`],
    ['Contact', r.report.contactInfo ?? ''],
    ['Policy domains', r.domains.length > 0 ? r.domains.join(', ') : '(the report names no policy domain)'],
    ['Received', `${formatTime(r.receivedAt)} via ${r.source}${r.submitter ? ` from ${r.submitter}` : ''}`],
    ['DKIM', r.dkim],
  ];
  return h(
    'div',
    {},
    h('p', {}, h('a', { href: '#/reports' }, '← all reports')),
    reportFactsSection('Report', 'report-facts', facts, r.warnings),
    r.report.policies.map((p) =>
      section(
        `Policy ${p.type} for ${p.domain || '(no domain given)'}`,
        h('p', {}, `${formatCount(p.successful)} successful, ${formatCount(p.failed)} failed sessions`),
        p.mxHosts.length > 0 ? h('p', {}, 'MX: ', h('span', { class: 'mono' }, p.mxHosts.join(', '))) : null,
        p.policyStrings.length > 0
          ? h(
              'details',
              {},
              h('summary', {}, 'Policy as the sender saw it'),
              h('pre', {}, p.policyStrings.join('\n')),
            )
          : null,
        table(
          [
            'Result type',
            'Sessions',
            'Sending IP',
            'Receiving MX',
            'Receiving IP',
            'HELO',
            'Reason code',
            'Information',
          ],
          p.failures.map((f) => [
            f.resultType,
            num(f.count),
            f.sendingMtaIp ?? '',
            f.receivingMxHostname ?? '',
            f.receivingIp ?? '',
            f.receivingMxHelo ?? '',
            f.failureReasonCode ?? '',
            f.additionalInformation ?? '',
          ]),
          { empty: 'No failure details.', testid: 'report-failures' },
        ),
      ),
    ),
    deleteSection(id, `#${r.id} from ${(r.organization || '(no name)').slice(0, 80)}`),
  );
}

// ---- settings ----

async function settingsPage() {
  const { tokens } = await api('GET /api/tokens');
  const current = h('input', {
    type: 'password',
    id: 'f-current',
    autocomplete: 'current-password',
    required: true,
  });
  const next = h('input', { type: 'password', id: 'f-next', autocomplete: 'new-password', required: true });
  const pwForm = h(
    'form',
    { class: 'grid-form' },
    h('label', { for: 'f-current' }, 'Current password'),
    current,
    h('label', { for: 'f-next' }, 'New password (10+ characters)'),
    next,
    h('span', {}),
    h('button', { type: 'submit' }, 'Change password'),
  );
  pwForm.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(async () => {
      await api('POST /api/password', { json: { current: current.value, next: next.value } });
      showLogin('Password changed: log in with the new one.');
    });
  });

  const tokenName = h('input', { id: 'f-token', required: true, placeholder: 'backup script' });
  const tokenForm = h(
    'form',
    { class: 'inline-form' },
    h('label', { for: 'f-token' }, 'Name'),
    tokenName,
    h('button', { type: 'submit' }, 'Create token'),
  );
  tokenForm.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(async () => {
      const t = await api('POST /api/tokens', { json: { name: tokenName.value } });
      await render();
      flash(`Token "${t.name}" created. Copy it now, it is not shown again: ${t.token}`, 'ok');
    });
  });
  return h(
    'div',
    {},
    section('Admin password', pwForm),
    section(
      'API tokens',
      h(
        'p',
        { class: 'muted' },
        'For scripts: send Authorization: Bearer <token>. The API is described at /api/openapi.json.',
      ),
      tokenForm,
      table(
        ['Name', 'Created', ''],
        tokens.map((t) => [
          t.name,
          formatTime(t.createdAt),
          h(
            'button',
            {
              type: 'button',
              class: 'danger small',
              onclick: () =>
                attempt(async () => {
                  await api('DELETE /api/tokens/{id}', { params: { id: t.id } });
                  await render();
                }),
            },
            'Revoke',
          ),
        ]),
        { empty: 'No API tokens.' },
      ),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// start

onLoginNeeded(showLogin);
byId('logout').addEventListener('click', () =>
  attempt(async () => {
    await api('POST /api/logout');
    showLogin('Logged out.');
  }),
);
window.addEventListener('hashchange', () => {
  clearFlash();
  render();
});

(async () => {
  try {
    await api('GET /api/session');
  } catch {
    return; // the login page is showing
  }
  nav.hidden = false;
  await render();
})();
