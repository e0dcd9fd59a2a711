/**
 * The simulator's HTTP loop: simulated devices against a running Penumbra API.
 *
 * For each session (Poisson arrivals at `rate` sessions/s, for `durationMs`):
 *   1. GET /api/v1/resolve with the user's deviceType/country/appVersion(/userGroup);
 *   2. GET the variant's artifact (once per artifact URL and run: devices keep what they
 *      downloaded) and its runtime config (cached for the config's refreshSeconds);
 *   3. POST /api/v1/telemetry batches as the injected library would (model.ts: batchesOf), each
 *      when its flush interval ends, so event time stays within ~2 s of arrival (the windows'
 *      5 s lateness bound holds while the API keeps up), with the assignment token from resolve
 *      (and controlOf for the control), so the collector verifies them like a real device's.
 * Only the instrumented arms send telemetry, as on real devices: a shadow and its control cohort
 * (the original instrumented alike). The original is served untouched and sends nothing.
 * Effects change shadows only, so a run has a known difference between shadow and control.
 * Sessions honour the runtime config's sampleRate; `enabled: false` (rolled back) stops the
 * telemetry like the library would.
 *
 * Bounded: at most `concurrency` sessions in flight; an arrival beyond that is counted as
 * `skipped` (open-loop load: the generator never slows down to hide a slow server). At the end
 * (duration reached or stop()) sessions in flight are cut at that instant: what already
 * happened is sent with a `session end`, so every started session ends in the data.
 * 429/503 answers are retried (Retry-After, at most 3 times); event ids make retries harmless.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { ValidationError } from '../errors.ts';
import { Prng } from './prng.ts';
import {
  BASELINE, DEFAULT_DISTRIBUTIONS, batchBody, batchesOf, behaviourFor, makeUser, nextArrivalGapMs, parseEffect, planSession, truncatePlan,
  type Behaviour, type Distributions, type Effect, type SimEvent, type SimUser,
} from './model.ts';

export interface SimulationOptions {
  /** Base URL of a running Penumbra (API and device routes). */
  url: string;
  /** Item ids, or N = the first N items of the catalog (needs `token`). */
  items: string[] | number;
  /** Operator/viewer token: lists the catalog for `items: N`. Optional otherwise. */
  token?: string;
  /** Size of the user pool sessions draw from. */
  users: number;
  /** Session arrivals per second (Poisson). Each session sends ~10–20 events. */
  rate: number;
  durationMs: number;
  effects?: (Effect | string)[];
  /** Real headless-Chromium sessions through /launch/{itemId} (spread over the run). */
  browser?: number;
  seed?: string | number;
  /**
   * How often a session flushes its events (default: the runtime config's flushIntervalMs, 2 s).
   * Shorter keeps event time closer to arrival, leaving more of the windows' 5 s lateness for a
   * loaded machine.
   */
  flushIntervalMs?: number;
  /** Sessions in flight at most (default 256). */
  concurrency?: number;
  behaviour?: Partial<Behaviour>;
  distributions?: Partial<Distributions>;
  /** Chromium binary for browser sessions (default /usr/bin/chromium). */
  chromiumPath?: string;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}

export interface SimulationReport {
  runId: string;
  seed: string;
  url: string;
  items: string[];
  effects: string[];
  startedAt: number;
  endedAt: number;
  durationMs: number;
  /** Session arrivals per second asked for. */
  rate: number;
  sessions: {
    started: number;
    /**
     * Sessions that sent telemetry to their end (including ones cut at the end of the run).
     * started = completed + sampledOut + original + unsent + failed (once the run is over).
     */
    completed: number;
    /** Cut short at the end of the run (duration reached or stop()); counted in `completed` too. */
    cut: number;
    /** Resolved, but the run ended before the session's first event (nothing sent). */
    unsent: number;
    /** Arrivals dropped because `concurrency` sessions were in flight. */
    skipped: number;
    /** Shadow or control sessions the runtime config's sampleRate (or enabled: false) left silent. */
    sampledOut: number;
    /** Sessions resolved to the original: served uninstrumented, they send nothing. */
    original: number;
    failed: number;
    byVariant: Record<string, number>;
  };
  resolves: { ok: number; failed: number; byReason: Record<string, number> };
  artifacts: { downloads: number; cached: number; failed: number; bytes: number };
  batches: { sent: number; accepted: number; refused: number; failed: number };
  events: { sent: number; accepted: number; rejected: number };
  retries: number;
  browser: BrowserReport | null;
  /** First distinct error messages (at most 20). */
  errors: string[];
}

