/**
 * The sink lease (lease.ts; docs/scaling.md "Hazards"): two warehouse sinks (run-sink.ts child
 * processes, each with a data folder of its own, as on two hosts) started at the same instant on
 * one topic prefix. Exactly one gets the lease and writes — it stores every event — while the
 * other reports that it waits and commits nothing; after the holder is killed with SIGKILL the
 * waiting one takes the lease over within the lease time (the group session, 10 s, plus one
 * rebalance) and stores every event, including those produced after the kill, in its own
 * warehouse. Lean: 600 events, two processes, no sleeps (polling on their JSON log lines).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { loadConfig, topicNames, type PenumbraConfig } from '../../pipeline/config/config.ts';
import { createKafka, AvroProducer } from '../../pipeline/kafka/client.ts';
import { provisionAll } from '../../pipeline/kafka/setup.ts';
import { waitFor } from '../../test/wait-for.ts';
import { telemetryRecords } from './fixtures.ts';

const base = loadConfig({ KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092', SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7' });
const prefix = `t-sinklease-${randomUUID().slice(0, 8)}.`;
const cfg: PenumbraConfig = { ...base, topicPrefix: prefix, topics: topicNames(prefix), partitions: 3 };
const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const dirs: string[] = [];
const children: ChildProcess[] = [];
const SESSION_MS = 10_000;

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Line { msg: string; at: number; topic?: string; changed?: Record<string, number> }
interface Sink { name: string; child: ChildProcess; lines: Line[]; rows: () => number; stderr: () => string; exited: Promise<unknown> }

function runSink(name: string): Sink {
  const dir = mkdtempSync(path.join(os.tmpdir(), `penumbra-lease-${name}-`));
  dirs.push(dir);
  const child = spawn(process.execPath, ['--import', 'tsx', 'connectors/duckdb-sink/run-sink.ts', '--progress', '--snapshot-ms', '60000'], {
    cwd: REPO,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, KAFKA_BROKERS: cfg.kafkaBrokers.join(','), SCHEMA_REGISTRY_URL: cfg.schemaRegistryUrl, PENUMBRA_TOPIC_PREFIX: prefix, PENUMBRA_DATA_DIR: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: Line[] = [];
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  createInterface({ input: child.stdout! }).on('line', (l) => {
    try {
      lines.push(JSON.parse(l) as Line);
    } catch {
      /* not a log line */
    }
  });
  const exited = new Promise((r) => child.on('exit', r));
  const rows = () => lines.filter((l) => l.msg === 'commit').reduce((s, l) => s + (l.changed?.telemetry_events ?? 0), 0);
  return { name, child, lines, rows, stderr: () => err, exited };
}

const has = (s: Sink, msg: string | RegExp) => s.lines.find((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg)));

test('two sinks started at the same instant: exactly one writes; the other takes over within the lease time after a SIGKILL', async () => {
  const kafka = createKafka(cfg.kafkaBrokers, 'sink-lease-test');
  const { codec } = await provisionAll(kafka, cfg);
  const producer = new AvroProducer(kafka, codec);
  await producer.connect();
  const produce = (from: number, n: number) => producer.send(telemetryRecords(cfg.topics.telemetryRaw, from, n, 'lease'));
  await produce(0, 400);

  const t0 = Date.now();
  const a = runSink('a');
  const b = runSink('b');
  // One of them gets the lease and stores all 400; by then the other has said it waits.
  const holder = await waitFor('one sink holding the lease and storing every event', () => [a, b].find((s) => has(s, 'ready') && s.rows() === 400), 90_000, 100)
    .catch((err: Error) => {
      throw new Error(`${err.message}\n--- a: ${a.stderr()}\n--- b: ${b.stderr()}`);
    });
  const standby = holder === a ? b : a;
  await waitFor('the other sink saying it waits for the lease', () => has(standby, /another sink holds the lease; waiting/), 30_000, 100);
  expect(has(standby, /lease acquired/)).toBeUndefined();
  expect(has(standby, 'ready')).toBeUndefined();
  expect(standby.rows()).toBe(0);
  const acquiredIn = has(holder, /lease acquired/)!.at - t0;

  // SIGKILL the holder: no clean leave, its session must expire. The standby takes over.
  holder.child.kill('SIGKILL');
  const killedAt = Date.now();
  await holder.exited;
  await produce(400, 200);
  const took = await waitFor('the standby acquiring the lease', () => has(standby, /lease acquired/), 60_000, 100);
  const takeOverMs = took.at - killedAt;
  // Within the lease time: the group session plus one rebalance (generous on a loaded machine).
  expect(takeOverMs).toBeLessThan(SESSION_MS + 10_000);
  // Its own warehouse gets every event, those produced after the kill too.
  await waitFor('the standby storing every event', () => standby.rows() === 600, 60_000, 100);
  expect(standby.rows()).toBe(600);
  standby.child.kill('SIGTERM');
  await standby.exited;
  await producer.disconnect();
  // For the report (jest prints it): how long the election and the take-over took.
  console.log(JSON.stringify({ acquiredInMs: acquiredIn, takeOverMs, testMs: Date.now() - t0, load: os.loadavg() }));
}, 240_000);
