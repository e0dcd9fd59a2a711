/**
 * The fast path's query splitter must yield exactly what URLSearchParams yields (the Express
 * route's reading), or the two paths would disagree on what a device asked.
 */
import http from 'node:http';
import type { Assignment, CatalogEntry } from '../../schemas/types.generated.ts';
import type { ShadowProfile } from '../../pipeline/domain/types.ts';
import { ProfileStore } from '../../pipeline/profiles/profile-store.ts';
import { CatalogStore } from '../../pipeline/ingest/catalog-store.ts';
import { Resolver } from '../../pipeline/resolver/resolver.ts';
import { ResolverRegistry } from '../../pipeline/resolver/resolver-registry.ts';
import { createResolveFastPath, eachQueryPair, queryPairs, readResolveQuery } from './resolve-fast-path.ts';
import { createResolverRouter } from './resolver-router.ts';
import { createApi } from './create-api.ts';
import { OpenApiRegistry } from './openapi.ts';
import { TokenStore } from './auth.ts';
import { TokenBuckets, defaultDeviceLimits } from './rate-limit.ts';

describe('resolve fast path: queryPairs', () => {
  it.each([
    'itemId=com.example.app&userId=u1&deviceType=ios&country=DE',
    'itemId=a&&userId=b&',
    '&itemId=a',
    'flag&itemId=a&empty=',
    'a=b=c&d',
    '=x&y=',
    '',
    'attr.plan=pro&attr.plan=free',
    'userId=%C3%BC&x=a+b',
    'userId=%E0%A4%A&bad=%zz',
  ])('%s', (q) => {
    expect([...queryPairs(q)]).toEqual([...new URLSearchParams(q)]);
  });
});

describe('resolve fast path: eachQueryPair (the one splitter)', () => {
  it.each(['a=1&b=2&c=3', 'a=%31&b=2&c=3'])('stops at the first pair its callback declines and says so: %s', (q) => {
    const seen: string[] = [];
    const ok = eachQueryPair(q, seen, (out, k, v) => (out.push(`${k}=${v}`), k !== 'b'));
    expect([ok, seen]).toEqual([false, ['a=1', 'b=2']]);
  });
  it('passes its state through and reports a full read', () => {
    const state = { n: 0 };
    expect(eachQueryPair('x&y=&&z=1', state, (st) => ++st.n > 0)).toBe(true);
    expect(state.n).toBe(3);
  });
});

describe('resolve fast path: readResolveQuery', () => {
  it('reads what URLSearchParams reads, encoded or not', () => {
    expect(readResolveQuery('itemId=a.b&userId=u1&deviceType=ios&country=DE&userGroup=g&appVersion=1.2&attr.plan=pro&attr.x=')).toEqual(expect.objectContaining({
      itemId: 'a.b', userId: 'u1', deviceType: 'ios', country: 'DE', userGroup: 'g', appVersion: '1.2', attributes: { plan: 'pro', x: '' },
    }));
    expect(readResolveQuery('userId=%C3%BC+x&itemId=a&&')).toEqual(expect.objectContaining({ itemId: 'a', userId: 'ü x', attributes: undefined, deviceType: undefined }));
  });
});

/**
 * The fast path against the reference: the Express route (zod schema, res helpers,
 * JSON.stringify of Resolver.resolve) on the same Resolver, over real HTTP. Same status, same
 * answer bytes, the answer headers the device sees, and the same exposure record per answer —
 * for many users and every kind of answer (shadow, control, original by share, by rule, by
 * holdout; derived attributes; custom attributes; encoded queries; an unknown item).
 */
