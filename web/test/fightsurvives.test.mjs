// A fight survives its fight server (docs/fight.md "A room that survives
// its process"): three players are matched on their pages in an arena of
// the test's own (ARENA_BIN), one leaves the fight, one hits another, the
// fight process is killed with SIGKILL once the hit is saved in memcached,
// and the two pages still fighting, without a reload, are put back into
// the same room on a new fight process ("Back in your fight.") with the hp
// the fight had, while the one who left stays in its lobby; the fight goes
// on to its result, which is recorded once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { launch, open, screenshot, waitReady, ownArena, unexpected } from './lib.mjs';

const BIN = process.env.ARENA_BIN;

/** mcGet reads key from the memcached at addr (the text protocol): the value, or null. */
function mcGet(addr, key) {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
  return new Promise((ok, fail) => {
    const s = net.connect(port, host, () => s.write(`get ${key}\r\n`));
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const text = buf.toString('latin1');
      if (text === 'END\r\n') { s.end(); ok(null); return; }
      const m = /^VALUE \S+ \d+ (\d+)\r\n/.exec(text);
      if (m && buf.length >= m[0].length + Number(m[1]) + 7) {
        s.end();
        ok(buf.subarray(m[0].length, m[0].length + Number(m[1])).toString('utf8'));
      }
    });
    s.on('error', fail);
  });
}

test('a fight goes on when its fight server is killed', { timeout: 180_000, skip: !BIN && 'ARENA_BIN not set (scripts/browser-test.sh sets it)' }, async () => {
  const own = await ownArena('survive', ['--room-size', '3', '--fight-option', 'attack-range=1000']);
  const { base, prefix } = own;
  own.start();
  const browser = await launch();
  try {
    await waitReady(base);
    const mc = /embedded memcached started.* addr=(\S+)/.exec(own.log())[1];
    const a = await open(browser, '/', { base });
    const b = await open(browser, '/', { base });
    const c = await open(browser, '/', { base });
    // The /v1/play messages c receives, as they arrive.
    const cPlay = [];
    c.page.on('websocket', (ws) => {
      if (ws.url().includes('/v1/play')) ws.on('framereceived', (f) => { try { cPlay.push(JSON.parse(f.payload)); } catch { /* not JSON */ } });
    });
    for (const p of [a, b, c]) await p.page.click('#guest');
    for (const p of [a, b, c]) await p.page.waitForSelector('#view-fight:not([hidden])', { timeout: 30_000 });
    // c leaves the fight (the others play on).
    await c.page.click('#leave');
    await c.page.waitForSelector('#view-lobby:not([hidden])');
    const uc = (await c.page.textContent('#my-id')).trim();
    await a.page.waitForFunction((u) => /left|out/.test(document.querySelector(`#roster [data-uuid="${u}"] .sc`)?.textContent || ''), uc);
    const ub = (await b.page.textContent('#my-id')).trim();
    const room = await a.page.$eval('#roster', (e) => e.dataset.room);
    const hpOf = (p) => p.$eval(`#roster [data-uuid="${ub}"] .hpbar`, (e) => Number.parseInt(e.title, 10)).catch(() => NaN);
    // A hits B (Space attacks the nearest) until B is down to 60 hp or less.
    for (let i = 0; !((await hpOf(a.page)) <= 60); i++) {
      assert.ok(i < 100, 'the attacks landed');
      await a.page.keyboard.press('Space');
      await a.page.waitForTimeout(450); // the attack cooldown: pace the key presses, as a player does
    }
    const hp = await hpOf(a.page);
    await b.page.waitForFunction(([u, h]) => document.querySelector(`#roster [data-uuid="${u}"] .hpbar`)?.title === `${h} hp`, [ub, hp]);
    // The hit is saved in memcached (hp saves at once, in the background).
    for (let i = 0; ; i++) {
      const v = await mcGet(mc, `${prefix}gamestate:${room}`);
      if (v && JSON.parse(v).f.some((f) => f.u === ub && f.hp === hp)) break;
      assert.ok(i < 300, 'the room state with the hit is saved');
      await new Promise((r) => setTimeout(r, 100));
    }
    await screenshot(a.page, 'survive-before-kill', { viewport: true });

    const fleet = await (await fetch(base + '/v1/fleet')).json();
    const fights = fleet.processes.filter((p) => p.kind === 'fight');
    assert.ok(fights.length > 0, 'a fight process runs');
    for (const p of fights) process.kill(p.pid, 'SIGKILL');

    // Both pages are back in the same room, on a new process, with the hp.
    for (const p of [a, b]) {
      await p.page.waitForFunction(() => /Back in your fight/.test(document.querySelector('#toast')?.textContent || ''), null, { timeout: 30_000 });
      assert.equal(await p.page.$eval('#roster', (e) => e.dataset.room), room);
      assert.ok(await p.page.isVisible('#view-fight'), 'still in the fight view');
    }
    await b.page.waitForFunction(([u, h]) => document.querySelector(`#roster [data-uuid="${u}"] .hpbar`)?.title === `${h} hp`, [ub, hp]);
    assert.equal(await hpOf(a.page), hp, 'the restored room has the hp the fight had');
    const after = await (await fetch(base + '/v1/fleet')).json();
    assert.ok(after.processes.some((p) => p.kind === 'fight' && !fights.some((f) => f.pid === p.pid)), 'a new fight process hosts the room');
    await screenshot(b.page, 'survive-restored', { viewport: true });
    // The one who left was told too (the dispatcher tells every member of
    // the room's record) and stayed in its lobby.
    for (let i = 0; cPlay.filter((m) => m.type === 'match' && m.room === room).length < 2; i++) {
      assert.ok(i < 300, 'the player who left hears of the room placed again');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(await c.page.isVisible('#view-lobby'), 'the player who left stays in the lobby');
    assert.equal(await c.page.isHidden('#view-fight'), true);

    // The fight goes on to its result.
    for (let i = 0; await a.page.isHidden('#result'); i++) {
      assert.ok(i < 100, 'the fight ended');
      await a.page.keyboard.press('Space');
      await a.page.waitForTimeout(450);
    }
    assert.equal((await a.page.textContent('#result-title')).trim(), 'Victory!');
    await b.page.waitForSelector('#result:not([hidden])');
    await screenshot(b.page, 'survive-result', { viewport: true });
    // Recorded once.
    const ua = (await a.page.textContent('#my-id')).trim();
    for (const u of [ua, ub, uc]) {
      const h = await (await fetch(`${base}/v1/players/${u}/matches`)).json();
      assert.deepEqual(h.matches.map((m) => m.room), [room], `${u}'s history`);
    }
    for (const p of [a, b, c]) assert.deepEqual(unexpected(p.errors), []);
  } catch (e) {
    own.printTail(60);
    throw e;
  } finally {
    await own.close(browser);
  }
});
