// play.js: the play page. A guest logs in (POST /v1/login), opens the
// dispatcher's /v1/play socket, queues, is matched, fights on the fight
// server the match names, sees the result, and queues again; beside it the
// chat panel and the map view. Everything shown comes from the servers.

import * as api from './api.js';
import { Arena, backoff } from './arena.js';
import { el, $, $$, avatar, nameTag, isBot, toast, hideToast, banner } from './ui.js';
import { Fight } from './fight.js';
import { Chat } from './chat.js';
import { World } from './world.js';

// The client library (arena.js) keeps the token and the current match in
// this tab's sessionStorage.
const arena = new Arena();
const NAME_KEY = 'arena.name';
const PHOTO_KEY = 'arena.photo';
const AVATARS = [1, 2, 3, 4, 5, 6, 7, 8].map((i) => `/static/img/avatar-${i}.svg`);
/** RESTART_CODE is the /v1/play close code of a stopping or restarting dispatcher (1012, Service Restart). */
const RESTART_CODE = 1012;

const S = {
  token: '',
  me: null, // {uuid, username, photo, score, games, wins}
  cfg: null,
  play: null, // Socket to /v1/play
  playFailures: 0,
  replaced: false,
  restarting: false, // the dispatcher said it is restarting; reconnect and queue again
  wantQueue: false,
  inRoomRetries: 0,
  queuedAt: 0,
  fight: null,
  match: null,
  chat: null,
  world: null,
  view: '',
  lastScore: null,
  leftRoom: '', // the room this player quit mid-fight: a match for it (the room placed again) is not followed
};

// --- views ---

function show(view) {
  S.view = view;
  for (const v of ['login', 'lobby', 'queue', 'fight']) $('#view-' + v).hidden = v !== view;
  if (view === 'lobby') { refreshLobby(); refreshRecords(); }
  if (view === 'login') showRemembered();
}

function setNet(text, kind) {
  const n = $('#net');
  n.textContent = text;
  n.className = 'pill ' + (kind || '');
}

function renderMe() {
  const box = $('#me');
  if (!S.me) { box.hidden = true; return; }
  $('#me-avatar').replaceChildren(avatar(S.me));
  $('#me-name').textContent = S.me.username;
  $('#me-score').textContent = S.me.score !== undefined ? `· ${S.me.score}` : '';
  box.hidden = false;
  $('#my-id').textContent = S.me.uuid;
  $('#st-score').textContent = S.me.score ?? '–';
  $('#st-games').textContent = S.me.games ?? 0;
  $('#st-wins').textContent = S.me.wins ?? 0;
  const named = !!S.me.account;
  $('#account-named').hidden = !named;
  $('#account-form').hidden = named;
  if (named) $('#account-name').textContent = S.me.account;
}

// --- records: history, leaderboard, accounts ---

/** refreshRecords shows the player's recent matches and the leaderboard (from the player database). */
async function refreshRecords() {
  if (!S.me || !S.token) return;
  const me = S.me.uuid;
  try {
    const h = await arena.history(me, { limit: 10 });
    const list = (h && h.matches) || [];
    $('#history').replaceChildren(...(list.length ? list.map((m) => {
      const mine = (m.players || []).find((p) => p.uuid === me) || {};
      const d = (mine.new_score ?? 0) - (mine.old_score ?? 0);
      const others = (m.players || []).filter((p) => p.uuid !== me).map((p) => p.username).join(', ');
      return el('li', { dataset: { room: m.room } },
        el('b', {}, mine.place === 1 ? 'won' : `${ordinal(mine.place || 0)}`),
        el('span', { class: 'muted small' }, `vs ${others}`),
        el('span', { class: 'delta ' + (d > 0 ? 'up' : d < 0 ? 'down' : '') }, `${mine.old_score} → ${mine.new_score}`),
        el('span', { class: 'when muted small' }, new Date(m.ended).toLocaleTimeString()));
    }) : [el('li', { class: 'muted' }, 'No matches yet.')]));
  } catch { /* the lobby works without history */ }
  try {
    const b = await arena.leaderboard({ limit: 10 });
    const entries = (b && b.entries) || [];
    $('#board').replaceChildren(...entries.map((e) => el('li', { class: e.uuid === me ? 'me' : '', dataset: { uuid: e.uuid } },
      el('span', { class: 'place muted' }, `${e.place}.`),
      nameTag({ ...e }, me),
      el('span', { class: 'score' }, String(e.score)))));
    $('#board-me').textContent = b && b.me ? `You are ${ordinal(b.me.place)} of ${b.total} with ${b.me.score}.`
      : 'Play a match to get a place on the leaderboard.';
  } catch (e) {
    if (e.code === 'revoked_token') revokedSession(); // else the lobby works without the leaderboard
  }
}

