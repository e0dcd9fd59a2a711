/**
 * Rollback propagation: from the start of POST /api/v1/items/{id}/rollback until the LAST of N
 * resolver-only processes serves the original — N = 3, then N = 10 (issue 15 item 7).
 *
 * Processes: the main Penumbra is a child `penumbra start --role api,processors` (API, profile
 * command processor; no sink), each resolver a child `pipeline/resolver/run-resolver.ts` with its
 * own data folder; the bench process only posts the commands and listens. Nothing of ours shares
 * the bench's event loop. The rollback takes the real path: API → the item's command topic →
 * profile writer (audited) → profiles topic → every resolver's follower.
 *
 * Clock: starts when the bench sends the POST, stops when the heartbeat of the LAST resolver
 * reporting the rolled-back version arrives — not when the API answers (the API's answer is that
 * process reading its own change back, and says nothing about the resolvers; it is reported
 * beside, with how often the resolvers were there first). Both are awaited; an API error or an
 * unexpected version fails the bench.
 *
 * Signal: each resolver publishes a heartbeat to penumbra.resolvers the moment it applies a new
 * profile version (it then serves it: resolve reads the same in-memory store), so the bench
 * follows that topic instead of hammering N resolve endpoints on a 2-core machine. The
 * heartbeat's own produce+fetch is inside the measured time, so the figure is pessimistic.
 * After each rollback every resolver is also asked (resolve) to prove it serves the original;
 * one that does not fails the bench. Rollbacks alternate with activations (not timed).
 *
 * Where the time goes: the bench also follows the command and profile topics and reports each
 * hop from the records' own times (one host, one clock): HTTP → command built, command → profile
 * writer applied it, → profile produced, → first / last resolver applied (heartbeat `at`), last
 * applied → its heartbeat heard. And what the resolvers cost whatever else runs: CPU of all
 * resolver processes (and of the main process) per rollback + activation and idle — 10 s with
 * nothing happening, 2 s after the last loop, so start-up's JIT and catch-up are not counted
 * (before round 7 a 5 s window right after start read ~170 ms/s for 3 resolvers as for 10) —
 * from /proc. Per-process and per-thread idle: bench/idle-cpu.ts. `BENCH_CHILD_NODE_ARGS` passes
 * node flags to every child (e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`: their env has no
 * NODE_OPTIONS).
 * Workload: the multi-page-web fixture with one shadow on 50 % of android/ios users. Three timed
 * loops on the same processes, in this order, each rollback followed by its (untimed) activation:
 * 1. cold — the first 20 rollbacks, 5 s after start-up, back to back: processes whose code V8 has
 *    not optimised yet. Reported as its max, no target.
 * 2. paced — THE FIGURE: 100 rollbacks with 3 resolvers, 200 with 10, each a random 0.5–1.5 s
 *    (seeded) after the previous activation reached every resolver, so each meets a deployment
 *    that is serving — what an operator's rollback meets — at any phase of its periodic work.
 *    200 so that p99 is the second-slowest, not the slowest.
 * 3. back to back, warm — 50 / 100 rollbacks, the next as soon as the previous activation reached
 *    every resolver (≈ 15–35 changes a second): a storm, reported with no target.
 * Until 2026-12-07 the bench ran only a back-to-back loop of 50 / 100 starting 5 s after start-up;
 * with 10 resolvers it lasted ~10 s, so its p99 (115–160 ms) measured mostly the cold regime:
 * the same storm on the same processes after the paced loop read p99 48–69 ms in four runs (docs/scaling.md,
 * rollback section, round 8). Quick: 5 cold, 10 paced, 10 back to back.
 * Targets: 3 resolvers p50 ≤ 100 ms, p99 ≤ 250 ms; 10 resolvers p99 ≤ 100 ms (the issue's goal).
 * No peer runs here: the targets are the comparison. The load average is in the notes.
 */
import { mkdtempSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { followTopic } from '../pipeline/kafka/follow.ts';
import { createKafka } from '../pipeline/kafka/client.ts';
import { AvroCodec } from '../pipeline/kafka/registry.ts';
import { fixtureArchive } from '../pipeline/shadowing/fixtures.ts';
import { ADMIN_TOKEN, configFrom, mobileShadow, resolverEnv, spawnResolver, waitFor, type ChildResolver } from '../pipeline/resolver/test-support.ts';
import { spawnPenumbra, type ChildPenumbra } from '../pipeline/roles/spawn.ts';
import type { BenchOptions, BenchResult } from './types.ts';
import { cpuMs } from './proc-cpu.ts';

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

const load = () => os.loadavg()[0].toFixed(1);
/** Length of the idle CPU window (after the timed loop). */
const IDLE_SECONDS = 10;

const sumCpu = (pids: number[]) => {
  const xs = pids.map(cpuMs);
  return xs.some((x) => x === null) ? null : (xs as number[]).reduce((a, b) => a + b, 0);
};

/** Wall-clock marks of one timed rollback (every process is on this host: one clock). */
interface Hops {
  /** The bench starts the POST. */
  start: number;
  /** The API built the command (its `at`). */
  commandAt?: number;
  /** The profile writer applied it (the new profile's updatedAt: just after the command was fetched). */
  writerAt?: number;
  /** The new profile's record was encoded for its produce (the record's timestamp). */
  profileProducedAt?: number;
  /** Each resolver applied the new version (its heartbeat's `at`, stamped inside the apply). */
  appliedAt: Map<string, number>;
  /** The bench received each resolver's heartbeat. */
  heardAt: Map<string, number>;
}

/** One timed loop of rollbacks (each followed, untimed, by its activation). */
interface Loop {
  times: number[];
  apiTimes: number[];
  hops: Hops[];
  /** CPU of all resolver processes together, and of the main process, per rollback (+ its activation, + the pause after it when paced). */
  cpuPerRollback: number | null;
  mainCpuPerRollback: number | null;
  /** Rollbacks per second the loop ran at. */
  rate: number;
  loadBefore: string;
  loadAfter: string;
}

interface Measured {
  /** The first rollbacks after start-up, back to back: processes whose code V8 has not optimised yet. */
  cold: Loop;
  /** Rollbacks that each meet a running deployment: a random 0.5–1.5 s after the previous change reached every resolver. */
  paced: Loop;
  /** Rollbacks back to back (the next one as soon as the previous activation reached every resolver): a storm of changes. */
  storm: Loop;
  /** CPU of all resolver processes together (and of the main process) per second, with nothing happening. */
  idleCpuPerSec: number | null;
  mainIdleCpuPerSec: number | null;
}

/**
 * The pause before a paced rollback, after the previous activation reached every resolver:
 * uniform in [PACE_MIN_MS, PACE_MAX_MS], so rollbacks land at every phase of the processes'
 * periodic work (5 s heartbeats, 1 s follower polls, snapshot writes 1 s after a change) rather
 * than in step with it. Deterministic (seeded), so two runs pace alike.
 */
const PACE_MIN_MS = 500;
const PACE_MAX_MS = 1500;
function pacer(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    // xorshift32: a fixed sequence, nothing more is asked of it.
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return PACE_MIN_MS + ((x % 10_000) / 10_000) * (PACE_MAX_MS - PACE_MIN_MS);
  };
}

/** Node flags for every child (`BENCH_CHILD_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/p'`): their env carries no NODE_OPTIONS. */
const childNodeArgs = (process.env.BENCH_CHILD_NODE_ARGS ?? '').split(' ').filter(Boolean);

