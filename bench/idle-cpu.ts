/**
 * Idle CPU of the rollback topology, per process and per thread (issue 15 item 7): what a main
 * `penumbra start --role api,processors` and N resolver-only processes cost when nothing happens —
 * the CPU a rollback's fan-out competes with on a small machine.
 *
 *   node --import tsx bench/idle-cpu.ts [resolvers=3] [settleSeconds=20] [windowSeconds=10]
 *
 * Starts the processes as the rollback bench does (bench/rollback.bench.ts: same fixture, one
 * shadow, each resolver one resolve so its exposure worker runs), waits `settleSeconds` (start-up,
 * catch-up and JIT are not idle), then reads /proc over `windowSeconds`: CPU ms per second of each
 * process and of its busiest threads, and voluntary context switches per second (≈ wake-ups).
 * `IDLE_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'` passes node flags to every child (the
 * children's env holds no NODE_OPTIONS). Linux only. Prints one JSON line per process and a summary. Not a `*.bench.ts`: no peer, it is
 * a measurement tool whose figures docs/scaling.md quotes with the load average.
 */
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { fixtureArchive } from '../pipeline/shadowing/fixtures.ts';
import { ADMIN_TOKEN, mobileShadow, resolverEnv, spawnResolver, type ChildResolver } from '../pipeline/resolver/test-support.ts';
import { spawnPenumbra, type ChildPenumbra } from '../pipeline/roles/spawn.ts';
import { threadCpu } from './proc-cpu.ts';

interface ThreadSample {
  name: string;
  cpuMs: number;
  vcsw: number;
}

/** CPU ms (user + system) and voluntary context switches of every thread of `pid`. */
function threads(pid: number): Map<string, ThreadSample> {
  const out = new Map<string, ThreadSample>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const { name, cpuMs } = threadCpu(pid, tid);
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const vcsw = Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
      out.set(tid, { name, cpuMs, vcsw });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

function diff(a: Map<string, ThreadSample>, b: Map<string, ThreadSample>, secs: number) {
  const per: { name: string; cpuMsPerSec: number; wakeupsPerSec: number }[] = [];
  for (const [tid, t1] of b) {
    const t0 = a.get(tid);
    if (!t0) continue;
    per.push({ name: t1.name, cpuMsPerSec: (t1.cpuMs - t0.cpuMs) / secs, wakeupsPerSec: (t1.vcsw - t0.vcsw) / secs });
  }
  per.sort((x, y) => y.cpuMsPerSec - x.cpuMsPerSec || y.wakeupsPerSec - x.wakeupsPerSec);
  const sum = (k: 'cpuMsPerSec' | 'wakeupsPerSec') => Math.round(per.reduce((s, t) => s + t[k], 0) * 10) / 10;
  return { cpuMsPerSec: sum('cpuMsPerSec'), wakeupsPerSec: sum('wakeupsPerSec'), top: per.filter((t) => t.cpuMsPerSec > 0 || t.wakeupsPerSec >= 1).slice(0, 6) };
}

async function main() {
  const [n = 3, settle = 20, window = 10] = process.argv.slice(2).map(Number);
  const env = resolverEnv(`idle-cpu-${n}`);
  const nodeArgs = (process.env.IDLE_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const children: ChildResolver[] = [];
  let mainProc: ChildPenumbra | null = null;
  try {
    mainProc = await spawnPenumbra(env, 'api,processors', 120_000, nodeArgs);
    const fd = new FormData();
    fd.append('shadowConfig', JSON.stringify(mobileShadow()));
    fd.append('item', new Blob([new Uint8Array(await fixtureArchive('multi-page-web', 'zip'))]), 'item.zip');
    const ing = await fetch(`${mainProc.url}/api/v1/items`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, body: fd });
    if (ing.status !== 201) throw new Error(`ingest answered ${ing.status}: ${await ing.text()}`);
    const { item } = (await ing.json()) as { item: { itemId: string } };
    for (let i = 0; i < n; i += 5) {
      const k = Math.min(5, n - i);
      children.push(...(await Promise.all(Array.from({ length: k }, () => spawnResolver({ ...env, PENUMBRA_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'penumbra-idle-r-')) }, 120_000, nodeArgs)))));
    }
    for (const c of [...children, mainProc]) await fetch(`${c.url}/api/v1/resolve?itemId=${item.itemId}&userId=idle-1&deviceType=android`).then((r) => r.text());
    await new Promise((r) => setTimeout(r, settle * 1000));
    const procs = [{ role: 'main', pid: mainProc.pid }, ...children.map((c, i) => ({ role: `resolver-${i}`, pid: c.pid }))];
    const load0 = os.loadavg()[0].toFixed(2);
    const a = procs.map((p) => threads(p.pid));
    await new Promise((r) => setTimeout(r, window * 1000));
    const b = procs.map((p) => threads(p.pid));
    const rows = procs.map((p, i) => ({ ...p, ...diff(a[i], b[i], window) }));
    for (const r of rows) console.log(JSON.stringify(r));
    const res = rows.filter((r) => r.role !== 'main');
    const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    console.log(JSON.stringify({
      summary: true, resolvers: n, settleSeconds: settle, windowSeconds: window, load1: `${load0} → ${os.loadavg()[0].toFixed(2)}`,
      mainCpuMsPerSec: rows[0].cpuMsPerSec, mainWakeupsPerSec: rows[0].wakeupsPerSec,
      resolverCpuMsPerSecMedian: med(res.map((r) => r.cpuMsPerSec)), resolverCpuMsPerSecSum: Math.round(res.reduce((s, r) => s + r.cpuMsPerSec, 0) * 10) / 10,
      resolverWakeupsPerSecMedian: med(res.map((r) => r.wakeupsPerSec)),
    }));
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await mainProc?.stop();
  }
}

await main();
