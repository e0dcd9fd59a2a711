/**
 * Early holds survive a restart and are released from any process (issue #13, item 4;
 * pipeline/early-holds). One GENERATED item: its next version goes out proactively as a version
 * shadow at 50 % with one guardrail (error sessions may rise by at most 2 pp, N* from 3,000 sessions per arm, 300 s analysis);
 * the simulator makes the shadow fail 15 pp more sessions than its control until the guardrail
 * forecast holds the step (system:forecast, threshold 80 %), then stops (so the guardrail does
 * not roll the paused step back during the test).
 *
 * Then the process stops, and two start on the same topics and data folder: B runs the
 * processors (the restarted process), C only answers the API (processors off, as an extra API
 * process). Both list the hold from what Kafka holds (rollout decisions + the profile); the
 * operator's release sent to C resumes the step through the command topic, is audited as theirs,
 * and B then lists the hold as released by that operator.
 */
import { startTestPenumbra, TOKENS, type TestPenumbra } from './penumbra-helpers.ts';
import { uniquePrefix } from './stack-helpers.ts';
import { firstVersion, nextVersion } from '../pipeline/history-generator/generate.ts';
import { ingestVersion } from '../pipeline/history-generator/run.ts';
import { startSimulation, type SimulationHandle } from '../pipeline/simulator/runner.ts';
import { forecastHandles } from '../pipeline/app/forecast-hold.ts';
import { waitFor } from './wait-for.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const PLAN = { steps: [50], analysisSeconds: 300, minSessionsPerArm: 3000, guardrails: [{ metric: 'errorRate', direction: 'increase', maxDelta: 0.02 }], onComplete: 'hold' };
const ENV = { PENUMBRA_RISK_HOLD_PERCENT: '0', PENUMBRA_FORECAST_HOLD_PERCENT: '80' };

