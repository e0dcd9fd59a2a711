/**
 * Metrics processor throughput on a produced backlog (issue 15 items 1 and 4), next to two peers,
 * measured in one run on the same records — every contender a process of its own, started fresh
 * for each round:
 *  - ours ×1: one `pipeline/telemetry/run-metrics-member.ts` process — the window stage (reads
 *    partition p of telemetry.raw and telemetry.by-item together; forwards the raw records NOT
 *    already in their item's partition to telemetry.by-item itself, acks=all, raw committed only
 *    below its first un-acknowledged forward; Avro decode, profile check, id de-duplication,
 *    10 s + 60 s windows per item × variant, cumulative aggregates, windows produced and
 *    acknowledged before the commits behind them). telemetry.raw is fetched once: no repartition
 *    stage runs (raw and by-item have the same partition count);
 *  - ours ×2: two such processes sharing the consumer group (each owns half the items);
 * each on two backlogs of the same records:
 *  - `item-partitioned` (the headline): produced the way the collector does since the hop-free
 *    path — key = session id, partition = itemPartition(itemId) — so every record is windowed
 *    straight from telemetry.raw and nothing is forwarded;
 *  - `session-partitioned`: key = session id, default partitioner (the collector before, or a
 *    foreign producer) — every record not in its item's partition (≈ 3 in 4 here) takes the
 *    hop: forwarded to telemetry.by-item and read back from there;
 *  - peer `decode`: a kafkajs consumer that decodes every record with avsc and discards it
 *    (bench/peer-consume.ts) — the least any consumer that looks at the data does;
 *  - peer `count`: the same consumer counting messages only (no decode) — the raw ceiling.
 * The peers read the item-partitioned backlog (the same records; their cost does not depend on the
 * partitioning). Ours gets a fresh topic prefix per round (fresh groups, by-item and metrics
 * topics) reading one backlog topic (`--raw-topic`). Its clock starts when the first member's group(s) joined and
 * stops at the member's `count` line (every 5 ms; it was the 100 ms stats line, on average
 * 50 ms late) where its window stage has handled the N-th event; the peers' from their group
 * join to the N-th record. Beside CPU per event, the busy fraction (process CPU / wall over the
 * same interval) says whether a contender waits: rate ratio ≈ CPU ratio × busy ratio. Rounds interleave the four (order rotating);
 * each figure is the median round, and a round that does not reach N fails the bench. Beside the
 * rates: CPU per event of each contender (its own process CPU time over the same interval), which
 * a loaded shared machine distorts far less than events/s.
 *
 * Workload (GENERATED): N telemetry-event v2 records (connectors/duckdb-sink/fixtures.ts shape,
 * ~140 bytes of Avro, 5 event types, verified) over 64 items × 2 variants and 97 sessions, 1 ms
 * of event time apart, produced to two fresh 4-partition topics (item- and session-partitioned) on
 * the local broker before the first round; by-item has 4 partitions too. N = 100,000 (quick: 30,000), 3 rounds (quick: 1).
 * Everything shares the machine with the broker (and, here, with other work: the load average is
 * in the notes).
 *
 * Run alone: `node bin/penumbra.js bench --only processor` (or `node --import tsx
 * bench/processor.bench.ts [--quick] [--n N] [--rounds R] [--prof DIR]`; `--prof` writes a CPU
 * profile of each member).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadConfig, topicNames, type PenumbraConfig, type TopicNames } from '../pipeline/config/config.ts';
import { provisionTopics } from '../pipeline/kafka/topics.ts';
import { createKafka, AvroProducer } from '../pipeline/kafka/client.ts';
import { AvroCodec } from '../pipeline/kafka/registry.ts';
import { TOPIC_SCHEMAS } from '../schemas/index.ts';
import { telemetryEvent } from '../connectors/duckdb-sink/fixtures.ts';
import { itemPartition } from '../pipeline/telemetry/item-partition.ts';
import { peerConsume } from './peer-consume.ts';
import type { BenchOptions, BenchResult } from './types.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PARTITIONS = 4;
const ITEMS = 64;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface OursRun {
  rate: number;
  windows: number;
  /** CPU µs per event, all members together, from their `ready` line to the one that reached N. */
  cpuUsPerEvent: number;
  /** Process CPU over wall time from the group join to the N-th event (all members; > 1 = more than one core). */
  busy: number;
}

/** `--count-ms` line of a member: events + duplicates handled so far, process CPU (ms). */
interface CountLine {
  at: number;
  handled: number;
  cpuMs: number;
}

interface MemberLine {
  msg: string;
  at: number;
  processor?: { events: number; duplicates: number; windows: number; joinedAt: number | null };
  /** Null: no repartition stage (same partition counts; the window stage forwards). */
  repartition?: { joinedAt: number | null; forwarded: number } | null;
  /** Process CPU time so far (user + system, ms). */
  cpuMs?: number;
}

