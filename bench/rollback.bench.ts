/**
 * Rollback propagation: from the start of POST /api/v1/items/{id}/rollback on the main process
 * until the LAST of three resolver-only child processes serves the original.
 *
 * Signal: each resolver publishes a heartbeat to penumbra.resolvers the moment it applies a new
 * profile version (it then serves it: resolve reads the same in-memory store), so the bench
 * follows that topic instead of hammering three resolve endpoints on a 2-core machine. The
 * heartbeat's own produce+fetch is inside the measured time, so the figure is pessimistic.
 * After each rollback every resolver is also asked (resolve) to prove it serves the original.
 * Rollbacks alternate with activations (not timed); ≥ 50 rollbacks (quick: 10).
 * Targets: p50 ≤ 100 ms, p99 ≤ 250 ms.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createPenumbra } from '../pipeline/app/penumbra.ts';
import { followTopic } from '../pipeline/kafka/follow.ts';
import { ADMIN_TOKEN, configFrom, ingestFixture, resolverEnv, spawnResolver, waitFor, type ChildResolver } from '../pipeline/resolver/test-support.ts';
import type { BenchOptions, BenchResult } from './types.ts';

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

export async function run(opts: BenchOptions): Promise<BenchResult[]> {
  const rollbacks = opts.quick ? 10 : 50;
  const env = resolverEnv('bench-rollback');
  const p = await createPenumbra(configFrom(env), { sink: false });
  const children: ChildResolver[] = [];
  try {
    const { itemId, profileVersion } = await ingestFixture(p.ctx);
    children.push(...(await Promise.all([1, 2, 3].map(() => spawnResolver({ ...env, PENUMBRA_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'penumbra-bench-r-')) })))));
    const served = new Map<string, number>();
    let waiters: (() => void)[] = [];
    const hb = await followTopic({
      kafka: p.ctx.kafka, codec: p.ctx.codec, topic: p.cfg.topics.resolvers, schema: 'resolver-status', groupPrefix: p.cfg.topicPrefix, fromBeginning: false,
      onRecord: (s) => {
        served.set(s.resolverId, Math.max(served.get(s.resolverId) ?? 0, s.versions[itemId] ?? 0));
        const w = waiters;
        waiters = [];
        for (const f of w) f();
      },
    });
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
    for (let i = 0; !shadowUser; i++) if ((await resolveOn(p.url, `rb-${i}`)).variant !== 'original') shadowUser = `rb-${i}`;
    for (const c of children) await waitFor('resolver caught up', async () => (await resolveOn(c.url, shadowUser)).profileVersion === profileVersion, 30_000);
    await untilAll(profileVersion).catch(() => {}); // periodic heartbeats will get there; not timed

    const post = async (action: 'rollback' | 'activate') => {
      const res = await fetch(`${p.url}/api/v1/items/${itemId}/${action}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: '{}' });
      if (res.status !== 200) throw new Error(`${action} answered ${res.status}: ${await res.text()}`);
      return ((await res.json()) as { profileVersion: number }).profileVersion;
    };
    const times: number[] = [];
    const apiTimes: number[] = [];
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
    await hb.stop();
    const p50 = quantile(times, 0.5);
    const p99 = quantile(times, 0.99);
    return [
      { name: 'rollback → last of 3 resolvers serves original, p50', unit: 'ms', ours: p50, peer: null, peerName: null, ratio: null, notes: `target ≤ 100 ms; ${rollbacks} rollbacks; API call itself p50 ${quantile(apiTimes, 0.5).toFixed(1)} ms` },
      { name: 'rollback → last of 3 resolvers serves original, p99', unit: 'ms', ours: p99, peer: null, peerName: null, ratio: null, notes: `target ≤ 250 ms; max ${Math.max(...times).toFixed(1)} ms` },
    ];
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await p.stop();
  }
}
