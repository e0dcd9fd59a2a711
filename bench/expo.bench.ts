/**
 * Expo Updates manifest answers: GET /api/v1/expo/{itemId}/manifest on a real Penumbra (the
 * Express stack, rate limiter, header parsing, the resolver with its assignment log producing
 * every decision to Kafka, manifest building from the cached variant, an assignment token, the
 * multipart encoding) next to a bare node:http handler answering the same multipart bytes with
 * the same headers — the ceiling of any Node HTTP answer here. A third figure, in the notes:
 * the same route when the apps ask for code signing (one RSA-2048 signature per answer).
 *
 * Workload: the generated sample update bundle with a 50 % shadow; requests rotate over 10,000
 * device ids (penumbra-user-id) and 10,000 client addresses (X-Forwarded-For), iOS, runtime
 * 1.0.0, closed loop with 16 keep-alive connections in a worker thread (pipeline/resolver/
 * bench-load.ts); rounds interleave ours/bare, each figure is the median round; a round with
 * any non-200 answer fails the bench.
 */
import http from 'node:http';
import { randomBytes, randomUUID, generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { createPenumbra } from '../pipeline/app/penumbra.ts';
import { configFrom, resolverEnv, waitFor } from '../pipeline/resolver/test-support.ts';
import { ingestDigitalItem } from '../pipeline/ingest/ingest-service.ts';
import { writeArchive } from '../pipeline/shadowing/archive.ts';
import { manifestFromFiles } from '../pipeline/shadowing/manifest.ts';
import { sampleExpoFiles } from '../pipeline/mobile/sample/sample-item.ts';
import { median, runLoad, type LoadResult } from '../pipeline/resolver/bench-load.ts';
import type { BenchOptions, BenchResult } from './types.ts';

const DEVICES = 10_000;
const CONNECTIONS = 16;

export async function run(opts: BenchOptions): Promise<BenchResult[]> {
  const durationMs = opts.quick ? 2000 : 6000;
  const rounds = opts.quick ? 1 : 3;
  const env = resolverEnv('bench-expo', { PENUMBRA_ASSIGNMENT_KEYS: `b1:${randomBytes(32).toString('base64')}` });
  const keyFile = path.join(env.PENUMBRA_DATA_DIR, 'expo-key.pem');
  writeFileSync(keyFile, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const p = await createPenumbra(configFrom({ ...env, PENUMBRA_EXPO_SIGNING_KEY_FILE: keyFile }), { sink: false });
  let bare: http.Server | null = null;
  try {
    p.ctx.ingest.publicUrl = p.url;
    const files = sampleExpoFiles();
    const archive = await writeArchive({ manifest: manifestFromFiles(files), files }, 'zip');
    const shadow = { name: 'fast-api', instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 }, endpoints: { api: 'https://shadow-api.example.com/v1' }, traffic: { percentage: 50, match: 'all', rules: [] } };
    const r = await ingestDigitalItem(p.ctx.ingest, { archive, shadowConfig: shadow, actor: { name: 'bench', role: 'admin' }, requestId: randomUUID() });
    const itemId = r.entry.itemId;
    await p.ctx.profileStore.waitForVersion(itemId, r.profile.profileVersion);
    await waitFor('catalog', () => p.ctx.catalog.find(itemId));
    const path0 = `/api/v1/expo/${itemId}/manifest`;
    const paths = Array.from({ length: DEVICES }, () => path0);
    const base = { 'expo-protocol-version': '1', 'expo-platform': 'ios', 'expo-runtime-version': '1.0.0', accept: 'application/expo+json;q=0.9, application/json;q=0.8, multipart/mixed' };
    const headers = Array.from({ length: DEVICES }, (_, i) => ({ ...base, 'penumbra-user-id': `bench-${i}`, 'x-forwarded-for': `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }));
    const signedHeaders = headers.map((h) => ({ ...h, 'expo-expect-signature': 'sig, keyid="main", alg="rsa-v1_5-sha256"' }));

    const sample = await fetch(`${p.url}${path0}`, { headers: headers[0] });
    const sampleHeaders: Record<string, string> = {};
    for (const k of ['content-type', 'expo-protocol-version', 'expo-sfv-version', 'expo-manifest-filters', 'expo-server-defined-headers', 'cache-control', 'vary']) sampleHeaders[k] = sample.headers.get(k)!;
    const sampleBody = Buffer.from(await sample.arrayBuffer());
    bare = http.createServer((_req, res) => {
      for (const [k, v] of Object.entries(sampleHeaders)) res.setHeader(k, v);
      res.end(sampleBody);
    });
    bare.keepAliveTimeout = 65000;
    await new Promise<void>((res) => bare!.listen(0, '127.0.0.1', () => res()));
    const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}`;

    const load = (url: string, ms: number, h = headers) => runLoad({ base: url, paths, headers: h, connections: CONNECTIONS, durationMs: ms });
    await load(p.url, 1000);
    await load(bareUrl, 500);
    const ours: LoadResult[] = [];
    const peer: LoadResult[] = [];
    const signed: LoadResult[] = [];
    for (let i = 0; i < rounds; i++) {
      ours.push(await load(p.url, durationMs));
      peer.push(await load(bareUrl, durationMs));
      signed.push(await load(p.url, durationMs, signedHeaders));
    }
    for (const x of [...ours, ...peer, ...signed]) {
      if (x.other > 0 || x.errors > 0) throw new Error(`invalid run: ${x.other} non-200 answers, ${x.errors} errors`);
    }
    const o = median(ours.map((x) => x.rps));
    const b = median(peer.map((x) => x.rps));
    const s = median(signed.map((x) => x.rps));
    const op99 = median(ours.map((x) => x.p99));
    const bp99 = median(peer.map((x) => x.p99));
    return [
      { name: 'expo manifest throughput (resolver + exposure log)', unit: 'req/s', ours: o, peer: b, peerName: 'bare node:http, same multipart', ratio: o / b,
        notes: `signed (RSA-2048 per answer) ${s.toFixed(0)} req/s; ${CONNECTIONS} keep-alive conns, ${rounds}×${durationMs / 1000}s rounds (median); sample update bundle, 50 % shadow, ${DEVICES} devices` },
      { name: 'expo manifest latency p99', unit: 'ms', ours: op99, peer: bp99, peerName: 'bare node:http, same multipart', ratio: op99 / bp99,
        notes: `p50 ours ${median(ours.map((x) => x.p50)).toFixed(2)} ms, bare ${median(peer.map((x) => x.p50)).toFixed(2)} ms; signed p99 ${median(signed.map((x) => x.p99)).toFixed(2)} ms` },
    ];
  } finally {
    await new Promise<void>((res) => (bare ? bare.close(() => res()) : res()));
    await p.stop();
  }
}
