/**
 * What simulated devices do, as pure generators over a seeded Prng: who the users are
 * (device type, country, app version drawn once per user), what one session emits (session
 * start/end, navigation timings, endpoint requests with log-normal latency, errors at a base
 * rate, usage of the configured points) and how the events are cut into telemetry batches the
 * way the injected library sends them. No clock, no I/O: the HTTP loop (runner.ts) passes the
 * start time in and sends what comes out.
 *
 * Effects (`--effect shadow:latency=+20%`) change a shadow's behaviour only — never the
 * original's or the control's (the shadow's baseline) — so a simulated run has a known true
 * difference between shadow and control for the statistics to find:
 *
 *   <target>:<metric>=<change>
 *   target  `shadow` (every non-original variant) or one shadow name
 *   metric  `latency` (request latency), `errors` (share of sessions with an error),
 *           `conversion` (every point) or `conversion:<pointId>`
 *   change  `+20%` relative (latency × 1.2; a rate × 1.2), `+15ms` (latency only, added),
 *           `+1pp` percentage points (rates only: 2 % → 3 % of sessions); negative allowed
 *
 * A target may be narrowed to users with an attribute value (issue 14: an effect that lives in
 * one segment only, which a global comparison dilutes): `shadow[deviceType=android]:errors=+20pp`,
 * `checkout-a[country=DE,FR]:conversion=+10pp`; attributes deviceType, country, appVersion,
 * userGroup.
 */
import { ValidationError } from '../errors.ts';
import { Prng } from './prng.ts';

export type EffectMetric = 'latency' | 'errors' | 'conversion';

export interface Effect {
  /** 'shadow' = every variant except the original, else one shadow name. */
  target: string;
  metric: EffectMetric;
  /** For conversion: one point id, or undefined for every point. */
  point?: string;
  unit: '%' | 'ms' | 'pp';
  amount: number;
  /** The text it was parsed from. */
  text: string;
  /** Only for users whose attribute is one of the values (`target[attr=v1,v2]`). */
  when?: { attribute: EffectAttribute; values: string[] };
}

export type EffectAttribute = 'deviceType' | 'country' | 'appVersion' | 'userGroup';
const EFFECT_ATTRIBUTES: readonly string[] = ['deviceType', 'country', 'appVersion', 'userGroup'];

const EFFECT_RE = /^([A-Za-z0-9._-]+)(?:\[([A-Za-z]+)=([A-Za-z0-9._,-]+)\])?:(latency|errors|conversion)(?::([A-Za-z0-9._-]+))?=([+-]?\d+(?:\.\d+)?)(%|ms|pp)$/;

/** Parse one `--effect` value; throws ValidationError (path `effect`) with the grammar. */
export function parseEffect(text: string): Effect {
  const m = EFFECT_RE.exec(text.trim());
  const grammar = 'expected <shadow|shadowName>[[attribute=value,…]]:<latency|errors|conversion[:point]>=<±N%|±Nms|±Npp>, e.g. shadow:latency=+20% or shadow[deviceType=android]:errors=+1pp';
  if (!m) throw new ValidationError(`invalid effect "${text}": ${grammar}`, [{ path: 'effect', message: grammar }]);
  const [, target, whenAttr, whenValues, metric, point, amount, unit] = m;
  if (whenAttr !== undefined && !EFFECT_ATTRIBUTES.includes(whenAttr)) {
    throw new ValidationError(`invalid effect "${text}": the condition's attribute must be one of ${EFFECT_ATTRIBUTES.join(', ')}`, [{ path: 'effect', message: grammar }]);
  }
  if (target === 'original' || target === 'control') {
    throw new ValidationError(`invalid effect "${text}": effects apply to shadows only (the control is their baseline, the original is not measured)`, [{ path: 'effect', message: 'target must be "shadow" or a shadow name' }]);
  }
  if (point !== undefined && metric !== 'conversion') throw new ValidationError(`invalid effect "${text}": only conversion takes a :point`, [{ path: 'effect', message: grammar }]);
  if (unit === 'ms' && metric !== 'latency') throw new ValidationError(`invalid effect "${text}": ms applies to latency only`, [{ path: 'effect', message: grammar }]);
  if (unit === 'pp' && metric === 'latency') throw new ValidationError(`invalid effect "${text}": pp applies to rates (errors, conversion)`, [{ path: 'effect', message: grammar }]);
  const when = whenAttr === undefined ? {} : { when: { attribute: whenAttr as EffectAttribute, values: whenValues.split(',').filter(Boolean) } };
  return { target, metric: metric as EffectMetric, point, unit: unit as Effect['unit'], amount: Number(amount), text, ...when };
}

