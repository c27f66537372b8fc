// The dashboard shows the live process table; with the operator token it
// sets the bots and lowers MAXNUM, and a newly spawned fight server appears
// (row and "spawned" event) without a reload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, open, screenshot, api, operatorToken } from './lib.mjs';

test('dashboard: lowering MAXNUM under load spawns a process, live', { timeout: 120_000 }, async () => {
  const op = operatorToken();
  const browser = await launch();
  try {
    const { page, errors } = await open(browser, '/dashboard');
    await page.waitForSelector('#live.ok', { timeout: 15_000 });
    await page.waitForSelector('#procs-body tr[data-kind="fight"]');
    const fightsBefore = await page.$$eval('#procs-body tr[data-kind="fight"]', (r) => r.length);
    for (const kind of ['fight', 'map', 'chat']) {
      assert.ok(await page.$(`#procs-body tr[data-kind="${kind}"]`), `a ${kind} row`);
    }
    // The dispatcher's own host is listed, and each process names its host.
    await page.waitForSelector('#hosts-body tr[data-state="connected"]');
    const hosts = await page.$$eval('#procs-body tr[data-kind]', (r) => r.map((e) => e.dataset.host));
    assert.ok(hosts.every((h) => h !== ''), `every process names its host: ${hosts}`);
    await page.fill('#op-token', op);
    await page.click('#token-form button');
    // Lower MAXNUM to 1, then ask for six bots: two rooms at once need two fight servers.
    await page.fill('#maxnum', '1');
    await page.click('#maxnum-form button');
    await page.waitForFunction(() => document.querySelector('#t-maxnum').textContent === '1', null, { timeout: 10_000 });
    await page.waitForSelector('#events li[data-type="maxnum"]');
    await page.fill('#bots', '6');
    await page.click('#bots-form button');
    await page.waitForFunction(() => /6 running/.test(document.querySelector('#bots-summary').textContent), null, { timeout: 10_000 });
    await page.waitForSelector('#events li[data-type="spawn"]', { timeout: 60_000 });
    await page.waitForFunction((n) => document.querySelectorAll('#procs-body tr[data-kind="fight"]').length > n, fightsBefore, { timeout: 30_000 });
    const bars = await page.$$eval('#procs-body tr[data-kind="fight"] .loadbar span', (s) => s.map((e) => e.textContent));
    assert.ok(bars.every((t) => /^\d+ \/ 1$/.test(t)), `load bars against MAXNUM 1: ${bars}`);
    await page.waitForFunction(() => Number(document.querySelector('#t-mpm').textContent) > 0, null, { timeout: 30_000 });
    await page.waitForTimeout(1000);
    await screenshot(page, 'dashboard');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await api('POST', '/v1/bots', { token: op, body: { count: 0 } }).catch(() => {});
    await api('POST', '/v1/fleet/maxnum', { token: op, body: { maxnum: 1000 } }).catch(() => {});
  }
});