export interface BrowserReport {
  sessions: number;
  byVariant: Record<string, number>;
  clicks: number;
  failed: number;
  /** Mean wall time of one completed browser session (context, launch, clicks, flush). */
  avgSessionMs: number;
}

export interface SimulationHandle {
  /** Stop early (or wait for the end): cuts sessions in flight, resolves with the report. */
  stop(): Promise<SimulationReport>;
  /** Resolves when the run ends by itself after its duration (or after stop()). */
  readonly done: Promise<SimulationReport>;
  /** Live counters (the report in progress). */
  readonly report: SimulationReport;
}

interface RuntimeConfig {
  enabled: boolean;
  sampleRate: number;
  points: string[];
  endpoints: string[];
  flushIntervalMs: number;
  maxBatch: number;
}

interface ResolveAnswer {
  itemId: string;
  variant: string;
  controlOf?: string;
  token?: string;
  artifactUrl: string | null;
  launchUrl: string | null;
  profileVersion: number;
  reason: string;
}

/** Timers take at most 2^31 − 1 ms; longer waits (a demo running "forever") are chained. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Wait `ms`; false when `signal` aborted first. */
const sleep = async (ms: number, signal: AbortSignal): Promise<boolean> => {
  while (ms > MAX_TIMER_MS) {
    if (!(await sleepOnce(MAX_TIMER_MS, signal))) return false;
    ms -= MAX_TIMER_MS;
  }
  return sleepOnce(ms, signal);
};

const sleepOnce = (ms: number, signal: AbortSignal): Promise<boolean> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, Math.max(0, ms));
    const onAbort = (): void => {
      clearTimeout(t);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });

