/**
 * Signed assignment tokens reused for a short while per (item, user, variant, controlOf,
 * profile version): pure, no I/O.
 *
 * Why (issue 15 item 3): signing (claims JSON, base64url, HMAC-SHA256) was the largest part of
 * the resolve decision in the bench's CPU profile, and a device resolving again within a minute
 * gets a token for the very same claims — only `iat`/`exp` would move by a few seconds.
 *
 * Safety: the token says exactly what a fresh one would (item, user, variant, controlOf, profile
 * version — every field that the collector checks against the batch), signed by the same key;
 * a new profile version (rollout step, rollback) or a different decision is another cache key
 * and gets a fresh token at once. What differs: `iat` is up to `reuseSeconds` old, so the token
 * (and the answer's `tokenExpiresAt`) expires up to `reuseSeconds` earlier than a fresh one —
 * with the default 24 h lifetime, 60 s of it. A change of the signing key (ring[0]) empties the
 * cache; a clock that went backwards re-signs.
 *
 * Memory: two generations of at most `maxEntries / 2` each (the older one is dropped whole when
 * the newer fills up, a hit in the older one moves the entry forward), so at most `maxEntries`
 * tokens (~0.4 KB each) and O(1) work per lookup, without per-hit LRU reordering.
 */
import { signAssignment, type AssignmentClaims, type KeyRing, type SigningKey } from '../assignment-token/token.ts';

interface Entry {
  token: string;
  iat: number;
  exp: number;
}

export class SignedTokenCache {
  private cur = new Map<string, Entry>();
  private prev = new Map<string, Entry>();
  private signer: SigningKey | undefined;
  hits = 0;
  signed = 0;

  constructor(private readonly reuseSeconds = 60, private readonly maxEntries = 100_000) {}

  /**
   * A token for `claims` (iat/exp are those of a fresh token issued now): the cached one when it
   * was issued less than `reuseSeconds` ago for the same claims, key and lifetime, else a fresh
   * one. Returns the token and its issue and expiry times (epoch seconds).
   */
  token(claims: Omit<AssignmentClaims, 'iat' | 'exp'>, iat: number, ttlSeconds: number, ring: KeyRing): Readonly<Entry> {
    const key0 = ring[0];
    if (key0 !== this.signer) {
      this.cur = new Map();
      this.prev = new Map();
      this.signer = key0;
    }
    // userId last: every field before it (profile version, validated variant/shadow names,
    // validated item id) is free of NUL, so the key splits back into one tuple only.
    const k = `${claims.profileVersion}\u0000${claims.variant}\u0000${claims.controlOf ?? ''}\u0000${claims.itemId}\u0000${claims.userId}`;
    let e = this.cur.get(k);
    if (e === undefined) {
      e = this.prev.get(k);
      if (e !== undefined) this.put(k, e);
    }
    if (e !== undefined && iat >= e.iat && iat - e.iat < this.reuseSeconds && e.exp - e.iat === ttlSeconds) {
      this.hits++;
      return e;
    }
    const exp = iat + ttlSeconds;
    const token = signAssignment({ ...claims, iat, exp }, ring);
    this.signed++;
    const fresh = { token, iat, exp };
    this.put(k, fresh);
    return fresh;
  }

  private put(k: string, e: Entry): void {
    if (this.cur.size >= this.maxEntries / 2) {
      this.prev = this.cur;
      this.cur = new Map();
    }
    this.cur.set(k, e);
  }

  get size(): number {
    return this.cur.size + this.prev.size;
  }
}
