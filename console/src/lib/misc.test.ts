import { href, parseHash } from './router.ts';
import { exposureRows, groupByVariant, metricDefs, resolverAcks, seriesFor } from './dashboard.ts';
import { routeUploadErrors, checkShadowConfigText } from './upload.ts';
import { describeRule, validateRule, blankRule } from './alerts.ts';
import { fmtBytes, fmtP, fmtPp, fmtRate } from './format.ts';
import { loadToken, signIn, signOut, TOKEN_KEY } from './session.ts';
import { ApiClient } from './api.ts';

test('hash routes round-trip', () => {
  for (const h of ['#/', '#/items/com.a', '#/items/com.a/config', '#/items/com.a/dashboard', '#/alerts', '#/alerts?itemId=x', '#/audit?itemId=x&actor=sam']) expect(href(parseHash(h))).toBe(h);
  expect(parseHash('')).toEqual({ name: 'catalog', q: undefined });
  expect(parseHash('#/items/a/nope')).toEqual({ name: 'notfound', path: '/items/a/nope' });
});

test('series: aligned by window start with nulls for gaps, seconds on x', () => {
  const mk = (variant: string, t: number, p95: number) => ({ itemId: 'i', variant, windowSize: '10s', windowStart: t, windowEnd: t + 10_000, latency: { p95 } });
  const g = groupByVariant([mk('s', 10_000, 2), mk('original', 0, 1), mk('original', 10_000, 3)]);
  expect(g.variants).toEqual(['original', 's']);
  const def = metricDefs([]).find((d) => d.key === 'p95')!;
  expect(seriesFor(g.byVariant, g.variants, def)).toEqual([[0, 10], [1, 3], [null, 2]]);
});

test('exposure shares next to configured; resolver acknowledgement ignores stale ones', () => {
  expect(exposureRows({ itemId: 'i', counts: { original: 75, s: 25 }, total: 100 }, [{ name: 's', percentage: 20 }])).toEqual([
    { variant: 'original', count: 75, observed: 75, configured: 80 }, { variant: 's', count: 25, observed: 25, configured: 20 }]);
  const acks = resolverAcks([{ resolverId: 'a', versions: { i: 5 }, at: 0 }, { resolverId: 'b', versions: { i: 4 }, at: 0 }, { resolverId: 'c', versions: {}, at: 0, stale: true }], 'i', 5);
  expect([acks.acked, acks.total, acks.done]).toEqual([1, 2, false]);
});

test('upload errors go next to their field', () => {
  expect(routeUploadErrors([{ path: 'shadowConfig/0/traffic/percentage', message: 'too big' }, { path: 'item', message: 'not an archive' }, { path: '', message: 'x' }], 'zip-bomb'))
    .toEqual({ config: ['0 › traffic › percentage: too big'], file: ['not an archive'], general: ['x'] });
  expect(routeUploadErrors([], 'zip-bomb').file).toEqual(['Archive refused (zip-bomb)']);
  expect(checkShadowConfigText('')).toEqual([]);
  expect(checkShadowConfigText('{')[0].path).toBe('shadowConfig');
});

test('alert rules: validation and description', () => {
  expect(validateRule(blankRule()).map((e) => e.path)).toEqual(['name']);
  expect(describeRule({ ...blankRule('i'), name: 'n', guardrail: true })).toBe('Error rate exceeds the original by 2.00% for 3 windows (min 100 sessions) — rolls back automatically');
});

test('format', () => {
  expect([fmtRate(0.0123), fmtPp(-0.004), fmtP(0.0004), fmtP(0.0456), fmtBytes(2048)]).toEqual(['1.23%', '−0.40 pp', 'p < 0.001', 'p = 0.046', '2.0 KB']);
});

test('session: token kept only after whoami accepts it', async () => {
  const mem = new Map<string, string>();
  const store = { getItem: (k: string) => mem.get(k) ?? null, setItem: (k: string, v: string) => void mem.set(k, v), removeItem: (k: string) => void mem.delete(k) };
  const ok = new ApiClient({ fetch: async () => new Response('{"name":"n","role":"viewer"}', { status: 200 }) });
  expect(await signIn(ok, ' t ', store)).toEqual({ name: 'n', role: 'viewer' });
  expect(loadToken(store)).toBe('t');
  signOut(ok, store);
  expect(mem.has(TOKEN_KEY)).toBe(false);
  const bad = new ApiClient({ fetch: async () => new Response('{"status":401,"detail":"no"}', { status: 401, headers: { 'content-type': 'application/problem+json' } }) });
  await expect(signIn(bad, 't', store)).rejects.toMatchObject({ status: 401, detail: 'That token was not accepted. Check it and try again.' });
  expect(loadToken(store)).toBeNull();
  expect(bad.token).toBeNull();
});
