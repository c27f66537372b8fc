// world.js: the map view, a client of the map servers (docs/maps.md):
// GET /v1/maps/{id}/enter for an address and ticket, then the map server's
// WebSocket: welcome, enter/positions/leave of the players in view, move
// (checked by the server for bounds and speed), and switch when walking
// through a portal hands the player to the next map server.

import * as api from './api.js';
import { MapSession, backoff } from './arena.js';
import { el, $, colorFor } from './ui.js';

const W = 800, H = 600;
const STEP_MS = 100;

export class World {
  /**
   * @param {object} o
   * @param {HTMLCanvasElement} o.canvas
   * @param {HTMLElement} o.head where the map name, position and portal buttons go
   * @param {string} o.token the player token
   * @param {string} o.me this player's uuid
   * @param {function} o.onauthfail called when the token is refused
   */
  constructor({ canvas, head, token, me, onauthfail }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.head = head;
    this.token = token;
    this.me = me;
    this.onauthfail = onauthfail || (() => {});
    this.names = new Map(); // map id -> name
    this.others = new Map(); // id -> {id, name, x, y, tx, ty}
    this.map = null;
    this.you = null;
    this.dest = null;
    this.switching = false;
    this.failures = 0;
    this.stopped = false;
    this.status = 'Entering the world…';
    this.onclick = (e) => this.click(e);
    canvas.addEventListener('pointerdown', this.onclick);
    this.loop = setInterval(() => this.step(), STEP_MS);
    this.frame = this.frame.bind(this);
    this.raf = requestAnimationFrame(this.frame);
    api.maps().then((w) => {
      for (const m of (w && w.maps) || []) this.names.set(m.id, m.name || m.id);
      this.renderHead();
    }).catch(() => {});
    this.enter('start');
  }

  stop() {
    this.stopped = true;
    clearInterval(this.loop);
    clearTimeout(this.timer);
    cancelAnimationFrame(this.raf);
    this.canvas.removeEventListener('pointerdown', this.onclick);
    if (this.sock) this.sock.stop(1000, 'bye');
  }

  async enter(id) {
    if (this.stopped) return;
    this.setStatus('Finding a map server…');
    let ans;
    try {
      ans = await api.enterMap(this.token, id);
    } catch (e) {
      if (this.stopped) return;
      if (e.unauthorized) { this.onauthfail(); return; }
      const msg = e.code === 'in_map' ? 'You are still on the map in another tab or connection; retrying…'
        : e.unreachable ? 'The arena server is unreachable; retrying…'
          : `Could not enter the map (${e.message}); retrying…`;
      this.setStatus(msg);
      this.timer = setTimeout(() => this.enter(id), e.code === 'in_map' ? 4000 : backoff(this.failures++));
      return;
    }
    this.connect(ans.addr, ans.ticket);
  }

  connect(addr, ticket) {
    if (this.stopped) return;
    if (this.sock) { const s = this.sock; this.sock = null; s.stop(1000, 'reconnect'); }
    // arena.js's MapSession follows switch answers to the next map server
    // by itself; any other drop ends it (giveup) and the player enters
    // again through the dispatcher, which resumes the saved state.
    const sock = new MapSession({ addr: new URL(addr, location.href).toString(), ticket });
    sock.on('message', (m) => { if (this.sock === sock) this.handle(m); });
    sock.on('close', ({ opened, retrying }) => {
      if (this.sock !== sock || this.stopped) return;
      this.others.clear();
      if (!retrying) this.setStatus(opened ? 'Lost the map server; reconnecting…' : 'Could not reach the map server; retrying…');
    });
    sock.on('giveup', () => {
      if (this.sock !== sock || this.stopped) return;
      this.sock = null;
      this.timer = setTimeout(() => this.enter(this.map ? this.map.id : 'start'), backoff(this.failures++));
    });
    this.sock = sock;
  }

