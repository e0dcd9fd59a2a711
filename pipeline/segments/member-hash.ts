/**
 * The 53-bit key a user id is stored under in every resolver's segment sets (pure).
 *
 *   key(userId) = h1 · 2^21 + (h2 >>> 11)
 *   h1 = MurmurHash3_x86_32(UTF-8("segment:a:" + userId)), h2 = the same with "segment:b:"
 *
 * 53 bits, so a key is an exact JavaScript number (a Float64Array holds it with no loss and
 * compares with plain `<`). Two murmur3 runs with different prefixes rather than one 32-bit
 * hash: with 32 bits a segment of 1,000,000 members would wrongly contain 1 in 4,300 non-members
 * (m / 2^32); with 53 bits it is m / 2^53 ≈ 1.1 · 10⁻¹⁰ per lookup. The hashing is the traffic
 * split's murmur3 (pipeline/traffic-split/hash.ts: UTF-8 streamed from UTF-16, no allocation).
 */
import { hashWithPrefix, prefixState } from '../traffic-split/hash.ts';

const A = prefixState('segment:a:');
const B = prefixState('segment:b:');
const TWO_21 = 2 ** 21;

export function memberKey(userId: string): number {
  return hashWithPrefix(A, userId) * TWO_21 + (hashWithPrefix(B, userId) >>> 11);
}

/** Probability that a non-member is reported as a member of a set of `members` users. */
export function falsePositiveRate(members: number): number {
  return members / 2 ** 53;
}
