/**
 * Builds the injected instrumentation library (src/instrument.ts) into one minified IIFE
 * string with esbuild, in memory. The ingest step writes `source` into each shadow copy as
 * `fileName` (versioned, so it can be served immutable) after the `window.__PENUMBRA__` script.
 * The result is cached per process: the build is deterministic for a given source tree.
 */
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { LIBRARY_VERSION } from './version.ts';

export interface BuiltLibrary {
  version: string;
  /** `penumbra-instrument-<version>.js` */
  fileName: string;
  source: string;
  /** Size of `source` gzipped at level 9: the figure the 5 KB budget is checked against. */
  gzipBytes: number;
}

/** Budget for min+gzip bytes (checked by build.test.ts). */
export const SIZE_BUDGET_BYTES = 5120;

const ENTRY = fileURLToPath(new URL('./src/instrument.ts', import.meta.url));

let cached: Promise<BuiltLibrary> | undefined;

export function buildLibrary(): Promise<BuiltLibrary> {
  cached ??= compile().catch((err: unknown) => {
    cached = undefined; // do not cache a failure: a fixed source must build on the next call
    throw err;
  });
  return cached;
}

async function compile(): Promise<BuiltLibrary> {
  const out = await build({
    entryPoints: [ENTRY],
    bundle: true,
    write: false,
    format: 'iife',
    minify: true,
    target: 'es2018',
    platform: 'browser',
    legalComments: 'none',
    define: { __LIB_VERSION__: JSON.stringify(LIBRARY_VERSION) },
    logLevel: 'silent',
  });
  const source = out.outputFiles[0].text;
  return {
    version: LIBRARY_VERSION,
    fileName: `penumbra-instrument-${LIBRARY_VERSION}.js`,
    source,
    gzipBytes: gzipSync(source, { level: 9 }).length,
  };
}
