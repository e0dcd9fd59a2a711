/**
 * Version of the React Native instrumentation library. It is recorded in each shadow's
 * `__penumbra/identity.json` and sent as the `lib` attribute of `session/start`; bump it whenever
 * `src/instrument-rn.ts` changes behaviour or its wire output.
 */
export const RN_LIBRARY_VERSION = '1.0.0';
