/**
 * The stack's failure paths that need no running services: Java detection, Maven failure and
 * the pid-file safety of `down`. Real `java`/`mvn` are replaced by executables on PATH /
 * JAVA_HOME, which is what the code under test actually runs.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, UnavailableError } from '../pipeline/errors.ts';
import { ensureJava, ensureKafkaLibs, parseJavaMajor } from './artifacts.ts';
import { stackCommand } from './cli.ts';
import { stackDown, type StackOptions } from './stack.ts';

let dir: string;
const saved = { PATH: process.env.PATH, JAVA_HOME: process.env.JAVA_HOME };

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'penumbra-stack-unit-'));
});
afterEach(() => {
  process.env.PATH = saved.PATH;
  if (saved.JAVA_HOME === undefined) delete process.env.JAVA_HOME;
  else process.env.JAVA_HOME = saved.JAVA_HOME;
  rmSync(dir, { recursive: true, force: true });
});

function fakeExecutable(folder: string, name: string, script: string): void {
  mkdirSync(folder, { recursive: true });
  const file = path.join(folder, name);
  writeFileSync(file, `#!/bin/sh\n${script}\n`);
  chmodSync(file, 0o755);
}

function options(): StackOptions {
  return {
    dataDir: path.join(dir, 'data'),
    cacheDir: path.join(dir, 'cache'),
    kafkaPort: 1,
    controllerPort: 2,
    registryPort: 3,
    registryManagementPort: 4,
  };
}

test('parseJavaMajor reads modern and 1.x version strings', () => {
  expect(parseJavaMajor('openjdk version "17.0.15" 2025-04-15')).toBe(17);
  expect(parseJavaMajor('openjdk version "25" 2025-09-16')).toBe(25);
  expect(parseJavaMajor('java version "1.8.0_412"')).toBe(8);
  expect(parseJavaMajor('nonsense')).toBeNull();
});

test('ensureJava accepts the machine Java (17+)', async () => {
  const info = await ensureJava();
  expect(info.major).toBeGreaterThanOrEqual(17);
});

test('ensureJava refuses Java 11 with what to do instead', async () => {
  fakeExecutable(path.join(dir, 'jdk11', 'bin'), 'java', 'echo \'openjdk version "11.0.22" 2024-01-16\' >&2');
  process.env.JAVA_HOME = path.join(dir, 'jdk11');
  const err = await ensureJava().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ConfigError);
  const msg = (err as Error).message;
  expect(msg).toMatch(/Java 17 or newer/);
  expect(msg).toMatch(/is Java 11/);
  expect(msg).toContain('docker compose up');
  expect(msg).toContain('KAFKA_BROKERS');
  expect(msg).toContain('SCHEMA_REGISTRY_URL');
});

test('ensureJava explains a missing java', async () => {
  // A JAVA_HOME whose java cannot run: a broken install.
  fakeExecutable(path.join(dir, 'broken', 'bin'), 'java', 'echo "error while loading shared libraries: libjli.so" >&2; exit 127');
  process.env.JAVA_HOME = path.join(dir, 'broken');
  const err = await ensureJava().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as Error).message).toMatch(/could not run.*Install a JDK 17/s);
});

test('a Maven failure becomes an actionable UnavailableError and leaves no complete cache', async () => {
  const bin = path.join(dir, 'bin');
  fakeExecutable(bin, 'mvn', 'if [ "$1" = "-v" ]; then echo "Apache Maven 3.8.7"; exit 0; fi\necho "[ERROR] Could not transfer artifact org.apache.kafka:kafka_2.13:pom:4.1.1 from/to central: Connection refused"\nexit 1');
  process.env.PATH = `${bin}:${saved.PATH}`;
  const lines: string[] = [];
  const err = await ensureKafkaLibs(path.join(dir, 'cache'), (l) => lines.push(l)).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(UnavailableError);
  const msg = (err as Error).message;
  expect(msg).toMatch(/Maven could not fetch Kafka 4\.1\.1/);
  expect(msg).toContain('Connection refused');
  expect(msg).toContain('docker compose up');
  expect(msg).toContain('KAFKA_BROKERS');
  expect(lines.join('\n')).toMatch(/Fetching the Apache Kafka 4\.1\.1/);
});

test('an mvn that cannot run on first start says to install Maven', async () => {
  const bin = path.join(dir, 'bin');
  fakeExecutable(bin, 'mvn', 'echo "mvn: command not found" >&2; exit 127');
  process.env.PATH = `${bin}:${saved.PATH}`;
  const err = await ensureKafkaLibs(path.join(dir, 'cache'), () => {}).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as Error).message).toMatch(/`mvn` is not on PATH/);
});

test('down never signals a pid whose command line is not ours', async () => {
  const o = options();
  const stackDir = path.join(o.dataDir, 'stack');
  mkdirSync(stackDir, { recursive: true });
  // Our own pid stands in for an unrelated process that reused a stale pid.
  writeFileSync(path.join(stackDir, 'kafka.pid'), `${process.pid}\n`);
  writeFileSync(path.join(stackDir, 'registry.pid'), 'garbage\n');
  const res = await stackDown(o);
  expect(res.map((r) => r.result)).toEqual(['not-running', 'not-running']);
  expect(res.find((r) => r.name === 'kafka')!.pid).toBe(process.pid);
});

test('the CLI prints help and rejects unknown commands with a non-zero code', async () => {
  const out: string[] = [];
  const original = { log: console.log, error: console.error };
  console.log = (m: string) => void out.push(m);
  console.error = (m: string) => void out.push(m);
  try {
    expect(await stackCommand(['--help'], options())).toBe(0);
    expect(out.join('\n')).toMatch(/Usage: penumbra stack <up\|down\|status>/);
    expect(await stackCommand(['up', '--help'], options())).toBe(0);
    expect(out.join('\n')).toMatch(/Usage: penumbra stack up/);
    expect(await stackCommand(['frobnicate'], options())).toBe(2);
    expect(await stackCommand(['down', '--force'], options())).toBe(2);
    expect(await stackCommand(['down'], options())).toBe(0);
  } finally {
    console.log = original.log;
    console.error = original.error;
  }
});
