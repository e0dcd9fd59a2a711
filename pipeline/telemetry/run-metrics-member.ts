/**
 * One metrics member as a process of its own — the metrics processor (windows → telemetry.metrics;
 * on the hop-free path it also forwards telemetry.raw records not in their item's partition to
 * telemetry.by-item) and, only when telemetry.raw and telemetry.by-item differ in partition
 * count, the repartition stage — with the profile store and assignment index they read — for the
 * multi-member test and the processor benchmark:
 *
 *   node --import tsx pipeline/telemetry/run-metrics-member.ts [--lateness-ms N] [--progress-ms N] [--raw-topic T] [--count-ms N]
 *
 * Start it N times on the same topic prefix and the N processes share the consumer group
 * `<prefix>telemetry-metrics` (and `<prefix>telemetry-repartition` when that stage runs); each owns
 * the items of its partition numbers. (A full deployment runs them inside `npm start`'s processors role, where
 * pipeline/telemetry/feature.ts wires the same two stages; this entry has no HTTP API.)
 *
 * Kafka, registry and topic prefix come from the usual environment (loadConfig: KAFKA_BROKERS,
 * SCHEMA_REGISTRY_URL, PENUMBRA_TOPIC_PREFIX); topics must exist. Logs are JSON lines on stdout:
 * `ready`, `stats` every `--progress-ms` (default 500) with the counters (`repartition`: null when
 * that stage does not run), `count` every `--count-ms` while it changes (only with that flag:
 * events + duplicates handled and process CPU, for the benchmark's clock), `stopped`.
 * `--raw-topic` reads another topic than `<prefix>telemetry.raw` (the benchmark gives each round a
 * fresh prefix — fresh groups, by-item and metrics topics — on one produced backlog).
 * SIGTERM/SIGINT stop cleanly (last commit); SIGKILL is the crash the test uses.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/config.ts';
import { AvroProducer, createKafka } from '../kafka/client.ts';
import { AvroCodec } from '../kafka/registry.ts';
import { followTopic } from '../kafka/follow.ts';
import { LiveHub } from '../live/hub.ts';
import { ProfileStore, followProfiles } from '../profiles/profile-store.ts';
import { AssignmentIndex } from './assignment-index.ts';
import { ComparisonStore } from './comparisons.ts';
import { UnverifiedCounts } from './unverified.ts';
import { startRepartitioner } from './repartition.ts';
import { startMetricsProcessor } from './metrics-processor.ts';

const { values: args } = parseArgs({ options: { 'lateness-ms': { type: 'string' }, 'progress-ms': { type: 'string', default: '500' }, 'raw-topic': { type: 'string' }, 'count-ms': { type: 'string' } } });
const loaded = loadConfig();
const cfg = args['raw-topic'] ? { ...loaded, topics: { ...loaded.topics, telemetryRaw: args['raw-topic'] } } : loaded;
const out = (msg: string, extra: Record<string, unknown> = {}): void => {
  process.stdout.write(`${JSON.stringify({ msg, at: Date.now(), pid: process.pid, ...extra })}\n`);
};
const log = (msg: string, extra?: Record<string, unknown>) => out('log', { text: msg, ...extra });
const groupPrefix = cfg.topicPrefix;
const kafka = createKafka(cfg.kafkaBrokers, `penumbra-metrics-member-${process.pid}`);
const codec = new AvroCodec(cfg.schemaRegistryUrl);
for (const [topic, schema] of [[cfg.topics.telemetryMetrics, 'metric-window'], [cfg.topics.dlq, 'dead-letter']] as const) await codec.registerForTopic(topic, schema);
const producer = new AvroProducer(kafka, codec);
await producer.connect();
const profileStore = new ProfileStore();
const profileFollower = await followProfiles({ kafka, codec, topic: cfg.topics.shadowProfiles, store: profileStore, groupPrefix, onError: (err) => log('profile decode failed', { err: String(err) }) });
const assignments = new AssignmentIndex(undefined, { isKnownItem: (itemId) => profileStore.get(itemId) !== undefined });
const assignmentFollower = await followTopic({ kafka, codec, topic: cfg.topics.assignments, schema: 'assignment', groupPrefix, onRecord: (a) => assignments.apply(a), onError: (err) => log('assignment decode failed', { err: String(err) }) });
const repartitioner = await startRepartitioner({ kafka, codec, producer, topics: cfg.topics, groupPrefix, log });
const processor = await startMetricsProcessor(
  { kafka, codec, producer, topics: cfg.topics, groupPrefix, hub: new LiveHub(), profileStore, assignments, comparisons: new ComparisonStore({ tuning: cfg.sequentialTuning }), unverified: new UnverifiedCounts(), log },
  args['lateness-ms'] ? { allowedLatenessMs: Number(args['lateness-ms']) } : {},
);
const snapshot = () => {
  const h = processor.health();
  const cpu = process.cpuUsage();
  return { repartition: repartitioner ? { ...repartitioner.stats, assigned: repartitioner.assigned } : null, processor: processor.stats, partitions: h.partitions, positions: h.positions, rawPositions: h.rawPositions, openWindows: h.openWindows, pendingWindows: h.pendingWindows, forwardsInFlight: h.forwardsInFlight, cpuMs: (cpu.user + cpu.system) / 1000 };
};
await Promise.all([repartitioner?.ready, processor.ready]);
out('ready', snapshot());
const timer = setInterval(() => out('stats', snapshot()), Number(args['progress-ms']));
// `--count-ms N` (the benchmark): a small `count` line (events + duplicates handled by the window
// stage, process CPU) every N ms while it changes — two counter reads and a short line, against
// the stats line's full health snapshot — so the bench's clock stops within a few ms of the N-th
// event, as the peers' does (the 100 ms stats lines were on average 50 ms late: ≈ 4 % of a
// 1.4 s round, all of it against ours).
let counted = -1;
const countTimer = args['count-ms'] ? setInterval(() => {
  const handled = processor.stats.events + processor.stats.duplicates;
  if (handled === counted) return;
  counted = handled;
  const cpu = process.cpuUsage();
  process.stdout.write(`{"msg":"count","at":${Date.now()},"handled":${handled},"cpuMs":${(cpu.user + cpu.system) / 1000}}\n`);
}, Number(args['count-ms'])) : null;

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  if (countTimer) clearInterval(countTimer);
  await processor.stop();
  await repartitioner?.stop();
  await Promise.all([profileFollower.stop(), assignmentFollower.stop()]);
  await producer.disconnect();
  out('stopped', { signal, ...snapshot() });
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
