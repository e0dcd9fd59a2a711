/**
 * Domain ShadowProfile ⇄ Avro ShadowProfile record. The Avro side has no optional fields (nulls
 * and empty arrays instead), the domain side has optional ones; this is the only place that
 * knows both shapes.
 */
import type { ShadowProfile as ProfileRecord, TrafficRule as RuleRecord } from '../../schemas/types.generated.ts';
import type { ShadowProfile, TrafficRule } from '../domain/types.ts';

function ruleToRecord(r: TrafficRule): RuleRecord {
  return { attribute: r.attribute, op: r.op, values: r.values ?? [], value: r.value ?? null, range: r.range ?? null, pattern: r.pattern ?? null };
}

function ruleFromRecord(r: RuleRecord): TrafficRule {
  const out: TrafficRule = { attribute: r.attribute, op: r.op };
  if (r.values.length > 0 || r.op === 'in' || r.op === 'not_in') out.values = [...r.values];
  if (r.value !== null) out.value = r.value;
  if (r.range !== null) out.range = r.range;
  if (r.pattern !== null) out.pattern = r.pattern;
  return out;
}

export function profileToRecord(p: ShadowProfile): ProfileRecord {
  return {
    itemId: p.itemId,
    profileVersion: p.profileVersion,
    state: p.state,
    seed: p.seed,
    holdout: p.holdout,
    itemVersion: p.itemVersion,
    original: p.original ? { sha256: p.original.sha256, size: p.original.size } : null,
    controlArtifact: p.controlArtifact ? { sha256: p.controlArtifact.sha256, size: p.controlArtifact.size } : null,
    shadows: p.shadows.map((s) => ({
      name: s.name,
      instrumentation: {
        capture: { ...s.instrumentation.capture },
        points: s.instrumentation.points.map((x) => ({ id: x.id, selector: x.selector, event: x.event })),
        sampleRate: s.instrumentation.sampleRate,
      },
      endpoints: { ...s.endpoints },
      traffic: { percentage: s.traffic.percentage, match: s.traffic.match, rules: s.traffic.rules.map(ruleToRecord) },
      artifact: s.artifact ? { sha256: s.artifact.sha256, size: s.artifact.size } : null,
      control: s.control !== false,
    })),
    schedule: p.schedule
      ? { ...p.schedule, steps: p.schedule.steps.map((s) => ({ ...s })), pausedReason: p.schedule.pausedReason ?? null }
      : null,
    guardrail: p.guardrail ?? false,
    recentCommands: p.recentCommands ?? [],
    updatedBy: p.updatedBy,
    updatedAt: p.updatedAt,
  };
}

export function profileFromRecord(r: ProfileRecord): ShadowProfile {
  return {
    itemId: r.itemId,
    profileVersion: r.profileVersion,
    state: r.state,
    seed: r.seed,
    holdout: r.holdout,
    itemVersion: r.itemVersion,
    original: r.original ?? undefined,
    ...(r.controlArtifact ? { controlArtifact: { ...r.controlArtifact } } : {}),
    shadows: r.shadows.map((s) => ({
      name: s.name,
      instrumentation: { capture: { ...s.instrumentation.capture }, points: s.instrumentation.points.map((x) => ({ ...x })), sampleRate: s.instrumentation.sampleRate },
      endpoints: { ...s.endpoints },
      traffic: { percentage: s.traffic.percentage, match: s.traffic.match, rules: s.traffic.rules.map(ruleFromRecord) },
      ...(s.artifact ? { artifact: { ...s.artifact } } : {}),
      control: s.control,
    })),
    schedule: r.schedule ? { ...r.schedule, steps: r.schedule.steps.map((s) => ({ ...s })), pausedReason: r.schedule.pausedReason ?? undefined } : null,
    guardrail: r.guardrail,
    recentCommands: [...r.recentCommands],
    updatedBy: r.updatedBy,
    updatedAt: r.updatedAt,
  };
}

/** The public view of GET /shadow-config (ARCHITECTURE.md): fields may be added, not changed. */
export function publicConfigView(p: ShadowProfile) {
  return {
    itemId: p.itemId,
    profileVersion: p.profileVersion,
    state: p.state,
    itemVersion: p.itemVersion,
    holdout: p.holdout,
    guardrail: p.guardrail ?? false,
    schedule: p.schedule ?? null,
    shadows: p.shadows.map(({ artifact, ...s }) => ({ ...s, control: s.control !== false, artifact: artifact ?? null })),
    controlArtifact: p.controlArtifact ?? null,
    updatedBy: p.updatedBy,
    updatedAt: p.updatedAt,
  };
}