async function measure(resolvers: number, counts: { cold: number; paced: number; storm: number }): Promise<Measured> {
  const env = resolverEnv(`bench-rollback-${resolvers}`);
  const cfg = configFrom(env);
  const children: ChildResolver[] = [];
  let main: ChildPenumbra | null = null;
  const kafka = createKafka(cfg.kafkaBrokers, `bench-rollback-${resolvers}`);
  const codec = new AvroCodec(cfg.schemaRegistryUrl);
  try {
    main = await spawnPenumbra(env, 'api,processors', 120_000, childNodeArgs);
    const fd = new FormData();
    fd.append('shadowConfig', JSON.stringify(mobileShadow()));
    fd.append('item', new Blob([new Uint8Array(await fixtureArchive('multi-page-web', 'zip'))]), 'item.zip');
    const ing = await fetch(`${main.url}/api/v1/items`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, body: fd });
    if (ing.status !== 201) throw new Error(`ingest answered ${ing.status}: ${await ing.text()}`);
    const { item, profile } = (await ing.json()) as { item: { itemId: string }; profile: { profileVersion: number } };
    const itemId = item.itemId;
    const profileVersion = profile.profileVersion;
    // Started a few at a time: ten tsx start-ups at once on 2 cores only make each one slower.
    for (let i = 0; i < resolvers; i += 5) {
      const n = Math.min(5, resolvers - i);
      children.push(...(await Promise.all(Array.from({ length: n }, () => spawnResolver({ ...env, PENUMBRA_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'penumbra-bench-r-')) }, 120_000, childNodeArgs)))));
    }
    const served = new Map<string, number>();
    let waiters: (() => void)[] = [];
    // Where the time goes: the bench also reads the command and profile topics (one record per
    // rollback each) and stamps every hop from the records' own times (see Hops).
    let current: Hops | null = null;
    let currentVersion = Infinity;
    const hb = await followTopic({
      kafka, codec, topic: cfg.topics.resolvers, schema: 'resolver-status', groupPrefix: `${cfg.topicPrefix}bench-`, fromBeginning: false,
      onRecord: (s) => {
        const now = Date.now();
        const v = s.versions[itemId] ?? 0;
        if (current && v >= currentVersion && !current.heardAt.has(s.resolverId)) {
          current.heardAt.set(s.resolverId, now);
          current.appliedAt.set(s.resolverId, s.at);
        }
        served.set(s.resolverId, Math.max(served.get(s.resolverId) ?? 0, v));
        const w = waiters;
        waiters = [];
        for (const f of w) f();
      },
    });
    const cmds = await followTopic({
      kafka, codec, topic: cfg.topics.shadowCommands, schema: 'shadow-command', groupPrefix: `${cfg.topicPrefix}bench-`, fromBeginning: false,
      onRecord: (c) => {
        if (current && c.kind === 'rollback' && c.itemId === itemId && current.commandAt === undefined) current.commandAt = c.at;
      },
    });
    const profs = await followTopic({
      kafka, codec, topic: cfg.topics.shadowProfiles, schema: 'shadow-profile', groupPrefix: `${cfg.topicPrefix}bench-`, fromBeginning: false,
      onRecord: (p, meta) => {
        if (current && p.itemId === itemId && p.profileVersion >= currentVersion && current.writerAt === undefined) {
          current.writerAt = p.updatedAt;
          current.profileProducedAt = meta.timestamp;
        }
      },
    });
    try {
      await Promise.all([hb.ready, cmds.ready, profs.ready]);
      const allAt = (v: number) => children.every((c) => (served.get(c.resolverId) ?? 0) >= v);
      const untilAll = (v: number, timeoutMs = 10_000) =>
        new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`resolvers not on v${v} within ${timeoutMs} ms: ${JSON.stringify([...served])}`)), timeoutMs);
          const check = () => (allAt(v) ? (clearTimeout(t), resolve()) : waiters.push(check));
          check();
        });
      const resolveOn = async (base: string, userId: string) =>
        (await (await fetch(`${base}/api/v1/resolve?itemId=${itemId}&userId=${userId}&deviceType=android`)).json()) as { variant: string; profileVersion: number };
      // A user in the shadow, and every resolver caught up.
      let shadowUser = '';
      for (let i = 0; !shadowUser; i++) if ((await resolveOn(main.url, `rb-${i}`)).variant !== 'original') shadowUser = `rb-${i}`;
      for (const c of children) await waitFor('resolver caught up', async () => (await resolveOn(c.url, shadowUser)).profileVersion === profileVersion, 60_000);
      await untilAll(profileVersion, 15_000).catch(() => {}); // periodic heartbeats will get there; not timed

      const post = async (action: 'rollback' | 'activate') => {
        const res = await fetch(`${main!.url}/api/v1/items/${itemId}/${action}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: '{}' });
        if (res.status !== 200) throw new Error(`${action} answered ${res.status}: ${await res.text()}`);
        return ((await res.json()) as { profileVersion: number }).profileVersion;
      };
      const pids = children.map((c) => c.pid);
      // Settle 5 s before the timed loops: a rollback hits a deployment that is running, not one
      // still compiling and collecting right after start-up. Until 2026-12-07 04:26 this pause was
      // the idle window; when the idle reading moved after the loop (below) the pause went with
      // it, and the first rollbacks of the loop then met processes still warming up — the
      // 10-resolver p99 went from 122–152 ms to 162–452 ms with the product code unchanged
      // (bisected 06:00 UTC: af20738 131 ms, a2108a6 and later 161–452 ms).
      await new Promise((r) => setTimeout(r, 5000));
      // One writer, nothing else writes this item's profile: each command makes exactly the next
      // version, so the bench knows the rollback's version before the API answers.
      let version = profileVersion;
      const timedLoop = async (rollbacks: number, pause: (() => number) | null): Promise<Loop> => {
        const times: number[] = [];
        const apiTimes: number[] = [];
        const hops: Hops[] = [];
        const loadBefore = load();
        const loop0 = [sumCpu(pids), cpuMs(main!.pid)];
        const wall0 = performance.now();
        for (let i = 0; i < rollbacks; i++) {
          if (pause) await new Promise((r) => setTimeout(r, pause()));
          currentVersion = version + 1;
          current = { start: Date.now(), appliedAt: new Map(), heardAt: new Map() };
          const t0 = performance.now();
          // The clock stops when the LAST resolver reports the rolled-back version — not when the
          // API answers: the API's answer is one more process reading its own change back (an
          // outcome and the profile through its own followers), which says nothing about what the
          // resolvers serve. Whichever comes last does not matter: both are awaited, the API's
          // time is reported beside (apiTimes), and a failed or different answer fails the bench.
          const posted = post('rollback').then((v) => (apiTimes.push(performance.now() - t0), v));
          const [v] = await Promise.all([posted, Promise.race([untilAll(currentVersion), posted.then(() => new Promise<never>(() => {}))]).then(() => times.push(performance.now() - t0))]);
          if (v !== currentVersion) throw new Error(`rollback answered v${v}, expected v${currentVersion}: another writer on this item?`);
          hops.push(current);
          current = null;
          for (const c of children) {
            const a = await resolveOn(c.url, shadowUser);
            if (a.variant !== 'original' || a.profileVersion < v) throw new Error(`${c.resolverId} still serves ${a.variant} v${a.profileVersion} after its heartbeat for v${v}`);
          }
          version = await post('activate');
          await untilAll(version);
        }
        const seconds = (performance.now() - wall0) / 1000;
        const loop1 = [sumCpu(pids), cpuMs(main!.pid)];
        const per = (i: number) => (loop0[i] === null || loop1[i] === null ? null : (loop1[i]! - loop0[i]!) / rollbacks);
        return { times, apiTimes, hops, cpuPerRollback: per(0), mainCpuPerRollback: per(1), rate: rollbacks / seconds, loadBefore, loadAfter: load() };
      };
      // Cold first: the first rollbacks after start-up, back to back, reported on their own line.
      // Until 2026-12-07 the published figure was this regime — 100 back-to-back rollbacks that
      // took ~10 s starting 5 s after 12 processes started, so most met code V8 had not optimised
      // yet (the same storm on the same processes four minutes later: p99 ~56 ms against 115–130).
      // Then paced (the headline: an operator's rollback meets a deployment that has been
      // serving, not one still digesting the previous change), then back to back again, warm.
      const cold = await timedLoop(counts.cold, null);
      const paced = await timedLoop(counts.paced, pacer(resolvers));
      const storm = await timedLoop(counts.storm, null);
      // Idle: 10 s with nothing happening (every follower polling, heartbeats on their timer),
      // 2 s after the last activation. Measured after the timed loop, not before it: right after
      // start-up the processes are still compiling and collecting (the 5 s window before the
      // loop read 168-170 ms/s for 3 resolvers as for 10, ~4x their steady idle).
      await new Promise((r) => setTimeout(r, 2000));
      const idle0 = [sumCpu(pids), cpuMs(main.pid)];
      await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
      const idle1 = [sumCpu(pids), cpuMs(main.pid)];
      const per = (a: (number | null)[], b: (number | null)[], i: number) => (a[i] === null || b[i] === null ? null : (b[i]! - a[i]!) / IDLE_SECONDS);
      return { cold, paced, storm, idleCpuPerSec: per(idle0, idle1, 0), mainIdleCpuPerSec: per(idle0, idle1, 1) };
    } finally {
      await hb.stop();
      await cmds.stop();
      await profs.stop();
    }
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await main?.stop();
  }
}

/** Median and p99 of each hop over the timed rollbacks (ms), as one line for the notes. */
function hopSummary(hops: Hops[]): string {
  const parts: [string, (h: Hops) => number | undefined][] = [
    ['HTTP→command', (h) => (h.commandAt !== undefined ? h.commandAt - h.start : undefined)],
    ['command→writer', (h) => (h.writerAt !== undefined && h.commandAt !== undefined ? h.writerAt - h.commandAt : undefined)],
    ['writer→profile produced', (h) => (h.profileProducedAt !== undefined && h.writerAt !== undefined ? h.profileProducedAt - h.writerAt : undefined)],
    ['profile produced→first resolver applied', (h) => (h.profileProducedAt !== undefined && h.appliedAt.size ? Math.min(...h.appliedAt.values()) - h.profileProducedAt : undefined)],
    ['→last resolver applied', (h) => (h.profileProducedAt !== undefined && h.appliedAt.size ? Math.max(...h.appliedAt.values()) - h.profileProducedAt : undefined)],
    ['last applied→its heartbeat heard', (h) => {
      if (!h.appliedAt.size) return undefined;
      const [id] = [...h.appliedAt].reduce((a, b) => (b[1] > a[1] ? b : a));
      return h.heardAt.get(id)! - h.appliedAt.get(id)!;
    }],
  ];
  return parts
    .map(([name, f]) => {
      const xs = hops.map(f).filter((x): x is number => x !== undefined);
      return xs.length ? `${name} p50 ${quantile(xs, 0.5)} / p99 ${quantile(xs, 0.99)}` : `${name} n/a`;
    })
    .join('; ');
}

export async function run(opts: BenchOptions): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  const f = (x: number | null) => (x === null ? 'n/a' : x.toFixed(1));
  for (const [n, counts, p50Target, p99Target] of [
    [3, opts.quick ? { cold: 5, paced: 10, storm: 10 } : { cold: 20, paced: 100, storm: 50 }, 100, 250],
    [10, opts.quick ? { cold: 5, paced: 10, storm: 10 } : { cold: 20, paced: 200, storm: 100 }, null, 100],
  ] as const) {
    const m = await measure(n, counts);
    const idle = `CPU idle: the ${n} resolvers together ${f(m.idleCpuPerSec)} ms/s, main process ${f(m.mainIdleCpuPerSec)} ms/s`;
    const loopNotes = (l: Loop, what: string) => {
      // The API's own answer, beside (not part of) the measured time: see measure().
      const ahead = l.times.filter((t, i) => t <= l.apiTimes[i]).length;
      return `${what}; ${l.times.length} rollbacks at ${l.rate.toFixed(1)}/s; p50 ${f(quantile(l.times, 0.5))}, p95 ${f(quantile(l.times, 0.95))}, p99 ${f(quantile(l.times, 0.99))}, max ${f(Math.max(...l.times))} ms; CPU per rollback+activation: resolvers ${f(l.cpuPerRollback)} ms, main ${f(l.mainCpuPerRollback)} ms; the API's answer p50 ${f(quantile(l.apiTimes, 0.5))} / p99 ${f(quantile(l.apiTimes, 0.99))} ms (the last resolver was there first in ${ahead} of ${l.times.length}); hops (ms): ${hopSummary(l.hops)}; 1-min load ${l.loadBefore} → ${l.loadAfter} on ${os.cpus().length} CPUs`;
    };
    const paced = `paced: each rollback a random ${PACE_MIN_MS / 1000}–${PACE_MAX_MS / 1000} s after the previous change reached every resolver`;
    out.push({ name: `rollback → last of ${n} resolvers serves original, p50`, unit: 'ms', ours: quantile(m.paced.times, 0.5), peer: null, peerName: null, ratio: null, notes: `${p50Target ? `target ≤ ${p50Target} ms; ` : ''}${loopNotes(m.paced, paced)}; ${idle}` });
    out.push({ name: `rollback → last of ${n} resolvers serves original, p99`, unit: 'ms', ours: quantile(m.paced.times, 0.99), peer: null, peerName: null, ratio: null, notes: `target ≤ ${p99Target} ms; ${paced}` });
    out.push({ name: `rollback → last of ${n} resolvers, back to back, p99`, unit: 'ms', ours: quantile(m.storm.times, 0.99), peer: null, peerName: null, ratio: null, notes: `no target (a storm, not an operator's rollback): ${loopNotes(m.storm, 'back to back, warm: the next rollback as soon as the previous activation reached every resolver, after the paced loop')}` });
    out.push({ name: `rollback → last of ${n} resolvers, cold (first ${counts.cold} after start-up), max`, unit: 'ms', ours: Math.max(...m.cold.times), peer: null, peerName: null, ratio: null, notes: `no target: ${loopNotes(m.cold, 'the first rollbacks 5 s after the processes started, back to back (the regime the figure published before round 8 mostly measured)')}` });
  }
  return out;
}
