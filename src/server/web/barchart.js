// The dashboard's charts: counts per UTC day as stacked SVG bars. The TLS-RPT chart stacks successful
// and failed sessions (failed on top, drawn at least 2 px high so that a handful of failures among
// thousands of sessions stays visible); the DMARC chart stacks messages by result (pass, fail,
// quarantined, rejected). A click on a day (or Enter on it) drills down to the reports behind it.
// @ts-check
/** @typedef {import('../api/schemas.js').ApiTypes['DailyCounts']} DailyCounts */
/** @typedef {import('../api/schemas.js').ApiTypes['DmarcDailyCounts']} DmarcDailyCounts */
import { formatCount, h, svg } from './dom.js';

const WIDTH = 800;
const HEIGHT = 260;
const PAD = { left: 64, right: 16, top: 28, bottom: 36 };
const MIN_FAILED_PX = 2;
const LEGEND_STEP = 110;

/**
 * The smallest 1, 2 or 5 × 10^k that is at least `n`.
 * @param {number} n
 */
export function niceCeil(n) {
  if (n <= 1) return 1;
  const power = 10 ** Math.floor(Math.log10(n));
  for (const step of [1, 2, 5, 10]) if (step * power >= n) return step * power;
  return 10 * power;
}

/**
 * @param {number} failed
 * @param {number} total
 */
function percent(failed, total) {
  if (total === 0) return '0%';
  const p = (100 * failed) / total;
  return p > 0 && p < 0.1 ? '<0.1%' : `${p.toFixed(1)}%`;
}

/**
 * One stack of a chart, bottom first: its legend label, CSS class and value per day.
 * @template T
 * @typedef {{ label: string, cls: string, value: (row: T) => number, minPx?: number }} Series
 */

/**
 * Stacked bars of `rows` (oldest first), one bar per day.
 * @template {{ day: string }} T
 * @param {{ rows: T[], series: Series<T>[], title: (row: T) => string, label: string, empty: string, testid: string, caption: import('./dom.js').Child[], onDay?: (day: string) => void }} chart
 */
