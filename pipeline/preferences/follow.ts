/**
 * The followers that feed a process's SegmentIndex and PinStore from their compacted topics
 * (penumbra.segments.status, penumbra.segments.memberships, penumbra.pins,
 * penumbra.pins.policies). Started by the resolver feature, so resolver-only processes
 * (run-resolver.ts) get them too; they connect in the background with retry, like the
 * resolver's other followers (device paths never wait on Kafka).
 */
import type { FeatureContext } from '../app/features.ts';
import { followInBackground } from '../resolver/resolver-registry.ts';

export function followPersonalState(ctx: FeatureContext, before: (() => Promise<void>) | undefined, warn: (kind: string) => (err: unknown) => void, maxWaitTimeInMs?: number): { stop(): Promise<void> } {
  const t = ctx.cfg.topics;
  // maxWaitTimeInMs: the idle poll of the caller's choice (pipeline/resolver/feature.ts).
  const base = { kafka: ctx.kafka, codec: ctx.codec, groupPrefix: ctx.groupPrefix, before, maxWaitTimeInMs };
  const status = followInBackground({ ...base, topic: t.segmentStatus, schema: 'segment-status', onRecord: (s) => ctx.segmentIndex.applyStatus(s), onError: warn('segment status follower') });
  const members = followInBackground({ ...base, topic: t.segmentMemberships, schema: 'segment-membership', onRecord: (m) => ctx.segmentIndex.applyMembership(m), onError: warn('segment memberships follower') });
  const pins = followInBackground({ ...base, topic: t.pins, schema: 'pin', onRecord: (p) => ctx.pins.apply(p), onError: warn('pins follower') });
  const policies = followInBackground({ ...base, topic: t.pinPolicies, schema: 'pin-policy', onRecord: (p) => ctx.pins.applyPolicy(p), onError: warn('pin policies follower') });
  void Promise.all([status.ready, members.ready]).then(() => ctx.segmentIndex.markReady());
  void Promise.all([pins.ready, policies.ready]).then(() => ctx.pins.markReady());
  return {
    async stop() {
      await Promise.all([status.stop(), members.stop(), pins.stop(), policies.stop()]);
    },
  };
}
