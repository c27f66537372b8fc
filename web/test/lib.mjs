// Shared helpers of the browser tests: the arena under test, Chromium, and
// pages that record every console error.
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** BASE is the arena's HTTP address (scripts/browser-test.sh sets ARENA_URL). */
export const BASE = (process.env.ARENA_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');

/** SHOTS is the folder screenshots are written to. */
export const SHOTS = process.env.ARENA_SCREENSHOTS || path.resolve(here, '../../test-artifacts/screenshots');

/** CHROMIUM is the browser binary (Debian's chromium). */
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** operatorToken reads the operator token arena up wrote. */
export function operatorToken() {
  if (process.env.ARENA_OPERATOR_TOKEN) return process.env.ARENA_OPERATOR_TOKEN;
  const file = process.env.ARENA_CREDENTIALS || path.resolve(here, '../../.arena/credentials.json');
  return JSON.parse(fs.readFileSync(file, 'utf8')).operator_token;
}

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * portBlock finds n free ports in a row below the ephemeral range, for a
 * test that runs an arena of its own (ARENA_BIN).
 */
export async function portBlock(n) {
  const free = (p) => new Promise((ok) => {
    const s = net.createServer();
    s.once('error', () => ok(false));
    s.listen(p, '127.0.0.1', () => s.close(() => ok(true)));
  });
  for (let t = 0; t < 50; t++) {
    const b = 20000 + Math.floor(Math.random() * 120) * 100;
    let all = true;
    for (let p = b; p < b + n && all; p++) all = await free(p);
    if (all) return b;
  }
  throw new Error('no free ports');
}

/**
 * ownArena prepares an `arena up` of the test's own (ARENA_BIN, set by
 * scripts/browser-test.sh) on a block of free ports with its own
 * credentials file, SQLite database and outbox in a new temporary folder,
 * so it can be stopped and started again on the same ports and files.
 * start() runs it (the process, with exited: a promise of its exit);
 * prefix is its memcached key prefix; log() is what every run printed;
 * remove() deletes the folder; close(browser) closes the browser, stops
 * the arena last started (SIGTERM, waiting for its exit) and removes the
 * folder; printTail(n) prints the last n lines of log() (for a failed
 * test). extra are more flags of `arena up`.
 */
export async function ownArena(name, extra = []) {
  const b = await portBlock(40);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `arena-${name}-`));
  const credentials = path.join(dir, 'credentials.json');
  const prefix = `${name}-${process.pid}-${b}:`;
  const args = ['up', '--http', `127.0.0.1:${b}`, '--listen', `127.0.0.1:${b + 1}`, '--grpc', `127.0.0.1:${b + 2}`,
    '--chat-port', String(b + 3), '--host-listen', `127.0.0.1:${b + 4}`, '--host', '127.0.0.1',
    '--fight-port-base', String(b + 10), '--map-port-base', String(b + 25),
    '--store-prefix', prefix, '--credentials', credentials,
    '--db', 'sqlite:' + path.join(dir, 'arena.db'), '--outbox', path.join(dir, 'outbox'), '--bots', '0', ...extra];
  let log = '';
  let current = null;
  const remove = () => fs.rmSync(dir, { recursive: true, force: true });
  return {
    base: `http://127.0.0.1:${b}`,
    credentials,
    prefix,
    log: () => log,
    start() {
      const p = spawn(process.env.ARENA_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      p.stdout.on('data', (d) => { log += d; });
      p.stderr.on('data', (d) => { log += d; });
      p.exited = new Promise((ok) => p.once('exit', ok));
      current = p;
      return p;
    },
    remove,
    printTail(n) {
      console.error(log.split('\n').slice(-n).join('\n'));
    },
    async close(browser) {
      await browser.close();
      if (current) {
        current.kill('SIGTERM');
        await current.exited;
      }
      remove();
    },
  };
}

/** queued reports how many players the queues of the arena at base hold. */
export async function queued(base = BASE) {
  const st = await (await fetch(base + '/v1/stats')).json();
  return Object.values(st.queues || {}).reduce((a, n) => a + n, 0);
}

/**
 * open (base: an arena other than BASE) makes a fresh browser context (its own session storage, so its own
 * guest) and page, recording console errors and uncaught exceptions in
 * errors.
 */
export async function open(browser, url, { width = 1280, height = 860, base = BASE } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  await page.goto(base + url);
  return { context, page, errors };
}

/**
 * unexpected drops from errors (an open() page's) the lines the browser
 * itself logs for a WebSocket it could not open because the server was
 * down (a restart, a killed fight server): what remains went wrong.
 */
export function unexpected(errors) {
  return errors.filter((e) => !/^console: WebSocket connection to '\S+' failed: .*ERR_CONNECTION_REFUSED$/.test(e));
}

/**
 * screenshot saves the whole page, from the top; with viewport, only what
 * is on screen now, as the player sees it (scrolled as it is).
 */
export async function screenshot(page, name, { viewport = false } = {}) {
  fs.mkdirSync(SHOTS, { recursive: true });
  const file = path.join(SHOTS, name + '.png');
  if (!viewport) await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: file, fullPage: !viewport });
  return file;
}

/**
 * waitReady waits until the arena at base answers and its chat, fight and
 * map servers are ready (the pages connect to all three at once); it
 * throws after ms.
 */
export async function waitReady(base = BASE, ms = 60_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(base + '/v1/fleet');
      if (r.ok) {
        const t = await r.json();
        const ready = new Set((t.processes || []).filter((p) => p.state === 'ready').map((p) => p.kind));
        if (['chat', 'fight', 'map'].every((k) => ready.has(k))) return;
      }
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`arena at ${base} did not become ready`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** api calls the arena's HTTP API from the test (for setup, not assertions about pages). */
export async function api(method, p, { token, body } = {}) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  const r = await fetch(BASE + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let data = null;
  try { data = JSON.parse(text); } catch { data = text; }
  if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${text}`);
  return data;
}

/**
 * noBots sets the bot count to 0 and waits until no bot runs and nobody
 * waits in the queue, so the test's own players can only meet each other.
 */
export async function noBots() {
  await api('POST', '/v1/bots', { token: operatorToken(), body: { count: 0 } });
  for (let i = 0; i < 150; i++) {
    const [b, s] = await Promise.all([api('GET', '/v1/bots'), api('GET', '/v1/stats')]);
    const queued = Object.values(s.queues || {}).reduce((a, n) => a + n, 0);
    if (b.running === 0 && queued === 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('bots did not stop or the queue did not empty');
}

/**
 * guest logs a new guest in on a fresh page ("Play as guest" also queues).
 * With queue false it cancels the queue and waits in the lobby.
 */
export async function guest(browser, name, { queue = true } = {}) {
  const p = await open(browser, '/');
  if (name) await p.page.fill('#login-name', name);
  await p.page.click('#guest');
  await p.page.waitForSelector('#view-queue:not([hidden]), #view-fight:not([hidden])');
  if (!queue) {
    await p.page.click('#cancel');
    await p.page.waitForSelector('#view-lobby:not([hidden])');
  }
  await p.page.waitForSelector('#chat-status.ok', { timeout: 15_000 });
  return p;
}

/**
 * botsQueued sets count bots playing and waits until that many are in the
 * queue, so a guest who queues now is matched with them.
 */
export async function botsQueued(count) {
  await api('POST', '/v1/bots', { token: operatorToken(), body: { count } });
  for (let i = 0; i < 150; i++) {
    const st = await api('GET', '/v1/bots');
    if ((st.states.queued || 0) >= count) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('bots did not queue');
}
