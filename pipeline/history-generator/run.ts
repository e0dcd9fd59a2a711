/**
 * The history generator's driver: plays a generated release history (generate.ts) through a
 * running Penumbra and the simulator, so every label in the warehouse is decided by the real
 * pipeline. GENERATED DATA.
 *
 * Round 0 ingests each item's first version (it becomes the original). Each later round, for
 * every item at once: make the next version from the one the pipeline serves, ingest it
 * PROACTIVELY — it goes out as its own version shadow of the served version, with the item's
 * guardrail on (pipeline/version-shadows) and one 50 % step — and run the simulator over all
 * items — bad versions' shadows with `errors=+60pp` — for holdSeconds + settleSeconds. The
 * pipeline decides within that time: the version shadow's rollout plan (its always-valid
 * guardrail against the control cohort, pipeline/rollout) rolls the shadow back, or the guardrail
 * rule (the shadow's errorRate above 30 % in one 10 s window of ≥ 5 sessions — absolute, so a
 * loaded machine's thin original arm cannot keep it from judging) rolls the item back; either
 * is a regression. A version still running at the end is promoted by this
 * driver as an operator would, and the next version is edited from it. The pipeline writes the
 * outcomes itself (penumbra.risk.outcomes, pipeline/risk-model/outcomes.ts); this driver only
 * reports what it saw next to the truth it knew.
 *
 * HTTP only (the API a data engineer would use), so it runs against any Penumbra URL.
 */
import { writeArchive } from '../shadowing/archive.ts';
import { startSimulation } from '../simulator/runner.ts';
import type { ShadowConfig } from '../domain/types.ts';
import { BAD_ERROR_PP, firstVersion, nextVersion, type GeneratedItem, type GeneratedVersion } from './generate.ts';

export interface HistoryRunOptions {
  url: string;
  /** An operator (or admin) token. */
  token: string;
  seed: string;
  items: number;
  versionsPerItem: number;
  /** Item id prefix part (gen.<prefix>.i<n>). */
  prefix?: string;
  /** Hold of the one schedule step (default 15 s). */
  holdSeconds?: number;
  /** Simulated sessions per second over all items (default 4 per item). */
  rate?: number;
  /**
   * A round lasts holdSeconds + settleSeconds (default 15 s): traffic keeps flowing after the
   * schedules finished, and a guardrail that judges a late window still rolls a bad version
   * back, which counts.
   */
  settleSeconds?: number;
  /**
   * Keep a round going past holdSeconds + settleSeconds, up to this many seconds, while some bad
   * version is still running (default 0: fixed rounds). The truth only decides how long the
   * driver watches; every label is still the pipeline's. For tests on a loaded machine, where
   * the guardrail's windows can come late.
   */
  maxWaitForBadSeconds?: number;
  /**
   * Consecutive judged windows over the threshold before the guardrail rolls back (default 1).
   * 2 leaves one window in which the live risk score can hold the step first (its lead time).
   */
  guardrailWindows?: number;
  /**
   * The operator's plan fields sent with each proactive ingest (default: one 50 % step held
   * holdSeconds, so every round takes the same time). `{ analysisSeconds: 10 }` alone keeps the
   * risk-sized steps (pipeline/risk-plan) on a shorter clock; the exposure benchmark compares that
   * with the fixed plan.
   */
  rollout?: (v: GeneratedVersion) => Record<string, unknown>;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}

export interface RolloutRecord {
  itemId: string;
  version: string;
  shadow: string;
  bad: boolean;
  trueRisk: number;
  /** As the pipeline decided: regression (rolled back) or success (still running at the round's end, then promoted). */
  outcome: 'regression' | 'success' | 'none';
  /** Simulated sessions served the shadow before the rollout ended. */
  shadowSessions: number;
  /** Milliseconds from the round's start to the end of this rollout. */
  decidedAfterMs: number | null;
  /** The plan the pipeline gave the rollout (steps in % of users) and the risk it was sized by. */
  plan: { steps: number[]; analysisSeconds: number } | null;
  risk: number | null;
  /** Milliseconds from the round's start to an early risk hold of its step (pipeline/risk-model live.ts), seen by polling; null if none. */
  heldAfterMs: number | null;
}

