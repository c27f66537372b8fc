// Reloading the play page in the middle of a fight puts the player back
// into that fight (the fight server keeps the seat for the rejoin grace).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, screenshot, noBots, guest } from './lib.mjs';

test('a reload mid-fight goes back into the fight', { timeout: 120_000 }, async () => {
  await noBots();
  const browser = await launch();
  try {
    const players = [];
    for (const n of ['Dee', 'Eve', 'Fay']) players.push(await guest(browser, `${n}-${Math.floor(Math.random() * 1000)}`));
    for (const p of players) {
      await p.page.waitForSelector('#view-fight:not([hidden])', { timeout: 30_000 });
      await p.page.waitForFunction(() => [...document.querySelectorAll('#roster .sc')].length === 3 &&
        [...document.querySelectorAll('#roster .sc')].every((e) => !e.textContent.includes('joining')), null, { timeout: 20_000 });
    }
    const room = await players[0].page.getAttribute('#roster', 'data-room');
    const p = players[0].page;
    await p.reload();
    // Back in the same fight: the fight view, the same room, three fighters, no "joining".
    await p.waitForSelector('#view-fight:not([hidden])', { timeout: 15_000 });
    assert.equal(await p.getAttribute('#roster', 'data-room'), room);
    await p.waitForFunction(() => document.querySelectorAll('#roster .fighter').length === 3);
    // The others saw the player away and back (never out).
    const status = await players[1].page.$$eval('#roster .sc', (els) => els.map((e) => e.textContent));
    assert.ok(status.every((s) => !s.includes('left') && !s.includes('out')), `statuses ${status}`);
    await screenshot(p, 'rejoin-after-reload');
    // And the fight goes on to a result from the reloaded page.
    await p.click('#fight-canvas', { position: { x: 400, y: 300 } });
    const deadline = Date.now() + 60_000;
    while (await p.isHidden('#result')) {
      assert.ok(Date.now() < deadline, 'the fight ended within a minute');
      await p.keyboard.press('Space');
      await p.waitForTimeout(450);
    }
    assert.equal(await p.textContent('#result-title'), 'Victory!');
    for (const x of players) assert.deepEqual(x.errors, [], 'no console errors');
  } finally {
    await browser.close();
  }
});
