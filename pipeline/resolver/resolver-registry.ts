/**
 * Which resolvers exist and what they serve, and how many exposures each variant got.
 *
 * ResolverRegistry — writes: a ResolverStatus heartbeat (key: resolverId) to the compacted
 * penumbra.resolvers topic at once whenever a profile version this process serves changes
 * (so the console sees a rollback reach each resolver within one produce) and every 5 s;
 * reads: the same topic from the beginning (fresh group per process) to know every resolver.
 * A resolver with no heartbeat for 15 s is `stale`; one silent for an hour is forgotten (the
 * topic is compacted, so dead resolvers' last heartbeats stay there until a tombstone, which a
 * clean stop writes).
 *
 * ExposureCounter — reads: penumbra.assignments from the beginning (fresh group per process,
 * nothing committed) and counts exposures per item × variant for the item's CURRENT profile
 * version; counts of older versions are discarded when the version moves (a new config is a
 * new experiment). At-least-once input: a batch re-sent after a lost ack may count twice.
 */
import type { Kafka } from 'kafkajs';
import type { Assignment, ResolverStatus } from '../../schemas/types.generated.ts';
import type { AvroCodec } from '../kafka/registry.ts';
import { followTopic, type Follower } from '../kafka/follow.ts';
import type { SchemaName } from '../../schemas/index.ts';
import type { SchemaTypes } from '../../schemas/types.generated.ts';

export interface ResolverView {
  resolverId: string;
  host: string;
  pid: number;
  versions: Record<string, number>;
  startedAt: number;
  at: number;
  stale: boolean;
}

export interface ResolverRegistryOptions {
  self: { resolverId: string; host: string; pid: number; startedAt: number };
  versions: () => Record<string, number>;
  publish: (s: ResolverStatus) => Promise<void>;
  intervalMs?: number;
  staleMs?: number;
  forgetMs?: number;
  onError?: (err: unknown) => void;
}

export class ResolverRegistry {
  private readonly known = new Map<string, ResolverStatus>();
  private timer: NodeJS.Timeout | null = null;
  private publishing = false;
  private again = false;
  private stopped = false;
  /** Heartbeats this process managed to produce (tests and health). */
  published = 0;
  lastPublishError: string | null = null;

  constructor(private readonly opts: ResolverRegistryOptions) {}

  get staleMs(): number {
    return this.opts.staleMs ?? 15_000;
  }

  start(): void {
    this.beat();
    this.timer = setInterval(() => this.beat(), this.opts.intervalMs ?? 5000);
    this.timer.unref();
  }

  /** Publish now (a served version changed). Coalesced: at most one produce in flight, and the
   * one after it carries the newest versions. */
  beat(): void {
    if (this.stopped) return;
    if (this.publishing) {
      this.again = true;
      return;
    }
    this.publishing = true;
    const s: ResolverStatus = { ...this.opts.self, versions: this.opts.versions(), at: Date.now() };
    // Our own view needs no round trip (and stays right while Kafka is down).
    this.apply(s);
    this.opts.publish(s).then(
      () => {
        this.published++;
        this.lastPublishError = null;
      },
      (err: unknown) => {
        this.lastPublishError = err instanceof Error ? err.message : String(err);
        this.opts.onError?.(err);
      },
    ).finally(() => {
      this.publishing = false;
      if (this.again) {
        this.again = false;
        this.beat();
      }
    });
  }

  apply(s: ResolverStatus): void {
    const cur = this.known.get(s.resolverId);
    if (cur && cur.at > s.at) return;
    this.known.set(s.resolverId, s);
  }

