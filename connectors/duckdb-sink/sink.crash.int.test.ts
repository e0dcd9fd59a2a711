/**
 * Crash test of the exactly-once claim: 200,000 telemetry events, the sink running as a child
 * process is killed with SIGKILL in the middle (some but not all rows committed), restarted,
 * and must end with exactly 200,000 rows and 200,000 distinct ids — no loss, no duplicates —
 * having re-read only what the killed process had not committed. telemetry_events has no
 * primary key (the sink de-duplicates ids in memory, rebuilt from the rows on restart), so the
 * distinct count is a real check.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { DuckDBInstance } from '@duckdb/node-api';
import { loadConfig, topicNames, type PenumbraConfig } from '../../pipeline/config/config.ts';
import { createKafka, AvroProducer } from '../../pipeline/kafka/client.ts';
import { provisionAll } from '../../pipeline/kafka/setup.ts';
import { telemetryEvent } from './fixtures.ts';

const TOTAL = 200_000;
const KILL_AFTER = 60_000; // committed rows seen before SIGKILL: well inside the run
const base = loadConfig({ KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092', SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7' });
const prefix = `t-sinkcrash-${randomUUID().slice(0, 8)}.`;
const cfg: PenumbraConfig = { ...base, topicPrefix: prefix, topics: topicNames(prefix), partitions: 3 };
const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'penumbra-sink-crash-'));
const dbPath = path.join(dir, 'warehouse', 'penumbra.duckdb');
const parquetDir = path.join(dir, 'warehouse', 'parquet');
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** `p`, or a rejection after `ms` (the timer is cleared either way so Jest can exit). */
async function within<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what())), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

interface Commit { msg: 'commit'; topic: string; partition: number; nextOffset: string; records: number; changed: Record<string, number> }

/** Start `run-sink.ts` as a child; `onCommit` sees every transaction it reports. */
function runSink(onCommit: (c: Commit) => void): { child: ChildProcess; exited: Promise<{ code: number | null; signal: string | null }>; stderr: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'connectors/duckdb-sink/run-sink.ts', '--db', dbPath, '--parquet-dir', parquetDir, '--progress', '--snapshot-ms', '60000'], {
    cwd: REPO,
    env: {
      PATH: process.env.PATH, HOME: process.env.HOME,
      KAFKA_BROKERS: cfg.kafkaBrokers.join(','), SCHEMA_REGISTRY_URL: cfg.schemaRegistryUrl, PENUMBRA_TOPIC_PREFIX: prefix,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let rec: { msg?: string };
    try {
      rec = JSON.parse(line) as { msg?: string };
    } catch {
      return;
    }
    if (rec.msg === 'commit') onCommit(rec as Commit);
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, exited, stderr: () => err };
}

test(`a sink killed with -9 mid-run and restarted stores each of ${TOTAL} events exactly once`, async () => {
  const kafka = createKafka(cfg.kafkaBrokers, 'sink-crash-test');
  const { codec } = await provisionAll(kafka, cfg);
  const producer = new AvroProducer(kafka, codec);
  await producer.connect();
  for (let i = 0; i < TOTAL; i += 20_000) {
    await producer.send(Array.from({ length: Math.min(20_000, TOTAL - i) }, (_, k) => {
      const e = telemetryEvent(i + k);
      return { topic: cfg.topics.telemetryRaw, key: e.sessionId, value: e };
    }));
  }
  await producer.disconnect();
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map((await admin.fetchTopicOffsets(cfg.topics.telemetryRaw)).map((o) => [o.partition, o.high]));
  await admin.disconnect();
  expect([...ends.values()].reduce((s, h) => s + Number(h), 0)).toBe(TOTAL);

  // 1. Run until some rows are committed, then SIGKILL: no shutdown hook, maybe mid-transaction.
  let seenBeforeKill = 0;
  const first = runSink((c) => {
    seenBeforeKill += c.changed.telemetry_events ?? 0;
    if (seenBeforeKill >= KILL_AFTER && first.child.exitCode === null) first.child.kill('SIGKILL');
  });
  const killed = await within(first.exited, 90_000, () => `first sink never reached ${KILL_AFTER} rows: ${first.stderr()}`);
  // The exit code says why when it exited by itself (run-sink.ts: 1 failed to start, 3 lease lost).
  expect(killed).toEqual({ code: null, signal: 'SIGKILL' });
  expect(seenBeforeKill).toBeGreaterThanOrEqual(KILL_AFTER);
  expect(seenBeforeKill).toBeLessThan(TOTAL);

  // 2. Restart and wait until every partition's stored offset reached the end of the topic.
  const reached = new Map<number, bigint>();
  let recordsAfterRestart = 0;
  let done!: () => void;
  const caughtUp = new Promise<void>((r) => (done = r));
  const second = runSink((c) => {
    if (c.topic !== cfg.topics.telemetryRaw) return;
    recordsAfterRestart += c.records;
    reached.set(c.partition, BigInt(c.nextOffset));
    if ([...ends].every(([p, high]) => (reached.get(p) ?? -1n) >= BigInt(high))) done();
  });
  await within(caughtUp, 120_000, () => `restarted sink did not catch up: ${second.stderr()}`);
  second.child.kill('SIGTERM'); // clean stop: final snapshot, database closed
  expect((await second.exited).code).toBe(0);

  // It resumed from the stored offsets: it did not re-read what the killed process committed.
  expect(recordsAfterRestart).toBeGreaterThan(0);
  expect(recordsAfterRestart).toBeLessThanOrEqual(TOTAL - KILL_AFTER);

  const db = await DuckDBInstance.create(dbPath);
  const conn = await db.connect();
  const [row] = (await conn.runAndReadAll('SELECT count(*) AS n, count(DISTINCT id) AS d FROM telemetry_events')).getRowObjectsJS();
  const [offs] = (await conn.runAndReadAll(`SELECT sum(next_offset)::BIGINT AS s FROM sink_offsets WHERE topic = '${cfg.topics.telemetryRaw}'`)).getRowObjectsJS();
  conn.closeSync();
  db.closeSync();
  expect(Number(row.n)).toBe(TOTAL);
  expect(Number(row.d)).toBe(TOTAL);
  expect(Number(offs.s)).toBe(TOTAL);
  const meta = JSON.parse(readFileSync(path.join(parquetDir, '_meta.json'), 'utf8')) as { tables: Record<string, number> };
  expect(meta.tables.telemetry_events).toBe(TOTAL);
}, 180_000);
