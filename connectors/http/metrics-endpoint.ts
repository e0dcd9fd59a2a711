/**
 * GET /metrics — Prometheus text exposition of this process, plus the request-timing middleware
 * that feeds it and writes one structured debug log line per request.
 *
 * What is exposed (all read at scrape time from state that already exists, except latency):
 * - `penumbra_http_request_duration_seconds{method,route,status}` histogram. `route` is the
 *   OpenAPI path template the request matched (a bounded set), `unmatched` otherwise, so an
 *   attacker probing random URLs cannot blow up the series count.
 * - `penumbra_health_status{check}` (1 ok, 0.5 degraded, 0 down) and
 *   `penumbra_health_stat{check,stat}` for every numeric field (nested ones as `a.b.c`) the
 *   features' health checks report (collector batches/accepted/rejected/refused/dead-lettered, assignment queue depth and
 *   drops, windows late/dropped when that feature reports them, …) — a feature that adds a
 *   number to its health check gets a metric without touching this file.
 * - `penumbra_telemetry_*_total` and `penumbra_dead_letters_total{source="collector"}`: the
 *   collector's refusal and DLQ counts under stable names.
 * - `penumbra_dlq_topic_records{topic}`: records currently retained on the DLQ topic (all
 *   processors), and `penumbra_consumer_lag{group,topic}`: end offset − committed offset summed
 *   over partitions, for every consumer group of this deployment's prefix that commits offsets.
 *   Both come from one Kafka admin round trip cached for `lagCacheMs` (default 10 s) with a
 *   3 s timeout, so a scrape never waits long on a broker that is down.
 * - `penumbra_resolver_profile_version{item}`: the profile version this process serves.
 * - `penumbra_telemetry_unverified_events_total{item,variant,reason}`: telemetry kept out of
 *   every window, comparison, alert and guardrail because its assignment token was missing,
 *   invalid or disagreed with the batch (pipeline/telemetry/unverified.ts bounds the label set).
 * - process RSS, heap and uptime (the soak benchmark watches RSS).
 *
 * Unauthenticated like /api/v1/health (scrapers rarely carry tokens): it reveals item ids and
 * rates but no configuration or personal data — see docs/security.md.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Router, type RequestHandler } from 'express';
import type { Kafka } from 'kafkajs';
import type { MetricsRegistry } from '../../pipeline/app/metrics.ts';
import type { OpenApiRegistry } from './openapi.ts';
import { withAdmin, withDeadline } from '../../pipeline/kafka/probe.ts';
import { runHealthChecks, type HealthCheck } from '../../pipeline/app/health.ts';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Turn OpenAPI path templates into matchers; `{param}` is one segment, a trailing one may span several (/d/…/{file}). */
class RouteMatcher {
  private compiled: { template: string; exact: RegExp; greedy: RegExp | null }[] = [];
  private seen = -1;
  constructor(private readonly openapi: OpenApiRegistry) {}

  match(path: string): string | null {
    if (this.seen !== this.openapi.routes.length) {
      const templates = [...new Set(this.openapi.routes.map((r) => r.path))];
      this.compiled = templates.map((template) => {
        const esc = template.split(/\{[^}]+\}/).map((s) => s.replace(/[.*+?^$()|[\]\\]/g, '\\$&'));
        const exact = new RegExp(`^${esc.join('[^/]+')}/?$`);
        const greedy = /\}$/.test(template) ? new RegExp(`^${esc.slice(0, -1).join('[^/]+')}.+$`) : null;
        return { template, exact, greedy };
      });
      this.seen = this.openapi.routes.length;
    }
    for (const c of this.compiled) if (c.exact.test(path)) return c.template;
    for (const c of this.compiled) if (c.greedy?.test(path)) return c.template;
    return null;
  }
}

/**
 * Middleware: time every request until its response finished (or the client went away), record
 * it in the latency histogram and log `{method, route, status, ms, requestId}` at debug level.
 */
