/**
 * Variants of the resolver-only process side by side in ONE run, next to the bare node:http peer
 * (the resolve bench's workload: bench/resolver.bench.ts): each variant is its own
 * run-resolver.ts process with its own node flags or environment, on the same deployment, and
 * the rounds rotate over every variant and bare, so all see the same machine load. For deciding
 * a process setting (V8 GC flags, a thread's priority) on a shared machine, where two bench runs
 * one after the other differ more than the settings do (docs/scaling.md "Resolve, round 5").
 *
 *   node --import tsx bench/resolver-variants.ts '[{"name":"default"},{"name":"semi64","nodeArgs":["--max-semi-space-size=64"]}]' [rounds=3] [roundMs=6000]
 *   (`"root": DIR` runs that checkout's run-resolver.ts — e.g. `main` from a clean `git archive`
 *   with node_modules linked — beside this one. Caution, docs/scaling.md "Resolve, round 6": on
 *   the loaded 2-core machine the slot a process had mattered more than its code.)
 *
 * Prints one line per round (req/s, p50/p99, server CPU per request, per-thread CPU and voluntary
 * / involuntary context switches from /proc, and the process's health eventLoop: loop delay, GC
 * pauses, RSS), then a median summary per variant. Not part of `npm run bench` (no BenchResult):
 * a tool for choosing, whose figures go to the docs with the load average.
 */
import { mkdtempSync, writeFileSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolverEnv, waitFor } from '../pipeline/resolver/test-support.ts';
import { assertComplete, median, runLoad, spawnServer, stopAll, type LoadResult } from './http-bench.ts';

