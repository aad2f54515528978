// The dashboard's DMARC views (RFC 7489 aggregate reports, issue 15): per domain the messages per day by
// result (a bar opens that day's reports), the next step with its record, the sending sources ranked
// (a source opens its reports) and the reporters; the report list with its filters (domain, range,
// reporter, source IP, disposition) paged with the total; one report with every row.
// Report values are attacker-controlled: everything goes through dom.js as text.
// @ts-check
import { dmarcChart } from './barchart.js';
import { formatCount, formatTime, h } from './dom.js';
import {
  api,
  attempt,
  copyBlock,
  csvDownload,
  hashLink,
  listValue,
  num,
  pagedTable,
  reportFactsSection,
  section,
  table,
} from './kit.js';
import { otherDomainsNote } from './other-domains.js';

/** @typedef {import('../api/schemas.js').ApiTypes} Api */

const SOURCES_PAGE = 20;
const DMARC_REPORTS_PAGE = 50;

/** How a source's legitimacy reads in the table. */
const LEGITIMACY = {
  'own-mx': 'yes: an MX host of the domain',
  'spf-authorised': 'yes: in the domain’s SPF record',
  'known-provider': 'yes: known provider',
  aligned: 'likely: its mail passes DMARC',
  unknown: 'unknown',
};

/**
 * The DMARC part of a domain page for the UTC days since..until.
 * @param {string} name
 * @param {{ since: string, until: string }} range
 */
export async function dmarcSection(name, range) {
  const params = { name };
  const [view, sources] = await Promise.all([
    api('GET /api/domains/{name}/dmarc', { params, query: range }),
    api('GET /api/domains/{name}/dmarc/sources', { params, query: { ...range, limit: SOURCES_PAGE } }),
  ]);
  /** @param {Record<string, string | undefined>} filters */
  const reportsOf = (filters) => hashLink('/dmarc', { domain: name, ...range, ...filters });
  const step = view.nextStep;
  return [
    section(
      'DMARC: messages per day',
      dmarcChart(view.daily, (day) => {
        location.hash = hashLink('/dmarc', { domain: name, since: day, until: day });
      }),
      h('p', {}, h('a', { href: reportsOf({}) }, 'DMARC reports of these days')),
    ),
    section(
      'DMARC: next step',
      h('p', { 'data-testid': 'dmarc-next-step', class: step.record ? 'notice' : undefined }, step.message),
      step.record
        ? copyBlock(`${step.record.name}.  TXT  "${step.record.value}"`, 'dmarc-next-record')
        : null,
      view.policy ? h('p', { class: 'muted' }, `Receivers saw p=${view.policy} in the newest report.`) : null,
    ),
    section(
      `DMARC: sending sources (${formatCount(sources.total)})`,
      h(
        'p',
        { class: 'muted' },
        'Ranked by messages. Reverse DNS names are looked up in the background: reload to see new ones.',
      ),
      pagedTable(
        [
          'Source IP',
          'Reverse DNS',
          'Messages',
          'SPF aligned',
          'DKIM aligned',
          'DMARC pass',
          'Looks legitimate',
        ],
        sources,
        {
          key: 'sources',
          next: (cursor) =>
            api('GET /api/domains/{name}/dmarc/sources', {
              params,
              query: { ...range, limit: SOURCES_PAGE, cursor },
            }),
          row: (/** @type {Api['DmarcSource']} */ s) => [
            h('td', { class: 'mono' }, h('a', { href: reportsOf({ sourceIp: s.sourceIp }) }, s.sourceIp)),
            s.ptr ?? h('span', { class: 'muted' }, '—'),
            num(s.messages),
            num(s.spfAligned),
            num(s.dkimAligned),
            h('td', { class: s.dmarcPass < s.messages ? 'num bad' : 'num' }, formatCount(s.dmarcPass)),
            h(
              'td',
              { class: s.legitimacy === 'unknown' ? 'legit-unknown' : undefined },
              s.provider ? `${LEGITIMACY[s.legitimacy]} (${s.provider})` : LEGITIMACY[s.legitimacy],
            ),
          ],
          empty: 'No sources in these days.',
          testid: 'dmarc-sources',
        },
      ),
    ),
    section(
      'DMARC: reporters',
      table(
        ['Reporter', 'Reports', 'Messages'],
        view.reporters.map((r) => [
          h('a', { href: reportsOf({ organization: r.organization }) }, r.organization || '(no name)'),
          num(r.reports),
          num(r.messages),
        ]),
        { empty: 'No reports in these days.', testid: 'dmarc-reporters' },
      ),
      view.reportersCut ? h('p', { class: 'muted' }, 'Counted from the newest 10,000 reports.') : null,
    ),
  ];
}