class HttpStatusError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function checkOptions(o: SimulationOptions): void {
  const issues: { path: string; message: string }[] = [];
  if (!/^https?:\/\//.test(o.url)) issues.push({ path: 'url', message: 'an http(s) URL' });
  if (typeof o.items === 'number' ? !(Number.isInteger(o.items) && o.items > 0) : o.items.length === 0) issues.push({ path: 'items', message: 'a list of item ids or a positive count' });
  if (!(Number.isInteger(o.users) && o.users > 0)) issues.push({ path: 'users', message: 'a positive integer' });
  if (!(o.rate > 0 && Number.isFinite(o.rate))) issues.push({ path: 'rate', message: 'sessions per second > 0' });
  if (!(o.durationMs > 0 && Number.isFinite(o.durationMs))) issues.push({ path: 'duration', message: 'seconds > 0' });
  if (o.browser !== undefined && !(Number.isInteger(o.browser) && o.browser >= 0)) issues.push({ path: 'browser', message: 'a non-negative integer' });
  if (issues.length) throw new ValidationError(`invalid simulation options: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
}

export function startSimulation(opts: SimulationOptions): SimulationHandle {
  checkOptions(opts);
  const base = opts.url.replace(/\/+$/, '');
  const seed = String(opts.seed ?? Date.now());
  const runId = `${Date.now().toString(36)}${randomUUID().slice(0, 4)}`;
  const effects = (opts.effects ?? []).map((e) => (typeof e === 'string' ? parseEffect(e) : e));
  const behaviourBase: Behaviour = { ...BASELINE, ...opts.behaviour, conversion: { ...BASELINE.conversion, ...opts.behaviour?.conversion } };
  const dist: Distributions = { ...DEFAULT_DISTRIBUTIONS, ...opts.distributions };
  const concurrency = opts.concurrency ?? 256;
  const log = opts.log ?? (() => {});
  const root = new Prng(seed);
  /** Ends the run: the duration is over, or stop() was called. */
  const abort = new AbortController();
  /** stop() only: also keeps browser sessions that have not started yet from starting. */
  const stopAll = new AbortController();
  setMaxListeners(0, abort.signal); // every waiting session listens on it
  const auth: Record<string, string> = opts.token ? { authorization: `Bearer ${opts.token}` } : {};

  const report: SimulationReport = {
    runId, seed, url: base, items: Array.isArray(opts.items) ? [...opts.items] : [], effects: effects.map((e) => e.text),
    startedAt: Date.now(), endedAt: 0, durationMs: 0, rate: opts.rate,
    sessions: { started: 0, completed: 0, cut: 0, unsent: 0, skipped: 0, sampledOut: 0, original: 0, failed: 0, byVariant: {} },
    resolves: { ok: 0, failed: 0, byReason: {} },
    artifacts: { downloads: 0, cached: 0, failed: 0, bytes: 0 },
    batches: { sent: 0, accepted: 0, refused: 0, failed: 0 },
    events: { sent: 0, accepted: 0, rejected: 0 },
    retries: 0,
    browser: null,
    errors: [],
  };
  const noteError = (msg: string): void => {
    if (report.errors.length < 20 && !report.errors.includes(msg)) report.errors.push(msg);
  };

  /** fetch with retries on 429/503 (Retry-After) and a per-request timeout. */
  async function http(path: string, init: RequestInit = {}): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      const res = await fetch(path.startsWith('http') ? path : `${base}${path}`, { ...init, signal: AbortSignal.timeout(15_000) });
      if ((res.status === 429 || res.status === 503) && attempt < 3) {
        report.retries++;
        await res.arrayBuffer().catch(() => {});
        const after = Number(res.headers.get('retry-after'));
        await new Promise((r) => setTimeout(r, Number.isFinite(after) && after > 0 ? Math.min(after, 5) * 1000 : 250 * (attempt + 1)));
        continue;
      }
      return res;
    }
  }

  async function json<T>(path: string, init: RequestInit = {}): Promise<T> {
    const res = await http(path, init);
    if (!res.ok) throw new HttpStatusError(res.status, `${init.method ?? 'GET'} ${path.replace(base, '')}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
    return (await res.json()) as T;
  }

  // ---- per-item knowledge, shared by the sessions of this run --------------------------------

  const users = new Map<number, SimUser>();
  const userAt = (i: number): SimUser => {
    let u = users.get(i);
    if (!u) users.set(i, (u = makeUser(seed, i, dist)));
    return u;
  };
  const configs = new Map<string, { at: number; value: Promise<RuntimeConfig> }>();
  /** The variant's runtime config; a control session asks for its shadow's (controlOf), like the library. */
  const runtimeConfig = (itemId: string, variant: string, controlOf?: string): Promise<RuntimeConfig> => {
    const key = `${itemId}\u0000${variant}\u0000${controlOf ?? ''}`;
    const c = configs.get(key);
    if (c) {
      // The server's refreshSeconds (30): points and sampling changes reach simulated devices too.
      if (Date.now() - c.at < 30_000) return c.value;
    }
    const value = json<{ enabled: boolean; sampleRate: number; points: { id: string }[]; endpoints: Record<string, string>; flushIntervalMs?: number; maxBatch?: number }>(
      `/api/v1/items/${encodeURIComponent(itemId)}/runtime-config?variant=${encodeURIComponent(variant)}${controlOf ? `&controlOf=${encodeURIComponent(controlOf)}` : ''}`,
    ).then(
      (rc): RuntimeConfig => {
        const points = rc.points.map((p) => p.id);
        return {
          enabled: rc.enabled, sampleRate: rc.sampleRate, points, endpoints: Object.keys(rc.endpoints ?? {}),
          flushIntervalMs: rc.flushIntervalMs ?? 2000, maxBatch: rc.maxBatch ?? 50,
        };
      },
      (err: Error): RuntimeConfig => {
        // No profile (404) or a hiccup: behave like a device with the defaults.
        if (!(err instanceof HttpStatusError && err.status === 404)) noteError(err.message);
        return { enabled: false, sampleRate: 0, points: [], endpoints: [], flushIntervalMs: 2000, maxBatch: 50 };
      },
    );
    configs.set(key, { at: Date.now(), value });
    return value;
  };

  const artifacts = new Map<string, Promise<boolean>>();
  const ensureArtifact = async (url: string): Promise<void> => {
    const have = artifacts.get(url);
    if (have) {
      report.artifacts.cached++;
      await have;
      return;
    }
    const p = (async () => {
      try {
        const res = await http(url);
        const bytes = (await res.arrayBuffer()).byteLength;
        if (!res.ok) throw new HttpStatusError(res.status, `artifact ${url}: HTTP ${res.status}`);
        report.artifacts.downloads++;
        report.artifacts.bytes += bytes;
        return true;
      } catch (err) {
        report.artifacts.failed++;
        noteError((err as Error).message);
        artifacts.delete(url); // the next session tries again
        return false;
      }
    })();
    artifacts.set(url, p);
    await p;
  };

  // ---- telemetry ---------------------------------------------------------------------------

  async function post(plan: ReturnType<typeof planSession>, events: SimEvent[]): Promise<void> {
    const body = batchBody(plan, events, Date.now());
    report.batches.sent++;
    report.events.sent += events.length;
    try {
      const res = await http('/api/v1/telemetry', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const text = await res.text();
      if (res.status === 202) {
        const r = JSON.parse(text) as { accepted: number; rejected: unknown[] };
        report.batches.accepted++;
        report.events.accepted += r.accepted;
        report.events.rejected += r.rejected.length;
        if (r.rejected.length) noteError(`telemetry: ${r.rejected.length} events rejected: ${JSON.stringify(r.rejected[0]).slice(0, 300)}`);
      } else if (res.status >= 400 && res.status < 500) {
        report.batches.refused++;
        report.events.rejected += events.length;
        noteError(`telemetry: HTTP ${res.status} ${text.slice(0, 300)}`);
      } else {
        report.batches.failed++;
        noteError(`telemetry: HTTP ${res.status} ${text.slice(0, 200)}`);
      }
    } catch (err) {
      report.batches.failed++;
      noteError(`telemetry: ${(err as Error).message}`);
    }
  }

  async function runSession(n: number): Promise<void> {
    const rng = root.fork(`session/${n}`);
    const user = userAt(rng.int(0, opts.users - 1));
    const itemId = rng.pick(report.items);
    const q = new URLSearchParams({ itemId, userId: user.userId, deviceType: user.deviceType, country: user.country, appVersion: user.appVersion });
    if (user.userGroup) q.set('userGroup', user.userGroup);
    let answer: ResolveAnswer;
    try {
      answer = await json<ResolveAnswer>(`/api/v1/resolve?${q}`);
      report.resolves.ok++;
      report.resolves.byReason[answer.reason] = (report.resolves.byReason[answer.reason] ?? 0) + 1;
    } catch (err) {
      report.resolves.failed++;
      report.sessions.failed++;
      noteError((err as Error).message);
      return;
    }
    if (!answer.artifactUrl) {
      report.sessions.failed++;
      noteError(`item ${itemId} has no artifact (unknown item, or the catalog is not loaded yet)`);
      return;
    }
    report.sessions.started++;
    report.sessions.byVariant[answer.variant] = (report.sessions.byVariant[answer.variant] ?? 0) + 1;
    const version = new URL(answer.artifactUrl, base).searchParams.get('version') ?? '0.0.0';
    await ensureArtifact(answer.artifactUrl);
    if (answer.variant === 'original') {
      // The original is served byte for byte: no library, no telemetry (as on a real device).
      report.sessions.original++;
      return;
    }
    const rc = await runtimeConfig(itemId, answer.variant, answer.controlOf);
    if (!rc.enabled || !rng.bernoulli(rc.sampleRate)) {
      report.sessions.sampledOut++;
      return;
    }
    if (abort.signal.aborted) {
      report.sessions.unsent++;
      return;
    }
    const plan = planSession(rng, {
      itemId, version, variant: answer.variant, profileVersion: answer.profileVersion, sessionId: `sim-${runId}-${n}`, userId: user.userId,
      startTs: Date.now(), points: rc.points, endpoints: rc.endpoints, behaviour: behaviourFor(answer.variant, effects, behaviourBase, user),
      token: answer.token, controlOf: answer.controlOf,
    });
    const sent = new Set<string>();
    for (const b of batchesOf(plan, opts.flushIntervalMs ?? rc.flushIntervalMs, rc.maxBatch)) {
      if (!(await sleep(b.sendAt - Date.now(), abort.signal))) break;
      await post(plan, b.events);
      for (const e of b.events) sent.add(e.id);
    }
    if (abort.signal.aborted && sent.size < plan.events.length) {
      const now = Date.now();
      if (plan.input.startTs + plan.durationMs > now) report.sessions.cut++;
      const rest = truncatePlan(plan, now).events.filter((e) => !sent.has(e.id));
      for (let i = 0; i < rest.length; i += rc.maxBatch) await post(plan, rest.slice(i, i + rc.maxBatch));
    }
    report.sessions.completed++;
  }

  // ---- the run ------------------------------------------------------------------------------

  const inflight = new Set<Promise<void>>();
  const done = (async (): Promise<SimulationReport> => {
    if (!Array.isArray(opts.items)) {
      const list = await json<{ items: { itemId: string }[] }>('/api/v1/items', { headers: auth });
      report.items = list.items.map((i) => i.itemId).sort().slice(0, opts.items);
      if (report.items.length === 0) throw new ValidationError('the catalog is empty: ingest an item first (penumbra ingest …)', [{ path: 'items', message: 'no items' }]);
    }
    const startedAt = Date.now();
    report.startedAt = startedAt;
    const endAt = startedAt + opts.durationMs;
    log('simulation started', { runId, seed, items: report.items, rate: opts.rate, durationMs: opts.durationMs, effects: report.effects });

    let browser: Promise<BrowserReport> | null = null;
    if (opts.browser && opts.browser > 0) {
      const { runBrowserSessions } = await import('./browser.ts');
      browser = runBrowserSessions({
        base, items: report.items, sessions: opts.browser, durationMs: opts.durationMs, signal: stopAll.signal, seed, runId,
        user: (i) => makeUser(`${seed}/browser`, i, dist), chromiumPath: opts.chromiumPath, log, noteError,
      });
    }

    const arrivals = root.fork('arrivals');
    let next = startedAt;
    let n = 0;
    for (;;) {
      next += nextArrivalGapMs(arrivals, opts.rate);
      if (next >= endAt) break;
      if (!(await sleep(next - Date.now(), abort.signal))) break;
      if (inflight.size >= concurrency) {
        report.sessions.skipped++;
        continue;
      }
      const p = runSession(n++).catch((err: Error) => {
        report.sessions.failed++;
        noteError(err.message);
      });
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }
    await sleep(endAt - Date.now(), abort.signal);
    abort.abort();
    await Promise.all([...inflight]);
    if (browser) report.browser = await browser;
    report.endedAt = Date.now();
    report.durationMs = report.endedAt - startedAt;
    log('simulation ended', { sessions: report.sessions, events: report.events });
    return report;
  })();
  done.catch(() => {});

  return {
    report,
    done,
    async stop() {
      stopAll.abort();
      abort.abort();
      return done;
    },
  };
}

/** Run for `durationMs` and resolve with the report. */
export function runSimulation(opts: SimulationOptions): Promise<SimulationReport> {
  return startSimulation(opts).done;
}