const REMEMBER_KEY = 'arena.remember';
/** REVOKED_MSG is what a page whose token was revoked (revoked_token) says on the sign-in screen. */
const REVOKED_MSG = 'You were signed out here: this account\'s password was changed, or it signed out its other devices. Sign in again.';

/** remember keeps this browser's player (token and name) for the next visit, in localStorage. */
function remember() {
  if (!S.me || !S.token) return;
  try { localStorage.setItem(REMEMBER_KEY, JSON.stringify({ token: S.token, username: S.me.username })); } catch { /* private mode */ }
}

function remembered() {
  try { return JSON.parse(localStorage.getItem(REMEMBER_KEY) || 'null'); } catch { return null; }
}

function showRemembered() {
  const r = remembered();
  $('#remembered').hidden = !r;
  if (r) $('#continue-name').textContent = r.username;
}

/** resumeWith continues as the player of id (a login's answer) or of a remembered token. */
async function resumeWith(id) {
  arena.adopt(id);
  S.token = id.token;
  const rec = await api.me(S.token);
  S.me = rec;
  remember();
  banner('');
  startSession();
}

function setupAccounts() {
  $('#continue').addEventListener('click', async () => {
    const r = remembered();
    if (!r) return;
    try {
      await resumeWith({ token: r.token });
      renewToken();
    } catch (e) {
      if (e.unauthorized) {
        localStorage.removeItem(REMEMBER_KEY);
        showRemembered();
        banner(e.code === 'revoked_token' ? REVOKED_MSG
          : 'That player\'s session expired. Sign in with its account, or play as a new guest.', { kind: 'info' });
      } else banner('The arena server is unreachable. Try again.');
    }
  });
  $('#signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const err = $('#signin-error');
    err.hidden = true;
    try {
      const id = await arena.accountLogin($('#signin-account').value.trim(), $('#signin-password').value);
      $('#signin-password').value = '';
      await resumeWith(id);
    } catch (ex) {
      err.textContent = ex.code === 'bad_credentials' ? 'Wrong account or password.'
        : ex.code === 'rate_limited' ? 'Too many attempts; wait a minute.' : `Sign in failed: ${ex.message}`;
      err.hidden = false;
    }
  });
  $('#account-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const err = $('#account-error');
    err.hidden = true;
    try {
      const r = await arena.claimAccount($('#account-new').value.trim(), $('#account-password').value);
      $('#account-password').value = '';
      S.me = { ...S.me, account: r.account };
      renderMe();
      toast(`Saved: sign in as ${r.account} from any browser.`);
    } catch (ex) {
      const msgs = {
        bad_account: 'An account name is 3 to 32 of a-z, 0-9, _ . -',
        bad_password: 'A password is 8 to 128 characters.',
        account_taken: 'That account name is taken.',
        has_account: 'This player already has an account.',
      };
      err.textContent = msgs[ex.code] || `Could not save: ${ex.message}`;
      err.hidden = false;
    }
  });
  $('#password-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const err = $('#password-error');
    err.hidden = true;
    const btn = $('#password-save');
    btn.disabled = true;
    try {
      await withNewToken(() => arena.changePassword($('#password-current').value, $('#password-new').value));
      $('#password-current').value = '';
      $('#password-new').value = '';
      $('#password-box').open = false;
      toast('Password changed. Your other devices are signed out.');
    } catch (ex) {
      if (ex.code === 'revoked_token') return; // revokedSession has shown the sign-in screen
      const msgs = {
        bad_credentials: 'Wrong current password.',
        bad_password: 'A new password is 8 to 128 characters.',
        rate_limited: 'Too many attempts; wait a minute.',
        no_account: 'Save your player with an account first.',
      };
      err.textContent = msgs[ex.code] || `Could not change the password: ${ex.message}`;
      err.hidden = false;
    } finally {
      btn.disabled = false;
    }
  });
  $('#revoke-others').addEventListener('click', async () => {
    try {
      await withNewToken(() => arena.revokeOthers());
      toast('Your other devices are signed out.');
    } catch (ex) {
      if (ex.code !== 'revoked_token') toast(ex.code === 'rate_limited' ? 'Too many attempts; wait a minute.' : `Could not sign out the other devices: ${ex.message}`);
    }
  });
}

