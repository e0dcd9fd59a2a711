/**
 * What the control arm's injected library measures (pure): the runtime config behind
 * `runtime-config?variant=control[&controlOf=<shadow>]`.
 *
 * A control session belongs to one shadow's control cohort (its assignment token says which; the
 * library passes it as `controlOf`). It then gets exactly that shadow's instrumentation — points,
 * capture flags and sampling — so both arms are measured alike. Without `controlOf` (a page
 * opened without a token) it gets the union of every shadow whose control is on: capture flags
 * OR-ed, points by id (first shadow wins), the highest sampling rate. Endpoints are always the
 * original's: the control talks to the original servers.
 */
import type { InstrumentationConfig, ShadowSpec } from '../domain/types.ts';

export interface ControlInstrumentation {
  /** False when no shadow has a control cohort, or `controlOf` names none that has. */
  enabled: boolean;
  instrumentation: InstrumentationConfig;
}

const NOTHING: InstrumentationConfig = { capture: { performance: false, errors: false, usage: false }, points: [], sampleRate: 0 };

export function controlInstrumentation(shadows: readonly ShadowSpec[], controlOf?: string): ControlInstrumentation {
  const withControl = shadows.filter((s) => s.control !== false);
  if (controlOf !== undefined) {
    const s = withControl.find((x) => x.name === controlOf);
    return s ? { enabled: true, instrumentation: s.instrumentation } : { enabled: false, instrumentation: NOTHING };
  }
  if (withControl.length === 0) return { enabled: false, instrumentation: NOTHING };
  const points = new Map<string, InstrumentationConfig['points'][number]>();
  const capture = { performance: false, errors: false, usage: false };
  let sampleRate = 0;
  for (const s of withControl) {
    const i = s.instrumentation;
    capture.performance ||= i.capture.performance;
    capture.errors ||= i.capture.errors;
    capture.usage ||= i.capture.usage;
    sampleRate = Math.max(sampleRate, i.sampleRate);
    for (const p of i.points) if (!points.has(p.id)) points.set(p.id, p);
  }
  return { enabled: true, instrumentation: { capture, points: [...points.values()], sampleRate } };
}
