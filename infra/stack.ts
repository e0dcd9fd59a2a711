/**
 * The local stack without Docker: one Apache Kafka node in KRaft mode and Apicurio Registry
 * (Confluent-compatible API, KafkaSQL storage on that broker), both run with the machine's Java
 * from jars fetched once into `cacheDir`. Everything a running stack owns lives under
 * `<dataDir>/stack/`: pid files, logs, the broker's config and its log dirs.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import kafkajs from 'kafkajs';
import { ConfigError, UnavailableError } from '../pipeline/errors.ts';
import {
  ALTERNATIVES,
  KAFKA_VERSION,
  REGISTRY_VERSION,
  ensureJava,
  ensureKafkaLibs,
  ensureRegistry,
  ensureS3Proxy,
  S3PROXY_VERSION,
  type JavaInfo,
} from './artifacts.ts';
import {
  isOurProcess,
  portFree,
  readPid,
  rotateLog,
  runStreaming,
  sleep,
  spawnDetached,
  stopProcess,
  tailFile,
  tcpOpen,
} from './procs.ts';

export { ensureJava, KAFKA_VERSION, REGISTRY_VERSION, type JavaInfo };

export interface StackOptions {
  dataDir: string;
  cacheDir: string;
  kafkaPort: number;
  controllerPort: number;
  registryPort: number;
  registryManagementPort: number;
  log?: (line: string) => void;
  /** Bound on the wait for each service to become healthy; defaults to 90 s (Kafka) and 150 s (registry). */
  healthTimeoutMs?: number;
  /**
   * Port of the local S3Proxy (S3-compatible object store, filesystem backend): set when blobs or
   * Parquet go to S3 without an endpoint of their own. Unset: `up` does not start it.
   */
  s3Port?: number;
}

export type ServiceName = 'kafka' | 'registry' | 's3';

export interface ServiceStatus {
  name: ServiceName;
  pid: number | null;
  /** Our process (pid file + matching command line) is alive. */
  running: boolean;
  /** The service answers on its port (whoever runs it). */
  healthy: boolean;
  port: number;
  logFile: string;
}

export const DEFAULT_PORTS = {
  kafkaPort: 9092,
  controllerPort: 9093,
  registryPort: 8081,
  registryManagementPort: 9081,
} as const;

/** Options for the default ports, data dir `<dataDir>` and cache `<repoRoot>/.cache/stack`. */
export function defaultStackOptions(repoRoot: string, dataDir: string, log?: (line: string) => void): StackOptions {
  return { dataDir, cacheDir: path.join(repoRoot, '.cache', 'stack'), ...DEFAULT_PORTS, log };
}

export const kafkaBrokers = (o: Pick<StackOptions, 'kafkaPort'>) => `127.0.0.1:${o.kafkaPort}`;
export const registryUrl = (o: Pick<StackOptions, 'registryPort'>) => `http://127.0.0.1:${o.registryPort}/apis/ccompat/v7`;
export const s3Endpoint = (port: number) => `http://127.0.0.1:${port}`;
export const DEFAULT_S3_PORT = 8333;

interface Paths {
  stackDir: string;
  logsDir: string;
  kafkaDir: string;
  kafkaData: string;
  registryDir: string;
  s3Dir: string;
  pid: Record<ServiceName, string>;
  log: Record<ServiceName, string>;
  marker: string;
}

function paths(o: StackOptions): Paths {
  const stackDir = path.resolve(o.dataDir, 'stack');
  const logsDir = path.join(stackDir, 'logs');
  return {
    stackDir,
    logsDir,
    kafkaDir: path.join(stackDir, 'kafka'),
    kafkaData: path.join(stackDir, 'kafka', 'data'),
    registryDir: path.join(stackDir, 'registry'),
    s3Dir: path.join(stackDir, 's3proxy'),
    pid: { kafka: path.join(stackDir, 'kafka.pid'), registry: path.join(stackDir, 'registry.pid'), s3: path.join(stackDir, 's3proxy.pid') },
    log: { kafka: path.join(logsDir, 'kafka.log'), registry: path.join(logsDir, 'registry.log'), s3: path.join(logsDir, 's3proxy.log') },
    // A system property on the JVM command line that names this stack's folder: it tells our
    // processes apart from any other Kafka on the machine before we signal a pid.
    marker: `-Dpenumbra.stack.home=${stackDir}`,
  };
}