/** How a variant behaves: the baseline, changed by the effects that target it. */
export interface Behaviour {
  /** Median session length ms (log-normal, σ 0.5, clamped to [1 s, 20 s]). */
  sessionMedianMs: number;
  /** Requests per session: uniform integer in [min, max]. */
  requestsMin: number;
  requestsMax: number;
  /** Request latency: log-normal median (ms) and σ; then × latencyFactor + latencyAddMs. */
  latencyMedianMs: number;
  latencySigma: number;
  latencyFactor: number;
  latencyAddMs: number;
  /** Probability that a session sees at least one error (the window's errorRate). */
  errorSessionRate: number;
  /** Probability that a session uses a point, per point id ('*' for points not listed). */
  conversion: Record<string, number>;
  /** Endpoint keys requests go to when the runtime config lists none. */
  endpoints: string[];
}

export const BASELINE: Behaviour = {
  sessionMedianMs: 4000,
  requestsMin: 2,
  requestsMax: 8,
  latencyMedianMs: 120,
  latencySigma: 0.6,
  latencyFactor: 1,
  latencyAddMs: 0,
  errorSessionRate: 0.02,
  conversion: { '*': 0.3 },
  endpoints: ['api'],
};

const clamp01 = (x: number): number => Math.min(1, Math.max(0, x));

function changeRate(rate: number, e: Effect): number {
  return clamp01(e.unit === 'pp' ? rate + e.amount / 100 : rate * (1 + e.amount / 100));
}

/** Whether `e` changes `variant` for `user` (a conditional effect needs the user's attributes). */
export function effectApplies(e: Effect, variant: string, user?: Partial<Record<EffectAttribute, string>>): boolean {
  if (variant === 'original' || variant === 'control') return false;
  if (e.target !== 'shadow' && e.target !== variant) return false;
  if (e.when) {
    const v = user?.[e.when.attribute];
    return v !== undefined && e.when.values.includes(v);
  }
  return true;
}

/** The behaviour of `variant` for `user`: `base` with every effect that targets them applied, in order. */
export function behaviourFor(variant: string, effects: readonly Effect[], base: Behaviour = BASELINE, user?: Partial<Record<EffectAttribute, string>>): Behaviour {
  const b: Behaviour = { ...base, conversion: { ...base.conversion } };
  for (const e of effects) {
    if (!effectApplies(e, variant, user)) continue;
    if (e.metric === 'latency') {
      if (e.unit === 'ms') b.latencyAddMs += e.amount;
      else b.latencyFactor *= 1 + e.amount / 100;
    } else if (e.metric === 'errors') {
      b.errorSessionRate = changeRate(b.errorSessionRate, e);
    } else {
      const keys = e.point ? [e.point] : Object.keys(b.conversion);
      for (const k of keys) b.conversion[k] = changeRate(b.conversion[k] ?? b.conversion['*'] ?? 0, e);
    }
  }
  return b;
}

export function conversionRate(b: Behaviour, point: string): number {
  return b.conversion[point] ?? b.conversion['*'] ?? 0;
}

// ---- users ---------------------------------------------------------------------------------

export interface Distributions {
  deviceType: Record<string, number>;
  country: Record<string, number>;
  appVersion: Record<string, number>;
  /** '' = no user group. */
  userGroup: Record<string, number>;
}

export const DEFAULT_DISTRIBUTIONS: Distributions = {
  deviceType: { android: 45, ios: 30, windows: 12, macos: 8, linux: 5 },
  country: { US: 30, DE: 15, IN: 15, GB: 10, FR: 10, BR: 10, JP: 10 },
  appVersion: { '1.0.0': 10, '1.2.0': 20, '1.4.2': 40, '2.0.0': 30 },
  userGroup: { '': 90, beta: 10 },
};

export interface SimUser {
  userId: string;
  deviceType: string;
  country: string;
  appVersion: string;
  userGroup?: string;
}

/**
 * User `index` of a run seeded with `seed`: the same seed and index give the same user (id and
 * attributes), so repeated runs hit the same buckets.
 */
export function makeUser(seed: string | number, index: number, dist: Distributions = DEFAULT_DISTRIBUTIONS): SimUser {
  const r = new Prng(`${seed}/user/${index}`);
  const group = r.weighted(dist.userGroup);
  const u: SimUser = {
    userId: `sim-u-${String(seed).replace(/[^A-Za-z0-9_-]/g, '').slice(0, 16) || 'x'}-${index}`,
    deviceType: r.weighted(dist.deviceType),
    country: r.weighted(dist.country),
    appVersion: r.weighted(dist.appVersion),
  };
  if (group !== '') u.userGroup = group;
  return u;
}

