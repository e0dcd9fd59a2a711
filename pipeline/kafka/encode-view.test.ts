/**
 * AvroCodec.encodeView (the producer's slab encoding) writes the same bytes as encode: across
 * slab boundaries, for a record larger than a slab, and without disturbing earlier views.
 */
import { AvroCodec } from './registry.ts';
import { telemetryEvent } from '../../connectors/duckdb-sink/fixtures.ts';

function codecFor(topic: string): AvroCodec {
  const codec = new AvroCodec('http://127.0.0.1:1/unused');
  // No registry needed: the topic → schema and id maps registerForTopic would fill.
  const priv = codec as unknown as { topicIds: Map<string, number>; topicSchema: Map<string, string> };
  priv.topicIds.set(topic, 42);
  priv.topicSchema.set(topic, 'telemetry-event');
  return codec;
}

test('encodeView equals encode, record after record, across slabs', () => {
  const codec = codecFor('t');
  const views: { view: Buffer; want: Buffer }[] = [];
  for (let i = 0; i < 5000; i++) { // ≈ 0.7 MB: several 256 KiB slabs
    const e = telemetryEvent(i);
    views.push({ view: codec.encodeView('t', e), want: codec.encode('t', e) });
  }
  for (const { view, want } of views) expect(view.equals(want)).toBe(true); // earlier views intact
  expect(views[0].view.readInt32BE(1)).toBe(42);
});

test('a record larger than a slab gets its own buffer', () => {
  const codec = codecFor('t');
  const big = { ...telemetryEvent(1), attrs: { blob: 'x'.repeat(300 * 1024) } };
  const small = codec.encodeView('t', telemetryEvent(2));
  const view = codec.encodeView('t', big);
  expect(view.equals(codec.encode('t', big))).toBe(true);
  expect(small.equals(codec.encode('t', telemetryEvent(2)))).toBe(true);
  expect(codec.encodeView('t', telemetryEvent(3)).equals(codec.encode('t', telemetryEvent(3)))).toBe(true);
});
