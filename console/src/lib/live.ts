/**
 * Live state from the server-sent event stream `GET /api/v1/stream?ticket=…[&itemId=…]`
 * (EventSource cannot send an Authorization header; the ticket is single-use and short-lived,
 * so every connection attempt asks its source for a fresh URL). Reads the events `profile`, `metrics`,
 * `alert`, `resolvers`, `exposures`, `comparison` (a shadow vs its control arm), `unverified`;
 * keeps a bounded buffer of recent metric
 * windows per item × variant (upserted by window start, so late re-emissions replace),
 * the newest alerts, resolver versions and exposure counts.
 *
 * Reconnects itself with capped exponential backoff + jitter instead of relying on the
 * browser's fixed retry, and resets the backoff once a connection opens. Implements the Svelte
 * store contract (`subscribe`), so components read it as `$live` and hold no logic.
 */
import type { Alert, Comparison, Exposures, MetricWindow, ResolverView, ShadowConfigView, UnverifiedCounts } from './types.ts';

export type LiveStatus = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface LiveSnapshot {
  status: LiveStatus;
  /** Delay before the next reconnect attempt, while reconnecting. */
  retryInMs: number | null;
  attempts: number;
  lastEventAt: number | null;
  /** itemId → variant → windows sorted by windowStart (bounded). */
  windows: Record<string, Record<string, MetricWindow[]>>;
  /** itemId → shadow → latest comparison with its control arm. */
  comparisons: Record<string, Record<string, Comparison>>;
  /** itemId → telemetry kept out of every comparison (no valid assignment token). */
  unverified: Record<string, UnverifiedCounts>;
  /** Newest first (bounded). */
  alerts: Alert[];
  resolvers: ResolverView[];
  exposures: Record<string, Exposures>;
  profiles: Record<string, ShadowConfigView>;
}

export interface LiveLimits { maxWindows: number; maxAlerts: number }
export const DEFAULT_LIMITS: LiveLimits = { maxWindows: 720, maxAlerts: 200 };

export function emptySnapshot(): LiveSnapshot {
  return { status: 'idle', retryInMs: null, attempts: 0, lastEventAt: null, windows: {}, comparisons: {}, unverified: {}, alerts: [], resolvers: [], exposures: {}, profiles: {} };
}

/** Insert or replace (same windowStart and windowSize) keeping order and the bound. */
export function upsertWindow(list: readonly MetricWindow[], w: MetricWindow, max: number): MetricWindow[] {
  const out = list.slice();
  const i = out.findIndex((x) => x.windowStart === w.windowStart && x.windowSize === w.windowSize);
  if (i >= 0) out[i] = w;
  else {
    let j = out.length;
    while (j > 0 && out[j - 1].windowStart > w.windowStart) j--;
    out.splice(j, 0, w);
  }
  return out.length > max ? out.slice(out.length - max) : out;
}

/** Newest-first alert feed: the same alert id (fired → resolved) replaces its earlier entry. */
export function pushAlert(list: readonly Alert[], a: Alert, max: number): Alert[] {
  const out = [a, ...list.filter((x) => x.id !== a.id)];
  return out.length > max ? out.slice(0, max) : out;
}

/**
 * Pure reducer: one SSE event (name + raw `data` text) → next snapshot. Unknown events and
 * unparsable data leave the state unchanged (the stream may carry events added later).
 */
export function applyEvent(s: LiveSnapshot, event: string, raw: string, now: number, limits: LiveLimits = DEFAULT_LIMITS): LiveSnapshot {
  let data: unknown;
  try { data = JSON.parse(raw); } catch { return s; }
  if (!data || typeof data !== 'object') return s;
  const d = data as Record<string, unknown>;
  const base = { ...s, lastEventAt: now };
  switch (event) {
    case 'metrics': {
      const w = d as unknown as MetricWindow;
      if (typeof w.itemId !== 'string' || typeof w.variant !== 'string' || typeof w.windowStart !== 'number') return s;
      const perItem = { ...(s.windows[w.itemId] ?? {}) };
      perItem[w.variant] = upsertWindow(perItem[w.variant] ?? [], w, limits.maxWindows);
      return { ...base, windows: { ...s.windows, [w.itemId]: perItem } };
    }
    case 'comparison': {
      const itemId = d.itemId, variant = d.variant;
      if (typeof itemId !== 'string' || typeof variant !== 'string' || !d.comparison) return s;
      return { ...base, comparisons: { ...s.comparisons, [itemId]: { ...(s.comparisons[itemId] ?? {}), [variant]: d.comparison as Comparison } } };
    }
    case 'unverified': {
      const itemId = d.itemId, u = d.unverified as UnverifiedCounts | undefined;
      if (typeof itemId !== 'string' || !u || typeof u.total !== 'number') return s;
      return { ...base, unverified: { ...s.unverified, [itemId]: u } };
    }
    case 'alert': {
      const a = d as unknown as Alert;
      if (typeof a.id !== 'string') return s;
      return { ...base, alerts: pushAlert(s.alerts, a, limits.maxAlerts) };
    }
    case 'resolvers':
      return Array.isArray(d.resolvers) ? { ...base, resolvers: d.resolvers as ResolverView[] } : s;
    case 'exposures': {
      const e = d as unknown as Exposures;
      if (typeof e.itemId !== 'string' || !e.counts) return s;
      return { ...base, exposures: { ...s.exposures, [e.itemId]: e } };
    }
    case 'profile': {
      const p = d as unknown as ShadowConfigView;
      if (typeof p.itemId !== 'string') return s;
      return { ...base, profiles: { ...s.profiles, [p.itemId]: p } };
    }
    default:
      return s;
  }
}