describe('early holds across a restart and across processes (GENERATED data)', () => {
  const prefix = uniquePrefix('holds');
  let a: TestPenumbra | null = null;
  let b: TestPenumbra | null = null;
  let c: TestPenumbra | null = null;
  let sim: SimulationHandle | null = null;
  const v0 = firstVersion('int-holds', 0, 'hd');
  const v1 = nextVersion('int-holds', 0, 1, v0.tree);
  const itemPath = `/api/v1/items/${encodeURIComponent(v0.itemId)}`;

  afterAll(async () => {
    await sim?.stop();
    for (const t of [c, b, a]) await t?.stop();
  });

  const api = async (t: TestPenumbra, method: string, p: string, body?: unknown, role: keyof typeof TOKENS = 'operator'): Promise<{ status: number; json: Json }> => {
    const res = await fetch(`${t.url}${p}`, { method, headers: { ...t.auth(role), ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    return { status: res.status, json: (await res.json()) as Json };
  };
  const earlyHolds = async (t: TestPenumbra): Promise<Json[]> => ((await api(t, 'GET', `${itemPath}/risk`, undefined, 'viewer')).json.earlyHolds ?? []) as Json[];
  const planOf = async (t: TestPenumbra): Promise<Json | undefined> => ((await api(t, 'GET', `${itemPath}/shadow-config`, undefined, 'viewer')).json.shadows as Json[]).find((s) => s.name === v1.shadow)?.rolloutState;

  test('a forecast hold is listed after a restart and by an API-only process; the release from that process resumes the step, is audited, and shows everywhere', async () => {
    a = await startTestPenumbra('holds', { PENUMBRA_TOPIC_PREFIX: prefix, ...ENV });
    await ingestVersion(a.url, TOKENS.operator, v0);
    const r = await ingestVersion(a.url, TOKENS.operator, v1, undefined, { proactive: 'true', rollout: JSON.stringify(PLAN) });
    expect(r.versionShadow).toBe(v1.shadow);

    const handle = forecastHandles.get(a.p.ctx)!;
    sim = startSimulation({ url: a.url, token: TOKENS.operator, items: [v0.itemId], users: 3000, rate: 10, durationMs: 120_000, seed: 'int-holds', flushIntervalMs: 500, effects: [`${v1.shadow}:errors=+15pp`] });
    let held;
    try {
      held = await waitFor('a forecast hold', async () => handle.holds(v0.itemId).find((h) => h.profileVersion !== null), 100_000, 250);
    } finally {
      await sim.stop();
      sim = null;
    }
    expect(held.probability).toBeGreaterThanOrEqual(0.8);
    const before = await waitFor('the hold in earlyHolds (A)', async () => (await earlyHolds(a!)).find((h) => h.kind === 'forecast' && h.status === 'active' && h.heldAt !== null), 20_000, 250);
    expect(before).toMatchObject({ shadow: v1.shadow, step: 0, stepStartedAt: held.stepStartedAt, key: `${v1.shadow}@${held.stepStartedAt}`, reason: held.reason, evidence: { kind: 'guardrail_forecast', stepStartedAt: held.stepStartedAt } });

    // The restart: A stops; B (processors) and C (API only) start on the same topics and folder.
    const dataDir = a.dataDir;
    await a.stop();
    a = null;
    [b, c] = await Promise.all([
      startTestPenumbra('holds', { PENUMBRA_TOPIC_PREFIX: prefix, PENUMBRA_DATA_DIR: dataDir, ...ENV }),
      startTestPenumbra('holds', { PENUMBRA_TOPIC_PREFIX: prefix, PENUMBRA_DATA_DIR: dataDir, ...ENV }, { processors: false, sink: false }),
    ]);
    expect(await planOf(b)).toMatchObject({ status: 'paused', reason: held.reason });
    for (const t of [b, c]) {
      const h = await waitFor('the hold listed after the restart', async () => (await earlyHolds(t)).find((x) => x.id === before.id), 20_000, 250);
      expect(h).toMatchObject({ kind: 'forecast', status: 'active', releasedBy: null, heldAt: before.heldAt, evidence: { kind: 'guardrail_forecast' } });
    }

    // The override, sent to the API-only process: a viewer may not, an operator may.
    expect((await api(c, 'POST', `${itemPath}/risk/release`, {}, 'viewer')).status).toBe(403);
    const rel = await api(c, 'POST', `${itemPath}/risk/release`, { reason: 'released after the restart' });
    expect(rel.status).toBe(200);
    expect(rel.json).toMatchObject({ kind: 'forecast', released: { id: before.id, shadow: v1.shadow, status: 'released', releasedBy: 'operator' } });
    expect((rel.json.profile.shadows as Json[]).find((s) => s.name === v1.shadow)!.rolloutState).toMatchObject({ status: 'running', reason: null });

    // Released everywhere: B (which runs the processors) lists it as the operator's release; the step runs.
    const after = await waitFor('the release seen by B', async () => (await earlyHolds(b!)).find((x) => x.id === before.id && x.status === 'released'), 20_000, 250);
    expect(after).toMatchObject({ releasedBy: 'operator', releaseReason: expect.stringMatching(/released after the restart$/) });
    expect(await planOf(b)).toMatchObject({ status: 'running', step: 0 });
    expect((await api(b, 'POST', `${itemPath}/risk/release`, {})).status).toBe(404);

    // Audited: the hold (system:forecast, with its forecast) and the release (the operator's resume).
    const rows = await waitFor('hold and release in the audit', async () => {
      const e = (await api(b!, 'GET', `/api/v1/audit?itemId=${encodeURIComponent(v0.itemId)}`, undefined, 'viewer')).json.entries as Json[];
      return e.some((x) => x.actor === 'system:forecast') && e.some((x) => x.actor === 'operator' && x.reason === 'released after the restart') ? e : undefined;
    }, 20_000, 500);
    expect(rows.find((x) => x.actor === 'system:forecast')).toMatchObject({ action: 'rollout.control', evidence: { kind: 'guardrail_forecast' } });
    expect(rows.find((x) => x.actor === 'operator' && x.reason === 'released after the restart')).toMatchObject({ action: 'rollout.control', outcome: 'accepted' });
  }, 240_000);
});
