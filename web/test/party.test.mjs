// Two friends queue as a party in the default mode (profile) and are put
// in one room with a third player of that mode; a malformed party id is refused
// with a message. Run by scripts/browser-test.sh against `arena up --bots 0`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, screenshot, noBots, guest } from './lib.mjs';

test('a party of two and a third player of the same mode share a room', { timeout: 120_000 }, async () => {
  await noBots();
  const browser = await launch();
  try {
    const tag = Math.floor(Math.random() * 1000);
    const mode = 'default'; // modes are the dispatcher's profiles (docs/matchmaking.md)
    const players = [];
    for (const n of ['Ann', 'Ben', 'Cid']) players.push({ ...(await guest(browser, `${n}-${tag}`, { queue: false })), name: n });
    const [pa, pb, pc] = players.map((p) => p.page);
    const ida = (await pa.textContent('#my-id')).trim();
    const idb = (await pb.textContent('#my-id')).trim();
    assert.match(ida, /^[0-9a-f-]{36}$/, 'the lobby shows the player id');

    // A malformed id (player ids are letters, digits, - and _): refused,
    // back in the lobby, told why.
    await pa.fill('#party', 'not/an/id');
    await pa.click('#queue');
    await pa.waitForSelector('#toast:not([hidden])');
    assert.match(await pa.textContent('#toast'), /player ids/);
    await pa.waitForSelector('#view-lobby:not([hidden])');

    // Ann queues with Ben in the mode: she waits for him.
    await pa.fill('#party', idb);
    await pa.fill('#mode', mode);
    await screenshot(pa, 'party-lobby');
    await pa.click('#queue');
    await pa.waitForSelector('#party-wait:not([hidden])');
    assert.ok((await pa.textContent('#party-wait')).includes(idb.slice(0, 8)), 'Ann sees whom the party waits for');
    await screenshot(pa, 'party-waiting');

    // Ben consents by queueing with Ann; Cid queues alone in the mode.
    await pb.fill('#party', ida);
    await pb.fill('#mode', mode.toUpperCase()); // the page lower-cases modes
    await pb.click('#queue');
    await pc.fill('#mode', mode);
    await pc.click('#queue');

    for (const p of players) {
      await p.page.waitForSelector('#view-fight:not([hidden])', { timeout: 30_000 });
      await p.page.waitForFunction(() => document.querySelectorAll('#roster .fighter').length === 3);
    }
    const rooms = await Promise.all(players.map((p) => p.page.getAttribute('#roster', 'data-room')));
    assert.ok(rooms[0], 'a room id');
    assert.deepEqual(rooms, [rooms[0], rooms[0], rooms[0]], 'one room for the three');
    await screenshot(pb, 'party-fight');
    for (const p of players) assert.deepEqual(p.errors, [], `${p.name}: no console errors`);
  } finally {
    await browser.close();
  }
});
