import fc from 'fast-check';
import { BUCKETS, HASH_VERSION, bucketOf, hashWithPrefix, murmur3, prefixState } from './hash.ts';

/** Byte-at-a-time MurmurHash3_x86_32 over Node's own UTF-8 encoder: an independent oracle. */
function murmur3Bytes(bytes: Uint8Array): number {
  let h = 0;
  const n4 = bytes.length & ~3;
  const block = (k: number) => {
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    return Math.imul(k, 0x1b873593);
  };
  for (let i = 0; i < n4; i += 4) {
    h ^= block(bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  for (let i = bytes.length - 1; i >= n4; i--) k = (k << 8) | bytes[i];
  if (bytes.length > n4) h ^= block(k);
  h ^= bytes.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

describe('bucketing hash v1', () => {
  it('is version 1 over 10,000 buckets', () => {
    // Changing either reshuffles every user of every item: bump the version, regenerate cases.
    expect(HASH_VERSION).toBe(1);
    expect(BUCKETS).toBe(10000);
  });

  it('matches the published MurmurHash3_x86_32 vectors (seed 0)', () => {
    expect(murmur3('')).toBe(0);
    expect(murmur3('hello')).toBe(0x248bfa47);
    expect(murmur3('The quick brown fox jumps over the lazy dog')).toBe(0x2e4ff723);
  });

  // Values printed by `python3 reference.py --hash SALT USERID` (independent implementation).
  it.each([
    ['com.example.notes', 'u-000001', 1934766870, 6870],
    ['com.example.notes', 'user-42', 1481058553, 8553],
    ['seed', '', 2594147856, 7856],
    ['sééd-🌱', '😀-user', 3549274309, 4309],
    ['com.example.notes:holdout', 'u-000001', 1833210178, 178],
    ['abc', '用户-42', 953694006, 4006],
    ['x', 'a'.repeat(37), 793018872, 8872],
  ])('pins murmur3(%j + ":" + %j)', (salt, userId, hash, bucket) => {
    expect(murmur3(`${salt}:${userId}`)).toBe(hash);
    expect(bucketOf(salt, userId)).toBe(bucket);
    expect(hashWithPrefix(prefixState(`${salt}:`), userId)).toBe(hash);
  });

  it('encodes a lone surrogate as U+FFFD', () => {
    expect(murmur3('s:\ud800lone')).toBe(3981052861);
    expect(murmur3('s:\ud800lone')).toBe(murmur3('s:\ufffdlone'));
  });

  it('streams any prefix/suffix split exactly like hashing the whole UTF-8 string', () => {
    const text = fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.string());
    fc.assert(
      fc.property(text, text, (prefix, rest) => {
        const expected = murmur3Bytes(Buffer.from(prefix + rest, 'utf8'));
        expect(murmur3(prefix + rest)).toBe(expected);
        expect(hashWithPrefix(prefixState(prefix), rest)).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });
});
