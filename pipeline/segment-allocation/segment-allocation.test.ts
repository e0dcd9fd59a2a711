import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { banditIssues, parseBandit, startBandit, type BanditPlan, type BanditState } from '../bandit/plan.ts';
import { assignBandit, banditUnit, pickArm } from '../bandit/assign.ts';
import { StickyIndex } from '../bandit/sticky.ts';
import type { ArmTotals } from '../rollout/arm-aggregates.ts';
import { sequentialTests } from '../rollout/feature.ts';
import type { ShadowProfile } from '../domain/types.ts';
import { applyCellOverride, applySegmentReweight, decideSegmentReweight, type CellRecord } from './decide.ts';
import { cellEvidence } from './evidence.ts';
import { cellIndexOf, compiledCells } from './cells.ts';
import { CellAggregates } from './cell-aggregates.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
type GArm = { sessions: number; buy: number; errorSessions: number };
const golden = JSON.parse(readFileSync(path.join(here, 'golden', 'cases.json'), 'utf8')) as {
  plan: BanditPlan; startedAt: number;
  cases: { name: string; now: number; cells: Record<string, Record<string, GArm>>; expect: Record<string, { phase: string; drops: string[]; weights: Record<string, number> } | null> }[];
};

const shadows = ['a', 'b'].map((name) => ({ name, traffic: { match: 'all', rules: [] as unknown[] } }));
const totals = (g: GArm): ArmTotals => ({ sessions: g.sessions, errorSessions: g.errorSessions, requests: 0, requestErrors: 0, latency: { count: 0, sum: 0, sumSq: 0 }, conversions: { buy: g.buy }, perf: {} });
const key = (arm: string) => (arm === 'control' ? 'control:a' : arm);

function profileWith(plan: BanditPlan, state: BanditState): ShadowProfile {
  return { itemId: 'it', profileVersion: 3, state: 'active', seed: 'it', holdout: 0, itemVersion: '1', shadows: [], bandit: plan, banditState: state, updatedBy: 'x', updatedAt: 0 } as unknown as ShadowProfile;
}

describe('per-segment plan', () => {
  it('parses bandit.segments and names the field at fault', () => {
    const p = parseBandit({ arms: ['a', 'b'], metric: 'conversion:buy', segments: { by: 'deviceType', cells: ['android', 'ios'] } }, shadows);
    expect(p.segments).toEqual({ by: 'deviceType', cells: ['android', 'ios'], burnInSessions: null });
    const bad = banditIssues({ arms: ['a', 'b'], metric: 'conversion:buy', segments: { by: 'os', cells: [] } }, 'bandit', shadows);
    expect(bad.issues.map((i) => i.path).sort()).toEqual(['bandit/segments/by', 'bandit/segments/cells']);
    expect(banditIssues({ arms: ['a', 'b'], metric: 'conversion:buy', segments: { by: 'country', cells: ['DE', 'DE'] } }, 'bandit', shadows).issues).toEqual([{ path: 'bandit/segments/cells/1', message: 'duplicate cell "DE"' }]);
    const st = startBandit(p, 1000);
    expect(st.cells!.map((c) => [c.cell, c.weights.map((w) => w.weight)])).toEqual([['android', [1 / 3, 1 / 3, 1 / 3]], ['ios', [1 / 3, 1 / 3, 1 / 3]], ['*', [1 / 3, 1 / 3, 1 / 3]]]);
    expect(banditIssues({ arms: ['a', 'b'], metric: 'conversion:buy', segments: { by: 'country', cells: ['*'] } }, 'bandit', shadows).issues[0].path).toBe('bandit/segments/cells/0');
  });
});

