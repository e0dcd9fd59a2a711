/**
 * The simulator: devices against a running Penumbra (resolve → fetch the variant → telemetry),
 * with effects on shadows. Used by `penumbra simulate`, `penumbra start --demo`, tests and
 * benchmarks. Pure generators in model.ts/prng.ts, the HTTP loop in runner.ts, real-browser
 * sessions in browser.ts. README.md beside this file documents the behaviour model.
 */
export { startSimulation, runSimulation, type SimulationOptions, type SimulationReport, type SimulationHandle, type BrowserReport } from './runner.ts';
export {
  parseEffect, behaviourFor, effectApplies, makeUser, planSession, batchesOf, batchBody, truncatePlan, nextArrivalGapMs, conversionRate,
  BASELINE, DEFAULT_DISTRIBUTIONS, type Effect, type Behaviour, type Distributions, type SimUser, type SimEvent, type SessionPlan, type SessionInput, type PlannedBatch,
} from './model.ts';
export { Prng, hashSeed } from './prng.ts';
