/**
 * End-to-end telemetry throughput and freshness, measured in one run on one fresh topic prefix:
 *
 *  - ours: sustained events/s from the first POST until the last accepted event has been both
 *    aggregated by the metrics processor AND committed into DuckDB by the warehouse sink —
 *    collector (HTTP, validation, Avro, acks=all) → Kafka → processors → DuckDB. Load: several
 *    concurrent HTTP posters (worker threads, keep-alive) sending 400-event batches with
 *    timestamps "now" for `durationMs`, each batch with a valid assignment token for its user and
 *    variant (signed up front with the deployment's key ring), so the collector's one HMAC
 *    verification per batch is part of the figure.
 *  - peers, each a process of its own (bench/peer-consume.ts), consuming the same telemetry.raw
 *    topic right after: a kafkajs consumer counting only (no decode, no storage) — the raw
 *    consumption ceiling of this machine — and one decoding every record with avsc and
 *    discarding it (the least any consumer that reads the data does).
 *  - freshness: every 250 ms a probe batch of one event (item `bench.probe`, one session, so the
 *    probes keep their order on one partition) is POSTed with ts = now; the j-th probe (by ts)
 *    is seen when the 10 s windows of the probe item on GET /api/v1/stream (SSE, the console's
 *    feed) count j events together (the latest record of each window summed); freshness = that
 *    moment minus ts. A probe that never shows (e.g. dropped as later than the allowed lateness)
 *    counts as never fresh (+∞ in the percentiles). The processor publishes the provisional
 *    open 10 s windows that changed every 250 ms, so this is the live view's delay; a CLOSED
 *    window can only appear after windowEnd + allowed lateness (5 s), reported in the notes.
 *  - every batch (load and probes) carries a valid assignment token for an item whose profile is
 *    published before the start (as the profile writer does), so every event is verified and
 *    aggregated — the production path. (Before issue 15's re-measure the items had no profile:
 *    every event was stored as `unknown_item` and skipped by the aggregation, and the probes,
 *    never aggregated, never reached the stream — the figure measured less than it claimed.)
 *
 *  - behind the collector: a backlog produced to telemetry.raw before start, consumed by the
 *    metrics processor and the sink side by side (same peer).
 *
 * Everything shares the 2 cores: the load generator, the API, the processors and the sink. A run
 * that does not drain (backlog or load not fully processed within its bound) fails the bench
 * rather than publishing a figure.
 * Penumbra runs with sink off and the bench starts `createWarehouseSink` itself, to count its
 * commits. Run alone: `node --import tsx bench/e2e.bench.ts [--quick]`.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { loadConfig } from '../pipeline/config/config.ts';
import { createKafka, AvroProducer } from '../pipeline/kafka/client.ts';
import { provisionAll } from '../pipeline/kafka/setup.ts';
import { createPenumbra } from '../pipeline/app/penumbra.ts';
import { createWarehouseSink } from '../connectors/duckdb-sink/sink.ts';
import { claimsFor, signAssignment } from '../pipeline/assignment-token/token.ts';
import { profileToRecord } from '../pipeline/profiles/codec.ts';
import type { ShadowProfile } from '../pipeline/domain/types.ts';
import { streamHandles } from '../pipeline/telemetry/feature.ts';
import { peerConsume } from './peer-consume.ts';
import type { BenchOptions, BenchResult } from './types.ts';

const TOKEN = 'bench-viewer-token-0123456789abcdef';
const BATCH = 400;
const WORKERS = 4;
const IN_FLIGHT = 2;

/** Poster worker (plain JS, CommonJS eval): POSTs batches until the deadline, reports counts. */
const POSTER = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { port, deadline, batch, id, inFlight, tokens } = workerData;
const agent = new http.Agent({ keepAlive: true, maxSockets: inFlight });
let seq = 0, accepted = 0, failed = 0, batches = 0;
function body() {
  const n = seq++;
  const now = Date.now();
  const item = 'bench.item' + (n % 2);
  const variant = (n >> 1) % 2 === 0 ? 'original' : 'shadow';
  let ev = '';
  for (let k = 0; k < batch; k++) {
    const type = k % 50 === 0 ? 'error' : k % 10 === 0 ? 'usage' : 'request';
    ev += (k ? ',' : '') + '{"id":"w' + id + '-' + n + '-' + k + '","type":"' + type + '","name":"' + (type === 'usage' ? 'buy' : type === 'error' ? 'E' : 'api') +
      '","ts":' + now + (type === 'request' ? ',"value":' + (80 + ((k * 37 + n) % 120)) + ',"attrs":{"status":"' + (k % 97 === 0 ? 503 : 200) + '"}' : '') + '}';
  }
  // tokens[n % 5000] is signed for exactly this item, variant and user (5000 is a multiple of 4).
  return '{"itemId":"' + item + '","version":"1","variant":"' + variant + '","profileVersion":1,"sessionId":"w' + id + '-s' + n + '","userId":"u' + (n % 5000) + '","sentAt":' + now + ',"token":"' + tokens[n % 5000] + '","events":[' + ev + ']}';
}
function post(b) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/api/v1/telemetry', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(b) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
    req.end(b);
  });
}
async function loop() {
  while (Date.now() < deadline) {
    const status = await post(body());
    batches++;
    if (status === 202) accepted += batch; else failed++;
  }
}
Promise.all(Array.from({ length: inFlight }, loop)).then(() => { parentPort.postMessage({ accepted, failed, batches }); agent.destroy(); });
`;

function quantile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  return sorted[lo] + (h - lo) * ((sorted[Math.min(lo + 1, sorted.length - 1)] ?? sorted[lo]) - sorted[lo]);
}

/**
 * SSE reader of the probe item's 10 s windows: when the probe events counted over all windows
 * (the latest record of each, provisional or closed) first reached each total (`seen`), and when
 * each count of closed windows' events was first reached (`closed`).
 */
function watchProbes(url: string, headers: Record<string, string> = {}): { seen: { events: number; at: number }[]; closed: { events: number; at: number }[]; close(): void; opened: Promise<void> } {
  const seen: { events: number; at: number }[] = [];
  const closed: { events: number; at: number }[] = [];
  const latest = new Map<number, number>();
  const closedBy = new Map<number, number>();
  const sum = (m: Map<number, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
  const ac = new AbortController();
  const opened = (async () => {
    const res = await fetch(url, { signal: ac.signal, headers });
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let buf = '';
    void (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          const now = Date.now();
          buf += dec.decode(value, { stream: true });
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            if (!block.includes('event: metrics')) continue;
            const data = block.split('\n').find((l) => l.startsWith('data: '));
            if (!data) continue;
            const w = JSON.parse(data.slice(6)) as { itemId: string; provisional?: boolean; windowSize: number; windowStart: number; events: number };
            if (w.itemId !== PROBE_ITEM || w.windowSize !== 10_000) continue;
            latest.set(w.windowStart, Math.max(latest.get(w.windowStart) ?? 0, w.events));
            const total = sum(latest);
            if (seen.length === 0 || seen[seen.length - 1].events < total) seen.push({ events: total, at: now });
            if (!w.provisional) {
              closedBy.set(w.windowStart, w.events);
              const c = sum(closedBy);
              if (closed.length === 0 || closed[closed.length - 1].events < c) closed.push({ events: c, at: now });
            }
          }
        }
      } catch {
        /* closed */
      }
    })();
  })();
  return { seen, closed, opened, close: () => ac.abort() };
}

const PROBE_ITEM = 'bench.probe';
const LOAD_ITEMS = ['bench.item0', 'bench.item1'];
/** The backlog's items: they need profiles too (the metrics processor refuses an item without one). */
const BACKLOG_ITEMS = ['bench.backlog0', 'bench.backlog1'];

export async function run(opts: BenchOptions): Promise<BenchResult[]> {
  const durationMs = opts.quick ? 6_000 : 20_000;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'penumbra-bench-e2e-'));
  const prefix = `bench-e2e-${randomUUID().slice(0, 8)}.`;
  const cfg = loadConfig({
    KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
    SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7',
    PORT: '0', PENUMBRA_DATA_DIR: dataDir, PENUMBRA_TOPIC_PREFIX: prefix, PENUMBRA_PARTITIONS: '3', PENUMBRA_LOG_LEVEL: 'error',
    PENUMBRA_TOKENS: `bench:viewer:${TOKEN}`,
  });
  // Phase 1 input: a backlog produced straight to telemetry.raw before Penumbra starts, so the
  // processors and the sink are measured on their own (no HTTP), like bench/sink.bench.ts.
  const backlog = opts.quick ? 20_000 : 100_000;
  {
    const kafka = createKafka(cfg.kafkaBrokers, 'bench-e2e-backlog');
    const { codec } = await provisionAll(kafka, cfg);
    const producer = new AvroProducer(kafka, codec);
    await producer.connect();
    const now = Date.now();
    const chunk = (from: number, to: number) => Array.from({ length: to - from }, (_, j) => {
      const n = from + j;
      return {
        topic: cfg.topics.telemetryRaw, key: `bl-s${n >> 8}`,
        value: { id: `bl-${n}`, itemId: `bench.backlog${n % 2}`, version: '1', variant: n % 4 < 2 ? 'original' : 'shadow', profileVersion: 1, sessionId: `bl-s${n >> 8}`, userId: `u${n % 5000}`, type: 'request' as const, name: 'api', ts: now, value: 80 + (n % 120), attrs: { status: n % 97 === 0 ? '503' : '200' }, sentAt: now, receivedAt: now, controlOf: null, verified: true, unverifiedReason: null },
      };
    });
    // Sends of ≤ 2,000: kafkajs groups messages per partition with a quadratic array spread.
    for (let i = 0; i < backlog; i += 8_000) await Promise.all([0, 2_000, 4_000, 6_000].filter((o) => i + o < backlog).map((o) => producer.send(chunk(i + o, Math.min(i + o + 2_000, backlog)))));
    // The items' current profiles, as the profile writer publishes them (original and one shadow
    // known), so the load and the probes are verified and aggregated.
    const instrumentation = { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 };
    await producer.send([...LOAD_ITEMS, ...BACKLOG_ITEMS, PROBE_ITEM].map((itemId) => {
      const prof: ShadowProfile = {
        itemId, profileVersion: 1, state: 'active', seed: itemId, holdout: 0, itemVersion: '1',
        shadows: [{ name: 'shadow', instrumentation, endpoints: {}, traffic: { percentage: 50, match: 'all', rules: [] }, control: false }],
        updatedBy: 'bench', updatedAt: Date.now(),
      };
      return { topic: cfg.topics.shadowProfiles, key: itemId, value: profileToRecord(prof) };
    }));
    await producer.disconnect();
  }
  const p = await createPenumbra(cfg, { sink: false });
  for (const until = Date.now() + 60_000; [...LOAD_ITEMS, ...BACKLOG_ITEMS, PROBE_ITEM].some((i) => !p.ctx.profileStore.get(i)); ) {
    if (Date.now() > until) throw new Error('incomplete run: the bench items\' profiles never reached the profile store');
    await new Promise((r) => setTimeout(r, 50));
  }
  let sinkEvents = 0;
  const sink = createWarehouseSink({
    cfg, kafka: p.ctx.kafka, codec: p.ctx.codec, dbPath: path.join(dataDir, 'warehouse', 'penumbra.duckdb'), parquetDir: path.join(dataDir, 'warehouse', 'parquet'),
    onCommit: (c) => {
      if (c.topic === cfg.topics.telemetryRaw) sinkEvents += c.records;
    },
  });
  const probes = watchProbes(`${p.url}/api/v1/stream?itemId=${PROBE_ITEM}`, { authorization: `Bearer ${TOKEN}` });
  try {
    await sink.start();
    await probes.opened;
    const processor = streamHandles.get(p.ctx)!.processor!;
    const port = Number(new URL(p.url).port);
    const post = async (body: unknown): Promise<void> => {
      const res = await fetch(`${p.url}/api/v1/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (res.status !== 202) throw new Error(`telemetry ${res.status}: ${await res.text()}`);
    };
    const drained = async (n: number, timeoutMs: number): Promise<boolean> => {
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        // Unverified events (no assignment token) are processed too — counted apart, not aggregated.
        if (sinkEvents >= n && processor.stats.events + processor.stats.duplicates + processor.stats.unverified >= n) return true;
        await new Promise((r) => setTimeout(r, 20));
      }
      return false;
    };
    let expected = backlog;
    let processorDoneAt = 0;
    let sinkDoneAt = 0;
    const blEnd = Date.now() + (opts.quick ? 60_000 : 300_000);
    while ((!processorDoneAt || !sinkDoneAt) && Date.now() < blEnd) {
      if (!processorDoneAt && processor.stats.events >= backlog) processorDoneAt = Date.now();
      if (!sinkDoneAt && sinkEvents >= backlog) sinkDoneAt = Date.now();
      await new Promise((r) => setTimeout(r, 10));
    }
    if (!(processorDoneAt > 0 && sinkDoneAt > 0)) {
      const rp = streamHandles.get(p.ctx)!.repartitioner?.stats;
      throw new Error(`incomplete run: the backlog of ${backlog} was not drained within 300 s (processor ${processor.stats.events}, sink ${sinkEvents}; repartition stage ${JSON.stringify(rp ?? null)}; processor ${JSON.stringify(processor.stats)})`);
    }
    const pj = processor.stats.joinedAt ?? 0;
    const sj = sink.stats.joinedAt ?? 0;
    // Both consume side by side once the later one joined (the sink starts after createPenumbra returns).
    const behind = (backlog / (Math.max(processorDoneAt, sinkDoneAt) - Math.max(pj, sj))) * 1000;
    const processorOnly = (backlog / (processorDoneAt - pj)) * 1000;
    const sinkOnly = (backlog / (sinkDoneAt - sj)) * 1000;

    // Warm-up of the HTTP path before the clock starts.
    for (let i = 0; i < 3; i++) {
      await post({ itemId: 'bench.warmup', version: '1', variant: 'original', profileVersion: 1, sessionId: `warm-${i}`, userId: 'u', sentAt: Date.now(), events: [{ id: `warm-${i}`, type: 'usage', name: 'x', ts: Date.now() }] });
      expected++;
    }
    if (!(await drained(expected, 60_000))) throw new Error('warm-up events never reached the sink and the processor');

    const start = Date.now();
    const deadline = start + durationMs;
    // One token per poster batch identity: n % 5000 fixes the user and (5000 being a multiple of 4) the item and variant.
    const tokens = Array.from({ length: 5000 }, (_, m) => signAssignment(claimsFor({
      itemId: `bench.item${m % 2}`, userId: `u${m}`, variant: (m >> 1) % 2 === 0 ? 'original' : 'shadow', profileVersion: 1,
    }, Date.now()), p.ctx.assignmentKeys));
    const workers = Array.from({ length: WORKERS }, (_, id) => new Worker(POSTER, { eval: true, workerData: { port, deadline, batch: BATCH, id, inFlight: IN_FLIGHT, tokens } }));
    const results = workers.map((w) => new Promise<{ accepted: number; failed: number; batches: number }>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    }));
    // Probes: accepted ones by window start, in the order sent (one session: one partition, in order).
    const probeToken = signAssignment(claimsFor({ itemId: PROBE_ITEM, userId: 'probe', variant: 'original', profileVersion: 1 }, Date.now()), p.ctx.assignmentKeys);
    /** Event times of the accepted probes. */
    const probeTs: number[] = [];
    let sent = 0;
    let k = 0;
    const probeChain: Promise<void>[] = [];
    const probeTimer = setInterval(() => {
      const id = `probe-${k++}`;
      const ts = Date.now();
      sent++;
      probeChain.push(post({ itemId: PROBE_ITEM, version: '1', variant: 'original', profileVersion: 1, sessionId: 'probe', userId: 'probe', sentAt: ts, token: probeToken, events: [{ id, type: 'request', name: 'api', ts, value: 1 }] })
        .then(() => {
          expected++;
          probeTs.push(ts);
        }, () => {}));
    }, 250);
    const totals = await Promise.all(results);
    const loadEnd = Date.now();
    clearInterval(probeTimer);
    await Promise.all(workers.map((w) => w.terminate()));
    await Promise.all(probeChain); // the last probes' answers
    const accepted = totals.reduce((s, x) => s + x.accepted, 0);
    const failedBatches = totals.reduce((s, x) => s + x.failed, 0);
    expected += accepted;
    if (!(await drained(expected, 180_000))) {
      throw new Error(`incomplete run: ${expected} accepted events not all aggregated and stored within 180 s (processor ${processor.stats.events + processor.stats.duplicates}, sink ${sinkEvents})`);
    }
    const doneAt = Date.now();
    // Closed windows of the last probes need windowEnd + lateness: give them time.
    await new Promise((r) => setTimeout(r, 16_000));

    const e2e = (accepted / (doneAt - start)) * 1000;
    const collector = (accepted / (loadEnd - start)) * 1000;

    const peer = (mode: 'count' | 'decode') => peerConsume({ mode, topic: cfg.topics.telemetryRaw, n: expected, brokers: cfg.kafkaBrokers, registry: cfg.schemaRegistryUrl });
    const raw = (await peer('count')).rate;
    const decoded = (await peer('decode')).rate;
    // The j-th accepted probe is on the stream once the probe windows count j events together.
    const fresh: number[] = [];
    const closed: number[] = [];
    const acceptedProbes = probeTs.length;
    probeTs.sort((a, b) => a - b);
    probeTs.forEach((ts, j) => {
      const hit = probes.seen.find((x) => x.events >= j + 1);
      if (hit) fresh.push(hit.at - ts);
      const c = probes.closed.find((x) => x.events >= j + 1);
      if (c) closed.push(c.at - ts);
    });
    const missing = acceptedProbes - fresh.length;
    for (let i = 0; i < missing; i++) fresh.push(Infinity);
    fresh.sort((a, b) => a - b);
    closed.sort((a, b) => a - b);
    if (acceptedProbes < sent * 0.9) throw new Error(`incomplete run: only ${acceptedProbes} of ${sent} probes were accepted`);
    const p50 = quantile(fresh, 0.5);
    const p95 = quantile(fresh, 0.95);
    return [
      {
        name: 'telemetry end to end: collector → Kafka → processors → DuckDB',
        unit: 'events/s',
        ours: Math.round(e2e),
        peer: Math.round(raw),
        peerName: 'kafkajs eachBatch on the same topic, count only',
        ratio: Number((e2e / raw).toFixed(3)),
        notes:
          `targets ≥ 50,000 events/s and ≥ 0.5× raw; ${accepted} events in ${durationMs / 1000}s of load (${WORKERS}×${IN_FLIGHT} posters, ${BATCH}/batch, ${failedBatches} batches refused), ` +
          `collector accepted ${Math.round(collector)}/s, drained ${((doneAt - loadEnd) / 1000).toFixed(1)}s after the load; ` +
          `processor: ${processor.stats.windows} windows, ${processor.stats.provisional} provisional; sink ${sink.stats.transactions} transactions`,
      },
      {
        name: 'telemetry processors + DuckDB sink on a produced backlog',
        unit: 'events/s',
        ours: Math.round(behind),
        peer: Math.round(raw),
        peerName: 'kafkajs eachBatch on the same topic, count only',
        ratio: Number((behind / raw).toFixed(3)),
        notes: `${backlog} events produced to telemetry.raw before start (no HTTP), consumed by the metrics processor and the sink side by side (from the later group join to both done); each from its own join: metrics processor ${Math.round(processorOnly)}/s, DuckDB sink ${Math.round(sinkOnly)}/s`,
      },
      {
        name: 'telemetry processors + DuckDB sink on a produced backlog',
        unit: 'events/s',
        ours: Math.round(behind),
        peer: Math.round(decoded),
        peerName: 'kafkajs consumer decoding the same Avro (avsc) and discarding it',
        ratio: Number((behind / decoded).toFixed(3)),
        notes: `target ≥ 0.5× for each of the processor (${(processorOnly / decoded).toFixed(2)}×) and the sink (${(sinkOnly / decoded).toFixed(2)}×), each from its own join; peer over the ${expected} records of the run`,
      },
      {
        name: 'telemetry freshness p95: event time → on the SSE stream',
        unit: 'ms',
        ours: Math.round(p95),
        peer: null,
        peerName: null,
        ratio: null,
        notes: `target ≤ 2000 ms; p50 ${Math.round(p50)} ms over ${acceptedProbes} accepted probes of ${sent}, ${missing} never on the stream (counted as +∞) (provisional live window, published every 250 ms; probes verified like the load); ` +
          `closed 10 s window on SSE: p50 ${Math.round(quantile(closed, 0.5))} ms, p95 ${Math.round(quantile(closed, 0.95))} ms (bounded below by window end + 5 s lateness)`,
      },
    ];
  } finally {
    probes.close();
    await sink.stop().catch(() => undefined);
    await p.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const results = await run({ quick: process.argv.includes('--quick') });
  console.log(JSON.stringify(results, null, 2));
  process.exit(0);
}
