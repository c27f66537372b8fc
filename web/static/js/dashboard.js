// dashboard.js: the fleet dashboard. Live over server-sent events from
// GET /v1/fleet/events ("table": the process table, "fleet": spawn, exit,
// drain and maxnum events, "stats": queues and match statistics); operator
// actions with the operator token: POST /v1/fleet/maxnum,
// POST /v1/fleet/{HOST:PORT}/drain, POST /v1/hosts/{name}/drain and
// POST /v1/bots.

import * as api from './api.js';
import { el, $, banner, fmtDuration } from './ui.js';
import { histogram, lines } from './charts.js';

const OP_KEY = 'arena.operator';
const HISTORY_MS = 5 * 60 * 1000;
const MODE_COLORS = ['#6d95ff', '#3ecf8e', '#ffb545', '#ff6b8b', '#a57bff', '#35c9e6'];

const D = {
  token: sessionStorage.getItem(OP_KEY) || '',
  table: null,
  ports: new Set(),
  firstTable: true,
  stats: null,
  statsAt: 0,
  queueHist: new Map(), // mode -> [[t, n]]
  mpmHist: [],
  es: null,
  pollTimer: 0,
  botsTimer: 0,
  errors: 0,
};

function setLive(text, kind) {
  const p = $('#live');
  p.textContent = text;
  p.className = 'pill ' + (kind || '');
}

function opMsg(text, ok) {
  const m = $('#op-msg');
  m.textContent = text;
  m.className = 'small ' + (ok ? 'msg-ok' : 'msg-bad');
}

// --- live stream ---

function connect() {
  const es = new EventSource('/v1/fleet/events');
  D.es = es;
  es.addEventListener('open', () => {
    D.errors = 0;
    setLive('live', 'ok');
    banner('');
    // Statistics come as "stats" events; a dispatcher that sends none is
    // polled on GET /v1/stats instead.
    setTimeout(() => { if (Date.now() - D.statsAt > 2500) pollStats(); }, 3000);
  });
  es.addEventListener('table', (e) => { try { renderTable(JSON.parse(e.data)); } catch { /* skip */ } });
  es.addEventListener('fleet', (e) => { try { addEvent(JSON.parse(e.data)); } catch { /* skip */ } });
  es.addEventListener('stats', (e) => {
    try { D.statsAt = Date.now(); renderStats(JSON.parse(e.data)); } catch { /* skip */ }
  });
  es.addEventListener('error', () => {
    // EventSource reconnects by itself.
    D.errors++;
    setLive('reconnecting…', 'warn');
    if (D.errors >= 2) banner('Lost the live connection to the dispatcher. Reconnecting…');
  });
}

async function pollStats() {
  clearTimeout(D.pollTimer);
  if (Date.now() - D.statsAt > 2500) {
    try {
      renderStats(await api.request('GET', '/v1/stats'));
    } catch { /* shown as stale */ }
  }
  D.pollTimer = setTimeout(pollStats, 2000);
}

// --- process table ---

