/**
 * Warehouse sink throughput against its raw limit, measured in the same run on the same topic:
 *  - peer: plain kafkajs `eachBatch` consuming the topic and only counting messages (no decode,
 *    no storage) — the ceiling any kafkajs-based sink can reach on this machine;
 *  - ours: the warehouse sink end to end — consume, Avro decode, stage through the Appender,
 *    `INSERT … ON CONFLICT` + sink_offsets in one DuckDB transaction per chunk, Parquet
 *    snapshots on their default timer.
 * Both clocks start when the consumer group join completes (partitions assigned; the broker's
 * initial rebalance delay is excluded) and stop when N events are counted / committed.
 *
 * N = 200,000 (quick: 20,000) events produced to a fresh topic prefix. Run alone with
 * `node --import tsx bench/sink.bench.ts [--quick]`.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Kafka } from 'kafkajs';
import { loadConfig, topicNames, type PenumbraConfig } from '../pipeline/config/config.ts';
import { createKafka, AvroProducer } from '../pipeline/kafka/client.ts';
import { provisionAll } from '../pipeline/kafka/setup.ts';
import { createWarehouseSink, DEFAULT_MAX_ROWS_PER_TX } from '../connectors/duckdb-sink/sink.ts';
import { telemetryEvent } from '../connectors/duckdb-sink/fixtures.ts';
import { rawConsume } from './raw-consume.ts';
import type { BenchOptions, BenchResult } from './types.ts';

async function sinkConsume(cfg: PenumbraConfig, kafka: Kafka, codec: ConstructorParameters<typeof AvroProducer>[1], n: number): Promise<{ rate: number; transactions: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'penumbra-bench-sink-'));
  let committed = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const sink = createWarehouseSink({
    cfg, kafka, codec, dbPath: path.join(dir, 'penumbra.duckdb'), parquetDir: path.join(dir, 'parquet'),
    onCommit: (c) => {
      committed += c.records;
      if (committed >= n) done();
    },
  });
  try {
    await sink.start();
    await finished;
    const end = Date.now();
    return { rate: (n / (end - sink.stats.joinedAt!)) * 1000, transactions: sink.stats.transactions };
  } finally {
    await sink.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(opts: BenchOptions): Promise<BenchResult[]> {
  const n = opts.quick ? 20_000 : 200_000;
  const base = loadConfig({ KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092', SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7' });
  const prefix = `bench-sink-${randomUUID().slice(0, 8)}.`;
  const cfg: PenumbraConfig = { ...base, topicPrefix: prefix, topics: topicNames(prefix), partitions: 3 };
  const kafka = createKafka(cfg.kafkaBrokers, 'bench-sink');
  const { codec } = await provisionAll(kafka, cfg);
  const producer = new AvroProducer(kafka, codec);
  await producer.connect();
  const t0 = performance.now();
  for (let i = 0; i < n; i += 20_000) {
    await producer.send(Array.from({ length: Math.min(20_000, n - i) }, (_, k) => {
      const e = telemetryEvent(i + k);
      return { topic: cfg.topics.telemetryRaw, key: e.sessionId, value: e };
    }));
  }
  const produceRate = (n / (performance.now() - t0)) * 1000;
  await producer.disconnect();

  const raw = await rawConsume(kafka, cfg.topics.telemetryRaw, n);
  const ours = await sinkConsume(cfg, kafka, codec, n);
  return [{
    name: 'warehouse sink: consume+decode+DuckDB commit (exactly-once)',
    unit: 'events/s',
    ours: Math.round(ours.rate),
    peer: Math.round(raw),
    peerName: 'kafkajs eachBatch, count only (no decode, no storage)',
    ratio: Number((ours.rate / raw).toFixed(3)),
    notes: `N=${n}, ${ours.transactions} transactions (≤${DEFAULT_MAX_ROWS_PER_TX} rows), produce ${Math.round(produceRate)}/s`,
  }];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const results = await run({ quick: process.argv.includes('--quick') });
  console.log(JSON.stringify(results, null, 2));
  process.exit(0);
}