/**
 * withNewToken runs call, a request that revokes the player's tokens and
 * answers a fresh one (arena.changePassword, arena.revokeOthers), and
 * moves this page onto the fresh token: the /v1/play socket (opened with
 * the old token, which the dispatcher is about to refuse) is closed first
 * and opened again afterwards, the chat and the map view reconnect with
 * the new token, and the remembered token is replaced. A call refused
 * with revoked_token (another device revoked this page's token first)
 * ends the session.
 */
async function withNewToken(call) {
  if (S.play) { const p = S.play; S.play = null; p.stop(1000, 'new token'); }
  try {
    const id = await call();
    S.token = id.token;
    if (S.chat) S.chat.token = id.token;
    if (S.world) S.world.token = id.token;
    remember();
    return id;
  } catch (ex) {
    if (ex.code === 'revoked_token') revokedSession();
    throw ex;
  } finally {
    connectPlay();
  }
}

/** revokedSession ends a session whose token was revoked: the sign-in screen, open, with the account's name. */
function revokedSession() {
  const account = S.me && S.me.account;
  endSession(REVOKED_MSG, { forget: true });
  if (account) {
    $('#signin-box').open = true;
    $('#signin-account').value = account;
  }
}

/** renewToken trades the token for a fresh one (30 more days), so a returning player keeps its record. */
async function renewToken() {
  try {
    const id = await arena.refresh();
    S.token = id.token;
    if (S.chat) S.chat.token = id.token;
    if (S.world) S.world.token = id.token;
    remember();
  } catch (e) {
    if (e.code === 'revoked_token') revokedSession(); // else the old token keeps working until it expires
  }
}

async function refreshLobby() {
  try {
    const st = await api.request('GET', '/v1/stats');
    if (!st) return;
    const waiting = Object.values(st.queues || {}).reduce((a, b) => a + b, 0);
    $('#queue-stats').textContent = `${waiting} waiting · ${Math.round(st.matches_per_min || 0)} matches in the last minute` +
      (st.wait_s && st.wait_s.count ? ` · typical wait ${(st.wait_s.p50 || 0).toFixed(1)} s` : '');
  } catch { /* the lobby works without statistics */ }
}

// --- login ---

