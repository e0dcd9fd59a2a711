import { EXPORT_DUTY, EXPORT_MAX_STRETCH, effectiveSnapshotInterval } from './sink.ts';

test('fast exports keep the configured interval', () => {
  expect(effectiveSnapshotInterval(5000, 40)).toBe(5000);
  expect(effectiveSnapshotInterval(5000, 500)).toBe(5000);
});

test('slow exports stretch the interval so exports take at most EXPORT_DUTY of the time, up to EXPORT_MAX_STRETCH', () => {
  expect(EXPORT_DUTY).toBe(0.1);
  expect(effectiveSnapshotInterval(5000, 800)).toBe(8000);
  for (const ms of [501, 1000, 2999]) expect(ms / effectiveSnapshotInterval(5000, ms)).toBeLessThanOrEqual(EXPORT_DUTY + 1e-9);
  // One stalled export (a busy machine) must not push freshness out by minutes.
  expect(effectiveSnapshotInterval(5000, 12_345)).toBe(5000 * EXPORT_MAX_STRETCH);
  expect(effectiveSnapshotInterval(5000, 600_000)).toBe(30_000);
});
