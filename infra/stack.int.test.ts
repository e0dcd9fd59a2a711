/**
 * Starts a second, real stack on alternate ports in a temp data dir (the default-port stack may
 * be in use by other test files and developers), and checks restart keeps the data.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../pipeline/errors.ts';
import { kafkaFor } from '../test/stack-helpers.ts';
import { processCmdline } from './procs.ts';
import { registryUrl, stackDown, stackStatus, stackUp, type StackOptions } from './stack.ts';

/** Ports the OS hands out as free right now: fixed ones collide when two runs of this file overlap. */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<net.Server>((resolve) => {
      const srv = net.createServer();
      srv.listen(0, '127.0.0.1', () => resolve(srv));
    })),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

const root = process.cwd();
const dataDir = mkdtempSync(path.join(tmpdir(), 'penumbra-stack-it-'));
const lines: string[] = [];
const [kafkaPort, controllerPort, registryPort, registryManagementPort] = await freePorts(4);
const opts: StackOptions = {
  dataDir,
  cacheDir: process.env.PENUMBRA_CACHE_DIR ? path.resolve(process.env.PENUMBRA_CACHE_DIR) : path.join(root, '.cache', 'stack'),
  kafkaPort: kafkaPort!,
  controllerPort: controllerPort!,
  registryPort: registryPort!,
  registryManagementPort: registryManagementPort!,
  log: (l) => lines.push(l),
};
const brokers = [`127.0.0.1:${opts.kafkaPort}`];
const topic = 'stack-it.persisted';
const subject = `${topic}-value`;
const schema = JSON.stringify({ type: 'record', name: 'Probe', fields: [{ name: 'n', type: 'int' }] });

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive || processCmdline(pid) === null) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

afterAll(async () => {
  await stackDown(opts).catch(() => undefined);
  rmSync(dataDir, { recursive: true, force: true });
});

test('up, write, down leaves no process, up again keeps topics and schemas', async () => {
  const up = await stackUp(opts);
  expect(up.map((s) => [s.name, s.running, s.healthy])).toEqual([
    ['kafka', true, true],
    ['registry', true, true],
  ]);
  const status = await stackStatus(opts);
  expect(status.every((s) => s.running && s.healthy)).toBe(true);
  expect(status[0]!.logFile).toBe(path.join(dataDir, 'stack', 'logs', 'kafka.log'));

  const kafka = kafkaFor('stack-it', { brokers });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, messages: [{ key: 'k', value: 'hello' }] });
  await producer.disconnect();
  await admin.disconnect();

  const reg = await fetch(`${registryUrl(opts)}/subjects/${subject}/versions`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ schema }),
  });
  expect(reg.status).toBe(200);
  const config = (await (await fetch(`${registryUrl(opts)}/config`)).json()) as { compatibilityLevel: string };
  expect(config.compatibilityLevel).toBe('BACKWARD');

  // A second `up` adopts the running processes rather than starting duplicates.
  const again = await stackUp(opts);
  expect(again.map((s) => s.pid)).toEqual(up.map((s) => s.pid));

  const down = await stackDown(opts);
  expect(down.map((d) => d.result)).toEqual(['stopped', 'stopped']);
  for (const s of up) expect(await gone(s.pid!)).toBe(true);
  const after = await stackStatus(opts);
  expect(after.map((s) => [s.running, s.healthy])).toEqual([
    [false, false],
    [false, false],
  ]);

  lines.length = 0;
  const restarted = await stackUp(opts);
  expect(restarted.every((s) => s.healthy)).toBe(true);
  // The cache and the formatted storage are reused: no Maven, no second format.
  expect(lines.some((l) => /Fetching|Formatting/.test(l))).toBe(false);

  const admin2 = kafkaFor('stack-it', { brokers }).admin();
  await admin2.connect();
  expect(await admin2.listTopics()).toContain(topic);
  const offsets = await admin2.fetchTopicOffsets(topic);
  expect(offsets[0]!.high).toBe('1');
  await admin2.disconnect();
  const versions = await fetch(`${registryUrl(opts)}/subjects/${subject}/versions`);
  expect(await versions.json()).toEqual([1]);

  await stackDown(opts);
}, 300_000);

test('up refuses a taken port with an actionable message and starts nothing', async () => {
  // Keep hold of accepted sockets: close() waits for them, and the probe's ones must not linger.
  const accepted = new Set<net.Socket>();
  const squatter = net.createServer((c) => {
    // Drain what the probe writes, or the peer's close never surfaces as 'end'/'close' here.
    c.resume();
    accepted.add(c);
    c.on('close', () => accepted.delete(c));
  });
  await new Promise<void>((resolve) => squatter.listen(opts.kafkaPort, '127.0.0.1', resolve));
  try {
    const err = await stackUp(opts).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toContain(`Port ${opts.kafkaPort}`);
    expect(msg).toContain('docker compose up');
    expect(msg).toContain('KAFKA_BROKERS');
    expect(msg).toContain('SCHEMA_REGISTRY_URL');
    const status = await stackStatus(opts);
    expect(status.some((s) => s.running)).toBe(false);
    // The health probe must close its sockets even when the listener is not Kafka.
    await new Promise((r) => setTimeout(r, 200));
    expect(accepted.size).toBe(0);
  } finally {
    for (const c of accepted) c.destroy();
    await new Promise((r) => squatter.close(r));
  }
}, 120_000);
