/**
 * Rollback propagation: from the start of POST /api/v1/items/{id}/rollback until the LAST of N
 * resolver-only processes serves the original — N = 3, then N = 10 (issue 15 item 7).
 *
 * Processes: the main Penumbra is a child `penumbra start --role api,processors` (API, profile
 * command processor; no sink), each resolver a child `pipeline/resolver/run-resolver.ts` with its
 * own data folder; the bench process only posts the commands and listens. Nothing of ours shares
 * the bench's event loop.
 *
 * Signal: each resolver publishes a heartbeat to penumbra.resolvers the moment it applies a new
 * profile version (it then serves it: resolve reads the same in-memory store), so the bench
 * follows that topic instead of hammering N resolve endpoints on a 2-core machine. The
 * heartbeat's own produce+fetch is inside the measured time, so the figure is pessimistic.
 * After each rollback every resolver is also asked (resolve) to prove it serves the original;
 * one that does not fails the bench. Rollbacks alternate with activations (not timed).
 * Workload: the multi-page-web fixture with one shadow on 50 % of android/ios users; 50 rollbacks
 * with 3 resolvers, 100 with 10 (quick: 10 each).
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

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

const load = () => os.loadavg()[0].toFixed(1);

interface Measured {
  times: number[];
  apiTimes: number[];
  loadBefore: string;
  loadAfter: string;
}

async function measure(resolvers: number, rollbacks: number): Promise<Measured> {
  const env = resolverEnv(`bench-rollback-${resolvers}`);
  const cfg = configFrom(env);
  const children: ChildResolver[] = [];
  let main: ChildPenumbra | null = null;
  const kafka = createKafka(cfg.kafkaBrokers, `bench-rollback-${resolvers}`);
  const codec = new AvroCodec(cfg.schemaRegistryUrl);
  try {
    main = await spawnPenumbra(env, 'api,processors', 120_000);
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
      children.push(...(await Promise.all(Array.from({ length: n }, () => spawnResolver({ ...env, PENUMBRA_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'penumbra-bench-r-')) }, 120_000)))));
    }
    const served = new Map<string, number>();
    let waiters: (() => void)[] = [];
    const hb = await followTopic({
      kafka, codec, topic: cfg.topics.resolvers, schema: 'resolver-status', groupPrefix: `${cfg.topicPrefix}bench-`, fromBeginning: false,
      onRecord: (s) => {
        served.set(s.resolverId, Math.max(served.get(s.resolverId) ?? 0, s.versions[itemId] ?? 0));
        const w = waiters;
        waiters = [];
        for (const f of w) f();
      },
    });
    try {
      await hb.ready;
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
      const times: number[] = [];
      const apiTimes: number[] = [];
      const loadBefore = load();
      for (let i = 0; i < rollbacks; i++) {
        const t0 = performance.now();
        const v = await post('rollback');
        apiTimes.push(performance.now() - t0);
        await untilAll(v);
        times.push(performance.now() - t0);
        for (const c of children) {
          const a = await resolveOn(c.url, shadowUser);
          if (a.variant !== 'original' || a.profileVersion < v) throw new Error(`${c.resolverId} still serves ${a.variant} v${a.profileVersion} after its heartbeat for v${v}`);
        }
        await untilAll(await post('activate'));
      }
      return { times, apiTimes, loadBefore, loadAfter: load() };
    } finally {
      await hb.stop();
    }
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await main?.stop();
  }
}

export async function run(opts: BenchOptions): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const [n, count, p50Target, p99Target] of [[3, opts.quick ? 10 : 50, 100, 250], [10, opts.quick ? 10 : 100, null, 100]] as const) {
    const m = await measure(n, count);
    const p50 = quantile(m.times, 0.5);
    const p99 = quantile(m.times, 0.99);
    // After the API's 200 (the command is applied and the profile written): the fan-out alone.
    const after = m.times.map((t, i) => t - m.apiTimes[i]);
    const ctx = `${count} rollbacks; API call itself p50 ${quantile(m.apiTimes, 0.5).toFixed(1)} ms; from its answer to the last resolver p50 ${quantile(after, 0.5).toFixed(1)} / p99 ${quantile(after, 0.99).toFixed(1)} ms; 1-min load ${m.loadBefore} → ${m.loadAfter} on ${os.cpus().length} CPUs`;
    out.push({ name: `rollback → last of ${n} resolvers serves original, p50`, unit: 'ms', ours: p50, peer: null, peerName: null, ratio: null, notes: `${p50Target ? `target ≤ ${p50Target} ms; ` : ''}${ctx}` });
    out.push({ name: `rollback → last of ${n} resolvers serves original, p99`, unit: 'ms', ours: p99, peer: null, peerName: null, ratio: null, notes: `target ≤ ${p99Target} ms; max ${Math.max(...m.times).toFixed(1)} ms` });
  }
  return out;
}
