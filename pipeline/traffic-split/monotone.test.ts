/**
 * Ramp properties of the bucket layout (README "How ramps stay monotone"), with and without
 * control cohorts: raising a shadow's share never moves one of its users — or one of its control
 * cohort's — out, never moves a user between the shadow and its control, and changing one
 * shadow's share never moves a user into or out of any other shadow or control cohort.
 */
import fc from 'fast-check';
import { ValidationError } from '../errors.ts';
import type { ShadowProfile, ShadowSpec, UserContext } from '../domain/types.ts';
import { compileProfile, trafficSplit, type CompiledProfile } from './traffic-split.ts';

const instrumentation = { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 };
const USERS: UserContext[] = Array.from({ length: 2000 }, (_, i) => ({
  userId: `ramp-${i}`,
  deviceType: i % 3 === 0 ? 'web' : 'android',
}));

function build(shares: number[], holdout: number, seed: string, controls: boolean[] = []): CompiledProfile | null {
  const shadows: ShadowSpec[] = shares.map((bp, i) => ({
    name: `s${i}`, instrumentation, endpoints: {}, control: controls[i] ?? false,
    traffic: {
      percentage: bp / 100,
      match: 'all',
      // Odd shadows target android only, so eligibility differs between shadows.
      rules: i % 2 === 1 ? [{ attribute: 'deviceType', op: 'equals', value: 'android' }] : [],
    },
  }));
  const p: ShadowProfile = {
    itemId: 'com.example.ramp', profileVersion: 1, state: 'active', seed, holdout: holdout / 100, itemVersion: '1',
    shadows, updatedBy: 't', updatedAt: 0,
  };
  try {
    return compileProfile(p);
  } catch (e) {
    if (e instanceof ValidationError) return null; // an operator would get this refusal
    throw e;
  }
}
/** `s1`, or `control:s1` for the control cohort of s1 ("original" otherwise). */
const assign = (c: CompiledProfile) => USERS.map((u) => {
  const d = trafficSplit(u, c);
  return d.controlOf === undefined ? d.variant : `${d.variant}:${d.controlOf}`;
});
/** The arm belongs to shadow k: the shadow itself or its control cohort. */
const ofShadow = (v: string, k: number) => v === `s${k}` || v === `control:s${k}`;

const config = fc.record({
  count: fc.integer({ min: 1, max: 4 }),
  holdout: fc.integer({ min: 0, max: 2000 }),
  seed: fc.string({ minLength: 1, maxLength: 8 }),
  base: fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 4, maxLength: 4 }),
  controls: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
});

describe('monotone ramps', () => {
  it('raising a shadow in random steps never moves one of its users out', () => {
    fc.assert(
      fc.property(
        config,
        fc.nat(),
        fc.array(fc.integer({ min: 0, max: 10000 }), { minLength: 1, maxLength: 8 }),
        ({ count, holdout, seed, base, controls }, which, steps) => {
          const shares = base.slice(0, count).map((s) => Math.floor(s / count));
          const k = which % count;
          const current = build(shares, holdout, seed, controls);
          fc.pre(current !== null);
          let before = assign(current!);
          for (const target of [...steps].sort((a, b) => a - b)) {
            if (target < shares[k]) continue;
            const next = build(shares.map((s, i) => (i === k ? target : s)), holdout, seed, controls);
            if (next === null) continue;
            shares[k] = target;
            const after = assign(next);
            // Nobody leaves the ramped shadow or its control, nobody moves between the two, and
            // every move is from the original into one of them (others keep theirs).
            // Plain loops, one expect: per-user expects would dominate the run time.
            const moved = [];
            for (let u = 0; u < USERS.length; u++) {
              if (after[u] !== before[u] && (before[u] !== 'original' || !ofShadow(after[u], k))) moved.push(`${USERS[u].userId}: ${before[u]} → ${after[u]}`);
            }
            expect(moved).toEqual([]);
            before = after;
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it("changing shadow B's share (up or down) never moves A's users", () => {
    fc.assert(
      fc.property(config, fc.nat(), fc.integer({ min: 0, max: 10000 }), ({ count, holdout, seed, base, controls }, which, target) => {
        fc.pre(count >= 2);
        const shares = base.slice(0, count).map((s) => Math.floor(s / count));
        const b = which % count;
        const c0 = build(shares, holdout, seed, controls);
        const c1 = build(shares.map((s, i) => (i === b ? target : s)), holdout, seed, controls);
        fc.pre(c0 !== null && c1 !== null);
        const before = assign(c0!);
        const after = assign(c1!);
        // Every change involves shadow B (or B's control) and the original, never two other arms,
        // and never B's shadow and B's control (shadow ↔ control would break the comparison).
        const moved = [];
        for (let u = 0; u < USERS.length; u++) {
          if (after[u] === before[u]) continue;
          const involvesB = ofShadow(before[u], b) || ofShadow(after[u], b);
          const viaOriginal = before[u] === 'original' || after[u] === 'original';
          if (!involvesB || !viaOriginal) moved.push(`${USERS[u].userId}: ${before[u]} → ${after[u]}`);
        }
        expect(moved).toEqual([]);
      }),
      { numRuns: 100 },
    );
  });

  it('a control cohort grows with its shadow: equal sizes at every step of a ramp', () => {
    let prev = { shadow: 0, control: 0 };
    for (let bp = 0; bp <= 5000; bp += 500) {
      const v = assign(build([bp], 0, 'equal', [true])!);
      const shadow = v.filter((x) => x === 's0').length;
      const control = v.filter((x) => x === 'control:s0').length;
      // 2,000 users: equal in expectation; each arm only grows.
      expect(Math.abs(shadow - control)).toBeLessThanOrEqual(Math.max(40, 0.12 * shadow));
      expect(shadow).toBeGreaterThanOrEqual(prev.shadow);
      expect(control).toBeGreaterThanOrEqual(prev.control);
      prev = { shadow, control };
    }
    expect(prev.shadow + prev.control).toBe(USERS.length); // 50 % + its control = everyone
  });

  it('fails loudly if the layout were not monotone (the check can fail)', () => {
    // Sanity: a reseeded profile reshuffles users, which the check above would catch.
    const a = assign(build([2000], 0, 'one')!);
    const b = assign(build([3000], 0, 'two')!);
    expect(a.some((v, u) => v === 's0' && b[u] !== 's0')).toBe(true);
  });
});
