// charts.js: two small SVG charts for the dashboard, no library:
// a histogram over bucket bounds and a line chart over time.

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function size(svg) {
  const vb = svg.viewBox.baseVal;
  return { w: vb && vb.width ? vb.width : 320, h: vb && vb.height ? vb.height : 160 };
}

function nice(max) {
  if (max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

/**
 * histogram draws hist (counts) over bounds: bucket i holds values <= bounds[i]
 * (above bounds[i-1]); the last bucket, beyond the last bound, is "more".
 */
export function histogram(svg, bounds, hist, { color = '#6d95ff', fmt = (v) => String(v) } = {}) {
  const { w, h } = size(svg);
  svg.replaceChildren();
  const pad = { l: 28, r: 6, t: 10, b: 24 };
  const n = hist.length;
  const max = nice(Math.max(1, ...hist));
  const bw = (w - pad.l - pad.r) / Math.max(1, n);
  svg.append(s('line', { class: 'axis', x1: pad.l, y1: h - pad.b, x2: w - pad.r, y2: h - pad.b }));
  svg.append(s('text', { x: pad.l - 4, y: pad.t + 4, 'text-anchor': 'end' }, String(max)));
  svg.append(s('text', { x: pad.l - 4, y: h - pad.b, 'text-anchor': 'end' }, '0'));
  hist.forEach((c, i) => {
    const bh = (h - pad.t - pad.b) * c / max;
    const x = pad.l + i * bw;
    const r = s('rect', { x: x + 1.5, y: h - pad.b - bh, width: Math.max(1, bw - 3), height: bh, rx: 2, fill: color });
    r.append(s('title', {}, `${label(bounds, i, fmt)}: ${c}`));
    svg.append(r);
    if (n <= 12 && (i % Math.ceil(n / 6) === 0 || i === n - 1)) {
      svg.append(s('text', { x: x + bw / 2, y: h - pad.b + 13, 'text-anchor': 'middle' }, label(bounds, i, fmt)));
    }
  });
  if (!hist.some((c) => c > 0)) {
    svg.append(s('text', { x: w / 2, y: h / 2, 'text-anchor': 'middle' }, 'no samples yet'));
  }
}

function label(bounds, i, fmt) {
  if (i < bounds.length) return '≤' + fmt(bounds[i]);
  return '>' + fmt(bounds[bounds.length - 1]);
}

/**
 * lines draws series [{name, color, points: [[tMillis, value], ...]}] over
 * the last windowMs milliseconds.
 */
export function lines(svg, series, { windowMs = 5 * 60 * 1000, now = Date.now() } = {}) {
  const { w, h } = size(svg);
  svg.replaceChildren();
  const pad = { l: 28, r: 8, t: 10, b: 20 };
  let max = 1;
  for (const se of series) for (const [, v] of se.points) max = Math.max(max, v);
  max = nice(max);
  const x = (t) => pad.l + (w - pad.l - pad.r) * (1 - (now - t) / windowMs);
  const y = (v) => h - pad.b - (h - pad.t - pad.b) * v / max;
  svg.append(s('line', { class: 'axis', x1: pad.l, y1: h - pad.b, x2: w - pad.r, y2: h - pad.b }));
  svg.append(s('text', { x: pad.l - 4, y: pad.t + 4, 'text-anchor': 'end' }, String(max)));
  svg.append(s('text', { x: pad.l - 4, y: h - pad.b, 'text-anchor': 'end' }, '0'));
  svg.append(s('text', { x: pad.l, y: h - 4 }, `-${Math.round(windowMs / 60000)} min`));
  svg.append(s('text', { x: w - pad.r, y: h - 4, 'text-anchor': 'end' }, 'now'));
  for (const se of series) {
    const pts = se.points.filter(([t]) => now - t <= windowMs);
    if (pts.length === 0) continue;
    const d = pts.map(([t, v], i) => `${i ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join('');
    if (series.length === 1 && pts.length > 1) {
      const area = d + `L${x(pts[pts.length - 1][0]).toFixed(1)},${h - pad.b}L${x(pts[0][0]).toFixed(1)},${h - pad.b}Z`;
      svg.append(s('path', { d: area, fill: se.color, 'fill-opacity': 0.15 }));
    }
    svg.append(s('path', { d, fill: 'none', stroke: se.color, 'stroke-width': 2, 'stroke-linejoin': 'round' }));
    const [lt, lv] = pts[pts.length - 1];
    svg.append(s('circle', { cx: x(lt), cy: y(lv), r: 3, fill: se.color }));
  }
  if (!series.some((se) => se.points.length)) {
    svg.append(s('text', { x: w / 2, y: h / 2, 'text-anchor': 'middle' }, 'no samples yet'));
  }
}
