// The dashboard's "Other domains" page (issue 15): reports, TLS-RPT and DMARC, about policy domains that are
// not configured, per domain with counts and links to the reports behind them, and what the setting
// intake.otherDomains does now. Domain names come from reports (attacker-controlled): text only, via dom.js.
// @ts-check
import { formatCount, formatTime, h } from './dom.js';
import { api, hashLink, num, pagedTable, section } from './kit.js';

/** @typedef {import('../api/schemas.js').ApiTypes} Api */

const OTHER_DOMAINS_PAGE = 100;

/** What the setting does, as the page says it. */
const SETTING_TEXT = {
  keep: 'intake.otherDomains is "keep": serve stores reports about domains it does not host and lists them here, apart from your domains. Set it to "refuse" to turn such reports away (they go to the rejected list).',
  refuse:
    'intake.otherDomains is "refuse": serve turns away new reports about domains it does not host (they go to the rejected list with code INTAKE_OTHER_DOMAIN). What is listed here came in before, or by mxguard reports import, which always keeps them.',
};

/**
 * A link to the reports of one other domain in a list ('' = the reports that name no policy domain).
 * @param {'/reports' | '/dmarc'} list
 * @param {string} domain
 * @param {number} count
 */
function reportsLink(list, domain, count) {
  if (count === 0) return num(0);
  const filter = domain === '' ? { noPolicyDomain: 'true' } : { domain };
  return h('td', { class: 'num' }, h('a', { href: hashLink(list, filter) }, formatCount(count)));
}

/** The page #/other. */
export async function otherDomainsPage() {
  const first = await api('GET /api/other-domains', { query: { limit: OTHER_DOMAINS_PAGE } });
  return h(
    'div',
    {},
    section(
      `Other domains (${formatCount(first.total)})`,
      h(
        'p',
        {},
        'Reports whose policy domain is none of your configured domains. They count in no domain’s views; add the domain to move its reports there.',
      ),
      h('p', { class: 'notice', 'data-testid': 'other-domains-setting' }, SETTING_TEXT[first.setting]),
      h(
        'p',
        {},
        h(
          'a',
          { href: hashLink('/reports', { otherDomains: 'true' }) },
          'All TLS-RPT reports about other domains',
        ),
        ' · ',
        h(
          'a',
          { href: hashLink('/dmarc', { otherDomains: 'true' }) },
          'All DMARC reports about other domains',
        ),
      ),
      pagedTable(['Policy domain', 'TLS-RPT reports', 'DMARC reports', 'Newest report'], first, {
        key: 'domains',
        next: (cursor) => api('GET /api/other-domains', { query: { limit: OTHER_DOMAINS_PAGE, cursor } }),
        row: (/** @type {Api['OtherDomain']} */ d) => [
          d.domain === ''
            ? h('span', { class: 'muted' }, '(the report names no policy domain)')
            : h('td', { class: 'long' }, d.domain),
          reportsLink('/reports', d.domain, d.tlsrptReports),
          reportsLink('/dmarc', d.domain, d.dmarcReports),
          formatTime(d.lastReportAt),
        ],
        empty: 'No reports about other domains.',
        testid: 'other-domains-table',
      }),
    ),
  );
}

/**
 * What a report list shows when it is cut to other domains (the otherDomains / noPolicyDomain filters).
 * @param {{ otherDomains?: string, noPolicyDomain?: string }} filters
 */
export function otherDomainsNote(filters) {
  if (!filters.otherDomains && !filters.noPolicyDomain) return null;
  const what = filters.noPolicyDomain
    ? 'Only reports that name no policy domain.'
    : 'Only reports about domains that are not configured.';
  return h(
    'p',
    { class: 'notice', 'data-testid': 'other-domains-note' },
    `${what} `,
    h('a', { href: '#/other' }, 'Other domains'),
  );
}
