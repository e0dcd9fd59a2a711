/**
 * The shared request-timeout sweep (kafkajs-timeout-sweep.cjs) replaces kafkajs's 100 ms interval
 * per connection: a request that gets no answer must still be timed out with kafkajs's own error,
 * a queue whose connection went away must leave the sweep, and any number of connections must
 * share one timer. Against kafkajs's real RequestQueue (the sweep is installed by client.ts's
 * import of kafkajs-idle-timer.ts, as in every process).
 */
import { createRequire } from 'node:module';
import { jest } from '@jest/globals';
import '../kafka/client.ts';

const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as any;
const { SWEEP_MS, state } = require('./kafkajs-timeout-sweep.cjs') as { SWEEP_MS: number; state: { queues: number; timerRunning: boolean } };
const logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

function queue(opts: { requestTimeout: number; connected?: () => boolean }) {
  return new RequestQueue({ logger, maxInFlightRequests: null, requestTimeout: opts.requestTimeout, enforceRequestTimeout: true, clientId: 'sweep-test', broker: 'nowhere:1', isConnected: opts.connected ?? (() => true) });
}

/** Pushes a request nobody answers; resolves with how it ended and when. */
function unanswered(q: { push(r: unknown): void }, correlationId: number) {
  const t0 = Date.now();
  return new Promise<{ error: Error; afterMs: number }>((resolve, reject) => {
    q.push({
      entry: { correlationId, apiKey: 18, apiName: 'ApiVersions', apiVersion: 0, resolve: () => reject(new Error('answered?')), reject: (error: Error) => resolve({ error, afterMs: Date.now() - t0 }) },
      expectResponse: true,
      sendRequest: () => {},
    });
  });
}

describe('kafkajs request-timeout sweep', () => {
  it('is installed on kafkajs RequestQueue', () => {
    expect(RequestQueue.prototype.__penumbraTimeoutSweep).toBe(true);
    expect(SWEEP_MS).toBe(1000);
  });

  it('still times out an unanswered request with kafkajs error, at most one sweep late', async () => {
    const q = queue({ requestTimeout: 1200 });
    q.scheduleRequestTimeoutCheck();
    const { error, afterMs } = await unanswered(q, 1);
    expect(error.name).toBe('KafkaJSRequestTimeoutError');
    expect(afterMs).toBeGreaterThanOrEqual(1200);
    expect(afterMs).toBeLessThan(1200 + SWEEP_MS + 1500); // + scheduling slack on a loaded machine
    expect(q.inflight.size).toBe(0);
    q.destroy();
  });

  it('shares one timer between many connections, and stops it when the last one goes', async () => {
    const intervals = jest.spyOn(globalThis, 'setInterval');
    const qs = Array.from({ length: 40 }, () => queue({ requestTimeout: 30_000 }));
    try {
      for (const q of qs) q.scheduleRequestTimeoutCheck();
      expect(intervals.mock.calls.length).toBeLessThanOrEqual(1); // kafkajs alone: 40
    } finally {
      intervals.mockRestore();
    }
    expect(state.queues).toBe(40);
    expect(state.timerRunning).toBe(true);
    for (const q of qs) q.destroy();
    expect(state.queues).toBe(0);
    // The sweep notices on its next tick that nothing is left and clears its interval.
    await new Promise((r) => setTimeout(r, SWEEP_MS + 300));
    expect(state.timerRunning).toBe(false);
  });

  it('destroys a queue whose connection is gone, as kafkajs check does', async () => {
    let connected = true;
    const q = queue({ requestTimeout: 30_000, connected: () => connected });
    const destroy = jest.spyOn(q, 'destroy');
    q.scheduleRequestTimeoutCheck();
    destroy.mockClear();
    expect(state.queues).toBe(1);
    connected = false;
    await new Promise((r) => setTimeout(r, SWEEP_MS + 300));
    expect(destroy).toHaveBeenCalled();
    expect(state.queues).toBe(0);
  });

  it('leaves a queue with a requestTimeout shorter than the sweep to kafkajs own interval', async () => {
    const q = queue({ requestTimeout: 300 });
    q.scheduleRequestTimeoutCheck();
    const { error, afterMs } = await unanswered(q, 2);
    expect(error.name).toBe('KafkaJSRequestTimeoutError');
    expect(afterMs).toBeLessThan(300 + SWEEP_MS);
    q.destroy();
  });
});
