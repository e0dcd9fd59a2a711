/**
 * The Expo Updates feature: loads the code signing key named by the configuration and mounts
 * the update/asset router (router.ts) on the resolver the resolver feature started, so mobile
 * decisions and exposures are the same as /api/v1/resolve's. Registered in pipeline/app/features.ts.
 */
import { readFileSync } from 'node:fs';
import type { FeatureContext, FeatureHandle } from '../../pipeline/app/features.ts';
import type { Resolver } from '../../pipeline/resolver/resolver.ts';
import { ConfigError } from '../../pipeline/errors.ts';
import { loadCodeSigningKey, type CodeSigningKey } from '../../pipeline/mobile/signing.ts';
import { createExpoUpdatesRouter } from './router.ts';

export function loadSigningKeyFromConfig(file: string | null, keyId: string): CodeSigningKey | null {
  if (file === null) return null;
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`PENUMBRA_EXPO_SIGNING_KEY_FILE: cannot read ${file}: ${(err as Error).message}`);
  }
  return loadCodeSigningKey(pem, keyId);
}

export function startExpoUpdates(ctx: FeatureContext, resolver: Resolver): FeatureHandle {
  const { router, fastPath } = createExpoUpdatesRouter({
    resolver,
    profiles: ctx.profileStore,
    catalog: ctx.catalog,
    blobs: ctx.blobs,
    openapi: ctx.openapi,
    publicUrl: () => ctx.ingest.publicUrl,
    limits: ctx.limits,
    signingKey: loadSigningKeyFromConfig(ctx.cfg.expoSigningKeyFile, ctx.cfg.expoSigningKeyId),
    assignmentKeys: ctx.cfg.assignmentKeys,
  });
  return { router, fastPath };
}