describe('decideSegmentReweight (golden/cases.json: P(best) by scipy integration)', () => {
  it.each(golden.cases.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    const state = startBandit(golden.plan, golden.startedAt);
    const cells = new Map(Object.entries(c.cells).map(([cell, arms]) => [cell, new Map(Object.entries(arms).map(([a, g]) => [key(a), totals(g)]))]));
    const d = decideSegmentReweight({ itemId: 'golden', plan: golden.plan, state, evidence: cellEvidence(golden.plan, cells, sequentialTests), now: c.now });
    const decided = new Map<string, CellRecord>(d.kind === 'reweight' ? d.record.cells.map((r) => [r.cell, r]) : []);
    for (const [cell, exp] of Object.entries(c.expect)) {
      const r = decided.get(cell);
      if (exp === null) {
        expect({ cell, decided: r !== undefined }).toEqual({ cell, decided: false });
        continue;
      }
      expect(r).toBeDefined();
      expect({ cell, phase: r!.phase, drops: r!.drops.map((x) => x.arm) }).toEqual({ cell, phase: exp.phase, drops: exp.drops });
      for (const a of r!.arms) expect({ cell, arm: a.arm, off: Math.abs(a.weight - exp.weights[a.arm]) <= 0.02 }).toEqual({ cell, arm: a.arm, off: true });
      expect(r!.arms.reduce((s, a) => s + a.weight, 0)).toBeCloseTo(1, 9);
    }
    if (d.kind === 'reweight') expect(d.record.reason).toMatch(/deviceType=/);
  });
});

describe('per-segment transitions', () => {
  const plan = golden.plan;
  const reweighted = () => {
    const st = startBandit(plan, 0);
    const cells = new Map(Object.entries(golden.cases[1].cells).map(([cell, arms]) => [cell, new Map(Object.entries(arms).map(([a, g]) => [key(a), totals(g)]))]));
    const d = decideSegmentReweight({ itemId: 'it', plan, state: st, evidence: cellEvidence(plan, cells, sequentialTests), now: 5000 });
    if (d.kind !== 'reweight') throw new Error('expected a decision');
    return { st, d };
  };

  it('applies a cut in one cell only, audited as a guardrail reweighting; a replay of the same decision is stale', () => {
    const { st, d } = reweighted();
    const t = applySegmentReweight(profileWith(plan, st), { scope: 'segments', record: d.record, expect: d.expect }, 5000);
    if (!t.ok) throw new Error(t.detail);
    const cells = t.profile.banditState!.cells!;
    expect(cells.find((c) => c.cell === 'android')!.dropped.map((x) => x.arm)).toEqual(['b']);
    expect(cells.find((c) => c.cell === 'android')!.weights.find((w) => w.arm === 'b')!.weight).toBe(0);
    expect(cells.find((c) => c.cell === 'ios')!.epoch).toBe(0);
    expect(t.decisions[0]).toMatchObject({ kind: 'reweight', rule: 'segment_guardrail', automated: true });
    const again = applySegmentReweight(t.profile, { scope: 'segments', record: d.record, expect: d.expect }, 6000);
    expect(again).toMatchObject({ ok: false, errorCode: 'noop' });
    // The global weights are untouched.
    expect(t.profile.banditState!.weights).toEqual(st.weights);
  });

  it('an operator override fixes a cell (normalised), the analyzer then leaves it alone, a release hands it back', () => {
    const st = startBandit(plan, 0);
    const o = applyCellOverride(profileWith(plan, st), { action: 'cell_override', cell: 'ios', weights: { b: 3, control: 1 } }, 'ops', 'campaign', 100);
    if (!o.ok) throw new Error(o.detail);
    const ios = o.profile.banditState!.cells!.find((c) => c.cell === 'ios')!;
    expect(ios.weights).toEqual([{ arm: 'a', weight: 0 }, { arm: 'b', weight: 0.75 }, { arm: 'control', weight: 0.25 }]);
    expect(o.decisions[0]).toMatchObject({ kind: 'reweight', rule: 'segment_override', automated: false, reason: expect.stringMatching(/ops fixed the weights of deviceType=ios: a 0%, b 75%, control 25%.*campaign/) });
    const cells = new Map(Object.entries(golden.cases[0].cells).map(([cell, arms]) => [cell, new Map(Object.entries(arms).map(([a, g]) => [key(a), totals(g)]))]));
    const d = decideSegmentReweight({ itemId: 'it', plan, state: o.profile.banditState!, evidence: cellEvidence(plan, cells, sequentialTests), now: 61_000 });
    expect(d.kind === 'reweight' ? d.record.cells.map((c) => c.cell) : []).toEqual(['android', '*']);
    expect(applyCellOverride(profileWith(plan, st), { action: 'cell_override', cell: 'ios', weights: { zz: 1 } }, 'ops', null, 1)).toMatchObject({ ok: false, errorCode: 'validation', issues: [{ path: 'weights/zz' }] });
    expect(applyCellOverride(profileWith(plan, st), { action: 'cell_override', cell: 'web', weights: { a: 1 } }, 'ops', null, 1)).toMatchObject({ ok: false, errorCode: 'not-found' });
    expect(applyCellOverride(profileWith(plan, st), { action: 'cell_override', cell: 'ios', weights: { a: 0 } }, 'ops', null, 1)).toMatchObject({ ok: false, errorCode: 'validation' });
    const rel = applyCellOverride(o.profile, { action: 'cell_override', cell: 'ios', weights: null }, 'ops', null, 200);
    if (!rel.ok) throw new Error(rel.detail);
    expect(rel.profile.banditState!.cells!.find((c) => c.cell === 'ios')!.override).toBeNull();
    expect(applyCellOverride(rel.profile, { action: 'cell_override', cell: 'ios', weights: null }, 'ops', null, 300)).toMatchObject({ ok: false, errorCode: 'noop' });
  });
});

