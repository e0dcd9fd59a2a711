/**
 * What `/d/` keeps in memory: single files, bounded by bytes (PENUMBRA_FILE_CACHE_BYTES), and
 * the member list of recently used archives, bounded by count — never whole unpacked archives.
 *
 * Why: the route used to keep the 32 most recent unpacked trees. An archive may unpack to
 * 200 MiB, so 32 distinct variants (or versions) requested once each pinned up to 6.4 GB.
 *
 * - A hit is a Map lookup (recency order = Map order; the least recently used file goes first).
 * - A name the archive does not hold is answered from its member list, without unpacking.
 * - A miss unpacks the archive once for all concurrent requests of it (single flight), keeps
 *   the requested file (if it fits in an eighth of the budget; larger ones are served uncached)
 *   and lets the tree go. At most `maxUnpacks` archives are unpacked at once (others wait), so
 *   misses spread over many archives cannot hold many unpacked trees at the same time either.
 */
import type { ItemTree } from '../../pipeline/shadowing/archive.ts';

export interface FileCacheStats {
  hits: number;
  misses: number;
  unpacks: number;
  bytes: number;
  files: number;
  archives: number;
}

export class FileCache {
  private readonly files = new Map<string, Buffer>();
  private readonly members = new Map<string, Set<string>>();
  private readonly inflight = new Map<string, Promise<ItemTree>>();
  private bytes = 0;
  private unpacking = 0;
  private readonly waiting: (() => void)[] = [];
  readonly stats = { hits: 0, misses: 0, unpacks: 0 };

  constructor(
    private readonly load: (sha256: string) => Promise<ItemTree>,
    private readonly maxBytes = 64 * 1024 * 1024,
    private readonly maxArchives = 64,
    private readonly maxUnpacks = 2,
  ) {}

  /** Runs `fn` holding one of `maxUnpacks` slots; a finished holder hands its slot to the next waiter. */
  private async slot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.unpacking >= this.maxUnpacks) await new Promise<void>((r) => this.waiting.push(r));
    else this.unpacking++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.unpacking--;
    }
  }

  snapshot(): FileCacheStats {
    return { ...this.stats, bytes: this.bytes, files: this.files.size, archives: this.members.size };
  }

  /** The file `rel` of the archive `sha256`, or null when it has no such member. */
  async get(sha256: string, rel: string): Promise<Buffer | null> {
    const key = `${sha256}\u0000${rel}`;
    const hit = this.files.get(key);
    if (hit) {
      this.files.delete(key);
      this.files.set(key, hit);
      this.stats.hits++;
      return hit;
    }
    const names = this.members.get(sha256);
    if (names) {
      this.members.delete(sha256);
      this.members.set(sha256, names);
      if (!names.has(rel)) return null;
    }
    this.stats.misses++;
    const tree = await this.unpack(sha256);
    const file = tree.files.get(rel) ?? null;
    if (file) this.keep(key, file);
    return file;
  }

  private unpack(sha256: string): Promise<ItemTree> {
    let p = this.inflight.get(sha256);
    if (!p) {
      this.stats.unpacks++;
      p = this.slot(() => this.load(sha256)).then((tree) => {
        this.members.delete(sha256);
        this.members.set(sha256, new Set(tree.files.keys()));
        while (this.members.size > this.maxArchives) this.members.delete(this.members.keys().next().value as string);
        return tree;
      });
      const done = () => this.inflight.delete(sha256);
      p.then(done, done);
      this.inflight.set(sha256, p);
    }
    return p;
  }

  private keep(key: string, file: Buffer): void {
    if (file.length > this.maxBytes / 8) return;
    this.files.set(key, file);
    this.bytes += file.length;
    while (this.bytes > this.maxBytes) {
      const oldest = this.files.keys().next().value as string;
      this.bytes -= this.files.get(oldest)!.length;
      this.files.delete(oldest);
    }
  }
}
