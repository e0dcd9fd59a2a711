/**
 * Rollout benchmark (issue 12, item 5): time to a safe decision on the real stack — one Penumbra
 * (Kafka, registry, profile writer, analyzer at its production tick of 1 s) and three
 * resolver-only child processes; simulated devices from a CHILD load generator
 * (bench/rollout-load.ts). Every telemetry figure here comes from the simulator: GENERATED data.
 *
 * (a) regression: one shadow whose session error rate is 3× its control's (5 % → 15 %), under the
 *     issue's example plan (steps 5/20/50 %, analysis every 60 s, 200 sessions per arm, guardrail
 *     errorRate +1 pp, 3 inconclusive) at its 5 % step. Reported: seconds from the onset of the
 *     regression (the first simulated session — the shadow is bad from its first user) to the
 *     moment the LAST of three resolvers serves the original to a user who had the shadow, with
 *     the split decision / propagation and the sessions per arm the decision saw. Workload: 60
 *     sessions/s in all (≈ 3/s per arm at 5 %). Comparison (notes): Flagger's documented
 *     defaults need threshold × interval = 5 × 60 s = 300 s of failed checks before a rollback;
 *     Argo Rollouts' documented background-analysis example fails after 3 measurements 5 min
 *     apart (≥ 10 min).
 * (b) A/A: K items with one shadow and no effect (same behaviour as the control), plan steps
 *     20/35/50 %, analysis every 10 s, 60 sessions per arm, guardrails errorRate and latencyMean
 *     with margin 0 (the strictest), run to completion in parallel. Reported: the share of runs
 *     that wrongly rolled back (goal ≤ α = 0.05), next to the same decision loop on 1,000
 *     generated runs (pipeline/rollout/simulate-decisions.ts) with the always-valid interval and
 *     with a fixed-horizon interval peeked at (the peer: what not to do).
 * (c) bandit: arms a, b (+ control), b converts 10 pp better (30 % → 40 %); reweighting every
 *     10 s, burn-in 50 sessions, floor 5 %. Reported: the weight on the best arm at the end and
 *     the share of the run's sessions on it, and the expected regret (Σ sessions × conversion gap
 *     to the best arm) vs a fixed equal split of the same sessions (the peer).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPenumbra, type Penumbra } from '../pipeline/app/penumbra.ts';
import { writeArchive } from '../pipeline/shadowing/archive.ts';
import { fixtureFiles } from '../pipeline/shadowing/fixtures.ts';
import type { ItemManifest } from '../pipeline/domain/types.ts';
import { ADMIN_TOKEN, configFrom, resolverEnv, spawnResolver, waitFor, type ChildResolver } from '../pipeline/resolver/test-support.ts';
import { ingestDigitalItem } from '../pipeline/ingest/ingest-service.ts';
import type { SimulationOptions, SimulationReport } from '../pipeline/simulator/runner.ts';
import { parsePlan } from '../pipeline/rollout/plan.ts';
import { fixedHorizonInterval, loopShares, sequentialInterval } from '../pipeline/rollout/simulate-decisions.ts';
import { rolloutHandles } from '../pipeline/rollout/feature.ts';
import type { BenchOptions, BenchResult } from './types.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const instrumentation = { capture: { performance: true, errors: true, usage: true }, points: [{ id: 'buy', selector: '#buy', event: 'click' }], sampleRate: 1 };

interface Load { started: Promise<number>; report: Promise<SimulationReport>; stop(): void }

/** The load generator in a child process. */
function startLoad(opts: Omit<SimulationOptions, 'log'>): Load {
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(HERE, 'rollout-load.ts'), JSON.stringify(opts)], { cwd: path.resolve(HERE, '..'), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let onStarted!: (at: number) => void;
  let onReport!: (r: SimulationReport) => void;
  let onFail!: (e: Error) => void;
  const started = new Promise<number>((r) => (onStarted = r));
  const report = new Promise<SimulationReport>((resolve, reject) => {
    onReport = resolve;
    onFail = reject;
  });
  proc.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  proc.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    let nl: number;
    while ((nl = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      if (!line.startsWith('{')) continue;
      const m = JSON.parse(line) as { event: string; at?: number; report?: SimulationReport };
      if (m.event === 'started') onStarted(m.at!);
      if (m.event === 'report') onReport(m.report!);
    }
  });
  proc.once('exit', (code) => onFail(new Error(`load generator exited ${code}: ${err}`)));
  return { started, report, stop: () => proc.kill('SIGTERM') };
}

