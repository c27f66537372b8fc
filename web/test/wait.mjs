// wait.mjs: waits until the arena at ARENA_URL answers and its chat, fight
// and map servers are ready (the pages connect to all three at once).
import { BASE } from './lib.mjs';

const deadline = Date.now() + Number(process.env.ARENA_WAIT_MS || 60000);
for (;;) {
  try {
    const r = await fetch(BASE + '/v1/fleet');
    if (r.ok) {
      const t = await r.json();
      const ready = new Set((t.processes || []).filter((p) => p.state === 'ready').map((p) => p.kind));
      if (['chat', 'fight', 'map'].every((k) => ready.has(k))) process.exit(0);
    }
  } catch { /* not up yet */ }
  if (Date.now() > deadline) {
    console.error(`arena at ${BASE} did not become ready`);
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 200));
}
