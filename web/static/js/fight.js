// fight.js: one fight room, drawn on a canvas and played with the mouse and
// keyboard, over the fight server's WebSocket (docs/fight.md):
// join with ?ticket=, read state/create_player/event/hp/out/result (a
// create_player for a player not in the match: one who joined the running
// fight), send
// move_to, attack and blink events. The server owns hp and the result; this
// is only a view of it.

import { colorFor, photoURL, isBot } from './ui.js';

/** The arena's size in fight coordinates (the bots use the same). */
export const ARENA_W = 800;
export const ARENA_H = 600;
const RADIUS = 24;
const SPEED = 240; // units per second a player walks, until the room's state says
const BLINK = 160; // how far a blink goes, until the room's state says

/** spawn is where member i of n starts (the fight server reports 0,0). */
export function spawn(i, n) {
  n = Math.max(1, n);
  const a = 2 * Math.PI * i / n - Math.PI / 2;
  return [Math.round(ARENA_W / 2 + 220 * Math.cos(a)), Math.round(ARENA_H / 2 + 180 * Math.sin(a))];
}

const images = new Map();
function image(url) {
  if (!url) return null;
  let img = images.get(url);
  if (!img) {
    img = new Image();
    img.decoding = 'async';
    img.referrerPolicy = 'no-referrer';
    img.src = url;
    images.set(url, img);
  }
  return img.complete && img.naturalWidth > 0 ? img : null;
}

export class Fight {
  /**
   * @param {object} o
   * @param {HTMLCanvasElement} o.canvas
   * @param {import('./arena.js').Arena} o.arena the client (arena.js), which joins the room and rejoins it after drops
   * @param {object} o.match the match message: {room, fight, ticket, players}
   * @param {string} o.me this player's uuid
   * @param {function} o.onchange called when hp, statuses or the roster change
   * @param {function} o.onresult called with the result message
   * @param {function} o.onend called with {code, message} when the room is
   *   left without a result (refused ticket, server gone)
   * @param {function} o.onsystem called with a line for the chat log
   */
  constructor({ arena, canvas, match, me, onchange, onresult, onend, onsystem }) {
    this.arena = arena;
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.ts = 1; // text scale, set each frame (font)
    this.match = match;
    this.me = me;
    this.onchange = onchange || (() => {});
    this.onresult = onresult || (() => {});
    this.onend = onend || (() => {});
    this.onsystem = onsystem || (() => {});
    this.players = new Map();
    this.order = [];
    this.fireballs = [];
    this.floats = [];
    this.cooldown = 400;
    // The server's rules (from state): it moves players at speed, and
    // refuses attacks beyond range and blinks beyond blinkRange.
    this.range = Infinity;
    this.speed = SPEED;
    this.blinkRange = BLINK;
    this.blinkCooldown = 3000;
    this.pending = null; // the uuid to attack once in range
    this.lastAttack = 0;
    this.lastBlink = 0;
    this.endsAt = 0;
    this.mouse = { x: ARENA_W / 2, y: ARENA_H / 2, inside: false };
    this.over = false;
    this.stopped = false;
    (match.players || []).forEach((p, i) => this.upsert(p, i, match.players.length));
    this.bind();
    this.connect();
    this.frame = this.frame.bind(this);
    this.last = performance.now();
    this.raf = requestAnimationFrame(this.frame);
  }

  upsert(p, i, n) {
    let f = this.players.get(p.uuid);
    if (!f) {
      const [x, y] = spawn(i, n);
      f = { uuid: p.uuid, username: p.username || '?', photo: p.photo || '', score: p.score, bot: !!p.bot,
        hp: 100, x, y, tx: x, ty: y, status: 'pending', color: colorFor(p.uuid), bubble: '', bubbleUntil: 0 };
      this.players.set(p.uuid, f);
      this.order.push(p.uuid);
    }
    if (p.username) f.username = p.username;
    if (p.photo) f.photo = p.photo;
    if (p.score !== undefined) f.score = p.score;
    if (p.bot) f.bot = true;
    return f;
  }

