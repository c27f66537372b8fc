// arena.js: arena's browser client library (docs/client.md). One ES module
// with no dependencies: log in, queue (with a party, a profile and search
// fields), get the match pushed, join the room with its ticket, send and
// receive, rejoin with backoff after a dropped connection (and after a page
// reload), chat, and maps. Every server message is one JSON object with a
// "type"; every error is {"type":"error","code","message"}.
//
//   import { Arena } from '/static/js/arena.js';
//   const arena = new Arena();
//   await arena.login('Ada', 'https://example.com/ada.png');
//   const lobby = arena.lobby();
//   lobby.on('match', (m) => {
//     const room = arena.join(m);
//     room.on('state', (s) => draw(s));
//     room.on('result', (r) => show(r));
//     room.send({ type: 'event', event: 'move_to', tx: 10, ty: 20 });
//   });
//   lobby.queue({ profile: 'default' });

import { request, ApiError } from './api.js';

export { ApiError };

/**
 * @typedef {object} Identity a player's identity from POST /v1/login
 * @property {string} uuid
 * @property {string} username
 * @property {string} photo
 * @property {number} score the player's rating
 * @property {string} token the HMAC-signed player token
 */

/**
 * @typedef {object} Match the dispatcher's match message
 * @property {'match'} type
 * @property {string} room the room id
 * @property {string} fight the game server's ws://HOST:PORT/ws
 * @property {string} ticket the room ticket (bound to the player, the room and an expiry)
 * @property {{uuid:string, username:string, photo:string, score:number, bot?:boolean}[]} players
 * @property {string} [profile]
 */

/**
 * @typedef {object} QueueOptions
 * @property {string} [profile] the matchmaking profile ("default" when absent)
 * @property {string[]} [party] the other members' uuids (each member queues with the same set)
 * @property {{doubles?:Object<string,number>, strings?:Object<string,string>, tags?:string[]}} [searchFields]
 */

/**
 * @typedef {object} CloseInfo
 * @property {number} code the WebSocket close code
 * @property {string} reason
 * @property {boolean} opened whether the socket had opened
 * @property {boolean} retrying whether the connection will try again
 */

/** Error codes with which a game server refuses a room connection for good. */
export const ROOM_REFUSALS = new Set(['bad_ticket', 'expired_ticket', 'wrong_kind', 'wrong_room', 'not_member',
  'room_over', 'left_room', 'replaced', 'rate_limited', 'server_shutdown']);

/** backoff returns the n-th retry delay in ms: 0.5 s doubling to 10 s, jittered. */
export function backoff(n) {
  const base = Math.min(10000, 500 * 2 ** Math.min(n, 5));
  return base / 2 + Math.random() * base / 2;
}

/** Emitter is a tiny event emitter: on(type, fn) returns an unsubscribe function. */
export class Emitter {
  constructor() { this.handlers = new Map(); }
  /**
   * @param {string} type a message type ("match", "state", ...), "message" for every message, or a connection event ("open", "close", "giveup")
   * @param {(msg: any) => void} fn
   * @returns {() => void} unsubscribe
   */
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return () => this.handlers.get(type).delete(fn);
  }
  emit(type, msg) {
    for (const fn of [...(this.handlers.get(type) || [])]) {
      try { fn(msg); } catch (e) { setTimeout(() => { throw e; }); }
    }
  }
}

/**
 * Connection is a WebSocket carrying one JSON object per text frame. It
 * emits "open", "message" (every object), the object's "type", and
 * "close" ({code, reason, opened, retrying}); with retry it reconnects
 * after a drop with backoff until stop() or shouldRetry says no, then
 * emits "giveup".
 */