/** The filters of the DMARC report list, as the URL fragment's query holds them. */
const FILTERS = /** @type {const} */ ([
  ['domain', 'Domain'],
  ['since', 'From'],
  ['until', 'To'],
  ['organization', 'Reporter'],
  ['sourceIp', 'Source IP'],
]);
const DISPOSITIONS = /** @type {const} */ (['none', 'quarantine', 'reject']);

/**
 * The list of DMARC reports with the filters of `query` (#/dmarc?domain=...&since=...).
 * @param {URLSearchParams} query
 */
export async function dmarcReportsPage(query) {
  const disposition = DISPOSITIONS.find((d) => d === query.get('disposition'));
  /** @type {Record<string, string | undefined>} */
  const filters = {};
  for (const [key] of FILTERS) filters[key] = query.get(key) || undefined;
  const other = {
    otherDomains: query.get('otherDomains') === 'true' ? /** @type {const} */ ('true') : undefined,
    noPolicyDomain: query.get('noPolicyDomain') === 'true' ? /** @type {const} */ ('true') : undefined,
  };
  const listQuery = {
    ...other,
    domain: filters.domain,
    since: filters.since,
    until: filters.until,
    organization: filters.organization,
    sourceIp: filters.sourceIp,
    disposition,
  };
  const reports = await api('GET /api/dmarc/reports', { query: { ...listQuery, limit: DMARC_REPORTS_PAGE } });
  const fields = FILTERS.map(([key, label]) =>
    h(
      'label',
      {},
      label,
      h('input', {
        name: key,
        type: key === 'since' || key === 'until' ? 'date' : 'text',
        value: filters[key] ?? '',
      }),
    ),
  );
  const dispositionField = h(
    'select',
    { name: 'disposition' },
    h('option', { value: '' }, 'any'),
    DISPOSITIONS.map((d) => h('option', { value: d, selected: d === disposition }, d)),
  );
  const form = h(
    'form',
    { class: 'filters', 'data-testid': 'dmarc-filters' },
    fields,
    h('label', {}, 'Disposition', dispositionField),
    h('button', { type: 'submit' }, 'Filter'),
    h('a', { href: '#/dmarc' }, 'Clear'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    /** @type {Record<string, string>} */
    const chosen = { otherDomains: other.otherDomains ?? '' };
    for (const [key, value] of new FormData(form)) chosen[key] = String(value).trim();
    location.hash = hashLink('/dmarc', chosen);
  });
  return h(
    'div',
    {},
    section(
      `DMARC reports (${formatCount(reports.total)})`,
      otherDomainsNote(other),
      form,
      csvDownload('/api/dmarc/reports.csv', listQuery, reports.total),
      pagedTable(
        ['Reporter', 'Report id', 'Period start', 'Domain', 'Messages', 'DMARC pass', 'Rows', 'Source'],
        reports,
        {
          key: 'reports',
          next: (cursor) =>
            api('GET /api/dmarc/reports', { query: { ...listQuery, limit: DMARC_REPORTS_PAGE, cursor } }),
          row: (r) => [
            listValue(r, 'organization', r.organization, {
              content: h('a', { href: `#/dmarc/${r.id}` }, r.organization || '(no name)'),
            }),
            listValue(r, 'reportId', r.reportId, { mono: true }),
            formatTime(r.begin),
            r.domain === ''
              ? h('span', { class: 'muted' }, '(no policy domain)')
              : listValue(r, 'domain', r.domain),
            num(r.messages),
            h('td', { class: r.passed < r.messages ? 'num bad' : 'num' }, formatCount(r.passed)),
            num(r.rows),
            r.source,
          ],
          empty: 'No DMARC reports match.',
          testid: 'dmarc-reports-table',
        },
      ),
    ),
  );
}

