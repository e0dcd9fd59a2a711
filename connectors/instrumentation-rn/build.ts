/**
 * Builds the React Native instrumentation (src/instrument-rn.ts) into one minified IIFE on a
 * single line, with esbuild, in memory — like connectors/instrumentation/build.ts. The single
 * line matters: the ingest step prepends it to the first line of each platform bundle
 * (pipeline/mobile/rn-shadow.ts) so the bundle's own line numbers do not move.
 * Target es2016 and no classes/async in the source: Hermes compiles it as is.
 */
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { compileLibrary } from '../instrumentation/build.ts';
import { RN_LIBRARY_VERSION } from './version.ts';

export interface BuiltRnLibrary {
  version: string;
  /** `penumbra-instrument-rn-<version>.js` (the name identity.json records). */
  fileName: string;
  source: string;
  gzipBytes: number;
}

/** Budget for min+gzip bytes (build.test.ts): it rides in every shadow bundle. */
export const RN_SIZE_BUDGET_BYTES = 5120;

const ENTRY = fileURLToPath(new URL('./src/instrument-rn.ts', import.meta.url));
let cached: Promise<BuiltRnLibrary> | undefined;

export function buildRnLibrary(): Promise<BuiltRnLibrary> {
  cached ??= compile().catch((err: unknown) => {
    cached = undefined;
    throw err;
  });
  return cached;
}

async function compile(): Promise<BuiltRnLibrary> {
  const built = await compileLibrary({ entry: ENTRY, target: 'es2016', platform: 'neutral', version: RN_LIBRARY_VERSION, name: 'penumbra-instrument-rn' });
  // esbuild ends its output with a newline; the library must be exactly one line (see above).
  const source = built.source.replace(/\s+$/, '');
  if (/[\r\n\u2028\u2029]/.test(source)) throw new Error('the React Native library must build to a single line');
  return { ...built, source, gzipBytes: gzipSync(source, { level: 9 }).length };
}
