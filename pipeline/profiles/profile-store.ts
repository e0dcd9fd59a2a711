/**
 * In-memory view of the compacted penumbra.shadow.profiles topic, with compiled evaluators.
 *
 * Reads: shadow.profiles from the beginning with a per-process consumer group (no commits:
 * every process rebuilds the full state on start). Guarantees: `ready` resolves once the view
 * has caught up with the high watermarks seen at start; profiles are compiled once per version
 * (never per request); versions only move forward. The last-known state is written to
 * `snapshotFile` so a resolver restarted while Kafka is down still answers (stale but sane).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Kafka } from 'kafkajs';
import { followTopic, type Follower } from '../kafka/follow.ts';
import type { ShadowProfile } from '../domain/types.ts';
import { safeCompile, type CompiledProfile } from '../traffic-split/traffic-split.ts';
import type { AvroCodec } from '../kafka/registry.ts';
import { profileFromRecord } from './codec.ts';

export type ProfileListener = (p: ShadowProfile) => void;

export class ProfileStore {
  private readonly profiles = new Map<string, ShadowProfile>();
  private readonly compiled = new Map<string, CompiledProfile>();
  private readonly listeners = new Set<ProfileListener>();
  private readonly waiters = new Map<string, { version: number; resolve: () => void }[]>();
  /** 'kafka' once caught up with the topic, 'snapshot' when serving the on-disk copy. */
  source: 'empty' | 'snapshot' | 'kafka' = 'empty';

  constructor(private readonly snapshotFile?: string) {}

  get(itemId: string): ShadowProfile | undefined {
    return this.profiles.get(itemId);
  }

  compiledFor(itemId: string): CompiledProfile | undefined {
    return this.compiled.get(itemId);
  }

  all(): ShadowProfile[] {
    return [...this.profiles.values()];
  }

  versions(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, p] of this.profiles) out[k] = p.profileVersion;
    return out;
  }

  onChange(l: ProfileListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Apply a profile if it is newer than what we hold. Returns true when it changed the view. */
  apply(p: ShadowProfile): boolean {
    const cur = this.profiles.get(p.itemId);
    if (cur && cur.profileVersion >= p.profileVersion) return false;
    this.profiles.set(p.itemId, p);
    this.compiled.set(p.itemId, safeCompile(p));
    for (const l of this.listeners) {
      try {
        l(p);
      } catch {
        /* a listener's failure must not stop profile propagation */
      }
    }
    const ws = this.waiters.get(p.itemId);
    if (ws) {
      const still = ws.filter((w) => (w.version <= p.profileVersion ? (w.resolve(), false) : true));
      if (still.length) this.waiters.set(p.itemId, still);
      else this.waiters.delete(p.itemId);
    }
    return true;
  }

  /** Resolves when the view holds `version` (or newer) of `itemId`, or rejects after timeout. */
  waitForVersion(itemId: string, version: number, timeoutMs = 10000): Promise<void> {
    if ((this.profiles.get(itemId)?.profileVersion ?? -1) >= version) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`profile ${itemId} v${version} not seen within ${timeoutMs} ms`)), timeoutMs);
      const list = this.waiters.get(itemId) ?? [];
      list.push({ version, resolve: () => (clearTimeout(timer), resolve()) });
      this.waiters.set(itemId, list);
    });
  }

  /**
   * Write the snapshot (tmp file + rename, no fsync: a crash loses at most the last second, which
   * Kafka replays). Asynchronous so the file system never holds the event loop: the saver runs
   * on a timer beside the profile follower, and a rollback applied while it writes must not wait
   * for the disk before the resolver serves and heartbeats it (issue 15, rollback to 10 resolvers).
   */
  async saveSnapshot(): Promise<void> {
    if (!this.snapshotFile) return;
    await mkdir(path.dirname(this.snapshotFile), { recursive: true });
    const tmp = `${this.snapshotFile}.tmp`;
    await writeFile(tmp, JSON.stringify({ savedAt: Date.now(), profiles: this.all() }));
    await rename(tmp, this.snapshotFile);
  }

  loadSnapshot(): number {
    if (!this.snapshotFile || !existsSync(this.snapshotFile)) return 0;
    try {
      const data = JSON.parse(readFileSync(this.snapshotFile, 'utf8')) as { profiles: ShadowProfile[] };
      let n = 0;
      for (const p of data.profiles) {
        // A snapshot written before control cohorts existed has no `control` on its shadows: read
        // it like a v1 profile record (control off), so a restart with Kafka down moves nobody.
        const shadows = p.shadows.map((x) => (x.control === undefined ? { ...x, control: false } : x));
        if (this.apply({ ...p, shadows })) n++;
      }
      if (n > 0 && this.source === 'empty') this.source = 'snapshot';
      return n;
    } catch {
      return 0;
    }
  }
}

/**
 * Follow the profiles topic into `store`; `ready` resolves when caught up with the end offsets
 * observed at start. The store's snapshot file is refreshed at most once a second.
 */
export async function followProfiles(opts: { kafka: Kafka; codec: AvroCodec; topic: string; store: ProfileStore; groupPrefix: string; onError?: (err: unknown) => void; maxWaitTimeInMs?: number }): Promise<Follower> {
  const { store } = opts;
  // Written at most once a second, 1 s after the first change since the last write. The timer is
  // armed by a change rather than polling every second: an idle resolver has nothing to write,
  // and ten idle resolvers' 1 s polls were ten wake-ups a second on the cores a rollback's
  // fan-out needs (issue 15 item 7). A change during a write re-arms it when the write ends.
  let dirty = false;
  let saving = false;
  let saver: NodeJS.Timeout | null = null;
  let stopped = false;
  const arm = () => {
    if (saver || stopped) return;
    saver = setTimeout(save, 1000);
    saver.unref();
  };
  const save = () => {
    saver = null;
    if (!dirty || saving) return;
    dirty = false;
    saving = true;
    store
      .saveSnapshot()
      .catch((err: unknown) => opts.onError?.(err))
      .finally(() => {
        saving = false;
        if (dirty) arm();
      });
  };
  const changed = () => {
    dirty = true;
    arm();
  };
  const f = await followTopic({
    kafka: opts.kafka,
    codec: opts.codec,
    topic: opts.topic,
    schema: 'shadow-profile',
    groupPrefix: opts.groupPrefix,
    maxWaitTimeInMs: opts.maxWaitTimeInMs,
    onRecord: (rec) => {
      if (store.apply(profileFromRecord(rec))) changed();
    },
    onError: opts.onError,
  });
  void f.ready.then(() => {
    store.source = 'kafka';
    changed();
  });
  return {
    consumer: f.consumer,
    ready: f.ready,
    async stop() {
      stopped = true;
      if (saver) clearTimeout(saver);
      await f.stop();
    },
  };
}
