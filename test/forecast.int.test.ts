/**
 * Forecast holds on the real stack (issue #13, item 4): one Penumbra (own topic prefix) for the
 * file. Six GENERATED items; each ingests a next version proactively as a version shadow whose
 * plan (the operator's fields over the risk mapping) holds 50 % for a 300 s analysis with one
 * guardrail: error sessions may rise by at most 2 pp (always-valid, N* from 1,000 sessions per
 * arm). The simulator sends every item's users; three shadows fail 20 pp more sessions than
 * their control (the bad versions), three do not.
 *
 * Measured (GENERATED DATA): for each bad version, the seconds between the forecast hold
 * (pipeline/app/forecast-hold.ts) and the guardrail's own rollback of the paused step; healthy
 * versions must not be held. One bad version's hold is released by an operator through the risk
 * release route (the override): the step runs again, is not held again, and the guardrail still
 * rolls it back. The live risk hold is off here (PENUMBRA_RISK_HOLD_PERCENT=0) so the forecast is
 * measured alone: the first pause would otherwise decide which hold gets the credit.
 */
import { startTestPenumbra, TOKENS, type TestPenumbra } from './penumbra-helpers.ts';
import { firstVersion, nextVersion } from '../pipeline/history-generator/generate.ts';
import { ingestVersion } from '../pipeline/history-generator/run.ts';
import { startSimulation, type SimulationHandle } from '../pipeline/simulator/runner.ts';
import { forecastHandles } from '../pipeline/app/forecast-hold.ts';
import { waitFor } from './wait-for.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const PLAN = { steps: [50], analysisSeconds: 300, minSessionsPerArm: 1000, guardrails: [{ metric: 'errorRate', direction: 'increase', maxDelta: 0.02 }], onComplete: 'hold' };