describe('the resolver side: cell lookup and assignment', () => {
  const plan = parseBandit({ arms: ['a', 'b'], metric: 'conversion:buy', segments: { by: 'deviceType', cells: ['android', 'ios'] } }, shadows);
  const base = startBandit(plan, 1000);
  const state: BanditState = {
    ...base,
    cells: base.cells!.map((c) => c.cell === 'android'
      ? { ...c, weights: [{ arm: 'a', weight: 0.9 }, { arm: 'b', weight: 0.05 }, { arm: 'control', weight: 0.05 }] }
      : { ...c, weights: [{ arm: 'a', weight: 0 }, { arm: 'b', weight: 0.95 }, { arm: 'control', weight: 0.05 }], dropped: [{ arm: 'a', epoch: 1, reason: 'cut' }] }),
  };

  it('finds the cell in one lookup, caches per state object, and zeroes globally dropped arms in every cell', () => {
    const c = compiledCells(plan, state)!;
    expect(compiledCells(plan, state)).toBe(c);
    expect(cellIndexOf(c, { userId: 'u', deviceType: 'ios' }, undefined)).toBe(1);
    // Everyone else is in the rest cell `*`.
    expect(c.names[cellIndexOf(c, { userId: 'u', deviceType: 'web' }, undefined)]).toBe('*');
    expect(c.names[cellIndexOf(c, { userId: 'u' }, undefined)]).toBe('*');
    const dropped = compiledCells(plan, { ...state, dropped: [{ arm: 'b', epoch: 2, reason: 'global' }] })!;
    expect(dropped.weights[0].find((w) => w.arm === 'b')!.weight).toBe(0);
    const seg = parseBandit({ arms: ['a', 'b'], metric: 'conversion:buy', segments: { by: 'segment', cells: ['vip', 'new'] } }, shadows);
    const sc = compiledCells(seg, startBandit(seg, 0))!;
    const lookup = { membership: (id: string, u: string) => (id === 'vip' ? (u === 'v' ? 1 : 0) : id === 'new' ? 1 : -1) as 1 | 0 | -1 };
    expect([cellIndexOf(sc, { userId: 'v' }, lookup), cellIndexOf(sc, { userId: 'n' }, lookup), cellIndexOf(sc, { userId: 'n' }, undefined)]).toEqual([0, 1, 2]);
    expect(cellIndexOf(sc, { userId: 'x' }, { membership: () => 0 })).toBe(2);
  });

  it('new users follow their cell\'s weights; a sticky user keeps the arm unless it is cut in their cell; records carry the cell', () => {
    const c = compiledCells(plan, state)!;
    const sticky = new StickyIndex();
    const decision = { variant: 'a' };
    const answer = (userId: string, cell: number) => assignBandit({ itemId: 'it', userId, seed: 'it', plan, state, sticky, decision, now: 1, cellName: cell >= 0 ? c.names[cell] : null, cellWeights: cell >= 0 ? c.weights[cell] : null })!;
    let onB = 0;
    for (let i = 0; i < 400; i++) {
      const r = answer(`u${i}`, 1);
      expect(r.record!.cell).toBe('ios');
      if (r.variant === 'b') onB++;
      expect(r.variant).not.toBe('a');
    }
    expect(onB).toBeGreaterThan(340);
    // Sticky on a: kept in android, re-assigned in ios where a is cut.
    sticky.apply({ itemId: 'it', userId: 's', run: 1000, arm: 'a', epoch: 0, at: 0, cell: 'android' }, () => true);
    expect(sticky.cellOf('it', 's', 1000)).toBe('android');
    expect(answer('s', 0)).toMatchObject({ variant: 'a', sticky: true });
    const moved = answer('s', 1);
    expect(moved.sticky).toBe(false);
    expect(moved.variant).toBe(pickArm(banditUnit('it', 's'), c.weights[1]) === 'control' ? 'control' : 'b');
    expect(sticky.countsByCell('it', 1000)).toEqual({ android: { a: 1 } });
  });

  it('the sticky winner rule sees per-cell cuts: a re-assignment after a cut in the user\'s cell wins in every resolver', () => {
    // a is cut in ios (state above). Held: a picked in ios before the cut; arriving: the re-assignment to control.
    const isLive = (_i: string, arm: string, cell: string | null) => (cell === 'ios' ? arm !== 'a' : true);
    const x = new StickyIndex();
    x.apply({ itemId: 'it', userId: 'r', run: 1, arm: 'a', epoch: 0, at: 0, cell: 'ios' }, isLive);
    expect(x.apply({ itemId: 'it', userId: 'r', run: 1, arm: 'control', epoch: 0, at: 1, cell: 'ios' }, isLive)).toBe('taken');
    // In the other order the cut arm's record loses (and is answered by re-publishing the winner).
    const y = new StickyIndex();
    y.apply({ itemId: 'it', userId: 'r', run: 1, arm: 'control', epoch: 0, at: 1, cell: 'ios' }, isLive);
    expect(y.apply({ itemId: 'it', userId: 'r', run: 1, arm: 'a', epoch: 0, at: 0, cell: 'ios' }, isLive)).toBe('kept');
    expect([x.get('it', 'r', 1)!.arm, y.get('it', 'r', 1)!.arm]).toEqual(['control', 'control']);
  });
});