function setupLogin() {
  const name = $('#login-name');
  name.value = sessionStorage.getItem(NAME_KEY) || `Guest-${Math.floor(1000 + Math.random() * 9000)}`;
  let photo = sessionStorage.getItem(PHOTO_KEY) || AVATARS[Math.floor(Math.random() * AVATARS.length)];
  const box = $('#avatars');
  const pick = (src) => {
    photo = src;
    for (const b of $$('button', box)) b.setAttribute('aria-pressed', String(b.dataset.src === src));
  };
  box.replaceChildren(...AVATARS.map((src, i) => el('button', {
    type: 'button', 'aria-pressed': 'false', 'aria-label': `face ${i + 1}`, dataset: { src },
    onclick: () => pick(src),
  }, el('img', { src, alt: '', width: 40, height: 40 }))));
  pick(photo);
  $('#login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const err = $('#login-error');
    err.hidden = true;
    const btn = $('#guest');
    btn.disabled = true;
    try {
      const username = name.value.trim();
      // Photos are absolute http(s) URLs (docs/PROTOCOL.md).
      const id = await arena.login(username, new URL(photo, location.href).toString());
      sessionStorage.setItem(NAME_KEY, username);
      sessionStorage.setItem(PHOTO_KEY, photo);
      S.token = id.token;
      S.me = { uuid: id.uuid, username: id.username, photo: id.photo, score: id.score, games: 0, wins: 0 };
      remember();
      banner('');
      // "Play as guest" means play: go straight into the queue.
      S.wantQueue = true;
      startSession();
      api.me(S.token).then((rec) => { S.me = { ...S.me, ...rec }; renderMe(); }).catch(() => {});
    } catch (ex) {
      err.textContent = ex.unreachable ? 'The arena server is unreachable. Is it running?' : loginError(ex);
      err.hidden = false;
    } finally {
      btn.disabled = false;
    }
  });
}

function loginError(ex) {
  switch (ex.code) {
    case 'bad_username': return 'Pick a name of 1 to 32 characters (no < or >).';
    case 'rate_limited': return 'Too many logins from here; wait a few seconds.';
    case 'guest_login_disabled': return 'Guest play is switched off on this server.';
    default: return `Login failed: ${ex.message}`;
  }
}

// --- session: play socket, chat, map ---

async function startSession() {
  renderMe();
  $('#world-tab').disabled = false;
  if (S.wantQueue) { S.queuedAt = Date.now(); show('queue'); } else show('lobby');
  connectPlay();
  if (!S.cfg) {
    try { S.cfg = await api.config(); } catch { S.cfg = { chat: `ws://${location.hostname}:7600/ws` }; }
  }
  if (S.cfg.room_size) $('#room-size').textContent = S.cfg.room_size;
  if (S.token && !S.chat) {
    if (S.cfg.chat) {
      $('#chat-input').disabled = false;
      $('#chat-send').disabled = false;
      S.chat = new Chat({ root: $('#chat'), url: S.cfg.chat, token: S.token, me: S.me.uuid, onauthfail: checkToken });
    } else {
      $('#chat-status').textContent = 'no chat server';
    }
  }
}

/**
 * endSession closes every connection and shows the sign-in screen with
 * message. The remembered player is forgotten when there is no message (a
 * sign-out) or forget is set (its token was revoked).
 */
function endSession(message, { forget = !message } = {}) {
  S.wantQueue = false;
  if (S.play) { const p = S.play; S.play = null; p.stop(1000, 'logout'); }
  if (S.fight) { S.fight.stop(); S.fight = null; }
  if (S.chat) { S.chat.stop(); S.chat = null; }
  if (S.world) { S.world.stop(); S.world = null; }
  arena.logout();
  if (forget) { try { localStorage.removeItem(REMEMBER_KEY); } catch { /* private mode */ } }
  S.token = '';
  S.me = null;
  renderMe();
  selectTab('arena');
  $('#world-tab').disabled = true;
  $('#chat-input').disabled = true;
  $('#chat-send').disabled = true;
  $('#chat-log').replaceChildren();
  setNet('signed out', '');
  show('login');
  if (message) banner(message, { kind: 'info' });
}

/** checkToken asks /v1/me whether the token still works; a refused token ends the session. */
async function checkToken() {
  if (!S.token) return false;
  try {
    await api.me(S.token);
    return true;
  } catch (e) {
    if (e.code === 'revoked_token') {
      revokedSession();
      return false;
    }
    if (e.unauthorized) {
      endSession('Your session expired. Play as guest again to continue.');
      return false;
    }
    if (e.unreachable) banner('The arena server is unreachable. Retrying…');
    return true;
  }
}