describe('forecast holds (GENERATED data)', () => {
  let t: TestPenumbra;
  let sim: SimulationHandle | null = null;
  const items = Array.from({ length: 6 }, (_, i) => {
    const v0 = firstVersion('int-forecast', i, 'fc');
    return { i, bad: i % 2 === 0, v0, v1: nextVersion('int-forecast', i, 1, v0.tree) };
  });

  beforeAll(async () => {
    t = await startTestPenumbra('forecast', { PENUMBRA_RISK_HOLD_PERCENT: '0' });
    for (const it of items) {
      await ingestVersion(t.url, TOKENS.operator, it.v0);
      const r = await ingestVersion(t.url, TOKENS.operator, it.v1, undefined, { proactive: 'true', rollout: JSON.stringify(PLAN) });
      expect(r.versionShadow).toBe(it.v1.shadow);
    }
  }, 120_000);
  afterAll(async () => {
    await sim?.stop();
    await t?.stop();
  });

  const api = async (method: string, p: string, body?: unknown, role: keyof typeof TOKENS = 'operator'): Promise<{ status: number; json: Json }> => {
    const res = await fetch(`${t.url}${p}`, { method, headers: { ...t.auth(role), ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    return { status: res.status, json: (await res.json()) as Json };
  };
  const planOf = async (itemId: string, shadow: string): Promise<Json | undefined> => ((await api('GET', `/api/v1/items/${encodeURIComponent(itemId)}/shadow-config`, undefined, 'viewer')).json.shadows as Json[]).find((s) => s.name === shadow)?.rolloutState;

  test('bad versions are held by their guardrail forecast before the guardrail rolls them back; healthy ones are not held; an operator release is audited and not re-held', async () => {
    const handle = forecastHandles.get(t.p.ctx)!;
    expect(handle.holdAt).toBe(0.9);
    sim = startSimulation({
      url: t.url, token: TOKENS.operator, items: items.map((x) => x.v0.itemId), users: 6000, rate: 30, durationMs: 150_000, seed: 'int-forecast', flushIntervalMs: 500,
      effects: items.filter((x) => x.bad).map((x) => `${x.v1.shadow}:errors=+20pp`),
    });
    const [first, ...rest] = items.filter((x) => x.bad);

    // The override: the first bad version's hold is released by an operator as soon as it holds.
    const held = await waitFor('a forecast hold of the first bad version', async () => handle.holds(first.v0.itemId).find((h) => h.profileVersion !== null), 90_000, 250);
    expect((await api('POST', `/api/v1/items/${encodeURIComponent(first.v0.itemId)}/risk/release`, {}, 'viewer')).status).toBe(403);
    const rel = await api('POST', `/api/v1/items/${encodeURIComponent(first.v0.itemId)}/risk/release`, { reason: 'forecast checked by hand' });
    if (rel.status !== 200) {
      // The guardrail was faster than this request: the hold is decided, nothing to release.
      expect(handle.holds(first.v0.itemId)[0].outcome).toBe('rolled_back');
    } else {
      expect(rel.json).toMatchObject({ kind: 'forecast', released: { shadow: first.v1.shadow, releasedBy: 'operator' } });
      expect((rel.json.profile.shadows as Json[]).find((s) => s.name === first.v1.shadow)!.rolloutState.status).toBe('running');
    }

    // Every bad version: held, then rolled back by its guardrail (the paused step keeps its guardrail).
    const decided = await waitFor('every bad version rolled back', async () => {
      const hs = items.filter((x) => x.bad).map((x) => handle.holds(x.v0.itemId)[0]);
      return hs.every((h) => h && h.outcome !== null) ? hs : undefined;
    }, 120_000, 500);
    const healthyHolds = items.filter((x) => !x.bad).flatMap((x) => handle.holds(x.v0.itemId));
    const healthyForecasts = items.filter((x) => !x.bad).map((x) => handle.forecasts(x.v0.itemId)[0]);
    await sim.stop();
    sim = null;
    const leads = decided.map((h) => h.leadMs! / 1000);
    console.log(`forecast holds (GENERATED DATA, +20 pp error sessions, ~2.5 sessions/s per arm, 300 s analysis, ≤ +2 pp tolerated): lead before the guardrail's rollback ${leads.map((s) => `${s.toFixed(1)} s`).join(', ')}; ` +
      `held at P = ${decided.map((h) => h.probability.toFixed(3)).join(', ')} on ${decided.map((h) => `${h.guardrail.now.shadowN}/${h.guardrail.now.controlN} sessions (projected ${Math.round(h.guardrail.projected.shadowN)})`).join(', ')}; ` +
      `healthy: ${healthyHolds.length} held, last P ${healthyForecasts.map((f) => f?.worst?.probability?.toExponential(1) ?? 'n/a').join(', ')}`);
    for (const h of decided) {
      expect(h.outcome).toBe('rolled_back');
      expect(h.outcomeReason).toMatch(/beyond the tolerated \+2 pp/); // the guardrail's own rule, not an operator
      expect(h.leadMs!).toBeGreaterThan(0);
      expect(h.probability).toBeGreaterThanOrEqual(0.9);
    }
    expect(healthyHolds).toEqual([]);
    // Released once: the same step was not held again.
    expect(handle.holds(first.v0.itemId)).toHaveLength(1);
    expect(held.reason).toMatch(/^forecast hold: v-\S+ errorRate \+[\d.]+ pp \[.+\] vs control on \d+ vs \d+; projected \d+ vs \d+ at the analysis in \d+ s → P\(guardrail increase beyond \+2 pp fires\) \d+\.\d % ≥ 90 %\. Release: POST \/api\/v1\/items\/.+\/risk\/release$/);

    // Audited on the command topic as system:forecast, with the forecast as evidence.
    const other = rest[0];
    const audit = await waitFor('the hold in the audit', async () => {
      const rows = (await api('GET', `/api/v1/audit?itemId=${encodeURIComponent(other.v0.itemId)}`, undefined, 'viewer')).json.entries as Json[];
      return rows.find((x) => x.actor === 'system:forecast');
    }, 20_000, 500);
    expect(audit.reason).toMatch(/^forecast hold: /);
    expect(audit.evidence).toMatchObject({ kind: 'guardrail_forecast', holdAt: 0.9, shadow: other.v1.shadow, guardrail: { metric: 'errorRate', status: 'forecast', projected: { shadowN: expect.any(Number) } } });
    expect(audit.evidence.guardrail.probability).toBeGreaterThanOrEqual(0.9);
    if (rel.status === 200) {
      const rows = (await api('GET', `/api/v1/audit?itemId=${encodeURIComponent(first.v0.itemId)}`, undefined, 'viewer')).json.entries as Json[];
      expect(rows.some((x) => x.actor === 'operator' && x.reason === 'forecast checked by hand')).toBe(true);
    }

    // The risk route carries the forecasts and holds, and the chosen plan as a structured field.
    const risk = (await api('GET', `/api/v1/items/${encodeURIComponent(other.v0.itemId)}/risk`, undefined, 'viewer')).json;
    expect(risk.plan).toMatchObject({ shadow: other.v1.shadow, steps: [50], analysisSeconds: 300, minSessionsPerArm: 1000, tier: 'medium', source: 'prior', overridden: ['steps', 'analysisSeconds', 'minSessionsPerArm', 'guardrails', 'onComplete'], overriddenBy: 'operator' });
    expect(risk.forecast.holds).toEqual([expect.objectContaining({ shadow: other.v1.shadow, outcome: 'rolled_back' })]);
    const healthy = (await api('GET', `/api/v1/items/${encodeURIComponent(items[1].v0.itemId)}/risk`, undefined, 'viewer')).json;
    expect(healthy.forecast.holds).toEqual([]);
    expect(await planOf(items[1].v0.itemId, items[1].v1.shadow)).toMatchObject({ status: 'running' });
  }, 240_000);
});
