/**
 * Which kafkajs internals replaced at load time took effect in this process, as health's
 * `checks.kafkajs`. Each replacement only works if it runs before kafkajs loads the module it
 * swaps (pipeline/kafka/client.ts imports them first), and a process that imported kafkajs some
 * other way first runs stock kafkajs without a word; `PENUMBRA_KAFKAJS_STOCK=1` turns the encoding
 * part off on purpose (bench comparisons). Stock is a legitimate configuration, so the status is
 * ok either way — the fields say which one a process runs, without a profiler or a bench.
 */
// The same order as client.ts: each patch must run before kafkajs loads what it replaces.
import { kafkajsGroupingLinear } from './kafkajs-grouping.ts';
import { kafkajsEncoding, kafkajsStock, type KafkajsEncoding } from './kafkajs-encoding.ts';
import { kafkajsIdleTimerGuarded, kafkajsTimeoutSweep } from './kafkajs-idle-timer.ts';

// A type, not an interface: HealthReport's checks take it only with an implicit index signature.
export type KafkajsHealth = {
  status: 'ok';
  /** What stock and patched look like at a glance: `patched`, `stock encoding (…)` or what missed. */
  detail: string;
  /** PENUMBRA_KAFKAJS_STOCK=1: the encoding fields are false by configuration, not by import order. */
  stock: boolean;
  /** kafkajs-encoding.ts, part by part. */
  encoding: KafkajsEncoding;
  /** kafkajs-grouping.ts: produce requests grouped per partition in one pass. */
  groupingLinear: boolean;
  /** kafkajs-idle-timer.ts: no 1 ms re-check loop on idle connections. */
  idleTimerGuard: boolean;
  /** kafkajs-timeout-sweep.cjs: one request-timeout sweep per thread, not a 100 ms interval per connection. */
  timeoutSweep: boolean;
};

/** This process's kafkajs patches, for health (a fresh object: the report is serialised and may be changed). */
export function kafkajsHealth(): KafkajsHealth {
  const encoding = { ...kafkajsEncoding };
  const missed = [
    ...(kafkajsStock ? [] : Object.entries(encoding).filter(([, on]) => !on).map(([part]) => `encoding.${part}`)),
    ...(kafkajsGroupingLinear ? [] : ['groupingLinear']),
    ...(kafkajsIdleTimerGuarded ? [] : ['idleTimerGuard']),
    ...(kafkajsTimeoutSweep ? [] : ['timeoutSweep']),
  ];
  const detail = [
    ...(kafkajsStock ? ['stock encoding (PENUMBRA_KAFKAJS_STOCK=1)'] : []),
    ...(missed.length > 0 ? [`kafkajs loaded before the patch, stock: ${missed.join(', ')}`] : []),
  ].join('; ') || 'patched';
  return { status: 'ok', detail, stock: kafkajsStock, encoding, groupingLinear: kafkajsGroupingLinear, idleTimerGuard: kafkajsIdleTimerGuarded, timeoutSweep: kafkajsTimeoutSweep };
}