function connectPlay() {
  if (!S.token || S.play) return;
  setNet('connecting…', 'warn');
  // arena.js's Lobby reconnects by itself after a drop (with backoff),
  // except after another tab took over ("replaced").
  const lobby = arena.lobby();
  lobby.on('open', () => {
    S.playFailures = 0;
    if (S.restarting) { S.restarting = false; if (S.wantQueue) toast('The arena server restarted; you are queued again.'); }
    setNet('online', 'ok');
    banner('');
    if (S.wantQueue && S.view !== 'fight') sendQueue();
  });
  lobby.on('message', (m) => { if (S.play === lobby) onPlay(m); });
  lobby.on('close', async ({ code, opened, retrying }) => {
    if (S.play !== lobby) return;
    if (code === RESTART_CODE) S.restarting = true;
    if (S.restarting) {
      // The dispatcher is restarting (docs/PROTOCOL.md): the lobby
      // reconnects by itself and a queued player queues again on open.
      setNet('restarting…', 'warn');
      if (!retrying && S.play === lobby) { S.play = null; setTimeout(connectPlay, 1000); }
      return;
    }
    setNet('offline', 'bad');
    if (S.replaced || !S.token) return;
    S.playFailures++;
    if (!opened && S.playFailures >= 2 && !(await checkToken())) return;
    if (S.playFailures >= 2) banner('Lost the connection to the arena server. Reconnecting…');
    if (S.view === 'queue') show('lobby');
    if (!retrying && S.play === lobby) S.play = null;
  });
  S.play = lobby;
}

/**
 * queueMessage is the queue request: with the lobby's mode, and its party
 * (the friends' player ids; docs/PROTOCOL.md "Parties") when one is given.
 */
function queueMessage() {
  const msg = { type: 'queue' };
  const mode = $('#mode').value.trim().toLowerCase();
  if (mode) msg.mode = mode;
  const party = $('#party').value.split(/[\s,;]+/).filter((id) => id && id !== (S.me && S.me.uuid));
  if (party.length) msg.party = party;
  return msg;
}

function sendQueue() {
  S.wantQueue = true;
  $('#lobby-note').textContent = '';
  if (!S.play || !S.play.open) { connectPlay(); return; }
  S.play.send(queueMessage());
  $('#party-wait').hidden = true;
  if (S.view !== 'queue') { S.queuedAt = Date.now(); show('queue'); }
}

/** showPartyWait lists the party members who have not queued yet. */
function showPartyWait(m) {
  const pending = Array.isArray(m.party_pending) ? m.party_pending : [];
  const w = $('#party-wait');
  w.textContent = pending.length
    ? `Waiting for ${pending.length} party member${pending.length > 1 ? 's' : ''} to queue: ${pending.map((id) => id.slice(0, 8)).join(', ')}`
    : '';
  w.hidden = !pending.length;
}

function onPlay(m) {
  switch (m.type) {
    case 'welcome':
      if (m.queue && m.queue.state === 'queued' && S.view !== 'fight') { S.queuedAt = Date.now(); show('queue'); }
      break;
    case 'queued':
    case 'party':
      S.inRoomRetries = 0;
      if (m.type === 'party') showPartyWait(m); else $('#party-wait').hidden = true;
      if (S.view !== 'queue' && S.view !== 'fight') { S.queuedAt = Date.now(); show('queue'); }
      break;
    case 'cancelled':
      S.wantQueue = false;
      if (S.view === 'queue') show('lobby');
      break;
    case 'match':
      // The room this player quit, placed again after its fight server
      // died: the dispatcher tells every member; a quitter stays out.
      if (m.room && m.room === S.leftRoom) break;
      S.wantQueue = false;
      // A match for the room this player is fighting in: its fight server
      // died and the room, restored from its saved state, runs on another.
      startFight(m, { rejoin: S.view === 'fight' && !!S.match && S.match.room === m.room });
      break;
    case 'room_failed':
      roomFailed(m);
      break;
    case 'error':
      onPlayError(m);
      break;
  }
}

