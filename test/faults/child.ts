/**
 * Real processes for the fault tests: `node bin/penumbra.js start` as a child against the
 * running Kafka and registry (external-cluster variables, so it never starts or stops a stack),
 * with its own data folder, port and topic prefix. Killing it with SIGKILL gives the process no
 * chance to flush, commit or close anything — exactly the crash the guarantees are about.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { DuckDBInstance } from '@duckdb/node-api';
import { waitFor as poll, type Probe } from '../wait-for.ts';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const TOKENS = { viewer: 'fault-viewer-token-0123456789', operator: 'fault-operator-token-0123456789', admin: 'fault-admin-token-0123456789' } as const;
export const auth = (role: keyof typeof TOKENS) => ({ authorization: `Bearer ${TOKENS[role]}` });

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Environment of one Penumbra deployment under test: a data folder, port and prefix of its own. */
export async function faultEnv(name: string, extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const port = await freePort();
  return {
    KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
    SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7',
    HOST: '127.0.0.1',
    PORT: String(port),
    PENUMBRA_PUBLIC_URL: `http://127.0.0.1:${port}`,
    PENUMBRA_CONTENT_PORT: '0',
    PENUMBRA_DATA_DIR: mkdtempSync(path.join(tmpdir(), `penumbra-fault-${name}-`)),
    PENUMBRA_TOPIC_PREFIX: `t-fault-${name}-${randomUUID().slice(0, 8)}.`,
    PENUMBRA_PARTITIONS: '2',
    PENUMBRA_LOG_LEVEL: 'warn',
    PENUMBRA_TOKENS: Object.entries(TOKENS).map(([role, token]) => `${role}:${role}:${token}`).join(','),
    ...extra,
  };
}

export interface PenumbraChild {
  url: string;
  proc: ChildProcess;
  pid: number;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL: no shutdown hook, no flush, no commit. */
  kill9(): Promise<void>;
  /** SIGTERM and wait (clean stop: final snapshot, DuckDB closed); SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started: ChildProcess[] = [];
/** SIGKILL every child still running (afterAll), by pid. */
export function killAll(): void {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

/** Spawn `penumbra start`; resolves once it prints its URL, rejects if it exits first. */
export function spawnPenumbra(env: Record<string, string>, opts: { timeoutMs?: number; waitReady?: boolean } = {}): Promise<PenumbraChild> & { child: ChildProcess } {
  const childEnv: Record<string, string> = {};
  // Only what the child needs: an unknown PENUMBRA_* variable would stop it (config check).
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG']) if (process.env[k]) childEnv[k] = process.env[k]!;
  Object.assign(childEnv, env);
  const proc = spawn(process.execPath, [path.join(REPO, 'bin/penumbra.js'), 'start'], { cwd: REPO, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(proc);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-200_000)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const handle = (url: string): PenumbraChild => ({
    url,
    proc,
    pid: proc.pid!,
    stdout: () => out,
    stderr: () => err,
    exited,
    async kill9() {
      proc.kill('SIGKILL');
      await exited;
    },
    async stop(graceMs = 30_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      proc.kill('SIGTERM');
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  });
  const p = new Promise<PenumbraChild>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`penumbra start did not come up within ${opts.timeoutMs ?? 90_000} ms:\n${out.slice(-2000)}\n${err.slice(-3000)}`));
    }, opts.timeoutMs ?? 90_000);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`penumbra start exited (${code ?? signal}) before serving:\n${out.slice(-2000)}\n${err.slice(-3000)}`));
    });
    const poll = setInterval(() => {
      const m = /Penumbra is running: (http:\/\/\S+)/.exec(out);
      if (!m) return;
      clearInterval(poll);
      clearTimeout(timer);
      resolve(handle(m[1]));
    }, 50);
    void exited.then(() => clearInterval(poll));
  });
  return Object.assign(p, { child: proc });
}

/** `waitFor` with the fault tests' defaults: a child process takes longer (60 s, every 250 ms). */
export function waitFor<T>(what: string, fn: Probe<T>, timeoutMs = 60_000, everyMs = 250): Promise<T> {
  return poll(what, fn, timeoutMs, everyMs);
}

export interface Health {
  status: string;
  checks: Record<string, Record<string, unknown> & { status: string; detail?: string }>;
  profileVersions?: Record<string, number>;
}

export async function health(url: string, timeoutMs = 15_000): Promise<Health> {
  const res = await fetch(`${url}/api/v1/health`, { signal: AbortSignal.timeout(timeoutMs) });
  return (await res.json()) as Health;
}

/**
 * Ids of this run's events stored in a stopped deployment's warehouse (every row, duplicates
 * included: callers compare the count with the distinct count — a real check, since
 * telemetry_events has no primary key and the sink de-duplicates ids itself).
 */
export async function storedEventIds(dbPath: string, run: string): Promise<string[]> {
  const db = await DuckDBInstance.create(dbPath);
  const conn = await db.connect();
  try {
    return (await conn.runAndReadAll(`SELECT id FROM telemetry_events WHERE id LIKE '${run}-%'`)).getRowObjectsJS().map((r) => String(r.id));
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}
