// One person alone is matched with bots: with two bots queueing, clicking
// "Play as guest" then "Find a match" gets a person into a fight within
// 10 seconds, and the bots show as bots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, open, screenshot, api, operatorToken, botsQueued } from './lib.mjs';

test('a lone guest is matched with bots within 10 seconds', { timeout: 90_000 }, async () => {
  const op = operatorToken();
  const browser = await launch();
  try {
    // Both bots log in and queue by themselves.
    await botsQueued(2);
    const { page, errors } = await open(browser, '/');
    const t0 = Date.now();
    await page.click('#guest'); // logs in and queues
    await page.waitForSelector('#view-fight:not([hidden])', { timeout: 10_000 });
    await page.waitForFunction(() => document.querySelectorAll('#roster .fighter').length === 3);
    const took = Date.now() - t0;
    assert.ok(took < 10_000, `in a fight after ${took} ms`);
    const bots = await page.$$eval('#roster .badge.bot', (els) => els.length);
    assert.equal(bots, 2, 'both opponents carry the bot badge');
    await page.waitForTimeout(1500); // let the bots move and attack
    await screenshot(page, 'solo-fight-with-bots');
    // Fight back until the room ends (the bots may win; either way a result shows).
    const deadline = Date.now() + 60_000;
    while (await page.isHidden('#result')) {
      assert.ok(Date.now() < deadline, 'the fight ended within a minute');
      await page.keyboard.press('Space');
      await page.waitForTimeout(450);
    }
    const title = await page.textContent('#result-title');
    assert.ok(['Victory!', 'Defeated'].includes(title), title);
    await screenshot(page, 'solo-result');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await api('POST', '/v1/bots', { token: op, body: { count: 0 } });
  }
});
