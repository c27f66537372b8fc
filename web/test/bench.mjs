// bench.mjs: how fast the play page gets a person into a fight, against a
// baseline measured in the same run. Not part of the default browser tests;
// run it with `scripts/browser-test.sh bench.mjs` (docs/benchmarks/web.md).
//
// Workload: BENCH_BOTS bots (default 5) keep queueing and playing. Each trial
// is one new guest; trials alternate between
//   page: a fresh browser context opens /, clicks "Play as guest" (which
//         logs in and queues), until the fight shows all three players;
//   raw:  the same browser, on a blank page of the same origin, runs the
//         bare protocol (POST /v1/login, /v1/play queue, match, fight join
//         until the "state" message) with no UI at all.
// Each measures click (or first request) to in-room; the guest then leaves
// the room, so the bots finish it. Prints one JSON object and writes it to
// test-artifacts/bench-web.json.
import { test } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import { launch, open, api, operatorToken, BASE, SHOTS } from './lib.mjs';

const TRIALS = Number(process.env.BENCH_TRIALS || 10);
const BOTS = Number(process.env.BENCH_BOTS || 5);

function q(sorted, p) { return sorted[Math.min(sorted.length - 1, Math.floor(p * (sorted.length - 1) + 0.5))]; }
function summary(v) {
  const s = [...v].sort((a, b) => a - b);
  return { n: s.length, p50_ms: Math.round(q(s, 0.5)), p95_ms: Math.round(q(s, 0.95)), max_ms: Math.round(s[s.length - 1]), mean_ms: Math.round(s.reduce((a, b) => a + b, 0) / s.length) };
}

async function pageTrial(browser) {
  const { context, page, errors } = await open(browser, '/');
  await page.waitForSelector('#view-login:not([hidden])');
  const t0 = Date.now();
  await page.click('#guest'); // logs in and queues
  await page.waitForFunction(() => document.querySelectorAll('#roster .fighter').length === 3 &&
    ![...document.querySelectorAll('#roster .sc')].some((e) => e.textContent.includes('joining') && e.closest('.fighter.me')), null, { timeout: 60_000 });
  const ms = Date.now() - t0;
  await page.click('#leave');
  await context.close();
  if (errors.length) throw new Error('console errors: ' + errors.join('; '));
  return ms;
}

async function rawTrial(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(BASE + '/healthz');
  const ms = await page.evaluate(async () => {
    const t0 = Date.now();
    const r = await fetch('/v1/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username: 'raw-' + Math.floor(Math.random() * 1e6), photo: '' }) });
    const id = await r.json();
    const next = (ws, pred) => new Promise((ok, fail) => {
      ws.addEventListener('message', function h(ev) { const m = JSON.parse(ev.data); if (pred(m)) { ws.removeEventListener('message', h); ok(m); } });
      ws.addEventListener('close', () => fail(new Error('closed')));
    });
    const play = new WebSocket(`ws://${location.host}/v1/play?token=${encodeURIComponent(id.token)}`);
    await new Promise((ok) => play.addEventListener('open', ok));
    const match = next(play, (m) => m.type === 'match');
    play.send(JSON.stringify({ type: 'queue' }));
    const m = await match;
    const fight = new WebSocket(m.fight + '?ticket=' + encodeURIComponent(m.ticket));
    await next(fight, (x) => x.type === 'state');
    const took = Date.now() - t0;
    fight.send(JSON.stringify({ type: 'leave' }));
    await new Promise((ok) => setTimeout(ok, 100));
    fight.close();
    play.close();
    return took;
  });
  await context.close();
  return ms;
}

test(`bench: guest to fight with ${BOTS} bots, page vs raw protocol`, { timeout: 30 * 60_000 }, async () => {
  const op = operatorToken();
  await api('POST', '/v1/bots', { token: op, body: { count: BOTS } });
  const browser = await launch();
  const page = [], raw = [];
  try {
    for (let i = 0; i < 100; i++) { // let the bots log in and start playing
      const st = await api('GET', '/v1/bots');
      if (st.running === BOTS && !st.states.starting) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, 3000));
    for (let i = 0; i < TRIALS; i++) {
      page.push(await pageTrial(browser));
      raw.push(await rawTrial(browser));
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    await browser.close();
    await api('POST', '/v1/bots', { token: op, body: { count: 0 } }).catch(() => {});
  }
  const p = summary(page), r = summary(raw);
  const out = {
    bots: BOTS, trials: TRIALS, page: p, raw_protocol_baseline: r,
    ratio_p50: +(p.p50_ms / r.p50_ms).toFixed(2), ratio_p95: +(p.p95_ms / r.p95_ms).toFixed(2),
    within_10s: page.filter((v) => v < 10_000).length + '/' + page.length,
    samples_ms: { page, raw },
  };
  console.log(JSON.stringify(out));
  const file = path.resolve(SHOTS, '..', 'bench-web.json');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
});
