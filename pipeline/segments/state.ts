/**
 * The evaluator's membership state: which users are in which segment, in a private in-memory
 * DuckDB (never the warehouse file, and never the sandbox that runs operator SQL). It turns a
 * new query result into the per-user records of penumbra.segments.memberships: only users whose
 * membership changed get a record, and each record lists ALL segments of that user (the topic is
 * compacted by user, so the latest record must be complete).
 *
 * Why DuckDB rather than JavaScript maps: the diff of a 1,000,000-member segment against its
 * previous membership is two EXCEPTs over columnar data, and the state costs tens of bytes per
 * membership instead of a Map entry and a string per user in the Node heap.
 *
 * Rebuilt from the memberships topic on start (`load`), so it survives restarts without a file:
 * the topic is the durable copy (docs/ARCHITECTURE.md, "State is rebuilt from the topics").
 */
import { DuckDBInstance, type DuckDBAppender, type DuckDBConnection } from '@duckdb/node-api';

export interface MemberChange {
  userId: string;
  /** Every segment the user is in after the change, sorted. */
  segments: string[];
}

export class MembershipState {
  private seq = 0;
  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
    private replay: DuckDBAppender | null,
  ) {}

  static async create(memoryLimit = '256MB'): Promise<MembershipState> {
    const instance = await DuckDBInstance.create(':memory:', { threads: '1', memory_limit: memoryLimit });
    const conn = await instance.connect();
    await conn.run('CREATE TABLE members (segment_id VARCHAR NOT NULL, user_id VARCHAR NOT NULL)');
    await conn.run('CREATE TABLE replay (user_id VARCHAR NOT NULL, seq BIGINT NOT NULL, segs VARCHAR NOT NULL)');
    await conn.run('CREATE TABLE cand (user_id VARCHAR NOT NULL)');
    return new MembershipState(instance, conn, await conn.createAppender('replay'));
  }

  /** Replay: one record of the memberships topic, in topic order (later records win). */
  replayRecord(userId: string, segments: readonly string[]): void {
    if (!this.replay) throw new Error('replay already finished');
    this.replay.appendVarchar(userId);
    this.replay.appendBigInt(BigInt(this.seq++));
    this.replay.appendVarchar(segments.join(','));
    this.replay.endRow();
  }

  /** End of replay: the latest record per user becomes the state. */
  async finishReplay(): Promise<void> {
    if (this.replay) {
      this.replay.closeSync();
      this.replay = null;
    }
    await this.conn.run('DELETE FROM members');
    await this.conn.run(`INSERT INTO members
      SELECT s.segment_id, l.user_id
      FROM (SELECT user_id, arg_max(segs, seq) AS segs FROM replay GROUP BY user_id) l,
           unnest(string_split(l.segs, ',')) AS s(segment_id)
      WHERE s.segment_id <> ''`);
    await this.conn.run('DELETE FROM replay');
  }

  /** Members per segment. */
  async counts(): Promise<Map<string, number>> {
    const rows = (await this.conn.runAndReadAll('SELECT segment_id, count(*) AS n FROM members GROUP BY segment_id')).getRowObjectsJS();
    return new Map(rows.map((r) => [r.segment_id as string, Number(r.n)]));
  }

  /** Starts a candidate membership; feed it with `appendCandidates` (chunks from the sandbox). */
  async beginCandidates(): Promise<DuckDBAppender> {
    await this.conn.run('DELETE FROM cand');
    return this.conn.createAppender('cand');
  }

  /**
   * Makes `cand` the membership of `segmentId` (an empty `cand` removes everyone: deletion) and
   * hands the changed users' complete records to `publish` in batches. The change is committed
   * only when every `publish` resolved, so a failed produce leaves the state as it was and the
   * next evaluation sends the same changes again (records are complete, so resending is harmless).
   */
  async applyCandidates(segmentId: string, publish: (batch: MemberChange[]) => Promise<void>, batchSize = 2000): Promise<{ added: number; removed: number; members: number }> {
    await this.conn.run('BEGIN TRANSACTION');
    try {
      await this.conn.run(`CREATE OR REPLACE TEMP TABLE chg AS
        SELECT user_id, true AS entered FROM (SELECT user_id FROM cand EXCEPT SELECT user_id FROM members WHERE segment_id = $1)
        UNION ALL
        SELECT user_id, false AS entered FROM (SELECT user_id FROM members WHERE segment_id = $1 EXCEPT SELECT user_id FROM cand)`, [segmentId]);
      await this.conn.run('DELETE FROM members WHERE segment_id = $1 AND user_id IN (SELECT user_id FROM chg WHERE NOT entered)', [segmentId]);
      await this.conn.run('INSERT INTO members SELECT $1, user_id FROM chg WHERE entered', [segmentId]);
      const counts = (await this.conn.runAndReadAll(`SELECT count(*) FILTER (WHERE entered) AS added, count(*) FILTER (WHERE NOT entered) AS removed,
        (SELECT count(*) FROM members WHERE segment_id = $1) AS members FROM chg`, [segmentId])).getRowObjectsJS()[0];
      const result = await this.conn.stream(`SELECT c.user_id, coalesce(string_agg(m.segment_id, ',' ORDER BY m.segment_id), '') AS segs
        FROM chg c LEFT JOIN members m ON m.user_id = c.user_id GROUP BY c.user_id`);
      let batch: MemberChange[] = [];
      for (;;) {
        const chunk = await result.fetchChunk();
        if (!chunk || chunk.rowCount === 0) break;
        for (const [userId, segs] of chunk.getRows() as [string, string][]) {
          batch.push({ userId, segments: segs === '' ? [] : segs.split(',') });
          if (batch.length >= batchSize) {
            await publish(batch);
            batch = [];
          }
        }
      }
      if (batch.length > 0) await publish(batch);
      await this.conn.run('COMMIT');
      return { added: Number(counts.added), removed: Number(counts.removed), members: Number(counts.members) };
    } catch (err) {
      await this.conn.run('ROLLBACK').catch(() => {});
      throw err;
    }
  }

  /** Users of one segment (tests, the members route). */
  async isMember(segmentId: string, userId: string): Promise<boolean> {
    const r = (await this.conn.runAndReadAll('SELECT 1 FROM members WHERE segment_id = $1 AND user_id = $2 LIMIT 1', [segmentId, userId])).getRowObjectsJS();
    return r.length > 0;
  }

  close(): void {
    this.replay?.closeSync();
    this.conn.closeSync();
    this.instance.closeSync();
  }
}
