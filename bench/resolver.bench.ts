/**
 * Resolve throughput and latency: GET /api/v1/resolve on a real Penumbra (createPenumbra on a
 * temp topic prefix) next to a bare node:http handler returning the same JSON with the same
 * headers — the ceiling of any Node HTTP answer on this machine.
 *
 * What answers ours: the raw node:http fast path in front of Express
 * (connectors/http/resolve-fast-path.ts). For these requests — valid parameters, a client
 * address under its rate limit — it parses the query itself, applies the per-address token
 * bucket, runs the Resolver (compiled trafficSplit from memory) and queues the assignment record
 * for Kafka, then writes the JSON; Express (router, zod validation, header derivation) is never
 * entered. Express only answers what the fast path declines (bad input → 422, rate-limited → 429),
 * which this load never sends (a round with any non-200 answer fails the bench). A bare Express 5
 * route writing the same bytes is measured too and reported in the notes, to show what the fast
 * path saves.
 *
 * Fairness: the same closed-loop load (pipeline/resolver/bench-load.ts: keep-alive, N connections, fixed
 * duration) in a worker thread for both; rounds interleave ours/bare and each figure is the
 * median round. Requests rotate over 10,000 users (a mix of shadow and original answers) and
 * carry X-Forwarded-For from a pool of 10,000 client addresses — many devices, as in
 * production — so the per-client rate limit (200/s) stays on and is exercised but does not
 * throttle the run.
 * Targets: ours ≥ 0.5× bare requests/s, p99 ≤ 5 ms.
 */
import http from 'node:http';
import express from 'express';
import type { AddressInfo } from 'node:net';
import { createPenumbra } from '../pipeline/app/penumbra.ts';
import { configFrom, ingestFixture, resolverEnv, waitFor } from '../pipeline/resolver/test-support.ts';
import type { BenchOptions, BenchResult } from './types.ts';
import { median, runLoad, type LoadResult } from '../pipeline/resolver/bench-load.ts';

const USERS = 10_000;
const CONNECTIONS = 16;

export async function run(opts: BenchOptions): Promise<BenchResult[]> {
  const durationMs = opts.quick ? 2000 : 6000;
  const rounds = opts.quick ? 1 : 3;
  const p = await createPenumbra(configFrom(resolverEnv('bench-resolve')), { sink: false });
  let bare: http.Server | null = null;
  let minimal: http.Server | null = null;
  try {
    const { itemId, profileVersion } = await ingestFixture(p.ctx);
    await p.ctx.profileStore.waitForVersion(itemId, profileVersion);
    await waitFor('catalog', () => p.ctx.catalog.find(itemId));
    const paths = Array.from({ length: USERS }, (_, i) => `/api/v1/resolve?itemId=${itemId}&userId=bench-${i}&deviceType=${i % 2 ? 'android' : 'ios'}&country=DE`);
    const headers = Array.from({ length: USERS }, (_, i) => ({ 'x-forwarded-for': `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }));

    // The peer answers what ours answers for a typical request, with the same headers.
    const sample = await (await fetch(`${p.url}${paths[0]}`)).text();
    bare = http.createServer((_req, res) => {
      res.setHeader('Cache-Control', 'no-store');
      res.setHeader('Access-Control-Allow-Origin', '*');
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.end(sample);
    });
    bare.keepAliveTimeout = 65000;
    await new Promise<void>((r) => bare!.listen(0, '127.0.0.1', () => r()));
    const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}`;

    // Reference, reported in notes only: one Express 5 route writing the same bytes, i.e. the
    // part of our cost that is the framework rather than the resolver.
    const app = express();
    app.get('/api/v1/resolve', (_req, res) => {
      res.setHeader('Cache-Control', 'no-store');
      res.setHeader('Access-Control-Allow-Origin', '*');
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.end(sample);
    });
    minimal = http.createServer(app);
    minimal.keepAliveTimeout = 65000;
    await new Promise<void>((r) => minimal!.listen(0, '127.0.0.1', () => r()));
    const minimalUrl = `http://127.0.0.1:${(minimal.address() as AddressInfo).port}`;

    const load = (base: string, ms: number) => runLoad({ base, paths, headers, connections: CONNECTIONS, durationMs: ms });
    // Warm both (JIT, sockets, Kafka producer batches).
    await load(p.url, 1000);
    await load(bareUrl, 500);
    const ours: LoadResult[] = [];
    const peer: LoadResult[] = [];
    const framework: LoadResult[] = [];
    for (let r = 0; r < rounds; r++) {
      ours.push(await load(p.url, durationMs));
      peer.push(await load(bareUrl, durationMs));
      framework.push(await load(minimalUrl, durationMs));
    }
    for (const x of [...ours, ...peer]) {
      if (x.other > 0 || x.errors > 0) throw new Error(`invalid run: ${x.other} non-200 answers, ${x.errors} errors`);
    }
    await new Promise((r) => setTimeout(r, 200));
    const health = (await (await fetch(`${p.url}/api/v1/health`)).json()) as { checks: { assignments?: { sent: number; dropped: number; depth: number } } };
    const a = health.checks.assignments;
    const oursRps = median(ours.map((x) => x.rps));
    const peerRps = median(peer.map((x) => x.rps));
    const oursP99 = median(ours.map((x) => x.p99));
    const peerP99 = median(peer.map((x) => x.p99));
    const oursP50 = median(ours.map((x) => x.p50));
    const peerP50 = median(peer.map((x) => x.p50));
    const expressRatio = median(framework.map((x) => x.rps)) / median(peer.map((x) => x.rps));
    const logNote = a ? `assignments sent ${a.sent}, dropped ${a.dropped}, queued ${a.depth}` : 'assignment stats unavailable';
    return [
      {
        name: 'resolve throughput (assignment logging on)',
        unit: 'req/s',
        ours: oursRps,
        peer: peerRps,
        peerName: 'bare node:http, same JSON',
        ratio: oursRps / peerRps,
        notes: `target ≥ 0.5× bare; ${CONNECTIONS} keep-alive conns, ${rounds}×${durationMs / 1000}s rounds (median); ${logNote}; a bare Express 5 route reaches ${expressRatio.toFixed(2)}× bare here`,
      },
      {
        name: 'resolve latency p99',
        unit: 'ms',
        ours: oursP99,
        peer: peerP99,
        peerName: 'bare node:http, same JSON',
        ratio: oursP99 / peerP99,
        notes: `target ≤ 5 ms; p50 ours ${oursP50.toFixed(2)} ms, bare ${peerP50.toFixed(2)} ms`,
      },
    ];
  } finally {
    await new Promise<void>((r) => (bare ? bare.close(() => r()) : r()));
    await new Promise<void>((r) => (minimal ? minimal.close(() => r()) : r()));
    await p.stop();
  }
}
