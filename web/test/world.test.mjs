// The map view walks a player through a portal to the next map (another
// map server's ticket), and the chat panel carries world and private
// messages between two guests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, screenshot, guest as login } from './lib.mjs';

const guest = (browser, name) => login(browser, name, { queue: false });

test('walk from Town through the portal to the Whispering Forest', { timeout: 90_000 }, async () => {
  const browser = await launch();
  try {
    const { page, errors } = await guest(browser, 'Walker');
    await page.click('#world-tab');
    await page.waitForFunction(() => document.querySelector('#world-head .mapname')?.textContent === 'Town', null, { timeout: 20_000 });
    await page.waitForSelector('#world-head .portals button');
    const portal = await page.$('#world-head .portals button');
    assert.match(await portal.textContent(), /Whispering Forest/);
    await portal.click();
    await page.waitForFunction(() => document.querySelector('#world-head .mapname')?.textContent === 'Whispering Forest', null, { timeout: 30_000 });
    await page.waitForTimeout(500);
    await screenshot(page, 'world-forest');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('world and private chat between two guests', { timeout: 60_000 }, async () => {
  const browser = await launch();
  try {
    const a = await guest(browser, 'Ann');
    const b = await guest(browser, 'Ben');
    const hello = `hello from Ann ${Date.now()}`;
    await a.page.fill('#chat-input', hello);
    await a.page.press('#chat-input', 'Enter');
    await b.page.waitForFunction((t) => [...document.querySelectorAll('#chat-log li')].some((li) => li.textContent.includes(t)), hello);
    // Ben answers privately by clicking Ann's name.
    await b.page.click(`#chat-log li:has-text("${hello}") .from`);
    await b.page.waitForSelector('#chat-to-wrap:not([hidden])');
    const secret = `psst ${Date.now()}`;
    await b.page.fill('#chat-input', secret);
    await b.page.press('#chat-input', 'Enter');
    await a.page.waitForFunction(() => document.querySelector('[data-chat-tab="private"] .count:not([hidden])'));
    await a.page.click('[data-chat-tab="private"]');
    await a.page.waitForFunction((t) => [...document.querySelectorAll('#chat-log li')].some((li) => li.textContent.includes(t)), secret);
    await screenshot(a.page, 'chat-private');
    assert.deepEqual(a.errors, []);
    assert.deepEqual(b.errors, []);
  } finally {
    await browser.close();
  }
});
