/**
 * Preferences wiring: the pin routes (connectors/http/preferences-router.ts). The PinStore every
 * resolver reads is fed by the resolver feature's followers (follow.ts → ctx.pins); a process
 * created by createPenumbra waits here until the pins are replayed, so a restarted process never
 * answers a pinned user without their pin (resolver-only processes do not wait: device paths
 * never wait on Kafka).
 */
import type { Feature, FeatureContext, FeatureHandle } from '../app/features.ts';
import type { KeyRing } from '../assignment-token/token.ts';
import { createPreferencesRouter } from '../../connectors/http/preferences-router.ts';

export async function startPreferences(ctx: FeatureContext, opts: { keys?: () => KeyRing | null } = {}): Promise<FeatureHandle> {
  await ctx.pins.loaded;
  // The ring resolve signs with (PENUMBRA_ASSIGNMENT_KEYS, or the data folder's generated key file).
  const keys = opts.keys ?? (() => ctx.assignmentKeys);
  const router = createPreferencesRouter({
    pins: ctx.pins, profiles: ctx.profileStore, producer: ctx.producer, topics: ctx.cfg.topics, tokens: ctx.tokens, openapi: ctx.openapi,
    limits: ctx.limits, keys, maxPins: ctx.cfg.pinsMax,
  });
  return { router };
}

export function preferencesFeature(): Feature {
  return async (ctx) => startPreferences(ctx);
}
