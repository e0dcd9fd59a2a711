/**
 * Process plumbing of the HTTP latency benches (bench/resolver.bench.ts, bench/expo.bench.ts):
 * every party runs as a process of its own — ours (bench/api-server.ts), the bare peer and the
 * Express reference (bench/http-peer.ts), and a fresh load generator per round
 * (bench/http-load.ts) — so no two share an event loop and the bench process only orchestrates.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface LoadResult {
  requests: number;
  ok: number;
  /** Answers other than 200 (e.g. 429): a run with any is not a valid measurement. */
  other: number;
  errors: number;
  statuses: Record<string, number>;
  /** Successful requests per second. */
  rps: number;
  p50: number;
  p99: number;
  max: number;
  /** CPU the server process used per answered request during the round (µs; null without /proc). */
  serverCpuUs?: number | null;
}

/** Median of the rounds' server CPU per request, "n/a" when it could not be read. */
export function cpuPerRequest(rounds: LoadResult[]): string {
  const xs = rounds.map((x) => x.serverCpuUs).filter((x): x is number => typeof x === 'number');
  return xs.length === rounds.length && xs.length > 0 ? `${Math.round(median(xs))} µs` : 'n/a';
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Spawns `node [nodeArgs] --import tsx script args` and resolves once it prints its first JSON line. */
export function spawnServer<T extends { url: string }>(script: string, args: string[], opts: { env?: NodeJS.ProcessEnv; nodeArgs?: string[]; timeoutMs?: number; cwd?: string } = {}): Promise<{ child: ChildProcess; info: T }> {
  // cwd: another checkout's root runs ITS code (bench/resolver-variants.ts: `main` beside this branch).
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', script, ...args], {
    cwd: opts.cwd ?? ROOT, env: opts.env ?? { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 180_000);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve({ child, info: JSON.parse(line) as T });
      } catch {
        child.kill('SIGKILL');
        reject(new Error(`${script} printed ${line}`));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${script} ended (${code ?? signal}) before listening: ${err.trim()}`));
    });
  });
}

/** Stops children with SIGTERM (SIGKILL after 15 s) and waits for their exit. */
export async function stopAll(children: ChildProcess[]): Promise<void> {
  await Promise.all(children.map((c) => {
    if (c.exitCode !== null || c.signalCode !== null) return undefined;
    return new Promise<void>((r) => {
      const kill = setTimeout(() => c.kill('SIGKILL'), 15_000);
      c.once('exit', () => (clearTimeout(kill), r()));
      c.kill('SIGTERM');
    });
  }));
}

/** One round of closed-loop load from a fresh generator process (bench/http-load.ts). */
export async function runLoad(specFile: string, spec: { base: string; paths: string[]; headers: Record<string, string>[]; connections: number; durationMs: number }, serverPid?: number): Promise<LoadResult> {
  const before = cpuSeconds(serverPid);
  const r = await generate(specFile, spec);
  const after = cpuSeconds(serverPid);
  r.serverCpuUs = before === null || after === null || r.ok === 0 ? null : ((after - before) * 1e6) / r.ok;
  return r;
}

function generate(specFile: string, spec: { base: string; paths: string[]; headers: Record<string, string>[]; connections: number; durationMs: number }): Promise<LoadResult> {
  writeFileSync(specFile, JSON.stringify(spec));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/http-load.ts', '--spec', specFile], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), spec.durationMs + 60_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`load generator exited ${code ?? signal}: ${err.trim().slice(-500)}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as LoadResult);
      } catch {
        reject(new Error(`load generator printed no result: ${out.slice(-300)} ${err.slice(-300)}`));
      }
    });
  });
}

/**
 * CPU seconds (user + system) a process has used so far, from /proc (Linux); null elsewhere.
 * Read before and after a round, it gives the server's CPU per request — a figure the machine's
 * other load does not distort the way it distorts req/s and latency.
 */
export function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100 on Linux)
  } catch {
    return null;
  }
}

/** Throws unless every request of every round was answered 200 (a partial run publishes nothing). */
export function assertComplete(label: string, rounds: LoadResult[]): void {
  for (const x of rounds) {
    if (x.other > 0 || x.errors > 0 || x.ok === 0) throw new Error(`incomplete run (${label}): ${x.ok} × 200, ${x.other} other answers ${JSON.stringify(x.statuses)}, ${x.errors} connection errors`);
  }
}