async function ingestItem(p: Penumbra, itemId: string, shadows: unknown[]): Promise<void> {
  const files = fixtureFiles('multi-page-web');
  const m = JSON.parse(files.get('manifest.json')!.toString()) as ItemManifest;
  files.set('manifest.json', Buffer.from(JSON.stringify({ ...m, id: itemId })));
  const archive = await writeArchive({ manifest: { ...m, id: itemId }, files }, 'zip');
  const r = await ingestDigitalItem(p.ctx.ingest, { archive, shadowConfig: shadows, actor: { name: 'bench', role: 'admin' }, requestId: `bench-${itemId}` });
  await p.ctx.profileStore.waitForVersion(itemId, r.profile.profileVersion);
}

interface ViewShadow { name: string; state: string; rolloutState: { status: string; step: number } | null }
interface View { profileVersion: number; shadows: ViewShadow[]; banditState: { epoch: number; weights: { arm: string; weight: number }[] } | null; timeline: { kind: string; rule: string | null; shadow: string | null; evidence: { sessions?: { shadow: number; control: number } } }[] }
const view = async (p: Penumbra, itemId: string): Promise<View> => (await (await fetch(`${p.url}/api/v1/items/${itemId}/rollout`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as View;

async function regression(p: Penumbra, children: ChildResolver[], quick: boolean): Promise<BenchResult[]> {
  const item = 'com.example.bench-regress';
  await ingestItem(p, item, [{ name: 's', instrumentation, endpoints: {}, traffic: { percentage: 5 }, rollout: { steps: [5, 20, 50], analysisSeconds: 60, minSessionsPerArm: 200, guardrails: [{ metric: 'errorRate', direction: 'increase', maxDelta: 0.01 }], maxInconclusive: 3 } }]);
  // Users the resolvers give the shadow (the proof of "serves the original" at the end).
  const resolveOn = async (base: string, userId: string) => ((await (await fetch(`${base}/api/v1/resolve?itemId=${item}&userId=${userId}`)).json()) as { variant: string; profileVersion: number });
  const shadowUsers: string[] = [];
  for (let i = 0; shadowUsers.length < 3 && i < 2000; i++) if ((await resolveOn(p.url, `bench-${i}`)).variant === 's') shadowUsers.push(`bench-${i}`);
  const v0 = p.ctx.profileStore.get(item)!.profileVersion;
  for (const c of children) await waitFor('resolver caught up', async () => (await resolveOn(c.url, shadowUsers[0])).profileVersion >= v0, 30_000);

  const load = startLoad({ url: p.url, items: [item], users: 50_000, rate: 60, durationMs: 900_000, effects: ['s:errors=+200%'], behaviour: { errorSessionRate: 0.05 }, seed: 'bench-regress', flushIntervalMs: 500 });
  try {
    const onset = await load.started;
    const rolled = await waitFor('the analyzer rolls the shadow back', async () => {
      const v = await view(p, item);
      return v.shadows[0].state === 'rolled_back' ? v : undefined;
    }, quick ? 300_000 : 600_000, 200);
    const decidedAt = Date.now();
    const decision = rolled.timeline.find((d) => d.kind === 'rollback' && d.shadow === 's');
    if (!decision) throw new Error('rolled back, but no rollback decision on the timeline');
    await Promise.all(children.map((c) => waitFor(`${c.resolverId} serves the original`, async () => {
      const answers = await Promise.all(shadowUsers.map((u) => resolveOn(c.url, u)));
      return answers.every((a) => a.variant === 'original');
    }, 30_000, 20)));
    const lastServes = Date.now();
    const total = (lastServes - onset) / 1000;
    const s = decision.evidence.sessions ?? { shadow: NaN, control: NaN };
    return [{
      name: 'rollout: 3× error regression at a 5 % step → last of 3 resolvers serves original',
      unit: 's', ours: total, peer: 300, peerName: 'Flagger defaults (5 failed checks × 60 s interval)', ratio: total / 300,
      notes: `generated data; decision ${((decidedAt - onset) / 1000).toFixed(1)} s after onset on ${s.shadow} shadow / ${s.control} control sessions, propagation ${((lastServes - decidedAt) / 1000).toFixed(2)} s; 60 sessions/s (≈3/s per arm); Argo Rollouts' documented example: 3 failed measurements 5 min apart`,
    }];
  } finally {
    load.stop();
    await load.report.catch(() => undefined);
  }
}

async function aaAndBandit(p: Penumbra, quick: boolean): Promise<BenchResult[]> {
  const k = quick ? 4 : 8;
  const aaItems = Array.from({ length: k }, (_, i) => `com.example.bench-aa-${i}`);
  // Sized for the traffic (≈ 1.3 sessions/s per arm at 20 %): an analysis every 20 s needs 30
  // sessions per arm, so "no data" is not what ends these runs.
  const plan = { steps: [20, 35, 50], analysisSeconds: 20, minSessionsPerArm: 30, guardrails: [{ metric: 'errorRate', direction: 'increase', maxDelta: 0 }, { metric: 'latencyMean', direction: 'increase', maxDelta: 0 }], maxInconclusive: 5 };
  for (const it of aaItems) await ingestItem(p, it, [{ name: 's', instrumentation, endpoints: {}, traffic: { percentage: 20 }, rollout: plan }]);
  const bandit = 'com.example.bench-bandit';
  await ingestItem(p, bandit, [{ name: 'a', instrumentation, endpoints: {}, traffic: { percentage: 25 } }, { name: 'b', instrumentation, endpoints: {}, traffic: { percentage: 25 } }]);
  const cur = p.ctx.profileStore.get(bandit)!;
  const put = await fetch(`${p.url}/api/v1/items/${bandit}/shadow-config`, {
    method: 'PUT', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', 'if-match': `"${cur.profileVersion}"` },
    body: JSON.stringify({ shadows: cur.shadows.map(({ artifact: _a, rolloutState: _s, ...s }) => s), bandit: { arms: ['a', 'b'], metric: 'conversion:buy', reweightSeconds: 10, burnInSessions: 50, floorShare: 0.05 } }),
  });
  if (put.status !== 200) throw new Error(`bandit PUT ${put.status}: ${await put.text()}`);

  const banditMs = quick ? 90_000 : 150_000;
  const load = startLoad({ url: p.url, items: [...aaItems, bandit], users: 50_000, rate: 60, durationMs: 900_000, effects: ['b:conversion:buy=+10pp'], behaviour: { errorSessionRate: 0.05 }, seed: 'bench-aa', flushIntervalMs: 500 });
  try {
    const started = await load.started;
    // Bandit: the weights after a fixed time.
    await new Promise((r) => setTimeout(r, Math.max(0, started + banditMs - Date.now())));
    const bv = await view(p, bandit);
    const weightB = bv.banditState?.weights.find((w) => w.arm === 'b')?.weight ?? NaN;
    // Verified sessions of each arm since the bandit started, as the analyzer counted them.
    const agg = rolloutHandles.get(p.ctx)!.aggregates!;
    const na = agg.totals(bandit, 'a')?.sessions ?? 0;
    const nb = agg.totals(bandit, 'b')?.sessions ?? 0;
    const nc = agg.totals(bandit, 'control:a')?.sessions ?? 0;
    const nAll = na + nb + nc;
    // a and the control convert 10 pp worse than b: each of their sessions loses 0.1 conversions.
    const regret = (na + nc) * 0.1;
    const uniformRegret = nAll * (2 / 3) * 0.1;
    // A/A: every plan ends (completed or rolled back).
    const ends = await waitFor('every A/A plan ended', async () => {
      const vs = await Promise.all(aaItems.map((i) => view(p, i)));
      const st = vs.map((v) => v.shadows[0].rolloutState?.status);
      return st.every((x) => x === 'completed' || x === 'rolled_back') ? vs : undefined;
    }, quick ? 400_000 : 600_000, 1000);
    load.stop();
    // Why each wrong rollback happened (the rule on its timeline).
    const rules = ends.flatMap((v) => v.timeline.filter((d) => d.kind === 'rollback').map((d) => d.rule ?? '?'));
    const wrong = rules.length;
    const plan0 = parsePlan({ ...plan, guardrails: [{ metric: 'errorRate', direction: 'increase', maxDelta: 0 }] }, 'rollout', { hasControl: true, limits: { minAnalysisSeconds: 1 } });
    const sim = loopShares(1000, 'bench-aa', { plan: plan0, pShadow: 0.05, pControl: 0.05, interval: sequentialInterval(plan0), perSecond: 1.5, everyMs: 1000, maxMs: 900_000 });
    const peek = loopShares(1000, 'bench-aa', { plan: plan0, pShadow: 0.05, pControl: 0.05, interval: fixedHorizonInterval, perSecond: 1.5, everyMs: 1000, maxMs: 900_000 });
    return [
      { name: 'rollout: A/A runs wrongly rolled back (real stack)', unit: 'share', ours: wrong / k, peer: 0.05, peerName: 'goal ≤ α', ratio: null, notes: `generated data; ${wrong} of ${k} A/A runs${wrong ? ` (rules: ${rules.join(', ')})` : ''}; guardrails errorRate and latencyMean with margin 0, checked every second; steps 20/35/50 %` },
      { name: 'rollout: A/A wrong rollbacks, decision loop × 1000 runs', unit: 'share', ours: sim.rollback, peer: peek.rollback, peerName: 'same loop peeking at a fixed-horizon interval', ratio: peek.rollback > 0 ? sim.rollback / peek.rollback : null, notes: 'generated data (pipeline/rollout/simulate-decisions.ts); error guardrail margin 0, checks every second' },
      { name: `bandit: weight on the best arm after ${banditMs / 1000} s`, unit: 'share', ours: weightB, peer: 1 / 3, peerName: 'fixed equal split', ratio: weightB / (1 / 3), notes: `generated data; b converts 40 % vs 30 %; epoch ${bv.banditState?.epoch}; reweight 10 s, burn-in 50, floor 5 %` },
      { name: `bandit: expected regret over ${banditMs / 1000} s (conversions lost)`, unit: 'conversions', ours: regret, peer: uniformRegret, peerName: 'fixed equal split of the same sessions', ratio: uniformRegret > 0 ? regret / uniformRegret : null, notes: `generated data; sessions a ${na}, b ${nb}, control ${nc}: ${((100 * nb) / Math.max(1, nAll)).toFixed(1)} % of the run's sessions on the best arm` },
    ];
  } finally {
    load.stop();
    await load.report.catch(() => undefined);
  }
}

export async function run(opts: BenchOptions): Promise<BenchResult[]> {
  // The load generator's devices all come from 127.0.0.1: per-client device limits off.
  const env = resolverEnv('bench-rollout', {
    PENUMBRA_ROLLOUT_MIN_ANALYSIS_SECONDS: '1', PENUMBRA_BANDIT_MIN_REWEIGHT_SECONDS: '1',
    PENUMBRA_RATE_RESOLVE: '0', PENUMBRA_RATE_TELEMETRY: '0', PENUMBRA_RATE_RUNTIME_CONFIG: '0', PENUMBRA_RATE_ARTIFACTS: '0',
  });
  const p = await createPenumbra(configFrom(env), { sink: false });
  const children: ChildResolver[] = [];
  try {
    children.push(...(await Promise.all([1, 2, 3].map(() => spawnResolver({ ...env, PENUMBRA_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'penumbra-bench-ro-')) })))));
    const a = await regression(p, children, opts.quick);
    const bc = await aaAndBandit(p, opts.quick);
    return [...a, ...bc];
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await p.stop();
  }
}
