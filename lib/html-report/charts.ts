import { escapeHtml } from './escape.ts';

export interface ChartPoint {
  label: string;
  value: number;
}

export interface ChartSpec {
  title: string;
  points: ChartPoint[];
  format(value: number): string;
  /** A target the values should stay under (RTO, RPO), drawn as a dashed line. */
  limit?: { value: number; label: string };
}

const WIDTH = 300;
const HEIGHT = 110;
const PAD = { left: 8, right: 8, top: 18, bottom: 14 };

/**
 * One small line chart as inline SVG: no script, no font or network request, readable printed in
 * grey (points are marked, the limit is dashed and labelled, the last value is written out).
 */
export function lineChart(spec: ChartSpec): string {
  const { points } = spec;
  const title = escapeHtml(spec.title);
  if (points.length === 0) {
    return `<figure class="chart"><figcaption>${title}</figcaption><p class="muted">no data yet</p></figure>`;
  }
  const values = points.map((p) => p.value);
  const top = Math.max(...values, spec.limit?.value ?? Number.NEGATIVE_INFINITY) || 1;
  const bottom = Math.min(0, ...values);
  const x = (i: number) =>
    PAD.left +
    (points.length === 1
      ? (WIDTH - PAD.left - PAD.right) / 2
      : (i * (WIDTH - PAD.left - PAD.right)) / (points.length - 1));
  const y = (v: number) =>
    PAD.top + (1 - (v - bottom) / (top - bottom || 1)) * (HEIGHT - PAD.top - PAD.bottom);
  const path = points
    .map((p, i) => `${i === 0 ? 'M' : 'L'}${x(i).toFixed(1)},${y(p.value).toFixed(1)}`)
    .join(' ');
  const marks = points
    .map(
      (p, i) =>
        `<circle cx="${x(i).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="2.5"><title>${escapeHtml(p.label)}: ${escapeHtml(spec.format(p.value))}</title></circle>`,
    )
    .join('');
  const limit = spec.limit
    ? `<line class="limit" x1="${PAD.left}" x2="${WIDTH - PAD.right}" y1="${y(spec.limit.value).toFixed(1)}" y2="${y(spec.limit.value).toFixed(1)}"/>` +
      `<text class="limit-label" x="${WIDTH - PAD.right}" y="${(y(spec.limit.value) - 3).toFixed(1)}" text-anchor="end">${escapeHtml(spec.limit.label)}</text>`
    : '';
  const last = points[points.length - 1] as ChartPoint;
  return (
    `<figure class="chart"><figcaption>${title}: <strong>${escapeHtml(spec.format(last.value))}</strong></figcaption>` +
    `<svg role="img" aria-label="${title}" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" xmlns="http://www.w3.org/2000/svg">` +
    `<line class="axis" x1="${PAD.left}" x2="${WIDTH - PAD.right}" y1="${HEIGHT - PAD.bottom}" y2="${HEIGHT - PAD.bottom}"/>` +
    `${limit}<path class="line" d="${path}"/>${marks}` +
    `<text class="tick" x="${PAD.left}" y="${HEIGHT - 2}">${escapeHtml(points[0]?.label ?? '')}</text>` +
    `<text class="tick" x="${WIDTH - PAD.right}" y="${HEIGHT - 2}" text-anchor="end">${escapeHtml(last.label)}</text>` +
    `</svg></figure>`
  );
}