describe('resolve fast path vs the Express route', () => {
  const instrumentation = { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 };
  const profile: ShadowProfile = {
    itemId: 'com.example.app', profileVersion: 7, state: 'active', seed: 'seed', holdout: 10, itemVersion: '1.0.0', updatedBy: 't', updatedAt: 1,
    shadows: [
      { name: 'checkout-v2', instrumentation, endpoints: {}, traffic: { percentage: 15, match: 'all', rules: [{ attribute: 'deviceType', op: 'in', values: ['ios', 'android'] }] }, control: true },
      { name: 'plan-pro', instrumentation, endpoints: {}, traffic: { percentage: 20, match: 'any', rules: [{ attribute: 'plan', op: 'equals', value: 'pro' }, { attribute: 'country', op: 'equals', value: 'FR' }] } },
    ],
  };
  const entry: CatalogEntry = {
    itemId: 'com.example.app', name: 'App', latestVersion: '1.0.0', updatedAt: 1,
    versions: [{ version: '1.0.0', entry: 'index.html', manifestJson: '{}', ingestedAt: 1, requestId: null, variants: ['original', 'checkout-v2', 'plan-pro', 'control'].map((name) => ({ name, sha256: name, size: 1, files: 1, profileVersion: null, replacements: 0 })) }],
  };
  const logged: Assignment[] = [];
  let fastBase = '';
  let expressBase = '';
  const servers: http.Server[] = [];

  beforeAll(async () => {
    const profiles = new ProfileStore();
    profiles.apply(profile);
    const catalog = new CatalogStore();
    catalog.apply(entry);
    // A fixed clock: both paths then sign (or reuse) the same token for the same claims.
    const resolver = new Resolver({ profiles, catalog, log: { enqueue: (a) => logged.push(a) }, resolverId: 'r1', keys: [{ kid: 'k', secret: Buffer.alloc(32, 7) }], now: () => 1_764_200_000_000 });
    // No per-address limit here: the limit's sharing is rate-limit.test.ts's and the int tests' subject.
    const limits = { ...defaultDeviceLimits(), resolve: new TokenBuckets({ perSecond: 0, burst: 0 }) };
    const openapi = new OpenApiRegistry();
    const registry = new ResolverRegistry({ self: { resolverId: 'r1', host: 'h', pid: 1, startedAt: 1 }, versions: () => ({}), publish: async () => {} });
    const router = createResolverRouter({ resolver, registry, exposures: (itemId) => ({ itemId, profileVersion: 0, counts: {}, total: 0, since: null }), tokens: new TokenStore([]), openapi, limits });
    const app = createApi({ openapi, tokens: new TokenStore([]), routers: [router], health: async () => ({ status: 'ok', checks: {} }) as never, version: 't', log: () => {} });
    const fast = createResolveFastPath({ resolver, buckets: limits.resolve, identity: limits.identity });
    const listen = async (handler: http.RequestListener) => {
      const s = http.createServer(handler);
      servers.push(s);
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      return `http://127.0.0.1:${(s.address() as { port: number }).port}`;
    };
    fastBase = await listen((req, res) => {
      if (!fast(req, res)) {
        res.statusCode = 599; // declined: the test fails on it
        res.end();
      }
    });
    expressBase = await listen(app);
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => (s.close(r), s.closeAllConnections()))));
  });

  const DEVICE_HEADERS = ['content-type', 'content-length', 'cache-control', 'access-control-allow-origin', 'x-content-type-options', 'referrer-policy'];
  const get = async (base: string, query: string, headers: Record<string, string>) => {
    const r = await fetch(`${base}/api/v1/resolve?${query}`, { headers });
    const h: Record<string, string | null> = {};
    for (const k of DEVICE_HEADERS) h[k] = r.headers.get(k);
    return { status: r.status, headers: h, body: Buffer.from(await r.arrayBuffer()).toString('utf8') };
  };

  it('answers the same bytes, headers and exposure records', async () => {
    const cases: [string, Record<string, string>][] = [];
    for (let i = 0; i < 400; i++) {
      const u = encodeURIComponent(`user-${i}`);
      const dt = ['ios', 'android', 'web'][i % 3];
      cases.push([`itemId=com.example.app&userId=${u}&deviceType=${dt}&country=DE`, {}]);
      if (i % 4 === 0) cases.push([`userId=${u}&itemId=com.example.app&attr.plan=${i % 8 === 0 ? 'pro' : 'free'}&userGroup=beta&appVersion=2.1.0`, { 'user-agent': 'Mozilla/5.0 (Linux; Android 14)', 'cf-ipcountry': i % 3 ? 'FR' : 'XX' }]);
      if (i % 5 === 0) cases.push([`itemId=com.example.app&userId=${u}`, { 'sec-ch-ua-platform': '"iOS"', 'cloudfront-viewer-country': 'fr' }]);
    }
    cases.push(
      ['itemId=com.example.app&userId=%C3%BCser+%E2%80%A8&deviceType=ios&country=DE', {}],
      ['itemId=com.example.app&userId=q%22uote%5Cback&attr.plan=pro', {}],
      ['itemId=com.example.unknown&userId=u1&deviceType=ios&country=DE', {}],
      ['itemId=com.example.app&userId=u2&attr.a.b=1&attr.c=&deviceType=ios&country=DE', {}],
    );
    const variants = new Set<string>();
    for (const [q, h] of cases) {
      const before = logged.length;
      const viaFast = await get(fastBase, q, h);
      const viaExpress = await get(expressBase, q, h);
      expect(viaFast.status).toBe(200);
      expect({ q, ...viaFast }).toEqual({ q, ...viaExpress });
      // One exposure each, identical but for the fresh id.
      expect(logged.length).toBe(before + 2);
      const [a, b] = logged.slice(before).map((x) => ({ ...x, id: undefined }));
      expect(a).toEqual(b);
      const ans = JSON.parse(viaFast.body) as { variant: string; reason: string };
      variants.add(`${ans.variant}/${ans.reason}`);
    }
    // Every kind of answer was compared.
    expect([...variants].sort()).toEqual(expect.arrayContaining(['checkout-v2/assigned', 'control/control', 'plan-pro/assigned', 'original/holdout', 'original/not_in_share', 'original/no_match', 'original/no_profile']));
  });

  it('declines what only the Express route answers (its 422 problem), so both never disagree', async () => {
    for (const q of ['itemId=com.example.app', 'itemId=bad id&userId=u', 'itemId=com.example.app&userId=u&userId=v', 'itemId=com.example.app&userId=u&attr.plan=a&attr.plan=b']) {
      expect(readResolveQuery(q)).toBeNull();
      expect((await get(fastBase, q, {})).status).toBe(599);
      const viaExpress = await fetch(`${expressBase}/api/v1/resolve?${q}`);
      expect({ q, status: viaExpress.status }).toEqual({ q, status: 422 });
      expect(viaExpress.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    }
  });
});