export class Connection extends Emitter {
  /**
   * @param {string|(() => string)} url the ws:// URL (or a function giving it for each attempt)
   * @param {object} [o]
   * @param {boolean} [o.retry=true] reconnect after a drop
   * @param {number} [o.maxRetries=Infinity] attempts in a row without an open
   * @param {(info: CloseInfo, failures: number) => boolean} [o.shouldRetry]
   */
  constructor(url, { retry = true, maxRetries = Infinity, shouldRetry } = {}) {
    super();
    this.url = url;
    this.retry = retry;
    this.maxRetries = maxRetries;
    this.shouldRetry = shouldRetry || (() => true);
    this.failures = 0;
    this.stopped = false;
    this.ws = null;
    this.connect();
  }
  /** open reports whether the socket is open now. */
  get open() { return !!this.ws && this.ws.readyState === WebSocket.OPEN; }
  connect() {
    if (this.stopped) return;
    const url = typeof this.url === 'function' ? this.url() : this.url;
    const ws = new WebSocket(url);
    this.ws = ws;
    let opened = false;
    ws.addEventListener('open', () => { opened = true; this.failures = 0; this.emit('open'); });
    ws.addEventListener('message', (ev) => {
      if (typeof ev.data !== 'string') return;
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (!m || typeof m !== 'object' || typeof m.type !== 'string') return;
      this.emit('message', m);
      // A message whose type is "message" (a chat line) was just emitted
      // under "message": once, or a listener of all messages sees it twice.
      if (m.type !== 'message') this.emit(m.type, m);
    });
    ws.addEventListener('error', () => {});
    ws.addEventListener('close', (ev) => {
      if (this.ws !== ws) return;
      const info = { code: ev.code, reason: ev.reason, opened, retrying: false };
      if (!opened) this.failures++;
      info.retrying = this.retry && !this.stopped && this.failures < this.maxRetries && this.shouldRetry(info, this.failures);
      this.emit('close', info);
      if (info.retrying) {
        this.timer = setTimeout(() => this.connect(), backoff(this.failures));
      } else if (!this.stopped) {
        this.stopped = true;
        this.emit('giveup', info);
      }
    });
  }
  /** send sends obj as JSON; false when the socket is not open. */
  send(obj) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(obj));
    return true;
  }
  /** stop closes the connection for good. */
  stop(code = 1000, reason = 'bye') {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) { try { this.ws.close(code, reason); } catch { /* closed */ } }
  }
}

/**
 * Lobby is the dispatcher's /v1/play socket: queue, cancel, and the match
 * pushed when the player is matched. It reconnects after a drop. Events:
 * "welcome", "queued", "party", "match", "cancelled", "expired", "error"
 * (e.g. {code: "in_room"}), "open", "close".
 */
export class Lobby extends Connection {
  /** @param {Arena} arena */
  constructor(arena) {
    const proto = arena.base.startsWith('https:') ? 'wss:' : 'ws:';
    super(() => `${proto}//${new URL(arena.base).host}/v1/play?token=${encodeURIComponent(arena.token)}`, {
      shouldRetry: () => !this.replaced && !this.revoked && !!arena.token,
    });
    /** replaced is set when another tab of the same player took over; the lobby then stops. */
    this.replaced = false;
    /** revoked is set when the player's token was revoked (revoked_token); the lobby then stops. */
    this.revoked = false;
    this.on('error', (m) => {
      if (m.code === 'replaced') this.replaced = true;
      if (m.code === 'revoked_token') this.revoked = true;
    });
    this.on('match', (m) => arena.saveMatch(m));
  }
  /**
   * queue asks to be matched.
   * @param {QueueOptions} [o]
   */
  queue({ profile, party, searchFields } = {}) {
    const msg = { type: 'queue' };
    if (profile) msg.profile = profile;
    if (party && party.length) msg.party = party;
    if (searchFields) msg.search_fields = searchFields;
    return this.send(msg);
  }
  /** cancel leaves the queue. */
  cancel() { return this.send({ type: 'cancel' }); }
  /** status asks for {"type":"status","queue":{...}}. */
  status() { return this.send({ type: 'status' }); }
}

/**
 * Room is a connection to a game server's room with the match's ticket. It
 * rejoins after a drop (with backoff, while the room's rejoin grace lasts:
 * about 30 s) until the room's "result" arrives or the server refuses the
 * ticket (an "error" with a code in ROOM_REFUSALS). Events: every server
 * message type ("state", "result", "error", the game's own), "open",
 * "close", "refused" (the refusal error), "giveup".
 */
export class Room extends Connection {
  /**
   * @param {Arena} arena
   * @param {Match} match
   * @param {object} [o]
   * @param {number} [o.maxRetries=6] rejoin attempts in a row
   */
  constructor(arena, match, { maxRetries = 6 } = {}) {
    super(() => {
      const u = new URL(match.fight, arena.base);
      u.searchParams.set('ticket', match.ticket);
      return u.toString();
    }, { maxRetries, shouldRetry: () => !this.over && !this.refused });
    this.match = match;
    this.over = false;
    this.refused = null;
    this.on('result', () => { this.over = true; arena.clearMatch(match.room); });
    this.on('error', (m) => {
      if (ROOM_REFUSALS.has(m.code)) {
        this.refused = m;
        if (m.code !== 'replaced') arena.clearMatch(match.room);
        this.emit('refused', m);
      }
    });
  }
  /** leave gives up the room for good (the server closes the socket). */
  leave() {
    this.over = true;
    this.send({ type: 'leave' });
  }
}