function onPlayError(m) {
  switch (m.code) {
    case 'restarting':
      // A close with RESTART_CODE follows; keep the player's wish to queue.
      S.restarting = true;
      setNet('restarting…', 'warn');
      break;
    case 'room_failed':
      roomFailed(m);
      break;
    case 'replaced':
      S.replaced = true;
      setNet('in another tab', 'warn');
      banner('You are playing in another tab or window.', {
        action: 'Play here', onAction: () => { S.replaced = false; banner(''); if (S.play) S.play.stop(); S.play = null; connectPlay(); },
      });
      if (S.view === 'queue') show('lobby');
      break;
    case 'in_room':
      // The last room's end has not reached the dispatcher yet: retry.
      if (S.inRoomRetries++ < 15) setTimeout(() => { if (S.wantQueue) sendQueue(); }, 1000);
      else { S.wantQueue = false; show('lobby'); toast('Your last match is still running.'); }
      break;
    case 'already_queued':
      if (S.view !== 'queue' && S.view !== 'fight') { S.queuedAt = Date.now(); show('queue'); }
      break;
    case 'bad_party': case 'party_too_large': case 'bad_mode': case 'unknown_profile':
      S.wantQueue = false;
      show('lobby');
      toast(m.code === 'bad_mode' || m.code === 'unknown_profile'
        ? 'No such mode: leave it empty, or name one of this arena\'s profiles.'
        : m.code === 'party_too_large'
          ? `A party has at most ${(S.cfg && S.cfg.room_size) || 3} players, you included.`
          : "Check your friends' player ids: letters, digits, - and _, separated by commas or spaces.", 6000);
      break;
    case 'no_capacity':
      toast('No fight server could take the room yet; you are still queued.');
      break;
    case 'revoked_token':
      revokedSession();
      break;
    case 'expired_token': case 'bad_token': case 'no_token': case 'unauthorized':
      endSession('Your session expired. Play as guest again to continue.');
      break;
    default:
      toast('Dispatcher: ' + (m.message || m.code));
      if (S.view === 'queue') { S.wantQueue = false; show('lobby'); }
  }
}

function roomFailed(m) {
  if (S.fight && (!m.room || S.match && S.match.room === m.room)) {
    S.fight.stop();
    S.fight = null;
    if (S.chat) S.chat.leaveRoom();
  }
  toast(m.message || 'The fight server of your room stopped. Queue again.', 5000);
  show('lobby');
}

// --- fight ---

function startFight(m, { rejoin = false } = {}) {
  if (S.fight) S.fight.stop();
  S.match = m;
  $('#roster').dataset.room = m.room || '';
  S.lastScore = S.me ? S.me.score : null;
  $('#result').hidden = true;
  show('fight');
  selectTab('arena');
  const players = Array.isArray(m.players) ? m.players : [];
  const others = players.filter((p) => p.uuid !== S.me.uuid).map((p) => p.username);
  toast(rejoin ? 'Back in your fight.' : `Match found: you vs ${others.join(' and ')}`);
  if (S.chat) S.chat.joinRoom(m.room, m.ticket, players);
  S.fight = new Fight({
    arena,
    canvas: $('#fight-canvas'), match: m, me: S.me.uuid,
    onchange: renderRoster,
    onresult: showResult,
    onend: (e) => {
      S.fight && S.fight.stop();
      S.fight = null;
      if (S.chat) S.chat.leaveRoom();
      toast(fightError(e), 5000);
      show('lobby');
    },
    onsystem: (line) => S.chat && S.chat.system('room', line),
  });
  renderRoster();
  $('#fight-canvas').focus({ preventScroll: true });
}

function fightError(e) {
  switch (e.code) {
    case 'room_over': return 'That room has already ended.';
    case 'expired_ticket': return 'The room ticket expired.';
    case 'replaced': return 'You joined this fight from another tab.';
    case 'server_shutdown': return 'The fight server is stopping; queue again.';
    case 'rate_limited': return 'Too many actions: you were removed from the fight.';
    case 'unreachable': return 'The fight server cannot be reached.';
    default: return 'The fight ended: ' + (e.message || e.code);
  }
}

