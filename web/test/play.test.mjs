// Three guests in three browsers are matched into one room, each sees the
// other two, one of them attacks until the others are out, and every page
// shows the result. Run by scripts/browser-test.sh against `arena up
// --bots 0`, so the three can only be matched with each other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, screenshot, noBots, guest } from './lib.mjs';

test('three guests are matched, fight, and see the result', { timeout: 120_000 }, async () => {
  await noBots();
  const browser = await launch();
  try {
    const names = ['Alice', 'Bob', 'Carol'].map((n) => `${n}-${Math.floor(Math.random() * 1000)}`);
    // "Play as guest" logs in and queues at once.
    const players = [];
    for (const name of names) players.push({ ...(await guest(browser, name)), name });
    for (const p of players) {
      await p.page.waitForSelector('#view-fight:not([hidden])', { timeout: 30_000 });
      // Each page lists all three players, itself marked "you".
      await p.page.waitForFunction(() => document.querySelectorAll('#roster .fighter').length === 3);
      const roster = await p.page.$$eval('#roster .fighter .nm', (els) => els.map((e) => e.textContent));
      for (const n of names) assert.ok(roster.some((r) => r.startsWith(n)), `${p.name} sees ${n} in ${roster}`);
      const photos = await p.page.$$eval('#roster .fighter img.avatar', (els) => els.map((e) => e.getAttribute('src')));
      assert.equal(photos.length, 3, `${p.name} sees three photos`);
    }
    // The three are in one room: every page got a match naming the same room.
    const rooms = await Promise.all(players.map((p) => p.page.getAttribute('#roster', 'data-room')));
    assert.ok(rooms[0], 'a room id');
    assert.deepEqual(rooms, [rooms[0], rooms[0], rooms[0]]);
    // Everyone has joined (no "joining…") before the fight starts.
    for (const p of players) {
      await p.page.waitForFunction(() => [...document.querySelectorAll('#roster .sc')].every((e) => !e.textContent.includes('joining')), null, { timeout: 20_000 });
    }
    await screenshot(players[1].page, 'play-fight');

    // Alice attacks (Space: the nearest opponent) until the room ends.
    const a = players[0].page;
    await a.click('#fight-canvas', { position: { x: 400, y: 300 } });
    const deadline = Date.now() + 60_000;
    while (await a.isHidden('#result')) {
      assert.ok(Date.now() < deadline, 'the fight ended within a minute');
      await a.keyboard.press('Space');
      await a.waitForTimeout(450);
    }
    for (const p of players) {
      await p.page.waitForSelector('#result:not([hidden])', { timeout: 15_000 });
      const title = await p.page.textContent('#result-title');
      assert.equal(title, p === players[0] ? 'Victory!' : 'Defeated', `${p.name} sees ${title}`);
      const rows = await p.page.$$eval('#result-rows tr', (trs) => trs.map((tr) => tr.textContent));
      assert.equal(rows.length, 3);
      assert.ok(rows[0].startsWith('1st') && rows[0].includes(names[0]), `the winner is first: ${rows[0]}`);
      assert.match(rows[0], /\+\d+$/, 'the winner gains rating');
      await screenshot(p.page, `play-result-${p.name.split('-')[0].toLowerCase()}`);
    }
    // The header shows the new rating.
    const score = await a.textContent('#me-score');
    assert.match(score, /· 15[0-9][0-9]/);
    for (const p of players) assert.deepEqual(p.errors, [], `${p.name}: no console errors`);
  } finally {
    await browser.close();
  }
});
