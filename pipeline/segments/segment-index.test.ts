import type { SegmentStatus } from '../../schemas/types.generated.ts';
import { SegmentIndex } from './segment-index.ts';

const status = (segmentId: string, over: Partial<SegmentStatus> = {}): SegmentStatus => ({
  segmentId, state: 'ok', evaluationId: 'e', evaluatedAt: 1, durationMs: 1, snapshotAt: null, members: 0, candidateMembers: 0, added: 0, removed: 0,
  lastGoodEvaluationId: 'e', lastGoodAt: 1, error: null, definitionUpdatedAt: 1, ...over,
});
const rec = (userId: string, segments: string[]) => ({ userId, segments, evaluationId: 'e', changed: [], updatedAt: 1 });

describe('SegmentIndex', () => {
  it('answers unknown (-1) until the memberships are replayed and for segments without a good evaluation', () => {
    const idx = new SegmentIndex();
    idx.applyStatus(status('power'));
    idx.applyStatus(status('new', { state: 'failed', lastGoodEvaluationId: null, lastGoodAt: null }));
    idx.applyMembership(rec('u1', ['power']));
    expect(idx.membership('power', 'u1')).toBe(-1);
    idx.markReady();
    expect(idx.membership('power', 'u1')).toBe(1);
    expect(idx.membership('power', 'u2')).toBe(0);
    expect(idx.membership('new', 'u1')).toBe(-1);
    expect(idx.membership('never-defined', 'u1')).toBe(-1);
  });

  it('a later record replaces the user\'s segments; a deleted segment becomes unknown', () => {
    const idx = new SegmentIndex();
    for (const s of ['a', 'b']) idx.applyStatus(status(s));
    idx.markReady();
    idx.applyMembership(rec('u1', ['a', 'b']));
    expect([idx.membership('a', 'u1'), idx.membership('b', 'u1')]).toEqual([1, 1]);
    idx.applyMembership(rec('u1', ['b']));
    expect([idx.membership('a', 'u1'), idx.membership('b', 'u1')]).toEqual([0, 1]);
    idx.applyMembership(rec('u1', []));
    expect(idx.membership('b', 'u1')).toBe(0);
    idx.applyStatus(status('a', { state: 'deleted' }));
    expect(idx.membership('a', 'u1')).toBe(-1);
    expect(idx.stats()).toMatchObject({ ready: true, segments: 1, members: 0 });
  });

  it('a failed evaluation keeps answering from the last good membership', () => {
    const idx = new SegmentIndex();
    idx.applyStatus(status('a'));
    idx.applyMembership(rec('u1', ['a']));
    idx.markReady();
    idx.applyStatus(status('a', { state: 'timeout', error: 'slow' }));
    expect(idx.membership('a', 'u1')).toBe(1);
  });
});
