/**
 * The resolver's JSON fast serialisation (Resolver.resolveJson, used by the /resolve fast path)
 * against the plain JSON.stringify of the same answer: identical bytes for shadow, control and
 * original answers, derived attributes, odd user ids, unknown items, and after a profile change
 * (the cached per-variant prefix must follow the new profile version).
 */
import type { Assignment, CatalogEntry } from '../../schemas/types.generated.ts';
import type { ShadowProfile } from '../domain/types.ts';
import { ProfileStore } from '../profiles/profile-store.ts';
import { CatalogStore } from '../ingest/catalog-store.ts';
import { Resolver } from './resolver.ts';

const instrumentation = { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 };
const profile = (profileVersion: number): ShadowProfile => ({
  itemId: 'com.example.app', profileVersion, state: 'active', seed: 'seed', holdout: 0, itemVersion: '1.0.0', updatedBy: 't', updatedAt: 1,
  shadows: [{ name: 'checkout-v2', instrumentation, endpoints: {}, traffic: { percentage: 40, match: 'all', rules: [] }, control: true }],
});
const entry: CatalogEntry = {
  itemId: 'com.example.app', name: 'App', latestVersion: '1.0.0', updatedAt: 1,
  versions: [{ version: '1.0.0', entry: 'index.html', manifestJson: '{}', ingestedAt: 1, requestId: null, variants: ['original', 'checkout-v2', 'control'].map((name) => ({ name, sha256: name, size: 1, files: 1, profileVersion: null, replacements: 0 })) }],
};

function setup() {
  const profiles = new ProfileStore();
  profiles.apply(profile(3));
  const catalog = new CatalogStore();
  catalog.apply(entry);
  const logged: Assignment[] = [];
  const resolver = new Resolver({ profiles, catalog, log: { enqueue: (a) => logged.push(a) }, resolverId: 'r1', keys: [{ kid: 'k', secret: Buffer.alloc(32, 1) }], now: () => 1_764_200_000_000 });
  return { profiles, resolver, logged };
}

describe('Resolver.resolveJson', () => {
  it('writes exactly JSON.stringify(resolve()) for every kind of answer', () => {
    const { resolver, logged } = setup();
    const variants = new Set<string>();
    const users = [...Array.from({ length: 300 }, (_, i) => `user-${i}`), 'q"uote', 'back\\slash', 'üser-é', '\u2028'];
    for (const userId of users) {
      for (const [req, headers] of [
        [{ itemId: 'com.example.app', userId, deviceType: 'ios', country: 'DE' }, {}],
        [{ itemId: 'com.example.app', userId }, { 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)', 'cf-ipcountry': 'FR' }],
        [{ itemId: 'com.example.unknown', userId }, {}],
      ] as const) {
        const plain = JSON.stringify(resolver.resolve(req, headers));
        const fast = resolver.resolveJson(req, headers);
        expect(fast).toBe(plain);
        variants.add((JSON.parse(fast) as { variant: string }).variant);
      }
    }
    expect([...variants].sort()).toEqual(['checkout-v2', 'control', 'original']);
    // Both entry points log the decision: one assignment record per call.
    expect(logged).toHaveLength(users.length * 3 * 2);
  });

  it('follows a profile change (the cached prefix carries the profile version)', () => {
    const { resolver, profiles } = setup();
    const req = { itemId: 'com.example.app', userId: 'user-1', deviceType: 'android' };
    expect(JSON.parse(resolver.resolveJson(req)).profileVersion).toBe(3);
    profiles.apply(profile(4));
    expect(resolver.resolveJson(req)).toBe(JSON.stringify(resolver.resolve(req)));
    expect(JSON.parse(resolver.resolveJson(req)).profileVersion).toBe(4);
  });
});
