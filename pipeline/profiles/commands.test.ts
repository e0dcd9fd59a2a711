import { applyCommand, type Command } from './commands.ts';
import type { ShadowProfile, ShadowSpec } from '../domain/types.ts';

const shadow = (pct: number, name = 'checkout-v2'): ShadowSpec => ({
  name,
  instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 },
  endpoints: {},
  traffic: { percentage: pct, match: 'all', rules: [] },
});

const cmd = (over: Partial<Command>): Command => ({ commandId: `c-${Math.random()}`, itemId: 'item', kind: 'put_config', ifMatch: null, payload: {}, actor: 'ada', role: 'operator', reason: null, at: 0, ...over });

function created(): ShadowProfile {
  const r = applyCommand(null, cmd({ kind: 'new_version', ifMatch: 0, payload: { itemVersion: '1.0.0', original: { sha256: 'a'.repeat(64), size: 1 }, shadows: [shadow(10)] } }), 1000);
  if (!r.ok) throw new Error(r.detail);
  return r.profile;
}

describe('applyCommand', () => {
  it('creates version 1 on the first new_version and bumps by one per accepted change', () => {
    const p = created();
    expect(p).toMatchObject({ profileVersion: 1, state: 'active', seed: 'item', itemVersion: '1.0.0', updatedBy: 'ada' });
    const r = applyCommand(p, cmd({ ifMatch: 1, payload: { shadows: [shadow(20)] } }), 2000);
    expect(r.ok && r.profile.profileVersion).toBe(2);
  });

  it('refuses a stale If-Match naming who changed it and when', () => {
    const p = created();
    const r = applyCommand(p, cmd({ ifMatch: 0, payload: { shadows: [shadow(20)] } }), 2000);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.errorCode).toBe('conflict');
      expect(r.detail).toContain('changed by ada at 1970-01-01T00:00:01.000Z');
    }
  });

  it('recognises a replayed command and does not apply it twice', () => {
    const p = created();
    const c = cmd({ ifMatch: 1, payload: { shadows: [shadow(20)] } });
    const first = applyCommand(p, c, 2000);
    if (!first.ok) throw new Error('expected ok');
    const again = applyCommand(first.profile, c, 3000);
    expect(again).toMatchObject({ ok: true, replay: true, changed: false });
    expect(again.ok && again.profile.profileVersion).toBe(2);
  });

  it('refuses traffic that cannot be laid out (shares over 100 %) with field issues', () => {
    const p = created();
    const r = applyCommand(p, cmd({ ifMatch: 1, payload: { shadows: [shadow(60, 'a'), shadow(50, 'b'), shadow(10, 'c')] } }), 2000);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.errorCode).toBe('validation');
      expect(r.issues.length).toBeGreaterThan(0);
    }
  });

  it('rollback keeps the configuration and pauses a running plan; activate is explicit', () => {
    let p = created();
    // A legacy schedule in a PUT becomes that shadow's rollout plan (one ramp system).
    const s = applyCommand(p, cmd({ ifMatch: 1, payload: { shadows: [shadow(0)], schedule: { shadow: 'checkout-v2', steps: [{ percentage: 5, holdSeconds: 60 }] } } }), 2000);
    if (!s.ok) throw new Error(s.detail);
    p = s.profile;
    expect(p.shadows[0].traffic.percentage).toBe(5);
    expect(p.shadows[0].rollout).toMatchObject({ steps: [{ percentage: 5 }], analysisSeconds: 60, guardrails: [], minSessionsPerArm: 0 });
    expect(p.schedule).toBeNull();
    const rb = applyCommand(p, cmd({ kind: 'rollback' }), 3000);
    if (!rb.ok) throw new Error('rollback');
    expect(rb.profile.state).toBe('rolled_back');
    expect(rb.profile.shadows[0].traffic).toEqual(p.shadows[0].traffic);
    expect(rb.profile.shadows[0].rolloutState).toMatchObject({ status: 'paused', reason: 'item rolled back' });
    const act = applyCommand(rb.profile, cmd({ kind: 'activate' }), 4000);
    expect(act.ok && act.profile.state).toBe('active');
  });

  it('schedule_tick is retired: a queued tick is a no-op', () => {
    const r = applyCommand(created(), cmd({ kind: 'schedule_tick' }), 5000);
    expect(r).toMatchObject({ ok: false, errorCode: 'noop' });
  });

  it('alert actions: guardrail rollback once, plans paused and resumed', () => {
    const s = applyCommand(created(), cmd({ ifMatch: 1, payload: { shadows: [{ ...shadow(0), rollout: { steps: [{ percentage: 5 }], analysisSeconds: 10, minSessionsPerArm: 0, guardrails: [], maxInconclusive: 3, onComplete: 'hold' } }] } }), 0);
    if (!s.ok) throw new Error(s.detail);
    const paused = applyCommand(s.profile, cmd({ kind: 'alert_action', payload: { action: 'pause_schedule', alertId: 'a1' }, reason: 'alert a1: srm' }), 1000);
    if (!paused.ok) throw new Error(paused.detail);
    expect(paused.profile.shadows[0].rolloutState).toMatchObject({ status: 'paused', reason: 'alert a1: srm' });
    expect(paused.decisions).toEqual([expect.objectContaining({ kind: 'pause', shadow: 'checkout-v2', automated: true })]);
    const resumed = applyCommand(paused.profile, cmd({ kind: 'alert_action', payload: { action: 'resume_schedule', alertId: 'a1' } }), 2000);
    expect(resumed.ok && resumed.profile.shadows[0].rolloutState?.status).toBe('running');
    const rb = applyCommand(s.profile, cmd({ kind: 'alert_action', payload: { action: 'rollback', alertId: 'a2' }, actor: 'system:alerts' }), 3000);
    if (!rb.ok) throw new Error('rb');
    expect(rb.profile).toMatchObject({ state: 'rolled_back', updatedBy: 'system:alerts' });
    expect(applyCommand(rb.profile, cmd({ kind: 'alert_action', payload: { action: 'rollback', alertId: 'a3' } }), 4000).ok).toBe(false);
  });
});
