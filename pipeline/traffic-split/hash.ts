/**
 * Bucketing hash, HASH_VERSION 1 — the spec other implementations (Python notebooks, docs)
 * reproduce, pinned by hash.test.ts and cases.json:
 *
 *   h      = MurmurHash3_x86_32(UTF-8(salt + ":" + userId), seed 0)   (unsigned 32-bit)
 *   bucket = h mod 10000
 *
 * UTF-8 follows the WHATWG encoder: a lone UTF-16 surrogate is encoded as U+FFFD.
 * The assignment salt is the profile seed; the holdout salt is `seed + ":holdout"`.
 *
 * MurmurHash3 rather than FNV-1a: FNV-1a's low bits mix poorly for short, similar keys
 * (GrowthBook moved to a double FNV pass for that reason), while murmur3's finaliser gives full
 * avalanche, and it has public test vectors. The mod bias (2^32 mod 10000 = 7296) is < 3e-6.
 *
 * The hot path never builds the salted string: `prefixState(salt + ":")` runs the
 * hash over the constant prefix once per compile, and `hashWithPrefix` streams the userId's
 * UTF-8 bytes straight from its UTF-16 code units, so a call allocates nothing.
 */
export const HASH_VERSION = 1;
export const BUCKETS = 10000;

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** Hash state after a constant prefix: running h1, pending (unmixed) bytes, byte count. */
export interface PrefixState {
  readonly h1: number;
  readonly tail: number;
  readonly tailLen: number;
  readonly length: number;
}

/**
 * Continues MurmurHash3_x86_32 from state (h, pending bytes k, pending count kl, length) over the
 * UTF-8 of `s`; returns the finalised hash, or, with `finalise` false, leaves the state in
 * `partial` (used once per compile for prefixes). Written with locals only and an inline
 * one-byte path, because this loop is most of a trafficSplit call.
 */
function run(h: number, k: number, kl: number, len: number, s: string, finalise: boolean): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    // Fast path: four ASCII characters fill one whole block.
    if (kl === 0 && i + 3 < n) {
      const c0 = s.charCodeAt(i);
      const c1 = s.charCodeAt(i + 1);
      const c2 = s.charCodeAt(i + 2);
      const c3 = s.charCodeAt(i + 3);
      if ((c0 | c1 | c2 | c3) < 0x80) {
        k = Math.imul(c0 | (c1 << 8) | (c2 << 16) | (c3 << 24), C1);
        k = (k << 15) | (k >>> 17);
        h ^= Math.imul(k, C2);
        h = (h << 13) | (h >>> 19);
        h = (Math.imul(h, 5) + 0xe6546b64) | 0;
        k = 0;
        len += 4;
        i += 3;
        continue;
      }
    }
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      // One ASCII byte: no multi-byte bookkeeping.
      k |= c << (kl << 3);
      len++;
      if (++kl === 4) {
        k = Math.imul(k, C1);
        k = (k << 15) | (k >>> 17);
        h ^= Math.imul(k, C2);
        h = (h << 13) | (h >>> 19);
        h = (Math.imul(h, 5) + 0xe6546b64) | 0;
        k = 0;
        kl = 0;
      }
      continue;
    }
    let bytes: number;
    let count: number;
    if (c < 0x800) {
      bytes = (0xc0 | (c >> 6)) | ((0x80 | (c & 0x3f)) << 8);
      count = 2;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        bytes = (0xf0 | (c >> 18)) | ((0x80 | ((c >> 12) & 0x3f)) << 8) |
          ((0x80 | ((c >> 6) & 0x3f)) << 16) | ((0x80 | (c & 0x3f)) << 24);
        count = 4;
        i++;
      } else {
        // Lone surrogate → U+FFFD (EF BF BD), as TextEncoder does.
        bytes = 0xef | (0xbf << 8) | (0xbd << 16);
        count = 3;
      }
    } else {
      bytes = (0xe0 | (c >> 12)) | ((0x80 | ((c >> 6) & 0x3f)) << 8) | ((0x80 | (c & 0x3f)) << 16);
      count = 3;
    }
    len += count;
    for (; count > 0; count--) {
      k |= (bytes & 0xff) << (kl << 3);
      bytes >>>= 8;
      if (++kl === 4) {
        k = Math.imul(k, C1);
        k = (k << 15) | (k >>> 17);
        h ^= Math.imul(k, C2);
        h = (h << 13) | (h >>> 19);
        h = (Math.imul(h, 5) + 0xe6546b64) | 0;
        k = 0;
        kl = 0;
      }
    }
  }
  if (!finalise) {
    partial.h1 = h;
    partial.tail = k;
    partial.tailLen = kl;
    partial.length = len;
    return 0;
  }
  if (kl > 0) {
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, C2);
  }
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const partial = { h1: 0, tail: 0, tailLen: 0, length: 0 };

/** Runs the hash over a constant prefix (e.g. `seed + ":"`) once, for reuse by hashWithPrefix. */
export function prefixState(prefix: string): PrefixState {
  run(0, 0, 0, 0, prefix, false);
  return { h1: partial.h1, tail: partial.tail, tailLen: partial.tailLen, length: partial.length };
}

/** MurmurHash3_x86_32 (seed 0) of UTF-8(prefix + s), with the prefix pre-hashed. */
export function hashWithPrefix(p: PrefixState, s: string): number {
  return run(p.h1, p.tail, p.tailLen, p.length, s, true);
}

/** MurmurHash3_x86_32 (seed 0) of the UTF-8 encoding of `s`. */
export function murmur3(s: string): number {
  return run(0, 0, 0, 0, s, true);
}

/** The documented bucket of (salt, userId): murmur3(salt + ":" + userId) mod 10000. */
export function bucketOf(salt: string, userId: string): number {
  return murmur3(salt + ':' + userId) % BUCKETS;
}
