// The pages say clearly when the server is unreachable or a token expired.
// (These flows make failed requests on purpose, which Chromium logs as
// console errors; only those expected ones are allowed.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, open, screenshot, guest, BASE } from './lib.mjs';

const expected = (e) => /Failed to load resource|net::ERR_FAILED|EventSource/.test(e);

test('an expired or forged token sends the player back to login with a message', { timeout: 60_000 }, async () => {
  const browser = await launch();
  try {
    const context = await browser.newContext();
    await context.addInitScript(() => sessionStorage.setItem('arena.token', 'eyJrIjoicGxheWVyIn0.Zm9yZ2Vk'));
    const page = await context.newPage();
    const errors = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push('pageerror: ' + e.message));
    await page.goto(BASE + '/');
    await page.waitForSelector('#banner:not([hidden])');
    assert.match(await page.textContent('#banner'), /session expired/i);
    assert.ok(await page.isVisible('#view-login'));
    await screenshot(page, 'error-session-expired');
    assert.deepEqual(errors.filter((e) => !expected(e)), []);
    // Playing as guest again works and clears the message.
    await page.click('#guest');
    await page.waitForSelector('#view-queue:not([hidden])');
    assert.ok(await page.isHidden('#banner'));
  } finally {
    await browser.close();
  }
});

test('an unreachable server is reported on the play page and the dashboard', { timeout: 60_000 }, async () => {
  const browser = await launch();
  try {
    const { page, errors } = await guest(browser, 'Lost', { queue: false });
    // The dispatcher "goes away": every API call and socket to it fails.
    await page.route('**/v1/**', (route) => route.abort());
    await page.reload();
    await page.waitForSelector('#banner:not([hidden])');
    assert.match(await page.textContent('#banner'), /unreachable/i);
    assert.match(await page.textContent('#net'), /offline/);
    await screenshot(page, 'error-unreachable');
    assert.deepEqual(errors.filter((e) => !expected(e.replace(/^console: /, ''))), []);

    const d = await open(browser, '/dashboard');
    await d.page.waitForSelector('#live.ok');
    await d.page.route('**/v1/**', (route) => route.abort());
    await d.page.reload();
    await d.page.waitForSelector('#banner:not([hidden])', { timeout: 20_000 });
    assert.match(await d.page.textContent('#banner'), /Lost the live connection/);
    assert.match(await d.page.textContent('#live'), /reconnecting/);
    assert.deepEqual(d.errors.filter((e) => !expected(e.replace(/^console: /, ''))), []);
  } finally {
    await browser.close();
  }
});