const noop = () => {};

// ---------------------------------------------------------------- health probes

const { Kafka, logLevel } = kafkajs;

/**
 * One ApiVersions v0 round trip on a socket we own. kafkajs, pointed at a port where something
 * other than Kafka listens, waits for its request timeout and leaves its sockets open; this answers
 * "is it Kafka at all" quickly and cleanly before kafkajs is asked anything.
 */
function speaksKafka(port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const clientId = Buffer.from('penumbra-stack-probe');
    const correlationId = 0x50454e;
    const req = Buffer.alloc(4 + 2 + 2 + 4 + 2 + clientId.length);
    req.writeInt32BE(req.length - 4, 0);
    req.writeInt16BE(18, 4); // ApiVersions
    req.writeInt16BE(0, 6);
    req.writeInt32BE(correlationId, 8);
    req.writeInt16BE(clientId.length, 12);
    clientId.copy(req, 14);
    const sock = net.connect({ port, host: '127.0.0.1' });
    let buf = Buffer.alloc(0);
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write(req));
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 10) done(buf.readInt32BE(4) === correlationId && buf.readInt16BE(8) === 0);
    });
  });
}

async function kafkaHealthy(port: number): Promise<boolean> {
  if (!(await speaksKafka(port))) return false;
  const kafka = new Kafka({
    clientId: 'penumbra-stack-probe',
    brokers: [`127.0.0.1:${port}`],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2000,
    requestTimeout: 4000,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0 && cluster.controller !== null && cluster.controller >= 0;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(noop);
  }
}

async function registryHealthy(port: number): Promise<boolean> {
  try {
    const res = await fetch(`${registryUrl({ registryPort: port })}/subjects`, { signal: AbortSignal.timeout(3000) });
    if (!res.ok) return false;
    return Array.isArray(await res.json());
  } catch {
    return false;
  }
}

/**
 * S3Proxy answers S3 over HTTP: an anonymous `GET /` is a ListAllMyBuckets (200) with an XML body.
 * Anything else on the port (or nothing) is not healthy.
 */
export async function s3Healthy(port: number): Promise<boolean> {
  try {
    const res = await fetch(`${s3Endpoint(port)}/`, { signal: AbortSignal.timeout(3000) });
    const body = await res.text();
    return res.status < 500 && body.includes('ListAllMyBucketsResult');
  } catch {
    return false;
  }
}

/** Cheap check that both services answer on the given ports, whoever started them. */
export async function isStackHealthy(opts: StackOptions): Promise<boolean> {
  const [k, r] = await Promise.all([kafkaHealthy(opts.kafkaPort), registryHealthy(opts.registryPort)]);
  return k && r;
}

// ---------------------------------------------------------------- status

function serviceStatusSync(o: StackOptions, p: Paths, name: ServiceName): Omit<ServiceStatus, 'healthy'> {
  const pid = readPid(p.pid[name]);
  return {
    name,
    pid,
    running: pid !== null && isOurProcess(pid, p.marker),
    port: name === 'kafka' ? o.kafkaPort : name === 'registry' ? o.registryPort : (o.s3Port ?? DEFAULT_S3_PORT),
    logFile: p.log[name],
  };
}

export async function stackStatus(opts: StackOptions): Promise<ServiceStatus[]> {
  const p = paths(opts);
  const k = serviceStatusSync(opts, p, 'kafka');
  const r = serviceStatusSync(opts, p, 'registry');
  const [kh, rh] = await Promise.all([kafkaHealthy(opts.kafkaPort), registryHealthy(opts.registryPort)]);
  const out: ServiceStatus[] = [
    { ...k, healthy: kh },
    { ...r, healthy: rh },
  ];
  const s3 = serviceStatusSync(opts, p, 's3');
  // S3Proxy is optional: listed when asked for (s3Port) or when this stack runs one.
  if (opts.s3Port !== undefined || s3.running) out.push({ ...s3, healthy: await s3Healthy(s3.port) });
  return out;
}

// ---------------------------------------------------------------- up

function portTakenError(port: number, role: string, o: StackOptions, extra = ''): ConfigError {
  return new ConfigError(
    `Port ${port} (${role}) on 127.0.0.1 is already in use by a process that is not this Penumbra stack ` +
      `(data dir ${path.resolve(o.dataDir)}).${extra} Find it with \`ss -ltnp 'sport = :${port}'\` or ` +
      `\`lsof -iTCP:${port} -sTCP:LISTEN\` and stop it; if it is a Penumbra stack started with another ` +
      'PENUMBRA_DATA_DIR, run `penumbra stack down` with that data dir. ' +
      ALTERNATIVES,
  );
}

async function checkPortsFree(o: StackOptions, ports: Array<[number, string]>, hint: string): Promise<void> {
  for (const [port, role] of ports) {
    if (!(await portFree(port))) throw portTakenError(port, role, o, hint);
  }
}

/** Kafka prints cluster ids as unpadded base64url of 16 random bytes and rejects ones starting with '-'. */
function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function serverProperties(o: StackOptions, p: Paths): string {
  const lines = [
    '# Written by penumbra stack up on every start; edit infra/stack.ts instead.',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.bootstrap.servers=127.0.0.1:${o.controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${o.kafkaPort},CONTROLLER://127.0.0.1:${o.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${o.kafkaPort}`,
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${p.kafkaData}`,
    'num.partitions=1',
    'offsets.topic.replication.factor=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    // Topics are created on purpose by Penumbra with their cleanup policy; a typo must not
    // silently create a delete-policy topic.
    'auto.create.topics.enable=false',
  ];
  return `${lines.join('\n')}\n`;
}

const LOG4J2 = [
  'rootLogger.level=INFO',
  'rootLogger.appenderRef.stdout.ref=STDOUT',
  'appender.stdout.type=Console',
  'appender.stdout.name=STDOUT',
  'appender.stdout.layout.type=PatternLayout',
  'appender.stdout.layout.pattern=[%d] %p %m (%c)%n',
  // The controller and state-change loggers are chatty at INFO and drown the useful lines.
  'logger.controller.name=org.apache.kafka.controller',
  'logger.controller.level=WARN',
  'logger.statechange.name=state.change.logger',
  'logger.statechange.level=WARN',
  '',
].join('\n');

interface Started {
  name: ServiceName;
  exited: { code: number | null } | null;
}

async function waitHealthy(
  name: ServiceName,
  probe: () => Promise<boolean>,
  started: Started | null,
  pid: number | null,
  p: Paths,
  timeoutMs: number,
  log: (l: string) => void,
): Promise<void> {
  const t0 = Date.now();
  let lastNote = t0;
  for (;;) {
    if (await probe()) {
      log(`${name} healthy after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      return;
    }
    const exitedEarly = started?.exited ?? (pid !== null && !isOurProcess(pid, p.marker) ? { code: null } : null);
    if (exitedEarly) {
      throw new UnavailableError(
        `${name} exited during start-up${exitedEarly.code !== null ? ` with code ${exitedEarly.code}` : ''}. ` +
          `Full log: ${p.log[name]}. Last lines:\n${tailFile(p.log[name], 30)}\n${ALTERNATIVES}`,
        undefined,
        false,
      );
    }
    if (Date.now() - t0 > timeoutMs) {
      throw new UnavailableError(
        `${name} did not become healthy within ${Math.round(timeoutMs / 1000)} s (pid ${pid ?? '?'} still running; ` +
          '`penumbra stack down` stops it). On a busy machine a second `penumbra stack up` usually succeeds. ' +
          `Full log: ${p.log[name]}. Last lines:\n${tailFile(p.log[name], 30)}\n${ALTERNATIVES}`,
        undefined,
        false,
      );
    }
    if (Date.now() - lastNote > 10000) {
      lastNote = Date.now();
      log(`  … waiting for ${name} (${Math.round((Date.now() - t0) / 1000)} s)`);
    }
    await sleep(500);
  }
}

function launch(
  name: ServiceName,
  java: string,
  args: string[],
  cwd: string,
  p: Paths,
): { pid: number; started: Started } {
  rotateLog(p.log[name]);
  const child = spawnDetached(java, args, cwd, p.log[name]);
  if (child.pid === undefined) {
    throw new UnavailableError(`Could not start ${name} with ${java}; see ${p.log[name]}.`, undefined, false);
  }
  const started: Started = { name, exited: null };
  child.once('exit', (code) => {
    started.exited = { code };
  });
  writeFileSync(p.pid[name], `${child.pid}\n`);
  return { pid: child.pid, started };
}

async function startKafka(o: StackOptions, p: Paths, java: JavaInfo, log: (l: string) => void): Promise<void> {
  const timeout = o.healthTimeoutMs ?? 90000;
  const current = serviceStatusSync(o, p, 'kafka');
  if (current.running) {
    log(`kafka already running (pid ${current.pid}); checking health …`);
    await waitHealthy('kafka', () => kafkaHealthy(o.kafkaPort), null, current.pid, p, timeout, log);
    return;
  }
  rmSync(p.pid.kafka, { force: true });
  const listening = await tcpOpen(o.kafkaPort);
  await checkPortsFree(
    o,
    [
      [o.kafkaPort, 'Kafka'],
      [o.controllerPort, 'Kafka controller'],
    ],
    listening && (await kafkaHealthy(o.kafkaPort))
      ? ` A Kafka broker answers there: to use it, set KAFKA_BROKERS=127.0.0.1:${o.kafkaPort}.`
      : '',
  );

  const libs = await ensureKafkaLibs(o.cacheDir, log);
  mkdirSync(p.kafkaData, { recursive: true });
  const props = path.join(p.kafkaDir, 'server.properties');
  const log4j = path.join(p.kafkaDir, 'log4j2.properties');
  writeFileSync(props, serverProperties(o, p));
  writeFileSync(log4j, LOG4J2);

  // The controller's own address is written into the metadata log at format time (--standalone);
  // a later start on another controller port would wait forever for a quorum that is not there.
  const formattedFile = path.join(p.kafkaDir, 'formatted.json');
  const clusterIdFile = path.join(p.kafkaDir, 'cluster-id');
  // 1 GB heap: with 512 MB the broker died of OutOfMemoryError (heartbeat thread, fatal exit) on
  // the shared development stack holding ~4,000 test topics from concurrent suites; metadata for
  // every topic and partition lives on the heap in KRaft. The machine has 24 GB.
  const baseArgs = ['-Xmx1g', p.marker, `-Dlog4j2.configurationFile=${log4j}`, '-cp', path.join(libs, '*')];
  if (existsSync(path.join(p.kafkaData, 'meta.properties')) && existsSync(formattedFile)) {
    const formatted = JSON.parse(readFileSync(formattedFile, 'utf8')) as { controllerPort: number };
    if (formatted.controllerPort !== o.controllerPort) {
      throw new ConfigError(
        `The Kafka storage in ${p.kafkaData} was formatted for controller port ${formatted.controllerPort}, ` +
          `not ${o.controllerPort}. Start with the original controller port, or delete ${p.kafkaDir} ` +
          '(its topics are lost) to format it afresh.',
      );
    }
  } else {
    const clusterId = existsSync(clusterIdFile) ? readFileSync(clusterIdFile, 'utf8').trim() : newClusterId();
    writeFileSync(clusterIdFile, `${clusterId}\n`);
    log(`Formatting Kafka storage in ${p.kafkaData} (cluster id ${clusterId}) …`);
    mkdirSync(p.logsDir, { recursive: true });
    const res = await runStreaming(
      java.java,
      [...baseArgs, 'kafka.tools.StorageTool', 'format', '--standalone', '-t', clusterId, '-c', props, '--ignore-formatted'],
      { cwd: p.kafkaDir, logFile: path.join(p.logsDir, 'kafka-format.log') },
    );
    if (res.code !== 0) {
      throw new UnavailableError(
        `Formatting Kafka storage failed (exit ${res.code}). Output:\n${res.tail.slice(-30).join('\n')}\n` +
          `Delete ${p.kafkaDir} and retry. ${ALTERNATIVES}`,
        undefined,
        false,
      );
    }
    writeFileSync(formattedFile, `${JSON.stringify({ clusterId, controllerPort: o.controllerPort })}\n`);
  }

  log(`Starting Kafka ${KAFKA_VERSION} on 127.0.0.1:${o.kafkaPort} (controller ${o.controllerPort}); log ${p.log.kafka}`);
  const { pid, started } = launch('kafka', java.java, [...baseArgs, 'kafka.Kafka', props], p.kafkaDir, p);
  await waitHealthy('kafka', () => kafkaHealthy(o.kafkaPort), started, pid, p, timeout, log);
}

async function ensureBackwardCompatibility(o: StackOptions, log: (l: string) => void): Promise<void> {
  // Apicurio 3.0.9 ignores apicurio.rules.global.compatibility, and
  // @kafkajs/confluent-schema-registry refuses to register when the subject's config differs from
  // what it asks for; the global rule set through the API persists in the KafkaSQL journal.
  const url = `${registryUrl(o)}/config`;
  const read = async () => {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) return null;
    const body = (await res.json()) as { compatibilityLevel?: string; compatibility?: string };
    return body.compatibilityLevel ?? body.compatibility ?? null;
  };
  if ((await read()) === 'BACKWARD') return;
  const put = await fetch(url, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ compatibility: 'BACKWARD' }),
    signal: AbortSignal.timeout(5000),
  });
  const now = await read();
  if (!put.ok || now !== 'BACKWARD') {
    throw new UnavailableError(
      `Could not set the registry's global compatibility to BACKWARD (PUT ${url} answered ${put.status}, ` +
        `config now ${now ?? 'unknown'}). See ${paths(o).log.registry}.`,
      undefined,
      false,
    );
  }
  log('registry global compatibility set to BACKWARD');
}

