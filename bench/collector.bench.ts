/**
 * Collector throughput: `POST /api/v1/telemetry` next to a bare producer, measured in one run —
 * every party a process of its own, so none shares another's event loop:
 *  - ours (bench/collector-server.ts): the production API composition without processors or sink,
 *    i.e. the collector's raw node:http fast path in front of Express (the Express route answers
 *    only what it hands over: errors, compressed bodies, service callers) + rate limit + assignment-token verification (HMAC, against the item's current
 *    profile, produced to shadow.profiles before start) + validation + Avro + the coalescing
 *    idempotent producer, 202 only after Kafka acknowledged (acks=all);
 *  - peers (bench/collector-peer.ts): a bare node:http handler that JSON-parses the same body and
 *    produces every event unchanged with kafkajs under the same acks, 202 after the ack — the raw
 *    limit of a collector that keeps the same promise — in two modes, each its own process and
 *    topic: `request` (one produce request per HTTP request: the bare handler) and
 *    `coalesce` (concurrent requests share a produce request, as ours does — the stronger peer);
 *  - load (bench/collector-load.ts): a fresh generator process per round.
 *
 * Workload: batches of 50 events (the injected library's flush size; 90 % request, 8 % usage,
 * 2 % error) with a valid assignment token each (5,000 users, 2 items × 2 variants), 32 keep-alive
 * connections each posting its next batch when the previous was answered, 10 s per round
 * (quick: 5 s), 3 rounds (quick: 1) of the three contenders with the order rotating, after a 2 s
 * warm-up of each. Topics have 3 partitions on the local broker, which shares the machine.
 * Published per peer: median events/s of ours and of the peer, their ratio, and the ratio per
 * round (ours / that peer in the same round).
 *
 * A round fails the bench (nothing is published) if any batch was not answered 202, any event of
 * ours came back unverified, or the events the broker holds after the round (sum of the topic's
 * end offsets) differ from the events acknowledged.
 *
 * Run alone: `node bin/penumbra.js bench --only collector` (or `node --import tsx
 * bench/collector.bench.ts [--quick] [--prof DIR]`; `--prof` writes a CPU profile of ours to DIR).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadConfig, topicNames, type PenumbraConfig } from '../pipeline/config/config.ts';
import { createKafka, AvroProducer } from '../pipeline/kafka/client.ts';
import { provisionAll } from '../pipeline/kafka/setup.ts';
import { claimsFor, parseKeyRing, signAssignment } from '../pipeline/assignment-token/token.ts';
import { profileToRecord } from '../pipeline/profiles/codec.ts';
import type { ShadowProfile } from '../pipeline/domain/types.ts';
import { childJson } from './child-json.ts';
import type { BenchOptions, BenchResult } from './types.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const BATCH = 50;
const CONNECTIONS = 32;
const USERS = 5000;
const ITEMS = ['bench.item0', 'bench.item1'];

interface LoadResult { accepted: number; batches: number; failed: number; unverified: number; statuses: Record<string, number>; ms: number }

/** Spawns a server script and resolves with its child and the URL it prints. */
function server(args: string[], env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve({ child, url: (JSON.parse(line) as { url: string }).url });
      } catch {
        reject(new Error(`${args.join(' ')} printed ${line}`));
      }
    });
    child.once('exit', (code, signal) => reject(new Error(`${args.join(' ')} ended (${code ?? signal}) before listening: ${err.trim()}`)));
  });
}

function load(url: string, seconds: number, tokensFile: string): Promise<LoadResult> {
  const args = ['--import', 'tsx', 'bench/collector-load.ts', '--url', url, '--seconds', String(seconds), '--connections', String(CONNECTIONS), '--batch', String(BATCH), '--tokens', tokensFile];
  return childJson<LoadResult>('load generator', args, (seconds + 60) * 1000);
}

