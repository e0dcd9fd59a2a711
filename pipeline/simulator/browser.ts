/**
 * Real-browser sessions for the simulator (`--browser N`): N headless Chromium sessions open
 * `/launch/{itemId}?userId=…` like a device would, so the shadow copy (or its control: the
 * original, instrumented alike) runs its injected library and sends real telemetry (navigation
 * timings, web vitals, endpoint requests, errors, usage) with the assignment token /launch handed
 * it; original sessions send nothing (the original is not instrumented).
 *
 * Per session: a fresh browser context (its own storage) → launch URL → wait for `load` and the
 * library's runtime-config fetch → click each configured point present on the page → navigate
 * away (pagehide: the library flushes with sendBeacon, including `session end`) → close.
 * Sessions start evenly spread over the run and go one at a time (Chromium is heavy on 2 cores);
 * those not started when the duration ends run back to back, so the run has its N sessions
 * unless stop() is called.
 * playwright-core is imported only here, so HTTP-only runs never load it.
 */
import type { BrowserReport } from './runner.ts';
import type { SimUser } from './model.ts';

export interface BrowserSessionsOptions {
  base: string;
  items: string[];
  sessions: number;
  durationMs: number;
  /** stop(): no new browser session starts. (The end of the duration does not cut them short:
   * sessions not started by then run back to back, so a run always has its N sessions.) */
  signal: AbortSignal;
  seed: string;
  runId: string;
  user: (i: number) => SimUser;
  chromiumPath?: string;
  log: (msg: string, extra?: Record<string, unknown>) => void;
  noteError: (msg: string) => void;
}

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

const wait = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

export async function runBrowserSessions(o: BrowserSessionsOptions): Promise<BrowserReport> {
  const out: BrowserReport = { sessions: 0, byVariant: {}, clicks: 0, failed: 0, avgSessionMs: 0 };
  let totalMs = 0;
  const { chromium } = await import('playwright-core');
  let browser;
  try {
    browser = await chromium.launch({ executablePath: o.chromiumPath ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
  } catch (err) {
    out.failed = o.sessions;
    o.noteError(`browser: cannot start Chromium: ${(err as Error).message.split('\n')[0]}`);
    return out;
  }
  const startedAt = Date.now();
  // A browser session takes a few seconds; leave room for the last one before the end.
  const spacing = Math.max(0, (o.durationMs - 4000) / o.sessions);
  try {
    for (let i = 0; i < o.sessions && !o.signal.aborted; i++) {
      await wait(startedAt + i * spacing - Date.now(), o.signal);
      if (o.signal.aborted) break;
      const u = o.user(i);
      const itemId = o.items[i % o.items.length];
      const userId = `${u.userId}-b${o.runId}`;
      const q = new URLSearchParams({ userId, deviceType: u.deviceType, country: u.country, appVersion: u.appVersion });
      const t0 = Date.now();
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        await page.goto(`${o.base}/launch/${encodeURIComponent(itemId)}?${q}`, { waitUntil: 'load', timeout: 15_000 });
        // /d/{itemId}/{version}/{variant}/{file}
        const m = /\/d\/[^/]+\/[^/]+\/([^/]+)\//.exec(new URL(page.url()).pathname);
        const variant = m ? decodeURIComponent(m[1]) : 'unknown';
        out.byVariant[variant] = (out.byVariant[variant] ?? 0) + 1;
        let selectors: string[] = [];
        if (variant !== 'original') {
          const rc = await fetch(`${o.base}/api/v1/items/${encodeURIComponent(itemId)}/runtime-config?variant=${encodeURIComponent(variant)}`);
          if (rc.ok) selectors = ((await rc.json()) as { points: { selector: string }[] }).points.map((p) => p.selector);
          await page.waitForTimeout(1000); // the library buffers until its runtime config arrives
        }
        for (const sel of selectors) {
          if ((await page.locator(sel).count()) === 0) continue;
          await page.locator(sel).first().click({ timeout: 3000 });
          out.clicks++;
        }
        await page.waitForTimeout(300);
        await page.goto('about:blank'); // pagehide: the library sends the rest with sendBeacon
        await page.waitForTimeout(300);
        out.sessions++;
        totalMs += Date.now() - t0;
      } catch (err) {
        out.failed++;
        o.noteError(`browser: ${(err as Error).message.split('\n')[0]}`);
      } finally {
        await context.close().catch(() => {});
      }
    }
  } finally {
    await browser.close().catch(() => {});
  }
  out.avgSessionMs = out.sessions ? Math.round(totalMs / out.sessions) : 0;
  o.log('browser sessions done', { ...out });
  return out;
}