function renderRoster() {
  const f = S.fight;
  if (!f) return;
  const cards = f.order.map((id) => {
    const p = f.players.get(id);
    const out = p.status === 'out' || p.status === 'left';
    const hp = Math.max(0, Math.min(100, p.hp));
    return el('div', { class: 'fighter' + (id === S.me.uuid ? ' me' : '') + (out ? ' out' : ''), dataset: { uuid: id } },
      avatar(p, ''),
      el('div', { class: 'who' },
        nameTag(p, S.me.uuid),
        el('div', { class: 'sc' }, `rating ${p.score ?? '?'} · ${statusText(p)}`),
        el('div', { class: 'hpbar' + (hp <= 40 ? ' low' : ''), title: `${hp} hp` }, hpFill(hp))));
  });
  $('#roster').replaceChildren(...cards);
}

function hpFill(hp) {
  const i = el('i');
  i.style.width = hp + '%';
  return i;
}

function statusText(p) {
  switch (p.status) {
    case 'pending': return 'joining…';
    case 'away': return 'away';
    case 'out': return 'out';
    case 'left': return 'left';
    default: return `${p.hp} hp`;
  }
}

function showResult(r) {
  const me = S.me.uuid;
  const players = Array.isArray(r.players) ? r.players : [];
  const mine = players.find((p) => p.uuid === me);
  const won = r.winner && r.winner === me;
  const title = $('#result-title');
  title.textContent = won ? 'Victory!' : r.winner ? 'Defeated' : 'No winner';
  title.className = 'result-title' + (won ? ' win' : '');
  const winner = players.find((p) => p.uuid === r.winner);
  $('#result-sub').textContent = won ? 'You are the last one standing.'
    : winner ? `${winner.username} won the room.` : reasonText(r.reason);
  const f = S.fight;
  if (r.pending) $('#result-sub').textContent += ' Ratings pending: they are saved to your record as soon as the database answers.';
  $('#result-rows').replaceChildren(...players.map((p) => {
    const d = (p.new_score ?? 0) - (p.old_score ?? 0);
    const info = f && f.players.get(p.uuid);
    return el('tr', { dataset: { uuid: p.uuid } },
      el('td', {}, ordinal(p.place)),
      el('td', {}, nameTag({ ...p, bot: info && info.bot }, me)),
      r.pending ? el('td', { class: 'muted' }, 'pending') : el('td', { class: 'muted' }, `${p.old_score} → ${p.new_score}`),
      r.pending ? el('td', {}, '') : el('td', { class: 'delta ' + (d > 0 ? 'up' : d < 0 ? 'down' : '') }, (d > 0 ? '+' : '') + d));
  }));
  $('#result').hidden = false;
  if (mine && !r.pending) {
    S.me.score = mine.new_score;
    S.me.games = (S.me.games || 0) + 1;
    if (won) S.me.wins = (S.me.wins || 0) + 1;
    const d = mine.new_score - mine.old_score;
    $('#last-result').textContent = `Last fight: ${won ? 'won' : 'lost'}, ${d >= 0 ? '+' : ''}${d} rating.`;
    renderMe();
  }
  api.me(S.token).then((rec) => { S.me = { ...S.me, ...rec }; renderMe(); }).catch(() => {});
  $('#again').focus({ preventScroll: true });
}

function reasonText(reason) {
  switch (reason) {
    case 'timeout': return 'Time ran out.';
    case 'abandoned': return 'Everyone left.';
    case 'no_show': return 'Nobody joined the room.';
    case 'shutdown': return 'The fight server stopped.';
    default: return '';
  }
}

function ordinal(n) {
  const s = ['th', 'st', 'nd', 'rd'], v = n % 100;
  return n + (s[(v - 20) % 10] || s[v] || s[0]);
}

/**
 * leaveFight closes the fight view: after its result (Play again, Back to
 * lobby) or in the middle of it (Leave the fight). The match toast goes,
 * the chat leaves the room's channel, and the lobby says what happened.
 */
