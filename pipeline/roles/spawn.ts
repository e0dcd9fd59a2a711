/**
 * Start `penumbra start --role …` as a child process (tests and benches that need processes
 * of their own: the multi-process test, the rollback bench). Resolves once the child printed
 * its `{"event":"listening",…}` line; stop() sends SIGTERM (SIGKILL after 10 s), kill() is -9.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface ChildPenumbra {
  url: string;
  contentUrl: string | null;
  resolverId: string;
  roles: string;
  pid: number;
  proc: ChildProcess;
  /** Last ~100 KB of the child's stderr (its JSON log lines). */
  stderr(): string;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

/** `nodeArgs` go before bin/penumbra.js (e.g. `--cpu-prof`; the child's env carries no NODE_OPTIONS). */
export function spawnPenumbra(env: Record<string, string>, roles: string, timeoutMs = 60_000, nodeArgs: string[] = []): Promise<ChildPenumbra> {
  const childEnv: Record<string, string> = {};
  // Only what the child needs: an unknown PENUMBRA_* variable would stop it (config check).
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG']) if (process.env[k]) childEnv[k] = process.env[k]!;
  Object.assign(childEnv, env);
  const proc = spawn(process.execPath, [...nodeArgs, path.join(REPO, 'bin/penumbra.js'), 'start', '--role', roles, '--no-console', '--no-stack-stop'], { cwd: REPO, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 200_000) err = err.slice(-100_000);
  });
  const exited = () => proc.exitCode !== null || proc.signalCode !== null;
  const ended = (signal: NodeJS.Signals) =>
    new Promise<void>((res) => {
      if (exited()) return res();
      const kill = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      proc.once('exit', () => (clearTimeout(kill), res()));
      proc.kill(signal);
    });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`penumbra --role ${roles} did not start within ${timeoutMs} ms: ${err.slice(-2000)}`));
    }, timeoutMs);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`penumbra --role ${roles} exited with ${code}: ${(err + out).slice(-3000)}`));
    });
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{"event":"listening"'));
      if (!line) return;
      clearTimeout(timer);
      proc.removeAllListeners('exit');
      proc.stdout!.removeAllListeners('data');
      proc.stdout!.resume();
      const info = JSON.parse(line) as { url: string; contentUrl: string | null; resolverId: string; roles: string; pid: number };
      resolve({ ...info, proc, stderr: () => err, stop: () => ended('SIGTERM'), kill: () => ended('SIGKILL') });
    });
  });
}