export function requestTiming(deps: { registry: MetricsRegistry; openapi: OpenApiRegistry; log?: (msg: string, extra?: Record<string, unknown>) => void }): RequestHandler {
  const hist = deps.registry.histogram('penumbra_http_request_duration_seconds', 'HTTP request latency by method, OpenAPI route template and status');
  const matcher = new RouteMatcher(deps.openapi);
  return (req, res, next) => {
    // A request a fast path took and handed over (a collector error): timed there already.
    if ((res as unknown as { [FAST_TIMED]?: true })[FAST_TIMED]) return next();
    const start = process.hrtime.bigint();
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const route = matcher.match(req.path) ?? 'unmatched';
      // A closed connection before the response finished is recorded as status 499 (nginx's
      // "client closed request"), so aborted SSE streams and uploads are visible too.
      const status = res.writableFinished ? res.statusCode : 499;
      hist.observe({ method: req.method, route, status }, seconds);
      deps.log?.('request', { method: req.method, route, path: req.path, status, ms: Math.round(seconds * 1e6) / 1e3, requestId: res.locals.requestId });
    };
    res.on('finish', finish);
    res.on('close', finish);
    next();
  };
}

/** Set on a response a fast path timed itself: requestTiming (Express) leaves it alone. */
const FAST_TIMED = Symbol('penumbra.fastTimed');

/** A raw node:http fast path: true when it took the request. `express` is the app behind it. */
export type FastPath = (req: IncomingMessage, res: ServerResponse, express: (req: IncomingMessage, res: ServerResponse) => void) => boolean;

/**
 * Wrap the raw node:http fast paths that answer before Express (resolve, telemetry): the same
 * histogram and debug line as requestTiming. A fast path that answers synchronously (resolve) is
 * timed from entry to its return; one that answers later (the collector waits for Kafka's ack)
 * is timed to its response's finish, like requestTiming (499 when the client went away first) —
 * also when it hands a failed request to Express, whose requestTiming then skips it (one
 * observation per request). Series are cached per path and status, so the hot path pays two
 * clock reads and one bucket increment.
 */
export function timedFastPaths(
  fastPaths: FastPath[],
  deps: { registry: MetricsRegistry; openapi: OpenApiRegistry; log?: (msg: string, extra?: Record<string, unknown>) => void },
): FastPath {
  const hist = deps.registry.histogram('penumbra_http_request_duration_seconds', 'HTTP request latency by method, OpenAPI route template and status');
  const matcher = new RouteMatcher(deps.openapi);
  const series = new Map<string, (v: number) => void>();
  const last = { observe: null as ((v: number) => void) | null, status: 0, method: undefined as string | undefined, pathname: '' };
  const observe = (req: IncomingMessage, status: number, seconds: number) => {
    const url = req.url ?? '/';
    // The series of the previous answer again (the common case: the same route and status over
    // and over) without slicing the path or building the key (issue 15 item 3: two strings of
    // garbage per answer).
    const lp = last.pathname;
    if (last.observe !== null && status === last.status && req.method === last.method && url.startsWith(lp) && (url.length === lp.length || url.charCodeAt(lp.length) === 63 /* ? */)) {
      last.observe(seconds);
      if (deps.log) deps.log('request', { method: req.method, route: matcher.match(lp) ?? 'unmatched', path: lp, status, ms: Math.round(seconds * 1e6) / 1e3, fastPath: true });
      return;
    }
    const q = url.indexOf('?');
    const pathname = q < 0 ? url : url.slice(0, q);
    const key = `${req.method} ${pathname} ${status}`;
    let obs = series.get(key);
    if (!obs) {
      const route = matcher.match(pathname) ?? 'unmatched';
      obs = hist.series({ method: req.method ?? 'GET', route, status });
      // Fast paths answer a fixed set of paths; the bound only guards against surprises.
      if (series.size < 1000) series.set(key, obs);
    }
    last.observe = obs;
    last.status = status;
    last.method = req.method;
    last.pathname = pathname;
    obs(seconds);
    deps.log?.('request', { method: req.method, route: matcher.match(pathname) ?? 'unmatched', path: pathname, status, ms: Math.round(seconds * 1e6) / 1e3, fastPath: true });
  };
  return (req, res, express) => {
    if (fastPaths.length === 0) return false;
    // performance.now(): a double, where hrtime.bigint() allocated two BigInts per answer.
    const start = performance.now();
    let handled = false;
    for (const fp of fastPaths) if ((handled = fp(req, res, express))) break;
    if (!handled) return false;
    if (res.writableEnded) {
      observe(req, res.statusCode, (performance.now() - start) / 1e3);
      return true;
    }
    (res as ServerResponse & { [FAST_TIMED]?: true })[FAST_TIMED] = true;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      observe(req, res.writableFinished ? res.statusCode : 499, (performance.now() - start) / 1e3);
    };
    res.once('finish', finish);
    res.once('close', finish);
    return true;
  };
}

