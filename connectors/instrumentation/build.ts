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
  cached ??= compileLibrary({ entry: ENTRY, target: 'es2018', platform: 'browser', version: LIBRARY_VERSION, name: 'penumbra-instrument' }).catch((err: unknown) => {
    cached = undefined; // do not cache a failure: a fixed source must build on the next call
    throw err;
  });
  return cached;
}

/** What differs between the injected libraries (web here, React Native in connectors/instrumentation-rn). */
export interface LibraryTarget {
  entry: string;
  target: string;
  platform: 'browser' | 'neutral';
  version: string;
  /** File name stem: the file is `<name>-<version>.js`. */
  name: string;
}

/** One minified IIFE in memory, its version baked in as `__LIB_VERSION__`, sized at gzip level 9. */
export async function compileLibrary(t: LibraryTarget): Promise<BuiltLibrary> {
  const out = await build({
    entryPoints: [t.entry],
    bundle: true,
    write: false,
    format: 'iife',
    minify: true,
    target: t.target,
    platform: t.platform,
    legalComments: 'none',
    define: { __LIB_VERSION__: JSON.stringify(t.version) },
    logLevel: 'silent',
  });
  const source = out.outputFiles[0].text;
  return { version: t.version, fileName: `${t.name}-${t.version}.js`, source, gzipBytes: gzipSync(source, { level: 9 }).length };
}
