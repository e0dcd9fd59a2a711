/**
 * Java check and the one-time fetch of the broker classpath and the registry app from Maven
 * Central into the cache folder. A filled cache is recognised by a `.complete` marker written last,
 * so an interrupted fetch is redone rather than run half-populated.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, UnavailableError } from '../pipeline/errors.ts';
import { runStreaming } from './procs.ts';

export const KAFKA_VERSION = '4.1.1';
/** 3.1+ and 3.3.x are built for Java 21; 3.0.9 is the newest line that runs on Java 17. */
export const REGISTRY_VERSION = '3.0.9';
export const MIN_JAVA = 17;

export const ALTERNATIVES =
  'Alternatives: run `docker compose up` from the repository root, or point Penumbra at an existing ' +
  'cluster by setting KAFKA_BROKERS (e.g. host:9092) and SCHEMA_REGISTRY_URL ' +
  '(e.g. http://host:8081/apis/ccompat/v7), which skips the local stack entirely.';

export interface JavaInfo {
  java: string;
  major: number;
  version: string;
}

export function javaBinary(): string {
  const home = process.env.JAVA_HOME;
  if (home) {
    const candidate = path.join(home, 'bin', process.platform === 'win32' ? 'java.exe' : 'java');
    if (existsSync(candidate)) return candidate;
  }
  return 'java';
}

function execOut(cmd: string, args: string[]): Promise<{ ok: boolean; out: string; err?: unknown }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 20000, env: process.env }, (err, stdout, stderr) => {
      resolve({ ok: !err, out: `${stdout}${stderr}`, err: err ?? undefined });
    });
  });
}

/** `java -version` prints `version "17.0.15"` or, for 8 and older, `version "1.8.0_412"`. */
export function parseJavaMajor(versionOutput: string): number | null {
  const m = /version "(\d+)(?:\.(\d+))?[^"]*"/.exec(versionOutput);
  if (!m) return null;
  const first = Number(m[1]);
  return first === 1 && m[2] ? Number(m[2]) : first;
}

export async function ensureJava(): Promise<JavaInfo> {
  const java = javaBinary();
  const res = await execOut(java, ['-version']);
  const major = res.ok ? parseJavaMajor(res.out) : null;
  if (!res.ok || major === null) {
    throw new ConfigError(
      `The local Kafka + schema registry stack needs Java ${MIN_JAVA} or newer, but \`${java} -version\` ` +
        `${res.ok ? 'printed no version we understand' : 'could not run'}. Install a JDK ${MIN_JAVA} ` +
        '(e.g. `apt-get install openjdk-17-jre-headless`, `brew install openjdk@17`) and put it on PATH or set JAVA_HOME. ' +
        ALTERNATIVES,
    );
  }
  if (major < MIN_JAVA) {
    throw new ConfigError(
      `The local stack needs Java ${MIN_JAVA} or newer (Kafka ${KAFKA_VERSION} brokers require it), but ` +
        `\`${java}\` is Java ${major}. Install a JDK ${MIN_JAVA} and put it first on PATH or set JAVA_HOME to it. ` +
        ALTERNATIVES,
    );
  }
  return { java, major, version: res.out.split('\n')[0]?.trim() ?? '' };
}

async function ensureMaven(): Promise<string> {
  const res = await execOut('mvn', ['-v']);
  if (!res.ok) {
    throw new ConfigError(
      'The first start of the local stack downloads Kafka and the Apicurio registry from Maven Central ' +
        'with Maven, but `mvn` is not on PATH. Install Maven 3.8+ (e.g. `apt-get install maven`, ' +
        '`brew install maven`) and run again; later starts reuse the cache and need no Maven. ' +
        ALTERNATIVES,
    );
  }
  return 'mvn';
}

export function kafkaPomPath(): string {
  return fileURLToPath(new URL('./maven/kafka-pom.xml', import.meta.url));
}

/** Editing the pom (a new Kafka version) must not reuse jars collected for the old one. */
export function kafkaLibsDir(cacheDir: string): string {
  const hash = createHash('sha256').update(readFileSync(kafkaPomPath())).digest('hex').slice(0, 12);
  return path.join(cacheDir, `kafka-${KAFKA_VERSION}-${hash}`, 'libs');
}

export function registryDir(cacheDir: string): string {
  return path.join(cacheDir, `apicurio-registry-${REGISTRY_VERSION}`);
}