function leaveFight(thenQueue) {
  let left = false;
  if (S.fight) {
    left = !S.fight.over;
    if (left) { S.fight.leave(); S.leftRoom = S.match ? S.match.room : ''; }
    S.fight.stop();
    S.fight = null;
  }
  hideToast();
  if (S.chat) S.chat.leaveRoom();
  $('#result').hidden = true;
  $('#lobby-note').textContent = left ? 'You left the fight: the others play on without you.' : '';
  if (thenQueue) { S.inRoomRetries = 0; S.queuedAt = Date.now(); sendQueue(); } else show('lobby');
}

// --- tabs ---

function selectTab(tab) {
  for (const b of $$('#stage-tabs [data-tab]')) b.setAttribute('aria-selected', String(b.dataset.tab === tab));
  $('#tab-arena').hidden = tab !== 'arena';
  $('#tab-world').hidden = tab !== 'world';
  if (tab === 'world' && !S.world && S.token) {
    S.world = new World({ canvas: $('#world-canvas'), head: $('#world-head'), token: S.token, me: S.me.uuid, onauthfail: checkToken });
  }
}

// --- start ---

function tickQueueTimer() {
  if (S.view === 'queue') $('#queue-time').textContent = `${Math.floor((Date.now() - S.queuedAt) / 1000)}s`;
}

async function boot() {
  setupLogin();
  setupAccounts();
  for (const b of $$('#stage-tabs [data-tab]')) b.addEventListener('click', () => { if (!b.disabled) selectTab(b.dataset.tab); });
  $('#queue').addEventListener('click', () => { S.inRoomRetries = 0; S.queuedAt = Date.now(); sendQueue(); });
  $('#copy-id').addEventListener('click', async () => {
    if (!S.me) return;
    try {
      await navigator.clipboard.writeText(S.me.uuid);
      toast('Your player id is copied.');
    } catch {
      getSelection().selectAllChildren($('#my-id')); // select it for a manual copy
    }
  });
  $('#cancel').addEventListener('click', () => {
    S.wantQueue = false;
    if (S.play && S.play.open) S.play.send({ type: 'cancel' });
    show('lobby');
  });
  $('#again').addEventListener('click', () => leaveFight(true));
  $('#to-lobby').addEventListener('click', () => leaveFight(false));
  $('#leave').addEventListener('click', () => leaveFight(false));
  // Buttons for touch screens (and anyone without a keyboard at hand).
  $('#attack-btn').addEventListener('click', () => { if (S.fight) S.fight.attack(S.fight.aimed() || S.fight.nearest()); });
  $('#blink-btn').addEventListener('click', () => { if (S.fight) S.fight.blink(); });
  $('#logout').addEventListener('click', () => endSession(''));
  setInterval(tickQueueTimer, 250);
  setInterval(() => { if (S.view === 'lobby') { refreshLobby(); refreshRecords(); } }, 5000);

  const token = arena.token;
  if (!token) { setNet('ready', 'ok'); show('login'); return; }
  // Resume this tab's session if its token still works.
  for (let attempt = 0; ; attempt++) {
    try {
      const rec = await api.me(token);
      S.token = token;
      S.me = rec;
      remember();
      startSession();
      renewToken();
      // A reload in the middle of a fight goes back into it: the game
      // server keeps the seat for the rejoin grace.
      const saved = arena.savedMatch();
      if (saved) startFight(saved, { rejoin: true });
      return;
    } catch (e) {
      if (e.unauthorized) {
        arena.logout();
        show('login');
        setNet('ready', 'ok');
        if (e.code === 'revoked_token') {
          try { localStorage.removeItem(REMEMBER_KEY); } catch { /* private mode */ }
          showRemembered();
          $('#signin-box').open = true;
          banner(REVOKED_MSG, { kind: 'info' });
        } else banner('Your session expired. Play as guest again to continue.', { kind: 'info' });
        return;
      }
      setNet('offline', 'bad');
      show('login');
      banner('The arena server is unreachable. Retrying…');
      await new Promise((r) => setTimeout(r, backoff(attempt)));
    }
  }
}

boot();
