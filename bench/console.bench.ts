/**
 * Operator console: shipped JS+CSS size (sum of console/dist assets, gzip) and time to first
 * render of the live dashboard in headless Chromium, against the console test's static server
 * + fake API. Peer for the render time: a blank page served by the same server (the floor of
 * launching a page), so `ratio` reads "how many blank-page loads one dashboard costs".
 * Builds console/dist first when it is missing.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { BenchOptions, BenchResult } from './types.ts';
import { startFakeServer } from '../console/test/fake-api.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'console', 'dist');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];

function gzipKb(dir: string): { total: number; js: number } {
  let total = 0, js = 0;
  for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const p = path.join(dir, f);
    if (!fs.statSync(p).isFile()) continue;
    const n = zlib.gzipSync(fs.readFileSync(p), { level: 9 }).length;
    total += n;
    if (f.endsWith('.js')) js += n;
  }
  return { total: total / 1024, js: js / 1024 };
}
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

export async function run(opts: BenchOptions): Promise<BenchResult[]> {
  if (!fs.existsSync(path.join(dist, 'index.html'))) {
    execFileSync(process.execPath, [path.join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', 'console', '--logLevel', 'warn'], { cwd: root, stdio: 'inherit' });
  }
  const size = gzipKb(path.join(dist, 'assets'));
  const blank = path.join(dist, '__bench-blank.html');
  fs.writeFileSync(blank, '<!doctype html><title>blank</title><p id="ready">ready</p>');
  const server = await startFakeServer(dist);
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ARGS });
  const rounds = opts.quick ? 3 : 10;
  const ours: number[] = [], peer: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 } });
      await ctx.addInitScript(() => sessionStorage.setItem('penumbra.token', 'op-token'));
      const page = await ctx.newPage();
      let t0 = performance.now();
      await page.goto(`${server.url}/#/items/com.example.notes/dashboard`);
      await page.locator('.chart canvas').first().waitFor();
      ours.push(performance.now() - t0);
      t0 = performance.now();
      await page.goto(`${server.url}/__bench-blank.html`);
      await page.locator('#ready').waitFor();
      peer.push(performance.now() - t0);
      await ctx.close();
    }
  } finally {
    await browser.close();
    await server.close();
    fs.rmSync(blank, { force: true });
  }
  const o = median(ours), p = median(peer);
  return [
    { name: 'console assets (gzip)', unit: 'KB', ours: +size.total.toFixed(1), peer: null, peerName: null, ratio: null, notes: `JS ${size.js.toFixed(1)} KB gz` },
    { name: 'console dashboard first render', unit: 'ms', ours: +o.toFixed(1), peer: +p.toFixed(1), peerName: 'blank page', ratio: +(o / p).toFixed(2), notes: `median of ${rounds}, sign-in via stored token, first uPlot canvas` },
  ];
}
