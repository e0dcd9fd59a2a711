/**
 * The library's build: size budget (5 KB min+gzip, measured like a CDN would serve it),
 * naming, caching, and that the bundle is inert where the page contract is not met.
 */
import { runInNewContext } from 'node:vm';
import { gzipSync } from 'node:zlib';
import { buildLibrary, SIZE_BUDGET_BYTES } from './build.ts';
import { LIBRARY_VERSION } from './version.ts';

describe('buildLibrary', () => {
  it('stays within the 5 KB min+gzip budget', async () => {
    const lib = await buildLibrary();
    const gz = gzipSync(lib.source, { level: 9 }).length;
    expect(gz).toBe(lib.gzipBytes);
    expect(SIZE_BUDGET_BYTES).toBe(5120);
    expect(gz).toBeLessThanOrEqual(5120);
  });

  it('names the file after the library version and caches the build', async () => {
    const a = await buildLibrary();
    expect(a.version).toBe(LIBRARY_VERSION);
    expect(a.fileName).toBe(`penumbra-instrument-${LIBRARY_VERSION}.js`);
    expect(await buildLibrary()).toBe(a);
  });

  it('is a minified es2018 IIFE with the version baked in', async () => {
    const { source } = await buildLibrary();
    expect(source).toMatch(/^("use strict";)?\(\(\)=>\{/);
    expect(source).toContain(JSON.stringify(LIBRARY_VERSION));
    expect(source).not.toContain('__LIB_VERSION__');
    expect(source).not.toMatch(/\?\?|\?\.\w/); // nullish/optional chaining are es2020
    expect(source.split('\n').length).toBeLessThanOrEqual(2);
  });

  it('does nothing (and throws nothing) without window.__PENUMBRA__ or when disabled', async () => {
    const { source } = await buildLibrary();
    for (const global of [undefined, { disabled: true, runtimeConfigUrl: '/rc', telemetryUrl: '/t' }]) {
      const fetchCalls: unknown[] = [];
      const fetch = (...a: unknown[]) => { fetchCalls.push(a); return Promise.reject(new Error('no')); };
      const window: Record<string, unknown> = { __PENUMBRA__: global, fetch };
      window.window = window;
      runInNewContext(source, window);
      expect(window.penumbra).toBeUndefined();
      expect(window.fetch).toBe(fetch);
      expect(fetchCalls).toHaveLength(0);
    }
  });

  it('never throws into the page even in a broken environment', async () => {
    const { source } = await buildLibrary();
    // No DOM at all: `location`, `document`, `performance` are missing.
    const window: Record<string, unknown> = { __PENUMBRA__: { runtimeConfigUrl: '/rc', telemetryUrl: '/t' } };
    window.window = window;
    expect(() => runInNewContext(source, window)).not.toThrow();
    // No `window` at all (a worker, or a server-side render that evaluates the bundle).
    expect(() => runInNewContext(source, { __PENUMBRA__: {} })).not.toThrow();
  });
});
