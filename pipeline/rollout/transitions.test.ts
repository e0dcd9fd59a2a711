import { applyCommand, type Command, type CommandResult } from '../profiles/commands.ts';
import type { ShadowProfile, ShadowSpec } from '../domain/types.ts';
import { decideRollout } from './decide.ts';
import { parsePlan } from './plan.ts';
import { parseBandit } from '../bandit/plan.ts';
import { decideReweight } from '../bandit/reweight.ts';
import { trafficSplitProfile } from '../traffic-split/traffic-split.ts';

const shadow = (name: string, pct: number, extra: Partial<ShadowSpec> = {}): ShadowSpec => ({
  name, instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 }, endpoints: {}, traffic: { percentage: pct, match: 'all', rules: [] }, control: true, ...extra,
});
let n = 0;
const cmd = (over: Partial<Command>): Command => ({ commandId: `c-${++n}`, itemId: 'item', kind: 'put_config', ifMatch: null, payload: {}, actor: 'ada', role: 'operator', reason: null, at: 0, ...over });
function ok(r: CommandResult): Extract<CommandResult, { ok: true }> {
  if (!r.ok) throw new Error(`${r.errorCode}: ${r.detail} ${JSON.stringify(r.issues)}`);
  return r;
}
const plan = parsePlan({ steps: [5, 20, 40], analysisSeconds: 60, minSessionsPerArm: 100, guardrails: [{ metric: 'errorRate', direction: 'increase', maxDelta: 0.01 }] });
const cmp = (ci: [number, number]) => ({ valid: true, diff: (ci[0] + ci[1]) / 2, ci, p: 0.5, significant: false, alpha: 0.05, shadow: { n: 500, value: 0.05 }, control: { n: 500, value: 0.05 } });

function withPlans(): ShadowProfile {
  const created = ok(applyCommand(null, cmd({ kind: 'new_version', ifMatch: 0, payload: { itemVersion: '1.0.0', original: { sha256: 'a'.repeat(64), size: 1 }, shadows: [shadow('a', 0), shadow('b', 0)] } }), 1000)).profile;
  const r = ok(applyCommand(created, cmd({ ifMatch: 1, payload: { shadows: [shadow('a', 0, { rollout: plan }), shadow('b', 0, { rollout: plan })] } }), 2000));
  expect(r.decisions!.map((d) => [d.kind, d.shadow])).toEqual([['start', 'a'], ['start', 'b']]);
  return r.profile;
}

function decision(p: ShadowProfile, name: string, evidence: Parameters<typeof decideRollout>[0]['evidence'], now: number): Command {
  const s = p.shadows.find((x) => x.name === name)!;
  const d = decideRollout({ shadow: name, plan: s.rollout!, state: s.rolloutState!, evidence, baseline: true, now });
  if (d.kind === 'none') throw new Error(d.why);
  return cmd({ kind: 'rollout_decision', actor: 'system:rollout', role: 'system', payload: { shadow: name, decision: d.record, expect: { step: s.rolloutState!.step, stepStartedAt: s.rolloutState!.stepStartedAt, status: s.rolloutState!.status } } });
}

