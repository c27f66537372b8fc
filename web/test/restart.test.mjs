// A queued player is queued again, by the page itself, after the
// dispatcher restarts: the test runs its own arena (ARENA_BIN, set by
// scripts/browser-test.sh), queues a guest, stops arena with SIGTERM (the
// play socket gets close code 1012), starts it again on the same ports and
// files, and watches the page reconnect and queue.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { launch, screenshot, waitReady } from './lib.mjs';

const BIN = process.env.ARENA_BIN;

const free = (p) => new Promise((ok) => {
  const s = net.createServer();
  s.once('error', () => ok(false));
  s.listen(p, '127.0.0.1', () => s.close(() => ok(true)));
});

/** portBlock finds n free ports in a row (below the ephemeral range). */
async function portBlock(n) {
  for (let t = 0; t < 50; t++) {
    const b = 20000 + Math.floor(Math.random() * 120) * 100;
    let all = true;
    for (let p = b; p < b + n && all; p++) all = await free(p);
    if (all) return b;
  }
  throw new Error('no free ports');
}

/** queued reports how many players base's queues hold. */
async function queued(base) {
  const st = await (await fetch(base + '/v1/stats')).json();
  return Object.values(st.queues || {}).reduce((a, n) => a + n, 0);
}

test('a queued player is queued again after the dispatcher restarts', { timeout: 180_000, skip: !BIN && 'ARENA_BIN not set (scripts/browser-test.sh sets it)' }, async () => {
  const b = await portBlock(40);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'arena-restart-'));
  const base = `http://127.0.0.1:${b}`;
  const args = ['up', '--http', `127.0.0.1:${b}`, '--listen', `127.0.0.1:${b + 1}`, '--grpc', `127.0.0.1:${b + 2}`,
    '--chat-port', String(b + 3), '--host-listen', `127.0.0.1:${b + 4}`, '--host', '127.0.0.1',
    '--fight-port-base', String(b + 10), '--map-port-base', String(b + 25),
    '--store-prefix', `restart-${process.pid}-${b}:`, '--credentials', path.join(dir, 'credentials.json'),
    '--db', 'sqlite:' + path.join(dir, 'arena.db'), '--outbox', path.join(dir, 'outbox'), '--bots', '0'];
  let log = '';
  const start = () => {
    const p = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.on('data', (d) => { log += d; });
    p.stderr.on('data', (d) => { log += d; });
    p.exited = new Promise((ok) => p.once('exit', ok));
    return p;
  };
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
    console.error(log.split('\n').slice(-40).join('\n'));
    throw e;
  } finally {
    await browser.close();
    arena.kill('SIGTERM');
    await arena.exited;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
