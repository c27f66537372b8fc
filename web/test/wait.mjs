// wait.mjs: waits until the arena at ARENA_URL answers and its chat, fight
// and map servers are ready (the pages connect to all three at once).
import { BASE, waitReady } from './lib.mjs';

try {
  await waitReady(BASE, Number(process.env.ARENA_WAIT_MS || 60000));
} catch (e) {
  console.error(e.message);
  process.exit(1);
}
