/**
 * Start a real Penumbra (createPenumbra) for an integration test: its own topic prefix, a fresh
 * data folder, port 0 and three tokens (viewer, operator, admin) — against the broker and
 * registry the global setup provides.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, type PenumbraConfig } from '../pipeline/config/config.ts';
import { createPenumbra, type Penumbra, type PenumbraOptions } from '../pipeline/app/penumbra.ts';
import { uniquePrefix } from './stack-helpers.ts';

export const TOKENS = {
  viewer: 'viewer-token-0123456789abcdef',
  operator: 'operator-token-0123456789abcdef',
  admin: 'admin-token-0123456789abcdef0123',
} as const;

export interface TestPenumbra {
  p: Penumbra;
  url: string;
  cfg: PenumbraConfig;
  dataDir: string;
  prefix: string;
  auth(role: keyof typeof TOKENS): Record<string, string>;
  stop(): Promise<void>;
}

export function testConfig(name: string, env: Record<string, string> = {}): { cfg: PenumbraConfig; dataDir: string; prefix: string } {
  const dataDir = env.PENUMBRA_DATA_DIR ?? mkdtempSync(path.join(tmpdir(), `penumbra-${name}-`));
  const prefix = env.PENUMBRA_TOPIC_PREFIX ?? uniquePrefix(name);
  const cfg = loadConfig({
    KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
    SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7',
    PORT: '0',
    // Item pages' own origin: any free port (PORT+1 may be taken when a test pins PORT).
    PENUMBRA_CONTENT_PORT: '0',
    PENUMBRA_DATA_DIR: dataDir,
    PENUMBRA_TOPIC_PREFIX: prefix,
    PENUMBRA_PARTITIONS: '2',
    PENUMBRA_LOG_LEVEL: 'warn',
    PENUMBRA_TOKENS: `viewer:viewer:${TOKENS.viewer},operator:operator:${TOKENS.operator},admin:admin:${TOKENS.admin}`,
    ...env,
  });
  return { cfg, dataDir, prefix };
}

export async function startTestPenumbra(name: string, env: Record<string, string> = {}, opts: PenumbraOptions = {}): Promise<TestPenumbra> {
  const { cfg, dataDir, prefix } = testConfig(name, env);
  // PENUMBRA_PUBLIC_URL must be known before the server binds port 0: pin it when not given so
  // shadows built by this instance are reproducible within the test.
  const p = await createPenumbra(cfg, opts);
  return {
    p,
    url: p.url,
    cfg,
    dataDir,
    prefix,
    auth: (role) => ({ authorization: `Bearer ${TOKENS[role]}` }),
    stop: () => p.stop(),
  };
}

/** Multipart body for POST /api/v1/items. */
export function uploadForm(archive: Buffer, shadowConfig?: unknown, fileName = 'item.zip'): FormData {
  const fd = new FormData();
  if (shadowConfig !== undefined) fd.append('shadowConfig', typeof shadowConfig === 'string' ? shadowConfig : JSON.stringify(shadowConfig));
  fd.append('item', new Blob([new Uint8Array(archive)]), fileName);
  return fd;
}
