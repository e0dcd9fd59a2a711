/**
 * Golden archive pairs: versions of a sample item kept as plain folders under
 * ./fixtures/<item>/<version>/ (reviewable in diffs). Tests pack them into real archives and read
 * them back through the ingest's archive reader, so the features are computed on exactly what
 * an ingest would see. The history generator (pipeline/history-generator) starts from them too.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readArchiveBuffer, writeArchive, type ArchiveFormat, type ItemTree } from '../shadowing/archive.ts';
import { parseManifest } from '../shadowing/manifest.ts';

export const CHANGE_FIXTURES_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

export function versionFiles(item: string, version: string): Map<string, Buffer> {
  const root = path.join(CHANGE_FIXTURES_DIR, item, version);
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

export function versionArchive(item: string, version: string, format: ArchiveFormat = 'zip'): Promise<Buffer> {
  const files = versionFiles(item, version);
  return writeArchive({ manifest: parseManifest(files.get('manifest.json') as Buffer), files }, format);
}

/** A fixture version as the ingest reads it: packed, then read back through every archive check. */
export async function versionTree(item: string, version: string, format: ArchiveFormat = 'zip'): Promise<ItemTree> {
  return readArchiveBuffer(await versionArchive(item, version, format));
}
