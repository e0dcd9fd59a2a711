/**
 * In-memory distribution catalog, rebuilt from the compacted penumbra.items.catalog topic.
 * Pure state + a follower; writers publish a whole CatalogEntry per item (compaction keeps the
 * latest), so a reader never needs more than the last record per key.
 */
import type { CatalogEntry, CatalogVersion } from '../../schemas/types.generated.ts';
import { NotFoundError } from '../errors.ts';

export class CatalogStore {
  private readonly items = new Map<string, CatalogEntry>();
  private readonly listeners = new Set<(e: CatalogEntry) => void>();

  apply(e: CatalogEntry): void {
    const cur = this.items.get(e.itemId);
    if (cur && cur.updatedAt > e.updatedAt) return;
    this.items.set(e.itemId, e);
    for (const l of this.listeners) l(e);
  }

  onChange(l: (e: CatalogEntry) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  list(): CatalogEntry[] {
    return [...this.items.values()].sort((a, b) => a.itemId.localeCompare(b.itemId));
  }

  find(itemId: string): CatalogEntry | undefined {
    return this.items.get(itemId);
  }

  get(itemId: string): CatalogEntry {
    const e = this.items.get(itemId);
    if (!e) throw new NotFoundError(`item ${itemId} is not in the catalog`);
    return e;
  }

  version(itemId: string, version?: string): CatalogVersion {
    const e = this.get(itemId);
    const v = e.versions.find((x) => x.version === (version ?? e.latestVersion));
    if (!v) throw new NotFoundError(`item ${itemId} has no version ${version}`);
    return v;
  }
}

/** Add or replace a version in an entry (pure): re-ingesting the same version replaces it. */
export function withVersion(entry: CatalogEntry | undefined, itemId: string, name: string, v: CatalogVersion, now: number): CatalogEntry {
  const versions = (entry?.versions ?? []).filter((x) => x.version !== v.version);
  versions.push(v);
  return { itemId, name, latestVersion: v.version, versions, updatedAt: Math.max(now, (entry?.updatedAt ?? 0) + 1) };
}