function renderTable(t) {
  D.table = t;
  const procs = Array.isArray(t.processes) ? t.processes : [];
  const body = $('#procs-body');
  const seen = new Set();
  renderHosts(Array.isArray(t.hosts) ? t.hosts : []);
  const rows = procs.map((p) => {
    const key = p.host + ':' + p.kind + ':' + p.port;
    seen.add(key);
    const isNew = !D.firstTable && !D.ports.has(key);
    const max = p.maxnum || t.maxnum || 1;
    const frac = Math.min(1, (p.load || 0) / max);
    const fill = el('i');
    fill.style.width = (frac * 100).toFixed(1) + '%';
    const bar = el('div', { class: 'loadbar' + (frac >= 1 ? ' full' : ''), title: `${p.load} of ${max}` },
      fill, el('span', {}, `${p.load} / ${max}`));
    return el('tr', { class: isNew ? 'new' : '', dataset: { kind: p.kind, host: p.host || '', port: p.port, state: p.state } },
      el('td', {}, el('span', { class: 'badge ' + p.kind }, p.kind)),
      el('td', { class: 'mono', title: p.advertise ? `players reach it on ${p.advertise}:${p.port}` : '' }, p.host || '–'),
      el('td', { class: 'mono' }, String(p.port)),
      el('td', { class: 'mono muted' }, p.pid ? String(p.pid) : '–'),
      el('td', {}, el('span', { class: 'state ' + p.state }, p.state)),
      el('td', {}, bar),
      el('td', {}, units(p)),
      el('td', {}, String(p.connections ?? 0)),
      el('td', { class: 'muted' }, fmtDuration(p.uptime_s || 0)),
      el('td', {}, p.kind !== 'chat' && p.state === 'ready' ? drainButton(p) : ''));
  });
  body.replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { colspan: 10, class: 'muted' }, 'no processes'))]));
  D.ports = seen;
  D.firstTable = false;
  const count = (k) => procs.filter((p) => p.kind === k && p.state !== 'gone').length;
  $('#t-fight').textContent = count('fight');
  $('#t-map').textContent = count('map');
  $('#t-maxnum').textContent = t.maxnum ?? '–';
  const mx = $('#maxnum');
  if (document.activeElement !== mx && t.maxnum) mx.value = t.maxnum;
  if (!D.stats) $('#t-rooms').textContent = procs.filter((p) => p.kind === 'fight').reduce((a, p) => a + (p.rooms || p.load || 0), 0);
}

function units(p) {
  if (p.kind === 'fight') return `${p.rooms ?? p.load ?? 0} rooms`;
  if (p.kind === 'map') {
    const maps = Object.entries(p.maps || {});
    return maps.length ? maps.map(([id, n]) => `${id} ${n}`).join(' · ') : `${p.load || 0} players`;
  }
  return `${p.connections ?? p.load ?? 0} conns`;
}

// confirmButton is a Drain button that asks for a second click, then runs
// action with the operator token.
function confirmButton(title, action) {
  const b = el('button', { class: 'small danger', type: 'button', title }, 'Drain');
  let armed = 0;
  b.addEventListener('click', async () => {
    if (!needToken()) return;
    if (!armed) {
      b.textContent = 'Confirm';
      armed = setTimeout(() => { armed = 0; b.textContent = 'Drain'; }, 4000);
      return;
    }
    clearTimeout(armed);
    armed = 0;
    b.disabled = true;
    try {
      opMsg(await action(), true);
    } catch (e) {
      opError(e);
      b.disabled = false;
      b.textContent = 'Drain';
    }
  });
  return b;
}

function drainButton(p) {
  const addr = `${p.host}:${p.port}`;
  return confirmButton('stop sending work here, then stop it', async () => {
    await api.request('POST', `/v1/fleet/${encodeURIComponent(p.host)}:${p.port}/drain`, { token: D.token, body: {} });
    return `Draining the ${p.kind} process ${addr}.`;
  });
}

// --- hosts ---

function renderHosts(hosts) {
  const body = $('#hosts-body');
  if (!body) return;
  const rows = hosts.map((h) => {
    const kinds = Object.keys(h.capacity || {}).sort();
    const procs = kinds.map((k) => `${k} ${(h.processes || {})[k] || 0}/${h.capacity[k]}`).join(' · ');
    const skew = Number(h.clock_skew_s) || 0;
    return el('tr', { dataset: { host: h.name, state: h.state } },
      el('td', { class: 'mono' }, h.name + (h.local ? ' (dispatcher)' : '')),
      el('td', { class: 'mono muted' }, h.advertise || '–'),
      el('td', {}, el('span', { class: 'state ' + h.state }, h.state)),
      el('td', {}, procs || '–'),
      el('td', { class: Math.abs(skew) > 1 ? 'warn' : 'muted' }, `${skew.toFixed(2)} s`),
      el('td', { class: 'muted' }, fmtDuration(h.since_s || 0)),
      el('td', {}, h.state === 'connected' ? hostDrainButton(h.name) : ''));
  });
  body.replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { colspan: 7, class: 'muted' }, 'no hosts'))]));
}

