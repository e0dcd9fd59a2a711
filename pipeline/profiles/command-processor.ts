/**
 * The profile writer.
 *
 * Reads: penumbra.shadow.commands (key itemId) in a consumer group — each partition, hence each
 * item, has exactly one writer at a time — after rebuilding current profiles from
 * penumbra.shadow.profiles. Writes: the next profile (shadow.profiles), the outcome the API waits
 * for (shadow.outcomes) and an audit entry (accepted or rejected, with before/after).
 * Guarantees: at-least-once via the processor base (outputs acknowledged before the command
 * offset is committed); a replayed command is recognised through `recentCommands` and not
 * applied twice, so versions never skip or double-bump.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { TopicNames } from '../config/config.ts';
import type { AvroCodec } from '../kafka/registry.ts';
import type { AvroProducer, OutRecord } from '../kafka/client.ts';
import { runProcessor, type RunningProcessor } from '../kafka/processor.ts';
import type { ShadowCommand } from '../../schemas/types.generated.ts';
import { applyCommand, type Command } from './commands.ts';
import { ProfileStore, followProfiles } from './profile-store.ts';
import { profileToRecord, publicConfigView } from './codec.ts';

export function commandFromRecord(r: ShadowCommand): Command {
  return { ...r, payload: JSON.parse(r.payloadJson) as unknown };
}

const ACTIONS: Record<Command['kind'], string> = {
  put_config: 'shadow-config.put',
  rollback: 'rollback',
  activate: 'activate',
  new_version: 'ingest.new-version',
  schedule_tick: 'schedule.advance',
  alert_action: 'alert.action',
  rollout_decision: 'rollout.decision',
  rollout_control: 'rollout.control',
  shadow_rollback: 'shadow.rollback',
  shadow_activate: 'shadow.activate',
  reweight: 'bandit.reweight',
  bandit_control: 'bandit.control',
  promote: 'promote',
  promotion_rollback: 'promotion.rollback',
};

/** JSON with NaN/±∞ (statistics without data) as null, as JSON.stringify would, said explicitly. */
function finiteJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'number' && !Number.isFinite(x) ? null : x));
}

/**
 * Kinds whose audit entry carries the command payload as its evidence (automated decisions). A
 * promotion's entry, and an automated override's (a risk hold), carries its decision's evidence
 * instead (for a promotion: versions, and what a plan decided it on — not the payload, which
 * holds every rebuilt shadow).
 */
const EVIDENCE_KINDS: ReadonlySet<Command['kind']> = new Set(['rollout_decision', 'reweight']);

export async function startCommandProcessor(deps: {
  kafka: Kafka;
  codec: AvroCodec;
  producer: AvroProducer;
  topics: TopicNames;
  groupPrefix: string;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}): Promise<{ processor: RunningProcessor; store: ProfileStore; stop(): Promise<void> }> {
  const store = new ProfileStore();
  const follower = await followProfiles({ kafka: deps.kafka, codec: deps.codec, topic: deps.topics.shadowProfiles, store, groupPrefix: deps.groupPrefix });
  await follower.ready;
  const processor = await runProcessor(
    { kafka: deps.kafka, codec: deps.codec, producer: deps.producer, dlqTopic: deps.topics.dlq },
    {
      name: 'profile-writer',
      groupId: `${deps.groupPrefix}profile-writer`,
      topic: deps.topics.shadowCommands,
      schema: 'shadow-command',
      validate: (v) => {
        try {
          JSON.parse(v.payloadJson);
          return [];
        } catch {
          return [{ path: 'payloadJson', message: 'not valid JSON' }];
        }
      },
      handle: (records) => {
        const out: OutRecord[] = [];
        for (const r of records) {
          const cmd = commandFromRecord(r.value);
          const before = store.get(cmd.itemId) ?? null;
          const now = Date.now();
          const res = applyCommand(before, cmd, now);
          if (res.ok) {
            if (!res.replay) {
              store.apply(res.profile);
              out.push({ topic: deps.topics.shadowProfiles, key: cmd.itemId, value: profileToRecord(res.profile) });
              out.push({
                topic: deps.topics.audit,
                key: cmd.itemId,
                value: {
                  id: randomUUID(), itemId: cmd.itemId, actor: cmd.actor, role: cmd.role, action: ACTIONS[cmd.kind], outcome: 'accepted',
                  reason: cmd.reason, beforeJson: before ? JSON.stringify(publicConfigView(before)) : null,
                  afterJson: JSON.stringify(publicConfigView(res.profile)),
                  evidenceJson: EVIDENCE_KINDS.has(cmd.kind) ? finiteJson(cmd.payload)
                    : cmd.kind === 'promote' || (cmd.kind === 'rollout_control' && res.decisions?.[0]?.automated) ? finiteJson(res.decisions?.[0]?.evidence ?? null) : null,
                  requestId: cmd.commandId, at: now,
                },
              });
              // The timeline: one typed record per decision, with its evidence (pipeline/rollout).
              (res.decisions ?? []).forEach((d, i) => {
                out.push({
                  topic: deps.topics.rolloutDecisions,
                  key: cmd.itemId,
                  value: {
                    id: `${cmd.commandId}:${i}`, itemId: cmd.itemId, shadow: d.shadow, kind: d.kind, rule: d.rule, automated: d.automated, actor: cmd.actor,
                    profileVersion: res.profile.profileVersion, step: d.step, percentage: d.percentage, reason: d.reason,
                    evidenceJson: finiteJson(d.evidence ?? {}), at: now,
                  },
                });
              });
            }
            out.push({ topic: deps.topics.shadowOutcomes, key: cmd.itemId, value: { commandId: cmd.commandId, itemId: cmd.itemId, accepted: true, profileVersion: res.profile.profileVersion, errorCode: null, detail: res.replay ? 'replayed' : null, issuesJson: null, at: now } });
          } else {
            out.push({ topic: deps.topics.shadowOutcomes, key: cmd.itemId, value: { commandId: cmd.commandId, itemId: cmd.itemId, accepted: false, profileVersion: res.current?.profileVersion ?? 0, errorCode: res.errorCode, detail: res.detail, issuesJson: JSON.stringify(res.issues), at: now } });
            // Refused operator changes are audited too (who tried what); silent system no-ops are not.
            if (res.errorCode !== 'noop') {
              out.push({
                topic: deps.topics.audit,
                key: cmd.itemId,
                value: {
                  id: randomUUID(), itemId: cmd.itemId, actor: cmd.actor, role: cmd.role, action: `${ACTIONS[cmd.kind]}.rejected`, outcome: 'rejected',
                  reason: `${res.errorCode}: ${res.detail}`, beforeJson: before ? JSON.stringify(publicConfigView(before)) : null,
                  afterJson: cmd.kind === 'put_config' ? JSON.stringify(cmd.payload) : null,
                  evidenceJson: EVIDENCE_KINDS.has(cmd.kind) ? finiteJson(cmd.payload) : null,
                  requestId: cmd.commandId, at: now,
                },
              });
            }
          }
        }
        return out;
      },
    },
  );
  return {
    processor,
    store,
    async stop() {
      await processor.stop();
      await follower.stop();
    },
  };
}
