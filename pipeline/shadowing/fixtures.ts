/**
 * Sample items kept as plain folders under ./fixtures/<name>/ (so they are reviewable in diffs),
 * and helpers that turn them into trees and archives for tests, demos and benchmarks.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ShadowConfig } from '../domain/types.ts';
import type { ApplyContext } from './apply.ts';
import { readArchiveBuffer, writeArchive, type ArchiveFormat, type ItemTree } from './archive.ts';
import { parseManifest } from './manifest.ts';

export const FIXTURES_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
export const FIXTURE_NAMES = ['multi-page-web', 'js-entry', 'api-refs'] as const;
export type FixtureName = (typeof FIXTURE_NAMES)[number];

/** Files of a fixture folder, keyed by POSIX relative path, sorted. */
export function fixtureFiles(name: string): Map<string, Buffer> {
  const root = path.join(FIXTURES_DIR, name);
  const out: [string, Buffer][] = [];
  const walk = (dir: string): void => {
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      const abs = path.join(dir, d.name);
      if (d.isDirectory()) walk(abs);
      else if (d.isFile()) out.push([path.relative(root, abs).split(path.sep).join('/'), readFileSync(abs)]);
    }
  };
  walk(root);
  return new Map(out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** A fixture as an (unvalidated) tree, straight from disk. */
export function fixtureTree(name: string): ItemTree {
  const files = fixtureFiles(name);
  return { manifest: parseManifest(files.get('manifest.json') as Buffer), files };
}

/** A fixture packed as an archive (deterministic). */
export function fixtureArchive(name: string, format: ArchiveFormat): Promise<Buffer> {
  return writeArchive(fixtureTree(name), format);
}

/** A fixture as readArchive would return it: packed, then read back through all the checks. */
export async function loadFixture(name: string, format: ArchiveFormat = 'zip'): Promise<ItemTree> {
  return readArchiveBuffer(await fixtureArchive(name, format));
}

/** The fixed library source and shadow configs the golden files were made with. */
export const TEST_LIBRARY = { fileName: 'penumbra-instrument-1.0.0.js', source: '/* test lib */' };

export function goldenConfig(name: string, _tree: ItemTree): ShadowConfig {
  const endpoints: Record<string, string> =
    name === 'api-refs'
      ? { api: 'https://shadow-api.example.com/v1', payments: 'https://shadow-pay.example.com/' }
      : name === 'js-entry'
        ? { api: 'https://shadow-api.example.com/v2/' }
        : { api: 'https://shadow-api.example.com/v1' };
  return {
    name: 'checkout-v2',
    instrumentation: {
      capture: { performance: true, errors: true, usage: true },
      points: [{ id: 'buy', selector: '#buy', event: 'click' }],
      sampleRate: 1,
    },
    endpoints,
    traffic: { percentage: 20, match: 'all', rules: [] },
  };
}

export function goldenContext(tree: ItemTree): ApplyContext {
  return {
    library: TEST_LIBRARY,
    identity: { itemId: tree.manifest.id, version: tree.manifest.version, variant: 'checkout-v2', profileVersion: 3 },
    runtimeConfigUrl: `http://127.0.0.1:7070/api/v1/items/${tree.manifest.id}/runtime-config?variant=checkout-v2`,
    telemetryUrl: 'http://127.0.0.1:7070/api/v1/telemetry',
  };
}