describe('rollout transitions through the profile writer', () => {
  it('a new plan starts at its first step; an unchanged plan keeps its state; undefined keeps, null removes', () => {
    const p = withPlans();
    expect(p.shadows.map((s) => [s.traffic.percentage, s.rolloutState?.status, s.rolloutState?.stepStartedAt])).toEqual([[5, 'running', 2000], [5, 'running', 2000]]);
    const same = ok(applyCommand(p, cmd({ payload: { shadows: p.shadows } }), 3000)).profile;
    expect(same.shadows[0].rolloutState).toEqual(p.shadows[0].rolloutState);
    const { rollout: _r, ...noPlanKey } = p.shadows[0];
    const kept = ok(applyCommand(p, cmd({ payload: { shadows: [noPlanKey, p.shadows[1]] } }), 3000)).profile;
    expect(kept.shadows[0].rollout).toEqual(plan);
    const removed = ok(applyCommand(p, cmd({ payload: { shadows: [{ ...p.shadows[0], rollout: null }, p.shadows[1]] } }), 3000)).profile;
    expect(removed.shadows[0].rollout).toBeUndefined();
    expect(removed.shadows[0].rolloutState).toBeUndefined();
    // While a plan runs it owns the share: a different percentage is refused with the field.
    const r = applyCommand(p, cmd({ payload: { shadows: [{ ...p.shadows[0], traffic: { ...p.shadows[0].traffic, percentage: 30 } }, p.shadows[1]] } }), 3000);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues[0].path).toBe('shadows/0/traffic/percentage');
  });

  it('refuses a plan whose last step cannot fit next to a control cohort', () => {
    const created = ok(applyCommand(null, cmd({ kind: 'new_version', ifMatch: 0, payload: { itemVersion: '1.0.0', original: { sha256: 'a'.repeat(64), size: 1 }, shadows: [shadow('a', 0)] } }), 1000)).profile;
    const r = applyCommand(created, cmd({ payload: { shadows: [shadow('a', 0, { rollout: parsePlan({ steps: [10, 60] }) })] } }), 2000);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues).toEqual([{ path: 'shadows/0/rollout/steps/1', message: expect.stringMatching(/last step \(60%\) does not fit/) }]);
  });

  it('a regressing shadow is rolled back alone while its healthy sibling advances', () => {
    let p = withPlans();
    const users = Array.from({ length: 4000 }, (_, i) => ({ userId: `u-${i}` }));
    const before = users.map((u) => trafficSplitProfile(u, p).variant);
    const bad = { sessions: { shadow: 300, control: 300 }, srm: null, metrics: { errorRate: cmp([0.05, 0.2]) } };
    const good = { sessions: { shadow: 300, control: 300 }, srm: null, metrics: { errorRate: cmp([-0.03, 0.03]) } };
    const rb = ok(applyCommand(p, decision(p, 'a', bad, 30_000), 30_000));
    expect(rb.decisions).toEqual([expect.objectContaining({ kind: 'rollback', rule: 'guardrail', shadow: 'a', automated: true })]);
    p = rb.profile;
    expect(p.shadows[0]).toMatchObject({ state: 'rolled_back', rolloutState: { status: 'rolled_back' } });
    const adv = ok(applyCommand(p, decision(p, 'b', good, 62_000), 62_000));
    p = adv.profile;
    expect(p.shadows[1]).toMatchObject({ traffic: { percentage: 20 }, rolloutState: { status: 'running', step: 1, stepStartedAt: 62_000 } });
    // Nobody of a's went anywhere but the original; b's users stayed, and b grew.
    const after = users.map((u) => trafficSplitProfile(u, p).variant);
    users.forEach((_, i) => {
      if (before[i] === 'a') expect(after[i]).toBe('original');
      if (before[i] === 'b') expect(after[i]).toBe('b');
    });
    expect(after.filter((v) => v === 'a')).toHaveLength(0);
    expect(after.filter((v) => v === 'b').length).toBeGreaterThan(before.filter((v) => v === 'b').length * 3);
  });

  it('a decision computed before an override is stale', () => {
    const p = withPlans();
    const d = decision(p, 'a', { sessions: { shadow: 300, control: 300 }, srm: null, metrics: { errorRate: cmp([-0.03, 0.03]) } }, 62_000);
    const skipped = ok(applyCommand(p, cmd({ kind: 'rollout_control', payload: { shadow: 'a', action: 'skip' } }), 60_000)).profile;
    expect(skipped.shadows[0]).toMatchObject({ traffic: { percentage: 20 }, rolloutState: { step: 1 } });
    expect(applyCommand(skipped, d, 62_000)).toMatchObject({ ok: false, errorCode: 'noop', detail: expect.stringMatching(/^stale decision/) });
  });

  it('operator overrides: pause, resume, restart; per-shadow rollback and activate', () => {
    let p = withPlans();
    p = ok(applyCommand(p, cmd({ kind: 'rollout_control', payload: { shadow: 'a', action: 'pause' }, reason: 'holiday' }), 3000)).profile;
    expect(p.shadows[0].rolloutState).toMatchObject({ status: 'paused', reason: 'paused by ada: holiday' });
    expect(applyCommand(p, cmd({ kind: 'rollout_control', payload: { shadow: 'a', action: 'pause' } }), 3100)).toMatchObject({ ok: false, errorCode: 'noop' });
    p = ok(applyCommand(p, cmd({ kind: 'rollout_control', payload: { shadow: 'a', action: 'resume' } }), 4000)).profile;
    expect(p.shadows[0].rolloutState).toMatchObject({ status: 'running', lastAnalysisAt: 4000 });
    const r = ok(applyCommand(p, cmd({ kind: 'shadow_rollback', payload: { shadow: 'a' } }), 5000));
    expect(r.decisions![0]).toMatchObject({ kind: 'shadow_rollback', automated: false });
    p = r.profile;
    expect(p.shadows[0]).toMatchObject({ state: 'rolled_back', rolloutState: { status: 'rolled_back' } });
    expect(p.shadows[1].state).toBe('active');
    expect(applyCommand(p, cmd({ kind: 'rollout_control', payload: { shadow: 'a', action: 'resume' } }), 5100)).toMatchObject({ ok: false, detail: expect.stringMatching(/restart it instead/) });
    p = ok(applyCommand(p, cmd({ kind: 'rollout_control', payload: { shadow: 'a', action: 'restart' } }), 6000)).profile;
    expect(p.shadows[0]).toMatchObject({ state: 'active', traffic: { percentage: 5 }, rolloutState: { status: 'running', step: 0, stepStartedAt: 6000 } });
    p = ok(applyCommand(p, cmd({ kind: 'shadow_rollback', payload: { shadow: 'b' } }), 7000)).profile;
    p = ok(applyCommand(p, cmd({ kind: 'shadow_activate', payload: { shadow: 'b' } }), 8000)).profile;
    expect(p.shadows[1].state).toBe('active');
    expect(applyCommand(p, cmd({ kind: 'shadow_rollback', payload: { shadow: 'zz' } }), 9000)).toMatchObject({ ok: false, errorCode: 'not-found' });
  });

  it('bandit: started by a PUT, reweighted by the analyzer, stale epochs refused, overridden by an operator', () => {
    let p = ok(applyCommand(null, cmd({ kind: 'new_version', ifMatch: 0, payload: { itemVersion: '1.0.0', original: { sha256: 'a'.repeat(64), size: 1 }, shadows: [shadow('a', 20), shadow('b', 20)] } }), 1000)).profile;
    const bandit = parseBandit({ arms: ['a', 'b'], metric: 'conversion:buy', burnInSessions: 10 }, p.shadows);
    const started = ok(applyCommand(p, cmd({ payload: { shadows: p.shadows, bandit } }), 2000));
    expect(started.decisions).toEqual([expect.objectContaining({ kind: 'bandit_start' })]);
    p = started.profile;
    expect(p.banditState).toMatchObject({ status: 'running', epoch: 0, startedAt: 2000 });
    const stats = [
      { arm: 'a', sessions: 400, kind: 'proportion' as const, successes: 40, trials: 400 },
      { arm: 'b', sessions: 400, kind: 'proportion' as const, successes: 90, trials: 400 },
      { arm: 'control', sessions: 400, kind: 'proportion' as const, successes: 42, trials: 400 },
    ];
    const d = decideReweight({ itemId: 'item', plan: p.bandit!, state: p.banditState!, stats, comparisons: {}, now: 62_000 });
    if (d.kind !== 'reweight') throw new Error(d.why);
    const rw = cmd({ kind: 'reweight', actor: 'system:bandit', role: 'system', payload: { record: d.record, expect: { run: 2000, epoch: 0 } } });
    const after = ok(applyCommand(p, rw, 62_000));
    expect(after.decisions![0]).toMatchObject({ kind: 'reweight', rule: 'thompson', automated: true });
    p = after.profile;
    expect(p.banditState!.epoch).toBe(1);
    expect(p.banditState!.weights.find((w) => w.arm === 'b')!.weight).toBeGreaterThan(0.8);
    expect(applyCommand(p, { ...rw, commandId: 'again' }, 63_000)).toMatchObject({ ok: false, errorCode: 'noop' });
    p = ok(applyCommand(p, cmd({ kind: 'bandit_control', payload: { action: 'pause' } }), 64_000)).profile;
    expect(p.banditState!.status).toBe('paused');
    p = ok(applyCommand(p, cmd({ kind: 'bandit_control', payload: { action: 'stop' } }), 65_000)).profile;
    expect(p.banditState!.status).toBe('stopped');
    // The same bandit in a later PUT keeps its state; removing it ends it.
    expect(ok(applyCommand(p, cmd({ payload: { shadows: p.shadows, bandit: p.bandit } }), 66_000)).profile.banditState!.status).toBe('stopped');
    expect(ok(applyCommand(p, cmd({ payload: { shadows: p.shadows, bandit: null } }), 66_000)).profile.bandit).toBeNull();
  });

  it('promotion replaces the original and keeps what it replaced; its rollback restores it', () => {
    const p0 = withPlans();
    const promoted = ok(applyCommand(p0, cmd({ kind: 'promote', payload: { shadow: 'a', itemVersion: '1.0.0+a.3', original: { sha256: 'b'.repeat(64), size: 2 }, shadows: [p0.shadows[1]] } }), 9000));
    expect(promoted.decisions![0]).toMatchObject({ kind: 'promote', shadow: 'a' });
    const p1 = promoted.profile;
    expect(p1).toMatchObject({ itemVersion: '1.0.0+a.3', original: { sha256: 'b'.repeat(64) }, promotion: { shadow: 'a', fromItemVersion: '1.0.0', toItemVersion: '1.0.0+a.3', by: 'ada' } });
    expect(p1.shadows.map((s) => s.name)).toEqual(['b']);
    const back = ok(applyCommand(p1, cmd({ kind: 'promotion_rollback' }), 10_000)).profile;
    expect(back).toMatchObject({ itemVersion: '1.0.0', original: { sha256: 'a'.repeat(64) }, promotion: null });
    expect(back.shadows.map((s) => [s.name, s.state])).toEqual([['a', 'rolled_back'], ['b', 'active']]);
    expect(applyCommand(back, cmd({ kind: 'promotion_rollback' }), 11_000)).toMatchObject({ ok: false, errorCode: 'noop' });
  });

  it('one promote command for a version too (pipeline/promote): audited evidence says from where and, for a plan, on what', () => {
    const p0 = withPlans();
    // A shadow promotion must name a running shadow; a version promotion need not (its version shadow may be gone).
    expect(applyCommand(p0, cmd({ kind: 'promote', payload: { shadow: 'v-1-1-0', itemVersion: '1.1.0', original: { sha256: 'c'.repeat(64), size: 3 }, shadows: p0.shadows } }), 9000)).toMatchObject({ ok: false, errorCode: 'not-found' });
    const decision = { kind: 'complete', rule: 'passed', reason: 'a step 2/2 passed' };
    const r = ok(applyCommand(p0, cmd({ kind: 'promote', actor: 'system:rollout', role: 'system', payload: { shadow: 'v-1-1-0', from: 'version', itemVersion: '1.1.0', original: { sha256: 'c'.repeat(64), size: 3 }, shadows: p0.shadows, evidence: { trigger: 'plan', decision } } }), 9000));
    expect(r.profile).toMatchObject({ itemVersion: '1.1.0', promotion: { shadow: 'v-1-1-0', fromItemVersion: '1.0.0', toItemVersion: '1.1.0', by: 'system:rollout' } });
    expect(r.decisions).toEqual([expect.objectContaining({
      kind: 'promote', shadow: 'v-1-1-0', rule: 'plan_complete', automated: true,
      reason: 'system:rollout promoted version 1.1.0: it replaces 1.0.0 as the original',
      evidence: { from: 'version', fromItemVersion: '1.0.0', toItemVersion: '1.1.0', decidedOn: { trigger: 'plan', decision } },
    })]);
    // Rolled back like a shadow promotion.
    expect(ok(applyCommand(r.profile, cmd({ kind: 'promotion_rollback' }), 10_000)).profile).toMatchObject({ itemVersion: '1.0.0', promotion: null });
  });
});