export interface HistoryRunReport {
  generated: true;
  seed: string;
  items: GeneratedItem[];
  rollouts: RolloutRecord[];
  durationMs: number;
}

export const GUARDRAIL_RULE = { itemId: null, name: 'generated-history guardrail: error sessions above 30 %', metric: 'errorRate', comparison: 'absolute', threshold: 0.3, minSample: 5, forWindows: 1, guardrail: true } as const;

export function shadowFor(name: string, percentage = 50): ShadowConfig {
  return {
    name,
    instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [{ id: 'buy', selector: '#buy', event: 'click' }], sampleRate: 1 },
    endpoints: {},
    traffic: { percentage, match: 'all', rules: [] },
  };
}

async function call(url: string, token: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown>; etag: string | null }> {
  const isForm = body instanceof FormData;
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined && !isForm ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : isForm ? body : JSON.stringify(body),
  });
  const text = await res.text();
  const json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  if (res.status >= 400) throw new Error(`${method} ${path} → ${res.status}: ${text.slice(0, 500)}`);
  return { status: res.status, json, etag: res.headers.get('etag') };
}

/** Ingest one generated version (multipart, like `penumbra ingest`). */
export async function ingestVersion(url: string, token: string, v: GeneratedVersion, shadow?: ShadowConfig, extra: Record<string, string> = {}): Promise<Record<string, unknown>> {
  // Upload fields as `penumbra ingest` sends them (proactive, rollout: pipeline/version-shadows).
  const fd = new FormData();
  if (shadow) fd.append('shadowConfig', JSON.stringify(shadow));
  for (const [k, val] of Object.entries(extra)) fd.append(k, val);
  fd.append('item', new Blob([new Uint8Array(await writeArchive(v.tree, 'zip'))]), `${v.itemId}-${v.version}.zip`);
  return (await call(url, token, 'POST', '/api/v1/items', fd)).json;
}