export function createMetricsRouter(deps: { registry: MetricsRegistry; openapi: OpenApiRegistry }): Router {
  const r = Router();
  deps.openapi.add({ method: 'get', path: '/metrics', summary: 'Prometheus metrics of this process (text exposition format 0.0.4)', auth: 'none', tags: ['ops'], responses: { 200: 'Metrics' } });
  r.get('/metrics', async (_req, res) => {
    const body = await deps.registry.render();
    res.setHeader('Content-Type', METRICS_CONTENT_TYPE);
    res.setHeader('Cache-Control', 'no-store');
    res.end(body);
  });
  return r;
}

export interface PenumbraCollectorDeps {
  kafka: Kafka;
  /** Consumer groups of this deployment start with it. */
  groupPrefix: string;
  dlqTopic: string;
  healthChecks: HealthCheck[];
  profileVersions: () => Record<string, number>;
  /** Unverified telemetry per item × variant × reason (processes running the metrics processor). */
  unverified?: () => { item: string; variant: string; reason: string; n: number }[];
  lagCacheMs?: number;
}

const STATUS_VALUE = { ok: 1, degraded: 0.5, down: 0 } as const;

/** Consumer lag per group and DLQ size, from one admin round trip. */
async function readKafkaPosition(kafka: Kafka, groupPrefix: string, dlqTopic: string): Promise<{ lag: { group: string; topic: string; lag: number }[]; dlq: number }> {
  return withAdmin(kafka, async (admin) => {
    const { groups } = await admin.listGroups();
    // Followers (`<prefix>follow-<uuid>`) never commit, so they have no lag to report.
    const mine = groups.map((g) => g.groupId).filter((g) => g.startsWith(groupPrefix) && !g.slice(groupPrefix.length).startsWith('follow-'));
    const ends = new Map<string, Map<number, bigint>>();
    const topicEnds = async (topic: string) => {
      let m = ends.get(topic);
      if (!m) {
        m = new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, BigInt(o.high)]));
        ends.set(topic, m);
      }
      return m;
    };
    const lag: { group: string; topic: string; lag: number }[] = [];
    for (const group of mine) {
      for (const t of await admin.fetchOffsets({ groupId: group })) {
        const high = await topicEnds(t.topic);
        let sum = 0n;
        for (const p of t.partitions) {
          const end = high.get(p.partition) ?? 0n;
          const committed = BigInt(p.offset);
          // -1 = nothing committed yet on this partition: everything retained is lag.
          sum += committed < 0n ? end : end > committed ? end - committed : 0n;
        }
        lag.push({ group, topic: t.topic, lag: Number(sum) });
      }
    }
    const dlqOffsets = await admin.fetchTopicOffsets(dlqTopic);
    const dlq = dlqOffsets.reduce((s, o) => s + Number(BigInt(o.high) - BigInt(o.low)), 0);
    return { lag, dlq };
  });
}