describe('a shadow rolled back on its own, in the Python reference too', () => {
  it('owns no buckets in both implementations; its neighbour keeps every user', async () => {
    const { execFileSync } = await import('node:child_process');
    const path = await import('node:path');
    const { fileURLToPath } = await import('node:url');
    const here = path.dirname(fileURLToPath(import.meta.url));
    const profile: ShadowProfile = {
      itemId: 'i', profileVersion: 3, state: 'active', seed: 'i', holdout: 0, itemVersion: '1', updatedBy: 't', updatedAt: 0,
      shadows: [shadow('a', 20, { state: 'rolled_back' }), shadow('b', 20)],
    };
    const users = Array.from({ length: 300 }, (_, i) => ({ userId: `u-${i}` }));
    const cases = users.map((u) => ({ name: u.userId, user: u, profile, expected: (({ variant, bucket, reason, controlOf }) => ({ variant, bucket, reason, ...(controlOf ? { controlOf } : {}) }))(trafficSplitProfile(u, profile)) }));
    expect(cases.some((c) => c.expected.variant === 'b')).toBe(true);
    expect(cases.some((c) => c.expected.variant === 'a')).toBe(false);
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const os = await import('node:os');
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'ts-ref-')), 'cases.json');
    writeFileSync(file, JSON.stringify(cases));
    const out = JSON.parse(execFileSync('python3', [path.join(here, '../traffic-split/reference.py'), file], { encoding: 'utf8' })) as { failures: number; checked: number };
    expect(out.failures).toBe(0);
    expect(out.checked).toBe(300);
  });
});
