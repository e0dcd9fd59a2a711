/** The hand-written Prometheus text format: what render() writes must parse and add up. */
import { MetricsRegistry, escapeLabelValue, parseExposition } from './metrics.ts';

test('counters, gauges and histograms render in the text exposition format', async () => {
  const r = new MetricsRegistry();
  const c = r.counter('t_requests_total', 'Requests');
  c.inc({ route: '/a' });
  c.inc({ route: '/a' }, 2);
  c.inc({ route: '/b' });
  const g = r.gauge('t_depth', 'Queue depth');
  g.set(undefined, 7);
  const h = r.histogram('t_seconds', 'Latency', [0.1, 1]);
  h.observe({ route: '/a' }, 0.05);
  h.observe({ route: '/a' }, 0.5);
  h.observe({ route: '/a' }, 5);
  const text = await r.render();
  expect(text).toContain('# TYPE t_requests_total counter');
  expect(text).toContain('# TYPE t_seconds histogram');
  const s = parseExposition(text);
  expect(s.get('t_requests_total{route="/a"}')).toBe(3);
  expect(s.get('t_requests_total{route="/b"}')).toBe(1);
  expect(s.get('t_depth')).toBe(7);
  // Buckets are cumulative and +Inf equals the count.
  expect(s.get('t_seconds_bucket{route="/a",le="0.1"}')).toBe(1);
  expect(s.get('t_seconds_bucket{route="/a",le="1"}')).toBe(2);
  expect(s.get('t_seconds_bucket{route="/a",le="+Inf"}')).toBe(3);
  expect(s.get('t_seconds_count{route="/a"}')).toBe(3);
  expect(s.get('t_seconds_sum{route="/a"}')).toBeCloseTo(5.55);
  expect(text.endsWith('\n')).toBe(true);
});

test('label values are escaped so hostile item ids cannot forge samples', async () => {
  expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
  const r = new MetricsRegistry();
  r.gauge('t_version', 'v').set({ item: 'x"} 999\nevil_metric 1' }, 3);
  const text = await r.render();
  expect(text).not.toMatch(/^evil_metric/m);
  expect([...parseExposition(text).values()]).toContain(3);
});

test('a failing collector is counted and does not fail the scrape', async () => {
  const r = new MetricsRegistry();
  const g = r.gauge('t_live', 'live');
  r.addCollector(() => g.set(undefined, 1));
  r.addCollector(async () => {
    throw new Error('broker down');
  });
  const s = parseExposition(await r.render());
  expect(s.get('t_live')).toBe(1);
  expect(s.get('penumbra_metrics_collector_errors_total')).toBe(1);
});

test('names and kinds are checked', () => {
  const r = new MetricsRegistry();
  expect(() => r.counter('bad-name', 'x')).toThrow(/invalid metric name/);
  r.counter('t_x', 'x');
  expect(() => r.gauge('t_x', 'x')).toThrow(/already registered/);
  expect(() => r.counter('t_y', 'y').inc(undefined, -1)).toThrow(/only increase/);
  expect(() => r.gauge('t_z', 'z').set({ 'bad-label': 1 }, 1)).toThrow(/label name/);
});
