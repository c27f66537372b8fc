// A signed-in page keeps working across a restart of `arena up` (issue 13):
// the test runs its own arena (ARENA_BIN, set by scripts/browser-test.sh),
// a guest plays a fight against two bots and saves its player as a named
// account, arena is stopped with SIGTERM and started again on the same
// ports, credentials file and SQLite database, and the page, first
// without a reload and then after one, is still that player: its token is
// accepted (/v1/me, the leaderboard's own place, the play socket), its
// account name, rating and history are shown, and it can queue again; the
// operator token of before the restart still works too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { launch, open, screenshot, waitReady, ownArena, queued, unexpected } from './lib.mjs';

const BIN = process.env.ARENA_BIN;

test('a signed-in player keeps its page, token and record when arena up restarts', { timeout: 240_000, skip: !BIN && 'ARENA_BIN not set (scripts/browser-test.sh sets it)' }, async () => {
  const own = await ownArena('signedin');
  const { base, credentials } = own;
  const start = () => own.start();
  const call = async (method, p, { token, body } = {}) => {
    const headers = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    const r = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: r.status, data: await r.json().catch(() => null) };
  };
  const until = async (what, cond, ms = 30_000) => {
    const deadline = Date.now() + ms;
    while (!(await cond())) {
      assert.ok(Date.now() < deadline, what);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const bots = async (count) => {
    const op = JSON.parse(fs.readFileSync(credentials, 'utf8')).operator_token;
    assert.equal((await call('POST', '/v1/bots', { token: op, body: { count } })).status, 200);
  };
  let arena = start();
  const browser = await launch();
  try {
    await waitReady(base);
    // Two bots queue; the guest who queues now plays them.
    await bots(2);
    await until('the bots queue', async () => (await call('GET', '/v1/bots')).data?.states?.queued >= 2);
    const { page, errors } = await open(browser, '/', { base });
    await page.click('#guest');
    await page.waitForSelector('#view-fight:not([hidden])', { timeout: 30_000 });
    const deadline = Date.now() + 60_000;
    while (await page.isHidden('#result')) {
      assert.ok(Date.now() < deadline, 'the fight ended within a minute');
      await page.keyboard.press('Space');
      await page.waitForTimeout(400);
    }
    await bots(0);
    await until('the bots stop and the queue is empty', async () => (await call('GET', '/v1/bots')).data?.running === 0 && (await queued(base)) === 0);
    const uuid = (await page.textContent('#my-id')).trim();
    await page.click('#to-lobby');
    await page.waitForSelector('#view-lobby:not([hidden])');
    await page.waitForSelector('#history li[data-room]', { timeout: 15_000 });

    // The player becomes a named account.
    const account = `restart${Date.now() % 1e9}`;
    await page.fill('#account-new', account);
    await page.fill('#account-password', 'a long password');
    await page.click('#account-save');
    await page.waitForSelector('#account-named:not([hidden])');

    const token = await page.evaluate(() => sessionStorage.getItem('arena.token'));
    const operator = JSON.parse(fs.readFileSync(credentials, 'utf8')).operator_token;
    const before = (await call('GET', `/v1/players/${uuid}`)).data;
    assert.equal(before.games, 1, 'the fight is in the record');
    const rooms = (await call('GET', `/v1/players/${uuid}/matches`)).data.matches.map((m) => m.room);
    assert.equal(rooms.length, 1);
    await page.waitForFunction((s) => document.querySelector('#st-score').textContent === String(s), before.score);
    const shown = async (p) => ({
      uuid: (await p.textContent('#my-id')).trim(),
      name: (await p.textContent('#me-name')).trim(),
      account: (await p.textContent('#account-name')).trim(),
      score: (await p.textContent('#st-score')).trim(),
      games: (await p.textContent('#st-games')).trim(),
      history: await p.$$eval('#history li[data-room]', (els) => els.map((e) => e.dataset.room)),
    });
    const was = await shown(page);
    assert.deepEqual(was, { uuid, name: before.username, account, score: String(before.score), games: '1', history: rooms });
    await screenshot(page, 'signedin-lobby-before-restart');

    // Stop arena; the page waits.
    arena.kill('SIGTERM');
    await arena.exited;
    await page.waitForFunction(() => /restarting|offline|connecting/.test(document.querySelector('#net').textContent), null, { timeout: 10_000 });

    // Start it again on the same files. Without a reload, the page
    // reconnects as the same player and its token is accepted.
    arena = start();
    await waitReady(base);
    const me = await call('GET', '/v1/me', { token });
    assert.equal(me.status, 200, `the page's token after the restart: ${JSON.stringify(me.data)}`);
    assert.equal(me.data.uuid, uuid);
    // The operator token from before the restart still works (the dashboard's).
    assert.equal((await call('POST', '/v1/bots', { token: operator, body: { count: 0 } })).status, 200, 'the operator token after the restart');
    await page.waitForFunction(() => document.querySelector('#net').textContent === 'online', null, { timeout: 30_000 });
    await page.waitForSelector('#chat-status.ok', { timeout: 30_000 });
    // The chat reconnected as this player, and did not join the finished
    // fight's room channel again: a world message posted now is answered
    // after anything the reconnect asked for (one connection, in order).
    const hello = `back after the restart ${Date.now()}`;
    await page.click('[data-chat-tab="world"]');
    await page.fill('#chat-input', hello);
    await page.click('#chat-send');
    await page.waitForFunction((t) => document.querySelector('#chat-log').textContent.includes(t), hello, { timeout: 15_000 });
    // Each chat line once (a line's frame, of type "message", was handled twice).
    const hellos = await page.$$eval('#chat-log li', (els, t) => els.filter((e) => e.textContent.includes(t)).length, hello);
    assert.equal(hellos, 1, 'the world message is shown once');
    await page.click('[data-chat-tab="room"]');
    const roomLines = await page.$$eval('#chat-log li', (els) => els.map((e) => e.textContent));
    assert.ok(roomLines.lastIndexOf('You joined the room channel.') < roomLines.lastIndexOf('You left the room channel.'),
      `the chat joined the finished fight's room again after reconnecting: ${JSON.stringify(roomLines)}`);
    await page.click('[data-chat-tab="world"]');
    // The lobby refreshes its records every 5 s: the leaderboard, asked
    // with the token, places this player.
    const board = await page.waitForResponse((r) => r.url().includes('/v1/leaderboard'), { timeout: 15_000 });
    assert.equal(board.status(), 200);
    assert.equal((await board.json()).me?.uuid ?? uuid, uuid);
    await page.waitForFunction(() => /You are \d+/.test(document.querySelector('#board-me').textContent));
    assert.deepEqual(await shown(page), was, 'the page shows the same player after the restart');
    assert.ok(await page.isVisible('#view-lobby'), 'still in the lobby, not signed out');
    await screenshot(page, 'signedin-lobby-after-restart');
    await page.click('#queue');
    await page.waitForSelector('#view-queue:not([hidden])');
    await until('the page queued the player after the restart', async () => (await queued(base)) === 1);
    await screenshot(page, 'signedin-queued-after-restart', { viewport: true });
    await page.click('#cancel');
    await until('the queue is empty again', async () => (await queued(base)) === 0);

    // After a reload too.
    await page.reload();
    await page.waitForSelector('#view-lobby:not([hidden])', { timeout: 15_000 });
    await page.waitForFunction(() => document.querySelector('#net').textContent === 'online', null, { timeout: 15_000 });
    await page.waitForSelector('#history li[data-room]', { timeout: 15_000 });
    await page.waitForSelector('#account-named:not([hidden])');
    assert.deepEqual(await shown(page), was, 'the page shows the same player after a reload');
    await screenshot(page, 'signedin-lobby-after-reload');
    await page.click('#queue');
    await page.waitForSelector('#view-queue:not([hidden])');
    await until('the reloaded page queued the player', async () => (await queued(base)) === 1);
    await screenshot(page, 'signedin-queued-after-reload', { viewport: true });
    assert.deepEqual(unexpected(errors), []);
  } catch (e) {
    own.printTail(60);
    throw e;
  } finally {
    await own.close(browser);
  }
});
