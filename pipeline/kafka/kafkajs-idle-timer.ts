/**
 * Stops kafkajs's idle 1 ms timer loop (kafkajs 2.2.4, tulios/kafkajs#1556 / #1704, unfixed
 * upstream): every broker connection's RequestQueue re-arms `setTimeout(check, throttledUntil -
 * now)` after each check, and with nothing throttled that delay is negative, i.e. 1 ms — so each
 * connection runs ~1,000 timer callbacks a second forever, even with nothing to send. A resolver
 * holds a dozen connections (followers, producers): measured as ~4-5 % of its CPU under the resolve
 * bench, and timer work between requests is tail latency (bench/resolver.bench.ts).
 *
 * The guard skips scheduling only when nothing can need it: no pending request and no throttle in
 * force. Pending requests are re-checked by kafkajs itself when one is pushed (push → schedule)
 * or an in-flight one completes (fulfillRequest → checkPendingRequests), and a throttle still
 * schedules its check, so no request waits longer than before. Applied once, on import, by
 * pipeline/kafka/client.ts (every Kafka client of Penumbra is made there). The same import
 * installs the shared request-timeout sweep (kafkajs-timeout-sweep.cjs).
 */
import { createRequire } from 'node:module';

interface RequestQueueLike {
  pending: unknown[];
  throttledUntil: number;
  scheduleCheckPendingRequests(): void;
}

const require = createRequire(import.meta.url);
// The same module instance kafkajs uses (CommonJS cache, package without an exports map).
const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as { prototype: RequestQueueLike & { __penumbraIdleGuard?: boolean } };
const proto = RequestQueue.prototype;
if (typeof proto.scheduleCheckPendingRequests === 'function' && !proto.__penumbraIdleGuard) {
  const original = proto.scheduleCheckPendingRequests;
  proto.scheduleCheckPendingRequests = function guarded(this: RequestQueueLike) {
    if (this.pending.length === 0 && !(this.throttledUntil > Date.now())) return;
    original.call(this);
  };
  proto.__penumbraIdleGuard = true;
}

// And one request-timeout sweep per thread instead of a 100 ms interval per connection
// (kafkajs-timeout-sweep.cjs: ~190 timer callbacks a second in an idle resolver, ~610 in the main
// process, issue 15 item 7).
const sweep = require('./kafkajs-timeout-sweep.cjs') as { install(rq: unknown): boolean };
sweep.install(RequestQueue);

/** True once the guard is installed (tests). */
export const kafkajsIdleTimerGuarded = proto.__penumbraIdleGuard === true;

/** True once the sweep is on kafkajs's RequestQueue (install() answers false on a second call). */
export const kafkajsTimeoutSweep = (proto as { __penumbraTimeoutSweep?: boolean }).__penumbraTimeoutSweep === true;
