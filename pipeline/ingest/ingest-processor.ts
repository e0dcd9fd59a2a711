/**
 * The penumbra.items.ingest path for data engineers.
 *
 * Reads: ItemIngestRequest records (key itemId) in a consumer group. Writes: through the same
 * ingestDigitalItem core as REST and the CLI — an accepted request shows up as a catalog record
 * carrying its requestId; a refused one as a DLQ record with the original bytes and the reason.
 * Guarantees: at-least-once (the request offset is committed after the outcome is produced);
 * a replayed request re-ingests the same bytes, which is idempotent for the blobs and yields
 * byte-identical shadows.
 */
import type { Kafka } from 'kafkajs';
import type { PenumbraConfig, TopicNames } from '../config/config.ts';
import type { AvroCodec } from '../kafka/registry.ts';
import type { AvroProducer, OutRecord } from '../kafka/client.ts';
import { runProcessor, type RunningProcessor } from '../kafka/processor.ts';
import { deadLetter } from '../kafka/dlq.ts';
import { PenumbraError, ValidationError } from '../errors.ts';
import { ingestDigitalItem, type IngestDeps } from './ingest-service.ts';
import { fetchArchive, parseAllowList } from './fetch-archive.ts';
import type { ItemIngestRequest } from '../../schemas/types.generated.ts';

async function loadArchive(req: ItemIngestRequest, deps: IngestDeps, cfg: Pick<PenumbraConfig, 'ingestInlineMaxBytes' | 'ingestUrlAllow' | 'maxUploadBytes' | 'ingestUrlAllowPrivate'>): Promise<Buffer> {
  if (req.archive && req.archiveRef) throw new ValidationError('give either archive or archiveRef, not both', [{ path: 'archiveRef', message: 'both set' }]);
  if (req.archive) {
    if (req.archive.length > cfg.ingestInlineMaxBytes) {
      throw new ValidationError(`inline archive of ${req.archive.length} bytes exceeds PENUMBRA_INGEST_INLINE_MAX_BYTES (${cfg.ingestInlineMaxBytes}); upload it as a blob and send archiveRef`, [{ path: 'archive', message: 'too large for inline' }]);
    }
    return req.archive;
  }
  const ref = req.archiveRef;
  if (!ref) throw new ValidationError('archive or archiveRef is required', [{ path: 'archive', message: 'required' }]);
  const m = /^sha256:([0-9a-f]{64})$/.exec(ref);
  if (m) return deps.blobs.get(m[1]);
  // URLs only under origins and paths the operator allowed, never to private addresses, no
  // redirects, body capped while it streams: the broker must not become an SSRF vector.
  return fetchArchive(ref, { allow: parseAllowList(cfg.ingestUrlAllow), maxBytes: cfg.maxUploadBytes, allowPrivate: cfg.ingestUrlAllowPrivate });
}

export async function startIngestProcessor(deps: {
  kafka: Kafka;
  codec: AvroCodec;
  producer: AvroProducer;
  topics: TopicNames;
  groupPrefix: string;
  ingest: IngestDeps;
  cfg: Pick<PenumbraConfig, 'ingestInlineMaxBytes' | 'ingestUrlAllow' | 'maxUploadBytes' | 'ingestUrlAllowPrivate'>;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}): Promise<RunningProcessor> {
  return runProcessor(
    { kafka: deps.kafka, codec: deps.codec, producer: deps.producer, dlqTopic: deps.topics.dlq },
    {
      name: 'ingest',
      groupId: `${deps.groupPrefix}ingest`,
      topic: deps.topics.itemsIngest,
      schema: 'item-ingest-request',
      maxBatch: 1,
      handle: async (records) => {
        const out: OutRecord[] = [];
        for (const r of records) {
          const req = r.value;
          try {
            let shadowConfig: unknown;
            if (req.shadowConfigJson !== null) {
              try {
                shadowConfig = JSON.parse(req.shadowConfigJson);
              } catch (err) {
                throw new ValidationError('shadowConfigJson is not valid JSON', [{ path: 'shadowConfigJson', message: (err as Error).message }]);
              }
            }
            let rollout: Record<string, unknown> | undefined;
            if (req.rolloutJson !== null) {
              try {
                rollout = JSON.parse(req.rolloutJson) as Record<string, unknown>;
              } catch (err) {
                throw new ValidationError('rolloutJson is not valid JSON', [{ path: 'rolloutJson', message: (err as Error).message }]);
              }
            }
            const archive = await loadArchive(req, deps.ingest, deps.cfg);
            // The audit actor is the topic: anyone who can write to it can claim any submittedBy,
            // so the claim is kept in the reason, never taken as who acted (issue 17, item 5).
            await ingestDigitalItem(deps.ingest, { archive, shadowConfig, actor: { name: `topic:${deps.topics.itemsIngest}`, role: 'operator' }, requestId: req.requestId, expectItemId: req.itemId, note: `submittedBy ${JSON.stringify(req.submittedBy)} (claimed by the record)`, proactive: req.proactive ?? undefined, rollout });
            deps.log?.('ingested from topic', { itemId: req.itemId, requestId: req.requestId });
          } catch (err) {
            if (err instanceof PenumbraError && !err.retriable) {
              const issues = err.issues.length ? ` [${err.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}]` : '';
              const reason = 'reason' in err ? ` (${String((err as { reason: unknown }).reason)})` : '';
              out.push({ topic: deps.topics.dlq, key: req.itemId, value: deadLetter({ reason: `ingest ${req.requestId} refused${reason}: ${err.message}${issues}`, error: err, processor: 'ingest', sourceTopic: deps.topics.itemsIngest, partition: r.partition, offset: r.offset, key: r.raw.key, value: r.raw.value }) });
            } else {
              throw err;
            }
          }
        }
        return out;
      },
    },
  );
}
