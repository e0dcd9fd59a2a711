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

// Streaming state for the byte feeder. Module-level scalars (not a closure or object) keep the
// hot path free of allocations; the functions below are synchronous, so no interleaving.
let sH = 0;
let sK = 0;
let sKLen = 0;
let sLen = 0;

function pushByte(b: number): void {
  sK |= b << (sKLen << 3);
  sLen++;
  if (++sKLen === 4) {
    let k = Math.imul(sK, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    let h = sH ^ k;
    h = (h << 13) | (h >>> 19);
    sH = (Math.imul(h, 5) + 0xe6546b64) | 0;
    sK = 0;
    sKLen = 0;
  }
}

function pushString(s: string): void {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      pushByte(c);
    } else if (c < 0x800) {
      pushByte(0xc0 | (c >> 6));
      pushByte(0x80 | (c & 0x3f));
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        pushByte(0xf0 | (cp >> 18));
        pushByte(0x80 | ((cp >> 12) & 0x3f));
        pushByte(0x80 | ((cp >> 6) & 0x3f));
        pushByte(0x80 | (cp & 0x3f));
        i++;
      } else {
        // Lone surrogate → U+FFFD, as TextEncoder does.
        pushByte(0xef);
        pushByte(0xbf);
        pushByte(0xbd);
      }
    } else {
      pushByte(0xe0 | (c >> 12));
      pushByte(0x80 | ((c >> 6) & 0x3f));
      pushByte(0x80 | (c & 0x3f));
    }
  }
}

function finish(): number {
  let h = sH;
  if (sKLen > 0) {
    let k = Math.imul(sK, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  h ^= sLen;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Runs the hash over a constant prefix (e.g. `seed + ":"`) once, for reuse by hashWithPrefix. */
export function prefixState(prefix: string): PrefixState {
  sH = 0;
  sK = 0;
  sKLen = 0;
  sLen = 0;
  pushString(prefix);
  return { h1: sH, tail: sK, tailLen: sKLen, length: sLen };
}

/** MurmurHash3_x86_32 (seed 0) of UTF-8(prefix + s), with the prefix pre-hashed. */
export function hashWithPrefix(p: PrefixState, s: string): number {
  sH = p.h1;
  sK = p.tail;
  sKLen = p.tailLen;
  sLen = p.length;
  pushString(s);
  return finish();
}

/** MurmurHash3_x86_32 (seed 0) of the UTF-8 encoding of `s`. */
export function murmur3(s: string): number {
  sH = 0;
  sK = 0;
  sKLen = 0;
  sLen = 0;
  pushString(s);
  return finish();
}

/** The documented bucket of (salt, userId): murmur3(salt + ":" + userId) mod 10000. */
export function bucketOf(salt: string, userId: string): number {
  return murmur3(salt + ':' + userId) % BUCKETS;
}
