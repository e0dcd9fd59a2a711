import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { banditIssues, parseBandit, startBandit, type BanditPlan } from './plan.ts';
import { computeWeights, probabilityBest, type ArmStats, type Posterior } from './thompson.ts';
import { applyReweight, decideReweight } from './reweight.ts';
import { assignBandit, banditUnit, pickArm } from './assign.ts';
import { StickyIndex, stickyKey, type StickyRecord } from './sticky.ts';
import type { MetricComparison } from '../rollout/evidence.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const golden = JSON.parse(readFileSync(path.join(here, 'golden', 'pbest.json'), 'utf8')) as { cases: { name: string; better: 'higher' | 'lower'; posteriors: Posterior[]; pBest: number[] }[] };

const shadows = ['a', 'b', 'c'].map((name) => ({ name, traffic: { match: 'all', rules: [] as unknown[] } }));
const LIMITS = { minReweightSeconds: 1 };

describe('bandit plan', () => {
  it('fills defaults; better follows the metric', () => {
    expect(parseBandit({ arms: ['a', 'b'], metric: 'conversion:buy' }, shadows, { minReweightSeconds: 60 })).toEqual({
      arms: ['a', 'b'], control: true, metric: 'conversion:buy', better: 'higher', floorShare: 0.05, burnInSessions: 100, reweightSeconds: 60, guardrails: [],
    });
    expect(parseBandit({ arms: ['a', 'b'], metric: 'latencyMean' }, shadows).better).toBe('lower');
  });

  it('names every field at fault', () => {
    const { issues } = banditIssues({ arms: ['a', 'zz', 'a', 'control'], metric: 'conversion:buy', reweightSeconds: 10, floorShare: 0.3 }, 'bandit', shadows);
    expect(issues.map((i) => i.path).sort()).toEqual(['bandit/arms/1', 'bandit/arms/2', 'bandit/arms/3', 'bandit/floorShare', 'bandit/reweightSeconds']);
    const t = banditIssues({ arms: ['a', 'b'], metric: 'errorRate' }, 'bandit', [shadows[0], { name: 'b', traffic: { match: 'all', rules: [{ attribute: 'country', op: 'in', values: ['DE'] }] } }]);
    expect(t.issues).toEqual([{ path: 'bandit/arms/1', message: expect.stringMatching(/same match and rules/) }]);
    expect(banditIssues({ arms: ['a', 'b'], metric: 'errorRate', control: false, guardrails: [{ metric: 'errorRate', direction: 'increase', maxDelta: 0 }] }, 'bandit', shadows, LIMITS).issues[0].path).toBe('bandit/guardrails');
  });
});

