/**
 * Version of the injected instrumentation library. It names the served file
 * (`penumbra-instrument-<version>.js`) so CDN caches can keep it immutable; bump it whenever
 * `src/instrument.ts` changes behaviour or its wire output.
 */
export const LIBRARY_VERSION = '1.1.0';