describe('CellAggregates', () => {
  it('sums verified sessions per cell of the user\'s allocation; unattributed users are counted apart', () => {
    const agg = new CellAggregates();
    agg.watch('it', ['a', 'b', 'control:a'], 100);
    const ev = (over: Record<string, unknown>) => ({ id: 'x', itemId: 'it', version: '1', profileVersion: 1, sessionId: 's', userId: 'u', variant: 'a', type: 'usage', name: 'buy', ts: 200, attrs: {}, verified: true, ...over }) as never;
    agg.add(ev({ sessionId: 's1', userId: 'u1' }));
    agg.add(ev({ sessionId: 's2', userId: 'u2', variant: 'b', type: 'error', name: 'e' }));
    agg.add(ev({ sessionId: 's3', userId: 'u3', variant: 'control', controlOf: 'a', type: 'session', name: 'start' }));
    agg.add(ev({ sessionId: 's4', userId: 'u4' }));
    agg.add(ev({ sessionId: 's5', userId: 'u1', verified: false }));
    agg.add(ev({ sessionId: 's6', userId: 'u1', ts: 50 }));
    const cellOf: Record<string, string | null> = { u1: 'android', u2: 'android', u3: 'ios', u4: null };
    const t = agg.totals('it', (u) => cellOf[u]);
    expect(t.unattributed).toBe(1);
    expect(t.cells.get('android')!.get('a')).toMatchObject({ sessions: 1, conversions: { buy: 1 } });
    expect(t.cells.get('android')!.get('b')).toMatchObject({ sessions: 1, errorSessions: 1 });
    expect(t.cells.get('ios')!.get('control:a')).toMatchObject({ sessions: 1 });
    expect(agg.counters).toEqual({ added: 4, unverified: 1, early: 1 });
  });
});