  connect() {
    // arena.js's Room joins with the ticket and rejoins after a drop (the
    // room keeps the seat for its grace) until the result or a refusal.
    this.sock = this.arena.join(this.match);
    this.sock.on('message', (m) => this.handle(m));
    this.sock.on('close', (c) => {
      if (c.retrying && !this.stopped && !this.over) {
        this.onsystem(c.opened ? 'Connection to the fight lost; rejoining…' : 'Could not reach the fight server; retrying…');
      }
    });
    this.sock.on('giveup', () => {
      if (this.stopped || this.over) return;
      this.finish();
      const r = this.sock.refused;
      this.onend(r ? { code: r.code, message: r.message || r.code } : { code: 'unreachable', message: 'The fight server cannot be reached.' });
    });
  }

  handle(m) {
    switch (m.type) {
      case 'state': {
        this.me = m.you || this.me;
        this.cooldown = Math.max(0, Number(m.attack_cooldown_ms) || 0);
        if (Number(m.attack_range) > 0) this.range = Number(m.attack_range);
        if (Number(m.move_speed) > 0) this.speed = Number(m.move_speed);
        if (Number(m.blink_range) > 0) this.blinkRange = Number(m.blink_range);
        if (Number(m.blink_cooldown_ms) >= 0 && m.blink_cooldown_ms !== undefined) this.blinkCooldown = Number(m.blink_cooldown_ms);
        this.endsAt = Number(m.ends_at) || 0;
        const list = Array.isArray(m.players) ? m.players : [];
        list.forEach((p, i) => {
          const f = this.upsert(p, i, list.length);
          f.hp = Number(p.hp) || 0;
          f.status = p.status || 'playing';
          if (p.x || p.y) { f.x = f.tx = p.x; f.y = f.ty = p.y; }
          if (Number.isFinite(p.tx) && Number.isFinite(p.ty)) { f.tx = p.tx; f.ty = p.ty; }
        });
        const me = this.players.get(this.me);
        if (me && me.status === 'pending') me.status = 'playing';
        this.onchange();
        break;
      }
      case 'create_player': {
        // A member not in the match message joined the running fight
        // (backfill): it stands where the server says, with its hp.
        const known = this.players.has(m.uuid);
        const f = this.upsert(m, this.order.length, this.order.length + 1);
        if (!known) {
          if (Number.isFinite(m.x) && Number.isFinite(m.y)) { f.x = f.tx = clampX(m.x); f.y = f.ty = clampY(m.y); }
          if (Number.isFinite(m.hp)) f.hp = Math.max(0, m.hp);
          this.onsystem(`${f.username} joined the fight.`);
        }
        if (f.status === 'pending' || f.status === 'away') f.status = 'playing';
        this.onchange();
        break;
      }
      case 'player_back': {
        const f = this.players.get(m.uuid);
        if (f) { f.status = 'playing'; this.onchange(); }
        break;
      }
      case 'player_away': {
        const f = this.players.get(m.uuid);
        if (f) { f.status = 'away'; this.onchange(); }
        break;
      }
      case 'event': this.event(m); break;
      case 'hp': {
        const f = this.players.get(m.uuid);
        if (!f) break;
        f.hp = Math.max(0, Number(m.hp) || 0);
        this.floats.push({ x: f.x, y: f.y - RADIUS - 6, text: '-' + (Number(m.damage) || 0), t0: performance.now(), color: '#ff7b88' });
        this.onchange();
        break;
      }
      case 'out': {
        const f = this.players.get(m.uuid);
        if (!f) break;
        f.status = m.reason === 'left' ? 'left' : 'out';
        const by = this.players.get(m.by);
        this.onsystem(m.reason === 'left' ? `${f.username} left the fight.` :
          `${f.username} is out${by ? ' (by ' + by.username + ')' : ''}.`);
        this.onchange();
        break;
      }
      case 'result':
        this.over = true;
        this.onresult(m);
        break;
      case 'error':
        switch (m.code) {
          case 'cooldown': case 'bad_target': case 'player_out': case 'out_of_range': case 'too_far': break;
          case 'bad_ticket': case 'expired_ticket': case 'wrong_kind': case 'wrong_room': case 'not_member':
          case 'room_over': case 'left_room': case 'replaced': case 'rate_limited': case 'server_shutdown':
            break; // a refusal: the Room gives up and 'giveup' ends the fight
          default:
            this.onsystem('Fight server: ' + (m.message || m.code));
        }
        break;
    }
  }

