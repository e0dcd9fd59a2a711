/**
 * The warehouse query behind per-segment results (pure: builds SQL text; runs in
 * connectors/duckdb-sink/query.ts over the Parquet snapshot). For one item and a time range it
 * returns, per dimension value and arm, the sufficient statistics of the live comparison
 * (pipeline/stats `VariantTotals`): sessions, error sessions, requests and failed ones, latency
 * count/sum/sum of squares, sessions per usage point, perf count/sum/sum of squares per name.
 *
 * Definitions mirror the live windows (pipeline/windows/classify.ts): only verified events;
 * error session = a session with ≥ 1 error event; failed request = attrs.status ≥ 500 or
 * attrs.failed = "true"; latency = finite values of request events; conversion = sessions with
 * ≥ 1 usage event of the point. Arms: variant, and for `control` the shadow in control_of.
 *
 * Who is in a cell — decided: the user's attributes come from their latest assignment of the item
 * (penumbra.assignments carries deviceType and country as the resolver used them) rather than
 * from new fields on every event: no wire change, and it is exactly what targeting saw. Segment
 * membership is the user's current one (the warehouse's segment_memberships), so prefer segments
 * defined by behaviour BEFORE exposure: a segment built from the outcome itself ("users who hit an
 * error") is biased by the shadow it is used to judge.
 */
import { SEGMENT_ID } from '../traffic-split/validate.ts';

export type Dimension = 'deviceType' | 'country' | `segment:${string}`;

export const MAX_VALUES_PER_DIMENSION = 20;

const lit = (s: string): string => `'${s.replace(/'/g, "''")}'`;

function dimensionExpr(d: Dimension): string {
  if (d === 'deviceType') return "coalesce(device_type, '(unknown)')";
  if (d === 'country') return "coalesce(country, '(unknown)')";
  const id = d.slice('segment:'.length);
  if (!SEGMENT_ID.test(id)) throw new RangeError(`not a segment id: ${id}`);
  return `CASE WHEN list_contains(segs, ${lit(id)}) THEN 'in' ELSE 'out' END`;
}

/** Sessions with their arm, flags, sums and the user's dimensions. Parameters: $1 item, $2 from, $3 to (epoch ms). */
function sessionsCte(): string {
  return `ev AS (
    SELECT session_id, user_id, variant, control_of, type, name, value, attrs_json
    FROM telemetry_events
    WHERE item_id = $1 AND verified AND ts >= epoch_ms($2::BIGINT) AND ts < epoch_ms($3::BIGINT) AND variant <> 'original'
  ),
  att AS (
    SELECT user_id, arg_max(device_type, ts) AS device_type, arg_max(country, ts) AS country
    FROM assignments WHERE item_id = $1 GROUP BY user_id
  ),
  seg AS (SELECT user_id, CAST(segments_json AS JSON)::VARCHAR[] AS segs FROM segment_memberships),
  sess AS (
    SELECT session_id, any_value(user_id) AS user_id, any_value(variant) AS variant, any_value(control_of) AS control_of,
      bool_or(type = 'error') AS err,
      count(*) FILTER (WHERE type = 'request') AS requests,
      count(*) FILTER (WHERE type = 'request' AND (coalesce(try_cast(json_extract_string(attrs_json, '$.status') AS DOUBLE), 0) >= 500 OR json_extract_string(attrs_json, '$.failed') = 'true')) AS request_errors,
      count(*) FILTER (WHERE type = 'request' AND isfinite(value)) AS lat_n,
      coalesce(sum(value) FILTER (WHERE type = 'request' AND isfinite(value)), 0) AS lat_sum,
      coalesce(sum(value * value) FILTER (WHERE type = 'request' AND isfinite(value)), 0) AS lat_sq
    FROM ev GROUP BY session_id
  ),
  cells AS (
    SELECT s.*, a.device_type, a.country, coalesce(g.segs, []::VARCHAR[]) AS segs
    FROM sess s LEFT JOIN att a USING (user_id) LEFT JOIN seg g USING (user_id)
  )`;
}

function dimensionUnion(dims: readonly Dimension[], select: string, from: string): string {
  const parts = [`SELECT 'all' AS dimension, '*' AS value, ${select} FROM ${from}`];
  for (const d of dims) parts.push(`SELECT ${lit(d)} AS dimension, ${dimensionExpr(d)} AS value, ${select} FROM ${from}`);
  return parts.join('\nUNION ALL\n');
}

/** Per (dimension, value, variant, control_of): session counts and sums. */
export function armTotalsSql(dims: readonly Dimension[]): string {
  const cols = 'variant, control_of, err, requests, request_errors, lat_n, lat_sum, lat_sq';
  return `WITH ${sessionsCte()},
  tagged AS (${dimensionUnion(dims, cols, 'cells')})
  SELECT dimension, value, variant, control_of,
    count(*) AS sessions, count(*) FILTER (WHERE err) AS error_sessions,
    sum(requests) AS requests, sum(request_errors) AS request_errors,
    sum(lat_n) AS lat_n, sum(lat_sum) AS lat_sum, sum(lat_sq) AS lat_sq
  FROM tagged GROUP BY ALL ORDER BY dimension, value, variant, control_of`;
}

/** Per (dimension, value, variant, control_of, point): sessions that hit the usage point. */
export function conversionsSql(dims: readonly Dimension[]): string {
  return `WITH ${sessionsCte()},
  hits AS (SELECT DISTINCT session_id, name AS point FROM ev WHERE type = 'usage'),
  joined AS (SELECT c.*, h.point FROM cells c JOIN hits h USING (session_id)),
  tagged AS (${dimensionUnion(dims, 'variant, control_of, point', 'joined')})
  SELECT dimension, value, variant, control_of, point, count(*) AS sessions FROM tagged GROUP BY ALL`;
}

/** Per (dimension, value, variant, control_of, perf name): count, sum, sum of squares. */
export function perfSql(dims: readonly Dimension[]): string {
  return `WITH ${sessionsCte()},
  perf AS (SELECT session_id, name, value FROM ev WHERE type = 'perf' AND isfinite(value)),
  joined AS (SELECT c.variant, c.control_of, c.device_type, c.country, c.segs, p.name, p.value AS pv FROM cells c JOIN perf p USING (session_id)),
  tagged AS (${dimensionUnion(dims, 'variant, control_of, name, pv', 'joined')})
  SELECT dimension, value, variant, control_of, name, count(*) AS n, sum(pv) AS s, sum(pv * pv) AS sq FROM tagged GROUP BY ALL`;
}
