/**
 * Dependencies that are down — without touching the shared broker and registry:
 *  - the registry unreachable at start, Kafka unreachable at start: `penumbra start` gives up
 *    within a bounded time with one actionable message naming what is unreachable and where,
 *    and exits non-zero (a supervisor restarts it; it does not hang or spin);
 *  - the registry going away mid-run (a TCP proxy in front of the real registry is closed):
 *    health reports the registry down and the process degraded (not crashed), devices keep
 *    resolving, the collector keeps acknowledging telemetry (schemas are cached), and once the
 *    registry is back health recovers and every event acknowledged during the outage reaches
 *    DuckDB exactly once.
 */
import net from 'node:net';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { faultEnv, freePort, health, killAll, spawnPenumbra, storedEventIds, waitFor } from './child.ts';

afterAll(() => killAll());

/** A TCP proxy we can switch off and on: the registry "goes down" for our process only. */
function tcpProxy(port: number, target: { host: string; port: number }) {
  let server: net.Server | null = null;
  const sockets = new Set<net.Socket>();
  return {
    async up() {
      server = net.createServer((client) => {
        const upstream = net.connect(target.port, target.host);
        sockets.add(client).add(upstream);
        const drop = () => {
          client.destroy();
          upstream.destroy();
          sockets.delete(client);
          sockets.delete(upstream);
        };
        client.on('error', drop).on('close', drop);
        upstream.on('error', drop).on('close', drop);
        client.pipe(upstream).pipe(client);
      });
      await new Promise<void>((r) => server!.listen(port, '127.0.0.1', r));
    },
    async down() {
      for (const s of sockets) s.destroy();
      sockets.clear();
      await new Promise((r) => (server ? server.close(r) : r(undefined)));
      server = null;
    },
  };
}

async function startFailure(env: Record<string, string>): Promise<{ err: Error | null; took: number }> {
  const t0 = Date.now();
  const err = await spawnPenumbra(env, { timeoutMs: 150_000 }).then(() => null, (e: Error) => e);
  return { err, took: Date.now() - t0 };
}

function expectActionable(what: string, r: { err: Error | null; took: number }, mentions: RegExp[]): void {
  process.stderr.write(`${what} unreachable at start: exited after ${r.took} ms: ${r.err?.message.split('\n').filter(Boolean).slice(1, 4).join(' | ')}\n`);
  expect(r.err).not.toBeNull();
  expect(r.err!.message).toMatch(/exited \(1\)/); // a clean non-zero exit, not a signal or a hang
  for (const re of mentions) expect(r.err!.message).toMatch(re);
  // A message for a person: no stack frames, no dumped error objects.
  expect(r.err!.message).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  expect(r.err!.message).not.toMatch(/\[cause\]|retriable: /);
  expect(r.took).toBeLessThan(150_000);
}

test('registry unreachable at start: one actionable message and a non-zero exit, in bounded time', async () => {
  const deadPort = await freePort();
  const r = await startFailure(await faultEnv('no-registry', { SCHEMA_REGISTRY_URL: `http://127.0.0.1:${deadPort}/apis/ccompat/v7` }));
  expectActionable('registry', r, [/schema registry/i, new RegExp(`127\\.0\\.0\\.1:${deadPort}`), /unreachable/i]);
}, 200_000);

/*
 * Was a defect: kafkajs's error chain (stack frames, [cause] dumps) was printed. createPenumbra
 * now asks the brokers first (pipeline/kafka/probe.ts assertKafkaReachable) and stops with one
 * UnavailableError naming them and KAFKA_BROKERS.
 */
test('Kafka unreachable at start: one actionable message and a non-zero exit, in bounded time', async () => {
  const deadPort = await freePort();
  const r = await startFailure(await faultEnv('no-kafka', { KAFKA_BROKERS: `127.0.0.1:${deadPort}` }));
  expectActionable('kafka', r, [/kafka/i, /KAFKA_BROKERS/, new RegExp(`127\\.0\\.0\\.1:${deadPort}`), /unreachable/i]);
}, 200_000);

test('registry down mid-run: degraded health, devices and the collector keep working, full recovery', async () => {
  const proxyPort = await freePort();
  const real = new URL(process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7');
  const proxy = tcpProxy(proxyPort, { host: real.hostname, port: Number(real.port) });
  await proxy.up();
  const env = await faultEnv('registry-outage', { SCHEMA_REGISTRY_URL: `${real.protocol}//127.0.0.1:${proxyPort}${real.pathname}` });
  const p = await spawnPenumbra(env);
  const RUN = randomUUID().slice(0, 8);
  const acked = new Set<string>();
  let n = 0;
  const send = async () => {
    const now = Date.now();
    const ids = Array.from({ length: 10 }, () => `${RUN}-${n++}`);
    const res = await fetch(`${p.url}/api/v1/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ itemId: 'com.example.fault', version: '1', variant: 'original', profileVersion: 0, sessionId: 's1', userId: 'u1', sentAt: now, events: ids.map((id) => ({ id, type: 'usage', name: 'buy', ts: now })) }) });
    await res.arrayBuffer();
    if (res.status === 202) for (const id of ids) acked.add(id);
    return res.status;
  };
  await waitFor('healthy', async () => (await health(p.url)).checks.registry?.status === 'ok', 30_000);
  for (let i = 0; i < 5; i++) expect(await send()).toBe(202);

  await proxy.down();
  const down = await waitFor('health to report the registry down', async () => {
    const h = await health(p.url);
    return h.checks.registry?.status === 'down' ? h : null;
  }, 30_000);
  expect(down.status).toBe('degraded');
  expect(down.checks.registry.detail).toBeTruthy();
  // Devices are unaffected: resolve answers from memory, the collector encodes with cached ids.
  const r = await fetch(`${p.url}/api/v1/resolve?itemId=com.example.fault&userId=u1`);
  expect(r.status).toBe(200);
  for (let i = 0; i < 10; i++) expect(await send()).toBe(202);
  const duringOutage = acked.size;

  await proxy.up();
  await waitFor('health to recover', async () => (await health(p.url)).checks.registry?.status === 'ok', 30_000);
  for (let i = 0; i < 5; i++) expect(await send()).toBe(202);
  await waitFor('the sink to store every acknowledged event', async () => {
    const h = await health(p.url);
    return (h.checks.duckdb?.lagByTopic as Record<string, number> | undefined)?.[`${env.PENUMBRA_TOPIC_PREFIX}telemetry.raw`] === 0;
  }, 60_000, 500);
  expect((await p.stop()).code).toBe(0);
  await proxy.down();

  const rows = await storedEventIds(path.join(env.PENUMBRA_DATA_DIR, 'warehouse', 'penumbra.duckdb'), RUN);
  expect(rows.length).toBe(new Set(rows).size);
  expect(new Set(rows)).toEqual(acked);
  process.stderr.write(`registry outage: ${acked.size} events acknowledged (${duringOutage - 50} during the outage), all in DuckDB once\n`);
}, 240_000);