async function startRegistry(o: StackOptions, p: Paths, java: JavaInfo, log: (l: string) => void): Promise<void> {
  const timeout = o.healthTimeoutMs ?? 150000;
  const current = serviceStatusSync(o, p, 'registry');
  if (current.running) {
    log(`registry already running (pid ${current.pid}); checking health …`);
    await waitHealthy('registry', () => registryHealthy(o.registryPort), null, current.pid, p, timeout, log);
    await ensureBackwardCompatibility(o, log);
    return;
  }
  rmSync(p.pid.registry, { force: true });
  await checkPortsFree(
    o,
    [
      [o.registryPort, 'schema registry HTTP'],
      [o.registryManagementPort, 'schema registry management'],
    ],
    (await registryHealthy(o.registryPort))
      ? ` A schema registry answers there: to use it, set SCHEMA_REGISTRY_URL=${registryUrl(o)}.`
      : '',
  );
  const jar = await ensureRegistry(o.cacheDir, log);
  mkdirSync(p.registryDir, { recursive: true });
  const args = [
    '-Xmx512m',
    p.marker,
    `-Dquarkus.http.port=${o.registryPort}`,
    '-Dquarkus.http.host=127.0.0.1',
    `-Dquarkus.management.port=${o.registryManagementPort}`,
    '-Dquarkus.management.host=127.0.0.1',
    '-Dapicurio.storage.kind=kafkasql',
    `-Dapicurio.kafkasql.bootstrap.servers=127.0.0.1:${o.kafkaPort}`,
    // Confluent clients look schemas up by content; canonical hashing makes whitespace and field
    // order differences map to the same id as Confluent's registry would.
    '-Dapicurio.ccompat.use-canonical-hash=true',
    // Each topic has -key/-value subjects and tests create many prefixed topics.
    '-Dapicurio.ccompat.max-subjects=10000',
    '-jar',
    jar,
  ];
  log(`Starting Apicurio Registry ${REGISTRY_VERSION} on 127.0.0.1:${o.registryPort}; log ${p.log.registry}`);
  const { pid, started } = launch('registry', java.java, args, p.registryDir, p);
  await waitHealthy('registry', () => registryHealthy(o.registryPort), started, pid, p, timeout, log);
  await ensureBackwardCompatibility(o, log);
}

