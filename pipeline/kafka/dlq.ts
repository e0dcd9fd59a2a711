/**
 * Dead letters: anything we cannot process goes to penumbra.dlq with its original bytes, where
 * it came from and why — never silently dropped. Data engineers replay from there.
 */
import { randomUUID } from 'node:crypto';
import type { DeadLetter } from '../../schemas/types.generated.ts';
import { PenumbraError } from '../errors.ts';

export function deadLetter(input: {
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
  return {
    id: randomUUID(),
    sourceTopic: input.sourceTopic ?? null,
    partition: input.partition ?? null,
    offset: input.offset === null || input.offset === undefined ? null : Number(input.offset),
    key: input.key ?? null,
    value: input.value ?? null,
    reason: input.reason,
    errorCode: code,
    processor: input.processor,
    at: Date.now(),
  };
}
