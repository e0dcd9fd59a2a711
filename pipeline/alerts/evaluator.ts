/**
 * Alert evaluator — the single writer of penumbra.alerts.
 *
 * Reads: penumbra.telemetry.metrics (MetricWindow, key itemId) in the consumer group
 * `<prefix>alert-evaluator`: the topic is keyed by item, so each item's windows are judged by
 * exactly one member, in order. Only 10 s windows are judged. Also reads the rules (RuleStore),
 * the current profiles (guardrail flag, rollout plans) and the AssignmentIndex (SRM).
 * Writes: `Alert` records (fired / resolved, sharing an incidentId) to penumbra.alerts (key
 * itemId); after Kafka acknowledged them, `alert` events on the live hub and the webhook; and
 * `alert_action` commands to the profile writer (actor `system:alerts`, which audits them):
 * - a rule with `guardrail: true` firing on an item whose profile has `guardrail` on → rollback;
 * - any open incident on an item with a running rollout plan → pause_schedule (so does the
 *   built-in SRM check: an `srm` alert when exposures do not match the configured split);
 * - no open incident left and a plan paused by an alert → resume_schedule (the action names
 *   predate plans; the profile writer applies them to every plan of the item).
 *
 * Windows of one item are grouped by windowStart (the metrics processor emits every variant's
 * window of a close in one produce call, so they arrive together); each shadow's window is judged
 * against the CONTROL arm's window of the same start (variant `control`: the item's control
 * cohorts pooled, pipeline/windows/README.md) — never the untouched original, which sends nothing
 * on a real item — and only verified telemetry is in either window (rules.ts has the metrics,
 * directions, the EWMA kind and the state machine). A vs_control rule on a shadow without a
 * control arm (switched off) never judges, so it cannot fire; absolute rules still do.
 *
 * Bounded state (issue 17 item 4): rule tracks (rule × item × variant) and the per-item replay
 * marks are LRU maps (`maxTracks`, `maxItems`); a track with an open incident is never evicted
 * (it must be able to resolve), per-item command queues are dropped once they settle. Evictions
 * are in `bounds` (health → Prometheus). Windows only exist for items and variants the profile
 * has (the metrics processor refuses the rest), so the caps are a backstop.
 *
 * Guarantee: at-least-once via the processor base — alert records are acknowledged before the
 * window offsets are committed. After a restart the open incidents and the last decided window
 * per item come back from penumbra.alerts (AlertLog), so a replayed window neither fires an open
 * incident again nor re-decides a window already decided. Commands are idempotent at the writer
 * (a pause of a paused schedule is a no-op).
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { TopicNames } from '../config/config.ts';
import type { AvroCodec } from '../kafka/registry.ts';
import type { AvroProducer } from '../kafka/client.ts';
import { runProcessor, type RunningProcessor } from '../kafka/processor.ts';
import type { LiveHub } from '../live/hub.ts';
import type { ProfileStore } from '../profiles/profile-store.ts';
import type { ProfileService } from '../profiles/profile-service.ts';
import { PenumbraError } from '../errors.ts';
import { CONTROL, ORIGINAL } from '../domain/types.ts';
import { SRM_P_THRESHOLD } from '../stats/hypothesis.ts';
import type { Alert } from '../../schemas/types.generated.ts';
import type { MetricWindowRecord } from '../telemetry/metric-record.ts';
import type { AssignmentIndex } from '../telemetry/assignment-index.ts';
import { srmCheck, DEFAULT_SRM_MIN_EXPOSURES, type SrmView } from '../telemetry/comparisons.ts';
import { alertMessage, emptyTrack, observe, stepRule, DEFAULT_STALE_WINDOWS, type RuleTrack } from './rules.ts';
import type { RuleStore } from './rule-store.ts';
import { incidentKey, type AlertLog } from './alert-log.ts';
import type { Webhook } from './webhook.ts';
import { LruMap } from '../bounded/lru.ts';

export const ALERT_EVALUATOR = 'alert-evaluator';
export const SRM_RULE_ID = 'srm';
export const ALERT_ACTOR = 'system:alerts';
/** Pause reasons the evaluator writes start with this, so it only resumes what it paused. */
export const ALERT_PAUSE_PREFIX = 'alert';

export interface EvaluatorOptions {
  windowSize?: number;
  staleWindows?: number;
  srmMinExposures?: number;
  /** Cap on rule × item × variant tracks (LRU; open incidents are kept). Default 50 000. */
  maxTracks?: number;
  /** Cap on items whose replay marks are remembered (LRU; an evicted item re-reads AlertLog). Default 10 000. */
  maxItems?: number;
}

