/**
 * jest `setupFiles` of every project: fast-check's global seed is FUZZ_SEED (test/fuzz/seed.ts),
 * so every fc.assert / fc.sample without its own seed replays from one number. Each test file
 * runs in its own module registry, hence its own fast-check instance configured here.
 */
import fc from 'fast-check';
import { fuzzSeed } from './seed.ts';

fc.configureGlobal({ ...fc.readConfigureGlobal(), seed: fuzzSeed() });
