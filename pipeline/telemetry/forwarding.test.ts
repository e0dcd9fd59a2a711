/**
 * Golden cases of the window stage's forwarding (issue 15 item 1, README "The hop-free path"):
 * raw's commit with forwards in flight, what a replay forwards again, and the wall clock's
 * "telemetry.raw read to the end and every forward acknowledged" (pure, offsets.ts).
 */
import { PartitionProgress, PendingForwards, rawCommitPoint, rawForwardLag } from './offsets.ts';

describe('raw commit with forwards in flight', () => {
  test('the committed offset and the marks\' hi never pass the first un-acknowledged forward', () => {
    const f = new PendingForwards();
    // Batch 1 forwarded offsets 10..19 (first 10), batch 2 offsets 25.. (first 25).
    const a = f.add(10n, 4);
    const b = f.add(25n, 2);
    expect(f.floor).toBe(10n);
    expect(f.records).toBe(6);
    // Windows would allow 40, processed up to 50: both held at 10.
    expect(rawCommitPoint(40n, 50n, f.floor)).toEqual({ offset: 10n, hi: 10n });
    // Batch 2 acked first (several requests in flight): still held by batch 1.
    f.ack(b);
    expect(rawCommitPoint(40n, 50n, f.floor)).toEqual({ offset: 10n, hi: 10n });
    f.ack(a);
    expect(f.floor).toBeNull();
    expect(f.records).toBe(0);
    expect(f.size).toBe(0);
    // All acked: the window rule alone (an open window may pin the offset below hi).
    expect(rawCommitPoint(40n, 50n, f.floor)).toEqual({ offset: 40n, hi: 50n });
    f.ack(a); // acked twice (unknown id): no-op
    expect(f.records).toBe(0);
  });

  test('a forward above the window rule\'s offset lowers only hi', () => {
    // An open window pins raw at 5; a forward of offset 30 is in flight; processed up to 40.
    expect(rawCommitPoint(5n, 40n, 30n)).toEqual({ offset: 5n, hi: 30n });
    // Nothing known yet: no commit.
    expect(rawCommitPoint(null, 40n, null)).toBeNull();
    expect(rawCommitPoint(5n, null, null)).toBeNull();
    // No forwards: by-item's rule, unchanged.
    expect(rawCommitPoint(7n, 9n, null)).toEqual({ offset: 7n, hi: 9n });
  });

  test('a replay forwards nothing below the previous owner\'s hi, nor what this member already handled', () => {
    // The previous owner committed offset 10 (an open window) with hi 30: 10..29 were windowed or
    // forwarded and acknowledged; 30.. were not (its crash lost any forward in flight).
    const p = new PartitionProgress(3, { wm: 1000, hi: 30n });
    expect(p.forwardedBefore(10n)).toBe(true);
    expect(p.forwardedBefore(29n)).toBe(true);
    expect(p.forwardedBefore(30n)).toBe(false);
    // This member handles 30..34; a re-delivery after a rebalance (kafkajs refetches from the
    // committed offset) forwards none of them again (an un-acked one is retried, not resent).
    for (let o = 30n; o < 35n; o++) p.track(o, -Infinity);
    expect(p.forwardedBefore(34n)).toBe(true);
    expect(p.forwardedBefore(35n)).toBe(false);
    // No marks (a fresh group): nothing below next is known, so everything is forwarded.
    expect(new PartitionProgress(0).forwardedBefore(0n)).toBe(false);
  });
});

describe('raw lag for the wall clock', () => {
  const ends = [
    { partition: 0, high: 100n, low: 0n },
    { partition: 1, high: 50n, low: 20n },
    { partition: 2, high: 0n, low: 0n },
  ];

  test('counts from the committed marks\' hi, not from the committed offset an open window pins', () => {
    // Partition 0: committed at 40 (an open window) with hi 100: read and forwarded to the end.
    // Partition 1: committed 50, hi 45 (a forward of 45 was in flight at the commit).
    const committed = new Map([
      [0, { offset: 40n, hi: 100n }],
      [1, { offset: 50n, hi: 45n }],
    ]);
    expect(rawForwardLag(ends, committed, new Map())).toBe(5);
  });

  test('a member\'s own partitions count from its live position; others without marks from their offset or low end', () => {
    // Partition 0: no marks, committed 90 (a commit by another tool): 10 left. Partition 1: never
    // committed: from its low end (30 left) unless this member owns it and is at 48.
    const committed = new Map([[0, { offset: 90n, hi: null }]]);
    expect(rawForwardLag(ends, committed, new Map())).toBe(10 + 30);
    expect(rawForwardLag(ends, committed, new Map([[1, 48n]]))).toBe(10 + 2);
    // A crashed member's partition: its stale marks hold the clock until a survivor took it over.
    const orphaned = new Map([[0, { offset: 40n, hi: 60n }], [1, { offset: 50n, hi: 50n }]]);
    expect(rawForwardLag(ends, orphaned, new Map())).toBe(40);
    expect(rawForwardLag(ends, orphaned, new Map([[0, 100n]]))).toBe(0);
  });
});