// ---- sessions ------------------------------------------------------------------------------

export interface SimEvent {
  id: string;
  type: 'perf' | 'request' | 'error' | 'usage' | 'session';
  name: string;
  ts: number;
  value?: number;
  attrs?: Record<string, string>;
}

export interface SessionInput {
  itemId: string;
  version: string;
  variant: string;
  profileVersion: number;
  sessionId: string;
  userId: string;
  /** Epoch ms the session starts (the runner's clock). */
  startTs: number;
  /** Usage point ids from the runtime config (the control gets its shadow's points). */
  points: string[];
  /** Assignment token from resolve, sent with every batch (the collector verifies it). */
  token?: string;
  /** Variant control: the shadow whose control cohort the session is in. */
  controlOf?: string;
  /** Endpoint keys from the runtime config (empty → behaviour.endpoints). */
  endpoints: string[];
  behaviour: Behaviour;
}

export interface SessionPlan {
  input: SessionInput;
  durationMs: number;
  /** Sorted by ts; `session start` first, `session end` last. */
  events: SimEvent[];
  /** What was drawn (tests and reports): */
  hasError: boolean;
  converted: string[];
}

const r1 = (x: number): number => Math.round(x * 10) / 10;

/** One session's events, drawn from `rng` (fork a stream per session for stable draws). */
export function planSession(rng: Prng, input: SessionInput): SessionPlan {
  const b = input.behaviour;
  const t0 = input.startTs;
  const durationMs = Math.round(Math.min(20_000, Math.max(1000, rng.logNormal(b.sessionMedianMs, 0.5))));
  const events: SimEvent[] = [];
  let k = 0;
  const add = (e: Omit<SimEvent, 'id'>): void => void events.push({ id: `${input.sessionId}-${k++}`, ...e });
  const at = (): number => t0 + 50 + Math.floor(rng.float() * (durationMs - 100));

  add({ type: 'session', name: 'start', ts: t0, attrs: { lib: 'simulator' } });
  // Navigation timings, as the library reports them (ms from navigation start).
  const ttfb = rng.logNormal(80, 0.5);
  const dcl = ttfb + rng.logNormal(300, 0.4);
  const load = dcl + rng.logNormal(200, 0.5);
  const fcp = ttfb + rng.logNormal(250, 0.4);
  for (const [name, v] of [['ttfb', ttfb], ['domContentLoaded', dcl], ['first-contentful-paint', fcp], ['load', load]] as const) {
    add({ type: 'perf', name, ts: t0 + Math.min(durationMs - 1, Math.round(v)), value: r1(v) });
  }

  const endpoints = input.endpoints.length > 0 ? input.endpoints : b.endpoints;
  const nRequests = rng.int(b.requestsMin, b.requestsMax);
  for (let i = 0; i < nRequests; i++) {
    const latency = rng.logNormal(b.latencyMedianMs, b.latencySigma) * b.latencyFactor + b.latencyAddMs;
    const key = rng.pick(endpoints);
    add({ type: 'request', name: key, ts: at(), value: r1(Math.max(0.1, latency)), attrs: { status: '200', path: `/${key}/${rng.pick(['list', 'get', 'save'])}`, method: rng.pick(['GET', 'GET', 'POST']) } });
  }

  // Errors: a session has at least one with probability errorSessionRate (the errorRate metric).
  const hasError = rng.bernoulli(b.errorSessionRate);
  if (hasError) {
    const n = rng.bernoulli(0.3) ? 2 : 1;
    for (let i = 0; i < n; i++) {
      const ts = at();
      if (rng.bernoulli(0.5)) {
        const key = rng.pick(endpoints);
        const latency = rng.logNormal(b.latencyMedianMs, b.latencySigma) * b.latencyFactor + b.latencyAddMs;
        add({ type: 'request', name: key, ts, value: r1(Math.max(0.1, latency)), attrs: { status: '500', path: `/${key}/save`, method: 'POST' } });
        add({ type: 'error', name: `request failed: ${key}`, ts, attrs: { status: '500', path: `/${key}/save`, method: 'POST' } });
      } else {
        add({ type: 'error', name: rng.pick(['Uncaught TypeError: x is undefined', 'Uncaught (in promise) Error: timeout', 'Uncaught ReferenceError: cart is not defined']), ts, attrs: { kind: 'error', source: 'js/app.js:42:7', stack: 'at app.js:42:7' } });
      }
    }
  }

  const converted: string[] = [];
  for (const point of input.points) {
    if (!rng.bernoulli(conversionRate(b, point))) continue;
    converted.push(point);
    const clicks = rng.bernoulli(0.2) ? 2 : 1;
    for (let i = 0; i < clicks; i++) add({ type: 'usage', name: point, ts: at(), attrs: { selector: `#${point}` } });
  }

  // Core Web Vitals, reported by the library when the page goes away (drawn last, so the draws
  // above stay the same stream as before vitals existed): LCP after the first paint, CLS mostly
  // small, INP only after an interaction.
  const lcp = fcp + rng.logNormal(400, 0.5);
  const cls = rng.bernoulli(0.4) ? 0 : rng.logNormal(0.04, 0.9);
  add({ type: 'perf', name: 'lcp', ts: t0 + durationMs, value: r1(lcp) });
  if (converted.length > 0) add({ type: 'perf', name: 'inp', ts: t0 + durationMs, value: r1(rng.logNormal(120, 0.6)) });
  add({ type: 'perf', name: 'cls', ts: t0 + durationMs, value: Math.round(cls * 10000) / 10000 });
  add({ type: 'session', name: 'end', ts: t0 + durationMs, value: durationMs });
  // Stable order: by ts, then by creation (ids are numbered in creation order).
  const order = new Map(events.map((e, i) => [e, i]));
  events.sort((a, c) => a.ts - c.ts || order.get(a)! - order.get(c)!);
  return { input, durationMs, events, hasError, converted };
}

