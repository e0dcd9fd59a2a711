/**
 * The SQL the evaluator runs around an operator's segment query (pure).
 *
 * The operator's text is first prepared on its own and must be exactly one SELECT statement
 * with a `user_id` column (sandbox.ts); only then is it embedded here as a subquery. A text that
 * prepares alone as one SELECT has balanced parentheses and quotes, so it cannot close the
 * subquery early; the newline before the closing parenthesis ends a trailing `--` comment. The
 * wrapper is prepared as one statement as well, so nothing can be appended after it.
 *
 * The wrapper casts ids to VARCHAR (an INTEGER user_id is fine), drops NULL, empty and over-long
 * ids (the resolver accepts userId up to 256 characters), de-duplicates, and stops at
 * maxMembers + 1 rows: seeing one row too many is how "grew past its limit" is detected without
 * materialising an unbounded result.
 */
export const MAX_USER_ID_LENGTH = 256;

export function membershipSql(sql: string, maxMembers: number): string {
  if (!Number.isSafeInteger(maxMembers) || maxMembers < 1) throw new RangeError('maxMembers must be a positive integer');
  return [
    'SELECT DISTINCT CAST(segment_query.user_id AS VARCHAR) AS user_id FROM (',
    sql,
    ') AS segment_query',
    `WHERE segment_query.user_id IS NOT NULL AND length(CAST(segment_query.user_id AS VARCHAR)) BETWEEN 1 AND ${MAX_USER_ID_LENGTH}`,
    `LIMIT ${maxMembers + 1}`,
  ].join('\n');
}
