/**
 * Behavioural segments over HTTP (pipeline/segments).
 *
 * - `GET /api/v1/segments` (viewer) → `{ segments: [definition + status + size] }`;
 *   `GET /api/v1/segments/{id}` (viewer) → one.
 * - `POST /api/v1/segments` (operator) → 201; `PUT /api/v1/segments/{id}` (operator) replaces;
 *   `DELETE /api/v1/segments/{id}` (operator) → 204 (a `deleted: true` record; the evaluator then
 *   removes its members). The SQL is checked in the sandbox against the current snapshot before
 *   anything is produced (422 on field `sql` with DuckDB's reason). Each change is one produce
 *   call with the definition (penumbra.segments, key id) and its audit entry; the answer waits
 *   until this process's follower shows it (read-your-writes), as alert rules do.
 * - `POST /api/v1/segments/preview` (operator) → runs SQL in the sandbox without saving:
 *   `{ members, truncated, sample, durationMs }`.
 * - `POST /api/v1/segments/{id}/evaluate` (operator) → evaluates now (in the process that runs
 *   the evaluator; 503 elsewhere) and returns the new status.
 * - `GET /api/v1/segments/{id}/members/{userId}` (viewer) → `{ member: true | false | null }` as
 *   this process's resolver sees it (null = unknown: not evaluated or not loaded).
 */
import { randomUUID } from 'node:crypto';
import { Router, type Response } from 'express';
import { z } from 'zod';
import type { TopicNames } from '../../pipeline/config/config.ts';
import type { AvroProducer } from '../../pipeline/kafka/client.ts';
import { ConflictError, NotFoundError, PenumbraError, UnavailableError, ValidationError } from '../../pipeline/errors.ts';
import type { Segment, SegmentStatus } from '../../schemas/types.generated.ts';
import { MAX_SEGMENTS, SEGMENT_ID, segmentInputSchema, segmentView, normaliseSql, MAX_SQL_LENGTH, type SegmentLimits } from '../../pipeline/segments/definition.ts';
import type { SegmentStore } from '../../pipeline/segments/segment-store.ts';
import type { SegmentIndex } from '../../pipeline/segments/segment-index.ts';
import { Sandbox, SegmentTimeoutError, firstLine } from '../../pipeline/segments/sandbox.ts';
import type { ParquetSource } from '../duckdb-sink/query.ts';
import { NotLeaderError, type SegmentEvaluator } from '../../pipeline/segments/evaluator.ts';
import { falsePositiveRate } from '../../pipeline/segments/member-hash.ts';
import type { OpenApiRegistry } from './openapi.ts';
import { parseOr422 } from './validate.ts';
import { requireRole, type Principal, type TokenStore } from './auth.ts';

export interface SegmentsRouterDeps {
  store: SegmentStore;
  index: SegmentIndex;
  evaluator: () => SegmentEvaluator | null;
  producer: AvroProducer;
  topics: TopicNames;
  tokens: TokenStore;
  openapi: OpenApiRegistry;
  parquetDir: ParquetSource;
  limits: SegmentLimits;
  visibleWithinMs?: number;
}

const idParam = z.string().regex(SEGMENT_ID);
const userParam = z.string().min(1).max(256);