export interface TelemetryBatchBody {
  itemId: string;
  version: string;
  variant: string;
  profileVersion: number;
  sessionId: string;
  userId: string;
  sentAt: number;
  controlOf?: string;
  token?: string;
  events: SimEvent[];
}

export interface PlannedBatch {
  /** Epoch ms the batch is due: the end of its flush interval, or the session end. */
  sendAt: number;
  events: SimEvent[];
}

/**
 * Cut a session into the batches the library would send: every `flushIntervalMs` the events
 * seen so far (at most `maxBatch` per request), and the rest at session end (pagehide).
 */
export function batchesOf(plan: SessionPlan, flushIntervalMs = 2000, maxBatch = 50): PlannedBatch[] {
  const t0 = plan.input.startTs;
  const end = t0 + plan.durationMs;
  const out: PlannedBatch[] = [];
  let current: SimEvent[] = [];
  let due = t0 + flushIntervalMs;
  const flush = (sendAt: number): void => {
    for (let i = 0; i < current.length; i += maxBatch) out.push({ sendAt, events: current.slice(i, i + maxBatch) });
    current = [];
  };
  for (const e of plan.events) {
    while (e.ts >= due && due < end) {
      flush(due);
      due += flushIntervalMs;
    }
    current.push(e);
  }
  flush(end);
  return out.filter((b) => b.events.length > 0);
}

/** The JSON body of one batch (docs/ARCHITECTURE.md "Telemetry batch"). */
export function batchBody(plan: SessionPlan, events: SimEvent[], sentAt: number): TelemetryBatchBody {
  const i = plan.input;
  return {
    itemId: i.itemId, version: i.version, variant: i.variant, ...(i.controlOf ? { controlOf: i.controlOf } : {}), profileVersion: i.profileVersion,
    sessionId: i.sessionId, userId: i.userId, sentAt, ...(i.token ? { token: i.token } : {}), events,
  };
}

/**
 * Cut a plan short at `now` (the run stops): events up to `now` stay and a `session end` at
 * `now` closes it, so every started session ends in the data.
 */
export function truncatePlan(plan: SessionPlan, now: number): SessionPlan {
  const end = plan.input.startTs + plan.durationMs;
  if (now >= end) return plan;
  const cut = Math.max(now, plan.input.startTs);
  const kept = plan.events.filter((e) => e.ts <= cut && !(e.type === 'session' && e.name === 'end'));
  const durationMs = cut - plan.input.startTs;
  kept.push({ id: `${plan.input.sessionId}-end`, type: 'session', name: 'end', ts: cut, value: durationMs });
  return { ...plan, durationMs, events: kept };
}

/** Poisson arrivals: the gap (ms) before the next session at `ratePerSecond` sessions/s. */
export function nextArrivalGapMs(rng: Prng, ratePerSecond: number): number {
  return rng.exponential(ratePerSecond) * 1000;
}
