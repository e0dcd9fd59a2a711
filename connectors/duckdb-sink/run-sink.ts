/**
 * Runs the warehouse sink as its own process: `node --import tsx connectors/duckdb-sink/run-sink.ts
 * [--db <file>] [--parquet-dir <dir>] [--snapshot-ms <n>] [--max-rows-per-tx <n>] [--lease-wait-ms <n>] [--progress]`.
 *
 * Kafka, registry and topic prefix come from the usual environment (loadConfig): KAFKA_BROKERS,
 * SCHEMA_REGISTRY_URL, PENUMBRA_TOPIC_PREFIX, PENUMBRA_DATA_DIR. Defaults: the database at
 * `<data>/warehouse/penumbra.duckdb`, Parquet under `<data>/warehouse/parquet/`.
 * Logs are JSON lines on stdout; `--progress` adds one `{"msg":"commit",…}` line per transaction
 * (the crash test watches them; `cpuMs` is the process's CPU time so far, all threads). SIGTERM/SIGINT stop cleanly (final snapshot, DB closed).
 * While another sink holds the sink lease (lease.ts) it waits — a hot standby — up to
 * `--lease-wait-ms` (default: forever), logging `{"msg":"warehouse sink: another sink holds the
 * lease; waiting …"}`; a lease lost later stops the sink and exits with code 3. A crash of the
 * lease consumer that kafkajs restarts only pauses writing until the lease is held again (lease.ts).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../pipeline/config/config.ts';
import { createKafka } from '../../pipeline/kafka/client.ts';
import { AvroCodec } from '../../pipeline/kafka/registry.ts';
import { createWarehouseSink, DEFAULT_MAX_ROWS_PER_TX, DEFAULT_SNAPSHOT_INTERVAL_MS } from './sink.ts';

const { values: args } = parseArgs({
  options: {
    db: { type: 'string' },
    'parquet-dir': { type: 'string' },
    'snapshot-ms': { type: 'string' },
    'max-rows-per-tx': { type: 'string' },
    'lease-wait-ms': { type: 'string' },
    progress: { type: 'boolean', default: false },
  },
});

const cfg = loadConfig();
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return Math.round((u.user + u.system) / 1000);
};
const out = (msg: string, extra: Record<string, unknown> = {}): void => {
  process.stdout.write(`${JSON.stringify({ msg, at: Date.now(), ...extra })}\n`);
};
const sink = createWarehouseSink({
  cfg,
  kafka: createKafka(cfg.kafkaBrokers, 'penumbra-warehouse-sink'),
  codec: new AvroCodec(cfg.schemaRegistryUrl),
  dbPath: args.db ?? path.join(cfg.dataDir, 'warehouse', 'penumbra.duckdb'),
  parquetDir: args['parquet-dir'] ?? path.join(cfg.dataDir, 'warehouse', 'parquet'),
  snapshotIntervalMs: Number(args['snapshot-ms'] ?? DEFAULT_SNAPSHOT_INTERVAL_MS),
  maxRowsPerTx: Number(args['max-rows-per-tx'] ?? DEFAULT_MAX_ROWS_PER_TX),
  log: out,
  leaseWaitMs: args['lease-wait-ms'] === undefined ? Infinity : Number(args['lease-wait-ms']),
  onLeaseLost: (why) => {
    out('lease-lost', { why });
    process.exit(3);
  },
  // cpuMs: the whole process's CPU so far (every thread: DuckDB's too), for the bench's CPU per event.
  onCommit: args.progress ? (c) => out('commit', { ...c, cpuMs: cpuMs() }) : undefined,
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  out('stopping', { signal, stats: sink.stats });
  await sink.stop();
  out('stopped', { stats: sink.stats });
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

try {
  await sink.start();
  await sink.ready;
  out('ready', { stats: sink.stats, cpuMs: cpuMs() });
} catch (err) {
  out('failed', { error: (err as Error).message });
  process.exit(1);
}