function hostDrainButton(name) {
  return confirmButton('send this host no new work; it exits when its processes are idle (10 min at most)', async () => {
    await api.request('POST', `/v1/hosts/${encodeURIComponent(name)}/drain`, { token: D.token, body: {} });
    return `Draining host ${name}.`;
  });
}

// --- events ---

function addEvent(ev) {
  const list = $('#events');
  const first = list.firstElementChild;
  if (first && first.classList.contains('muted')) first.remove();
  const t = ev.time ? new Date(ev.time) : new Date();
  let text;
  switch (ev.type) {
    case 'spawn': text = `spawned ${ev.kind} on ${ev.host ? ev.host + ':' : 'port '}${ev.port}` + (ev.pid ? ` (pid ${ev.pid})` : ''); break;
    case 'spawn_failed': text = `${ev.kind} could not be started (no room goes to it): ${ev.reason || 'unknown error'}`; break;
    case 'exit': {
      const rooms = ev.rooms || ev.units || [];
      text = `${ev.kind} on ${ev.host ? ev.host + ':' : 'port '}${ev.port} exited` + (ev.reason ? `: ${ev.reason}` : '') +
        (rooms.length ? ` (${rooms.length} rooms failed)` : '');
      break;
    }
    case 'host': text = `host ${ev.host || '?'} ${ev.state || ''}` + (ev.reason ? ` (${ev.reason})` : ''); break;
    case 'drain': text = `draining ${ev.kind || 'process'} on ${ev.host ? ev.host + ':' : 'port '}${ev.port}` + (ev.reason ? `: ${ev.reason}` : ''); break;
    case 'maxnum': text = `MAXNUM set to ${ev.maxnum}`; break;
    default: text = `${ev.type} ${ev.kind || ''} ${ev.port || ''}`;
  }
  list.prepend(el('li', { class: 'ev-' + ev.type, dataset: { type: ev.type } },
    el('span', { class: 't' }, t.toLocaleTimeString([], { hour12: false })), el('span', {}, text)));
  while (list.children.length > 100) list.lastElementChild.remove();
}

// --- statistics ---

function renderStats(st) {
  if (!st || typeof st !== 'object') return;
  D.stats = st;
  const now = Date.now();
  const queues = st.queues || {};
  const total = Object.values(queues).reduce((a, b) => a + (Number(b) || 0), 0);
  $('#t-queued').textContent = total;
  $('#t-mpm').textContent = Math.round(Number(st.matches_per_min) || 0);
  if (st.rooms !== undefined) $('#t-rooms').textContent = st.rooms;
  for (const mode of new Set([...Object.keys(queues), ...D.queueHist.keys()])) {
    const h = D.queueHist.get(mode) || [];
    h.push([now, Number(queues[mode]) || 0]);
    while (h.length && now - h[0][0] > HISTORY_MS) h.shift();
    D.queueHist.set(mode, h);
  }
  D.mpmHist.push([now, Number(st.matches_per_min) || 0]);
  while (D.mpmHist.length && now - D.mpmHist[0][0] > HISTORY_MS) D.mpmHist.shift();

  const modes = [...D.queueHist.keys()];
  if (modes.length === 0) modes.push('default');
  const series = modes.map((m, i) => ({ name: m || 'default', color: MODE_COLORS[i % MODE_COLORS.length], points: D.queueHist.get(m) || [] }));
  lines($('#chart-queue'), series, { windowMs: HISTORY_MS, now });
  $('#legend-queue').replaceChildren(...series.map((se) => legendItem(se.color, `${se.name}: ${last(se.points)}`)));

  lines($('#chart-mpm'), [{ name: 'matches/min', color: '#3ecf8e', points: D.mpmHist }], { windowMs: HISTORY_MS, now });
  $('#legend-mpm').replaceChildren(legendItem('#3ecf8e', `${Math.round(Number(st.matches_per_min) || 0)} rooms formed in the last minute` +
    (st.rooms_total !== undefined ? ` · ${st.rooms_total} in all` : '')));

  dist('#chart-wait', '#legend-wait', st.wait_s, '#6d95ff', (v) => v + 's', (v) => v.toFixed(1) + ' s');
  dist('#chart-spread', '#legend-spread', st.spread, '#a57bff', (v) => String(v), (v) => Math.round(v) + ' pts');
}