  event(m) {
    const f = this.players.get(m.uuid);
    if (!f) return;
    const now = performance.now();
    switch (m.event) {
      case 'move_to':
        if (Number.isFinite(m.tx) && Number.isFinite(m.ty)) { f.tx = clampX(m.tx); f.ty = clampY(m.ty); }
        break;
      case 'blink':
        if (Number.isFinite(m.tx) && Number.isFinite(m.ty)) { f.x = f.tx = clampX(m.tx); f.y = f.ty = clampY(m.ty); }
        break;
      case 'attack': {
        const t = this.players.get(m.target);
        const from = Number.isFinite(m.x) ? { x: m.x, y: m.y } : { x: f.x, y: f.y };
        if (t) this.fireballs.push({ x0: from.x, y0: from.y, to: t, t0: now, dur: 260, color: f.color });
        break;
      }
      case 'shoot_fireball':
        if (Number.isFinite(m.tx)) this.fireballs.push({ x0: f.x, y0: f.y, to: { x: m.tx, y: m.ty }, t0: now, dur: 320, color: f.color });
        break;
      case 'message':
        if (typeof m.text === 'string') { f.bubble = m.text.slice(0, 80); f.bubbleUntil = now + 4000; }
        break;
    }
  }

  // --- input ---

  bind() {
    const c = this.canvas;
    this.handlers = {
      pointerdown: (e) => {
        if (e.button !== 0) return;
        e.preventDefault();
        c.focus({ preventScroll: true });
        const p = this.toArena(e);
        this.mouse = { x: p.x, y: p.y, inside: e.pointerType === 'mouse' };
        this.pending = null;
        this.moveTo(p.x, p.y);
      },
      pointermove: (e) => { const p = this.toArena(e); this.mouse = { x: p.x, y: p.y, inside: true }; },
      pointerleave: () => { this.mouse.inside = false; },
      contextmenu: (e) => {
        e.preventDefault();
        const p = this.toArena(e);
        const t = this.playerAt(p.x, p.y);
        if (t) this.attack(t);
      },
    };
    for (const [k, h] of Object.entries(this.handlers)) c.addEventListener(k, h);
    this.onkey = (e) => {
      if (this.over || this.stopped) return;
      const tag = (e.target && e.target.tagName) || '';
      if (tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT') return;
      if (e.code === 'Space' || e.key === 'f' || e.key === 'F') {
        e.preventDefault();
        this.attack(this.aimed() || this.nearest());
      } else if (e.key === 'b' || e.key === 'B') {
        e.preventDefault();
        this.blink();
      }
    };
    document.addEventListener('keydown', this.onkey);
  }

  toArena(e) {
    const r = this.canvas.getBoundingClientRect();
    return { x: clampX((e.clientX - r.left) * ARENA_W / r.width), y: clampY((e.clientY - r.top) * ARENA_H / r.height) };
  }

  get self() { return this.players.get(this.me); }
  alive(f) { return f && (f.status === 'playing' || f.status === 'away' || f.status === 'pending') && f.hp > 0; }

  playerAt(x, y) {
    for (const f of this.players.values()) {
      if (f.uuid !== this.me && Math.hypot(f.x - x, f.y - y) <= RADIUS + 8) return f;
    }
    return null;
  }

  aimed() {
    if (!this.mouse.inside) return null;
    const t = this.playerAt(this.mouse.x, this.mouse.y);
    return t && this.targetable(t) ? t : null;
  }

  targetable(f) { return f && f.uuid !== this.me && this.alive(f) && f.status !== 'pending'; }

  /** nearest returns the closest living opponent. */
  nearest() {
    const me = this.self;
    if (!me) return null;
    let best = null, bd = Infinity;
    for (const f of this.players.values()) {
      if (!this.targetable(f)) continue;
      const d = Math.hypot(f.x - me.x, f.y - me.y);
      if (d < bd) { bd = d; best = f; }
    }
    return best;
  }

  moveTo(x, y) {
    const me = this.self;
    if (!me || !this.alive(me) || this.over) return;
    x = Math.round(x); y = Math.round(y);
    me.tx = x; me.ty = y;
    this.sock.send({ type: 'event', event: 'move_to', tx: x, ty: y });
  }

  /**
   * attack sends an attack on t (the server applies the damage). A target
   * beyond the attack range is walked toward first, and attacked once in
   * range (see frame).
   */
  attack(t) {
    const me = this.self;
    if (!me || !this.alive(me) || !this.targetable(t) || this.over) return false;
    const d = Math.hypot(t.x - me.x, t.y - me.y);
    if (d > this.range * 0.9) {
      this.pending = t.uuid;
      if (Math.hypot(me.tx - t.x, me.ty - t.y) > this.range * 0.7) {
        const k = (d - this.range * 0.5) / d;
        this.moveTo(me.x + (t.x - me.x) * k, me.y + (t.y - me.y) * k);
      }
      return false;
    }
    const now = performance.now();
    if (now - this.lastAttack < this.cooldown) return false;
    this.lastAttack = now;
    const angle = Math.round(Math.atan2(t.y - me.y, t.x - me.x) * 1000) / 1000;
    const ball = 'b' + Math.random().toString(36).slice(2, 12);
    this.sock.send({ type: 'event', event: 'attack', target: t.uuid, ball_uuid: ball,
      x: Math.round(me.x), y: Math.round(me.y), angle });
    this.fireballs.push({ x0: me.x, y0: me.y, to: t, t0: now, dur: 260, color: me.color });
    return true;
  }

  blink() {
    const me = this.self;
    if (!me || !this.alive(me)) return;
    const now = performance.now();
    if (now - this.lastBlink < this.blinkCooldown) return;
    this.lastBlink = now;
    const dx = this.mouse.x - me.x, dy = this.mouse.y - me.y;
    const d = Math.hypot(dx, dy) || 1;
    const k = Math.min(1, (this.blinkRange - 1) / d);
    const x = Math.round(clampX(me.x + dx * k)), y = Math.round(clampY(me.y + dy * k));
    me.x = me.tx = x; me.y = me.ty = y;
    this.sock.send({ type: 'event', event: 'blink', tx: x, ty: y });
  }

  /** leave gives up the fight (the room goes on without this player). */
  leave() {
    if (this.sock && !this.over) this.sock.leave();
    this.arena.clearMatch(this.match.room);
  }

  finish() {
    this.stopped = true;
  }

  /** stop closes the connection and stops drawing. */
  stop() {
    this.finish();
    cancelAnimationFrame(this.raf);
    for (const [k, h] of Object.entries(this.handlers || {})) this.canvas.removeEventListener(k, h);
    document.removeEventListener('keydown', this.onkey);
    if (this.sock) this.sock.stop(1000, 'done');
  }

  // --- drawing ---

  frame(now) {
    const dt = Math.min(0.1, (now - this.last) / 1000);
    this.last = now;
    for (const f of this.players.values()) {
      const dx = f.tx - f.x, dy = f.ty - f.y, d = Math.hypot(dx, dy);
      if (d > 0.5) {
        const step = Math.min(d, this.speed * dt);
        f.x += dx / d * step; f.y += dy / d * step;
      }
    }
    if (this.pending) {
      const t = this.players.get(this.pending);
      if (!this.targetable(t)) this.pending = null;
      else if (this.self && Math.hypot(t.x - this.self.x, t.y - this.self.y) <= this.range * 0.9 && this.attack(t)) this.pending = null;
    }
    this.draw(now);
    this.raf = requestAnimationFrame(this.frame);
  }

  /**
   * font returns a canvas font of size px at this frame's text scale: on a
   * small screen the 800-unit arena is drawn small, so text is drawn larger
   * in arena units to stay readable (about 11 px on screen for names).
   */
  font(weight, px) { return `${weight} ${Math.round(px * this.ts)}px system-ui, sans-serif`; }

  draw(now) {
    const c = this.canvas, ctx = this.ctx;
    const dpr = Math.min(2, window.devicePixelRatio || 1);
    if (c.width !== ARENA_W * dpr) { c.width = ARENA_W * dpr; c.height = ARENA_H * dpr; }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const shown = c.clientWidth || ARENA_W;
    this.ts = Math.min(2.5, Math.max(1, 0.85 * ARENA_W / shown));
    c.dataset.labelPx = (13 * this.ts * shown / ARENA_W).toFixed(1); // on-screen size of the names (tests read it)
    // floor
    const g = ctx.createRadialGradient(ARENA_W / 2, ARENA_H / 2, 60, ARENA_W / 2, ARENA_H / 2, 520);
    g.addColorStop(0, '#18223a'); g.addColorStop(1, '#0b101b');
    ctx.fillStyle = g;
    ctx.fillRect(0, 0, ARENA_W, ARENA_H);
    ctx.strokeStyle = 'rgba(120,140,190,0.08)';
    ctx.lineWidth = 1;
    for (let x = 40; x < ARENA_W; x += 40) { ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, ARENA_H); ctx.stroke(); }
    for (let y = 40; y < ARENA_H; y += 40) { ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(ARENA_W, y); ctx.stroke(); }
    ctx.strokeStyle = 'rgba(109,149,255,0.25)';
    ctx.lineWidth = 2;
    ctx.beginPath(); ctx.ellipse(ARENA_W / 2, ARENA_H / 2, 250, 205, 0, 0, Math.PI * 2); ctx.stroke();

    // my destination
    const me = this.self;
    if (me && this.alive(me) && Math.hypot(me.tx - me.x, me.ty - me.y) > 4) {
      ctx.strokeStyle = 'rgba(255,255,255,0.35)';
      ctx.setLineDash([4, 6]);
      ctx.beginPath(); ctx.moveTo(me.x, me.y); ctx.lineTo(me.tx, me.ty); ctx.stroke();
      ctx.setLineDash([]);
      ctx.beginPath(); ctx.arc(me.tx, me.ty, 6, 0, Math.PI * 2); ctx.stroke();
    }
    // aim line to the target an attack would hit
    const aim = this.aimed() || this.nearest();
    if (me && this.alive(me) && aim && !this.over) {
      ctx.strokeStyle = 'rgba(255,120,120,0.25)';
      ctx.setLineDash([2, 6]);
      ctx.beginPath(); ctx.moveTo(me.x, me.y); ctx.lineTo(aim.x, aim.y); ctx.stroke();
      ctx.setLineDash([]);
    }

    const sorted = [...this.players.values()].sort((a, b) => a.y - b.y);
    for (const f of sorted) this.drawPlayer(f, now, f === aim);

    // fireballs
    this.fireballs = this.fireballs.filter((b) => now - b.t0 < b.dur);
    for (const b of this.fireballs) {
      const k = (now - b.t0) / b.dur;
      const x = b.x0 + (b.to.x - b.x0) * k, y = b.y0 + (b.to.y - b.y0) * k;
      const fg = ctx.createRadialGradient(x, y, 1, x, y, 12);
      fg.addColorStop(0, '#fff6c2'); fg.addColorStop(0.4, '#ffb545'); fg.addColorStop(1, 'rgba(255,93,108,0)');
      ctx.fillStyle = fg;
      ctx.beginPath(); ctx.arc(x, y, 12, 0, Math.PI * 2); ctx.fill();
    }
    // damage numbers
    this.floats = this.floats.filter((t) => now - t.t0 < 900);
    ctx.font = this.font('bold', 16);
    ctx.textAlign = 'center';
    for (const t of this.floats) {
      const k = (now - t.t0) / 900;
      ctx.globalAlpha = 1 - k;
      ctx.fillStyle = t.color;
      ctx.fillText(t.text, t.x, t.y - 24 * k);
    }
    ctx.globalAlpha = 1;

    // clock and cooldown
    if (this.endsAt) {
      const left = Math.max(0, Math.floor((this.endsAt - Date.now()) / 1000));
      ctx.font = this.font(600, 14);
      ctx.textAlign = 'right';
      ctx.fillStyle = 'rgba(231,235,243,0.7)';
      ctx.fillText(`${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`, ARENA_W - 14, 10 + 14 * this.ts);
    }
    if (me && this.alive(me) && this.cooldown > 0) {
      const k = Math.min(1, (now - this.lastAttack) / this.cooldown);
      ctx.textAlign = 'left';
      ctx.font = this.font(600, 13);
      ctx.fillStyle = k >= 1 ? 'rgba(62,207,142,0.9)' : 'rgba(255,181,69,0.9)';
      ctx.fillText(k >= 1 ? 'attack ready' : 'reloading…', 14, 10 + 14 * this.ts);
    }
    if (me && !this.alive(me) && !this.over) {
      ctx.fillStyle = 'rgba(8,11,19,0.55)';
      ctx.fillRect(0, ARENA_H / 2 - 34, ARENA_W, 68);
      ctx.fillStyle = '#ffd3d8';
      ctx.textAlign = 'center';
      ctx.font = this.font(800, 26);
      ctx.fillText('You are out. Waiting for the result…', ARENA_W / 2, ARENA_H / 2 + 9, ARENA_W - 24);
    }
  }