  list(now = Date.now()): ResolverView[] {
    const out: ResolverView[] = [];
    for (const [id, s] of this.known) {
      if (now - s.at > (this.opts.forgetMs ?? 3_600_000)) {
        this.known.delete(id);
        continue;
      }
      out.push({ resolverId: s.resolverId, host: s.host, pid: s.pid, versions: s.versions, startedAt: s.startedAt, at: s.at, stale: now - s.at > this.staleMs });
    }
    return out.sort((a, b) => a.resolverId.localeCompare(b.resolverId));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

export interface ExposureView {
  itemId: string;
  profileVersion: number;
  counts: Record<string, number>;
  total: number;
  /** Epoch ms the counted profile version took effect (its updatedAt), or the first exposure seen. */
  since: number | null;
}

interface VersionCounts {
  counts: Record<string, number>;
  total: number;
  firstTs: number;
}

export class ExposureCounter {
  private readonly items = new Map<string, Map<number, VersionCounts>>();
  /** Records read from the topic (tests and health). */
  seen = 0;

  /** `current(itemId)` = the profile version this process serves and when it took effect. */
  constructor(private readonly current: (itemId: string) => { profileVersion: number; updatedAt?: number }) {}

  apply(a: Assignment): void {
    this.seen++;
    const cur = this.current(a.itemId).profileVersion;
    // Older versions are finished experiments; newer ones may arrive before our profile view
    // moves (another resolver was faster), so they are kept until the view catches up.
    if (a.profileVersion < cur) return;
    let byVersion = this.items.get(a.itemId);
    if (!byVersion) this.items.set(a.itemId, (byVersion = new Map()));
    let vc = byVersion.get(a.profileVersion);
    if (!vc) {
      byVersion.set(a.profileVersion, (vc = { counts: {}, total: 0, firstTs: a.ts }));
      for (const v of byVersion.keys()) if (v < cur) byVersion.delete(v);
    }
    vc.counts[a.variant] = (vc.counts[a.variant] ?? 0) + 1;
    vc.total++;
    if (a.ts < vc.firstTs) vc.firstTs = a.ts;
  }

  view(itemId: string): ExposureView {
    const { profileVersion, updatedAt } = this.current(itemId);
    const byVersion = this.items.get(itemId);
    if (byVersion) for (const v of byVersion.keys()) if (v < profileVersion) byVersion.delete(v);
    const vc = byVersion?.get(profileVersion);
    return { itemId, profileVersion, counts: { ...(vc?.counts ?? {}) }, total: vc?.total ?? 0, since: updatedAt ?? vc?.firstTs ?? null };
  }
}

/**
 * followTopic that never fails its caller: when Kafka is unreachable it retries with capped
 * backoff in the background until it follows or `stop()` is called. `connected` tells health.
 */
export function followInBackground<N extends SchemaName>(opts: {
  kafka: Kafka;
  codec: AvroCodec;
  topic: string;
  schema: N;
  groupPrefix: string;
  fromBeginning?: boolean;
  onRecord: (value: SchemaTypes[N]) => void;
  onError?: (err: unknown) => void;
  /** Runs before each attempt (e.g. wait until the process has registered its schemas). */
  before?: () => Promise<void>;
  /** Passed to followTopic (pipeline/kafka/follow.ts): idle wait and batching. */
  maxWaitTimeInMs?: number;
  minBytes?: number;
}): { readonly connected: boolean; ready: Promise<void>; stop(): Promise<void> } {
  let follower: Follower | null = null;
  let stopped = false;
  let connected = false;
  let wake: (() => void) | null = null;
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  const loop = (async () => {
    let delay = 200;
    while (!stopped) {
      try {
        await opts.before?.();
        if (stopped) return;
        const f = await followTopic({ ...opts, onRecord: (v) => opts.onRecord(v) });
        if (stopped) {
          await f.stop();
          return;
        }
        follower = f;
        connected = true;
        void f.ready.then(resolveReady);
        return;
      } catch (err) {
        opts.onError?.(err);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, delay).unref();
        });
        delay = Math.min(delay * 2, 5000);
      }
    }
  })();
  return {
    get connected() {
      return connected;
    },
    ready,
    async stop() {
      stopped = true;
      (wake as (() => void) | null)?.();
      // An attempt may be parked (waiting for Kafka, or inside kafkajs retries): don't wait for it.
      await Promise.race([loop.catch(() => {}), new Promise((r) => setTimeout(r, 500).unref())]);
      await (follower as Follower | null)?.stop();
    },
  };
}