export interface EvaluatorDeps {
  kafka: Kafka;
  codec: AvroCodec;
  producer: AvroProducer;
  topics: TopicNames;
  groupPrefix: string;
  hub: LiveHub;
  rules: RuleStore;
  alerts: AlertLog;
  profileStore: ProfileStore;
  profiles: ProfileService;
  assignments: AssignmentIndex;
  webhook?: Webhook | null;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}

export interface Evaluator {
  processor: RunningProcessor;
  stats: { groups: number; fired: number; resolved: number; actions: number; actionFailures: number };
  /** What the caps evicted so far, plus current sizes. */
  bounds(): { tracks: number; tracksEvicted: number; tracksOverCap: number; items: number; itemsEvicted: number; queues: number };
  /** Resolves when the queued profile commands have settled (tests). */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

interface Group {
  itemId: string;
  windowStart: number;
  windowEnd: number;
  byVariant: Map<string, MetricWindowRecord>;
}

/** The variant whose exposure share is furthest from its expected share (the SRM alert's subject). */
function srmSubject(srm: SrmView): string {
  let worst = ORIGINAL;
  let dev = -1;
  for (const [v, e] of Object.entries(srm.expected)) {
    const d = e > 0 ? Math.abs((srm.observed[v] ?? 0) - e) / e : 0;
    if (d > dev) {
      dev = d;
      worst = v;
    }
  }
  return worst;
}

export async function startEvaluator(deps: EvaluatorDeps, opts: EvaluatorOptions = {}): Promise<Evaluator> {
  const windowSize = opts.windowSize ?? 10_000;
  const staleWindows = opts.staleWindows ?? DEFAULT_STALE_WINDOWS;
  const stats = { groups: 0, fired: 0, resolved: 0, actions: 0, actionFailures: 0 };
  const tracks = new LruMap<string, RuleTrack>(opts.maxTracks ?? 50_000, { canEvict: (_k, t) => t.incidentId === null });
  /** Open incidents at start (from the alerts topic), by rule × item × variant. */
  const seeded = new Map<string, Alert>(deps.alerts.openIncidents().map((a) => [incidentKey(a.ruleId, a.itemId, a.variant), a]));
  /** Open SRM incident per item (one SRM check per item). */
  const srmIncidents = new Map<string, { incidentId: string; variant: string }>();
  for (const [k, a] of seeded) {
    if (a.ruleId === SRM_RULE_ID) {
      srmIncidents.set(a.itemId, { incidentId: a.incidentId, variant: a.variant });
      seeded.delete(k);
    }
  }
  const maxItems = opts.maxItems ?? 10_000;
  // An evicted floor is re-read from AlertLog; an evicted lastStart falls back to that floor.
  const floor = new LruMap<string, number>(maxItems);
  const lastStart = new LruMap<string, number>(maxItems);
  const queues = new Map<string, Promise<void>>();
  const inFlight = new Set<string>();

  const trackOf = (ruleId: string, itemId: string, variant: string): RuleTrack => {
    const k = incidentKey(ruleId, itemId, variant);
    let t = tracks.get(k);
    if (!t) {
      t = emptyTrack();
      const open = seeded.get(k);
      if (open) t.incidentId = open.incidentId;
      tracks.set(k, t);
    }
    return t;
  };

  /** Profile commands run in the background, one at a time per item: never stall the consumer. */
  const command = (itemId: string, action: 'rollback' | 'pause_schedule' | 'resume_schedule', alertId: string, reason: string) => {
    const key = `${itemId}\u0000${action}`;
    if (inFlight.has(key)) return;
    inFlight.add(key);
    stats.actions++;
    const prev = queues.get(itemId) ?? Promise.resolve();
    const next = prev.then(async () => {
      try {
        await deps.profiles.submit({ itemId, kind: 'alert_action', ifMatch: null, payload: { action, alertId }, actor: ALERT_ACTOR, role: 'system', reason });
      } catch (err) {
        if (!(err instanceof PenumbraError && err.code === 'noop')) {
          stats.actionFailures++;
          deps.log?.('alert action failed', { itemId, action, err: String(err) });
        }
      } finally {
        inFlight.delete(key);
      }
    });
    queues.set(itemId, next);
    // Per item, but only while commands are pending: a settled chain is dropped.
    void next.then(() => {
      if (queues.get(itemId) === next) queues.delete(itemId);
    });
  };

  function evaluate(g: Group, now: number): { out: Alert[]; actions: (() => void)[] } {
    const out: Alert[] = [];
    const actions: (() => void)[] = [];
    const profile = deps.profileStore.get(g.itemId);
    const control = g.byVariant.get(CONTROL);
    // Materialise incidents that were open before a restart, so they can resolve.
    for (const k of seeded.keys()) {
      const [ruleId, itemId, variant] = k.split('\u0000');
      if (itemId === g.itemId) trackOf(ruleId, itemId, variant);
    }
    const openVariants = [...tracks.entries()].filter(([k, t]) => t.incidentId !== null && k.split('\u0000')[1] === g.itemId).map(([k]) => k.split('\u0000')[2]);
    const isShadow = (v: string) => v !== ORIGINAL && v !== CONTROL;
    const shadows = new Set<string>([...(profile?.shadows.map((s) => s.name) ?? []), ...[...g.byVariant.keys()].filter(isShadow), ...openVariants].filter(isShadow));
    const mk = (p: Omit<Alert, 'id' | 'at' | 'windowEnd' | 'itemId' | 'action'>): Alert => ({ ...p, id: randomUUID(), itemId: g.itemId, windowEnd: g.windowEnd, action: null, at: now });
    const rules = deps.rules.forItem(g.itemId);
    const ruleIds = new Set(rules.map((r) => r.id));
    let rollbackFor: Alert | null = null;

    for (const rule of rules) {
      for (const variant of shadows) {
        const k = incidentKey(rule.id, g.itemId, variant);
        const obs = observe(rule, g.byVariant.get(variant), control);
        const incidentId = randomUUID();
        const { track, transition } = stepRule(rule, trackOf(rule.id, g.itemId, variant), obs, g.windowStart, incidentId, staleWindows);
        const prevIncident = tracks.get(k)?.incidentId ?? null;
        tracks.set(k, track);
        if (!transition) continue;
        const a = mk({
          incidentId: transition.kind === 'fire' ? incidentId : prevIncident ?? incidentId,
          ruleId: rule.id, variant, metric: rule.metric, state: transition.kind === 'fire' ? 'fired' : 'resolved',
          value: transition.kind === 'fire' || obs.judged ? obs.value : null, threshold: rule.threshold, baseline: obs.baseline,
          message: alertMessage(rule, variant, obs, transition, track.z),
        });
        out.push(a);
        if (transition.kind === 'fire' && rule.guardrail && profile?.guardrail && profile.state === 'active' && !rollbackFor) rollbackFor = a;
      }
    }
    // A deleted rule (or one narrowed to another item) cannot stay firing.
    for (const [k, t] of tracks) {
      const [ruleId, itemId, variant] = k.split('\u0000');
      if (itemId !== g.itemId || ruleIds.has(ruleId) || t.incidentId === null) continue;
      out.push(mk({ incidentId: t.incidentId, ruleId, variant, metric: seeded.get(k)?.metric ?? 'unknown', state: 'resolved', value: null, threshold: null, baseline: null, message: `Rule ${ruleId} no longer applies to ${g.itemId}; incident closed.` }));
      tracks.delete(k);
    }

    // Built-in SRM check on the exposures of the current profile version.
    const srm = profile ? srmCheck(profile, deps.assignments.exposures(g.itemId, profile.profileVersion).counts, opts.srmMinExposures ?? DEFAULT_SRM_MIN_EXPOSURES) : null;
    const srmOpen = srmIncidents.get(g.itemId);
    if (srm?.flagged && !srmOpen) {
      const variant = srmSubject(srm);
      const incidentId = randomUUID();
      srmIncidents.set(g.itemId, { incidentId, variant });
      out.push(mk({
        incidentId, ruleId: SRM_RULE_ID, variant, metric: 'srm', state: 'fired', value: srm.p, threshold: SRM_P_THRESHOLD, baseline: null,
        message: `Sample ratio mismatch on ${g.itemId} (profile v${srm.profileVersion}): exposures ${JSON.stringify(srm.observed)} vs configured shares ${JSON.stringify(srm.shares)} (chi2=${srm.chi2.toFixed(1)}, p=${srm.p < 0.001 ? '<0.001' : srm.p.toFixed(3)}).`,
      }));
    } else if (srmOpen && !srm?.flagged) {
      srmIncidents.delete(g.itemId);
      out.push(mk({
        incidentId: srmOpen.incidentId, ruleId: SRM_RULE_ID, variant: srmOpen.variant, metric: 'srm', state: 'resolved', value: srm?.p ?? null, threshold: SRM_P_THRESHOLD, baseline: null,
        message: srm ? `Sample ratio back in line on ${g.itemId} (p=${srm.p.toFixed(3)}).` : `SRM check no longer applies to ${g.itemId} (rolled back, or shadows target differently); incident closed.`,
      }));
    }

    for (const a of out) {
      if (a.state === 'fired') stats.fired++;
      else stats.resolved++;
    }

    // Automatic actions, decided on the state after this window.
    const anyOpen = srmIncidents.has(g.itemId) || [...tracks.entries()].some(([k, t]) => t.incidentId !== null && k.split('\u0000')[1] === g.itemId);
    if (rollbackFor && profile) {
      rollbackFor.action = 'rolled_back';
      const a = rollbackFor;
      actions.push(() => command(g.itemId, 'rollback', a.incidentId, `guardrail: alert "${rules.find((r) => r.id === a.ruleId)?.name ?? a.ruleId}" (rule ${a.ruleId}, incident ${a.incidentId}) fired on ${a.variant}: ${a.message}`));
    }
    // Rollout plans (pipeline/rollout) are what a schedule was: an open alert stops them advancing.
    const plans = profile?.shadows.map((s) => s.rolloutState).filter((x) => x !== undefined && x !== null) ?? [];
    if (anyOpen && plans.some((x) => x.status === 'running') && profile?.state === 'active') {
      const trigger = out.find((a) => a.state === 'fired') ?? null;
      if (trigger && !trigger.action) trigger.action = 'schedule_paused';
      const firing = trigger ?? null;
      const reason = `${ALERT_PAUSE_PREFIX} ${firing?.incidentId ?? 'open'}: ${firing?.message ?? 'an alert is firing on this item'}`;
      actions.push(() => command(g.itemId, 'pause_schedule', firing?.incidentId ?? 'open', reason));
    } else if (!anyOpen && plans.some((x) => x.status === 'paused' && (x.reason ?? '').startsWith(ALERT_PAUSE_PREFIX)) && profile?.state === 'active') {
      actions.push(() => command(g.itemId, 'resume_schedule', 'all-clear', 'all alerts on the item resolved'));
    }
    return { out, actions };
  }

  const processor = await runProcessor(
    { kafka: deps.kafka, codec: deps.codec, producer: deps.producer, dlqTopic: deps.topics.dlq, log: deps.log },
    {
      name: ALERT_EVALUATOR,
      groupId: `${deps.groupPrefix}${ALERT_EVALUATOR}`,
      topic: deps.topics.telemetryMetrics,
      schema: 'metric-window',
      handle: async (records) => {
        // Group this chunk's small windows by item × start, keeping arrival order.
        const groups = new Map<string, Group>();
        for (const { value: w } of records) {
          if (w.windowSize !== windowSize) continue;
          const k = `${w.itemId}\u0000${w.windowStart}`;
          let g = groups.get(k);
          if (!g) groups.set(k, (g = { itemId: w.itemId, windowStart: w.windowStart, windowEnd: w.windowEnd, byVariant: new Map() }));
          g.byVariant.set(w.variant, w);
        }
        const now = Date.now();
        const alerts: Alert[] = [];
        const actions: (() => void)[] = [];
        // If producing the alerts fails, kafkajs re-delivers this chunk: undo what judging it changed.
        const saved = { tracks: new Map(tracks), srm: new Map(srmIncidents), lastStart: new Map(lastStart), floor: new Map(floor), stats: { ...stats } };
        for (const g of [...groups.values()].sort((a, b) => a.windowStart - b.windowStart)) {
          if (!floor.has(g.itemId)) floor.set(g.itemId, deps.alerts.lastDecided(g.itemId));
          // Replays: a window already decided before a restart, or re-emitted by the processor.
          if (g.windowEnd <= floor.get(g.itemId)! || g.windowStart <= (lastStart.get(g.itemId) ?? -Infinity)) continue;
          lastStart.set(g.itemId, g.windowStart);
          stats.groups++;
          const r = evaluate(g, now);
          alerts.push(...r.out);
          actions.push(...r.actions);
        }
        try {
          if (alerts.length > 0) await deps.producer.send(alerts.map((a) => ({ topic: deps.topics.alerts, key: a.itemId, value: a })));
        } catch (err) {
          const restore = <K, V>(m: Map<K, V> | LruMap<K, V>, from: Map<K, V>) => {
            m.clear();
            for (const [k, v] of from) m.set(k, v);
          };
          restore(tracks, saved.tracks);
          restore(srmIncidents, saved.srm);
          restore(lastStart, saved.lastStart);
          restore(floor, saved.floor);
          Object.assign(stats, saved.stats);
          throw err;
        }
        for (const a of alerts) {
          deps.hub.publish({ event: 'alert', itemId: a.itemId, data: a });
          deps.webhook?.send(a);
        }
        for (const act of actions) act();
        return [];
      },
    },
  );

  return {
    processor,
    stats,
    bounds: () => ({ tracks: tracks.size, tracksEvicted: tracks.evictions, tracksOverCap: tracks.overCap, items: lastStart.size, itemsEvicted: lastStart.evictions, queues: queues.size }),
    async settled() {
      await Promise.all([...queues.values()]);
    },
    async stop() {
      await processor.stop();
      await Promise.race([Promise.all([...queues.values()]), new Promise((r) => setTimeout(r, 2000))]);
    },
  };
}
