// The TLS-RPT chart: successful and failed sessions per UTC day as stacked SVG bars (failed on top,
// drawn at least 2 px high so that a handful of failures among thousands of sessions stays visible).
// @ts-check
/** @typedef {import('../api/schemas.js').ApiTypes['DailyCounts']} DailyCounts */
import { formatCount, h, svg } from './dom.js';

const WIDTH = 800;
const HEIGHT = 260;
const PAD = { left: 64, right: 16, top: 28, bottom: 36 };
const MIN_FAILED_PX = 2;

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
 * The chart of GET /api/domains/{name}/stats `daily` (oldest first).
 * @param {DailyCounts[]} daily
 */
export function sessionsChart(daily) {
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  // Four grid steps of a round size, so that every tick label is a whole number.
  const yMax = 4 * niceCeil(Math.max(0, ...daily.map((d) => d.successful + d.failed)) / 4);
  const baseY = PAD.top + plotH;
  const band = plotW / Math.max(1, daily.length);
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

  const labelEvery = Math.ceil(daily.length / 10);
  daily.forEach((d, i) => {
    const x = PAD.left + i * band + (band - barW) / 2;
    const okH = (d.successful / yMax) * plotH;
    const failH = d.failed > 0 ? Math.max(MIN_FAILED_PX, (d.failed / yMax) * plotH) : 0;
    const total = d.successful + d.failed;
    const title = `${d.day}: ${formatCount(d.successful)} successful, ${formatCount(d.failed)} failed (${percent(d.failed, total)} failed)`;
    parts.push(
      svg(
        'g',
        { class: 'day', 'data-day': d.day },
        svg('title', {}, title),
        // An invisible full-height target, so that days with few sessions still show the tooltip.
        svg('rect', { x: PAD.left + i * band, y: PAD.top, width: band, height: plotH, class: 'hover' }),
        okH > 0 ? svg('rect', { x, y: baseY - okH, width: barW, height: okH, class: 'bar-ok' }) : null,
        failH > 0
          ? svg('rect', { x, y: baseY - okH - failH, width: barW, height: failH, class: 'bar-fail' })
          : null,
      ),
    );
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
  if (daily.every((d) => d.successful + d.failed === 0)) {
    parts.push(
      svg(
        'text',
        { x: PAD.left + plotW / 2, y: PAD.top + plotH / 2, 'text-anchor': 'middle', class: 'empty' },
        'No TLS-RPT reports for these days yet',
      ),
    );
  }

  const legendX = WIDTH - PAD.right - 220;
  parts.push(
    svg('rect', { x: legendX, y: 6, width: 12, height: 12, class: 'bar-ok' }),
    svg('text', { x: legendX + 18, y: 12, 'dominant-baseline': 'middle', class: 'legend' }, 'successful'),
    svg('rect', { x: legendX + 110, y: 6, width: 12, height: 12, class: 'bar-fail' }),
    svg('text', { x: legendX + 128, y: 12, 'dominant-baseline': 'middle', class: 'legend' }, 'failed'),
  );

  const totals = daily.reduce((t, d) => ({ ok: t.ok + d.successful, fail: t.fail + d.failed }), {
    ok: 0,
    fail: 0,
  });
  const label = `Sessions per day: ${formatCount(totals.ok)} successful, ${formatCount(totals.fail)} failed`;
  return h(
    'figure',
    { class: 'chart', 'data-testid': 'sessions-chart' },
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
    h(
      'figcaption',
      {},
      `${daily[0]?.day ?? ''} to ${daily.at(-1)?.day ?? ''} (UTC): `,
      h('strong', {}, formatCount(totals.ok)),
      ' successful, ',
      h('strong', { class: totals.fail > 0 ? 'bad' : undefined }, formatCount(totals.fail)),
      ` failed (${percent(totals.fail, totals.ok + totals.fail)})`,
    ),
  );
}