describe('Thompson sampling', () => {
  it.each(golden.cases.map((c) => [c.name, c] as const))('P(best) agrees with numerical integration: %s', (_n, c) => {
    const p = probabilityBest(c.posteriors, c.better, 12345);
    // 10,000 draws: standard error ≤ 0.005; 0.02 is four of them.
    p.forEach((x, i) => expect(Math.abs(x - c.pBest[i])).toBeLessThan(0.02));
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('is deterministic for a seed and varies with it', () => {
    const ps = golden.cases[1].posteriors;
    expect(probabilityBest(ps, 'higher', 7)).toEqual(probabilityBest(ps, 'higher', 7));
    expect(probabilityBest(ps, 'higher', 7)).not.toEqual(probabilityBest(ps, 'higher', 8));
  });

  const conv = (arm: string, n: number, x: number): ArmStats => ({ arm, sessions: n, kind: 'proportion', successes: x, trials: n });

  it('keeps equal shares during burn-in', () => {
    const w = computeWeights(['a', 'b', 'control'], [conv('a', 150, 40), conv('b', 90, 10), conv('control', 200, 20)], { better: 'higher', floorShare: 0.05, burnInSessions: 100, dropped: new Set(), seed: 1 });
    expect(w.phase).toBe('burn_in');
    expect(w.arms.map((a) => a.weight)).toEqual([1 / 3, 1 / 3, 1 / 3]);
    expect(w.note).toMatch(/b 90 of 100 sessions/);
  });

  it('applies the floor and sums to 1; dropped arms get 0', () => {
    const w = computeWeights(['a', 'b', 'c', 'control'], [conv('a', 2000, 200), conv('b', 2000, 400), conv('c', 2000, 100), conv('control', 2000, 210)], { better: 'higher', floorShare: 0.05, burnInSessions: 100, dropped: new Set(['c']), seed: 3 });
    expect(w.phase).toBe('thompson');
    const by = Object.fromEntries(w.arms.map((a) => [a.arm, a.weight]));
    expect(by.c).toBe(0);
    expect(by.a).toBeGreaterThanOrEqual(0.05);
    expect(by.control).toBeGreaterThanOrEqual(0.05);
    expect(by.b).toBeCloseTo(0.05 + 0.85 * 1, 3);
    expect(w.arms.reduce((s, a) => s + a.weight, 0)).toBeCloseTo(1, 12);
  });

  it('a mean metric without observations stays in burn-in', () => {
    const w = computeWeights(['a', 'b'], [{ arm: 'a', sessions: 500, kind: 'mean', n: 0, mean: NaN, variance: NaN }, { arm: 'b', sessions: 500, kind: 'mean', n: 300, mean: 120, variance: 400 }], { better: 'lower', floorShare: 0.05, burnInSessions: 100, dropped: new Set(), seed: 1 });
    expect(w.phase).toBe('burn_in');
  });
});

describe('reweighting decisions', () => {
  const plan: BanditPlan = parseBandit({ arms: ['a', 'b'], metric: 'conversion:buy', reweightSeconds: 60, burnInSessions: 50, guardrails: [{ metric: 'errorRate', direction: 'increase', maxDelta: 0.01 }] }, shadows);
  const stats: ArmStats[] = [
    { arm: 'a', sessions: 500, kind: 'proportion', successes: 50, trials: 500 },
    { arm: 'b', sessions: 500, kind: 'proportion', successes: 100, trials: 500 },
    { arm: 'control', sessions: 500, kind: 'proportion', successes: 55, trials: 500 },
  ];
  const ok = (ci: [number, number]): MetricComparison => ({ valid: true, diff: (ci[0] + ci[1]) / 2, ci, p: 0.5, significant: false, alpha: 0.05, shadow: { n: 500, value: 0.05 }, control: { n: 500, value: 0.05 } });
  const healthy = { a: { errorRate: ok([-0.02, 0.02]) }, b: { errorRate: ok([-0.02, 0.02]) } };

  it('reweights every period toward the better arm, reproducibly', () => {
    const s0 = startBandit(plan, 0);
    expect(decideReweight({ itemId: 'i', plan, state: s0, stats, comparisons: healthy, now: 59_999 }).kind).toBe('none');
    const d = decideReweight({ itemId: 'i', plan, state: s0, stats, comparisons: healthy, now: 60_000 });
    if (d.kind !== 'reweight') throw new Error('expected a reweight');
    expect(d.record).toMatchObject({ epoch: 1, phase: 'thompson', scheduled: true, drops: [] });
    const w = Object.fromEntries(d.record.arms.map((a) => [a.arm, a.weight]));
    expect(w.b).toBeGreaterThan(0.85);
    expect(d).toEqual(decideReweight({ itemId: 'i', plan, state: s0, stats, comparisons: healthy, now: 60_000 }));
    const s1 = applyReweight(s0, d.record, 60_100);
    expect(s1).toMatchObject({ epoch: 1, lastReweightAt: 60_100, status: 'running' });
    expect(decideReweight({ itemId: 'i', plan, state: s1, stats, comparisons: healthy, now: 120_099 }).kind).toBe('none');
  });

  it('drops a regressing arm at once, and stops when no shadow arm is left', () => {
    const s0 = startBandit(plan, 0);
    const bad = { a: { errorRate: ok([0.02, 0.08]) }, b: healthy.b };
    const d = decideReweight({ itemId: 'i', plan, state: s0, stats, comparisons: bad, now: 5_000 });
    if (d.kind !== 'reweight') throw new Error('expected a reweight');
    expect(d.record.scheduled).toBe(false);
    expect(d.record.drops.map((x) => x.arm)).toEqual(['a']);
    expect(d.record.arms.find((x) => x.arm === 'a')!.weight).toBe(0);
    const s1 = applyReweight(s0, d.record, 5_000);
    expect(s1.dropped).toEqual([{ arm: 'a', epoch: 1, reason: expect.stringMatching(/^errorRate increase beyond 0.01/) }]);
    const d2 = decideReweight({ itemId: 'i', plan, state: s1, stats, comparisons: { b: { errorRate: ok([0.03, 0.05]) } }, now: 6_000 });
    if (d2.kind !== 'reweight') throw new Error('expected a reweight');
    expect(d2.record.phase).toBe('stopped');
    expect(applyReweight(s1, d2.record, 6_000).status).toBe('stopped');
  });
});

describe('assignment and stickiness', () => {
  const plan = parseBandit({ arms: ['a', 'b'], metric: 'conversion:buy' }, shadows);
  it('new users split by weight', () => {
    const weights = [{ arm: 'a', weight: 0.7 }, { arm: 'b', weight: 0.2 }, { arm: 'control', weight: 0.1 }];
    const counts: Record<string, number> = {};
    for (let i = 0; i < 50_000; i++) {
      const arm = pickArm(banditUnit('item', `u-${i}`), weights)!;
      counts[arm] = (counts[arm] ?? 0) + 1;
    }
    expect(counts.a / 50_000).toBeCloseTo(0.7, 1);
    expect(counts.b / 50_000).toBeCloseTo(0.2, 1);
    expect(counts.control / 50_000).toBeCloseTo(0.1, 1);
    expect(pickArm(0.5, [{ arm: 'a', weight: 0 }])).toBeNull();
  });

  it('keeps a user on their arm across reweightings while it is live, re-assigns after a drop', () => {
    const sticky = new StickyIndex();
    let state = startBandit(plan, 1000);
    const live = (_i: string, arm: string) => (state.weights.find((w) => w.arm === arm)?.weight ?? 0) > 0;
    const ask = () => assignBandit({ itemId: 'i', userId: 'u-1', seed: 'i', plan, state, sticky, decision: { variant: 'a' }, now: 0 })!;
    const first = ask();
    expect(first.sticky).toBe(false);
    sticky.apply(first.record!, live);
    // Weights move everything elsewhere except the floor: the user stays.
    state = { ...state, epoch: 1, weights: ['a', 'b', 'control'].map((arm) => ({ arm, weight: arm === first.record!.arm ? 0.05 : 0.475 })) };
    expect(ask()).toMatchObject({ sticky: true, record: null });
    // Their arm is dropped: a new pick among the live arms, recorded with the new epoch.
    state = { ...state, epoch: 2, weights: state.weights.map((w) => ({ ...w, weight: w.arm === first.record!.arm ? 0 : 0.5 })) };
    const again = ask();
    expect(again.sticky).toBe(false);
    expect(again.record!.arm).not.toBe(first.record!.arm);
    expect(again.record!.epoch).toBe(2);
    expect(sticky.apply(again.record!, live)).toBe('taken');
    expect(sticky.get('i', 'u-1', 1000)!.arm).toBe(again.record!.arm);
  });

  it('users outside the population are not the bandit\'s', () => {
    const sticky = new StickyIndex();
    const state = startBandit(plan, 0);
    expect(assignBandit({ itemId: 'i', userId: 'u', seed: 'i', plan, state, sticky, decision: { variant: 'original' }, now: 0 })).toBeNull();
    expect(assignBandit({ itemId: 'i', userId: 'u', seed: 'i', plan, state, sticky, decision: { variant: 'c' }, now: 0 })).toBeNull();
    expect(assignBandit({ itemId: 'i', userId: 'u', seed: 'i', plan, state, sticky, decision: { variant: 'control', controlOf: 'b' }, now: 0 })).not.toBeNull();
    expect(assignBandit({ itemId: 'i', userId: 'u', seed: 'i', plan, state: { ...state, status: 'stopped' }, sticky, decision: { variant: 'b' }, now: 0 })).toMatchObject({ variant: 'original' });
  });

  it('every resolver ends on the same winner whatever order the records arrive in', () => {
    const arms = ['a', 'b', 'control'];
    const rec = fc.record({ arm: fc.constantFrom(...arms), epoch: fc.integer({ min: 0, max: 5 }) });
    fc.assert(
      fc.property(fc.array(rec, { minLength: 1, maxLength: 6 }), fc.constantFrom(...arms, 'none'), (recs, deadArm) => {
        const live = (_i: string, arm: string) => arm !== deadArm;
        const records: StickyRecord[] = recs.map((r, i) => ({ itemId: 'i', userId: 'u', run: 7, arm: r.arm, epoch: r.epoch, at: i }));
        const a = new StickyIndex();
        const b = new StickyIndex();
        records.forEach((r) => a.apply(r, live));
        [...records].reverse().forEach((r) => b.apply(r, live));
        const wa = a.get('i', 'u', 7);
        const wb = b.get('i', 'u', 7);
        // With a live record present both hold the same live winner (earliest epoch, then smallest arm).
        const liveRecs = records.filter((r) => live('i', r.arm));
        if (liveRecs.length > 0) {
          const best = [...liveRecs].sort((x, y) => x.epoch - y.epoch || (x.arm < y.arm ? -1 : x.arm > y.arm ? 1 : 0))[0];
          expect(wa).toEqual({ arm: best.arm, epoch: best.epoch });
          expect(wb).toEqual(wa);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('a losing arrival is reported so the winner is re-published; older runs are stale', () => {
    const s = new StickyIndex();
    const live = () => true;
    expect(s.apply({ itemId: 'i', userId: 'u', run: 5, arm: 'a', epoch: 1, at: 0 }, live)).toBe('taken');
    expect(s.apply({ itemId: 'i', userId: 'u', run: 5, arm: 'b', epoch: 2, at: 0 }, live)).toBe('kept');
    expect(s.apply({ itemId: 'i', userId: 'u', run: 5, arm: 'a', epoch: 1, at: 9 }, live)).toBe('same');
    expect(s.apply({ itemId: 'i', userId: 'u', run: 4, arm: 'b', epoch: 0, at: 0 }, live)).toBe('stale');
    expect(s.apply({ itemId: 'i', userId: 'v', run: 6, arm: 'b', epoch: 0, at: 0 }, live)).toBe('taken');
    expect(s.get('i', 'u', 5)).toBeUndefined();
    expect(s.counts('i', 6)).toEqual({ b: 1 });
    expect(stickyKey('a:b', 'c')).toBe('3:a:b:c');
  });
});
