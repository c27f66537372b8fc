// ui.js: small DOM helpers shared by the pages. Text always goes in as
// text nodes, never parsed as HTML, so names and messages cannot inject markup.

import { Connection, backoff } from './arena.js';

/** el builds an element: el('div', {class: 'x', onclick: f}, 'text', child). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (v === true) e.setAttribute(k, '');
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/**
 * photoURL returns a safe image URL for a player's photo, or "" for none.
 * Photos are http(s) URLs; one pointing at this server's /static/img/
 * (the built-in avatars and the bot picture) is loaded from this page's own
 * origin, so it works whatever host name the photo was registered with.
 */
export function photoURL(photo) {
  if (typeof photo !== 'string' || !photo) return '';
  try {
    const u = new URL(photo, location.href);
    if (u.pathname.startsWith('/static/img/')) return u.pathname;
    if (u.protocol === 'https:' || u.protocol === 'http:') return u.toString();
  } catch { /* not a URL */ }
  return '';
}

/** isBot reports whether a player (from a match, a result or chat) is a bot. */
export function isBot(p) {
  if (!p) return false;
  if (p.bot === true) return true;
  const name = p.username || p.name || '';
  return /^bot-/i.test(name);
}

const palette = ['#6d95ff', '#3ecf8e', '#ffb545', '#ff6b8b', '#a57bff', '#35c9e6', '#ff8a4c', '#9bd14a'];

/** colorFor returns a stable colour for a uuid. */
export function colorFor(id) {
  let h = 0;
  for (const ch of String(id)) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return palette[h % palette.length];
}

/** avatar returns an <img> of the photo, or a coloured disc with initials. */
export function avatar(p, cls = '') {
  const url = photoURL(p.photo);
  const name = p.username || p.name || '?';
  if (url) {
    const img = el('img', { class: 'avatar ' + cls, src: url, alt: '', width: 36, height: 36, referrerpolicy: 'no-referrer' });
    img.addEventListener('error', () => img.replaceWith(initials(name, p.uuid || p.id, cls)), { once: true });
    return img;
  }
  return initials(name, p.uuid || p.id, cls);
}

function initials(name, id, cls) {
  const letters = String(name).replace(/^bot-/i, '').trim().slice(0, 2).toUpperCase() || '?';
  const e = el('span', { class: 'avatar initials ' + cls, 'aria-hidden': 'true' }, letters);
  e.style.background = colorFor(id || name);
  return e;
}

/** nameTag renders a name with its bot or you badge. */
export function nameTag(p, meId) {
  return el('span', { class: 'nm' }, p.username || p.name || '?', ' ',
    isBot(p) ? el('span', { class: 'badge bot', title: 'a server-side bot player' }, 'bot') : null,
    meId && (p.uuid === meId || p.id === meId) ? el('span', { class: 'badge you' }, 'you') : null);
}

let toastTimer = 0;
/**
 * toast shows a short message just below the pinned header (away from the
 * controls at the bottom of the fight).
 */
export function toast(text, ms = 3500) {
  let t = $('#toast');
  if (!t) {
    t = el('div', { id: 'toast', class: 'toast', role: 'status' });
    ($('#pinned') || document.body).append(t);
  }
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, ms);
}

/** hideToast takes the toast down at once (its news is over). */
export function hideToast() {
  clearTimeout(toastTimer);
  const t = $('#toast');
  if (t) t.hidden = true;
}

/** banner shows (or, with text "", hides) the page's alert banner. */
export function banner(text, { kind = 'error', action, onAction } = {}) {
  const b = $('#banner');
  if (!b) return;
  b.replaceChildren();
  if (!text) { b.hidden = true; return; }
  b.className = 'banner' + (kind === 'info' ? ' info' : '');
  b.append(el('span', {}, text));
  if (action) b.append(el('button', { class: 'small', onclick: onAction }, action));
  b.hidden = false;
}

/** fmtTime formats unix milliseconds as HH:MM. */
export function fmtTime(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** fmtDuration formats seconds as "1h 2m", "3m 4s" or "5s". */
export function fmtDuration(s) {
  s = Math.max(0, Math.floor(s));
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${Math.floor(s / 60) % 60}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${s}s`;
}

/**
 * Socket is a WebSocket carrying one JSON object per text frame, with a
 * "type" (the protocol of every arena server), without reconnects: a thin
 * wrapper of arena.js's Connection for the chat panel and the map view.
 * Handlers: onopen(), onmessage(obj), onclose({code, reason, opened}).
 */
export class Socket {
  constructor(url, { onopen, onmessage, onclose } = {}) {
    this.c = new Connection(url, { retry: false });
    if (onopen) this.c.on('open', onopen);
    if (onmessage) this.c.on('message', onmessage);
    if (onclose) this.c.on('close', ({ code, reason, opened }) => onclose({ code, reason, opened }));
  }
  get open() { return this.c.open; }
  send(obj) { return this.c.send(obj); }
  close(code = 1000, reason = 'bye') { this.c.stop(code, reason); }
}

export { backoff };
