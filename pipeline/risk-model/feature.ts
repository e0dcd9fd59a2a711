/**
 * Predictive shadowing wiring (issue #13): change features and risk scores at ingest, rollout
 * outcomes as labels, model versions, retraining.
 *
 * Reads (followers, every process): penumbra.risk.models (from the start: the newest model is
 * loaded before the process answers), penumbra.risk.outcomes (from the start: item histories
 * and the prior's counts), penumbra.telemetry.metrics (from the end: current error rates).
 * Writes: penumbra.change.features and penumbra.risk.scores at each successful ingest (through
 * IngestDeps.assess, so REST, CLI and the ingest topic all get it); when this process runs the
 * processors, penumbra.risk.outcomes (profile transitions, outcomes.ts — deterministic ids, so a
 * second writer only repeats a record the warehouse stores once) and penumbra.risk.models
 * (retraining on a schedule and on demand, audited on penumbra.audit).
 *
 * Routes: GET /api/v1/risk/models, POST /api/v1/risk/models/retrain, POST /api/v1/risk/models
 * (upload, the notebook's path), GET /api/v1/items/{itemId}/risk.
 */
import { randomUUID } from 'node:crypto';
import { Router, type Response } from 'express';
import { z } from 'zod';
import type { Feature, FeatureContext } from '../app/features.ts';
import { streamHandles } from '../telemetry/feature.ts';
import { electedToRetrain } from './live.ts';
import { followTopic, type Follower } from '../kafka/follow.ts';
import { readArchiveBuffer, type ItemTree } from '../shadowing/archive.ts';
import { computeChangeFeatures } from '../change-features/features.ts';
import { requireRole, type Principal } from '../../connectors/http/auth.ts';
import { parseOr422 } from '../../connectors/http/validate.ts';
import { NotFoundError, UnavailableError } from '../errors.ts';
import type { ChangeAssessment } from '../ingest/ingest-service.ts';
import type { ShadowProfile } from '../domain/types.ts';
import type { RiskScore, RiskModel } from '../../schemas/types.generated.ts';
import { RiskHistory } from './history.ts';
import { RiskService } from './service.ts';
import { RiskTrainer, type TrainOutcome } from './trainer.ts';
import { detectOutcome } from './outcomes.ts';
import { isVersionShadow, versionShadowName } from '../version-shadows/version-shadow.ts';
import type { RiskModelMetadata } from './scorer.ts';
import { holdReason, liveShadow, shouldHold, shouldUpdate, type Evidence } from './live.ts';
import { forecastHandles } from '../app/forecast-hold.ts';
import { earlyHolds } from '../app/early-holds.ts';
import { activeHold, heldBefore, releaseCommand } from '../early-holds/holds.ts';
import type { SizedPlan } from '../risk-plan/size.ts';

export interface RiskHandle {
  service: RiskService;
  history: RiskHistory;
  trainer: RiskTrainer | null;
  /** Scores this process made, newest last, per item (bounded). */
  scores(itemId: string): RiskScore[];
  /** Early holds this process made, oldest first (processors' process only). */
  holds(itemId?: string): RiskHold[];
}

/** An early hold (live.ts) and what became of it: its lead time is decidedAt − heldAt for a regression. */
export interface RiskHold {
  itemId: string;
  version: string;
  shadow: string;
  /** The update that held it (penumbra.risk.scores, with its evidence) and its ingest score. */
  scoreId: string;
  baseScoreId: string;
  probability: number;
  evidence: Evidence;
  heldAt: number;
  /** Profile version of the pause (null until the writer accepted it). */
  profileVersion: number | null;
  /** Operator who released the hold (POST …/risk/release), else null. */
  releasedBy: string | null;
  /** How the rollout ended (penumbra.risk.outcomes), null while it runs. */
  outcome: 'regression' | 'success' | null;
  decidedAt: number | null;
  /** Milliseconds the hold came before the rollback (regressions only). */
  leadMs: number | null;
}

