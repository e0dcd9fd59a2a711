/**
 * The broker dies mid-stream and comes back. The shared broker must stay up for everyone else,
 * so this file starts a private stack (Kafka + registry) on free ports in a temp folder, runs
 * `penumbra start` against it, kills the broker with SIGKILL under telemetry load, and starts it
 * again on the same data.
 *
 * Guarantees checked:
 *  - while the broker is down nothing is acknowledged falsely: answers are 202 only for events
 *    the broker took (before the kill, or after it is back while the request was retrying), and
 *    503 problem+json otherwise; health reports Kafka down and the process stays up, and the
 *    collector's own check (pipeline/collector-health) reports it refuses telemetry;
 *  - after the broker is back the process recovers by itself (no restart of Penumbra; the
 *    collector check is ok again), and every acknowledged event is in DuckDB exactly once;
 *    rows = records on the topic.
 * Slow (two JVMs start): this is the last fault test and may take two minutes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { kafkaBrokers, registryUrl, stackDown, stackStatus, stackUp, type StackOptions } from '../../infra/stack.ts';
import { kafkaFor } from '../stack-helpers.ts';
import { AvroCodec } from '../../pipeline/kafka/registry.ts';
import { faultEnv, freePort, health, killAll, spawnPenumbra, storedEventIds, waitFor, REPO } from './child.ts';

let opts: StackOptions;
/** How long GET /api/v1/health took while the broker was down (0 if never measured). */
let healthMsWhileDown = 0;
const stackLog: string[] = [];

beforeAll(async () => {
  opts = {
    dataDir: mkdtempSync(path.join(tmpdir(), 'penumbra-fault-stack-')),
    cacheDir: process.env.PENUMBRA_CACHE_DIR ? path.resolve(process.env.PENUMBRA_CACHE_DIR) : path.join(REPO, '.cache', 'stack'),
    kafkaPort: await freePort(),
    controllerPort: await freePort(),
    registryPort: await freePort(),
    registryManagementPort: await freePort(),
    log: (l) => stackLog.push(l),
  };
  await stackUp(opts);
}, 300_000);

afterAll(async () => {
  killAll();
  await stackDown(opts).catch(() => undefined);
  rmSync(opts.dataDir, { recursive: true, force: true });
}, 120_000);

