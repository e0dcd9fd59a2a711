/**
 * Helpers shared by the resolver's integration tests and benchmarks: a config on its own topic
 * prefix and data folder, resolver-only child processes, and a fixture ingested with a shadow.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { loadConfig, type PenumbraConfig } from '../config/config.ts';
import type { FeatureContext } from '../app/features.ts';
import { ingestDigitalItem } from '../ingest/ingest-service.ts';
import { fixtureArchive } from '../shadowing/fixtures.ts';
import type { ShadowConfig } from '../domain/types.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '../..');

export const ADMIN_TOKEN = 'resolver-admin-token-0123456789';
export const VIEWER_TOKEN = 'resolver-viewer-token-0123456789';

export function resolverEnv(name: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
    SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7',
    PORT: '0',
    PENUMBRA_DATA_DIR: mkdtempSync(path.join(tmpdir(), `penumbra-${name}-`)),
    PENUMBRA_TOPIC_PREFIX: `t-${name}-${randomUUID().slice(0, 8)}.`,
    PENUMBRA_PARTITIONS: '2',
    PENUMBRA_LOG_LEVEL: 'error',
    PENUMBRA_TOKENS: `admin:admin:${ADMIN_TOKEN},viewer:viewer:${VIEWER_TOKEN}`,
    ...extra,
  };
}

export function configFrom(env: Record<string, string>): PenumbraConfig {
  return loadConfig(env);
}

export interface ChildResolver {
  url: string;
  resolverId: string;
  pid: number;
  proc: ChildProcess;
  stderr(): string;
  stop(): Promise<void>;
}

/**
 * Start `run-resolver.ts` in a child process with `env`; resolves once it listens. `nodeArgs` go
 * before the script (e.g. `--cpu-prof`): the child's env holds only PATH/HOME/TMPDIR/LANG and
 * `env`, so NODE_OPTIONS would not reach it.
 */
export function spawnResolver(env: Record<string, string>, timeoutMs = 30_000, nodeArgs: string[] = []): Promise<ChildResolver> {
  const childEnv: Record<string, string> = {};
  // Only what the child needs: an unknown PENUMBRA_* variable would stop it (config check).
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG']) if (process.env[k]) childEnv[k] = process.env[k]!;
  Object.assign(childEnv, env);
  const proc = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', path.join(HERE, 'run-resolver.ts')], { cwd: REPO, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 200_000) err = err.slice(-100_000);
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`resolver child did not start within ${timeoutMs} ms: ${err.slice(-2000)}`));
    }, timeoutMs);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`resolver child exited with ${code}: ${err.slice(-2000)}`));
    });
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{"event":"listening"'));
      if (!line) return;
      clearTimeout(timer);
      proc.removeAllListeners('exit');
      const info = JSON.parse(line) as { url: string; resolverId: string; pid: number };
      resolve({
        ...info,
        proc,
        stderr: () => err,
        stop: () =>
          new Promise<void>((res) => {
            if (proc.exitCode !== null || proc.signalCode !== null) return res();
            const kill = setTimeout(() => proc.kill('SIGKILL'), 10_000);
            proc.once('exit', () => (clearTimeout(kill), res()));
            proc.kill('SIGTERM');
          }),
      });
    });
  });
}

/** Shadow config of the multi-page-web fixture: `percentage`% of android/ios users. */
export function mobileShadow(percentage = 50): ShadowConfig {
  return {
    name: 'checkout-v2',
    instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [{ id: 'buy', selector: '#buy', event: 'click' }], sampleRate: 1 },
    endpoints: { api: 'https://shadow-api.example.com/v1' },
    traffic: { percentage, match: 'all', rules: [{ attribute: 'deviceType', op: 'in', values: ['android', 'ios'] }] },
  };
}

export const FIXTURE_ITEM = 'com.example.multipage';

export async function ingestFixture(ctx: FeatureContext, shadow: ShadowConfig = mobileShadow()): Promise<{ itemId: string; profileVersion: number }> {
  const r = await ingestDigitalItem(ctx.ingest, { archive: await fixtureArchive('multi-page-web', 'zip'), shadowConfig: shadow, actor: { name: 'test', role: 'admin' }, requestId: randomUUID() });
  return { itemId: r.entry.itemId, profileVersion: r.profile.profileVersion };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
