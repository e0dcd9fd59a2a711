/**
 * Last-known catalog on disk, beside the ProfileStore's profile snapshot, so a resolver
 * restarted while Kafka is down can still build launch URLs (the entry file comes from the
 * catalog version). Written at most once a second after a change, atomically (temp file named
 * per process, then rename), so several processes sharing a data folder never read a torn file.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CatalogEntry } from '../../schemas/types.generated.ts';
import type { CatalogStore } from '../ingest/catalog-store.ts';

/** Snapshot files live per data folder and topic prefix, like the profile snapshot. */
export function snapshotPaths(dataDir: string, topicPrefix: string): { profiles: string; catalog: string } {
  const dir = path.join(dataDir, 'resolver');
  const tag = topicPrefix || 'default';
  // Same expression as createPenumbra's ProfileStore so both compositions share the file.
  return { profiles: path.join(dir, `profiles-${tag}.json`), catalog: path.join(dir, `catalog-${tag}.json`) };
}

export function loadCatalogSnapshot(file: string, catalog: CatalogStore): number {
  if (!existsSync(file)) return 0;
  try {
    const data = JSON.parse(readFileSync(file, 'utf8')) as { items: CatalogEntry[] };
    for (const e of data.items) catalog.apply(e);
    return data.items.length;
  } catch {
    return 0;
  }
}

export function saveCatalogSnapshot(file: string, catalog: CatalogStore): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ savedAt: Date.now(), items: catalog.list() }));
  renameSync(tmp, file);
}

/**
 * Keep `file` in step with `catalog` (debounced: written at most once a second, 1 s after the
 * first change since the last write); returns a stop function that flushes. The timer is armed
 * by a change, not polled every second: an idle resolver has nothing to write, and ten idle
 * resolvers' 1 s polls were ten wake-ups a second on the cores a rollback's fan-out needs
 * (issue 15 item 7).
 */
export function keepCatalogSnapshot(file: string, catalog: CatalogStore, onError?: (err: unknown) => void): () => void {
  let dirty = false;
  let timer: NodeJS.Timeout | null = null;
  const save = () => {
    timer = null;
    if (!dirty) return;
    dirty = false;
    try {
      saveCatalogSnapshot(file, catalog);
    } catch (err) {
      onError?.(err);
    }
  };
  const off = catalog.onChange(() => {
    dirty = true;
    if (!timer) {
      timer = setTimeout(save, 1000);
      timer.unref();
    }
  });
  return () => {
    off();
    if (timer) clearTimeout(timer);
    save();
  };
}
