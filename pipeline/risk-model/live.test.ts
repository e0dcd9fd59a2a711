import { electedToRetrain, holdReason, liveShadow, MIN_ARM_SESSIONS, RISK_HOLD_PREFIX, shouldHold, shouldUpdate, type Evidence } from './live.ts';
import { itemPartition } from '../telemetry/item-partition.ts';
import type { ShadowProfile, ShadowSpec } from '../domain/types.ts';
import type { RolloutStatus } from '../rollout/plan.ts';
import type { RiskScore } from '../../schemas/types.generated.ts';

const spec = (name: string, control?: boolean): ShadowSpec => ({ name, instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 }, endpoints: {}, traffic: { percentage: 50, match: 'all', rules: [] }, ...(control === undefined ? {} : { control }) });
/** The version shadow's rollout plan (pipeline/rollout) in a given state. */
const planned = (s: ShadowSpec, status: RolloutStatus = 'running'): ShadowSpec => ({
  ...s, rollout: { steps: [{ percentage: 50 }], analysisSeconds: 30, minSessionsPerArm: 0, guardrails: [], maxInconclusive: 3, onComplete: 'hold' },
  rolloutState: { status, step: 0, stepStartedAt: 0, lastAnalysisAt: null, inconclusive: 0, reason: null },
});
const withPlan = (status: RolloutStatus): ShadowProfile['shadows'] => [spec('checkout'), planned(spec('v-1-1-0', true), status)];
const profile: ShadowProfile = {
  itemId: 'i', profileVersion: 7, state: 'active', seed: 'i', holdout: 0, itemVersion: '1.0.0', shadows: withPlan('running'), updatedBy: 'op', updatedAt: 1,
};
const score = (shadow: string | null, version = '1.1.0'): RiskScore => ({ id: 's1', itemId: 'i', version, shadow, featuresId: 'f', phase: 'ingest', source: 'prior', modelVersion: null, probability: 0.2, low: null, high: null, explanation: [], note: 'prior', evidenceJson: null, at: 0 });
const ev = (shadowSessions: number, shadowErrorSessions: number, baselineSessions: number, baselineErrorSessions: number): Evidence => ({ shadowSessions, shadowErrorSessions, baselineSessions, baselineErrorSessions, baseline: 'control' });

test('a proactive score follows its version shadow; a replacing ingest the shadow with a plan (else the first); nothing once the rollout stopped', () => {
  expect(liveShadow(profile, score('v-1-1-0'))?.name).toBe('v-1-1-0');
  expect(liveShadow(profile, score(null, '1.0.0'))?.name).toBe('v-1-1-0');
  expect(liveShadow({ ...profile, shadows: [spec('checkout'), spec('v-1-1-0', true)] }, score(null, '1.0.0'))?.name).toBe('checkout');
  expect(liveShadow(profile, score(null, '0.9.0'))).toBeNull(); // another version is served
  expect(liveShadow({ ...profile, state: 'rolled_back' }, score('v-1-1-0'))).toBeNull();
  expect(liveShadow({ ...profile, shadows: [spec('checkout')] }, score('v-1-1-0'))).toBeNull(); // promoted or replaced
  expect(liveShadow(undefined, score('v-1-1-0'))).toBeNull();
});

test('an update needs the control arm, enough sessions in both arms, and new shadow sessions', () => {
  expect(shouldUpdate(spec('v', false), ev(100, 2, 100, 2), 0)).toEqual({ update: false, why: 'no_control' });
  expect(shouldUpdate(spec('v'), ev(100, 2, MIN_ARM_SESSIONS - 1, 0), 0)).toEqual({ update: false, why: 'too_few_sessions' });
  expect(shouldUpdate(spec('v'), ev(MIN_ARM_SESSIONS - 1, 0, 100, 2), 0)).toEqual({ update: false, why: 'too_few_sessions' });
  expect(shouldUpdate(spec('v'), ev(30, 0, 30, 1), 25)).toEqual({ update: false, why: 'nothing_new' });
  expect(shouldUpdate(spec('v', true), ev(35, 0, 30, 1), 25)).toEqual({ update: true });
  expect(shouldUpdate(spec('v'), ev(10, 0, 10, 1), 0)).toEqual({ update: true });
});

test('a hold needs the threshold, the shadow\'s running plan, and no earlier hold or release', () => {
  expect(shouldHold(profile, 'v-1-1-0', 0.95, 0.9, false)).toBe(true);
  expect(shouldHold(profile, 'v-1-1-0', 0.9, 0.9, false)).toBe(true);
  expect(shouldHold(profile, 'v-1-1-0', 0.89, 0.9, false)).toBe(false);
  expect(shouldHold(profile, 'v-1-1-0', 0.99, 0.9, true)).toBe(false); // held or released before
  expect(shouldHold(profile, 'v-1-1-0', 0.99, 0, false)).toBe(false); // holds switched off
  expect(shouldHold(profile, 'checkout', 0.99, 0.9, false)).toBe(false); // no running plan on that shadow
  expect(shouldHold({ ...profile, shadows: withPlan('paused') }, 'v-1-1-0', 0.99, 0.9, false)).toBe(false);
  expect(shouldHold({ ...profile, shadows: withPlan('completed') }, 'v-1-1-0', 0.99, 0.9, false)).toBe(false);
  expect(shouldHold({ ...profile, shadows: withPlan('rolled_back') }, 'v-1-1-0', 0.99, 0.9, false)).toBe(false);
  expect(shouldHold({ ...profile, state: 'rolled_back' }, 'v-1-1-0', 0.99, 0.9, false)).toBe(false);
});

test('the hold\'s reason carries its evidence and how to release it', () => {
  const r = holdReason({ ...score('v-1-1-0'), id: 'u1', phase: 'update', probability: 0.934, note: '20.0 % at ingest (prior) → 93.4 %' }, ev(12, 7, 11, 0), 0.9);
  expect(r).toBe(`${RISK_HOLD_PREFIX} u1: risk 93.4 % ≥ 90 % — v-1-1-0: 7/12 sessions with errors vs control 0/11; 20.0 % at ingest (prior) → 93.4 %. Release: POST /api/v1/items/i/risk/release`);
});

test('scheduled retraining: exactly one member of a group is elected, whatever the assignment; a lone process trains', () => {
  const partitions = 6;
  // Every way of splitting 6 by-item partitions over 3 members (each partition to one member).
  for (let code = 0; code < 3 ** partitions; code++) {
    const owner = Array.from({ length: partitions }, (_, p) => Math.floor(code / 3 ** p) % 3);
    const members = [0, 1, 2].map((m) => ({ owns: (itemId: string) => owner[itemPartition(itemId, partitions)] === m }));
    expect(members.filter((m) => electedToRetrain(m))).toHaveLength(1);
  }
  // Inside a rebalance nobody owns the key's partition: nobody trains on that tick.
  expect(electedToRetrain({ owns: () => false })).toBe(false);
  expect(electedToRetrain(null)).toBe(true);
  expect(electedToRetrain({})).toBe(true);
});
