/**
 * The one seed of every fast-check run in a test file (fuzzers in test/fuzz and the property
 * tests beside the code): FUZZ_SEED when given — CI's pinned regression pass, or a replay —
 * otherwise a fresh one, written back to FUZZ_SEED so every run in the file and its printout
 * agree. test/fuzz/setup.ts (jest `setupFiles`) makes it fast-check's global seed, so a failure
 * replays with `FUZZ_SEED=<n> [FUZZ_RUNS=<f>] npm test -- <file>`.
 */
import { randomInt } from 'node:crypto';

export function fuzzSeed(): number {
  const raw = process.env.FUZZ_SEED;
  if (raw === undefined || raw.trim() === '') {
    const seed = randomInt(1, 2 ** 31);
    process.env.FUZZ_SEED = String(seed);
    return seed;
  }
  const seed = Number(raw);
  // fast-check takes any 32-bit integer; anything else would be coerced into a different run.
  if (!Number.isInteger(seed) || Math.abs(seed) >= 2 ** 31) throw new Error(`FUZZ_SEED=${raw} is not a 32-bit integer`);
  return seed;
}