function dirBytes(dir: string): number {
  let total = 0;
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e);
    try {
      const st = statSync(p);
      total += st.isDirectory() ? dirBytes(p) : st.size;
    } catch {
      /* files come and go while Maven works */
    }
  }
  return total;
}

const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;

/**
 * Maven in batch mode prints one line per artifact but nothing while a 100 MB archive streams in,
 * so a poll of the local repository folder shows the bytes arriving.
 */
function watchBytes(dir: string, label: string, log: (l: string) => void): () => void {
  const start = dirBytes(dir);
  let last = start;
  const timer = setInterval(() => {
    const now = dirBytes(dir);
    if (now !== last) {
      last = now;
      log(`  … ${label}: ${mb(now - start)} downloaded so far`);
    }
  }, 3000);
  timer.unref();
  return () => clearInterval(timer);
}

function mavenFailure(what: string, tail: string[], cause?: unknown): UnavailableError {
  const relevant = tail.filter((l) => /ERROR|Could not|resolve|transfer|connect/i.test(l)).slice(-8);
  return new UnavailableError(
    `Maven could not fetch ${what} from Maven Central. Check the network or proxy (Maven reads ` +
      '~/.m2/settings.xml for proxies and mirrors), then run again; the jars are cached after the first ' +
      `success. ${ALTERNATIVES}` +
      (relevant.length ? `\nMaven said:\n${relevant.join('\n')}` : ''),
    cause,
    false,
  );
}

const mavenLineFilter = (log: (l: string) => void) => (line: string) => {
  if (/Download(ing|ed) from|BUILD|ERROR/.test(line)) log(`  mvn: ${line.replace(/^\[INFO\] /, '')}`);
};

export async function ensureKafkaLibs(cacheDir: string, log: (l: string) => void): Promise<string> {
  const libs = kafkaLibsDir(cacheDir);
  const marker = path.join(libs, '..', '.complete');
  if (existsSync(marker)) return libs;
  const mvn = await ensureMaven();
  rmSync(path.dirname(libs), { recursive: true, force: true });
  mkdirSync(libs, { recursive: true });
  log(`Fetching the Apache Kafka ${KAFKA_VERSION} broker classpath from Maven Central into ${libs} (one time) …`);
  const stop = watchBytes(path.join(homedir(), '.m2', 'repository', 'org'), 'Kafka jars', log);
  let res: { code: number; tail: string[] };
  try {
    res = await runStreaming(
      mvn,
      ['-B', '-f', kafkaPomPath(), 'dependency:copy-dependencies', '-DincludeScope=runtime', `-DoutputDirectory=${libs}`],
      { onLine: mavenLineFilter(log), logFile: path.join(path.dirname(libs), 'maven.log') },
    );
  } catch (err) {
    throw mavenFailure(`Kafka ${KAFKA_VERSION}`, [], err);
  } finally {
    stop();
  }
  const jars = existsSync(libs) ? readdirSync(libs).filter((f) => f.endsWith('.jar')) : [];
  if (res.code !== 0 || !jars.some((j) => j.startsWith('kafka_2.13'))) throw mavenFailure(`Kafka ${KAFKA_VERSION}`, res.tail);
  writeFileSync(marker, `${new Date().toISOString()} ${jars.length} jars\n`);
  log(`Kafka classpath ready: ${jars.length} jars.`);
  return libs;
}

function findRunnerJar(dir: string, depth = 3): string | null {
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return null;
  }
  // Layout differs across 3.x releases: `*-runner.jar` (3.0), `quarkus-app/quarkus-run.jar` (3.1–3.2),
  // `quarkus-run.jar` at the root (3.3); accept all so a version bump needs no code change.
  for (const e of entries) if (e.endsWith('-runner.jar') || e === 'quarkus-run.jar') return path.join(dir, e);
  if (depth === 0) return null;
  for (const e of entries) {
    const p = path.join(dir, e);
    try {
      if (statSync(p).isDirectory()) {
        const found = findRunnerJar(p, depth - 1);
        if (found) return found;
      }
    } catch {
      /* ignore unreadable entries */
    }
  }
  return null;
}

