/**
 * Queue behaviour of the assignment log against an in-process sink standing in for
 * AvroProducer.send (the Kafka path itself is covered by resolver.int.test.ts).
 */
import { AssignmentLog } from './assignment-log.ts';
import type { Assignment } from '../../schemas/types.generated.ts';

function rec(i: number): Assignment {
  return { id: `a-${i}`, itemId: 'it', userId: `u-${i}`, variant: 'original', profileVersion: 1, bucket: i, reason: 'assigned', controlOf: null, deviceType: null, country: null, userGroup: null, appVersion: null, attributes: {}, derived: [], resolverId: 'r', ts: i };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('AssignmentLog', () => {
  it('batches by time (50 ms) and by size (500)', async () => {
    const batches: number[] = [];
    const log = new AssignmentLog({ send: async (b) => void batches.push(b.length) });
    for (let i = 0; i < 3; i++) log.enqueue(rec(i));
    expect(batches).toEqual([]);
    await sleep(80);
    expect(batches).toEqual([3]);
    for (let i = 0; i < 1200; i++) log.enqueue(rec(i));
    await sleep(10);
    // Two full batches go at once; the 200 left wait for the tick.
    expect(batches.slice(1, 3)).toEqual([500, 500]);
    await sleep(80);
    expect(batches).toEqual([3, 500, 500, 200]);
    expect(log.stats()).toMatchObject({ depth: 0, sent: 1203, dropped: 0, enqueued: 1203 });
    await log.stop();
  });

  it('keeps order, retries with backoff while the sink fails, and drops the oldest when full', async () => {
    let up = false;
    const got: string[] = [];
    const log = new AssignmentLog({
      maxQueue: 10, maxBatch: 4, flushMs: 5, retryInitialMs: 5, retryMaxMs: 20,
      send: async (b) => {
        if (!up) throw new Error('broker down');
        got.push(...b.map((r) => r.id));
      },
    });
    for (let i = 0; i < 4; i++) log.enqueue(rec(i));
    // Wait for at least two failed attempts rather than a fixed 30 ms: on a loaded CI machine
    // the 5 ms flush and 5 ms retry timers can fire late, and CI once saw only one attempt.
    for (const t0 = Date.now(); log.stats().failures < 2 && Date.now() - t0 < 5000; ) await sleep(5);
    // Batch a-0..a-3 is in flight (retrying); 10 more fill the queue, then 5 push out the oldest.
    for (let i = 4; i < 19; i++) log.enqueue(rec(i));
    const s = log.stats();
    expect(s.dropped).toBe(5);
    expect(s.depth).toBe(14);
    expect(s.failures).toBeGreaterThan(1);
    expect(s.retrying).toBeGreaterThan(0);
    expect(s.lastError).toBe('broker down');
    up = true;
    expect(await log.drain(2000)).toBe(true);
    expect(got).toEqual(['a-0', 'a-1', 'a-2', 'a-3', ...Array.from({ length: 10 }, (_, k) => `a-${k + 9}`)]);
    expect(log.stats()).toMatchObject({ depth: 0, retrying: 0, sent: 14 });
    await log.stop();
  });

  it('enqueue never throws or waits, even when send hangs', async () => {
    const log = new AssignmentLog({ maxQueue: 100, send: () => new Promise(() => {}) });
    const t0 = performance.now();
    for (let i = 0; i < 10_000; i++) log.enqueue(rec(i));
    expect(performance.now() - t0).toBeLessThan(500);
    expect(log.stats().depth).toBeLessThanOrEqual(100 + 500);
    expect(log.stats().dropped).toBeGreaterThan(9000);
    await log.stop(50);
    log.enqueue(rec(1));
  });
});
