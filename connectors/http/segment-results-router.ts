/**
 * `GET /api/v1/items/{itemId}/metrics/segments?by=&shadow=&from=&to=` (viewer): each shadow
 * compared with its control per device type, country and behavioural segment, Holm-corrected
 * over cells × metrics, with the segment where a regression lives named
 * (pipeline/segment-results). Reads the warehouse's Parquet snapshot (seconds behind the stream).
 *
 * `by`: comma-separated `deviceType`, `country`, `segments` (every segment with a membership in
 * force) or `segment:<id>`; default `deviceType,country,segments`. `from`/`to`: epoch ms,
 * default the last 24 hours.
 */
import { Router } from 'express';
import { z } from 'zod';
import { NotFoundError, ValidationError } from '../../pipeline/errors.ts';
import type { ProfileStore } from '../../pipeline/profiles/profile-store.ts';
import type { SegmentIndex } from '../../pipeline/segments/segment-index.ts';
import { SEGMENT_ID } from '../../pipeline/traffic-split/validate.ts';
import { segmentResults } from '../../pipeline/segment-results/results.ts';
import type { Dimension } from '../../pipeline/segment-results/totals-sql.ts';
import type { SequentialOptions } from '../../pipeline/stats/sequential.ts';
import type { OpenApiRegistry } from './openapi.ts';
import { parseOr422 } from './validate.ts';
import { requireRole, type TokenStore } from './auth.ts';
import type { ParquetSource } from '../duckdb-sink/query.ts';

const ITEM_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const DAY = 24 * 3600 * 1000;
const MAX_DIMENSIONS = 12;
const MAX_MS = 8.64e15;
const query = z.object({
  by: z.string().max(1000).optional().describe('deviceType, country, segments, segment:<id> (comma-separated)'),
  shadow: z.string().max(256).optional().describe('One shadow (default: all with a control cohort)'),
  // Bounded by the largest JS Date: past it DuckDB's BIGINT cast would fail as a 500.
  from: z.coerce.number().int().min(0).max(MAX_MS).optional().describe('Epoch ms (default: 24 h ago)'),
  to: z.coerce.number().int().min(0).max(MAX_MS).optional().describe('Epoch ms (default: now)'),
});

export function createSegmentResultsRouter(deps: { profiles: ProfileStore; index: SegmentIndex; parquetDir: ParquetSource; tokens: TokenStore; openapi: OpenApiRegistry; sequential?: SequentialOptions; now?: () => number }): Router {
  const r = Router();
  deps.openapi.add({
    method: 'get', path: '/api/v1/items/{itemId}/metrics/segments', summary: 'Shadow vs control per device type, country and segment, Holm-corrected, naming where a regression lives',
    auth: 'viewer', tags: ['metrics', 'segments'], query, responses: { 200: '{ itemId, from, to, dimensions, shadows: [{ shadow, global, breakdown }], noBaseline }', 401: 'No token', 404: 'Unknown item', 422: 'Bad query' },
  });
  r.get('/api/v1/items/:itemId/metrics/segments', requireRole(deps.tokens, 'viewer'), async (req, res) => {
    const itemId = parseOr422(z.string().regex(ITEM_ID), req.params.itemId, 'itemId', 'item id');
    const q = parseOr422(query, req.query, 'query', 'segment results query');
    const profile = deps.profiles.get(itemId);
    if (!profile) throw new NotFoundError(`item ${itemId} has no shadow profile`);
    const dims: Dimension[] = [];
    for (const part of (q.by ?? 'deviceType,country,segments').split(',').map((s) => s.trim()).filter(Boolean)) {
      if (part === 'deviceType' || part === 'country') dims.push(part);
      else if (part === 'segments') {
        // Braces matter: an `else` after the loop's `if` would bind to it.
        for (const st of deps.index.statuses()) if (st.lastGoodEvaluationId !== null) dims.push(`segment:${st.segmentId}`);
      } else if (part.startsWith('segment:') && SEGMENT_ID.test(part.slice(8))) dims.push(part as Dimension);
      else throw new ValidationError('unknown breakdown', [{ path: 'query/by', message: `"${part.slice(0, 64)}" is not deviceType, country, segments or segment:<id>` }]);
    }
    const unique = [...new Set(dims)].slice(0, MAX_DIMENSIONS);
    const shadows = profile.shadows.filter((s) => !q.shadow || s.name === q.shadow);
    if (q.shadow && shadows.length === 0) throw new ValidationError('unknown shadow', [{ path: 'query/shadow', message: `the item has no shadow "${q.shadow}"` }]);
    const to = q.to ?? (deps.now ?? Date.now)();
    const from = q.from ?? to - DAY;
    if (from >= to) throw new ValidationError('empty range', [{ path: 'query/from', message: 'from must be before to' }]);
    res.json(await segmentResults(deps.parquetDir, itemId, shadows, unique, from, to, deps.sequential));
  });
  return r;
}