export function createSegmentsRouter(deps: SegmentsRouterDeps): Router {
  const r = Router();
  const viewer = requireRole(deps.tokens, 'viewer');
  const operator = requireRole(deps.tokens, 'operator');
  const who = (res: Response): Principal => res.locals.principal as Principal;
  const input = segmentInputSchema(deps.limits);
  const putInput = input.extend({ id: idParam.optional() });
  const previewInput = z.object({
    sql: z.string().max(MAX_SQL_LENGTH).transform(normaliseSql).refine((s) => s.length > 0, 'give one SELECT returning a user_id column'),
    maxMembers: z.number().int().min(1).max(deps.limits.maxMembers).default(deps.limits.maxMembers),
    timeoutMs: z.number().int().min(100).max(30_000).default(10_000),
  }).strict();

  const view = (s: Segment) => {
    const st: SegmentStatus | undefined = deps.index.getStatus(s.id);
    return {
      ...segmentView(s),
      status: st ? { state: st.state, members: st.members, candidateMembers: st.candidateMembers, added: st.added, removed: st.removed, evaluatedAt: st.evaluatedAt, durationMs: st.durationMs, snapshotAt: st.snapshotAt, lastGoodAt: st.lastGoodAt, error: st.error } : null,
      /** Members this process's resolver holds (the membership in force once loaded). */
      loadedMembers: deps.index.size(s.id),
      falsePositiveRate: falsePositiveRate(st?.members ?? 0),
    };
  };

  async function checkSql(sql: string): Promise<void> {
    const sb = await Sandbox.open(deps.parquetDir).catch((err) => {
      throw new UnavailableError(`cannot open the warehouse snapshot to check the SQL: ${firstLine(err)}`);
    });
    try {
      await sb.check(sql);
    } finally {
      sb.close();
    }
  }

  async function write(res: Response, action: 'create' | 'update' | 'delete', before: Segment | null, after: Segment): Promise<void> {
    const p = who(res);
    await deps.producer.send([
      { topic: deps.topics.segments, key: after.id, value: after },
      {
        topic: deps.topics.audit,
        key: '-',
        value: {
          id: randomUUID(), itemId: null, actor: p.name, role: p.role, action: `segment.${action}`, outcome: 'accepted', reason: null,
          beforeJson: before ? JSON.stringify(segmentView(before)) : null, afterJson: after.deleted ? null : JSON.stringify(segmentView(after)), evidenceJson: null,
          requestId: (res.locals.requestId as string | undefined) ?? null, at: after.updatedAt,
        },
      },
    ]);
    try {
      await deps.store.waitUntil(() => {
        const cur = deps.store.get(after.id);
        return after.deleted ? cur === undefined || cur.updatedAt > after.updatedAt : (cur?.updatedAt ?? -1) >= after.updatedAt;
      }, deps.visibleWithinMs ?? 10_000);
    } catch {
      throw new UnavailableError('the segment change is stored in Kafka but not visible in this process yet; retry the read shortly');
    }
  }

  deps.openapi.add({ method: 'get', path: '/api/v1/segments', summary: 'Behavioural segments with their last evaluation and size', auth: 'viewer', tags: ['segments'], responses: { 200: '{ segments }', 401: 'No token' } });
  r.get('/api/v1/segments', viewer, (_req, res) => {
    res.json({ segments: deps.store.all().map(view), limits: deps.limits, loaded: deps.index.isReady });
  });

  deps.openapi.add({ method: 'post', path: '/api/v1/segments/preview', summary: 'Run segment SQL in the sandbox without saving it: size and a sample', auth: 'operator', tags: ['segments'], body: previewInput, responses: { 200: '{ members, truncated, sample, durationMs }', 401: 'No token', 403: 'Needs operator', 422: 'SQL refused (field sql)', 503: 'Snapshot unavailable' } });
  r.post('/api/v1/segments/preview', operator, async (req, res) => {
    const q = parseOr422(previewInput, req.body, '', 'segment preview');
    await checkSql(q.sql);
    const sb = await Sandbox.open(deps.parquetDir);
    const t0 = Date.now();
    const sample: string[] = [];
    try {
      const rows = await sb.members(q.sql, q.maxMembers, q.timeoutMs, (chunk) => {
        for (const [u] of chunk.getRows()) if (sample.length < 20) sample.push(String(u));
      });
      res.json({ members: Math.min(rows, q.maxMembers), truncated: rows > q.maxMembers, sample, durationMs: Date.now() - t0 });
    } catch (err) {
      if (err instanceof SegmentTimeoutError) throw new ValidationError('segment SQL is too slow', [{ path: 'sql', message: err.message }]);
      if (err instanceof PenumbraError) throw err;
      throw new ValidationError('segment SQL failed', [{ path: 'sql', message: firstLine(err) }]);
    } finally {
      sb.close();
    }
  });

  deps.openapi.add({ method: 'get', path: '/api/v1/segments/{id}', summary: 'One segment with its last evaluation', auth: 'viewer', tags: ['segments'], responses: { 200: 'The segment', 401: 'No token', 404: 'Unknown segment' } });
  r.get('/api/v1/segments/:id', viewer, (req, res) => {
    const id = parseOr422(idParam, req.params.id, 'id', 'segment id');
    const s = deps.store.get(id);
    if (!s) throw new NotFoundError(`segment ${id} does not exist`);
    res.json(view(s));
  });

  deps.openapi.add({ method: 'post', path: '/api/v1/segments', summary: 'Define a behavioural segment (SQL over the warehouse snapshot; audited)', auth: 'operator', tags: ['segments'], body: input, responses: { 201: 'The segment', 401: 'No token', 403: 'Needs operator', 409: 'Id taken or too many segments', 422: 'Invalid definition or SQL (field paths)', 503: 'Kafka or the snapshot unavailable' } });
  r.post('/api/v1/segments', operator, async (req, res) => {
    const body = parseOr422(input, req.body, '', 'segment');
    if (deps.store.get(body.id)) throw new ConflictError(`segment ${body.id} exists; PUT /api/v1/segments/${body.id} replaces it`);
    if (deps.store.all().length >= MAX_SEGMENTS) throw new ConflictError(`at most ${MAX_SEGMENTS} segments`);
    await checkSql(body.sql);
    const seg: Segment = { ...body, deleted: false, updatedBy: who(res).name, updatedAt: Date.now() };
    await write(res, 'create', null, seg);
    res.status(201).setHeader('Location', `/api/v1/segments/${seg.id}`).json(view(seg));
  });

  deps.openapi.add({ method: 'put', path: '/api/v1/segments/{id}', summary: 'Replace a segment definition (audited; evaluated again at once)', auth: 'operator', tags: ['segments'], body: putInput, responses: { 200: 'The segment', 401: 'No token', 403: 'Needs operator', 404: 'Unknown segment', 422: 'Invalid definition or SQL (field paths)' } });
  r.put('/api/v1/segments/:id', operator, async (req, res) => {
    const id = parseOr422(idParam, req.params.id, 'id', 'segment id');
    const before = deps.store.get(id);
    if (!before) throw new NotFoundError(`segment ${id} does not exist`);
    const body = parseOr422(putInput, { id, ...(req.body as object) }, '', 'segment');
    if (body.id !== id) throw new ValidationError('segment id cannot change', [{ path: 'id', message: `must be ${id} (the id in the path)` }]);
    await checkSql(body.sql);
    const seg: Segment = { ...body, id, deleted: false, updatedBy: who(res).name, updatedAt: Math.max(Date.now(), before.updatedAt + 1) };
    await write(res, 'update', before, seg);
    res.json(view(seg));
  });

  deps.openapi.add({ method: 'delete', path: '/api/v1/segments/{id}', summary: 'Delete a segment (audited); its members leave it, rules naming it match nobody', auth: 'operator', tags: ['segments'], responses: { 204: 'Deleted', 401: 'No token', 403: 'Needs operator', 404: 'Unknown segment' } });
  r.delete('/api/v1/segments/:id', operator, async (req, res) => {
    const id = parseOr422(idParam, req.params.id, 'id', 'segment id');
    const before = deps.store.get(id);
    if (!before) throw new NotFoundError(`segment ${id} does not exist`);
    await write(res, 'delete', before, { ...before, deleted: true, updatedBy: who(res).name, updatedAt: Math.max(Date.now(), before.updatedAt + 1) });
    res.status(204).end();
  });

  deps.openapi.add({ method: 'post', path: '/api/v1/segments/{id}/evaluate', summary: 'Evaluate a segment now', auth: 'operator', tags: ['segments'], responses: { 200: 'The new status', 401: 'No token', 403: 'Needs operator', 404: 'Unknown segment', 503: 'The evaluator runs in another process or is loading' } });
  r.post('/api/v1/segments/:id/evaluate', operator, async (req, res) => {
    const id = parseOr422(idParam, req.params.id, 'id', 'segment id');
    if (!deps.store.get(id)) throw new NotFoundError(`segment ${id} does not exist`);
    const ev = deps.evaluator();
    if (!ev) throw new UnavailableError('this process does not run the segment evaluator', undefined, false);
    try {
      const st = await ev.evaluateNow(id);
      // Read-your-writes: the size and membership this process shows next include this evaluation.
      await deps.index.waitUntil(() => deps.index.getStatus(id)?.evaluationId === st.evaluationId).catch(() => {});
      res.json(st);
    } catch (err) {
      if (err instanceof NotLeaderError) throw new UnavailableError(err.message);
      throw err;
    }
  });

  deps.openapi.add({ method: 'get', path: '/api/v1/segments/{id}/members/{userId}', summary: 'Whether a user is in a segment, as this process\'s resolver sees it', auth: 'viewer', tags: ['segments'], responses: { 200: '{ member: true | false | null }', 401: 'No token', 404: 'Unknown segment' } });
  r.get('/api/v1/segments/:id/members/:userId', viewer, (req, res) => {
    const id = parseOr422(idParam, req.params.id, 'id', 'segment id');
    const userId = parseOr422(userParam, req.params.userId, 'userId', 'user id');
    if (!deps.store.get(id)) throw new NotFoundError(`segment ${id} does not exist`);
    const m = deps.index.membership(id, userId);
    res.json({ segmentId: id, userId, member: m === -1 ? null : m === 1 });
  });

  return r;
}
