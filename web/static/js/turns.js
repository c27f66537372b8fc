// turns.js: the page of the turns game (examples/turns), built on the
// client library arena.js: log in as a guest, queue in the "turns"
// profile, join the room with the match's ticket, act on your turn, see
// the result. A reload puts the player back into its battle.

import { Arena } from './arena.js';
import { el, $, banner } from './ui.js';

const arena = new Arena();
const S = { lobby: null, room: null, state: null, me: '', endsAt: 0 };

function show(id) {
  for (const v of ['t-login', 't-queue', 't-battle', 't-result']) $('#' + v).hidden = v !== id;
}

function net(text, kind) { const n = $('#net'); n.textContent = text; n.className = 'pill ' + (kind || ''); }

function name(uuid) {
  const p = S.state && S.state.players.find((x) => x.uuid === uuid);
  return p ? p.username : uuid.slice(0, 8);
}

function render() {
  const st = S.state;
  if (!st) return;
  $('#t-round').textContent = st.round || 1;
  $('#t-turn-name').textContent = st.turn ? (st.turn === S.me ? 'your turn' : `${name(st.turn)}'s turn`) : 'starting…';
  $('#t-players').replaceChildren(...st.players.map((p) => el('li', { class: 't-player' + (p.uuid === st.turn ? ' turn' : '') + (p.out ? ' out' : ''), dataset: { uuid: p.uuid } },
    el('b', {}, p.username + (p.uuid === S.me ? ' (you)' : '')), ' ',
    el('span', { class: 'hp' }, `${p.hp} hp`), p.defending ? ' 🛡' : '', p.out ? ' · out' : '')));
  const targets = st.players.filter((p) => p.uuid !== S.me && !p.out);
  const sel = $('#t-target');
  const keep = sel.value;
  sel.replaceChildren(...targets.map((p) => el('option', { value: p.uuid }, p.username)));
  if (targets.some((p) => p.uuid === keep)) sel.value = keep;
  const mine = st.turn === S.me && !st.players.find((p) => p.uuid === S.me).out;
  for (const b of ['#t-attack', '#t-heal', '#t-defend']) $(b).disabled = !mine;
}

function logLine(text) {
  const log = $('#t-log');
  log.prepend(el('li', {}, text));
  while (log.children.length > 30) log.lastChild.remove();
}

function player(uuid) { return S.state.players.find((p) => p.uuid === uuid); }

function play(match) {
  show('t-battle');
  // A match for the room we are in: its process died and the dispatcher
  // placed it again (the game's state restored): connect to the new one.
  if (S.room) S.room.stop();
  S.room = arena.join(match);
  S.room.on('state', (m) => { S.state = m; S.me = m.you; S.endsAt = m.ends_at; render(); });
  S.room.on('turn', (m) => {
    if (!S.state) return;
    S.state.turn = m.uuid; S.state.round = m.round; S.endsAt = m.ends_at;
    const p = player(m.uuid);
    if (p) p.defending = false;
    render();
  });
  S.room.on('acted', (m) => {
    if (!S.state) return;
    const p = player(m.uuid);
    if (m.action === 'attack') { const t = player(m.target); if (t) t.hp = m.hp; logLine(`${name(m.uuid)} hits ${name(m.target)} for ${m.damage}`); }
    if (m.action === 'heal') { if (p) p.hp = m.hp; logLine(`${name(m.uuid)} heals ${m.healed}`); }
    if (m.action === 'defend') { if (p) p.defending = true; logLine(`${name(m.uuid)} defends`); }
    render();
  });
  S.room.on('turn_timeout', (m) => logLine(`${name(m.uuid)} ran out of time and loses the turn`));
  S.room.on('seated', (m) => {
    if (!S.state || player(m.uuid)) return;
    S.state.players.push({ uuid: m.uuid, username: m.username, hp: m.hp, out: false, defending: false });
    logLine(`${m.username} takes the empty seat`);
    render();
  });
  S.room.on('out', (m) => { const p = player(m.uuid); if (p) p.out = true; logLine(`${name(m.uuid)} is out`); render(); });
  S.room.on('result', (r) => showResult(r));
  S.room.on('refused', (e) => { banner(`The room refused you: ${e.message || e.code}`, { kind: 'info' }); toLobby(); });
  S.room.on('close', (c) => { if (c.retrying) net('reconnecting…', 'warn'); });
  S.room.on('open', () => net('in battle', 'ok'));
}

function act(action) {
  if (!S.room) return;
  const msg = { type: 'act', action };
  if (action === 'attack') msg.target = $('#t-target').value;
  S.room.send(msg);
}

function showResult(r) {
  show('t-result');
  for (const b of ['#t-attack', '#t-heal', '#t-defend']) $(b).disabled = true;
  const won = r.winner && r.winner === S.me;
  $('#t-result-title').textContent = won ? 'Victory!' : r.winner ? 'Defeated' : 'No winner';
  $('#t-result-rows').replaceChildren(...r.players.map((p) => {
    const d = p.new_score - p.old_score;
    return el('tr', { dataset: { uuid: p.uuid } }, el('td', {}, String(p.place)), el('td', {}, p.username),
      el('td', {}, `${p.old_score} → ${p.new_score}`), el('td', { class: 'delta' }, (d > 0 ? '+' : '') + d));
  }));
  // The server closes the room's connection after the result, and a Room
  // that heard its result does not reconnect: closing it here too raced
  // the server's close (two close frames, a console error).
  S.room = null;
}

function toLobby() {
  if (S.room) { S.room.stop(); S.room = null; }
  queue();
}

function queue() {
  show('t-queue');
  $('#t-queue-info').textContent = 'Queued in the "turns" profile.';
  if (S.lobby && S.lobby.open) S.lobby.queue({ profile: 'turns' });
}

function connect() {
  S.lobby = arena.lobby();
  S.lobby.on('open', () => { net('online', 'ok'); if (!$('#t-queue').hidden) S.lobby.queue({ profile: 'turns' }); });
  S.lobby.on('close', (c) => net(c.retrying ? 'reconnecting…' : 'offline', 'bad'));
  S.lobby.on('match', (m) => play(m));
  S.lobby.on('error', (e) => {
    if (e.code === 'already_queued') return;
    if (e.code === 'in_room') { setTimeout(() => { if (!$('#t-queue').hidden) S.lobby.queue({ profile: 'turns' }); }, 1000); return; }
    banner(`${e.code}: ${e.message || ''}`, { kind: 'info' });
  });
}

function tick() {
  if (!S.endsAt) return;
  $('#t-clock').textContent = `${Math.max(0, Math.ceil((S.endsAt - Date.now()) / 1000))} s`;
}

async function boot() {
  $('#t-attack').addEventListener('click', () => act('attack'));
  $('#t-heal').addEventListener('click', () => act('heal'));
  $('#t-defend').addEventListener('click', () => act('defend'));
  $('#t-again').addEventListener('click', () => queue());
  $('#t-name').value = `Guest-${Math.floor(1000 + Math.random() * 9000)}`;
  $('#t-login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const id = await arena.login($('#t-name').value.trim(), '');
      $('#who').textContent = id.username;
      connect();
      queue();
    } catch (ex) {
      banner(`Login failed: ${ex.message}`);
    }
  });
  setInterval(tick, 250);
  const me = await arena.resume().catch(() => null);
  if (!me) { net('ready', 'ok'); show('t-login'); return; }
  $('#who').textContent = me.username;
  connect();
  const saved = arena.savedMatch();
  if (saved) play(saved); else queue();
}

boot();