/** Capped exponential backoff with ±20% jitter: attempt 0 → ~base, doubling up to max. */
export function backoffDelay(attempt: number, baseMs = 1000, maxMs = 30000, random: () => number = Math.random): number {
  const raw = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.round(raw * (0.8 + 0.4 * random()));
}

export interface EventSourceLike {
  onopen: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  addEventListener(type: string, fn: (ev: { data: string }) => void): void;
  close(): void;
}

export interface LiveOptions {
  createEventSource?: (url: string) => EventSourceLike;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (h: unknown) => void;
  now?: () => number;
  random?: () => number;
  limits?: Partial<LiveLimits>;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export const STREAM_EVENTS = ['profile', 'metrics', 'alert', 'resolvers', 'exposures', 'comparison', 'unverified'] as const;

/** Where to connect: a URL, or a function giving a fresh one per attempt (a new stream ticket). */
export type StreamSource = string | (() => Promise<string>);

export class LiveStore {
  private state: LiveSnapshot = emptySnapshot();
  private readonly subs = new Set<(s: LiveSnapshot) => void>();
  private es: EventSourceLike | null = null;
  private timer: unknown = null;
  private key: string | null = null;
  private source: StreamSource | null = null;
  /** Bumped by every teardown: an attempt still waiting for its URL then knows it is stale. */
  private generation = 0;
  private readonly opts: Required<Omit<LiveOptions, 'limits'>> & { limits: LiveLimits };

  constructor(opts: LiveOptions = {}) {
    this.opts = {
      createEventSource: opts.createEventSource ?? ((url) => new EventSource(url) as unknown as EventSourceLike),
      setTimer: opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms)),
      clearTimer: opts.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>)),
      now: opts.now ?? Date.now,
      random: opts.random ?? Math.random,
      limits: { ...DEFAULT_LIMITS, ...opts.limits },
      baseDelayMs: opts.baseDelayMs ?? 1000,
      maxDelayMs: opts.maxDelayMs ?? 30000,
    };
  }

  /** Svelte store contract. */
  subscribe(fn: (s: LiveSnapshot) => void): () => void {
    this.subs.add(fn);
    fn(this.state);
    return () => { this.subs.delete(fn); };
  }

  get snapshot(): LiveSnapshot { return this.state; }

  /**
   * (Re)connect; a different `key` (default: the URL itself) replaces the connection — e.g. the
   * signed-in operator or the item changed. Same key while connected: nothing happens.
   */
  connect(source: StreamSource, key: string = typeof source === 'string' ? source : 'stream'): void {
    if (this.key === key && (this.es || this.timer !== null)) return;
    this.teardown();
    this.key = key;
    this.source = source;
    this.set({ ...this.state, attempts: 0, retryInMs: null });
    this.open();
  }

  disconnect(): void {
    this.teardown();
    this.key = null;
    this.source = null;
    this.set({ ...this.state, status: 'closed', retryInMs: null });
  }

  /** Feed an event by hand (used for the initial metrics backfill and by tests). */
  ingest(event: string, data: unknown): void {
    this.set(applyEvent(this.state, event, typeof data === 'string' ? data : JSON.stringify(data), this.opts.now(), this.opts.limits));
  }

  private open(): void {
    const source = this.source;
    if (source === null) return;
    this.set({ ...this.state, status: this.state.attempts > 0 ? 'reconnecting' : 'connecting' });
    if (typeof source === 'string') return this.attach(source);
    const gen = this.generation;
    source().then(
      (url) => { if (gen === this.generation) this.attach(url); },
      () => { if (gen === this.generation) this.scheduleReconnect(); },
    );
  }

  private attach(url: string): void {
    let es: EventSourceLike;
    try {
      es = this.opts.createEventSource(url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.es = es;
    es.onopen = () => { if (this.es === es) this.set({ ...this.state, status: 'open', attempts: 0, retryInMs: null }); };
    es.onerror = () => {
      if (this.es !== es) return;
      es.close();
      this.es = null;
      this.scheduleReconnect();
    };
    for (const name of STREAM_EVENTS) {
      es.addEventListener(name, (ev) => {
        if (this.es === es) this.set(applyEvent(this.state, name, ev.data, this.opts.now(), this.opts.limits));
      });
    }
  }

  private scheduleReconnect(): void {
    const delay = backoffDelay(this.state.attempts, this.opts.baseDelayMs, this.opts.maxDelayMs, this.opts.random);
    this.set({ ...this.state, status: 'reconnecting', attempts: this.state.attempts + 1, retryInMs: delay });
    this.timer = this.opts.setTimer(() => { this.timer = null; this.open(); }, delay);
  }

  private teardown(): void {
    this.generation++;
    if (this.timer !== null) { this.opts.clearTimer(this.timer); this.timer = null; }
    if (this.es) { this.es.close(); this.es = null; }
  }

  private set(s: LiveSnapshot): void {
    if (s === this.state) return;
    this.state = s;
    for (const fn of this.subs) fn(s);
  }
}