/**
 * Start (or adopt, if already running from this data dir) Kafka then the registry, and wait
 * until both are healthy. Fetches jars on first use; formats Kafka storage on first start only.
 */
export async function stackUp(opts: StackOptions): Promise<ServiceStatus[]> {
  const log = opts.log ?? noop;
  const p = paths(opts);
  const java = await ensureJava();
  mkdirSync(p.logsDir, { recursive: true });
  mkdirSync(opts.cacheDir, { recursive: true });
  const release = await acquireUpLock(p, log, (opts.healthTimeoutMs ?? 150000) + 120000);
  try {
    return await stackUpLocked(opts, p, java, log);
  } finally {
    release();
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Two `up`s on one data dir at once (two jest runs finding no stack) would both format and
 * launch; the second waits for the first instead, then adopts what it started.
 */
async function acquireUpLock(p: Paths, log: (l: string) => void, timeoutMs: number): Promise<() => void> {
  const lock = path.join(p.stackDir, 'up.lock');
  const t0 = Date.now();
  let announced = false;
  for (;;) {
    try {
      writeFileSync(lock, `${process.pid}\n`, { flag: 'wx' });
      return () => rmSync(lock, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readPid(lock);
    if (holder === null || holder === process.pid || !pidAlive(holder)) {
      rmSync(lock, { force: true });
      continue;
    }
    if (Date.now() - t0 > timeoutMs) {
      throw new UnavailableError(
        `Another \`stack up\` (pid ${holder}) has held ${lock} for ${Math.round(timeoutMs / 1000)} s. ` +
          'Wait for it or stop it, then run again.',
        undefined,
        false,
      );
    }
    if (!announced) {
      log(`Another stack up (pid ${holder}) is starting this stack; waiting for it …`);
      announced = true;
    }
    await sleep(500);
  }
}

async function stackUpLocked(opts: StackOptions, p: Paths, java: JavaInfo, log: (l: string) => void): Promise<ServiceStatus[]> {
  // Fetch both before starting anything, so a network failure leaves nothing half-running.
  await ensureKafkaLibs(opts.cacheDir, log);
  await ensureRegistry(opts.cacheDir, log);
  await startKafka(opts, p, java, log);
  await startRegistry(opts, p, java, log);
  if (opts.s3Port !== undefined) await startS3Proxy(opts, p, java, log);
  return stackStatus(opts);
}

// ---------------------------------------------------------------- S3Proxy

function s3proxyProperties(o: StackOptions, p: Paths): string {
  return [
    '# Written by penumbra stack up on every start; edit infra/stack.ts instead.',
    `s3proxy.endpoint=${s3Endpoint(o.s3Port ?? DEFAULT_S3_PORT)}`,
    // Loopback only, like the local Kafka (PLAINTEXT) and registry: no credentials to keep
    // secret. Clients still sign (any key is accepted), exactly as they would against AWS.
    's3proxy.authorization=none',
    'jclouds.provider=filesystem',
    `jclouds.filesystem.basedir=${path.join(p.s3Dir, 'data')}`,
    '',
  ].join('\n');
}

async function startS3Proxy(o: StackOptions, p: Paths, java: JavaInfo, log: (l: string) => void): Promise<void> {
  const port = o.s3Port ?? DEFAULT_S3_PORT;
  const timeout = o.healthTimeoutMs ?? 60000;
  const current = serviceStatusSync(o, p, 's3');
  if (current.running) {
    log(`s3 already running (pid ${current.pid}); checking health …`);
    await waitHealthy('s3', () => s3Healthy(port), null, current.pid, p, timeout, log);
    return;
  }
  rmSync(p.pid.s3, { force: true });
  if (!(await portFree(port))) {
    throw portTakenError(port, 'S3Proxy', o, (await s3Healthy(port)) ? ` An S3-compatible server answers there: to use it, set PENUMBRA_S3_ENDPOINT=${s3Endpoint(port)}.` : '');
  }
  const jar = await ensureS3Proxy(o.cacheDir, log);
  mkdirSync(path.join(p.s3Dir, 'data'), { recursive: true });
  const props = path.join(p.s3Dir, 's3proxy.conf');
  writeFileSync(props, s3proxyProperties(o, p));
  log(`Starting S3Proxy ${S3PROXY_VERSION} (filesystem backend in ${path.join(p.s3Dir, 'data')}) on ${s3Endpoint(port)}; log ${p.log.s3}`);
  const { pid, started } = launch('s3', java.java, ['-Xmx256m', p.marker, '-jar', jar, '--properties', props], p.s3Dir, p);
  await waitHealthy('s3', () => s3Healthy(port), started, pid, p, timeout, log);
}

/**
 * Start (or adopt) only the S3Proxy of this stack, leaving Kafka and the registry alone: what
 * `npm start` and the test setup call when S3 storage is configured and nothing answers on the port.
 */
export async function s3Up(opts: StackOptions & { s3Port: number }): Promise<ServiceStatus> {
  const log = opts.log ?? noop;
  const p = paths(opts);
  const java = await ensureJava();
  mkdirSync(p.logsDir, { recursive: true });
  mkdirSync(opts.cacheDir, { recursive: true });
  const release = await acquireUpLock(p, log, (opts.healthTimeoutMs ?? 60000) + 120000);
  try {
    await startS3Proxy(opts, p, java, log);
  } finally {
    release();
  }
  return { ...serviceStatusSync(opts, p, 's3'), healthy: await s3Healthy(opts.s3Port) };
}

// ---------------------------------------------------------------- down

export interface StopResult {
  name: ServiceName;
  pid: number | null;
  result: 'stopped' | 'killed' | 'not-running';
}

/** Stop exactly the processes recorded in this data dir's pid files, registry first. */
export async function stackDown(opts: StackOptions): Promise<StopResult[]> {
  const log = opts.log ?? noop;
  const p = paths(opts);
  const out: StopResult[] = [];
  for (const name of ['s3', 'registry', 'kafka'] as const) {
    const pid = readPid(p.pid[name]);
    // S3Proxy is optional: say nothing about it when this stack never ran one.
    if (name === 's3' && pid === null) continue;
    let result: StopResult['result'] = 'not-running';
    if (pid !== null) {
      if (isOurProcess(pid, p.marker)) log(`Stopping ${name} (pid ${pid}) …`);
      // Kafka's controlled shutdown flushes and closes its logs; give it time before SIGKILL.
      result = await stopProcess(pid, p.marker, name === 'kafka' ? 30000 : 20000);
      rmSync(p.pid[name], { force: true });
    }
    log(`${name}: ${result === 'not-running' ? 'not running' : result}`);
    out.push({ name, pid, result });
  }
  return out;
}

/** Stop only this stack's S3Proxy (what `npm start` started alone). */
export async function s3Down(opts: StackOptions): Promise<StopResult> {
  const p = paths(opts);
  const pid = readPid(p.pid.s3);
  let result: StopResult['result'] = 'not-running';
  if (pid !== null) {
    result = await stopProcess(pid, p.marker, 20000);
    rmSync(p.pid.s3, { force: true });
  }
  return { name: 's3', pid, result };
}