function dist(chartSel, legendSel, d, color, fmtBound, fmtVal) {
  if (!d || !Array.isArray(d.hist)) {
    histogram($(chartSel), [], [], { color });
    $(legendSel).replaceChildren(legendItem(color, 'not reported by this dispatcher'));
    return;
  }
  histogram($(chartSel), d.bounds || [], d.hist, { color, fmt: fmtBound });
  $(legendSel).replaceChildren(
    legendItem(color, d.count ? `p50 ${fmtVal(d.p50 || 0)} · p95 ${fmtVal(d.p95 || 0)} · p99 ${fmtVal(d.p99 || 0)}` : 'no samples yet'),
    el('span', {}, `${d.count || 0} samples`));
}

function last(points) { return points.length ? points[points.length - 1][1] : 0; }

function legendItem(color, text) {
  const dot = el('span', { 'aria-hidden': 'true' }, '●');
  dot.style.color = color;
  return el('span', {}, dot, ' ', text);
}

// --- bots ---

async function pollBots() {
  clearTimeout(D.botsTimer);
  try {
    const st = await api.request('GET', '/v1/bots');
    renderBots(st);
    D.botsTimer = setTimeout(pollBots, 2000);
  } catch (e) {
    if (e.code === 'bots_unavailable') {
      $('#bots-summary').textContent = 'this dispatcher runs no bots';
      $('#bots').disabled = true;
      return;
    }
    D.botsTimer = setTimeout(pollBots, 5000);
  }
}

function renderBots(st) {
  if (!st) return;
  const b = $('#bots');
  if (document.activeElement !== b) b.value = st.target;
  const states = Object.entries(st.states || {}).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(', ');
  $('#bots-summary').textContent = `${st.running} running${states ? ' (' + states + ')' : ''} · ${st.games} games`;
  $('#bots-list').replaceChildren(...(st.bots || []).slice(0, 40).map((x) =>
    el('span', { title: `${x.games} games, ${x.wins} wins` }, `${x.name} · ${x.state}${x.score ? ' · ' + x.score : ''}`)));
}

// --- operator ---

function needToken() {
  if (D.token) return true;
  opMsg('Paste the operator token first.', false);
  $('#op-token').focus();
  return false;
}

function opError(e) {
  if (e.unauthorized) {
    opMsg('The operator token was refused.', false);
    D.token = '';
    sessionStorage.removeItem(OP_KEY);
    renderTokenState();
  } else if (e.unreachable) opMsg('The dispatcher is unreachable.', false);
  else opMsg(e.message || e.code, false);
}

function renderTokenState() {
  $('#token-hint').hidden = !!D.token;
  $('#op-token').placeholder = D.token ? 'token set ✓' : 'operator token';
}

function setupOperator() {
  renderTokenState();
  $('#token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const v = $('#op-token').value.trim();
    D.token = v;
    if (v) sessionStorage.setItem(OP_KEY, v); else sessionStorage.removeItem(OP_KEY);
    $('#op-token').value = '';
    renderTokenState();
    opMsg(v ? 'Token set for this tab.' : 'Token cleared.', true);
  });
  $('#maxnum-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!needToken()) return;
    const n = Number($('#maxnum').value);
    try {
      await api.request('POST', '/v1/fleet/maxnum', { token: D.token, body: { maxnum: n } });
      opMsg(`MAXNUM is now ${n}.`, true);
      $('#maxnum').blur();
    } catch (ex) { opError(ex); }
  });
  $('#bots-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!needToken()) return;
    const n = Number($('#bots').value);
    try {
      renderBots(await api.request('POST', '/v1/bots', { token: D.token, body: { count: n } }));
      opMsg(`Bots: ${n}.`, true);
      $('#bots').blur();
    } catch (ex) { opError(ex); }
  });
}

setupOperator();
connect();
pollBots();
renderStats({ queues: {}, matches_per_min: 0 });
D.stats = null;
