// A queued player is queued again, by the page itself, after the
// dispatcher restarts: the test runs its own arena (ARENA_BIN, set by
// scripts/browser-test.sh), queues a guest, stops arena with SIGTERM (the
// play socket gets close code 1012), starts it again on the same ports and
// files, and watches the page reconnect and queue.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, screenshot, waitReady, ownArena, queued } from './lib.mjs';

const BIN = process.env.ARENA_BIN;

test('a queued player is queued again after the dispatcher restarts', { timeout: 180_000, skip: !BIN && 'ARENA_BIN not set (scripts/browser-test.sh sets it)' }, async () => {
  const own = await ownArena('restart');
  const { base } = own;
  const start = () => own.start();
  let arena = start();
  const browser = await launch();
  try {
    await waitReady(base);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(base + '/');
    await page.click('#guest'); // logs in and queues
    await page.waitForSelector('#view-queue:not([hidden])');
    await page.waitForFunction(() => document.querySelector('#net').textContent === 'online');
    for (let i = 0; (await queued(base)) !== 1; i++) {
      assert.ok(i < 100, 'the guest is in the queue');
      await new Promise((r) => setTimeout(r, 100));
    }

    arena.kill('SIGTERM');
    await arena.exited;
    await page.waitForFunction(() => /restarting/.test(document.querySelector('#net').textContent), null, { timeout: 10_000 });
    assert.ok(await page.isVisible('#view-queue'), 'the page stays in the queue view while arena restarts');
    await screenshot(page, 'restart-waiting', { viewport: true });

    arena = start();
    await waitReady(base);
    await page.waitForFunction(() => document.querySelector('#net').textContent === 'online', null, { timeout: 30_000 });
    for (let i = 0; (await queued(base)) !== 1; i++) {
      assert.ok(i < 100, 'the page queued the player again by itself');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(await page.isVisible('#view-queue'));
    await page.waitForFunction(() => /queued again/.test((document.querySelector('#toast') || {}).textContent || ''));
    await screenshot(page, 'restart-queued-again', { viewport: true });
    assert.deepEqual(errors, []);
  } catch (e) {
    own.printTail(40);
    throw e;
  } finally {
    await own.close(browser);
  }
});