/**
 * Chat is a connection to the chat server (docs/chat.md) with the player
 * token; it reconnects after a drop and rejoins the room channel it was
 * in. Events: "welcome", "joined", "message", "private", "history",
 * "online", "error", "open", "close".
 */
export class Chat extends Connection {
  /**
   * @param {string} url the chat server's ws:// URL
   * @param {string} token the player token
   */
  constructor(url, token) {
    super(() => { const u = new URL(url); u.searchParams.set('token', token); return u.toString(); });
    this.room = null;
    this.refs = 0;
    this.on('welcome', () => { if (this.room) this.joinRoom(this.room.id, this.room.ticket); });
  }
  send(obj) { obj.ref = 'r' + (++this.refs); return super.send(obj); }
  /** joinRoom joins room:ID with the room's ticket (again after reconnects). */
  joinRoom(id, ticket) { this.room = { id, ticket }; return this.send({ type: 'join', channel: 'room:' + id, token: ticket }); }
  /** leaveRoom leaves the room channel (and forgets it: reconnects do not join it again). */
  leaveRoom() { const r = this.room; this.room = null; return r ? this.send({ type: 'leave', channel: 'room:' + r.id }) : false; }
  /** forgetRoom stops joining the room channel on reconnects, without a leave (for a channel never joined). */
  forgetRoom() { this.room = null; }
  /** post sends text to a channel ("world" or "room:ID"). */
  post(channel, text) { return this.send({ type: 'post', channel, text }); }
  /** whisper sends text privately to a player's uuid. */
  whisper(to, text) { return this.send({ type: 'private', to, text }); }
}

/**
 * MapSession is a connection to a map server with a map ticket
 * (docs/maps.md); a "switch" answer moves it to the next map server with
 * the new ticket. Events: "welcome", "enter", "positions", "leave",
 * "switch", "error", "open", "close".
 */
export class MapSession extends Connection {
  /** @param {{addr:string, ticket:string}} entry the answer of Arena.enterMap */
  constructor(entry) {
    // The URL is built for every attempt from the latest entry (a switch
    // replaces it); the holder exists before super() connects.
    const cur = { entry };
    super(() => { const u = new URL(cur.entry.addr); u.searchParams.set('ticket', cur.entry.ticket); return u.toString(); },
      { shouldRetry: (info) => info.reason === 'switched' });
    this.cur = cur;
    this.on('switch', (m) => { cur.entry = { addr: m.addr, ticket: m.ticket, map: m.map }; });
  }
  /** entry is where the session is (or goes next): {addr, ticket, map}. */
  get entry() { return this.cur.entry; }
  /** move walks toward x, y. */
  move(x, y) { return this.send({ type: 'move', x, y }); }
}

const TOKEN_KEY = 'arena.token';
const MATCH_KEY = 'arena.match';

/**
 * Arena is the client: the player's identity and the ways to reach the
 * dispatcher and the servers it names. The token and the current match are
 * kept in storage (sessionStorage by default: one player per tab), so a
 * reloaded page resumes the identity (resume) and rejoins the room it was
 * in (savedMatch, then join).
 */