export async function runHistory(o: HistoryRunOptions): Promise<HistoryRunReport> {
  const t0 = Date.now();
  const hold = o.holdSeconds ?? 15;
  const log = o.log ?? (() => {});
  await call(o.url, o.token, 'POST', '/api/v1/alert-rules', { ...GUARDRAIL_RULE, forWindows: o.guardrailWindows ?? GUARDRAIL_RULE.forWindows });
  const items: GeneratedItem[] = [];
  const served: GeneratedVersion[] = [];
  for (let i = 0; i < o.items; i++) {
    const v0 = firstVersion(o.seed, i, o.prefix);
    await ingestVersion(o.url, o.token, v0);
    items.push({ itemId: v0.itemId, versions: [v0] });
    served.push(v0);
  }
  const rollouts: RolloutRecord[] = [];
  for (let k = 1; k < o.versionsPerItem; k++) {
    // Each item's next version is edited from the version the pipeline serves now.
    const round = served.map((prev, i) => nextVersion(o.seed, i, k, prev.tree));
    round.forEach((v, i) => items[i].versions.push(v));
    const plans = new Map<string, { plan: RolloutRecord['plan']; risk: number | null }>();
    for (const v of round) {
      // Proactive: the version goes out as its own shadow of the served one. The plan is the
      // operator's here (one 50 % step, held for an operator) so every round takes the same time;
      // its analysis needs the sessions a round brings (the risk tiers' hundreds per arm would
      // end every round in the plan's "no data is never success" rollback), and it has no
      // guardrails of its own: the labels come from the run's alert guardrail, the yardstick the
      // early risk hold's lead time is measured against (a plan's always-valid guardrail would
      // roll a crash back within seconds, before either).
      const plan = o.rollout ? o.rollout(v) : { steps: [50], analysisSeconds: Math.max(10, hold), minSessionsPerArm: 20, guardrails: [], onComplete: 'hold' };
      const res = await ingestVersion(o.url, o.token, v, undefined, { proactive: 'true', rollout: JSON.stringify(plan) });
      plans.set(v.itemId, { plan: (res.plan as RolloutRecord['plan']) ?? null, risk: (res.risk as { probability?: number } | null)?.probability ?? null });
      if (res.versionShadow !== v.shadow) throw new Error(`ingest of ${v.itemId} ${v.version} did not go out as shadow ${v.shadow}: ${JSON.stringify(res).slice(0, 300)}`);
    }
    const roundStart = Date.now();
    const roundMs = (hold + (o.settleSeconds ?? 15)) * 1000;
    const sim = startSimulation({
      url: o.url, token: o.token, items: round.map((v) => v.itemId), users: 50 * round.length, rate: o.rate ?? 4 * round.length,
      durationMs: Math.max(roundMs, (o.maxWaitForBadSeconds ?? 0) * 1000) + 5000, seed: `${o.seed}/round/${k}`, flushIntervalMs: 500,
      effects: round.filter((v) => v.bad).map((v) => `${v.shadow}:errors=+${BAD_ERROR_PP}pp`),
    });
    // A fixed time per round: the pipeline decides what happens within it (a guardrail may also
    // roll a version back after its plan completed — any regression labels the version).
    const rolledBack = new Map<string, { at: number; sessions: number }>();
    const held = new Map<string, number>();
    const capMs = Math.max(roundMs, (o.maxWaitForBadSeconds ?? 0) * 1000);
    const badRunning = () => round.some((v) => v.bad && !rolledBack.has(v.itemId));
    while (Date.now() < roundStart + roundMs || (Date.now() < roundStart + capMs && badRunning())) {
      await new Promise((r) => setTimeout(r, 1000));
      for (const v of round) {
        if (rolledBack.has(v.itemId)) continue;
        const p = (await call(o.url, o.token, 'GET', `/api/v1/items/${encodeURIComponent(v.itemId)}/shadow-config`)).json;
        // The version shadow's plan: paused by an early risk hold, or rolled back alone (its
        // analysis); or the whole item (the alert guardrail).
        const vs = (p.shadows as { name: string; state?: string; rolloutState?: { status: string; reason: string | null } | null }[] | undefined)?.find((x) => x.name === v.shadow);
        if (!held.has(v.itemId) && vs?.rolloutState?.status === 'paused' && (vs.rolloutState.reason ?? '').startsWith('risk hold')) held.set(v.itemId, Date.now());
        if (p.state === 'rolled_back' || vs?.state === 'rolled_back') rolledBack.set(v.itemId, { at: Date.now(), sessions: sim.report.sessions.byVariant[v.shadow] ?? 0 });
      }
    }
    const report = await sim.stop();
    for (const [i, v] of round.entries()) {
      const rb = rolledBack.get(v.itemId);
      // Not rolled back: an operator (this driver) promotes it, so the next version is edited from it.
      if (!rb) {
        // A plan with onComplete: promote may have promoted it already (pipeline/version-shadows).
        const cur = (await call(o.url, o.token, 'GET', `/api/v1/items/${encodeURIComponent(v.itemId)}/shadow-config`)).json;
        if (cur.itemVersion !== v.version) await call(o.url, o.token, 'POST', `/api/v1/items/${encodeURIComponent(v.itemId)}/versions/${encodeURIComponent(v.version)}/promote`);
        served[i] = v;
      }
      rollouts.push({ itemId: v.itemId, version: v.version, shadow: v.shadow, bad: v.bad, trueRisk: v.risk, outcome: rb ? 'regression' : 'success', shadowSessions: rb?.sessions ?? report.sessions.byVariant[v.shadow] ?? 0, decidedAfterMs: rb ? rb.at - roundStart : null, plan: plans.get(v.itemId)?.plan ?? null, risk: plans.get(v.itemId)?.risk ?? null, heldAfterMs: held.has(v.itemId) ? held.get(v.itemId)! - roundStart : null });
    }
    log('generated history round', { round: k, items: round.length, rolledBack: rolledBack.size, bad: round.filter((v) => v.bad).length, seconds: Math.round((Date.now() - roundStart) / 1000) });
  }
  return { generated: true, seed: o.seed, items, rollouts, durationMs: Date.now() - t0 };
}
