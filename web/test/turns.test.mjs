// The second game (examples/turns, run by `arena up --game turns=PATH`)
// in three browsers: guests log in on /turns, queue in the turns profile,
// are matched into one battle on the turns server, take their turns with
// the page's buttons until one is left standing, and every page shows the
// result with the ratings changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, open, screenshot, noBots } from './lib.mjs';

test('three guests play the turns game to a result', { timeout: 150_000 }, async () => {
  await noBots();
  const browser = await launch();
  try {
    const players = [];
    for (const n of ['Gus', 'Hal', 'Ivy']) {
      const p = await open(browser, '/turns');
      p.name = `${n}-${Math.floor(Math.random() * 1000)}`;
      await p.page.fill('#t-name', p.name);
      await p.page.click('#t-play');
      await p.page.waitForSelector('#t-queue:not([hidden]), #t-battle:not([hidden])');
      players.push(p);
    }
    for (const p of players) {
      await p.page.waitForSelector('#t-battle:not([hidden])', { timeout: 30_000 });
      await p.page.waitForFunction(() => document.querySelectorAll('#t-players li').length === 3, null, { timeout: 15_000 });
    }
    await screenshot(players[0].page, 'turns-battle');
    // Whoever's turn it is attacks the first target the page offers.
    const deadline = Date.now() + 100_000;
    for (;;) {
      assert.ok(Date.now() < deadline, 'the battle ended in time');
      let acted = false;
      for (const p of players) {
        if (!(await p.page.isHidden('#t-result'))) continue;
        if (await p.page.isVisible('#t-attack') && await p.page.isEnabled('#t-attack')) {
          try {
            await p.page.click('#t-attack', { timeout: 5_000 });
            acted = true;
          } catch (e) {
            // The battle may end between the checks and the click (the
            // result replaces the buttons); anything else is a failure.
            if (await p.page.isHidden('#t-result')) throw e;
          }
        }
      }
      const over = await Promise.all(players.map((p) => p.page.isVisible('#t-result')));
      if (over.every(Boolean)) break;
      if (!acted) await players[0].page.waitForTimeout(100);
    }
    const titles = await Promise.all(players.map((p) => p.page.textContent('#t-result-title')));
    assert.equal(titles.filter((t) => t === 'Victory!').length, 1, `titles ${titles}`);
    assert.equal(titles.filter((t) => t === 'Defeated').length, 2, `titles ${titles}`);
    const rows = await players[0].page.$$eval('#t-result-rows tr', (trs) => trs.map((tr) => tr.textContent));
    assert.equal(rows.length, 3);
    assert.match(rows[0], /\+\d+$/, `the winner gains rating: ${rows[0]}`);
    await screenshot(players[0].page, 'turns-result');
    for (const p of players) assert.deepEqual(p.errors, [], `${p.name}: no console errors`);
  } finally {
    await browser.close();
  }
});
