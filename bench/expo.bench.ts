/**
 * Expo Updates manifest answers: GET /api/v1/expo/{itemId}/manifest on a real Penumbra (the
 * Express route with the rate limiter, header parsing, the resolver with its assignment log
 * producing every decision to Kafka off the response path, the manifest of the assigned variant,
 * an assignment token, the multipart encoding) next to a bare node:http handler answering the
 * same multipart bytes with the same headers — the ceiling of any Node HTTP answer here. A third
 * figure, in the notes: the same route when the apps ask for code signing (an RSA-2048 signature
 * over the manifest part; answers with identical part bytes reuse it).
 *
 * Every party is a process of its own (bench/http-bench.ts), so none shares another's event
 * loop: ours (bench/api-server.ts --fixture expo: `createPenumbra(cfg, { sink: false })` with a
 * code-signing key, the generated sample update bundle with a 50 % shadow), the bare peer
 * (bench/http-peer.ts), and a fresh load generator per round (bench/http-load.ts). The bench
 * process only orchestrates.
 *
 * Workload: requests rotate over 10,000 device ids (penumbra-user-id) and 10,000 client
 * addresses (X-Forwarded-For), iOS, runtime 1.0.0; closed loop with 16 keep-alive connections;
 * rounds of 6 s (quick: 2 s), 3 (quick: 1), the contenders' order rotating per round, after a
 * warm-up of each; each published figure is the median round. A round with any non-200 answer
 * or connection error fails the bench (nothing is published).
 *
 * Last measured (2026-12-06, shared 2-core machine, 1-minute load 14–17; docs/mobile.md has every
 * run): ours 1,679 req/s vs bare 13,755 → 0.122× (median of three runs after the fast path and
 * caches: 0.12×; before: 0.08×), p99 68 vs 9.8 ms, signed 375 req/s; server CPU per request
 * 225 µs (167–225 over three runs; before 448) vs bare 22 µs, signed 710 µs (before 857).
 *
 * Run alone: `node bin/penumbra.js bench --only expo` (an exact bench name selects that bench
 * alone, not exposure.bench.ts too: bench/run.ts), or `node --import tsx bench/expo.bench.ts
 * [--quick] [--prof DIR]` (`--prof` writes a CPU profile of ours to DIR).
 */
