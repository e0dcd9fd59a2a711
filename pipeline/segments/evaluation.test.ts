import type { Segment, SegmentStatus } from '../../schemas/types.generated.ts';
import { decideOutcome, dueSegments, failing, statusAfter } from './evaluation.ts';
import { membershipSql } from './sql.ts';
import { normaliseSql, segmentInputSchema, DEFAULT_SEGMENT_LIMITS } from './definition.ts';

const def = (over: Partial<Segment> = {}): Segment => ({
  id: 'power', name: 'Power users', description: '', sql: 'SELECT user_id FROM telemetry_events', scheduleSeconds: 60, timeoutMs: 1000,
  maxMembers: 100, enabled: true, deleted: false, updatedBy: 'op', updatedAt: 1000, ...over,
});
const facts = { evaluationId: 'e2', evaluatedAt: 5000, durationMs: 12, snapshotAt: 4000, candidates: 10, members: 10, added: 4, removed: 1 };
const good: SegmentStatus = {
  segmentId: 'power', state: 'ok', evaluationId: 'e1', evaluatedAt: 2000, durationMs: 5, snapshotAt: 1500, members: 7, candidateMembers: 7,
  added: 7, removed: 0, lastGoodEvaluationId: 'e1', lastGoodAt: 2000, error: null, definitionUpdatedAt: 1000,
};

describe('decideOutcome', () => {
  const budget = { otherMembers: 0, totalMembers: 1000 };
  it('applies a result within both limits', () => {
    expect(decideOutcome(def(), { kind: 'ok', candidates: 100 }, budget)).toEqual({ apply: true, state: 'ok', error: null });
  });
  it('keeps the last membership when the query grows past maxMembers', () => {
    const o = decideOutcome(def(), { kind: 'ok', candidates: 101 }, budget);
    expect(o).toMatchObject({ apply: false, state: 'over_limit' });
    expect(o.error).toMatch(/maxMembers \(100\)/);
  });
  it('keeps it when all segments together would pass the resolvers\' budget', () => {
    const o = decideOutcome(def(), { kind: 'ok', candidates: 50 }, { otherMembers: 960, totalMembers: 1000 });
    expect(o).toMatchObject({ apply: false, state: 'over_limit' });
    expect(o.error).toMatch(/PENUMBRA_SEGMENT_TOTAL_MEMBERS/);
  });
  it('keeps it on failure and on timeout', () => {
    expect(decideOutcome(def(), { kind: 'failed', error: 'Binder Error' }, budget)).toEqual({ apply: false, state: 'failed', error: 'Binder Error' });
    expect(decideOutcome(def(), { kind: 'timeout', error: 'slow' }, budget)).toEqual({ apply: false, state: 'timeout', error: 'slow' });
  });
});

describe('statusAfter', () => {
  it('an applied evaluation becomes the last good one', () => {
    const s = statusAfter(def(), { apply: true, state: 'ok', error: null }, good, facts);
    expect(s).toMatchObject({ state: 'ok', members: 10, added: 4, removed: 1, lastGoodEvaluationId: 'e2', lastGoodAt: 5000, candidateMembers: 10 });
  });
  it('a failed one carries the last good membership forward and names the error', () => {
    const s = statusAfter(def(), { apply: false, state: 'failed', error: 'boom' }, good, { ...facts, candidates: null });
    expect(s).toMatchObject({ state: 'failed', members: 7, added: 0, removed: 0, lastGoodEvaluationId: 'e1', lastGoodAt: 2000, error: 'boom', candidateMembers: null });
    expect(failing([s, good])).toEqual([s]);
  });
  it('a failure before any good evaluation has no membership in force', () => {
    const s = statusAfter(def(), { apply: false, state: 'timeout', error: 'slow' }, undefined, facts);
    expect(s).toMatchObject({ members: 0, lastGoodEvaluationId: null, lastGoodAt: null });
  });
});

describe('dueSegments', () => {
  it('orders new and changed definitions first, then by how overdue they are; skips disabled ones', () => {
    const defs = [def({ id: 'a' }), def({ id: 'b', updatedAt: 3000 }), def({ id: 'c' }), def({ id: 'd', enabled: false }), def({ id: 'e' })];
    const st: Record<string, SegmentStatus> = {
      a: { ...good, segmentId: 'a', evaluatedAt: 10_000 },
      b: { ...good, segmentId: 'b', evaluatedAt: 69_000, definitionUpdatedAt: 1000 },
      c: { ...good, segmentId: 'c', evaluatedAt: 5_000 },
      e: { ...good, segmentId: 'e', evaluatedAt: 69_000 },
    };
    const due = dueSegments(defs, (id) => st[id], () => undefined, 70_000);
    expect(due.map((s) => s.id)).toEqual(['b', 'c', 'a']);
  });
  it('a recent attempt by this evaluator counts even before its status comes back', () => {
    const due = dueSegments([def({ id: 'a' })], () => ({ ...good, segmentId: 'a', evaluatedAt: 0 }), () => 65_000, 70_000);
    expect(due).toEqual([]);
  });
});

describe('SQL text', () => {
  it('drops trailing semicolons and whitespace', () => {
    expect(normaliseSql('  SELECT 1 AS user_id ;; \n')).toBe('SELECT 1 AS user_id');
  });
  it('wraps the query: distinct VARCHAR ids, no empty or over-long ids, one row over the limit', () => {
    const sql = membershipSql('SELECT user_id FROM t -- trailing comment', 10);
    expect(sql).toContain('SELECT user_id FROM t -- trailing comment\n) AS segment_query');
    expect(sql).toMatch(/LIMIT 11$/);
  });
  it('the input schema applies the deployment limits', () => {
    const schema = segmentInputSchema({ ...DEFAULT_SEGMENT_LIMITS, maxMembers: 500, minIntervalSeconds: 30 });
    const r = schema.safeParse({ id: 'Bad Id', name: '', sql: ';', scheduleSeconds: 5, maxMembers: 501 });
    expect(r.success).toBe(false);
    const paths = r.error!.issues.map((i) => i.path.join('/')).sort();
    expect(paths).toEqual(['id', 'maxMembers', 'name', 'scheduleSeconds', 'sql']);
    const ok = schema.parse({ id: 'power-users', name: 'Power', sql: 'SELECT user_id FROM assignments;' });
    expect(ok).toMatchObject({ sql: 'SELECT user_id FROM assignments', scheduleSeconds: 300, maxMembers: 500, timeoutMs: 10_000, enabled: true });
  });
});
