// The client library (web/static/js/arena.js) on its own, with no page of
// arena's: three players in one browser page log in, queue, are matched,
// join the room with their tickets, walk and fight to a result with
// ratings changed; one player's dropped connection rejoins by itself;
// then two of them chat (world and private) and one enters a map.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, noBots, BASE } from './lib.mjs';

test('arena.js alone: login, queue, match, room, rejoin after a drop, result', { timeout: 120_000 }, async () => {
  await noBots();
  const browser = await launch();
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // Any page of the arena's origin: the module is loaded by itself.
    await page.goto(BASE + '/healthz');
    const out = await page.evaluate(async () => {
      const { Arena } = await import('/static/js/arena.js');
      const memStorage = () => { const m = new Map(); return { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => m.set(k, String(v)), removeItem: (k) => m.delete(k) }; };
      const until = (em, type, pred = () => true, ms = 30000) => new Promise((ok, fail) => {
        const t = setTimeout(() => { off(); fail(new Error('timed out waiting for ' + type)); }, ms);
        const off = em.on(type, (m) => { if (pred(m)) { clearTimeout(t); off(); ok(m); } });
      });
      const log = [];
      const players = [];
      for (const name of ['Ann', 'Ben', 'Cat']) {
        const arena = new Arena({ storage: memStorage() });
        const id = await arena.login(`${name}-${Math.floor(Math.random() * 1000)}`, '');
        const lobby = arena.lobby();
        const matched = until(lobby, 'match');
        await until(lobby, 'open');
        lobby.queue({ profile: 'default' });
        await until(lobby, 'queued');
        players.push({ arena, id, lobby, matched });
      }
      const matches = await Promise.all(players.map((p) => p.matched));
      log.push('matched ' + matches.map((m) => m.room).join(','));
      if (new Set(matches.map((m) => m.room)).size !== 1) throw new Error('not one room');
      const states = [];
      for (let i = 0; i < 3; i++) {
        const p = players[i];
        p.room = p.arena.join(matches[i]);
        states.push(await until(p.room, 'state'));
      }
      // The saved match is what a reload would rejoin.
      if (players[0].arena.savedMatch().room !== matches[0].room) throw new Error('match not kept');
      // A drop: the library rejoins with the same ticket by itself.
      const rejoined = until(players[1].room, 'state', (s) => s.rejoin === true);
      players[1].room.ws.close();
      await rejoined;
      log.push('rejoined');
      // Ann walks next to each opponent and attacks until it is out.
      const a = players[0];
      const st = states[0];
      const pos = Object.fromEntries(st.players.map((p) => [p.uuid, p]));
      let me = pos[a.id.uuid];
      const result = until(a.room, 'result', () => true, 90000);
      for (const victim of [players[2], players[1]]) {
        const v = pos[victim.id.uuid];
        const tx = v.x, ty = v.y + (v.y > 300 ? -60 : 60);
        a.room.send({ type: 'event', event: 'move_to', tx, ty });
        const walk = Math.hypot(tx - me.x, ty - me.y) / st.move_speed * 1000;
        me = { x: tx, y: ty };
        await new Promise((r) => setTimeout(r, walk + 200));
        for (let hp = 100; hp > 0;) {
          const hit = until(a.room, 'hp', (m) => m.uuid === victim.id.uuid);
          a.room.send({ type: 'event', event: 'attack', target: victim.id.uuid, ball_uuid: 'b' + hp, x: me.x, y: me.y, angle: 0 });
          hp = (await hit).hp;
          await new Promise((r) => setTimeout(r, st.attack_cooldown_ms + 30));
        }
      }
      const res = await result;
      if (a.arena.savedMatch() !== null) throw new Error('match still kept after the result');
      // Chat through the library: world chat from one player to another,
      // then a private message back.
      const cfg = await a.arena.config();
      const chatA = a.arena.chat(cfg.chat), chatB = players[1].arena.chat(cfg.chat);
      // The server joins each connection to world after its welcome.
      const inWorld = (c) => until(c, 'joined', (m) => m.channel === 'world');
      await Promise.all([inWorld(chatA), inWorld(chatB)]);
      const heard = until(chatB, 'message', (m) => m.channel === 'world' && m.text === 'hello from arena.js');
      chatA.post('world', 'hello from arena.js');
      await heard;
      const whispered = until(chatA, 'private', (m) => m.text === 'psst');
      chatB.whisper(a.id.uuid, 'psst');
      await whispered;
      chatA.stop(); chatB.stop();
      log.push('chat');
      // Maps through the library: enter the start map and walk.
      const entry = await a.arena.enterMap('start');
      const map = a.arena.map(entry);
      const welcome = await until(map, 'welcome');
      map.move(welcome.you.x + 1, welcome.you.y);
      map.stop();
      log.push('map ' + entry.map);
      return { log, winner: res.winner, me: a.id.uuid, players: res.players };
    });
    assert.equal(out.winner, out.me, JSON.stringify(out));
    assert.equal(out.players.length, 3);
    assert.ok(out.players[0].new_score > out.players[0].old_score, 'the winner gains rating');
    assert.ok(out.players[2].new_score < out.players[2].old_score, 'the first out loses rating');
    assert.ok(out.log.includes('chat') && out.log.some((l) => l.startsWith('map ')), `steps ${out.log}`);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
