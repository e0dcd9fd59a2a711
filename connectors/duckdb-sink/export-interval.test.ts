import { EXPORT_DUTY, effectiveSnapshotInterval } from './sink.ts';

test('fast exports keep the configured interval', () => {
  expect(effectiveSnapshotInterval(5000, 40)).toBe(5000);
  expect(effectiveSnapshotInterval(5000, 500)).toBe(5000);
});

test('slow exports stretch the interval so exports take at most EXPORT_DUTY of the time', () => {
  expect(EXPORT_DUTY).toBe(0.1);
  expect(effectiveSnapshotInterval(5000, 800)).toBe(8000);
  expect(effectiveSnapshotInterval(5000, 12_345)).toBe(123_450);
  for (const ms of [501, 1000, 7777, 60_000]) expect(ms / effectiveSnapshotInterval(5000, ms)).toBeLessThanOrEqual(EXPORT_DUTY + 1e-9);
});
