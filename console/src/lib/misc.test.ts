import { href, parseHash } from './router.ts';
import { comparisonsOrigin, exposureRows, groupByVariant, metricDefs, perfNames, resolverAcks, seriesFor, unverifiedRows } from './dashboard.ts';
import { routeUploadErrors, checkShadowConfigText } from './upload.ts';
import { describeRule, validateRule, blankRule, metricBase, perfName, perfStat, ruleToInput } from './alerts.ts';
import { fmtBytes, fmtP, fmtPp, fmtRate } from './format.ts';
import { loadToken, signIn, signOut, TOKEN_KEY } from './session.ts';
import { ApiClient } from './api.ts';

test('hash routes round-trip', () => {
  for (const h of ['#/', '#/items/com.a', '#/items/com.a/config', '#/items/com.a/dashboard', '#/items/com.a/segments', '#/alerts', '#/alerts?itemId=x', '#/audit?itemId=x&actor=sam']) expect(href(parseHash(h))).toBe(h);
  expect(parseHash('')).toEqual({ name: 'catalog', q: undefined });
  expect(parseHash('#/items/a/nope')).toEqual({ name: 'notfound', path: '/items/a/nope' });
});

test('series: aligned by window start with nulls for gaps, seconds on x', () => {
  const mk = (variant: string, t: number, p95: number) => ({ itemId: 'i', variant, windowSize: '10s', windowStart: t, windowEnd: t + 10_000, latency: { p95 } });
  const g = groupByVariant([mk('s', 10_000, 2), mk('original', 0, 1), mk('original', 10_000, 3)]);
  expect(g.variants).toEqual(['original', 's']);
  const def = metricDefs([]).find((d) => d.key === 'p95')!;
  expect(seriesFor(g.byVariant, g.variants, def)).toEqual([[0, 10], [1, 3], [null, 2]]);
  // Arms: the control (baseline) first, the original where it has data, then the shadows.
  expect(groupByVariant([mk('s', 0, 1), mk('original', 0, 1), mk('control', 0, 1)]).variants).toEqual(['control', 'original', 's']);
});

test('page timings and web vitals: one p95 chart per perf name, vitals first', () => {
  const w = (variant: string, perf: Record<string, number>) => ({ itemId: 'i', variant, windowSize: 10_000, windowStart: 0, windowEnd: 10_000, perf: Object.fromEntries(Object.entries(perf).map(([k, p95]) => [k, { count: 3, mean: p95 / 2, p95 }])) });
  const ws = [w('control', { ttfb: 80, cls: 0.05, lcp: 1800 }), w('s', { inp: 120, load: 900, lcp: 2400 })];
  expect(perfNames(ws)).toEqual(['lcp', 'inp', 'cls', 'load', 'ttfb']);
  const defs = metricDefs([], perfNames(ws));
  const lcp = defs.find((d) => d.key === 'perf:lcp')!;
  expect(lcp).toMatchObject({ label: 'LCP — largest contentful paint p95 (ms)', unit: 'ms' });
  expect(defs.find((d) => d.key === 'perf:cls')).toMatchObject({ label: 'CLS — cumulative layout shift p95', unit: 'score' });
  const g = groupByVariant(ws);
  expect(seriesFor(g.byVariant, g.variants, lcp)).toEqual([[0], [1800], [2400]]);
  expect(seriesFor(g.byVariant, g.variants, defs.find((d) => d.key === 'perf:inp')!)).toEqual([[0], [null], [120]]);
});

test('unverified telemetry rows: variant × reason, largest first', () => {
  expect(unverifiedRows({ byVariant: { s: { missing: 3, expired: 9 }, control: { mismatch: 3 } } })).toEqual([
    { variant: 's', reason: 'expired', events: 9 }, { variant: 'control', reason: 'mismatch', events: 3 }, { variant: 's', reason: 'missing', events: 3 }]);
  expect(unverifiedRows(null)).toEqual([]);
});