export async function run(opts: BenchOptions & { profDir?: string | null }): Promise<BenchResult[]> {
  const seconds = opts.quick ? 5 : 10;
  const rounds = opts.quick ? 1 : 3;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'penumbra-bench-collector-'));
  const prefix = `bench-coll-${randomUUID().slice(0, 8)}.`;
  const keys = `bench:${randomBytes(32).toString('base64')}`;
  const env = {
    KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
    SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7',
    PORT: '0', PENUMBRA_DATA_DIR: dataDir, PENUMBRA_TOPIC_PREFIX: prefix, PENUMBRA_PARTITIONS: '3', PENUMBRA_LOG_LEVEL: 'error',
    PENUMBRA_ASSIGNMENT_KEYS: keys,
    // One generator address stands for many devices: the per-address limit stays in the path
    // (its bucket is looked up for every batch) but high enough not to refuse the load.
    PENUMBRA_RATE_TELEMETRY: '1000000:1000000',
  };
  const cfg: PenumbraConfig = { ...loadConfig(env), topicPrefix: prefix, topics: topicNames(prefix), partitions: 3 };
  const peerTopic = (mode: string) => `${prefix}peer-${mode}.telemetry`;
  const kafka = createKafka(cfg.kafkaBrokers, 'bench-collector');
  const { codec } = await provisionAll(kafka, cfg);
  const admin = kafka.admin();
  await admin.connect();
  const children: ChildProcess[] = [];
  try {
    await admin.createTopics({ topics: ['request', 'coalesce'].map((m) => ({ topic: peerTopic(m), numPartitions: 3, replicationFactor: 1 })) });
    // The items' current profiles, as the profile writer publishes them: both variants known, so
    // every batch is verified (the verified path is the production one and the costlier one).
    const producer = new AvroProducer(kafka, codec);
    await producer.connect();
    const instrumentation = { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 };
    await producer.send(ITEMS.map((itemId) => {
      const p: ShadowProfile = {
        itemId, profileVersion: 1, state: 'active', seed: itemId, holdout: 0, itemVersion: '1.0.0',
        shadows: [{ name: 'shadow', instrumentation, endpoints: {}, traffic: { percentage: 50, match: 'all', rules: [] }, control: false }],
        updatedBy: 'bench', updatedAt: Date.now(),
      };
      return { topic: cfg.topics.shadowProfiles, key: itemId, value: profileToRecord(p) };
    }));
    await producer.disconnect();
    const ring = parseKeyRing(keys);
    const tokensFile = path.join(dataDir, 'tokens.json');
    writeFileSync(tokensFile, JSON.stringify(Array.from({ length: USERS }, (_, u) => signAssignment(claimsFor({
      itemId: ITEMS[u % 2], userId: `u${u}`, variant: (u >> 1) % 2 === 0 ? 'original' : 'shadow', profileVersion: 1,
    }, Date.now()), ring))));

    const ours = await server([...(opts.profDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.profDir}`] : []), '--import', 'tsx', 'bench/collector-server.ts', '--items', ITEMS.join(',')], { PATH: process.env.PATH, HOME: process.env.HOME, ...env });
    children.push(ours.child);
    const peers: Record<string, string> = {};
    for (const mode of ['request', 'coalesce']) {
      const peer = await server(['--import', 'tsx', 'bench/collector-peer.ts', '--mode', mode, '--topic', peerTopic(mode), '--brokers', cfg.kafkaBrokers.join(',')], { PATH: process.env.PATH, HOME: process.env.HOME });
      children.push(peer.child);
      peers[mode] = peer.url;
    }

    const held = async (topic: string): Promise<number> => (await admin.fetchTopicOffsets(topic)).reduce((s, p) => s + Number(p.high), 0);
    const contenders = [
      { name: 'ours', url: ours.url, topic: cfg.topics.telemetryRaw, rates: [] as number[] },
      { name: 'peer request', url: peers.request, topic: peerTopic('request'), rates: [] as number[] },
      { name: 'peer coalesce', url: peers.coalesce, topic: peerTopic('coalesce'), rates: [] as number[] },
    ];
    const measure = async (c: (typeof contenders)[number], secs: number): Promise<number> => {
      const before = await held(c.topic);
      const r = await load(c.url, secs, tokensFile);
      const stored = (await held(c.topic)) - before;
      if (r.failed > 0 || r.batches === 0) throw new Error(`incomplete run: ${c.name} answered ${JSON.stringify(r.statuses)} over ${r.batches} batches`);
      if (r.unverified > 0) throw new Error(`incomplete run: ${r.unverified} events of ${c.name} came back unverified`);
      if (stored !== r.accepted) throw new Error(`incomplete run: ${c.name} acknowledged ${r.accepted} events but the broker holds ${stored} new records on ${c.topic}`);
      return (r.accepted / r.ms) * 1000;
    };
    for (const c of contenders) await measure(c, 2); // warm-up (JIT, connections, producer metadata)
    const loadBefore = os.loadavg()[0];
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < contenders.length; k++) {
        const c = contenders[(k + r) % contenders.length];
        c.rates.push(await measure(c, seconds));
      }
    }
    const o = median(contenders[0].rates);
    const fmt = (xs: number[]) => xs.map((x) => Math.round(x)).join(', ');
    const common = `${BATCH} events/batch, ${CONNECTIONS} keep-alive connections, ${seconds} s × ${rounds} round(s) interleaved, median; load generator its own process; ` +
      `1-min load average ${loadBefore.toFixed(1)} → ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs`;
    const row = (peer: (typeof contenders)[number], peerName: string, extra: string): BenchResult => {
      const p = median(peer.rates);
      const perRound = contenders[0].rates.map((x, i) => x / peer.rates[i]);
      return {
        name: 'collector POST /api/v1/telemetry (token-verified, Avro, acks=all, 202 after ack)',
        unit: 'events/s',
        ours: Math.round(o),
        peer: Math.round(p),
        peerName,
        ratio: Number((o / p).toFixed(3)),
        notes: `${extra}${common}; ours per round ${fmt(contenders[0].rates)}, peer ${fmt(peer.rates)}; ratio per round ${perRound.map((x) => x.toFixed(2)).join(', ')} (median ${median(perRound).toFixed(2)})`,
      };
    };
    return [
      row(contenders[1], 'bare node:http + JSON.parse + kafkajs produce per request of the same events (acks=all), own process', 'target ≥ 0.5×; '),
      row(contenders[2], 'the same bare handler coalescing concurrent requests into one produce request (2 ms linger), own process', ''),
    ];
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
    await admin.disconnect();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const i = process.argv.indexOf('--prof');
  const results = await run({ quick: process.argv.includes('--quick'), profDir: i >= 0 ? path.resolve(process.argv[i + 1]) : null });
  console.log(JSON.stringify(results, null, 2));
  process.exit(0);
}
