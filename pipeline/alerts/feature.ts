/**
 * Alerts wiring: the rule store (follows the compacted penumbra.alert.rules), the alert log
 * (follows penumbra.alerts; in processes without processors it also feeds the live hub, since
 * no evaluator there publishes), the HTTP routes, and — when this process runs the processors —
 * the evaluator (single writer of penumbra.alerts) and the optional webhook.
 */
import type { FeatureContext } from '../app/features.ts';
import { followTopic } from '../kafka/follow.ts';
import { createAlertsRouter } from '../../connectors/http/alerts-router.ts';
import type { AssignmentIndex } from '../telemetry/assignment-index.ts';
import { RuleStore } from './rule-store.ts';
import { AlertLog } from './alert-log.ts';
import { startEvaluator, type Evaluator, type EvaluatorOptions } from './evaluator.ts';
import { Webhook, type WebhookOptions } from './webhook.ts';
import type { Router } from 'express';

export interface AlertsOptions extends EvaluatorOptions {
  webhook?: WebhookOptions;
  /** Recent alerts kept for GET /api/v1/alerts (default 5000). */
  ringSize?: number;
}

export interface AlertsHandle {
  router: Router;
  rules: RuleStore;
  log: AlertLog;
  evaluator: Evaluator | null;
  webhook: Webhook | null;
  health(): Record<string, unknown>;
  stop(): Promise<void>;
}

export async function startAlerts(ctx: FeatureContext, deps: { assignments: AssignmentIndex | null }, opts: AlertsOptions = {}): Promise<AlertsHandle> {
  const { cfg } = ctx;
  const stops: (() => Promise<void>)[] = [];
  const rules = new RuleStore();
  const log = new AlertLog(opts.ringSize);
  try {
    const ruleFollower = await followTopic({
      kafka: ctx.kafka, codec: ctx.codec, topic: cfg.topics.alertRules, schema: 'alert-rule', groupPrefix: ctx.groupPrefix,
      onRecord: (r) => rules.apply(r), onError: (err) => ctx.log.warn('alert rule decode failed', { err: String(err) }),
    });
    stops.push(() => ruleFollower.stop());
    const alertFollower = await followTopic({
      kafka: ctx.kafka, codec: ctx.codec, topic: cfg.topics.alerts, schema: 'alert', groupPrefix: ctx.groupPrefix,
      onRecord: (a) => {
        log.add(a);
        if (!ctx.processors) ctx.hub.publish({ event: 'alert', itemId: a.itemId, data: a });
      },
      onError: (err) => ctx.log.warn('alert decode failed', { err: String(err) }),
    });
    stops.push(() => alertFollower.stop());
    await Promise.all([ruleFollower.ready, alertFollower.ready]);

    let evaluator: Evaluator | null = null;
    let webhook: Webhook | null = null;
    if (ctx.processors && deps.assignments) {
      webhook = cfg.webhookUrl ? new Webhook(cfg.webhookUrl, { secret: cfg.webhookSecret ?? undefined, ...opts.webhook }) : null;
      if (webhook) stops.push(async () => webhook!.stop());
      evaluator = await startEvaluator(
        {
          kafka: ctx.kafka, codec: ctx.codec, producer: ctx.producer, topics: cfg.topics, groupPrefix: ctx.groupPrefix, hub: ctx.hub,
          rules, alerts: log, profileStore: ctx.profileStore, profiles: ctx.profiles, assignments: deps.assignments, webhook, log: ctx.log.warn,
        },
        opts,
      );
      stops.push(() => evaluator!.stop());
    }
    const router = createAlertsRouter({ rules, alerts: log, producer: ctx.producer, topics: cfg.topics, tokens: ctx.tokens, openapi: ctx.openapi });
    return {
      router, rules, log, evaluator, webhook,
      health: () => ({ rules: rules.all().length, recentAlerts: log.size, openIncidents: log.openIncidents().length, evaluator: evaluator ? { ...evaluator.stats, ...evaluator.processor.stats, bounds: evaluator.bounds() } : null, webhook: webhook?.stats ?? null }),
      async stop() {
        for (const s of stops.reverse()) await s().catch(() => {});
      },
    };
  } catch (err) {
    for (const s of stops.reverse()) await s().catch(() => {});
    throw err;
  }
}
