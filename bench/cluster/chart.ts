/**
 * A self-contained SVG chart of a cluster-benchmark suite: committed ops/s (top) and p99 latency
 * (bottom, log scale) against requests in flight (log2 scale), one line per series (load and
 * value size, closed loop); each point is the median of its runs, with a bar from min to max
 * when there were several. Open-loop points are not on the in-flight axis: they are listed in
 * the caption. No scripts, no external resources.
 */

export interface ChartPoint {
  readonly inflight: number;
  readonly opsPerSec: number;
  readonly opsMin: number;
  readonly opsMax: number;
  readonly p99Ms: number;
}

export interface ChartSeries {
  readonly label: string;
  readonly points: readonly ChartPoint[];
}

const W = 980;
const PANEL_H = 260;
const M = { left: 90, right: 190, top: 50, gap: 70, bottom: 60 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf'];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (x: number): string => (x >= 1e6 ? `${+(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${+(x / 1e3).toFixed(1)}k` : `${+x.toFixed(x < 10 ? 2 : 0)}`);

export function renderChart(title: string, series: readonly ChartSeries[], caption: readonly string[]): string {
  const all = series.flatMap((s) => s.points);
  const plotW = W - M.left - M.right;
  const x0 = Math.log2(Math.max(1, Math.min(...all.map((p) => p.inflight), 1)));
  const x1 = Math.max(x0 + 1, Math.log2(Math.max(...all.map((p) => p.inflight), 2)));
  const x = (inflight: number): number => M.left + ((Math.log2(inflight) - x0) / (x1 - x0)) * plotW;
  const opsMax = Math.max(1, ...all.map((p) => p.opsMax));
  const top1 = M.top;
  const top2 = M.top + PANEL_H + M.gap;
  const yOps = (v: number): number => top1 + PANEL_H - (v / (opsMax * 1.05)) * PANEL_H;
  const lat = all.map((p) => p.p99Ms).filter((v) => v > 0);
  const l0 = Math.floor(Math.log10(Math.max(1e-3, Math.min(...lat, 1))));
  const l1 = Math.max(l0 + 1, Math.ceil(Math.log10(Math.max(...lat, 1))));
  const yLat = (v: number): number => top2 + PANEL_H - ((Math.log10(Math.max(v, 10 ** l0)) - l0) / (l1 - l0)) * PANEL_H;
  const H = top2 + PANEL_H + M.bottom + caption.length * 16;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
  ];
  for (const top of [top1, top2]) {
    out.push(`<rect x="${M.left}" y="${top}" width="${plotW}" height="${PANEL_H}" fill="none" stroke="#444"/>`);
    for (let e = Math.ceil(x0); e <= x1; e++) {
      out.push(`<line x1="${x(2 ** e)}" y1="${top}" x2="${x(2 ** e)}" y2="${top + PANEL_H}" stroke="#eee"/>`);
      if (e % 2 === 0 || x1 - x0 <= 8) out.push(`<text x="${x(2 ** e)}" y="${top + PANEL_H + 16}" text-anchor="middle">${fmt(2 ** e)}</text>`);
    }
    out.push(`<text x="${M.left + plotW / 2}" y="${top + PANEL_H + 34}" text-anchor="middle">requests in flight</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const v = (opsMax * 1.05 * i) / 5;
    out.push(`<line x1="${M.left}" y1="${yOps(v)}" x2="${M.left + plotW}" y2="${yOps(v)}" stroke="#eee"/>`);
    out.push(`<text x="${M.left - 6}" y="${yOps(v) + 4}" text-anchor="end">${fmt(v)}</text>`);
  }
  for (let e = l0; e <= l1; e++) {
    out.push(`<line x1="${M.left}" y1="${yLat(10 ** e)}" x2="${M.left + plotW}" y2="${yLat(10 ** e)}" stroke="#eee"/>`);
    out.push(`<text x="${M.left - 6}" y="${yLat(10 ** e) + 4}" text-anchor="end">${fmt(10 ** e)}</text>`);
  }
  out.push(`<text transform="translate(24 ${top1 + PANEL_H / 2}) rotate(-90)" text-anchor="middle">committed ops/s</text>`);
  out.push(`<text transform="translate(24 ${top2 + PANEL_H / 2}) rotate(-90)" text-anchor="middle">p99 latency, ms (log)</text>`);
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length]!;
    const pts = [...s.points].sort((a, b) => a.inflight - b.inflight);
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map((p) => `${x(p.inflight)},${yOps(p.opsPerSec)}`).join(' ')}"/>`);
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map((p) => `${x(p.inflight)},${yLat(p.p99Ms)}`).join(' ')}"/>`);
    for (const p of pts) {
      if (p.opsMax > p.opsMin) out.push(`<line x1="${x(p.inflight)}" y1="${yOps(p.opsMin)}" x2="${x(p.inflight)}" y2="${yOps(p.opsMax)}" stroke="${c}"/>`);
      out.push(`<circle cx="${x(p.inflight)}" cy="${yOps(p.opsPerSec)}" r="3.5" fill="${c}"><title>${esc(`${s.label}, ${p.inflight} in flight: ${Math.round(p.opsPerSec)} ops/s`)}</title></circle>`);
      out.push(`<circle cx="${x(p.inflight)}" cy="${yLat(p.p99Ms)}" r="3.5" fill="${c}"><title>${esc(`${s.label}, ${p.inflight} in flight: p99 ${p.p99Ms} ms`)}</title></circle>`);
    }
    const ly = M.top + 10 + i * 20;
    out.push(`<rect x="${W - M.right + 16}" y="${ly - 9}" width="14" height="10" fill="${c}"/>`);
    out.push(`<text x="${W - M.right + 36}" y="${ly}">${esc(s.label)}</text>`);
  });
  caption.forEach((line, i) => out.push(`<text font-size="11" x="${M.left}" y="${top2 + PANEL_H + 56 + i * 16}">${esc(line)}</text>`));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
