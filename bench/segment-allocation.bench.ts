/**
 * Per-segment allocation benchmark (issue 14 item 5; `node bin/penumbra.js bench --only segalloc`).
 *
 * Workload (GENERATED data, pipeline/simulator): a pool of 20,000 simulated users (the
 * simulator's device mix: android 45 %, ios 30 %, desktop 25 %), sessions arriving at 20/s for a
 * fixed 600 s of simulated time, each drawn by the simulator's session model (planSession) with
 * its effects narrowed to a segment: `a[deviceType=android]:conversion:buy=+15pp` and
 * `b[deviceType=ios]:conversion:buy=+15pp` on a 30 % base — android users do best on a, ios users
 * on b, desktop users see no difference. A bandit over a, b and the control on conversion:buy,
 * reweighting every 10 s, burn-in 50 sessions per arm, floor 5 %.
 *
 * Ours: per-segment allocation (`segments: { by: deviceType, cells: [android, ios] }`).
 * Peer: the same bandit with ONE global allocation (issue 12's), same users, same arrivals, same
 * seeds, in the same run. Both run the production code end to end except the transport: the
 * resolver's assignment (assignBandit with the compiled cell weights and the StickyIndex, so
 * users are sticky), the analyzers' aggregates fed with the simulator's events (CellAggregates /
 * ArmAggregates), the decision functions (decideSegmentReweight / decideReweight) and the
 * profile writer's transitions (applySegmentReweight / applyReweight). Time is simulated (a
 * virtual clock): what is measured is the allocation policy — the share of each segment's
 * traffic on its best arm — not Kafka or HTTP, whose propagation the integration test covers; so
 * there is no HTTP load generator to put in another process.
 *
 * Second part, the resolve path on a real Penumbra (createPenumbra on a temp topic prefix, Kafka,
 * registry): GET /api/v1/resolve of an item whose bandit allocates per segment (cells android,
 * ios, rest) vs an item with the same bandit and ONE global allocation (the peer), both served
 * by the same Penumbra; 10,000 users rotating over android/ios/windows; the closed-loop load
 * generator of bench/http-bench.ts, a process of its own per round (as bench/resolver.bench.ts);
 * rounds interleaved, median round. It shows what the per-cell lookup costs a resolve: req/s,
 * and the server's CPU per request (from /proc), the figure the shared machine's load distorts least.
 *
 * Reported, per segment: the share of that segment's sessions in the LAST 60 s of the run
 * (after a fixed time) on its best arm, median of 7 seeded rounds (3 with --quick); notes carry
 * every round and the whole-run share. The run fails, rather than annotates, when a round is
 * incomplete (fewer sessions than planned, or a segment with no sessions in the window).
 */
import os from 'node:os';
import { makeUser, behaviourFor, parseEffect, planSession, BASELINE } from '../pipeline/simulator/model.ts';
import { Prng } from '../pipeline/simulator/prng.ts';
import { parseBandit, startBandit, armsOf, CONTROL_ARM, type BanditPlan, type BanditState } from '../pipeline/bandit/plan.ts';
import { assignBandit } from '../pipeline/bandit/assign.ts';
import { StickyIndex } from '../pipeline/bandit/sticky.ts';
import { decideReweight, applyReweight } from '../pipeline/bandit/reweight.ts';
import { ArmAggregates } from '../pipeline/rollout/arm-aggregates.ts';
import { armStatsOf } from '../pipeline/rollout/build-evidence.ts';
import { sequentialTests } from '../pipeline/rollout/feature.ts';
import { CellAggregates } from '../pipeline/segment-allocation/cell-aggregates.ts';
import { cellEvidence, armKey, watchedKeys } from '../pipeline/segment-allocation/evidence.ts';
import { decideSegmentReweight, applySegmentReweight } from '../pipeline/segment-allocation/decide.ts';
import { cellIndexOf, compiledCells } from '../pipeline/segment-allocation/cells.ts';
import type { ShadowProfile } from '../pipeline/domain/types.ts';
import type { TelemetryEvent } from '../pipeline/windows/types.ts';
import type { BenchOptions, BenchResult } from './types.ts';
import { createPenumbra } from '../pipeline/app/penumbra.ts';
import { ADMIN_TOKEN, configFrom, resolverEnv, waitFor } from '../pipeline/resolver/test-support.ts';
import { ingestDigitalItem } from '../pipeline/ingest/ingest-service.ts';
import { writeArchive } from '../pipeline/shadowing/archive.ts';
import { fixtureFiles } from '../pipeline/shadowing/fixtures.ts';
import type { ItemManifest } from '../pipeline/domain/types.ts';
import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import { assertComplete, cpuPerRequest, median as medianOf, runLoad, type LoadResult } from './http-bench.ts';