/** The topics one round of ours needs, fresh (provisionAll would create every Penumbra topic). */
async function provisionRound(kafka: ReturnType<typeof createKafka>, codec: AvroCodec, prefix: string): Promise<void> {
  const t = topicNames(prefix);
  const admin = kafka.admin();
  await admin.connect();
  const keys = ['telemetryByItem', 'telemetryMetrics', 'dlq', 'shadowProfiles', 'assignments'] as const;
  // provisionTopics on just these (it also waits out a KRaft broker's UNKNOWN_TOPIC_OR_PARTITION right after a create).
  await provisionTopics(admin, { topics: Object.fromEntries(keys.map((k) => [k, t[k]])) as unknown as TopicNames, partitions: PARTITIONS });
  await admin.disconnect();
  for (const k of keys) await codec.registerForTopic(t[k], TOPIC_SCHEMAS[k]);
}

/** `members` fresh member processes on a fresh prefix; resolves with events/s once their window stages handled `n` events. */
async function ours(cfg: PenumbraConfig, kafka: ReturnType<typeof createKafka>, codec: AvroCodec, rawTopic: string, n: number, members: number, profDir: string | null): Promise<OursRun> {
  const prefix = `${cfg.topicPrefix}r${randomUUID().slice(0, 6)}.`;
  await provisionRound(kafka, codec, prefix);
  const last = new Map<number, MemberLine>();
  const counts = new Map<number, CountLine>();
  const cpuAtReady = new Map<number, number>();
  const children = Array.from({ length: members }, (_, i) => {
    const child = spawn(process.execPath, [...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []), '--import', 'tsx', 'pipeline/telemetry/run-metrics-member.ts', '--progress-ms', '100', '--count-ms', '5', '--raw-topic', rawTopic], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, KAFKA_BROKERS: cfg.kafkaBrokers.join(','), SCHEMA_REGISTRY_URL: cfg.schemaRegistryUrl, PENUMBRA_TOPIC_PREFIX: prefix, PENUMBRA_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    return { child, i, err: () => err };
  });
  return new Promise((resolve, reject) => {
    let done: OursRun | null = null;
    let exited = 0;
    const timer = setTimeout(() => children.forEach((c) => c.child.kill('SIGKILL')), 300_000);
    for (const c of children) {
      createInterface({ input: c.child.stdout }).on('line', (line) => {
        let m: MemberLine;
        try {
          m = JSON.parse(line) as MemberLine;
        } catch {
          return;
        }
        if (m.msg === 'count') {
          counts.set(c.i, m as unknown as CountLine);
        } else {
          if (!m.processor) return;
          if (m.msg === 'ready') cpuAtReady.set(c.i, m.cpuMs ?? 0);
          last.set(c.i, m);
        }
        if (done || last.size < members) return;
        const all = [...last.values()];
        // The clock stops at the member's `count` line (every 5 ms) where the handled events reach N.
        const handled = [...counts.values()].reduce((s, x) => s + x.handled, 0);
        if (handled < n) return;
        const start = Math.min(...all.map((x) => Math.max(x.processor!.joinedAt ?? Infinity, x.repartition ? (x.repartition.joinedAt ?? Infinity) : -Infinity)));
        const cpuMs = [...counts].reduce((s, [i, x]) => s + x.cpuMs - (cpuAtReady.get(i) ?? 0), 0);
        done = { rate: (n / (m.at - start)) * 1000, windows: all.reduce((s, x) => s + x.processor!.windows, 0), cpuUsPerEvent: (cpuMs * 1000) / n, busy: cpuMs / (m.at - start) };
        for (const k of children) k.child.kill('SIGTERM'); // clean stop (and the CPU profile written)
      });
      c.child.on('exit', (code, signal) => {
        if (++exited < members) return;
        clearTimeout(timer);
        if (done) resolve(done);
        else reject(new Error(`metrics members ended (${code ?? signal}) before ${n} events: ${children.map((k) => k.err().trim().slice(-300)).join(' | ')}`));
      });
    }
  });
}