/**
 * One DMARC report with every row.
 * @param {string} id
 */
export async function dmarcReportPage(id) {
  const r = await api('GET /api/dmarc/reports/{id}', { params: { id } });
  const p = r.report.policyPublished;
  const policy = [
    `p=${p.p}`,
    p.sp ? `sp=${p.sp}` : '',
    p.np ? `np=${p.np}` : '',
    p.pct !== undefined ? `pct=${p.pct}` : '',
    p.adkim ? `adkim=${p.adkim}` : '',
    p.aspf ? `aspf=${p.aspf}` : '',
    p.fo ? `fo=${p.fo}` : '',
  ]
    .filter(Boolean)
    .join('; ');
  const facts = [
    ['Reporter', r.organization],
    ['Report id', r.reportId],
    ['Contact', r.report.email ?? ''],
    ['Period', `${formatTime(r.begin)} – ${formatTime(r.end)}`],
    ['Domain', r.domain || '(the report names no policy domain)'],
    ['Policy published', policy],
    ['Messages', `${formatCount(r.messages)}, ${formatCount(r.passed)} passed DMARC`],
    ['Received', `${formatTime(r.receivedAt)} via ${r.source}${r.submitter ? ` from ${r.submitter}` : ''}`],
  ];
  return h(
    'div',
    {},
    h('p', {}, h('a', { href: '#/dmarc' }, '← all DMARC reports')),
    reportFactsSection('DMARC report', 'dmarc-report-facts', facts, r.warnings),
    section(
      `Rows (${formatCount(r.report.records.length)})`,
      table(
        [
          'Source IP',
          'Messages',
          'Disposition',
          'DKIM aligned',
          'SPF aligned',
          'Header from',
          'Envelope from',
          'DKIM results',
          'SPF results',
          'Reasons',
        ],
        r.report.records.map((row) => [
          h('td', { class: 'mono' }, row.sourceIp),
          num(row.count),
          row.disposition,
          h('td', { class: row.dkim === 'pass' ? 'good' : 'bad' }, row.dkim),
          h('td', { class: row.spf === 'pass' ? 'good' : 'bad' }, row.spf),
          row.headerFrom,
          row.envelopeFrom ?? '',
          row.dkimResults
            .map((d) => `${d.domain}${d.selector ? ` (${d.selector})` : ''}: ${d.result}`)
            .join('; '),
          row.spfResults.map((s) => `${s.domain}${s.scope ? ` (${s.scope})` : ''}: ${s.result}`).join('; '),
          row.reasons.map((x) => (x.comment ? `${x.type}: ${x.comment}` : x.type)).join('; '),
        ]),
        { empty: 'No rows.', testid: 'dmarc-report-rows' },
      ),
    ),
    section(
      'Delete',
      h('p', { class: 'muted' }, 'Removes the report and its rows from every DMARC view.'),
      h(
        'button',
        {
          type: 'button',
          class: 'danger',
          onclick: () =>
            attempt(async () => {
              if (!confirm(`Delete DMARC report #${r.id}?`)) return;
              await api('DELETE /api/dmarc/reports/{id}', { params: { id } });
              location.hash = '#/dmarc';
            }),
        },
        'Delete this report',
      ),
    ),
  );
}
