// chat.js: the chat panel, a client of the chat server (docs/chat.md):
// ws://HOST:7600/ws?token=PLAYER_TOKEN; join world and announce, join
// room:ROOMID with the room ticket while in a match, and private messages
// to a uuid. The sender of every message comes from the server.

import { Chat as ChatConnection } from './arena.js';
import { el, $, colorFor, fmtTime, isBot } from './ui.js';

const TABS = ['world', 'room', 'private'];
const MAX_LINES = 300;

export class Chat {
  /**
   * @param {object} o
   * @param {HTMLElement} o.root the chat <aside>
   * @param {string} o.url the chat server's ws:// URL
   * @param {string} o.token the player token
   * @param {string} o.me this player's uuid
   * @param {function} o.onauthfail called when connecting keeps failing
   *   (the page then checks whether the token expired)
   */
  constructor({ root, url, token, me, onauthfail }) {
    this.root = root;
    this.url = url;
    this.token = token;
    this.me = me;
    this.onauthfail = onauthfail || (() => {});
    this.tab = 'world';
    this.unread = { world: 0, room: 0, private: 0 };
    this.room = null; // {id, ticket}
    this.known = new Map(); // uuid -> {uuid, username, bot}
    this.stopped = false;
    this.log = $('#chat-log', root);
    this.form = $('#chat-form', root);
    this.input = $('#chat-input', root);
    this.status = $('#chat-status', root);
    this.toWrap = $('#chat-to-wrap', root);
    this.toSel = $('#chat-to', root);
    this.lines = { world: [], room: [], private: [] };
    for (const b of root.querySelectorAll('[data-chat-tab]')) {
      b.addEventListener('click', () => this.show(b.dataset.chatTab));
    }
    this.onsubmit = (e) => { e.preventDefault(); this.submit(); };
    this.form.addEventListener('submit', this.onsubmit);
    this.show('world');
    this.connect();
  }

  connect() {
    // arena.js's Chat connection reconnects by itself (backoff) and joins
    // the room channel again after a reconnect.
    this.setStatus('connecting…', 'warn');
    this.joined = new Set();
    const sock = new ChatConnection(this.url, this.token);
    this.sock = sock;
    sock.on('open', () => { this.joined = new Set(); });
    sock.on('message', (m) => this.handle(m));
    sock.on('close', ({ code, opened }) => {
      if (this.stopped) return;
      this.setStatus('offline', 'bad');
      if (code === 1008) this.system('world', 'The chat server closed the connection (too many messages). Reconnecting…');
      else if (opened) this.system(this.tab, 'Chat connection lost; reconnecting…');
      if (!opened && sock.failures >= 3) this.onauthfail();
    });
  }

  stop() {
    this.stopped = true;
    this.form.removeEventListener('submit', this.onsubmit);
    if (this.sock) this.sock.stop(1000, 'bye');
  }

  setStatus(text, kind) {
    this.status.textContent = text;
    this.status.className = 'pill ' + (kind || '');
  }

  send(obj) {
    return !!this.sock && this.sock.send(obj);
  }

  handle(m) {
    switch (m.type) {
      case 'welcome':
        // The server joins every connection to world and announce.
        this.setStatus('online', 'ok'); // the connection rejoins the room channel itself
        break;
      case 'joined':
        this.joined.add(m.channel);
        if (m.channel === 'world' && Number.isFinite(m.online)) this.setStatus(`${m.online} online`, 'ok');
        if (m.channel.startsWith('room:')) this.system('room', 'You joined the room channel.');
        break;
      case 'left':
        this.joined.delete(m.channel);
        break;
      case 'online':
        if (m.channel === 'world') this.setStatus(`${m.count} online`, 'ok');
        break;
      case 'history':
        for (const h of Array.isArray(m.messages) ? m.messages : []) this.message(h, true);
        break;
      case 'message':
      case 'private':
        this.message(m, false);
        break;
      case 'error':
        if (m.code === 'already_joined') break;
        this.system(this.tab, chatError(m), 'err');
        break;
    }
  }

  tabOf(m) {
    if (m.type === 'private') return 'private';
    if (typeof m.channel === 'string' && m.channel.startsWith('room:')) return 'room';
    return 'world';
  }

  message(m, old) {
    const from = m.from || {};
    if (from.uuid && from.uuid !== this.me) this.remember(from);
    const tab = this.tabOf(m);
    if (tab === 'room' && (!this.room || m.channel !== 'room:' + this.room.id)) return;
    const cls = m.channel === 'announce' ? 'announce' : tab === 'private' ? 'pm' : '';
    const who = el('span', { class: 'from', title: 'Send a private message', onclick: () => this.whisper(from) }, from.username || '?');
    who.style.color = colorFor(from.uuid || from.username);
    let prefix = null;
    if (m.channel === 'announce') prefix = el('span', { class: 'badge' }, 'announce');
    if (tab === 'private') {
      const to = this.known.get(m.to);
      prefix = el('span', { class: 'small muted' }, from.uuid === this.me ? `to ${to ? to.username : 'player'} · ` : 'private · ');
    }
    const li = el('li', { class: cls },
      prefix, ' ', who, isBot(from) ? [' ', el('span', { class: 'badge bot' }, 'bot')] : null,
      el('span', { class: 'time' }, Number.isFinite(m.ts) ? fmtTime(m.ts) : ''),
      el('div', {}, String(m.text || '')));
    this.add(tab, li, !old);
  }

