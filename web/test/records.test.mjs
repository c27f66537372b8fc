// Player records on the play page: after a fight the lobby shows the
// match in the player's history and the leaderboard with the player's
// place; the guest saves its player as an account and reaches the same
// record from another browser (signing in) and from a new tab of the same
// browser (continuing as the remembered player).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, open, screenshot, api, operatorToken, botsQueued } from './lib.mjs';

test('history, leaderboard and accounts on the play page', { timeout: 120_000 }, async () => {
  const op = operatorToken();
  const browser = await launch();
  try {
    // Both bots log in and queue by themselves.
    await botsQueued(2);
    const first = await open(browser, '/');
    const { page } = first;
    await page.click('#guest');
    await page.waitForSelector('#view-fight:not([hidden])', { timeout: 30_000 });
    const deadline = Date.now() + 60_000;
    while (await page.isHidden('#result')) {
      assert.ok(Date.now() < deadline, 'the fight ended within a minute');
      await page.keyboard.press('Space');
      await page.waitForTimeout(400);
    }
    const uuid = (await page.textContent('#my-id')).trim();
    await page.click('#to-lobby');
    await page.waitForSelector('#view-lobby:not([hidden])');
    // The match is in the history, the player on the leaderboard.
    await page.waitForSelector('#history li[data-room]', { timeout: 15_000 });
    await page.waitForSelector(`#board li[data-uuid="${uuid}"]`, { timeout: 15_000 });
    assert.match(await page.textContent('#board-me'), /You are \d+(st|nd|rd|th) of \d+ with \d+/);
    const rooms = await page.$$eval('#history li[data-room]', (els) => els.map((e) => e.dataset.room));
    const hist = await api('GET', `/v1/players/${uuid}/matches`);
    assert.deepEqual(rooms, hist.matches.map((m) => m.room), 'the page shows the stored history');
    await screenshot(page, 'records-lobby');

    // Save the player as an account.
    const account = `acc${Date.now() % 1e9}`;
    await page.fill('#account-new', account);
    await page.fill('#account-password', 'a long password');
    await page.click('#account-save');
    await page.waitForSelector('#account-named:not([hidden])');
    assert.equal((await page.textContent('#account-name')).trim(), account);

    // Another browser signs in to the same record.
    const other = await open(browser, '/');
    await other.page.click('#signin-box summary');
    await other.page.fill('#signin-account', account.toUpperCase());
    await other.page.fill('#signin-password', 'a long password');
    await other.page.click('#signin');
    await other.page.waitForSelector('#view-lobby:not([hidden])');
    assert.equal((await other.page.textContent('#my-id')).trim(), uuid);
    await other.page.waitForSelector('#history li[data-room]');
    await screenshot(other.page, 'records-signed-in-elsewhere');
    // A wrong password says so and signs nobody in.
    const third = await open(browser, '/');
    await third.page.click('#signin-box summary');
    await third.page.fill('#signin-account', account);
    await third.page.fill('#signin-password', 'not the password');
    await third.page.click('#signin');
    await third.page.waitForSelector('#signin-error:not([hidden])');
    assert.equal(await third.page.isHidden('#view-lobby'), true);

    // A new tab of the first browser continues as the remembered player.
    const tab = await first.context.newPage();
    await tab.goto(new URL('/', page.url()).toString());
    await tab.waitForSelector('#remembered:not([hidden])');
    await tab.click('#continue');
    await tab.waitForSelector('#view-lobby:not([hidden])');
    assert.equal((await tab.textContent('#my-id')).trim(), uuid);
    for (const p of [first, other]) assert.deepEqual(p.errors, []);
  } finally {
    await browser.close();
    await api('POST', '/v1/bots', { token: op, body: { count: 0 } });
  }
});
