/**
 * The SegmentLookup a golden case's `segments` map describes (cases.json; reference.py reads the
 * same map): segment id → member user ids. A segment absent from the map is unknown (-1, never
 * evaluated); no map at all means no segment is known.
 */
import type { SegmentLookup } from '../domain/types.ts';

export function lookupOf(segments: Record<string, string[]> | undefined): SegmentLookup | undefined {
  if (segments === undefined) return undefined;
  return { membership: (id, userId) => (Object.hasOwn(segments, id) ? (segments[id].includes(userId) ? 1 : 0) : -1) };
}
