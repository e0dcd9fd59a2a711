/**
 * Pure helpers of the repartition by item (issue 15 item 4): which partition of
 * `<prefix>telemetry.by-item` an item's events go to, and the item id of a framed TelemetryEvent
 * without decoding the record.
 *
 * Partition = murmur2(utf-8 item id) & 0x7fffffff mod partitions — Kafka's default partitioner
 * (Java client and kafkajs's DefaultPartitioner agree), so a record keyed by item id lands on the
 * same partition whichever client re-produces it, and any process can tell which member owns an
 * item from the group assignment alone (item-partition.test.ts checks it against kafkajs).
 *
 * Item id without a decode: every telemetry-event version starts with `id: string, itemId: string`
 * (an Avro string is a zig-zag varint length and UTF-8 bytes), so after the 5-byte Confluent frame
 * the item id is the second length-prefixed string. The repartition stage checks this against a
 * full decode once per writer schema id before trusting it (repartition.ts), so a future version
 * that reorders the fields falls back to the full decode instead of mis-keying.
 */

/** Kafka's murmur2 (32-bit, seed 0x9747b28c), as a signed int like Java's Utils.murmur2. */
export function murmur2(data: Uint8Array, from = 0, to = data.length): number {
  const m = 0x5bd1e995;
  const len = to - from;
  let h = (0x9747b28c ^ len) | 0;
  const len4 = from + (len & ~3);
  for (let i = from; i < len4; i += 4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  switch (len & 3) {
    case 3:
      h ^= data[len4 + 2] << 16;
    // falls through
    case 2:
      h ^= data[len4 + 1] << 8;
    // falls through
    case 1:
      h ^= data[len4];
      h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** The by-item partition of an item (Kafka's default partitioner on the item id as key). */
export function itemPartition(itemId: string, partitions: number): number {
  if (!(partitions > 0)) throw new RangeError(`partitions must be positive, not ${partitions}`);
  return (murmur2(Buffer.from(itemId, 'utf8')) & 0x7fffffff) % partitions;
}

/** Reads an Avro long (zig-zag varint) at `pos`; null when it runs past the end or exceeds 2^31. */
function readLength(buf: Buffer, pos: number): { value: number; next: number } | null {
  let n = 0;
  let shift = 0;
  for (let p = pos; p < buf.length && shift <= 28; p++) {
    const b = buf[p];
    n += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) {
      const value = n % 2 === 0 ? n / 2 : -(n + 1) / 2;
      return { value, next: p + 1 };
    }
    shift += 7;
  }
  return null;
}

/**
 * The item id of a Confluent-framed TelemetryEvent (second string field), or null when the bytes
 * do not have that shape (wrong magic byte, truncated, negative length). Does not validate the
 * rest of the record: that is the window stage's decode.
 */
export function itemIdOf(buf: Buffer | null): string | null {
  const r = itemRange(buf);
  return r === null ? null : buf!.toString('utf8', r.start, r.end);
}

/** Where the item id's UTF-8 bytes sit in a framed TelemetryEvent (itemIdOf without the string). */
function itemRange(buf: Buffer | null): { start: number; end: number } | null {
  if (!buf || buf.length < 7 || buf[0] !== 0) return null;
  const id = readLength(buf, 5);
  if (!id || id.value < 0 || id.next + id.value > buf.length) return null;
  const item = readLength(buf, id.next + id.value);
  if (!item || item.value < 0 || item.next + item.value > buf.length) return null;
  return { start: item.next, end: item.next + item.value };
}

/**
 * The hop-free path (issue 15 item 1): the collector writes telemetry.raw partitioned by item
 * (`itemPartition(itemId, rawPartitions)`, key still the session id). A raw record is DIRECT —
 * windowed by the window stage straight from telemetry.raw partition p, never forwarded — when
 * raw and by-item have the same partition count and the item id read from its frame maps to the
 * partition it sits in. Every other record (another producer, a tool, collector data from before
 * the change, an unreadable frame) takes the hop through telemetry.by-item as before.
 *
 * Both stages decide with this one function on the record's bytes alone (no decode, no trust
 * state), so they always agree: a record is either windowed from raw or forwarded, never both
 * and never neither.
 */
export function isDirect(value: Buffer | null, rawPartition: number, rawPartitions: number, byItemPartitions: number): boolean {
  if (rawPartitions !== byItemPartitions) return false;
  // Hashed in place (no string, no copy: every raw record passes here in both stages); the same
  // bytes itemPartition hashes, since the frame holds the item id as UTF-8.
  const r = itemRange(value);
  return r !== null && (murmur2(value!, r.start, r.end) & 0x7fffffff) % byItemPartitions === rawPartition;
}

/**
 * The stages' batch loops ask kafkajs whether a batch went stale (rebalance, seek) every
 * STALE_CHECK_MASK + 1 records rather than per record (a JSON key per call in kafkajs).
 */
export const STALE_CHECK_MASK = 63;