  system(tab, text, cls = 'sys') {
    this.add(tab, el('li', { class: cls }, text), false);
  }

  add(tab, li, count) {
    const lines = this.lines[tab];
    lines.push(li);
    if (lines.length > MAX_LINES) lines.shift().remove();
    if (tab === this.tab) {
      const atBottom = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 40;
      this.log.append(li);
      if (atBottom) this.log.scrollTop = this.log.scrollHeight;
    } else if (count) {
      this.unread[tab]++;
      this.badges();
    }
  }

  show(tab) {
    if (!TABS.includes(tab)) return;
    this.tab = tab;
    this.unread[tab] = 0;
    for (const b of this.root.querySelectorAll('[data-chat-tab]')) {
      b.setAttribute('aria-selected', String(b.dataset.chatTab === tab));
    }
    this.log.replaceChildren(...this.lines[tab]);
    this.log.scrollTop = this.log.scrollHeight;
    this.toWrap.hidden = tab !== 'private';
    this.input.placeholder = tab === 'room' ? (this.room ? 'Message your room…' : 'Join a match to talk with your room')
      : tab === 'private' ? 'Private message…' : 'Message everyone…';
    this.badges();
  }

  badges() {
    for (const b of this.root.querySelectorAll('[data-chat-tab]')) {
      const n = this.unread[b.dataset.chatTab] || 0;
      let c = b.querySelector('.count');
      if (n && !c) { c = el('span', { class: 'count' }); b.append(c); }
      if (c) { c.textContent = String(n); c.hidden = !n; }
    }
  }

  /** remember adds a player to the private message recipients. */
  remember(p) {
    if (!p || !p.uuid || p.uuid === this.me) return;
    const name = p.username || p.name || '?';
    const had = this.known.get(p.uuid);
    this.known.set(p.uuid, { uuid: p.uuid, username: name, bot: isBot(p) });
    if (!had) {
      this.toSel.append(el('option', { value: p.uuid }, name + (isBot(p) ? ' (bot)' : '')));
    }
  }

  whisper(p) {
    if (!p || !p.uuid || p.uuid === this.me) return;
    this.remember(p);
    this.toSel.value = p.uuid;
    this.show('private');
    this.input.focus();
  }

  /** joinRoom joins room:ID with the room ticket (and leaves the last room). */
  joinRoom(id, ticket, players) {
    if (this.room && this.room.id !== id && this.joined.has('room:' + this.room.id)) this.sock.leaveRoom();
    this.room = { id, ticket };
    this.lines.room.forEach((li) => li.remove());
    this.lines.room = [];
    for (const p of players || []) this.remember(p);
    if (this.sock) this.sock.joinRoom(id, ticket); // kept for reconnects; sent now when open
    this.show('room');
  }

  /** leaveRoom leaves the room channel of a finished (or left) fight. */
  leaveRoom() {
    if (!this.room) return;
    // The connection forgets the room too, or its next reconnect would
    // join the finished room's channel again.
    if (this.joined.has('room:' + this.room.id)) this.sock.leaveRoom();
    else if (this.sock) this.sock.forgetRoom();
    this.room = null;
    this.system('room', 'You left the room channel.');
    if (this.tab === 'room') this.show('room'); // the placeholder says there is no room now
  }

  submit() {
    const text = this.input.value.trim();
    if (!text) return;
    let ok = false;
    if (this.tab === 'world') ok = !!this.sock && this.sock.post('world', text);
    else if (this.tab === 'room') {
      if (!this.room) { this.system('room', 'You are not in a room yet.'); return; }
      ok = !!this.sock && this.sock.post('room:' + this.room.id, text);
    } else {
      const to = this.toSel.value;
      if (!to) { this.system('private', 'Pick someone to write to (click a name in any chat).'); return; }
      ok = !!this.sock && this.sock.whisper(to, text);
    }
    if (ok) this.input.value = '';
    else this.system(this.tab, 'Chat is offline; the message was not sent.', 'err');
  }
}

function chatError(m) {
  switch (m.code) {
    case 'rate_limited': return 'Slow down: you are sending messages too fast.';
    case 'too_long': return 'That message is too long.';
    case 'offline': return 'That player is not connected to chat.';
    case 'forbidden': return 'Not allowed: ' + (m.message || '');
    case 'channel_busy': return 'The channel is busy; try again in a moment.';
    default: return 'Chat: ' + (m.message || m.code);
  }
}
