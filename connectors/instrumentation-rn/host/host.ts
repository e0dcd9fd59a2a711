/**
 * Runs a React Native bundle (e.g. a shadow's, with the library prepended) in a JavaScript engine
 * with React Native's native side played by rn-host.js: Hermes (`hermes` of the npm package
 * hermes-engine-cli, Hermes 0.12) when it runs on this machine, else Node's vm. Returns what the
 * bundle did as records: requests it made (method, url, body), log lines, and the end.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../../..');

export interface HostResponse { prefix: string; status: number; body: string; delayMs?: number }
export type HostAction = { at: number; kind: 'appState'; state: 'active' | 'background' | 'inactive' } | { at: number; kind: 'call'; fn: string; args?: unknown[] };
export interface HostRecord { kind: 'request' | 'log' | 'done' | 'uncaught'; at: number; method?: string; url?: string; body?: string | null; headers?: Record<string, string>; status?: number; message?: string }
export interface HostRun { engine: string; records: HostRecord[] }

/** Path of a runnable Hermes VM from npm, or null (with the reason in `why`). */
export function hermesBinary(): { path: string | null; why: string } {
  if (process.platform !== 'linux' || process.arch !== 'x64') return { path: null, why: `hermes-engine-cli ships linux64 binaries; this is ${process.platform}/${process.arch}` };
  const p = path.join(REPO, 'node_modules/hermes-engine-cli/linux64-bin/hermes');
  return existsSync(p) ? { path: p, why: 'ok' } : { path: null, why: `${p} is missing (npm ci installs hermes-engine-cli)` };
}

export async function runInRnHost(bundle: string, host: { responses: HostResponse[]; actions: HostAction[]; untilMs: number; expoManifest?: string }, opts: { engine?: 'hermes' | 'node' } = {}): Promise<HostRun> {
  const prelude = `globalThis.__HOST__=${JSON.stringify(host)};globalThis.__hostTick=typeof setTimeout==="function"?setTimeout:null;\n${readFileSync(path.join(HERE, 'rn-host.js'), 'utf8')}\n`;
  const epilogue = `\n${readFileSync(path.join(HERE, 'rn-host-run.js'), 'utf8')}`;
  const source = prelude + bundle + epilogue;
  const hermes = hermesBinary();
  const useHermes = (opts.engine ?? (hermes.path ? 'hermes' : 'node')) === 'hermes';
  let stdout: string;
  let engine: string;
  if (useHermes) {
    if (!hermes.path) throw new Error(`Hermes requested but not runnable: ${hermes.why}`);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'penumbra-rn-'));
    try {
      const file = path.join(dir, 'bundle.js');
      writeFileSync(file, source);
      stdout = await new Promise<string>((resolve, reject) => {
        execFile(hermes.path!, [file], { timeout: 30_000, maxBuffer: 32 * 1024 * 1024 }, (err, out, errOut) => (err ? reject(new Error(`hermes failed: ${err.message}\n${errOut}`)) : resolve(out)));
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    engine = 'hermes-engine-cli 0.12.0';
  } else {
    const lines: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const ctx = vm.createContext({ print: (s: string) => { lines.push(s); if (s.startsWith('@@{"kind":"done"')) resolve(); }, setTimeout: (f: () => void) => setImmediate(f), Date, JSON, Math, Promise, Uint8Array });
      try {
        vm.runInContext(source, ctx, { timeout: 10_000 });
      } catch (err) {
        reject(err as Error);
      }
    });
    stdout = lines.join('\n');
    engine = `node ${process.version} vm`;
  }
  const records = stdout.split('\n').filter((l) => l.startsWith('@@')).map((l) => JSON.parse(l.slice(2)) as HostRecord);
  return { engine, records };
}