test('exposure shares next to configured; resolver acknowledgement ignores stale ones', () => {
  expect(exposureRows({ itemId: 'i', counts: { original: 60, control: 20, s: 20 }, total: 100 }, [{ name: 's', percentage: 20 }])).toEqual([
    { variant: 'original', count: 60, observed: 60, configured: 60 }, { variant: 'control', count: 20, observed: 20, configured: 20 }, { variant: 's', count: 20, observed: 20, configured: 20 }]);
  // Control switched off: no cohort configured, the original gets the rest.
  expect(exposureRows({ itemId: 'i', counts: { original: 75, s: 25 }, total: 100 }, [{ name: 's', percentage: 20, control: false }])).toEqual([
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

test('alert rules: validation and description, against the control, both directions, web vitals and EWMA', () => {
  expect(validateRule(blankRule()).map((e) => e.path)).toEqual(['name']);
  const r = { ...blankRule('i'), name: 'n' };
  expect(describeRule({ ...r, guardrail: true })).toBe('Error rate rises above its control by more than 2 pp for 3 windows (min 100 samples) — rolls back automatically');
  expect(describeRule({ ...r, metric: 'conversion:buy', direction: 'decrease', threshold: 0.05 })).toBe('Conversion “buy” drops below its control by more than 5 pp for 3 windows (min 100 samples)');
  expect(describeRule({ ...r, metric: 'perfP95:lcp', threshold: 0.2, forWindows: 1 })).toBe('LCP p95 rises above its control by more than 20% for 1 window (min 100 samples)');
  expect(describeRule({ ...r, metric: 'perfP95:cls', comparison: 'absolute', direction: 'above', threshold: 0.1 })).toBe('CLS p95 goes above 0.1 for 3 windows (min 100 samples)');
  expect(describeRule({ ...r, metric: 'perfMean:ttfb', comparison: 'absolute', direction: 'below', threshold: 50 })).toBe('Timing “ttfb” mean goes below 50.0 ms for 3 windows (min 100 samples)');
  expect(describeRule({ ...r, metric: 'latencyP95', comparison: 'absolute', direction: 'above', kind: 'ewma', threshold: 3, ewma: { alpha: 0.2, warmup: 5, minStd: 0 } }))
    .toBe('Latency p95 is anomalous: its value moves up more than 3 standard deviations from its EWMA baseline (α 0.2, warm-up 5 windows) for 3 windows (min 100 samples)');
  expect(validateRule({ ...r, comparison: 'absolute', direction: 'decrease' }).map((e) => e.path)).toEqual(['direction']);
  expect(validateRule({ ...r, threshold: -0.1 }).map((e) => e.path)).toEqual(['threshold']);
  expect(validateRule({ ...r, kind: 'ewma', threshold: 0 }).map((e) => e.path)).toEqual(['threshold']);
  expect(validateRule({ ...r, metric: 'perfP95:' as never }).map((e) => e.path)).toEqual(['metric']);
  expect([metricBase('perfP95:lcp'), metricBase('perfMean:ttfb'), perfName('perfMean:ttfb'), perfStat('perfMean:ttfb')]).toEqual(['perfP95:lcp', 'perf', 'ttfb', 'Mean']);
  // A rule from an older server (vs_original, no direction) opens as vs_control / increase.
  expect(ruleToInput({ id: 'x', ...r, comparison: 'vs_original' as never, direction: undefined as never, kind: undefined as never, ewma: undefined as never })).toMatchObject({ comparison: 'vs_control', direction: 'increase', kind: 'threshold', ewma: null });
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

test('segments: local checks use the server field paths; status sentences say what is in force', async () => {
  const { blankSegment, statusSentence, stateTag, validateSegment } = await import('./segments.ts');
  expect(validateSegment({ ...blankSegment(), id: 'Bad Id', name: ' ', sql: '' }).map((e) => e.path)).toEqual(['id', 'name', 'sql']);
  expect(validateSegment({ ...blankSegment(), id: 'power-users', name: 'Power' })).toEqual([]);
  expect(statusSentence(null)).toMatch(/first evaluation/);
  expect(statusSentence({ state: 'ok', members: 1234, evaluatedAt: 0, durationMs: 42, added: 4, removed: 1 })).toBe('1,234 users; evaluated in 42.0 ms (+4 / −1).');
  expect(statusSentence({ state: 'failed', members: 7, evaluatedAt: 0, lastGoodAt: 1, error: 'Conversion Error' })).toBe('7 users from the last good evaluation are kept: Conversion Error.');
  expect(statusSentence({ state: 'timeout', members: 0, evaluatedAt: 0, lastGoodAt: null, error: 'slow' })).toMatch(/match nobody/);
  expect(stateTag({ state: 'over_limit', members: 1, evaluatedAt: 0 }).tone).toBe('warn');
  expect(href(parseHash('#/segments'))).toBe('#/segments');
});

test('comparisonsOrigin: this server, the topic (fresh or stale), superseded by a newer live comparison', () => {
  const T = 1_764_200_000_000;
  expect(comparisonsOrigin('this-process', null, null, T)).toEqual({ text: 'Computed by this server (the metrics member that owns this item).', stale: false, staleText: null });
  const f = { computedAt: T - 40_000, publishedAt: T - 35_000, receivedAt: T - 34_990, ageMs: 40_000, transitMs: 10, member: 'proc-1:42', stale: true, staleAfterMs: 30_000 };
  const stale = comparisonsOrigin('topic', f, null, T);
  expect(stale.text).toBe('From the comparisons topic: computed by proc-1:42, 40 s ago.');
  expect(stale.stale).toBe(true);
  expect(stale.staleText).toBe('No record from the owning member for more than 30 s (the last 35 s ago): these are the last known numbers.');
  expect(comparisonsOrigin('topic', { ...f, stale: false }, null, T)).toMatchObject({ stale: false, staleText: null });
  // A live comparison computed after the server's record: fresh while within the bound.
  expect(comparisonsOrigin('topic', f, T - 5_000, T)).toMatchObject({ stale: false, text: 'From the comparisons topic: computed by proc-1:42, 5 s ago.' });
  expect(comparisonsOrigin('topic', f, T - 5_000, T + 26_000).stale).toBe(true);
  // An older live comparison does not clear the server's verdict.
  expect(comparisonsOrigin('topic', f, T - 50_000, T).stale).toBe(true);
  expect(comparisonsOrigin('another-member', null, null, T).text).toMatch(/another processors member/);
  expect(comparisonsOrigin(undefined, null, null, T).text).toBe('No comparison computed yet.');
});