/**
 * The plan a proactive version's score chose (GET /api/v1/items/{itemId}/risk `plan`): the
 * rollout plan's fields as sized (pipeline/risk-plan), the tier and score that sized it, and
 * which fields an operator set over the mapping, and who.
 */
export interface ChosenPlan extends SizedPlan {
  version: string;
  shadow: string;
  scoreId: string;
  /** The mapping's tier; null when the operator gave the whole plan. */
  tier: string | null;
  /** What sized it: the model, the prior, or the operator (a full plan). */
  source: 'model' | 'prior' | 'operator';
  probability: number;
  modelVersion: number | null;
  /** Fields the operator set explicitly at ingest (kept as given). */
  overridden: string[];
  /** Who set them (the ingesting principal); null when nothing was overridden. */
  overriddenBy: string | null;
  /** The same, in one sentence (pipeline/risk-plan describeSizing). */
  sizing: string;
  at: number;
}

/** The actor of early holds on the command topic and in the audit. */
export const RISK_ACTOR = 'system:risk';

const KEEP_SCORES = 50;

export function riskFeature(): Feature {
  return async (ctx: FeatureContext) => {
    const { cfg, log } = ctx;
    const history = new RiskHistory({ windowMs: cfg.risk.windowDays * 86_400_000 });
    const thresholds = { minRows: cfg.risk.minRows, minClass: cfg.risk.minClass, windowDays: cfg.risk.windowDays };
    const service = new RiskService({ blobs: ctx.blobs, history, thresholds, log: log.info });
    const followers: Follower[] = [];
    const holdAt = cfg.risk.holdPercent / 100;
    /** Early holds by the ingest score they belong to (one per rollout), newest state. */
    const holds = new Map<string, RiskHold>();
    /** Set in the processors' process: schedules a live update of an item's running rollout. */
    let updateSoon: ((itemId: string) => void) | null = null;
    const stops: (() => Promise<void> | void)[] = [];
    const scores = new Map<string, RiskScore[]>();
    const plans = new Map<string, ChosenPlan[]>();
    const remember = (s: RiskScore): void => {
      const list = scores.get(s.itemId) ?? [];
      // Scores come back from penumbra.risk.scores too (below): keep each once.
      if (list.some((x) => x.id === s.id)) return;
      list.push(s);
      if (list.length > KEEP_SCORES) list.splice(0, list.length - KEEP_SCORES);
      scores.set(s.itemId, list);
    };

    followers.push(await followTopic({ kafka: ctx.kafka, codec: ctx.codec, topic: cfg.topics.riskModels, schema: 'risk-model', groupPrefix: ctx.groupPrefix, onRecord: (r) => void service.applyRecord(r), onError: (e) => log.warn('risk model record undecodable', { err: String(e) }) }));
    // Every score, wherever it was computed: with process roles (docs/scaling.md) the ingest score
    // is made by the API process that ingested the version, and the live update and early hold
    // run in the processors member that owns the item's windows — which learns the score here.
    followers.push(await followTopic({ kafka: ctx.kafka, codec: ctx.codec, topic: cfg.topics.riskScores, schema: 'risk-score', groupPrefix: ctx.groupPrefix, onRecord: (r) => remember(r), onError: (e) => log.warn('risk score record undecodable', { err: String(e) }) }));
    followers.push(await followTopic({ kafka: ctx.kafka, codec: ctx.codec, topic: cfg.topics.riskOutcomes, schema: 'rollout-outcome', groupPrefix: ctx.groupPrefix, onRecord: (o) => history.addOutcome(o) }));
    followers.push(await followTopic({ kafka: ctx.kafka, codec: ctx.codec, topic: cfg.topics.telemetryMetrics, schema: 'metric-window', groupPrefix: ctx.groupPrefix, fromBeginning: false, onRecord: (w) => {
      history.addWindow(w);
      if (w.windowSize === 10_000) updateSoon?.(w.itemId);
    } }));
    stops.push(() => Promise.all(followers.map((f) => f.stop())).then(() => undefined));

    // ---- at ingest: change features + score, published once the ingest succeeded ----
    ctx.ingest.assess = async ({ tree, requestId, proactive }): Promise<ChangeAssessment | null> => {
      const itemId = tree.manifest.id;
      try {
        const current = ctx.profiles.peek(itemId);
        let previous: ItemTree | null = null;
        if (current?.original) previous = await readArchiveBuffer(await ctx.blobs.get(current.original.sha256));
        const ingestedAt = ctx.catalog.find(itemId)?.versions.find((v) => v.version === current?.itemVersion)?.ingestedAt ?? null;
        const now = Date.now();
        const features = computeChangeFeatures(previous, tree, history.inputsFor(itemId, now, previous ? ingestedAt : null, tree.manifest.version), now);
        const featuresId = randomUUID();
        const score = await service.score(features, featuresId, now);
        return {
          featuresId,
          score: { probability: score.probability, source: score.source as 'model' | 'prior', modelVersion: score.modelVersion, note: score.note },
          publish: async (extra) => {
            const final = extra ? { ...score, shadow: extra.shadow, note: `${score.note}. Sized: ${extra.sizing}` } : score;
            await ctx.producer.send([
              { topic: cfg.topics.changeFeatures, key: itemId, value: { ...features, id: featuresId, requestId, proactive: extra?.proactive ?? proactive } },
              { topic: cfg.topics.riskScores, key: itemId, value: final },
            ]);
            remember(final);
            if (extra?.sizedBy) {
              const sp = extra.plan as SizedPlan;
              const list = plans.get(itemId) ?? [];
              list.push({
                version: score.version, shadow: extra.shadow, scoreId: score.id, tier: extra.sizedBy.tier, source: extra.sizedBy.source, probability: extra.sizedBy.probability, modelVersion: extra.sizedBy.modelVersion,
                steps: [...sp.steps], analysisSeconds: sp.analysisSeconds, minSessionsPerArm: sp.minSessionsPerArm, guardrails: sp.guardrails.map((g) => ({ ...g })), maxInconclusive: sp.maxInconclusive, onComplete: sp.onComplete,
                overridden: [...extra.sizedBy.overridden], overriddenBy: extra.sizedBy.overridden.length ? (extra.by ?? null) : null, sizing: extra.sizing, at: final.at,
              });
              if (list.length > KEEP_SCORES) list.splice(0, list.length - KEEP_SCORES);
              plans.set(itemId, list);
            }
          },
        };
      } catch (err) {
        // The ingest itself must not fail because its risk could not be assessed.
        log.warn('change assessment failed; ingesting without it', { itemId, err: String(err) });
        return null;
      }
    };
    stops.push(() => void (ctx.ingest.assess = undefined));

    // ---- processors only: outcomes from profile transitions, training ----
    let trainer: RiskTrainer | null = null;
    if (ctx.processors) {
      const last = new Map<string, ShadowProfile>(ctx.profileStore.all().map((p) => [p.itemId, p]));
      const startedAt = new Map<string, number>();
      const unsub = ctx.profileStore.onChange((p) => {
        const prev = last.get(p.itemId);
        last.set(p.itemId, p);
        const k = `${p.itemId}@${p.itemVersion}`;
        if (!startedAt.has(k)) startedAt.set(k, p.updatedAt);
        // A version shadow's version, from the catalog entry proactive ingest wrote (version-shadows).
        const versionOf = (shadow: string) => (isVersionShadow(shadow) ? ctx.catalog.find(p.itemId)?.versions.find((v) => versionShadowName(v.version) === shadow)?.version : undefined);
        const o = detectOutcome(prev, p, startedAt.get(k) ?? null, versionOf);
        if (!o) return;
        history.addOutcome(o);
        // An early hold's lead time: from the hold to the guardrail's (or an operator's) rollback.
        for (const h of holds.values()) {
          if (h.itemId !== o.itemId || h.shadow !== o.shadow || h.outcome !== null) continue;
          h.outcome = o.outcome === 'regression' ? 'regression' : 'success';
          h.decidedAt = o.decidedAt;
          h.leadMs = o.outcome === 'regression' ? o.decidedAt - h.heldAt : null;
          log.info('risk hold outcome', { itemId: h.itemId, shadow: h.shadow, outcome: h.outcome, leadMs: h.leadMs });
        }
        ctx.producer.send([{ topic: cfg.topics.riskOutcomes, key: o.itemId, value: o }]).catch((err) => log.warn('rollout outcome not produced', { id: o.id, err: String(err) }));
      });
      stops.push(unsub);

      trainer = new RiskTrainer({
        dataDir: cfg.dataDir, python: cfg.risk.python, blobs: ctx.blobs, service, thresholds,
        publish: async (m: RiskModel) => {
          await ctx.producer.send([
            { topic: cfg.topics.riskModels, key: m.name, value: m },
            { topic: cfg.topics.audit, key: '-', value: { id: randomUUID(), itemId: null, actor: m.trainedBy, role: m.trainedBy.startsWith('system:') ? 'system' : 'operator', action: 'risk-model.train', outcome: 'accepted', reason: `model v${m.version}: ${m.trainingRows} rollouts, AUC ${m.auc?.toFixed(3) ?? 'n/a'}`, beforeJson: null, afterJson: JSON.stringify(m), evidenceJson: null, requestId: null, at: Date.now() } },
          ]);
        },
      });
      // Prior meets evidence, as the telemetry arrives: each closed 10 s window of an item (the
      // arms' windows of one end come together, hence a short debounce) updates the newest
      // ingest score of its running rollout against the shadow's control cohort (live.ts), and
      // an updated score at or above holdAt holds the shadow's running step early — a pause of
      // its rollout plan through the item's command topic (rollout_control, audited with the
      // evidence), released by an operator (POST /api/v1/items/{itemId}/risk/release).
      const lastUpdate = new Map<string, number>();
      const pendingItems = new Map<string, NodeJS.Timeout>();
      updateSoon = (itemId: string) => {
        if (pendingItems.has(itemId)) return;
        const timer = setTimeout(() => {
          pendingItems.delete(itemId);
          updateItem(itemId);
        }, 300);
        timer.unref();
        pendingItems.set(itemId, timer);
      };
      stops.push(() => {
        for (const t of pendingItems.values()) clearTimeout(t);
        pendingItems.clear();
        updateSoon = null;
      });
      const updateItem = (itemId: string): void => {
        // With several processors members only the one owning the item's windows updates and
        // holds (one hold per rollout, not one per member); a processor without ownership
        // (a single member) owns everything.
        const proc = streamHandles.get(ctx)?.processor as { owns?: (itemId: string) => boolean } | null | undefined;
        if (proc?.owns && !proc.owns(itemId)) return;
        const list = scores.get(itemId);
        const p = ctx.profileStore.get(itemId);
        const base = list ? [...list].reverse().find((x) => x.phase === 'ingest') : undefined;
        if (!p || !base) return;
        const spec = liveShadow(p, base);
        if (!spec) return;
        const e = history.evidenceSince(itemId, spec.name, base.at - 10_000);
        const verdict = shouldUpdate(spec, e, lastUpdate.get(base.id) ?? 0);
        if (!verdict.update) return;
        lastUpdate.set(base.id, e.shadowSessions);
        const u = service.update({ ...base, shadow: spec.name }, e, Date.now());
        u.evidenceJson = JSON.stringify({ ...JSON.parse(u.evidenceJson!), baseline: e.baseline });
        remember(u);
        ctx.producer.send([{ topic: cfg.topics.riskScores, key: itemId, value: u }]).catch((err) => log.warn('risk update not produced', { itemId, err: String(err) }));
        // Held before (here, or before a restart: the rollout decisions carry it): not again.
        if (!shouldHold(p, spec.name, u.probability, holdAt, holds.has(base.id) || heldBefore(earlyHolds(ctx, itemId), 'risk', base.id))) return;
        const hold: RiskHold = { itemId, version: u.version, shadow: spec.name, scoreId: u.id, baseScoreId: base.id, probability: u.probability, evidence: e, heldAt: Date.now(), profileVersion: null, releasedBy: null, outcome: null, decidedAt: null, leadMs: null };
        holds.set(base.id, hold);
        // The hold pauses this shadow's rollout plan (pipeline/rollout): it stops advancing, its
        // guardrails (and the item's) keep protecting; the pause's reason and evidence are the score's.
        ctx.profiles.submit({ itemId, kind: 'rollout_control', ifMatch: null, payload: { shadow: spec.name, action: 'pause', evidence: { scoreId: u.id, baseScoreId: base.id, probability: u.probability, holdAt, evidence: e } }, actor: RISK_ACTOR, role: 'system', reason: holdReason(u, e, holdAt) }).then(
          (after) => {
            hold.profileVersion = after.profileVersion;
            log.info('risk hold: rollout step held early', { itemId, shadow: spec.name, probability: u.probability, profileVersion: after.profileVersion });
          },
          (err) => log.warn('risk hold not applied', { itemId, shadow: spec.name, err: String(err) }),
        );
      };

      if (cfg.risk.retrainHours > 0) {
        const t = trainer;
        const timer = setInterval(() => {
          // With several processors members, one retrains (not N identical models): the member
          // whose metrics processor owns the by-item partition of a fixed key. The election moves
          // with the group's rebalances; a tick that falls inside one (nobody owns it) is skipped
          // and the next tick trains. Manual retraining (POST …/retrain) is not elected.
          const proc = streamHandles.get(ctx)?.processor as { owns?: (itemId: string) => boolean } | null | undefined;
          if (!electedToRetrain(proc)) {
            log.debug('scheduled risk retraining left to the elected member');
            return;
          }
          t.train('system:risk-schedule').then(
            (r) => log.info('scheduled risk retraining', r.trained ? { version: r.model.version, auc: r.model.auc } : { trained: false, reason: r.reason }),
            (err) => log.warn('scheduled risk retraining failed', { err: String(err) }),
          );
        }, cfg.risk.retrainHours * 3_600_000);
        timer.unref();
        stops.push(() => clearInterval(timer));
      }
    }

    // ---- routes ----
    const r = Router();
    const viewer = requireRole(ctx.tokens, 'viewer');
    const operator = requireRole(ctx.tokens, 'operator');
    const admin = requireRole(ctx.tokens, 'admin');
    const who = (res: Response): Principal => res.locals.principal as Principal;
    const modelView = () => {
      const m = service.model;
      return {
        current: m ? { version: m.version, kind: m.meta.kind, features: m.meta.features, trainingRows: m.meta.trainingRows, positives: m.meta.positives, windowStart: m.meta.windowStart, windowEnd: m.meta.windowEnd, metrics: m.meta.metrics, importance: m.meta.importance, trainedBy: m.meta.trainedBy } : null,
        prior: { ...service.prior(Date.now()), thresholds },
        versions: service.versions(),
        retrainHours: cfg.risk.retrainHours,
      };
    };
    const trainView = (t: TrainOutcome) => (t.trained ? { trained: true, model: t.model, metrics: t.metadata.metrics } : t);

    ctx.openapi.add({ method: 'get', path: '/api/v1/risk/models', summary: 'The rollout-risk model in use, its versions, and the prior used without one', auth: 'viewer', tags: ['risk'], responses: { 200: 'Current model (or null), prior, versions', 401: 'No token' } });
    r.get('/api/v1/risk/models', viewer, (_req, res) => void res.json(modelView()));

    ctx.openapi.add({ method: 'post', path: '/api/v1/risk/models/retrain', summary: 'Retrain the rollout-risk model now from the warehouse (recent window)', auth: 'operator', tags: ['risk'], responses: { 200: 'Not trained: too little history (says why)', 201: 'Trained: the new model version, in use on return', 401: 'No token', 403: 'Role too low', 503: 'Training unavailable here (no processors, or Python missing)' } });
    r.post('/api/v1/risk/models/retrain', operator, async (_req, res) => {
      if (!trainer) throw new UnavailableError('this process does not run the processors; retrain on the one that does', undefined, false);
      const t = await trainer.train(who(res).name);
      res.status(t.trained ? 201 : 200).json(trainView(t));
    });

    const upload = z.object({
      onnxBase64: z.string().min(16).max(5_000_000),
      metadata: z.object({ name: z.string().max(64), kind: z.string().max(64), features: z.array(z.string().max(128)).min(1).max(500), intercept: z.number(), windowStart: z.number(), windowEnd: z.number(), trainingRows: z.number().int().min(0), positives: z.number().int().min(0), onnx: z.object({ inputName: z.string(), probabilityOutput: z.string(), contributionsOutput: z.string() }) }).passthrough(),
    });
    ctx.openapi.add({ method: 'post', path: '/api/v1/risk/models', summary: 'Register a model trained elsewhere (the analyst notebook) as the next version', auth: 'admin', tags: ['risk'], body: upload, responses: { 201: 'Registered and in use', 401: 'No token', 403: 'Role too low', 422: 'Not a loadable model (field at fault)', 503: 'No processors here' } });
    r.post('/api/v1/risk/models', admin, async (req, res) => {
      if (!trainer) throw new UnavailableError('this process does not run the processors; register on the one that does', undefined, false);
      const body = parseOr422(upload, req.body, 'body', 'model upload');
      const t = await trainer.register(Buffer.from(body.onnxBase64, 'base64'), body.metadata as unknown as RiskModelMetadata, `${who(res).name}`);
      res.status(201).json(trainView(t));
    });

    const itemParam = z.object({ itemId: z.string().min(1).max(128) });
    const releaseBody = z.object({ reason: z.string().max(500).optional() });
    ctx.openapi.add({ method: 'get', path: '/api/v1/items/{itemId}/risk', summary: 'Risk scores of the item versions (ingest and live updates, from penumbra.risk.scores, the last 50 per item; newest last), the plan the newest proactive score chose (structured), early risk holds, the guardrail forecasts and forecast holds of its running plans, and every early hold as all processes know it (earlyHolds: rebuilt from the rollout decisions and the profile)', auth: 'viewer', tags: ['risk'], responses: { 200: 'Scores with explanations, plan, holds, forecasts, earlyHolds', 404: 'No score, no forecast and no early hold for the item' } });
    r.get('/api/v1/items/:itemId/risk', viewer, (req, res) => {
      const { itemId } = parseOr422(itemParam, req.params, 'path', 'item id');
      const list = scores.get(itemId);
      const fh = forecastHandles.get(ctx);
      const forecasts = fh?.forecasts(itemId) ?? [];
      const forecastHolds = fh?.holds(itemId) ?? [];
      // Durable: what the rollout decisions and the profile say, in every process (pipeline/early-holds).
      const durable = earlyHolds(ctx, itemId);
      if (!list?.length && !forecasts.length && !forecastHolds.length && !durable.length) throw new NotFoundError(`no risk score and no early hold for ${itemId} in this process (scores are on penumbra.risk.scores and in the warehouse table risk_scores)`);
      const chosen = plans.get(itemId) ?? [];
      // This process's risk holds, released wherever the release was sent.
      const riskHolds = [...holds.values()].filter((h) => h.itemId === itemId).map((h) => {
        if (h.releasedBy !== null) return { ...h };
        const d = durable.find((x) => x.kind === 'risk' && x.key === h.baseScoreId && x.status === 'released');
        return { ...h, releasedBy: d?.releasedBy ?? null };
      });
      res.json({
        itemId, scores: list ?? [], holds: riskHolds,
        plan: chosen.at(-1) ?? null, plans: chosen,
        forecast: { holdAt: fh?.holdAt ?? null, shadows: forecasts, holds: forecastHolds },
        earlyHolds: durable,
      });
    });

    ctx.openapi.add({ method: 'post', path: '/api/v1/items/{itemId}/risk/release', summary: 'Release the newest active early hold (a live-risk hold or a guardrail-forecast hold), from any process and after a restart: the held rollout step runs again (operator override, a resume on the command topic, audited); the same rollout (risk) or step (forecast) is not held again', auth: 'operator', tags: ['risk'], body: releaseBody, responses: { 200: 'Released: the hold and the profile after the resume', 401: 'No token', 403: 'Role too low', 404: 'No active early hold on the item', 409: 'The plan changed meanwhile (no longer paused)' } });
    r.post('/api/v1/items/:itemId/risk/release', operator, async (req, res) => {
      const { itemId } = parseOr422(itemParam, req.params, 'path', 'item id');
      const body = parseOr422(releaseBody, req.body ?? {}, '', 'release body');
      const who = res.locals.principal as Principal;
      // The newest active hold of either kind, as the decisions and the profile say (not this
      // process's memory): one override route for both early holds, answered by any process.
      const h = activeHold(earlyHolds(ctx, itemId));
      if (!h) throw new NotFoundError(`no active early hold (risk or forecast) on ${itemId}`);
      const cmd = releaseCommand(h, body.reason);
      const profile = await ctx.profiles.submit({ itemId, kind: 'rollout_control', ifMatch: null, payload: cmd.payload, actor: who.name, role: who.role, reason: cmd.reason });
      const at = Date.now();
      // This process's own record of the hold (the processors' process keeps outcomes and lead time).
      let mine: Record<string, unknown> = {};
      if (h.kind === 'forecast' && h.stepStartedAt !== null) {
        const fh = forecastHandles.get(ctx);
        fh?.released(itemId, h.shadow, h.stepStartedAt, who.name);
        mine = { ...(fh?.holds(itemId).find((x) => x.shadow === h.shadow && x.stepStartedAt === h.stepStartedAt) ?? {}) };
      } else if (h.kind === 'risk') {
        const rh = [...holds.values()].find((x) => x.itemId === itemId && x.baseScoreId === h.key);
        if (rh && rh.releasedBy === null) rh.releasedBy = who.name;
        mine = { ...(rh ?? {}) };
      }
      res.json({ itemId, kind: h.kind, released: { ...mine, ...h, status: 'released', releasedBy: who.name, releasedAt: at, releaseReason: cmd.reason }, profile });
    });

    ctx.healthChecks.push(async () => ({ riskModel: { status: 'ok', model: service.model ? service.model.version : null, source: service.model ? 'model' : 'prior' } }));

    const handle: RiskHandle = { service, history, trainer, scores: (itemId) => [...(scores.get(itemId) ?? [])], holds: (itemId) => [...holds.values()].filter((h) => itemId === undefined || h.itemId === itemId).map((h) => ({ ...h })) };
    riskHandles.set(ctx, handle);
    return {
      router: r,
      async stop() {
        riskHandles.delete(ctx);
        for (const s of stops.reverse()) await s();
        await service.model?.release();
      },
    };
  };
}

/** The running handle of a process (tests, benchmarks and the rollout sizing reach it here). */
export const riskHandles = new WeakMap<FeatureContext, RiskHandle>();