export async function run(opts: BenchOptions & { profDir?: string | null; n?: number; rounds?: number }): Promise<BenchResult[]> {
  const n = opts.n ?? (opts.quick ? 30_000 : 100_000);
  const rounds = opts.rounds ?? (opts.quick ? 1 : 3);
  const base = loadConfig({ KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092', SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7' });
  const prefix = `bench-proc-${randomUUID().slice(0, 8)}.`;
  const cfg: PenumbraConfig = { ...base, topicPrefix: prefix, topics: topicNames(prefix), partitions: PARTITIONS };
  const kafka = createKafka(cfg.kafkaBrokers, 'bench-processor');
  const codec = new AvroCodec(cfg.schemaRegistryUrl);
  // Two backlogs of the same records: item-partitioned like the collector (the headline) and
  // session-partitioned (all but the records that happen to sit in their item's partition go
  // through the hop).
  const rawTopic = cfg.topics.telemetryRaw;
  const sessionTopic = `${prefix}telemetry.raw-by-session`;
  const admin = kafka.admin();
  await admin.connect();
  await provisionTopics(admin, { topics: { telemetryRaw: rawTopic, telemetryRawBySession: sessionTopic } as unknown as TopicNames, partitions: PARTITIONS });
  await admin.disconnect();
  await codec.registerForTopic(rawTopic, 'telemetry-event');
  await codec.registerForTopic(sessionTopic, 'telemetry-event');
  const producer = new AvroProducer(kafka, codec);
  await producer.connect();
  let direct = 0;
  for (let i = 0; i < n; i += 20_000) {
    const events = Array.from({ length: Math.min(20_000, n - i) }, (_, k) => ({ ...telemetryEvent(i + k), itemId: `com.example.item-${(i + k) % ITEMS}` }));
    await producer.send(events.map((e) => ({ topic: rawTopic, key: e.sessionId, value: e, partition: itemPartition(e.itemId, PARTITIONS) })));
    await producer.send(events.map((e) => ({ topic: sessionTopic, key: e.sessionId, value: e })));
    for (const e of events) if (itemPartition(e.sessionId, PARTITIONS) === itemPartition(e.itemId, PARTITIONS)) direct++;
  }
  await producer.disconnect();

  const peer = (mode: 'count' | 'decode') => peerConsume({ mode, topic: rawTopic, n, brokers: cfg.kafkaBrokers, registry: cfg.schemaRegistryUrl });
  const loadBefore = os.loadavg()[0];
  const one: OursRun[] = [];
  const two: OursRun[] = [];
  const oneS: OursRun[] = [];
  const twoS: OursRun[] = [];
  const decode: number[] = [];
  const count: number[] = [];
  const decodeCpu: number[] = [];
  const countCpu: number[] = [];
  const decodeBusy: number[] = [];
  const countBusy: number[] = [];
  const peerRun = async (mode: 'count' | 'decode') => {
    const r = await peer(mode);
    (mode === 'decode' ? decode : count).push(r.rate);
    (mode === 'decode' ? decodeCpu : countCpu).push(((r.cpuMs ?? NaN) * 1000) / n);
    (mode === 'decode' ? decodeBusy : countBusy).push((r.cpuMs ?? NaN) / r.ms);
  };
  for (let r = 0; r < rounds; r++) {
    const steps = [
      async () => one.push(await ours(cfg, kafka, codec, rawTopic, n, 1, opts.profDir ?? null)),
      async () => two.push(await ours(cfg, kafka, codec, rawTopic, n, 2, opts.profDir ?? null)),
      async () => oneS.push(await ours(cfg, kafka, codec, sessionTopic, n, 1, opts.profDir ?? null)),
      async () => twoS.push(await ours(cfg, kafka, codec, sessionTopic, n, 2, opts.profDir ?? null)),
      async () => peerRun('decode'),
      async () => peerRun('count'),
    ];
    for (let k = 0; k < steps.length; k++) await steps[(k + r) % steps.length]();
  }
  const o1 = median(one.map((x) => x.rate));
  const o2 = median(two.map((x) => x.rate));
  const o1s = median(oneS.map((x) => x.rate));
  const o2s = median(twoS.map((x) => x.rate));
  const d = median(decode);
  const c = median(count);
  const fmt = (xs: number[]) => xs.map((x) => Math.round(x)).join(', ');
  const load = `1-min load average ${loadBefore.toFixed(1)} → ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs`;
  const workload = `GENERATED: N=${n} telemetry-event v2 records, ${ITEMS} items × 2 variants, on ${PARTITIONS} partitions (raw and by-item), ${rounds} round(s), median; each contender its own fresh process(es); ${load}`;
  const paired = (xs: { rate: number }[]) => xs.map((x, i) => (x.rate / decode[i]).toFixed(2)).join(', ');
  // CPU per event: what each contender's process(es) spent, whatever else the machine ran — the
  // figure a loaded shared machine distorts least. Ratio = peer CPU / ours (higher is better, like the rate ratio).
  const cpu1 = median(one.map((x) => x.cpuUsPerEvent));
  const cpu2 = median(two.map((x) => x.cpuUsPerEvent));
  const cpu1s = median(oneS.map((x) => x.cpuUsPerEvent));
  const cpu2s = median(twoS.map((x) => x.cpuUsPerEvent));
  const cpuD = median(decodeCpu);
  const cpuC = median(countCpu);
  // Busy fraction: process CPU / wall from the group join to the N-th event (1.0 = one core the
  // whole time; GC and libuv threads can take it past 1). Rate ratio ≈ CPU ratio × busy ratio.
  const busyNote = `busy fraction (CPU/wall, median): ours ×1 ${median(one.map((x) => x.busy)).toFixed(2)}, ours ×2 ${median(two.map((x) => x.busy)).toFixed(2)} (both members), decode peer ${median(decodeBusy).toFixed(2)}, count peer ${median(countBusy).toFixed(2)}`;
  const cpuNote = `CPU per event (median, µs): ours ×1 ${cpu1.toFixed(1)}, ours ×2 ${cpu2.toFixed(1)} (both members), decode peer ${cpuD.toFixed(1)}, count peer ${cpuC.toFixed(1)} → decode-peer CPU / ours ×1 = ${(cpuD / cpu1).toFixed(2)}; ${busyNote}`;
  const cpuNoteS = `CPU per event (median, µs): ours ×1 ${cpu1s.toFixed(1)}, ours ×2 ${cpu2s.toFixed(1)} (both members), decode peer ${cpuD.toFixed(1)} → decode-peer CPU / ours ×1 = ${(cpuD / cpu1s).toFixed(2)}; busy fraction ours ×1 ${median(oneS.map((x) => x.busy)).toFixed(2)}, ×2 ${median(twoS.map((x) => x.busy)).toFixed(2)}`;
  const hop = `${n - direct} of ${n} records (${(((n - direct) / n) * 100).toFixed(0)} %) through the hop (forwarded to by-item by the window stage, read back)`;
  return [
    {
      name: 'metrics processor on a produced backlog, 1 member, item-partitioned like the collector (hop-free path + windows, at-least-once, exact)',
      unit: 'events/s', ours: Math.round(o1), peer: Math.round(d), peerName: 'kafkajs consumer decoding the same Avro (avsc) and discarding it', ratio: Number((o1 / d).toFixed(3)),
      notes: `target ≥ 0.5×; ${workload}; backlog key = session, partition = the item's (no record through the hop); ours per round ${fmt(one.map((x) => x.rate))} (${one[0].windows} windows emitted), decode peer ${fmt(decode)}; per-round ratio ${paired(one)}; ${cpuNote}`,
    },
    {
      name: 'metrics processor on a produced backlog, 2 members, item-partitioned like the collector (hop-free path + windows, at-least-once, exact)',
      unit: 'events/s', ours: Math.round(o2), peer: Math.round(d), peerName: 'kafkajs consumer decoding the same Avro (avsc) and discarding it', ratio: Number((o2 / d).toFixed(3)),
      notes: `${workload}; ours per round ${fmt(two.map((x) => x.rate))} (${two[0].windows} windows emitted in all); per-round ratio ${paired(two)}; 2 vs 1 member ${(o2 / o1).toFixed(2)}× (2 cores shared with the broker and the peers' absent: the members compete for the same 2 CPUs)`,
    },
    {
      name: 'metrics processor on a produced backlog, 1 member, session-partitioned (foreign producer / old collector: through the by-item hop)',
      unit: 'events/s', ours: Math.round(o1s), peer: Math.round(d), peerName: 'kafkajs consumer decoding the same Avro (avsc) and discarding it', ratio: Number((o1s / d).toFixed(3)),
      notes: `${workload}; backlog key = session, default partitioner: ${hop}; ours per round ${fmt(oneS.map((x) => x.rate))}; per-round ratio ${paired(oneS)}; ${cpuNoteS}`,
    },
    {
      name: 'metrics processor on a produced backlog, 2 members, session-partitioned (through the by-item hop)',
      unit: 'events/s', ours: Math.round(o2s), peer: Math.round(d), peerName: 'kafkajs consumer decoding the same Avro (avsc) and discarding it', ratio: Number((o2s / d).toFixed(3)),
      notes: `${workload}; ${hop}; ours per round ${fmt(twoS.map((x) => x.rate))}; per-round ratio ${paired(twoS)}; 2 vs 1 member ${(o2s / o1s).toFixed(2)}×`,
    },
    {
      name: 'metrics processor on a produced backlog, 1 member, item-partitioned like the collector',
      unit: 'events/s', ours: Math.round(o1), peer: Math.round(c), peerName: 'kafkajs consumer counting messages only (no decode)', ratio: Number((o1 / c).toFixed(3)),
      notes: `${workload}; count-only peer per round ${fmt(count)}`,
    },
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const prof = arg('--prof');
  const results = await run({ quick: process.argv.includes('--quick'), profDir: prof ? path.resolve(prof) : null, n: arg('--n') ? Number(arg('--n')) : undefined, rounds: arg('--rounds') ? Number(arg('--rounds')) : undefined });
  console.log(JSON.stringify(results, null, 2));
  process.exit(0);
}
