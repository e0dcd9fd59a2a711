/**
 * One request-timeout sweep per thread instead of one 100 ms interval per kafkajs connection
 * (kafkajs 2.2.4 RequestQueue.scheduleRequestTimeoutCheck: `setInterval(check, min(requestTimeout,
 * 100))` for every broker connection, forever, whether anything is in flight or not).
 *
 * Why: every consumer, producer and admin client holds its own connections (a seed and one per
 * broker), so an idle resolver-only process ran ~190 of these callbacks a second and the main
 * `--role api,processors` process ~610 (measured with a timer-counting preload, issue 15 item 7).
 * Each is a timer wake-up on a 2-core machine where ten resolvers, the API and the broker share
 * the cores a rollback's fan-out needs.
 *
 * What stays the same: every in-flight request older than its requestTimeout (30 s by default,
 * fetches maxWaitTime more) is timed out exactly as kafkajs does it (`timeoutRequest()`), and a
 * queue whose connection is gone is destroyed — only up to SWEEP_MS later than kafkajs's 100 ms
 * check (a 30 s deadline fires within 30–31 s instead of 30–30.1 s). A queue whose requestTimeout
 * is shorter than SWEEP_MS keeps kafkajs's own interval (no client of ours sets one; tests may).
 *
 * Plain CommonJS so that the exposure worker thread (a plain .mjs without tsx, with its own copy
 * of kafkajs's modules) installs the same sweep: `install(RequestQueue)` patches the prototype
 * it is given, once.
 */
/* global module */
'use strict';

/** Period of the shared sweep (ms). */
const SWEEP_MS = 1000;

/** What the sweep holds (tests): queues watched and whether its timer runs. */
const state = { queues: 0, timerRunning: false };

function install(RequestQueue) {
  const proto = RequestQueue.prototype;
  if (proto.__penumbraTimeoutSweep || typeof proto.scheduleRequestTimeoutCheck !== 'function' || typeof proto.destroy !== 'function') return false;
  const originalSchedule = proto.scheduleRequestTimeoutCheck;
  const originalDestroy = proto.destroy;
  /** Queues with a live connection whose requests the sweep checks. */
  const queues = new Set();
  let timer = null;
  const sweep = () => {
    const now = Date.now();
    for (const q of queues) {
      q.inflight.forEach((request) => {
        if (now - request.sentAt > request.requestTimeout) request.timeoutRequest();
      });
      if (!q.isConnected()) q.destroy();
    }
    if (queues.size === 0 && timer) {
      clearInterval(timer);
      timer = null;
    }
  };
  proto.scheduleRequestTimeoutCheck = function scheduleRequestTimeoutCheck() {
    if (!this.enforceRequestTimeout) return;
    if (!(this.requestTimeout >= SWEEP_MS)) return originalSchedule.call(this);
    this.destroy();
    queues.add(this);
    if (!timer) {
      timer = setInterval(sweep, SWEEP_MS);
      // The connections' sockets keep the process alive while they are open; this timer must not.
      timer.unref();
    }
  };
  proto.destroy = function destroy() {
    queues.delete(this);
    return originalDestroy.call(this);
  };
  Object.defineProperty(state, 'queues', { get: () => queues.size });
  Object.defineProperty(state, 'timerRunning', { get: () => timer !== null });
  proto.__penumbraTimeoutSweep = true;
  return true;
}

module.exports = { install, SWEEP_MS, state };
