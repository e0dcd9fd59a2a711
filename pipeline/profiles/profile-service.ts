/**
 * API-side access to profiles: reads from the in-memory ProfileStore, writes by sending a
 * command to the single writer and waiting for its outcome (so If-Match holds across API
 * processes), then for the local view to hold the new version (read-your-writes on GET).
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { TopicNames } from '../config/config.ts';
import type { AvroCodec } from '../kafka/registry.ts';
import type { AvroProducer } from '../kafka/client.ts';
import { followTopic, type Follower } from '../kafka/follow.ts';
import type { CommandOutcome } from '../../schemas/types.generated.ts';
import { ConflictError, NotFoundError, UnavailableError, ValidationError, PenumbraError, type FieldIssue } from '../errors.ts';
import type { ShadowProfile } from '../domain/types.ts';
import type { Command } from './commands.ts';
import type { ProfileStore } from './profile-store.ts';

export interface Actor {
  name: string;
  role: string;
}

export class ProfileService {
  private readonly waiters = new Map<string, (o: CommandOutcome) => void>();
  private outcomes: Follower | null = null;

  constructor(
    private readonly deps: { kafka: Kafka; codec: AvroCodec; producer: AvroProducer; topics: TopicNames; store: ProfileStore; groupPrefix: string; timeoutMs?: number; followWaitMs?: number },
  ) {}

  async start(): Promise<void> {
    this.outcomes = await followTopic({
      kafka: this.deps.kafka,
      codec: this.deps.codec,
      topic: this.deps.topics.shadowOutcomes,
      schema: 'command-outcome',
      groupPrefix: this.deps.groupPrefix,
      fromBeginning: false,
      // Outcomes arrive at once whatever this is (minBytes 1); it only paces idle polls.
      maxWaitTimeInMs: this.deps.followWaitMs,
      onRecord: (o) => {
        const w = this.waiters.get(o.commandId);
        if (w) {
          this.waiters.delete(o.commandId);
          w(o);
        }
      },
    });
    await this.outcomes.ready;
  }

  async stop(): Promise<void> {
    await this.outcomes?.stop();
  }

  /** Current profile or undefined (no error): for callers that create the first one. */
  peek(itemId: string): ShadowProfile | undefined {
    return this.deps.store.get(itemId);
  }

  get(itemId: string): ShadowProfile {
    const p = this.deps.store.get(itemId);
    if (!p) throw new NotFoundError(`item ${itemId} has no shadow profile`);
    return p;
  }

  /** Send a command and wait for the writer's verdict; throws the matching PenumbraError on refusal. */
  async submit(cmd: Omit<Command, 'commandId' | 'at'> & { commandId?: string }): Promise<ShadowProfile> {
    const commandId = cmd.commandId ?? randomUUID();
    const timeoutMs = this.deps.timeoutMs ?? 15000;
    const outcome = new Promise<CommandOutcome>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(commandId);
        reject(new UnavailableError(`no outcome for command ${commandId} within ${timeoutMs} ms; the profile writer may be down. The command is queued and will apply when it recovers.`));
      }, timeoutMs);
      this.waiters.set(commandId, (o) => {
        clearTimeout(timer);
        resolve(o);
      });
    });
    // The outcome may time out while the send is still pending: keep that rejection handled
    // here, so it surfaces from the await below instead of crashing the process.
    outcome.catch(() => {});
    await this.deps.producer.send([
      {
        topic: this.deps.topics.shadowCommands,
        key: cmd.itemId,
        value: { commandId, itemId: cmd.itemId, kind: cmd.kind, ifMatch: cmd.ifMatch, payloadJson: JSON.stringify(cmd.payload ?? {}), actor: cmd.actor, role: cmd.role, reason: cmd.reason, at: Date.now() },
      },
    ]);
    const o = await outcome;
    if (!o.accepted) {
      const issues = o.issuesJson ? (JSON.parse(o.issuesJson) as FieldIssue[]) : [];
      const current = this.deps.store.get(cmd.itemId);
      switch (o.errorCode) {
        case 'conflict':
          throw new ConflictError(o.detail ?? 'stale If-Match', current ? { profileVersion: current.profileVersion, updatedBy: current.updatedBy, updatedAt: current.updatedAt } : undefined);
        case 'validation':
          throw new ValidationError(o.detail ?? 'invalid configuration', issues);
        case 'not-found':
          throw new NotFoundError(o.detail ?? 'not found');
        default:
          throw new PenumbraError(o.errorCode ?? 'rejected', o.detail ?? 'command rejected', { status: 409 });
      }
    }
    await this.deps.store.waitForVersion(cmd.itemId, o.profileVersion, timeoutMs);
    return this.deps.store.get(cmd.itemId)!;
  }
}
