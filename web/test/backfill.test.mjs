// A player who joins a running fight (backfill): three guests are matched,
// one leaves the fight, and a fourth guest who queues is put into that
// room. The pages of the two left show the newcomer (a create_player after
// the start) with its hp, and the room plays to a result of four.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, screenshot, noBots, guest } from './lib.mjs';

test('a guest who queues takes the seat of one who left a running fight', { timeout: 120_000 }, async () => {
  await noBots();
  const browser = await launch();
  try {
    const names = ['Gus', 'Hal', 'Ivy'].map((n) => `${n}-${Math.floor(Math.random() * 1000)}`);
    const players = [];
    for (const name of names) players.push({ ...(await guest(browser, name)), name });
    for (const p of players) {
      await p.page.waitForSelector('#view-fight:not([hidden])', { timeout: 30_000 });
      await p.page.waitForFunction(() => [...document.querySelectorAll('#roster .sc')].length === 3 &&
        [...document.querySelectorAll('#roster .sc')].every((e) => !e.textContent.includes('joining')), null, { timeout: 20_000 });
    }
    const room = await players[0].page.getAttribute('#roster', 'data-room');
    // Ivy leaves for good: the room asks for a player.
    await players[2].page.click('#leave');
    await players[2].page.waitForSelector('#view-lobby:not([hidden])');
    // Jo queues and is put into the running room.
    const jo = `Jo-${Math.floor(Math.random() * 1000)}`;
    const late = { ...(await guest(browser, jo)), name: jo };
    await late.page.waitForSelector('#view-fight:not([hidden])', { timeout: 30_000 });
    assert.equal(await late.page.getAttribute('#roster', 'data-room'), room, 'the newcomer is in the running room');
    for (const p of players.slice(0, 2)) {
      // The newcomer appears on the pages of those who stayed, playing at 100 hp.
      await p.page.waitForFunction((n) => [...document.querySelectorAll('#roster .fighter')].some((f) =>
        f.querySelector('.nm').textContent.startsWith(n) && f.querySelector('.sc').textContent.endsWith('100 hp')), jo, { timeout: 20_000 });
      assert.equal(await p.page.$$eval('#roster .fighter', (els) => els.length), 4);
    }
    await screenshot(players[0].page, 'backfill-newcomer');
    // Gus fights on (Space: the nearest opponent) to the result, the newcomer in it.
    const a = players[0].page;
    await a.click('#fight-canvas', { position: { x: 400, y: 300 } });
    const deadline = Date.now() + 60_000;
    while (await a.isHidden('#result')) {
      assert.ok(Date.now() < deadline, 'the fight ended within a minute');
      await a.keyboard.press('Space');
      await a.waitForTimeout(450);
    }
    const rows = await a.$$eval('#result-rows tr', (trs) => trs.map((tr) => tr.textContent));
    assert.equal(rows.length, 4, `result rows ${rows}`);
    assert.ok(rows.some((r) => r.includes(jo)), `the newcomer is in the result: ${rows}`);
    await late.page.waitForSelector('#result:not([hidden])', { timeout: 15_000 });
    for (const p of [...players, late]) assert.deepEqual(p.errors, [], `${p.name}: no console errors`);
  } finally {
    await browser.close();
  }
});