export class Arena {
  /**
   * @param {object} [o]
   * @param {string} [o.base] the dispatcher's http(s) URL (default: this page's origin)
   * @param {Storage} [o.storage] where the token and the match are kept
   */
  constructor({ base = location.origin, storage = sessionStorage } = {}) {
    this.base = base.replace(/\/$/, '');
    this.storage = storage;
    this.token = storage.getItem(TOKEN_KEY) || '';
    /** @type {Identity|null} */
    this.identity = null;
  }
  api(method, path, o = {}) { return request(method, this.base + path, o); }
  /**
   * login asks for a guest identity and keeps its token.
   * @returns {Promise<Identity>}
   */
  async login(username, photo) {
    return this.adopt(await this.api('POST', '/v1/login', { body: { username, photo } }));
  }
  /**
   * resume checks the kept token (GET /v1/me): the player's record, or null
   * when there is no token or it was refused (then it is forgotten).
   */
  async resume() {
    if (!this.token) return null;
    try {
      this.identity = await this.me();
      return this.identity;
    } catch (e) {
      if (e.unauthorized) { this.logout(); return null; }
      throw e;
    }
  }
  /**
   * adopt keeps token (a login's, a refresh's) as the player's identity.
   * @param {Identity} id an answer of /v1/login, /v1/accounts/login or /v1/refresh
   */
  adopt(id) {
    this.token = id.token;
    this.identity = id;
    this.storage.setItem(TOKEN_KEY, id.token);
    return id;
  }
  /** refresh renews the kept token (POST /v1/refresh: 30 more days) and keeps the new one. */
  async refresh() { return this.adopt(await this.api('POST', '/v1/refresh', { token: this.token })); }
  /** accountLogin logs in to a named account (from any browser) and keeps its token. */
  async accountLogin(account, password) {
    return this.adopt(await this.api('POST', '/v1/accounts/login', { body: { account, password } }));
  }
  /** claimAccount gives this player a login name and a password (POST /v1/accounts). */
  claimAccount(account, password) { return this.api('POST', '/v1/accounts', { token: this.token, body: { account, password } }); }
  /**
   * changePassword changes a named account's password (POST
   * /v1/accounts/password) and keeps the fresh token it answers: every
   * older token of the player, this one's included, stops working.
   */
  async changePassword(password, newPassword) {
    return this.adopt(await this.api('POST', '/v1/accounts/password', { token: this.token, body: { password, new_password: newPassword } }));
  }
  /** revokeOthers signs the player out everywhere else (POST /v1/accounts/revoke) and keeps the fresh token it answers. */
  async revokeOthers() { return this.adopt(await this.api('POST', '/v1/accounts/revoke', { token: this.token })); }
  /** history returns a page of a player's matches ({matches, next}). */
  history(uuid, { limit = 10, after = '' } = {}) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (after) q.set('after', after);
    return this.api('GET', `/v1/players/${encodeURIComponent(uuid)}/matches?${q}`);
  }
  /** leaderboard returns the top of mode's leaderboard and this player's place ({entries, me, total}). */
  leaderboard({ mode = '', limit = 10 } = {}) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (mode) q.set('mode', mode);
    return this.api('GET', `/v1/leaderboard?${q}`, { token: this.token });
  }
  /** logout forgets the token and the match. */
  logout() {
    this.token = '';
    this.identity = null;
    this.storage.removeItem(TOKEN_KEY);
    this.storage.removeItem(MATCH_KEY);
  }
  /** me returns the player's record {uuid, username, photo, score, games, wins}. */
  me() { return this.api('GET', '/v1/me', { token: this.token }); }
  /** config returns where the other servers are ({chat, room_size, ...}). */
  config() { return this.api('GET', '/v1/config'); }
  /** maps lists the world ({start, maps}). */
  maps() { return this.api('GET', '/v1/maps'); }
  /** enterMap returns {map, addr, ticket} for map id (or "start"). */
  enterMap(id) { return this.api('GET', `/v1/maps/${encodeURIComponent(id || 'start')}/enter`, { token: this.token }); }
  /** lobby opens the /v1/play socket. */
  lobby() { return new Lobby(this); }
  /**
   * join connects to the match's room (and keeps the match for a reload).
   * @param {Match} match
   * @returns {Room}
   */
  join(match, o) { this.saveMatch(match); return new Room(this, match, o); }
  /** chat connects to the chat server at url. */
  chat(url) { return new Chat(url, this.token); }
  /** map connects to the map server of an enterMap answer. */
  map(entry) { return new MapSession(entry); }
  /** saveMatch keeps m as this tab's current match. */
  saveMatch(m) { try { this.storage.setItem(MATCH_KEY, JSON.stringify(m)); } catch { /* full */ } }
  /** clearMatch forgets the current match (only room's, when given). */
  clearMatch(room) {
    const m = this.savedMatch();
    if (!room || (m && m.room === room)) this.storage.removeItem(MATCH_KEY);
  }
  /**
   * savedMatch returns the match this tab was playing when it was reloaded,
   * or null (none, or its ticket has expired).
   * @returns {Match|null}
   */
  savedMatch() {
    let m;
    try { m = JSON.parse(this.storage.getItem(MATCH_KEY) || 'null'); } catch { m = null; }
    if (!m || typeof m.fight !== 'string' || typeof m.ticket !== 'string' || typeof m.room !== 'string') return null;
    const exp = ticketExpiry(m.ticket);
    if (exp && exp * 1000 < Date.now()) { this.storage.removeItem(MATCH_KEY); return null; }
    return m;
  }
}

/** ticketExpiry reads a token's exp (unix seconds) without verifying it, or 0. */
export function ticketExpiry(token) {
  try {
    const body = String(token).split('.')[0].replace(/-/g, '+').replace(/_/g, '/');
    const c = JSON.parse(atob(body + '='.repeat((4 - body.length % 4) % 4)));
    return Number(c.exp) || 0;
  } catch {
    return 0;
  }
}