import { randomBytes, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { resolverEnv } from '../pipeline/resolver/test-support.ts';
import { assertComplete, cpuPerRequest, median, runLoad, spawnServer, stopAll, type LoadResult } from './http-bench.ts';
import type { BenchOptions, BenchResult } from './types.ts';

const DEVICES = 10_000;
const CONNECTIONS = 16;

export async function run(opts: BenchOptions & { profDir?: string | null }): Promise<BenchResult[]> {
  const durationMs = opts.quick ? 2000 : 6000;
  const rounds = opts.quick ? 1 : 3;
  const env = resolverEnv('bench-expo', { PENUMBRA_ASSIGNMENT_KEYS: `b1:${randomBytes(32).toString('base64')}` });
  const work = mkdtempSync(path.join(os.tmpdir(), 'penumbra-bench-expo-'));
  const keyFile = path.join(work, 'expo-key.pem');
  writeFileSync(keyFile, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const children: ChildProcess[] = [];
  try {
    const ours = await spawnServer<{ url: string; itemId: string }>('bench/api-server.ts', ['--fixture', 'expo'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env, PENUMBRA_EXPO_SIGNING_KEY_FILE: keyFile },
      nodeArgs: opts.profDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.profDir}`] : [],
    });
    children.push(ours.child);
    const { url, itemId } = ours.info;
    const path0 = `/api/v1/expo/${itemId}/manifest`;
    const paths = [path0];
    const base = { 'expo-protocol-version': '1', 'expo-platform': 'ios', 'expo-runtime-version': '1.0.0', accept: 'application/expo+json;q=0.9, application/json;q=0.8, multipart/mixed' };
    const headers = Array.from({ length: DEVICES }, (_, i) => ({ ...base, 'penumbra-user-id': `bench-${i}`, 'x-forwarded-for': `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }));
    const signedHeaders = headers.map((h) => ({ ...h, 'expo-expect-signature': 'sig, keyid="main", alg="rsa-v1_5-sha256"' }));

    const sample = await fetch(`${url}${path0}`, { headers: headers[0] });
    if (sample.status !== 200) throw new Error(`sample manifest answered ${sample.status}: ${await sample.text()}`);
    const sampleHeaders: Record<string, string> = {};
    for (const k of ['content-type', 'expo-protocol-version', 'expo-sfv-version', 'expo-manifest-filters', 'expo-server-defined-headers', 'cache-control', 'vary']) {
      const v = sample.headers.get(k);
      if (v !== null) sampleHeaders[k] = v;
    }
    const specFile = path.join(work, 'peer.json');
    writeFileSync(specFile, JSON.stringify({ path: path0, headers: sampleHeaders, body: Buffer.from(await sample.arrayBuffer()).toString('base64') }));
    const bare = await spawnServer('bench/http-peer.ts', ['--spec', specFile, '--framework', 'node']);
    children.push(bare.child);

    const loadFile = path.join(work, 'load.json');
    const load = (target: string, ms: number, h: Record<string, string>[], pid?: number) => runLoad(loadFile, { base: target, paths, headers: h, connections: CONNECTIONS, durationMs: ms }, pid);
    const contenders = [
      { name: 'ours', url, headers, pid: ours.child.pid, rounds: [] as LoadResult[] },
      { name: 'bare', url: bare.info.url, headers, pid: bare.child.pid, rounds: [] as LoadResult[] },
      { name: 'signed', url, headers: signedHeaders, pid: ours.child.pid, rounds: [] as LoadResult[] },
    ];
    for (const c of contenders) assertComplete(`${c.name} warm-up`, [await load(c.url, c.name === 'bare' ? 1000 : 2000, c.headers, c.pid)]);
    const loadBefore = os.loadavg();
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < contenders.length; k++) {
        const c = contenders[(k + r) % contenders.length];
        c.rounds.push(await load(c.url, durationMs, c.headers, c.pid));
      }
    }
    for (const c of contenders) assertComplete(c.name, c.rounds);
    const loadAfter = os.loadavg();
    await new Promise((r) => setTimeout(r, 300));
    const health = (await (await fetch(`${url}/api/v1/health`)).json()) as { checks: { assignments?: { sent: number; dropped: number; depth: number } } };
    const a = health.checks.assignments;
    if (!a) throw new Error('incomplete run: the health answer has no assignment-log stats');
    if (a.dropped > 0) throw new Error(`incomplete run: the assignment log dropped ${a.dropped} exposures`);
    const [o, b, s] = contenders.map((c) => ({
      rps: median(c.rounds.map((x) => x.rps)), p50: median(c.rounds.map((x) => x.p50)), p99: median(c.rounds.map((x) => x.p99)),
      perRound: c.rounds.map((x) => `${Math.round(x.rps)}/${x.p99.toFixed(2)}`).join(', '),
      cpu: cpuPerRequest(c.rounds),
    }));
    const uptime = `load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')} → ${loadAfter.map((x) => x.toFixed(2)).join(' ')} on ${os.cpus().length} CPUs`;
    const peerName = 'bare node:http, same multipart and headers, own process';
    return [
      {
        name: 'expo manifest throughput (resolver + exposure log)', unit: 'req/s', ours: Math.round(o.rps), peer: Math.round(b.rps), peerName, ratio: Number((o.rps / b.rps).toFixed(3)),
        notes: `signed (RSA-2048 over the manifest part) ${Math.round(s.rps)} req/s = ${(s.rps / b.rps).toFixed(3)}× bare; ${CONNECTIONS} keep-alive conns, ${rounds}×${durationMs / 1000}s rounds (median), every contender and the load generator its own process; sample update bundle, 50 % shadow, ${DEVICES} devices; assignments sent ${a.sent}, dropped ${a.dropped}; req/s/p99 per round: ours ${o.perRound}; bare ${b.perRound}; signed ${s.perRound}; ${uptime}`,
      },
      {
        name: 'expo manifest latency p99', unit: 'ms', ours: Number(o.p99.toFixed(2)), peer: Number(b.p99.toFixed(2)), peerName, ratio: Number((o.p99 / b.p99).toFixed(3)),
        notes: `p50 ours ${o.p50.toFixed(2)} ms, bare ${b.p50.toFixed(2)} ms; signed p50 ${s.p50.toFixed(2)} / p99 ${s.p99.toFixed(2)} ms; server CPU per request (median round) ours ${o.cpu}, bare ${b.cpu}, signed ${s.cpu}; ${uptime}`,
      },
    ];
  } finally {
    await stopAll(children);
    rmSync(work, { recursive: true, force: true });
    rmSync(env.PENUMBRA_DATA_DIR, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const i = process.argv.indexOf('--prof');
  const results = await run({ quick: process.argv.includes('--quick'), profDir: i >= 0 ? path.resolve(process.argv[i + 1]) : null });
  console.log(JSON.stringify(results, null, 2));
  process.exit(0);
}