const ITEM = 'com.example.bench-segalloc';
const POOL = 20_000;
const RATE = 20; // sessions per simulated second
const DURATION_S = 600;
const WINDOW_S = 60;
const TICK_S = 1; // analyzer period (as in production)
const EFFECTS = ['a[deviceType=android]:conversion:buy=+15pp', 'b[deviceType=ios]:conversion:buy=+15pp'].map(parseEffect);
const BEST: Record<string, string> = { android: 'a', ios: 'b' };
const shadows = ['a', 'b'].map((name) => ({ name, traffic: { match: 'all', rules: [] as unknown[] } }));

function planOf(perSegment: boolean): BanditPlan {
  return parseBandit({
    arms: ['a', 'b'], metric: 'conversion:buy', reweightSeconds: 10, burnInSessions: 50, floorShare: 0.05,
    ...(perSegment ? { segments: { by: 'deviceType', cells: ['android', 'ios'] } } : {}),
  }, shadows, { minReweightSeconds: 1 });
}

interface RoundResult {
  /** Per segment: sessions in the last window, and on the best arm. */
  window: Record<string, { n: number; best: number }>;
  whole: Record<string, { n: number; best: number }>;
  sessions: number;
}

function round(seed: string, perSegment: boolean): RoundResult {
  const plan = planOf(perSegment);
  const t0 = 1_700_000_000_000;
  let state: BanditState = startBandit(plan, t0);
  let profile = { itemId: ITEM, profileVersion: 1, state: 'active', seed: ITEM, holdout: 0, itemVersion: '1', shadows: [], bandit: plan, banditState: state, updatedBy: 'bench', updatedAt: t0 } as unknown as ShadowProfile;
  const sticky = new StickyIndex();
  const cellAgg = new CellAggregates();
  const armAgg = new ArmAggregates();
  cellAgg.watch(ITEM, watchedKeys(plan), t0);
  for (const k of watchedKeys(plan)) armAgg.watch(ITEM, k, t0);
  const arrivals = new Prng(`${seed}/arrivals`);
  const users = new Map<number, ReturnType<typeof makeUser>>();
  const window: RoundResult['window'] = { android: { n: 0, best: 0 }, ios: { n: 0, best: 0 } };
  const whole: RoundResult['whole'] = { android: { n: 0, best: 0 }, ios: { n: 0, best: 0 } };
  const total = RATE * DURATION_S;
  let done = 0;
  for (let s = 0; s < DURATION_S; s++) {
    for (let j = 0; j < RATE; j++) {
      const now = t0 + s * 1000 + Math.floor((j * 1000) / RATE);
      const idx = Math.floor(arrivals.float() * POOL);
      let u = users.get(idx);
      if (!u) users.set(idx, (u = makeUser(seed, idx)));
      // The resolver's path: the user's cell (per-segment mode), then the sticky bandit pick.
      const cells = plan.segments ? compiledCells(plan, state) : null;
      const ci = cells ? cellIndexOf(cells, { userId: u.userId, deviceType: u.deviceType }, undefined) : -1;
      const ans = assignBandit({ itemId: ITEM, userId: u.userId, seed: ITEM, plan, state, sticky, decision: { variant: 'a' }, now, cellName: ci >= 0 ? cells!.names[ci] : null, cellWeights: ci >= 0 ? cells!.weights[ci] : null })!;
      if (ans.record) sticky.apply(ans.record, () => true);
      const arm = ans.variant === CONTROL_ARM ? CONTROL_ARM : ans.variant;
      // The simulator's session: its events feed the analyzers' aggregates, verified as the collector would mark them.
      const variant = ans.variant;
      const sessionId = `${seed}-${s}-${j}`;
      const plan1 = planSession(new Prng(`${seed}/session/${sessionId}`), {
        itemId: ITEM, version: '1', variant, profileVersion: 1, sessionId, userId: u.userId, startTs: now, points: ['buy'], endpoints: [],
        ...(variant === CONTROL_ARM ? { controlOf: ans.controlOf } : {}),
        behaviour: behaviourFor(variant === CONTROL_ARM ? CONTROL_ARM : variant, EFFECTS, BASELINE, u),
      });
      for (const e of plan1.events) {
        const ev = { id: e.id, itemId: ITEM, version: '1', variant, profileVersion: 1, sessionId, userId: u.userId, type: e.type, name: e.name, ts: e.ts, value: e.value ?? null, attrs: {}, controlOf: variant === CONTROL_ARM ? ans.controlOf ?? null : null, verified: true } as TelemetryEvent;
        cellAgg.add(ev);
        armAgg.add(ev);
      }
      done++;
      const seg = u.deviceType;
      if (seg in BEST) {
        whole[seg].n++;
        if (arm === BEST[seg]) whole[seg].best++;
        if (s >= DURATION_S - WINDOW_S) {
          window[seg].n++;
          if (arm === BEST[seg]) window[seg].best++;
        }
      }
    }
    // The analyzer's tick (sessions count when they arrive: the simulated session's events all land within the tick).
    if ((s + 1) % TICK_S !== 0) continue;
    const now = t0 + (s + 1) * 1000;
    if (plan.segments) {
      const { cells } = cellAgg.totals(ITEM, (uid) => sticky.cellOf(ITEM, uid, state.startedAt));
      const d = decideSegmentReweight({ itemId: ITEM, plan, state, evidence: cellEvidence(plan, cells, sequentialTests), now });
      if (d.kind === 'reweight') {
        const tr = applySegmentReweight(profile, { scope: 'segments', record: d.record, expect: d.expect }, now);
        if (!tr.ok) throw new Error(`per-segment reweighting refused: ${tr.detail}`);
        profile = tr.profile;
        state = profile.banditState!;
      }
    } else {
      const stats = armsOf(plan).map((arm) => armStatsOf(arm, plan.metric, armAgg.totals(ITEM, armKey(plan, arm))));
      const d = decideReweight({ itemId: ITEM, plan, state, stats, comparisons: {}, now });
      if (d.kind === 'reweight') {
        state = applyReweight(state, d.record, now);
        profile = { ...profile, banditState: state };
      }
    }
  }
  if (done !== total) throw new Error(`incomplete round ${seed}: ${done} of ${total} sessions`);
  for (const seg of Object.keys(BEST)) if (window[seg].n === 0) throw new Error(`incomplete round ${seed}: no ${seg} session in the last ${WINDOW_S} s`);
  return { window, whole, sessions: done };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const share = (x: { n: number; best: number }) => x.best / x.n;
const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

/** Resolve throughput: per-segment bandit item vs global bandit item on one real Penumbra. */
async function resolvePath(quick: boolean): Promise<BenchResult[]> {
  const p = await createPenumbra(configFrom(resolverEnv('bench-segalloc', { PENUMBRA_RATE_RESOLVE: '0' })), { sink: false });
  try {
    const inst = { capture: { performance: true, errors: true, usage: true }, points: [{ id: 'buy', selector: '#buy', event: 'click' }], sampleRate: 1 };
    const items = { seg: 'com.example.bench-segalloc-seg', glob: 'com.example.bench-segalloc-glob' };
    for (const [kind, itemId] of Object.entries(items)) {
      const files = fixtureFiles('multi-page-web');
      const m = JSON.parse(files.get('manifest.json')!.toString()) as ItemManifest;
      files.set('manifest.json', Buffer.from(JSON.stringify({ ...m, id: itemId })));
      const archive = await writeArchive({ manifest: { ...m, id: itemId }, files }, 'zip');
      const r = await ingestDigitalItem(p.ctx.ingest, { archive, shadowConfig: [{ name: 'a', instrumentation: inst, endpoints: {}, traffic: { percentage: 25 } }, { name: 'b', instrumentation: inst, endpoints: {}, traffic: { percentage: 25 } }], actor: { name: 'bench', role: 'admin' }, requestId: `bench-${itemId}` });
      await p.ctx.profileStore.waitForVersion(itemId, r.profile.profileVersion);
      const cur = p.ctx.profileStore.get(itemId)!;
      const bandit = { arms: ['a', 'b'], metric: 'conversion:buy', reweightSeconds: 3600, ...(kind === 'seg' ? { segments: { by: 'deviceType', cells: ['android', 'ios'] } } : {}) };
      const put = await fetch(`${p.url}/api/v1/items/${itemId}/shadow-config`, {
        method: 'PUT', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', 'if-match': `"${cur.profileVersion}"` },
        body: JSON.stringify({ shadows: cur.shadows.map(({ artifact: _a, rolloutState: _s, ...x }) => x), bandit }),
      });
      if (put.status !== 200) throw new Error(`bandit PUT ${put.status}: ${await put.text()}`);
      await waitFor('catalog', () => p.ctx.catalog.find(itemId));
    }
    const USERS = 10_000;
    const devices = ['android', 'ios', 'windows'];
    const pathsOf = (itemId: string) => Array.from({ length: USERS }, (_, i) => `/api/v1/resolve?itemId=${itemId}&userId=bench-${i}&deviceType=${devices[i % 3]}&country=DE`);
    const headers = Array.from({ length: USERS }, (_, i) => ({ 'x-forwarded-for': `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }));
    const specFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'penumbra-bench-segalloc-')), 'load.json');
    const load = (itemId: string, ms: number) => runLoad(specFile, { base: p.url, paths: pathsOf(itemId), headers, connections: 16, durationMs: ms }, process.pid);
    // Warm both (JIT, sockets; every user's first exposure writes its sticky record).
    await load(items.seg, 1500);
    await load(items.glob, 1500);
    const rounds = quick ? 2 : 4;
    const ms = quick ? 2000 : 5000;
    const ours: LoadResult[] = [];
    const peer: LoadResult[] = [];
    for (let r = 0; r < rounds; r++) {
      if (r % 2 === 0) {
        ours.push(await load(items.seg, ms));
        peer.push(await load(items.glob, ms));
      } else {
        peer.push(await load(items.glob, ms));
        ours.push(await load(items.seg, ms));
      }
    }
    assertComplete('per-segment item', ours);
    assertComplete('global item', peer);
    const o = medianOf(ours.map((x) => x.rps));
    const q = medianOf(peer.map((x) => x.rps));
    return [{
      name: 'segalloc: resolve throughput, per-segment bandit item',
      unit: 'req/s', ours: o, peer: q, peerName: 'same bandit, one global allocation', ratio: o / q,
      notes: `16 keep-alive conns, ${rounds}×${ms / 1000}s interleaved rounds (median); p99 ours ${medianOf(ours.map((x) => x.p99)).toFixed(2)} ms, peer ${medianOf(peer.map((x) => x.p99)).toFixed(2)} ms; server CPU per request ours ${cpuPerRequest(ours)}, peer ${cpuPerRequest(peer)} (the server is the bench process: same for both); load avg ${os.loadavg()[0].toFixed(1)}`,
    }];
  } finally {
    await p.stop();
  }
}

export async function run(opts: BenchOptions): Promise<BenchResult[]> {
  const rounds = opts.quick ? 3 : 7;
  const ours: RoundResult[] = [];
  const peer: RoundResult[] = [];
  const started = Date.now();
  for (let r = 0; r < rounds; r++) {
    const seed = `segalloc-${r}`;
    ours.push(round(seed, true));
    peer.push(round(seed, false));
  }
  const load = os.loadavg()[0].toFixed(1);
  const out: BenchResult[] = [];
  for (const seg of Object.keys(BEST)) {
    const o = ours.map((x) => share(x.window[seg]));
    const p = peer.map((x) => share(x.window[seg]));
    const mo = median(o);
    const mp = median(p);
    out.push({
      name: `segalloc: ${seg} traffic on its best arm (${BEST[seg]}) after ${DURATION_S} s`,
      unit: 'share', ours: mo, peer: mp, peerName: 'one global allocation (same bandit, same users)', ratio: mp > 0 ? mo / mp : null,
      notes: `GENERATED data (simulator; ${seg} +15 pp on ${BEST[seg]}); sessions of the last ${WINDOW_S} s; median of ${rounds} seeded rounds — ours ${o.map(pct).join(', ')}; peer ${p.map(pct).join(', ')}; whole run: ours ${pct(median(ours.map((x) => share(x.whole[seg]))))}, peer ${pct(median(peer.map((x) => share(x.whole[seg]))))}; load avg ${load}`,
    });
  }
  const both = (x: RoundResult) => (x.window.android.best + x.window.ios.best) / (x.window.android.n + x.window.ios.n);
  const bo = median(ours.map(both));
  const bp = median(peer.map(both));
  out.push({
    name: `segalloc: both segments' traffic on their own best arm after ${DURATION_S} s`,
    unit: 'share', ours: bo, peer: bp, peerName: 'one global allocation', ratio: bp > 0 ? bo / bp : null,
    notes: `GENERATED data; ${POOL} users, ${RATE} sessions/s, reweight 10 s, burn-in 50, floor 5 %; ${rounds} rounds × 2 modes in ${((Date.now() - started) / 1000).toFixed(0)} s; virtual clock (policy, not transport)`,
  });
  out.push(...(await resolvePath(opts.quick)));
  return out;
}
