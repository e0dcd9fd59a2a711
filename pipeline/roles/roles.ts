/**
 * Process roles (pure, no I/O): which parts of Penumbra one process runs, so a deployment can
 * put the API, the stream processors and the warehouse sink in processes (and hosts) of their
 * own on one Kafka. Read from `penumbra start --role …` or PENUMBRA_ROLES; the composition
 * (pipeline/app/penumbra.ts) turns them into its `api` / `processors` / `sink` switches.
 *
 *   api         HTTP API + console, collector, resolver (+ Expo Updates), item pages, and the
 *               state every API process follows from Kafka (profiles, catalog, audit, alerts,
 *               metric windows, rollout decisions, segments, pins)
 *   processors  consumer-group members: ingest, profile commands, metrics processor, alert
 *               evaluator, rollout analyzer, risk outcomes/trainer, segment evaluator
 *   sink        the DuckDB warehouse sink (exactly one per warehouse)
 *
 * Default (nothing given): all three, as `penumbra start` always did.
 */
import { ConfigError } from '../errors.ts';

export const ROLES = ['api', 'processors', 'sink'] as const;
export type Role = (typeof ROLES)[number];

export interface Roles {
  api: boolean;
  processors: boolean;
  sink: boolean;
}

export const ALL_ROLES: Roles = Object.freeze({ api: true, processors: true, sink: true });

/** `api,processors` → { api: true, processors: true, sink: false }. `all` = every role. */
export function parseRoles(text: string | undefined | null, field = 'PENUMBRA_ROLES'): Roles {
  if (text === undefined || text === null || text.trim() === '') return { ...ALL_ROLES };
  const out: Roles = { api: false, processors: false, sink: false };
  for (const raw of text.split(',')) {
    const r = raw.trim().toLowerCase();
    if (r === '') throw bad(field, `empty role in "${text}" (a comma-separated list of ${ROLES.join(', ')} or all)`);
    if (r === 'all') {
      Object.assign(out, ALL_ROLES);
      continue;
    }
    if (!(ROLES as readonly string[]).includes(r)) throw bad(field, `unknown role "${raw.trim()}" (known: ${ROLES.join(', ')}, all)`);
    out[r as Role] = true;
  }
  return out;
}

/** `api,sink`, in the canonical order. */
export function formatRoles(r: Roles): string {
  return ROLES.filter((k) => r[k]).join(',');
}

function bad(field: string, message: string): ConfigError {
  return new ConfigError(`${field}: ${message}`, [{ path: field, message }]);
}
