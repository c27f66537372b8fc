// What a new player met (issue 14, item 12), each checked in a real
// browser at 1280x800 and at 390x844 (a phone), with screenshots:
// feedback after "Leave the fight" and no stale "Match found" toast; the
// chat leaves the finished room's channel; the session banner stays in
// view when the page is scrolled; the fight's controls are above the fold;
// on a phone the toast does not cover the controls and the canvas text is
// readable; the "(you)" label is never clipped at the edge; the dashboard
// lists recent fleet events on load; /dashboard/ is the dashboard.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, open, screenshot, api, operatorToken, botsQueued, BASE } from './lib.mjs';

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

/** intoFight logs a guest in at size and waits for its fight with two bots. */
async function intoFight(browser, size) {
  await botsQueued(2);
  const p = await open(browser, '/', size);
  await p.page.click('#guest');
  await p.page.waitForSelector('#view-fight:not([hidden])', { timeout: 20_000 });
  await p.page.waitForFunction(() => document.querySelectorAll('#roster .fighter').length === 3);
  return p;
}

/** rect returns an element's bounding box in the viewport. */
const rect = (page, sel) => page.$eval(sel, (e) => { const r = e.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height, bottom: r.bottom, right: r.right }; });

const overlap = (a, b) => a.x < b.right && b.x < a.right && a.y < b.bottom && b.y < a.bottom;

/** uncovered reports whether the element's centre shows the element itself (nothing drawn over it). */
const uncovered = (page, sel) => page.$eval(sel, (e) => {
  const r = e.getBoundingClientRect();
  const x = r.x + r.width / 2, y = r.y + r.height / 2;
  if (y < 0 || y > innerHeight || x < 0 || x > innerWidth) return false;
  const top = document.elementFromPoint(x, y);
  return !!top && (top === e || e.contains(top));
});

for (const [label, size] of [['1280', DESKTOP], ['390', PHONE]]) {
  test(`${label}: the fight fits, labels are readable and unclipped, leaving says so and leaves the room channel`, { timeout: 120_000 }, async () => {
    const browser = await launch();
    try {
      const { page, errors } = await intoFight(browser, size);
      await page.evaluate(() => window.scrollTo(0, 0));
      // The match toast is up; it covers none of the controls.
      await page.waitForSelector('#toast:not([hidden])');
      assert.match(await page.textContent('#toast'), /Match found/);
      for (const sel of ['#attack-btn', '#blink-btn', '#leave']) {
        const r = await rect(page, sel);
        assert.ok(r.bottom <= size.height && r.y >= 0, `${sel} is above the fold at ${label}: ${JSON.stringify(r)}`);
        assert.ok(!overlap(r, await rect(page, '#toast')), `the toast covers ${sel} at ${label}`);
        assert.ok(await uncovered(page, sel), `${sel} is not covered at ${label}`);
      }
      // Names on the canvas are at least 10.5 px on screen.
      await page.waitForFunction(() => Number(document.querySelector('#fight-canvas').dataset.labelPx) > 0);
      const px = Number(await page.getAttribute('#fight-canvas', 'data-label-px'));
      assert.ok(px >= 10.5, `canvas names are ${px} px on screen at ${label}`);
      await screenshot(page, `newplayer-fight-${label}`, { viewport: true });

      // Walk into the left edge: the "(you)" label stays on the canvas.
      const box = await rect(page, '#fight-canvas');
      await page.mouse.click(box.x + 2, box.y + box.h / 2);
      await page.waitForFunction(() => {
        const v = (document.querySelector('#fight-canvas').dataset.you || '').split(' ').map(Number);
        return v.length === 3 && v[0] <= 30; // x of the player, then the label's left and right
      }, null, { timeout: 15_000 });
      const [, l0, l1] = (await page.getAttribute('#fight-canvas', 'data-you')).split(' ').map(Number);
      assert.ok(l0 >= 0 && l1 <= 800, `the (you) label spans ${l0}..${l1} of 800`);
      await screenshot(page, `newplayer-edge-${label}`);

      // Leaving: the lobby says so, and the match toast is gone.
      await page.click('#leave');
      await page.waitForSelector('#view-lobby:not([hidden])');
      const toastText = (await page.isVisible('#toast')) ? await page.textContent('#toast') : '';
      assert.doesNotMatch(toastText, /Match found/, 'the match toast is gone');
      await page.waitForFunction(() => /left the fight/i.test(document.querySelector('#lobby-note').textContent));
      // The chat left the room's channel.
      await page.click('[data-chat-tab="room"]');
      assert.equal(await page.getAttribute('#chat-input', 'placeholder'), 'Join a match to talk with your room');
      await page.waitForFunction(() => [...document.querySelectorAll('#chat-log li')].some((li) => /left the room channel/i.test(li.textContent)));
      await screenshot(page, `newplayer-left-${label}`);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await api('POST', '/v1/bots', { token: operatorToken(), body: { count: 0 } });
    }
  });

  test(`${label}: the session banner stays in view when the page is scrolled`, { timeout: 60_000 }, async () => {
    const browser = await launch();
    try {
      const context = await browser.newContext({ viewport: size });
      await context.addInitScript(() => sessionStorage.setItem('arena.token', 'eyJrIjoicGxheWVyIn0.Zm9yZ2Vk'));
      const page = await context.newPage();
      await page.goto(BASE + '/');
      await page.waitForSelector('#banner:not([hidden])');
      assert.match(await page.textContent('#banner'), /session expired/i);
      await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
      await page.waitForFunction(() => window.scrollY > 0 || document.documentElement.scrollHeight <= innerHeight);
      assert.ok(await uncovered(page, '#banner'), `the banner is hidden when scrolled at ${label}`);
      await screenshot(page, `newplayer-banner-scrolled-${label}`, { viewport: true });
    } finally {
      await browser.close();
    }
  });
}

test('the dashboard lists recent fleet events on load, and /dashboard/ is the dashboard', { timeout: 60_000 }, async () => {
  const browser = await launch();
  try {
    const { page, errors } = await open(browser, '/dashboard/', DESKTOP);
    assert.match(await page.title(), /dashboard/);
    await page.waitForSelector('#live.ok');
    // The fleet spawned its processes before this page opened: they are listed.
    await page.waitForFunction(() => [...document.querySelectorAll('#events li')].some((li) => /spawn/.test(li.textContent)), null, { timeout: 5_000 });
    await screenshot(page, 'newplayer-dashboard-events');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
