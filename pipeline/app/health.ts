/**
 * Running the features' health checks with a bound: a check stuck on a dependency (a Kafka
 * admin request during a broker outage, a DuckDB query behind a long write) must not hold the
 * whole report, so each one races HEALTH_CHECK_MS and they run side by side. A check that does
 * not answer in time shows up as degraded under its position, with the reason.
 */
import type { HealthReport } from '../../connectors/http/create-api.ts';
import { rootMessage, withDeadline } from '../kafka/probe.ts';

export type Checks = HealthReport['checks'];
export type HealthCheck = () => Promise<Checks>;

/** Longest any one health check may take; the whole report is bounded by it. */
export const HEALTH_CHECK_MS = 2000;

export async function runHealthChecks(checks: HealthCheck[], ms = HEALTH_CHECK_MS): Promise<Checks> {
  const parts = await Promise.all(
    checks.map(async (check, i) => {
      try {
        return await withDeadline(check(), ms, 'health check');
      } catch (err) {
        return { [`check-${i}`]: { status: 'degraded' as const, detail: rootMessage(err) } };
      }
    }),
  );
  return Object.assign({}, ...parts) as Checks;
}

/** ok when every check is ok; anything else degrades the process, which keeps serving. */
export function overallStatus(checks: Checks): 'ok' | 'degraded' {
  return Object.values(checks).every((c) => c.status === 'ok') ? 'ok' : 'degraded';
}