/** `root`: run that checkout's run-resolver.ts (e.g. a clean `git archive main` with node_modules linked), to compare code side by side. */
const variants = JSON.parse(process.argv[2]) as { name: string; nodeArgs?: string[]; env?: Record<string, string>; root?: string }[];
const rounds = Number(process.argv[3] ?? 3);
const durationMs = Number(process.argv[4] ?? 6000);
const USERS = 10_000;
const env = resolverEnv('variants-resolve', { PENUMBRA_ASSIGNMENT_KEYS: `bench:${randomBytes(32).toString('base64')}` });
const work = mkdtempSync(path.join(os.tmpdir(), 'penumbra-variants-'));
const children: ChildProcess[] = [];
const dirs = [work, env.PENUMBRA_DATA_DIR];
function thread(pid: number, tid: number) {
  try {
    const st = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    const nv = Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)![1]);
    const v = Number(/\nvoluntary_ctxt_switches:\s+(\d+)/.exec(status)![1]);
    return { cpu: (Number(f[11]) + Number(f[12])) / 100, nv, v };
  } catch { return { cpu: 0, nv: 0, v: 0 }; }
}
function threads(pid: number) {
  const out: Record<string, { cpu: number; nv: number; v: number }> = {};
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    const comm = readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
    out[`${t === String(pid) ? 'main' : comm}:${t}`] = thread(pid, Number(t));
  }
  return out;
}
try {
  const all = await spawnServer<{ url: string; itemId: string }>('bench/api-server.ts', ['--fixture', 'resolve'], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } });
  children.push(all.child);
  const { itemId } = all.info;
  const cs: { name: string; url: string; pid: number; rounds: LoadResult[]; extra: string[] }[] = [];
  for (const v of variants) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'penumbra-variants-r-'));
    dirs.push(dir);
    const s = await spawnServer<{ url: string }>('pipeline/resolver/run-resolver.ts', [], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env, PENUMBRA_DATA_DIR: dir, ...(v.env ?? {}) }, nodeArgs: v.nodeArgs, cwd: v.root });
    children.push(s.child);
    cs.push({ name: v.name, url: s.info.url, pid: s.child.pid!, rounds: [], extra: [] });
  }
  const paths = Array.from({ length: USERS }, (_, i) => `/api/v1/resolve?itemId=${itemId}&userId=bench-${i}&deviceType=${i % 2 ? 'android' : 'ios'}&country=DE`);
  const headers = Array.from({ length: USERS }, (_, i) => ({ 'x-forwarded-for': `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }));
  for (const c of cs) await waitFor('caught up', async () => (await fetch(`${c.url}${paths[0]}`, { headers: headers[0] })).status === 200 && ((await (await fetch(`${c.url}${paths[1]}`, { headers: headers[1] })).json()) as { profileVersion: number }).profileVersion > 0, 60_000, 250);
  const sample = await fetch(`${cs[0].url}${paths[0]}`, { headers: headers[0] });
  const sh: Record<string, string> = {};
  sample.headers.forEach((v, k) => { if (!['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding'].includes(k)) sh[k] = v; });
  const specFile = path.join(work, 'peer.json');
  writeFileSync(specFile, JSON.stringify({ path: '/api/v1/resolve', headers: sh, body: Buffer.from(await sample.arrayBuffer()).toString('base64') }));
  const bare = await spawnServer<{ url: string }>('bench/http-peer.ts', ['--spec', specFile, '--framework', 'node']);
  children.push(bare.child);
  cs.push({ name: 'bare', url: bare.info.url, pid: bare.child.pid!, rounds: [], extra: [] });
  const loadFile = path.join(work, 'load.json');
  const load = (base: string, ms: number, pid?: number) => runLoad(loadFile, { base, paths, headers, connections: 16, durationMs: ms }, pid);
  for (const c of cs) await load(c.url, c.name === 'bare' ? 1000 : 2000, c.pid);
  const la0 = os.loadavg()[0].toFixed(2);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < cs.length; k++) {
      const c = cs[(k + r) % cs.length];
      const isOurs = c.name !== 'bare';
      if (isOurs) await fetch(`${c.url}/api/v1/health`);
      const t0 = threads(c.pid);
      const res = await load(c.url, durationMs, c.pid);
      const t1 = threads(c.pid);
      assertComplete(c.name, [res]);
      c.rounds.push(res);
      let hl = '';
      if (isOurs) {
        const h = (await (await fetch(`${c.url}/api/v1/health`)).json()) as { checks: { eventLoop: Record<string, unknown> } };
        hl = JSON.stringify(h.checks.eventLoop);
      }
      const th = Object.entries(t1).map(([k2, x]) => { const y = t0[k2] ?? { cpu: 0, nv: 0, v: 0 }; return [k2, x.cpu - y.cpu, x.nv - y.nv, x.v - y.v] as const; }).filter((x) => x[1] > 0.05).map((x) => `${x[0]} cpu ${x[1].toFixed(2)}s nv ${x[2]} v ${x[3]}`).join('; ');
      console.log(`r${r} ${c.name}: ${Math.round(res.rps)} req/s p50 ${res.p50.toFixed(2)} p99 ${res.p99.toFixed(2)} max ${res.max.toFixed(1)} cpu/req ${res.serverCpuUs?.toFixed(0)} µs load ${os.loadavg()[0].toFixed(2)} | ${th} | ${hl}`);
    }
  }
  const b = cs.find((c) => c.name === 'bare')!;
  const brps = median(b.rounds.map((x) => x.rps));
  console.log(`load ${la0} -> ${os.loadavg()[0].toFixed(2)}`);
  for (const c of cs) console.log(`SUMMARY ${c.name}: rps ${Math.round(median(c.rounds.map((x) => x.rps)))} (${(median(c.rounds.map((x) => x.rps)) / brps).toFixed(3)}x) p50 ${median(c.rounds.map((x) => x.p50)).toFixed(2)} p99 ${median(c.rounds.map((x) => x.p99)).toFixed(2)} [${c.rounds.map((x) => x.p99.toFixed(2)).join(', ')}] cpu ${median(c.rounds.map((x) => x.serverCpuUs ?? 0)).toFixed(0)}`);
} finally {
  await stopAll(children);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
process.exit(0);