  handle(m) {
    switch (m.type) {
      case 'welcome':
        this.failures = 0;
        this.switching = false;
        this.map = m.map;
        if (m.map && m.map.id) this.names.set(m.map.id, m.map.name || m.map.id);
        this.you = { ...m.you };
        this.viewRadius = Number(m.view_radius) || 150;
        this.maxSpeed = Number(m.max_speed) || 200;
        this.dest = null;
        this.others.clear();
        this.setStatus('');
        this.renderHead();
        break;
      case 'enter':
        for (const p of m.players || []) {
          if (p.id === this.me) continue;
          this.others.set(p.id, { id: p.id, name: p.name || '?', x: p.x, y: p.y, tx: p.x, ty: p.y });
        }
        this.renderHead();
        break;
      case 'positions':
        for (const p of m.players || []) {
          const o = this.others.get(p.id);
          if (o) { o.tx = p.x; o.ty = p.y; }
        }
        break;
      case 'leave':
        for (const id of m.ids || []) this.others.delete(id);
        this.renderHead();
        break;
      case 'switch': {
        this.switching = true;
        this.dest = null;
        this.setStatus(`Travelling to ${this.names.get(m.map) || m.map}…`); // the session follows it
        break;
      }
      case 'error':
        if ((m.code === 'out_of_bounds' || m.code === 'too_fast') && Number.isFinite(m.x) && this.you) {
          this.you.x = m.x; this.you.y = m.y;
          if (m.code === 'out_of_bounds') this.dest = null;
        } else if (m.code === 'switching' || m.code === 'rate_limited') {
          // transient
        } else {
          this.setStatus('Map server: ' + (m.message || m.code));
        }
        break;
    }
  }

  setStatus(text) {
    this.status = text;
    const s = $('.world-status', this.head);
    if (s) s.textContent = text;
  }

  renderHead() {
    const map = this.map;
    const portals = (map && map.portals) || [];
    this.head.replaceChildren(
      el('span', { class: 'mapname' }, map ? (map.name || map.id) : 'World'),
      el('span', { class: 'pill ok' }, `${this.others.size + (map ? 1 : 0)} here`),
      el('div', { class: 'portals' }, portals.map((p) => el('button', {
        class: 'small', title: 'Walk to the portal',
        onclick: () => this.walkTo(p.rect.x + p.rect.w / 2, p.rect.y + p.rect.h / 2),
      }, '→ ' + (this.names.get(p.to) || p.to)))),
      el('span', { class: 'world-status muted small' }, this.status));
  }

  // --- geometry: the map is fitted into the canvas ---

  fit() {
    const mw = (this.map && this.map.width) || 1000, mh = (this.map && this.map.height) || 1000;
    const k = Math.min((W - 20) / mw, (H - 20) / mh);
    return { k, ox: (W - mw * k) / 2, oy: (H - mh * k) / 2, mw, mh };
  }

  click(e) {
    if (!this.map || e.button !== 0) return;
    e.preventDefault();
    const r = this.canvas.getBoundingClientRect();
    const cx = (e.clientX - r.left) * W / r.width, cy = (e.clientY - r.top) * H / r.height;
    const f = this.fit();
    this.walkTo((cx - f.ox) / f.k, (cy - f.oy) / f.k);
  }

  walkTo(x, y) {
    if (!this.map) return;
    const f = this.fit();
    this.dest = { x: Math.max(0, Math.min(f.mw, x)), y: Math.max(0, Math.min(f.mh, y)) };
  }

  /** step moves toward the destination within the server's speed limit. */
  step() {
    if (!this.dest || !this.you || this.switching || !this.sock || !this.sock.open) return;
    const dx = this.dest.x - this.you.x, dy = this.dest.y - this.you.y;
    const d = Math.hypot(dx, dy);
    if (d < 1) { this.dest = null; return; }
    const max = this.maxSpeed * STEP_MS / 1000 * 0.9;
    const k = Math.min(1, max / d);
    const x = Math.round((this.you.x + dx * k) * 10) / 10, y = Math.round((this.you.y + dy * k) * 10) / 10;
    this.you.x = x; this.you.y = y;
    this.sock.send({ type: 'move', x, y });
  }

  frame(now) {
    const dt = Math.min(0.1, (now - (this.last || now)) / 1000);
    this.last = now;
    for (const o of this.others.values()) {
      const dx = o.tx - o.x, dy = o.ty - o.y, d = Math.hypot(dx, dy);
      if (d > 0.5) { const s = Math.min(d, (this.maxSpeed || 200) * 1.2 * dt); o.x += dx / d * s; o.y += dy / d * s; }
    }
    this.draw(now);
    this.raf = requestAnimationFrame(this.frame);
  }