test('broker killed and restarted under load: no false 202, self-recovery, every 202 in DuckDB once', async () => {
  const env = await faultEnv('broker-restart', { KAFKA_BROKERS: kafkaBrokers(opts), SCHEMA_REGISTRY_URL: registryUrl(opts) });
  const p = await spawnPenumbra(env, { timeoutMs: 120_000 });
  const RUN = randomUUID().slice(0, 8);
  const acked = new Set<string>();
  const statuses = new Map<number | string, number>();
  // A request that started after the kill (plus a margin for acks already on the wire) and was
  // answered 202 before the broker was started again would be a false acknowledgement.
  let killedAt = Infinity;
  let restartAt = Infinity;
  let ackedWhileDown = 0;
  let running = true;
  let seq = 0;
  const loops = [0, 1, 2, 3].map(async (w) => {
    while (running) {
      const now = Date.now();
      const startedAt = now;
      const ids = Array.from({ length: 20 }, () => `${RUN}-${w}-${seq++}`);
      try {
        const res = await fetch(`${p.url}/api/v1/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ itemId: 'com.example.fault', version: '1', variant: 'original', profileVersion: 0, sessionId: `s-${w}`, userId: 'u', sentAt: now, events: ids.map((id) => ({ id, type: 'usage', name: 'buy', ts: now })) }), signal: AbortSignal.timeout(60_000) });
        const text = await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 202) {
          for (const id of ids) acked.add(id);
          if (startedAt > killedAt + 2000 && Date.now() < restartAt) ackedWhileDown++;
        } else {
          expect(res.status).toBe(503);
          expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
          expect(JSON.parse(text).type).toBe('https://penumbra.dev/problems/unavailable');
          await new Promise((r) => setTimeout(r, 200));
        }
      } catch (err) {
        statuses.set('client-error', (statuses.get('client-error') ?? 0) + 1);
        if ((err as Error).name === 'JestAssertionError') throw err;
      }
    }
  });
  await waitFor('500 acknowledged events', () => acked.size >= 500, 60_000);

  // Kill the broker (SIGKILL: no controlled shutdown).
  const broker = (await stackStatus(opts)).find((s) => s.name === 'kafka')!;
  expect(broker.running).toBe(true);
  process.kill(broker.pid!, 'SIGKILL');
  killedAt = Date.now();
  const ackedAtKill = acked.size;
  let healthMs = 0;
  const degraded = await waitFor('health to report Kafka down', async () => {
    const t0 = Date.now();
    const h = await health(p.url, 90_000);
    healthMs = Date.now() - t0;
    healthMsWhileDown = Math.max(healthMsWhileDown, healthMs);
    return h.checks.kafka?.status === 'down' ? h : null;
  }, 120_000, 1000);
  expect(degraded.status).not.toBe('down'); // degraded, still answering
  // A few more while it stays down: every one of them counts for the 5 s bound below.
  for (let i = 0; i < 3; i++) {
    const t0 = Date.now();
    expect((await health(p.url, 90_000)).checks.kafka?.status).toBe('down');
    healthMsWhileDown = Math.max(healthMsWhileDown, Date.now() - t0);
    await new Promise((r) => setTimeout(r, 1000));
  }
  // The collector's check reflects what it answers: 503s and nothing acknowledged since.
  type CollectorView = { status: string; detail?: string; recent: { answered503: number; produceFailures: number } };
  const refusing = await waitFor('the collector check to report that it refuses telemetry', async () => {
    const c = (await health(p.url, 90_000)).checks.collector as unknown as CollectorView | undefined;
    return c?.status === 'degraded' && c.recent.answered503 > 0 ? c : null;
  }, 120_000, 1000);
  expect(refusing.detail).toMatch(/refusing telemetry: \d+ batch\(es\) answered 503/);
  expect(refusing.recent.produceFailures).toBeGreaterThan(0);

  // Bring it back on the same data; Penumbra is not restarted.
  restartAt = Date.now();
  await stackUp(opts);
  const backAfter = Date.now() - killedAt;
  await waitFor('health to report Kafka ok again', async () => (await health(p.url, 90_000)).checks.kafka?.status === 'ok', 120_000, 1000);
  await waitFor('more acknowledged events after the broker is back', () => acked.size >= ackedAtKill + 500, 120_000);
  await waitFor('the collector check to be ok again', async () => ((await health(p.url)).checks.collector?.status === 'ok' ? true : null), 60_000, 500);
  running = false;
  await Promise.all(loops);

  const raw = `${env.PENUMBRA_TOPIC_PREFIX}telemetry.raw`;
  await waitFor('the sink to catch up', async () => ((await health(p.url)).checks.duckdb?.lagByTopic as Record<string, number> | undefined)?.[raw] === 0, 120_000, 1000);
  expect((await p.stop()).code).toBe(0);

  const kafka = kafkaFor('fault-broker-restart', { brokers: [kafkaBrokers(opts)] });
  const admin = kafka.admin();
  await admin.connect();
  const onTopic = (await admin.fetchTopicOffsets(raw)).reduce((s, o) => s + Number(o.high) - Number(o.low), 0);
  await admin.disconnect();
  // The ids actually on the topic, with their offsets: tells a broker that lost acknowledged
  // records apart from a sink that skipped some.
  const topicIds = new Map<string, string>();
  const consumer = kafka.consumer({ groupId: `fault-reader-${randomUUID()}` });
  await consumer.connect();
  await consumer.subscribe({ topic: raw, fromBeginning: true });
  const codec = new AvroCodec(registryUrl(opts));
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 60_000);
    let n = 0;
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        const e = await codec.decode('telemetry-event', message.value);
        topicIds.set(e.id, `${partition}@${message.offset}`);
        if (++n >= onTopic) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  const ids = await storedEventIds(path.join(env.PENUMBRA_DATA_DIR, 'warehouse', 'penumbra.duckdb'), RUN);
  const stored = new Set(ids);
  process.stderr.write(`broker-restart: statuses ${JSON.stringify(Object.fromEntries(statuses))}; ${acked.size} acked (${ackedAtKill} before the kill, ${ackedWhileDown} batches answered 202 while down), broker back after ${backAfter} ms; slowest health call ${healthMsWhileDown} ms while Kafka was down; topic ${onTopic}, rows ${ids.length}\n`);
  const ackedNotOnTopic = [...acked].filter((id) => !topicIds.has(id));
  const onTopicNotStored = [...topicIds.keys()].filter((id) => !stored.has(id));
  const storedNotOnTopic = [...stored].filter((id) => !topicIds.has(id));
  process.stderr.write(`broker-restart: acked but not on the topic ${ackedNotOnTopic.length}, on the topic but not in DuckDB ${onTopicNotStored.length} (e.g. ${onTopicNotStored.slice(0, 3).map((id) => `${id}@${topicIds.get(id)}`).join(' ')}), in DuckDB but not on the topic ${storedNotOnTopic.length}\n`);
  // The sink's part holds unconditionally: everything on the topic is in DuckDB exactly once.
  expect(onTopicNotStored.slice(0, 5)).toEqual([]);
  expect(storedNotOnTopic.slice(0, 5)).toEqual([]);
  expect(ids.length).toBe(stored.size);
  expect(ids.length).toBe(onTopic);
  // The collector's part: every 202 on the topic. (A lost produce answer used to make the next
  // same-sized batch acknowledged-but-dropped; test/faults/lost-ack.int.test.ts pins the fix.)
  expect(ackedNotOnTopic.slice(0, 5)).toEqual([]);
  // A 202 while the broker was dead would be a lie (kafkajs only resolves on a broker ack).
  expect(ackedWhileDown).toBe(0);
  expect(statuses.get(503) ?? 0).toBeGreaterThan(0);
}, 600_000);

/*
 * Was a defect (health took ~23 s with the broker down: kafkajs admin clients retried 8 times,
 * and the DuckDB lag check opened another). Health checks are now asked once and bounded
 * (pipeline/app/health.ts, pipeline/kafka/probe.ts), so a degraded process answers like a live one.
 */
test('health answers within 5 s while the broker is down (slowest of every health call during the outage)', () => {
  expect(healthMsWhileDown).toBeGreaterThan(0);
  expect(healthMsWhileDown).toBeLessThan(5000);
});
