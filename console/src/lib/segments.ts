/** Segments page model: blank definition, local checks with the server's field paths, status sentences. */
import type { FieldError } from './api.ts';
import type { Segment, SegmentInput, SegmentStatusView } from './types.ts';
import { fmtInt, fmtMs } from './format.ts';

export const SEGMENT_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;

export const SEGMENT_EXAMPLES: { label: string; sql: string }[] = [
  { label: 'Hit an error', sql: "SELECT DISTINCT user_id FROM telemetry_events WHERE type = 'error'" },
  { label: '≥ 3 sessions in 7 days', sql: 'SELECT user_id FROM telemetry_events WHERE ts >= now() - INTERVAL 7 DAY GROUP BY user_id HAVING count(DISTINCT session_id) >= 3' },
  { label: 'Converted on a point', sql: "SELECT DISTINCT user_id FROM telemetry_events WHERE type = 'usage' AND name = 'buy'" },
];

export function blankSegment(): SegmentInput {
  return { id: '', name: '', description: '', sql: SEGMENT_EXAMPLES[0].sql, scheduleSeconds: 300, timeoutMs: 10_000, enabled: true };
}

export function segmentToInput(s: Segment): SegmentInput {
  return { id: s.id, name: s.name, description: s.description ?? '', sql: s.sql, scheduleSeconds: s.scheduleSeconds, timeoutMs: s.timeoutMs, maxMembers: s.maxMembers, enabled: s.enabled };
}

export function validateSegment(s: SegmentInput): FieldError[] {
  const e: FieldError[] = [];
  if (!SEGMENT_ID.test(s.id)) e.push({ path: 'id', message: 'Lower-case letters, digits, _ and -, starting with a letter or digit' });
  if (!s.name.trim()) e.push({ path: 'name', message: 'Name the segment' });
  if (!s.sql.trim()) e.push({ path: 'sql', message: 'One SELECT returning a user_id column' });
  if (s.scheduleSeconds !== undefined && (!Number.isInteger(s.scheduleSeconds) || s.scheduleSeconds < 1)) e.push({ path: 'scheduleSeconds', message: 'A whole number of seconds' });
  return e;
}

const STATE_LABEL: Record<string, { text: string; tone: 'ok' | 'warn' | 'bad' }> = {
  ok: { text: 'Up to date', tone: 'ok' },
  failed: { text: 'Query failed', tone: 'bad' },
  timeout: { text: 'Timed out', tone: 'bad' },
  over_limit: { text: 'Over its size limit', tone: 'warn' },
};

export function stateTag(st: SegmentStatusView | null | undefined): { text: string; tone: 'ok' | 'warn' | 'bad' | 'muted' } {
  if (!st) return { text: 'Not evaluated yet', tone: 'muted' };
  return STATE_LABEL[st.state] ?? { text: st.state, tone: 'warn' };
}

/** One sentence: how many users, since when, and — when the last run failed — that the last good membership is in force. */
export function statusSentence(st: SegmentStatusView | null | undefined): string {
  if (!st) return 'Waiting for its first evaluation; rules naming it match nobody until then.';
  const size = `${fmtInt(st.members)} ${st.members === 1 ? 'user' : 'users'}`;
  if (st.state === 'ok') return `${size}; evaluated in ${fmtMs(st.durationMs ?? null)} (+${fmtInt(st.added ?? 0)} / −${fmtInt(st.removed ?? 0)}).`;
  if (st.lastGoodAt == null) return `No membership yet: ${st.error ?? st.state}. Rules naming it match nobody.`;
  return `${size} from the last good evaluation are kept: ${st.error ?? st.state}.`;
}