  draw(now) {
    const c = this.canvas, ctx = this.ctx;
    const dpr = Math.min(2, window.devicePixelRatio || 1);
    if (c.width !== W * dpr) { c.width = W * dpr; c.height = H * dpr; }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#0b101b';
    ctx.fillRect(0, 0, W, H);
    if (!this.map) {
      ctx.fillStyle = '#8f9ab2';
      ctx.font = '600 18px system-ui, sans-serif';
      ctx.textAlign = 'center';
      ctx.fillText(this.status || 'Entering the world…', W / 2, H / 2);
      return;
    }
    const f = this.fit();
    const tint = colorFor(this.map.id);
    ctx.save();
    ctx.translate(f.ox, f.oy);
    const gw = f.mw * f.k, gh = f.mh * f.k;
    const g = ctx.createLinearGradient(0, 0, gw, gh);
    g.addColorStop(0, '#17213a'); g.addColorStop(1, '#111828');
    ctx.fillStyle = g;
    ctx.fillRect(0, 0, gw, gh);
    ctx.strokeStyle = 'rgba(120,140,190,0.08)';
    ctx.lineWidth = 1;
    const cell = 100 * f.k;
    for (let x = cell; x < gw; x += cell) { ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, gh); ctx.stroke(); }
    for (let y = cell; y < gh; y += cell) { ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(gw, y); ctx.stroke(); }
    ctx.strokeStyle = tint;
    ctx.globalAlpha = 0.6;
    ctx.lineWidth = 2;
    ctx.strokeRect(1, 1, gw - 2, gh - 2);
    ctx.globalAlpha = 1;
    this.drawScenery(f);
    // portals
    const pulse = 0.55 + 0.25 * Math.sin(now / 300);
    for (const p of this.map.portals || []) {
      const r = p.rect;
      ctx.fillStyle = `rgba(165,123,255,${pulse * 0.5})`;
      ctx.strokeStyle = `rgba(190,160,255,${pulse + 0.2})`;
      ctx.lineWidth = 2;
      ctx.fillRect(r.x * f.k, r.y * f.k, r.w * f.k, r.h * f.k);
      ctx.strokeRect(r.x * f.k, r.y * f.k, r.w * f.k, r.h * f.k);
      ctx.fillStyle = '#e5dbff';
      ctx.font = '700 12px system-ui, sans-serif';
      const label = '→ ' + (this.names.get(p.to) || p.to);
      const cx = (r.x + r.w / 2) * f.k;
      const below = r.y * f.k < 24;
      ctx.textAlign = cx < 60 ? 'left' : cx > gw - 60 ? 'right' : 'center';
      ctx.fillText(label, cx < 60 ? 4 : cx > gw - 60 ? gw - 4 : cx, below ? (r.y + r.h) * f.k + 16 : r.y * f.k - 8);
    }
    // destination
    if (this.dest && this.you) {
      ctx.strokeStyle = 'rgba(255,255,255,0.35)';
      ctx.setLineDash([4, 6]);
      ctx.beginPath(); ctx.moveTo(this.you.x * f.k, this.you.y * f.k); ctx.lineTo(this.dest.x * f.k, this.dest.y * f.k); ctx.stroke();
      ctx.setLineDash([]);
    }
    // view radius
    if (this.you) {
      ctx.strokeStyle = 'rgba(109,149,255,0.25)';
      ctx.setLineDash([3, 5]);
      ctx.beginPath(); ctx.arc(this.you.x * f.k, this.you.y * f.k, this.viewRadius * f.k, 0, Math.PI * 2); ctx.stroke();
      ctx.setLineDash([]);
    }
    for (const o of this.others.values()) this.dot(o.x * f.k, o.y * f.k, o.name, colorFor(o.id), false);
    if (this.you) this.dot(this.you.x * f.k, this.you.y * f.k, (this.you.name || 'you') + ' (you)', '#6d95ff', true);
    ctx.restore();
    if (this.switching) {
      ctx.fillStyle = 'rgba(8,11,19,0.6)';
      ctx.fillRect(0, 0, W, H);
      ctx.fillStyle = '#e5dbff';
      ctx.font = '800 22px system-ui, sans-serif';
      ctx.textAlign = 'center';
      ctx.fillText(this.status || 'Travelling…', W / 2, H / 2);
    }
  }

  /**
   * drawScenery scatters decoration (houses, trees or crystals, by the map's
   * name) at places derived from the map id, so every client draws the same.
   * It is only decoration: the map server knows nothing of it.
   */
  drawScenery(f) {
    const ctx = this.ctx;
    const id = this.map.id + '|' + (this.map.name || '');
    let seed = 2166136261;
    for (const ch of id) seed = Math.imul(seed ^ ch.charCodeAt(0), 16777619) >>> 0;
    const rnd = () => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 4294967296; };
    const name = id.toLowerCase();
    const kind = /forest|wood|grove/.test(name) ? 'tree' : /cave|crystal|mine/.test(name) ? 'crystal' : /town|village|city/.test(name) ? 'house' : 'rock';
    const n = Math.min(140, Math.round(f.mw * f.mh / 16000));
    const portals = this.map.portals || [];
    for (let i = 0; i < n; i++) {
      const x = rnd() * f.mw, y = rnd() * f.mh, s = 0.6 + rnd() * 0.8;
      if (portals.some((p) => x > p.rect.x - 60 && x < p.rect.x + p.rect.w + 60 && y > p.rect.y - 60 && y < p.rect.y + p.rect.h + 60)) continue;
      const px = x * f.k, py = y * f.k, r = 11 * s * Math.max(0.8, f.k * 1.4);
      ctx.globalAlpha = 0.55;
      if (kind === 'tree') {
        ctx.fillStyle = '#1f6b4a';
        ctx.beginPath(); ctx.arc(px, py, r, 0, Math.PI * 2); ctx.fill();
        ctx.fillStyle = '#2f8f62';
        ctx.beginPath(); ctx.arc(px - r * 0.3, py - r * 0.3, r * 0.55, 0, Math.PI * 2); ctx.fill();
      } else if (kind === 'crystal') {
        ctx.fillStyle = i % 3 ? '#6d5bd0' : '#35c9e6';
        ctx.beginPath(); ctx.moveTo(px, py - r * 1.3); ctx.lineTo(px + r * 0.6, py); ctx.lineTo(px, py + r * 0.8); ctx.lineTo(px - r * 0.6, py); ctx.closePath(); ctx.fill();
      } else if (kind === 'house') {
        if (i % 2) continue;
        ctx.fillStyle = '#3a4663';
        ctx.fillRect(px - r, py - r * 0.6, r * 2, r * 1.4);
        ctx.fillStyle = '#b0603f';
        ctx.beginPath(); ctx.moveTo(px - r * 1.2, py - r * 0.6); ctx.lineTo(px, py - r * 1.5); ctx.lineTo(px + r * 1.2, py - r * 0.6); ctx.closePath(); ctx.fill();
      } else {
        ctx.fillStyle = '#3b455e';
        ctx.beginPath(); ctx.ellipse(px, py, r, r * 0.7, 0, 0, Math.PI * 2); ctx.fill();
      }
    }
    ctx.globalAlpha = 1;
  }

  dot(x, y, name, color, me) {
    const ctx = this.ctx;
    ctx.fillStyle = color;
    ctx.beginPath(); ctx.arc(x, y, me ? 10 : 8, 0, Math.PI * 2); ctx.fill();
    ctx.lineWidth = me ? 3 : 2;
    ctx.strokeStyle = me ? '#fff' : 'rgba(255,255,255,0.4)';
    ctx.stroke();
    // The name stays on the canvas (a player at the map's edge keeps a
    // whole label), at a size readable on a small screen.
    const shown = this.canvas.clientWidth || W;
    const ts = Math.min(2.5, Math.max(1, 0.85 * W / shown));
    ctx.fillStyle = '#e7ebf3';
    ctx.font = `${me ? 700 : 600} ${Math.round(12 * ts)}px system-ui, sans-serif`;
    ctx.textAlign = 'center';
    const half = ctx.measureText(name).width / 2;
    const lx = Math.max(4 + half, Math.min(W - 4 - half, x));
    if (me) this.canvas.dataset.you = `${Math.round(x)} ${Math.floor(lx - half)} ${Math.ceil(lx + half)}`; // tests read it
    ctx.fillText(name, lx, y - 9 - 6 * ts);
  }
}