/** Returns the path of the registry's runnable jar, fetching and unpacking it on first use. */
export async function ensureRegistry(cacheDir: string, log: (l: string) => void): Promise<string> {
  const dir = registryDir(cacheDir);
  const marker = path.join(dir, '.complete');
  if (existsSync(marker)) {
    const jar = findRunnerJar(path.join(dir, 'app'));
    if (jar) return jar;
  }
  const mvn = await ensureMaven();
  rmSync(dir, { recursive: true, force: true });
  const download = path.join(dir, 'download');
  const app = path.join(dir, 'app');
  mkdirSync(download, { recursive: true });
  mkdirSync(app, { recursive: true });
  const artifact = `io.apicurio:apicurio-registry-app:${REGISTRY_VERSION}:tar.gz:all`;
  log(`Fetching Apicurio Registry ${REGISTRY_VERSION} (${artifact}, about 108 MB) from Maven Central (one time) …`);
  const stop = watchBytes(path.join(homedir(), '.m2', 'repository', 'io', 'apicurio'), 'Apicurio Registry', log);
  let res: { code: number; tail: string[] };
  try {
    res = await runStreaming(
      mvn,
      ['-B', '-f', kafkaPomPath(), 'dependency:copy', `-Dartifact=${artifact}`, `-DoutputDirectory=${download}`],
      { onLine: mavenLineFilter(log), logFile: path.join(dir, 'maven.log') },
    );
  } catch (err) {
    throw mavenFailure(`Apicurio Registry ${REGISTRY_VERSION}`, [], err);
  } finally {
    stop();
  }
  const tgz = existsSync(download) ? readdirSync(download).find((f) => f.endsWith('.tar.gz')) : undefined;
  if (res.code !== 0 || !tgz) throw mavenFailure(`Apicurio Registry ${REGISTRY_VERSION}`, res.tail);
  log(`Unpacking ${tgz} …`);
  const untar = await runStreaming('tar', ['-xzf', path.join(download, tgz), '-C', app]);
  if (untar.code !== 0) {
    throw new UnavailableError(`Could not unpack ${path.join(download, tgz)}: ${untar.tail.join(' ')}. Delete ${dir} and run again.`, undefined, false);
  }
  const jar = findRunnerJar(app);
  if (!jar) {
    throw new UnavailableError(`The Apicurio archive in ${download} holds no runner jar; delete ${dir} and run again.`, undefined, false);
  }
  // The archive is only needed to unpack; dropping it halves the cache.
  rmSync(download, { recursive: true, force: true });
  writeFileSync(marker, `${new Date().toISOString()} ${path.relative(dir, jar)}\n`);
  log(`Apicurio Registry ready: ${jar}`);
  return jar;
}

/** S3Proxy 4.x runs on Java 17 (its pom's java.version); the jar-with-dependencies is one 55 MB file. */
export const S3PROXY_VERSION = '4.1.0';

export function s3proxyJar(cacheDir: string): string {
  return path.join(cacheDir, `s3proxy-${S3PROXY_VERSION}`, `s3proxy-${S3PROXY_VERSION}-jar-with-dependencies.jar`);
}

/** Returns the S3Proxy jar, fetching `org.gaul:s3proxy:<v>:jar:jar-with-dependencies` on first use. */
export async function ensureS3Proxy(cacheDir: string, log: (l: string) => void): Promise<string> {
  const jar = s3proxyJar(cacheDir);
  const dir = path.dirname(jar);
  const marker = path.join(dir, '.complete');
  if (existsSync(marker) && existsSync(jar)) return jar;
  const mvn = await ensureMaven();
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const artifact = `org.gaul:s3proxy:${S3PROXY_VERSION}:jar:jar-with-dependencies`;
  log(`Fetching S3Proxy ${S3PROXY_VERSION} (${artifact}, about 55 MB) from Maven Central (one time) …`);
  const stop = watchBytes(path.join(homedir(), '.m2', 'repository', 'org', 'gaul'), 'S3Proxy', log);
  let res: { code: number; tail: string[] };
  try {
    res = await runStreaming(
      mvn,
      ['-B', '-f', kafkaPomPath(), 'dependency:copy', `-Dartifact=${artifact}`, `-DoutputDirectory=${dir}`],
      { onLine: mavenLineFilter(log), logFile: path.join(dir, 'maven.log') },
    );
  } catch (err) {
    throw mavenFailure(`S3Proxy ${S3PROXY_VERSION}`, [], err);
  } finally {
    stop();
  }
  if (res.code !== 0 || !existsSync(jar)) throw mavenFailure(`S3Proxy ${S3PROXY_VERSION}`, res.tail);
  writeFileSync(marker, `${new Date().toISOString()} ${path.basename(jar)}\n`);
  log(`S3Proxy ready: ${jar}`);
  return jar;
}
