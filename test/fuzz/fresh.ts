/**
 * jest `setupFiles` of the `fuzz-fresh` project (jest.config.js; CI sets FUZZ_FRESH_SEED): the
 * same fuzzers and property tests as the pinned pass, with the fresh seed and a bounded size.
 * Runs before setup.ts. Each test file has its own copy of process.env, so this does not
 * leak into the pinned pass of the same file.
 */
process.env.FUZZ_SEED = process.env.FUZZ_FRESH_SEED;
process.env.FUZZ_RUNS = process.env.FUZZ_FRESH_RUNS ?? '1';
