/**
 * Dead letters: anything we cannot process goes to penumbra.dlq with its original bytes, where
 * it came from and why — never silently dropped. Data engineers replay from there.
 *
 * Bounded (issue 17, item 4): a dead letter keeps at most DLQ_VALUE_PREFIX_BYTES of the value
 * (and of the key), plus the value's full length and SHA-256. Before, every refused 512 KiB
 * telemetry body was copied whole, so one address at its rate limit (500 batches/s) wrote
 * ~250 MB/s to the broker's disk. A refused record from a topic also names its source offset,
 * where the whole record stays for the topic's retention.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { DeadLetter } from '../../schemas/types.generated.ts';
import { PenumbraError } from '../errors.ts';

/** Bytes of a refused value (or key) kept in its dead letter. */
export const DLQ_VALUE_PREFIX_BYTES = 4096;

export function deadLetter(input: {
  /** Fixed id (a replay of the same failure is then a no-op downstream); default random. */
  id?: string;
  reason: string;
  errorCode?: string;
  processor: string;
  sourceTopic?: string | null;
  partition?: number | null;
  offset?: string | number | null;
  key?: Buffer | null;
  value?: Buffer | null;
  error?: unknown;
}): DeadLetter {
  const code = input.errorCode ?? (input.error instanceof PenumbraError ? input.error.code : 'processing');
  const value = input.value ?? null;
  const key = input.key ?? null;
  return {
    id: input.id ?? randomUUID(),
    sourceTopic: input.sourceTopic ?? null,
    partition: input.partition ?? null,
    offset: input.offset === null || input.offset === undefined ? null : Number(input.offset),
    key: key && key.length > DLQ_VALUE_PREFIX_BYTES ? key.subarray(0, DLQ_VALUE_PREFIX_BYTES) : key,
    value: value && value.length > DLQ_VALUE_PREFIX_BYTES ? value.subarray(0, DLQ_VALUE_PREFIX_BYTES) : value,
    reason: input.reason,
    errorCode: code,
    processor: input.processor,
    at: Date.now(),
    valueLength: value ? value.length : null,
    valueSha256: value ? createHash('sha256').update(value).digest('hex') : null,
    valueTruncated: value !== null && value.length > DLQ_VALUE_PREFIX_BYTES,
  };
}
