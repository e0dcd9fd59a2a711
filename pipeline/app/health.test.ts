import { overallStatus, runHealthChecks } from './health.ts';

test('a check that does not answer in time is reported degraded with the reason; the others still count', async () => {
  const checks = await runHealthChecks([
    async () => ({ kafka: { status: 'ok' } }),
    () => new Promise(() => {}),
    async () => {
      throw new Error('duckdb closed');
    },
  ], 30);
  expect(checks.kafka).toEqual({ status: 'ok' });
  expect(checks['check-1']).toEqual({ status: 'degraded', detail: 'health check timed out after 30 ms' });
  expect(checks['check-2']).toEqual({ status: 'degraded', detail: 'duckdb closed' });
  expect(overallStatus(checks)).toBe('degraded');
});

test('all ok is ok; any down or degraded degrades', () => {
  expect(overallStatus({ a: { status: 'ok' }, b: { status: 'ok' } })).toBe('ok');
  expect(overallStatus({ a: { status: 'ok' }, b: { status: 'down' } })).toBe('degraded');
  expect(overallStatus({})).toBe('ok');
});