  drawPlayer(f, now, targeted) {
    const ctx = this.ctx;
    const alive = this.alive(f);
    const isMe = f.uuid === this.me;
    ctx.save();
    ctx.globalAlpha = f.status === 'pending' ? 0.45 : alive ? 1 : 0.35;
    // shadow
    ctx.fillStyle = 'rgba(0,0,0,0.35)';
    ctx.beginPath(); ctx.ellipse(f.x, f.y + RADIUS - 2, RADIUS * 0.9, 7, 0, 0, Math.PI * 2); ctx.fill();
    // body
    ctx.fillStyle = f.color;
    ctx.beginPath(); ctx.arc(f.x, f.y, RADIUS, 0, Math.PI * 2); ctx.fill();
    const img = image(photoURL(f.photo));
    if (img) {
      ctx.save();
      ctx.beginPath(); ctx.arc(f.x, f.y, RADIUS - 3, 0, Math.PI * 2); ctx.clip();
      ctx.drawImage(img, f.x - RADIUS + 3, f.y - RADIUS + 3, (RADIUS - 3) * 2, (RADIUS - 3) * 2);
      ctx.restore();
    } else {
      ctx.fillStyle = '#fff';
      ctx.font = '800 16px system-ui, sans-serif';
      ctx.textAlign = 'center';
      ctx.fillText(f.username.replace(/^bot-/i, '').slice(0, 2).toUpperCase(), f.x, f.y + 6);
    }
    ctx.lineWidth = isMe ? 4 : 3;
    ctx.strokeStyle = isMe ? '#ffffff' : targeted ? '#ff7b88' : f.color;
    ctx.beginPath(); ctx.arc(f.x, f.y, RADIUS, 0, Math.PI * 2); ctx.stroke();
    if (!alive && f.status !== 'pending') {
      ctx.strokeStyle = '#ff5d6c';
      ctx.lineWidth = 4;
      ctx.beginPath();
      ctx.moveTo(f.x - 12, f.y - 12); ctx.lineTo(f.x + 12, f.y + 12);
      ctx.moveTo(f.x + 12, f.y - 12); ctx.lineTo(f.x - 12, f.y + 12);
      ctx.stroke();
    }
    // name and badge, kept inside the arena (a player at the edge keeps a
    // whole label)
    const ts = this.ts;
    ctx.font = this.font(700, 13);
    ctx.textAlign = 'center';
    const label = f.username + (isMe ? ' (you)' : '');
    const w = ctx.measureText(label).width;
    const bot = isBot(f);
    const total = w + (bot ? 36 * ts : 0);
    const lx = Math.max(4, Math.min(ARENA_W - 4 - total, f.x - total / 2));
    const ly = f.y - RADIUS - 6 - 10 * ts;
    if (isMe) this.canvas.dataset.you = `${Math.round(f.x)} ${Math.floor(lx)} ${Math.ceil(lx + total)}`; // tests read it
    ctx.fillStyle = '#e7ebf3';
    ctx.textAlign = 'left';
    ctx.fillText(label, lx, ly);
    if (bot) {
      ctx.fillStyle = '#4b5568';
      roundRect(ctx, lx + w + 5 * ts, ly - 12 * ts, 30 * ts, 15 * ts, 4);
      ctx.fill();
      ctx.fillStyle = '#e6ebf5';
      ctx.font = this.font(800, 9);
      ctx.fillText('BOT', lx + w + 10 * ts, ly - 1 * ts);
    }
    // hp bar
    const bw = 54, bh = 6, bx = f.x - bw / 2, by = f.y + RADIUS + 8;
    ctx.fillStyle = '#2b344c';
    roundRect(ctx, bx, by, bw, bh, 3); ctx.fill();
    const hp = Math.max(0, Math.min(100, f.hp));
    ctx.fillStyle = hp > 40 ? '#3ecf8e' : hp > 20 ? '#ffb545' : '#ff5d6c';
    if (hp > 0) { roundRect(ctx, bx, by, bw * hp / 100, bh, 3); ctx.fill(); }
    ctx.fillStyle = 'rgba(231,235,243,0.75)';
    ctx.font = this.font(600, 10);
    ctx.textAlign = 'center';
    ctx.fillText(f.status === 'away' ? 'away…' : f.status === 'pending' ? 'joining…' : `${hp} hp`, f.x, by + bh + 2 + 10 * ts);
    // speech bubble, above the name
    if (f.bubble && now < f.bubbleUntil) {
      ctx.font = this.font(600, 12);
      const tw = Math.min(220 * ts, ctx.measureText(f.bubble).width) + 14;
      const th = 10 + 12 * ts, ty = ly - 16 * ts - th;
      const tx = Math.max(2, Math.min(ARENA_W - 2 - tw, f.x - tw / 2));
      ctx.fillStyle = 'rgba(231,235,243,0.95)';
      roundRect(ctx, tx, ty, tw, th, 8); ctx.fill();
      ctx.fillStyle = '#182136';
      ctx.fillText(f.bubble, tx + tw / 2, ty + th - 5 - 2 * ts, tw - 14);
    }
    ctx.restore();
  }
}

function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath();
  ctx.roundRect ? ctx.roundRect(x, y, w, h, r) : ctx.rect(x, y, w, h);
}
const clampX = (x) => Math.max(RADIUS, Math.min(ARENA_W - RADIUS, x));
const clampY = (y) => Math.max(RADIUS, Math.min(ARENA_H - RADIUS, y));