/** Register the scrape-time collectors of a Penumbra process. */
export function registerPenumbraCollectors(registry: MetricsRegistry, deps: PenumbraCollectorDeps): void {
  const healthStatus = registry.gauge('penumbra_health_status', 'Health of each check: 1 ok, 0.5 degraded, 0 down');
  const healthStat = registry.gauge('penumbra_health_stat', 'Every numeric field reported by a feature health check');
  const batches = registry.observedCounter('penumbra_telemetry_batches_total', 'Telemetry batches received by the collector since start');
  const accepted = registry.observedCounter('penumbra_telemetry_events_accepted_total', 'Telemetry events acknowledged by Kafka (202) since start');
  const rejected = registry.observedCounter('penumbra_telemetry_events_rejected_total', 'Telemetry events refused inside accepted batches since start');
  const refused = registry.observedCounter('penumbra_telemetry_batches_refused_total', 'Telemetry batches refused whole (malformed JSON, bad envelope) since start');
  const dead = registry.observedCounter('penumbra_dead_letters_total', 'Records this process sent to the DLQ since start, by source');
  const dlqTopic = registry.gauge('penumbra_dlq_topic_records', 'Dead letters currently retained on the DLQ topic (all processors)');
  const lagGauge = registry.gauge('penumbra_consumer_lag', 'End offset minus committed offset, summed over partitions, per consumer group and topic');
  const lagAge = registry.gauge('penumbra_consumer_lag_age_seconds', 'Age of the cached consumer-lag reading');
  const profileVersion = registry.gauge('penumbra_resolver_profile_version', 'Shadow profile version this process serves, per item');
  const unverified = registry.observedCounter('penumbra_telemetry_unverified_events_total', 'Telemetry events stored but kept out of windows, comparisons, alerts and guardrails (no valid assignment token), per item, claimed variant and reason, since start');
  const rss = registry.gauge('process_resident_memory_bytes', 'Resident set size');
  const heap = registry.gauge('nodejs_heap_used_bytes', 'V8 heap in use');
  const uptime = registry.gauge('process_uptime_seconds', 'Seconds since the process started');

  const windowLate = registry.observedCounter('penumbra_window_late_events_total', 'Events that arrived after their window had closed, per window size: counted in the next window\'s `late`, not in its metrics');
  const windowDropped = registry.observedCounter('penumbra_window_dropped_events_total', 'Events the metrics processor did not aggregate, by reason (duplicate id, replay of emitted windows, invalid → DLQ)');

  registry.addCollector(async () => {
    healthStatus.reset();
    healthStat.reset();
    {
      for (const [name, c] of Object.entries(await runHealthChecks(deps.healthChecks))) {
        healthStatus.set({ check: name }, STATUS_VALUE[c.status] ?? 0);
        // Nested objects (e.g. streamProcessing.metricsProcessor.late) flatten to dotted names.
        const walk = (o: Record<string, unknown>, prefix: string, depth: number) => {
          for (const [k, v] of Object.entries(o)) {
            if (typeof v === 'number' && Number.isFinite(v)) healthStat.set({ check: name, stat: prefix + k }, v);
            else if (v && typeof v === 'object' && !Array.isArray(v) && depth < 3) walk(v as Record<string, unknown>, `${prefix}${k}.`, depth + 1);
          }
        };
        walk(c, '', 0);
        if (name === 'collector') {
          const s = c as unknown as Record<string, number>;
          batches.set(undefined, s.batches ?? 0);
          accepted.set(undefined, s.accepted ?? 0);
          rejected.set(undefined, s.rejectedEvents ?? 0);
          refused.set(undefined, s.refusedBatches ?? 0);
          dead.set({ source: 'collector' }, s.deadLettered ?? 0);
        }
        const mp = name === 'streamProcessing' ? (c.metricsProcessor as { lateBySize?: Record<string, number>; duplicates?: number; replaySkipped?: number; deadLettered?: number } | null | undefined) : null;
        if (mp) {
          for (const [size, n] of Object.entries(mp.lateBySize ?? {})) windowLate.set({ window: `${Number(size) / 1000}s` }, n);
          windowDropped.set({ reason: 'duplicate' }, mp.duplicates ?? 0);
          windowDropped.set({ reason: 'replay' }, mp.replaySkipped ?? 0);
          windowDropped.set({ reason: 'invalid' }, mp.deadLettered ?? 0);
          dead.set({ source: 'metrics-processor' }, mp.deadLettered ?? 0);
        }
        // The repartition stage in front of it (issue 15 item 4) dead-letters what it cannot key by item.
        const rp = name === 'streamProcessing' ? (c.repartition as { deadLettered?: number } | null | undefined) : null;
        if (rp) dead.set({ source: 'telemetry-repartition' }, rp.deadLettered ?? 0);
      }
    }
  });

  registry.addCollector(() => {
    profileVersion.reset();
    for (const [item, v] of Object.entries(deps.profileVersions())) profileVersion.set({ item }, v);
    for (const u of deps.unverified?.() ?? []) unverified.set({ item: u.item, variant: u.variant, reason: u.reason }, u.n);
    const m = process.memoryUsage();
    rss.set(undefined, m.rss);
    heap.set(undefined, m.heapUsed);
    uptime.set(undefined, Math.round(process.uptime()));
  });

  const cacheMs = deps.lagCacheMs ?? 10_000;
  let readAt = 0;
  let inFlight: Promise<void> | null = null;
  registry.addCollector(async () => {
    if (Date.now() - readAt >= cacheMs) {
      inFlight ??= withDeadline(readKafkaPosition(deps.kafka, deps.groupPrefix, deps.dlqTopic), 3000, 'consumer lag read')
        .then(({ lag, dlq }) => {
          lagGauge.reset();
          for (const l of lag) lagGauge.set({ group: l.group, topic: l.topic }, l.lag);
          dlqTopic.set({ topic: deps.dlqTopic }, dlq);
          readAt = Date.now();
        })
        .finally(() => (inFlight = null));
      try {
        await inFlight;
      } finally {
        lagAge.set(undefined, readAt ? Math.round((Date.now() - readAt) / 1000) : -1);
      }
    } else {
      lagAge.set(undefined, Math.round((Date.now() - readAt) / 1000));
    }
  });
}