function stackedChart({ rows, series, title, label, empty, testid, caption, onDay }) {
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const sum = (/** @type {T} */ row) => series.reduce((n, s) => n + s.value(row), 0);
  // Four grid steps of a round size, so that every tick label is a whole number.
  const yMax = 4 * niceCeil(Math.max(0, ...rows.map(sum)) / 4);
  const baseY = PAD.top + plotH;
  const band = plotW / Math.max(1, rows.length);
  const barW = Math.max(1, band * 0.7);
  const parts = [];

  for (let i = 0; i <= 4; i++) {
    const value = (yMax * i) / 4;
    const y = baseY - (plotH * i) / 4;
    parts.push(svg('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y, y2: y, class: 'grid' }));
    parts.push(
      svg(
        'text',
        { x: PAD.left - 8, y, 'text-anchor': 'end', 'dominant-baseline': 'middle', class: 'axis' },
        formatCount(Math.round(value)),
      ),
    );
  }

  const labelEvery = Math.ceil(rows.length / 10);
  rows.forEach((d, i) => {
    const x = PAD.left + i * band + (band - barW) / 2;
    let top = baseY;
    const bars = series.map((s) => {
      const v = s.value(d);
      const height = v > 0 ? Math.max(s.minPx ?? 0, (v / yMax) * plotH) : 0;
      top -= height;
      return height > 0 ? svg('rect', { x, y: top, width: barW, height, class: s.cls }) : null;
    });
    const group = svg(
      'g',
      { class: onDay ? 'day drill' : 'day', 'data-day': d.day, ...(onDay ? { role: 'link' } : {}) },
      svg('title', {}, title(d)),
      // An invisible full-height target, so that days with few messages still show the tooltip.
      svg('rect', { x: PAD.left + i * band, y: PAD.top, width: band, height: plotH, class: 'hover' }),
      bars,
    );
    if (onDay) {
      group.setAttribute('tabindex', '0');
      group.addEventListener('click', () => onDay(d.day));
      group.addEventListener('keydown', (event) => {
        if (event.key === 'Enter') onDay(d.day);
      });
    }
    parts.push(group);
    if (i % labelEvery === 0) {
      parts.push(
        svg(
          'text',
          { x: x + barW / 2, y: baseY + 18, 'text-anchor': 'middle', class: 'axis' },
          d.day.slice(5),
        ),
      );
    }
  });
  parts.push(svg('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: baseY, y2: baseY, class: 'baseline' }));
  if (rows.every((d) => sum(d) === 0)) {
    parts.push(
      svg(
        'text',
        { x: PAD.left + plotW / 2, y: PAD.top + plotH / 2, 'text-anchor': 'middle', class: 'empty' },
        empty,
      ),
    );
  }

  const legendX = WIDTH - PAD.right - LEGEND_STEP * series.length;
  series.forEach((s, i) => {
    const x = legendX + LEGEND_STEP * i;
    parts.push(
      svg('rect', { x, y: 6, width: 12, height: 12, class: s.cls }),
      svg('text', { x: x + 18, y: 12, 'dominant-baseline': 'middle', class: 'legend' }, s.label),
    );
  });

  return h(
    'figure',
    { class: 'chart', 'data-testid': testid },
    svg(
      'svg',
      {
        viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
        role: 'img',
        'aria-label': label,
        preserveAspectRatio: 'xMidYMid meet',
      },
      svg('title', {}, label),
      parts,
    ),
    h('figcaption', {}, `${rows[0]?.day ?? ''} to ${rows.at(-1)?.day ?? ''} (UTC): `, caption),
  );
}

/**
 * The chart of GET /api/domains/{name}/stats `daily` (oldest first); `onDay` opens a day's reports.
 * @param {DailyCounts[]} daily
 * @param {(day: string) => void} [onDay]
 */
export function sessionsChart(daily, onDay) {
  const totals = daily.reduce((t, d) => ({ ok: t.ok + d.successful, fail: t.fail + d.failed }), {
    ok: 0,
    fail: 0,
  });
  return stackedChart({
    rows: daily,
    series: [
      { label: 'successful', cls: 'bar-ok', value: (d) => d.successful },
      { label: 'failed', cls: 'bar-fail', value: (d) => d.failed, minPx: MIN_FAILED_PX },
    ],
    title: (d) =>
      `${d.day}: ${formatCount(d.successful)} successful, ${formatCount(d.failed)} failed (${percent(d.failed, d.successful + d.failed)} failed)`,
    label: `Sessions per day: ${formatCount(totals.ok)} successful, ${formatCount(totals.fail)} failed`,
    empty: 'No TLS-RPT reports for these days yet',
    testid: 'sessions-chart',
    caption: [
      h('strong', {}, formatCount(totals.ok)),
      ' successful, ',
      h('strong', { class: totals.fail > 0 ? 'bad' : undefined }, formatCount(totals.fail)),
      ` failed (${percent(totals.fail, totals.ok + totals.fail)})`,
    ],
    onDay,
  });
}

/**
 * The chart of GET /api/domains/{name}/dmarc `daily`: messages by DMARC result; `onDay` opens a day's reports.
 * @param {DmarcDailyCounts[]} daily
 * @param {(day: string) => void} [onDay]
 */
export function dmarcChart(daily, onDay) {
  const t = daily.reduce(
    (s, d) => ({
      pass: s.pass + d.pass,
      fail: s.fail + d.fail,
      quarantined: s.quarantined + d.quarantined,
      rejected: s.rejected + d.rejected,
    }),
    { pass: 0, fail: 0, quarantined: 0, rejected: 0 },
  );
  const all = t.pass + t.fail + t.quarantined + t.rejected;
  return stackedChart({
    rows: daily,
    series: [
      { label: 'pass', cls: 'bar-ok', value: (d) => d.pass },
      { label: 'fail', cls: 'bar-warn', value: (d) => d.fail, minPx: MIN_FAILED_PX },
      { label: 'quarantined', cls: 'bar-quarantine', value: (d) => d.quarantined, minPx: MIN_FAILED_PX },
      { label: 'rejected', cls: 'bar-fail', value: (d) => d.rejected, minPx: MIN_FAILED_PX },
    ],
    title: (d) =>
      `${d.day}: ${formatCount(d.pass)} pass, ${formatCount(d.fail)} fail, ${formatCount(d.quarantined)} quarantined, ${formatCount(d.rejected)} rejected`,
    label: `DMARC messages per day: ${formatCount(t.pass)} pass, ${formatCount(all - t.pass)} not`,
    empty: 'No DMARC reports for these days yet',
    testid: 'dmarc-chart',
    caption: [
      h('strong', {}, formatCount(t.pass)),
      ` pass (${percent(t.pass, all)}), `,
      h('strong', { class: t.fail > 0 ? 'bad' : undefined }, formatCount(t.fail)),
      ' fail, ',
      formatCount(t.quarantined),
      ' quarantined, ',
      formatCount(t.rejected),
      ' rejected',
    ],
    onDay,
  });
}
