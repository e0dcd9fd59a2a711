/**
 * Domain ShadowProfile ⇄ Avro ShadowProfile record. The Avro side has no optional fields (nulls
 * and empty arrays instead), the domain side has optional ones; this is the only place that
 * knows both shapes.
 */
import type { ShadowProfile as ProfileRecord, TrafficRule as RuleRecord, RolloutPlan as PlanRecord, RolloutState as PlanStateRecord, BanditPlan as BanditRecord, BanditState as BanditStateRecord } from '../../schemas/types.generated.ts';
import type { RolloutSchedule, ShadowProfile, ShadowSpec, TrafficRule } from '../domain/types.ts';
import { planFromSchedule, type RolloutPlan, type RolloutState } from '../rollout/plan.ts';
import type { BanditPlan, BanditState } from '../bandit/plan.ts';

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

function planToRecord(p: RolloutPlan): PlanRecord {
  return {
    steps: p.steps.map((x) => ({ percentage: x.percentage, analysisSeconds: x.analysisSeconds ?? null })),
    analysisSeconds: p.analysisSeconds, minSessionsPerArm: p.minSessionsPerArm,
    guardrails: p.guardrails.map((g) => ({ ...g })), maxInconclusive: p.maxInconclusive, onComplete: p.onComplete,
  };
}

function planFromRecord(r: PlanRecord): RolloutPlan {
  return {
    steps: r.steps.map((x) => (x.analysisSeconds === null ? { percentage: x.percentage } : { percentage: x.percentage, analysisSeconds: x.analysisSeconds })),
    analysisSeconds: r.analysisSeconds, minSessionsPerArm: r.minSessionsPerArm,
    guardrails: r.guardrails.map((g) => ({ ...g })), maxInconclusive: r.maxInconclusive, onComplete: r.onComplete,
  };
}

const planStateToRecord = (s: RolloutState): PlanStateRecord => ({ ...s });
const planStateFromRecord = (r: PlanStateRecord): RolloutState => ({ ...r });
const banditToRecord = (b: BanditPlan): BanditRecord => ({ ...b, arms: [...b.arms], guardrails: b.guardrails.map((g) => ({ ...g })), segments: b.segments ? { ...b.segments, cells: [...b.segments.cells] } : null });
const banditFromRecord = (r: BanditRecord): BanditPlan => {
  const { segments, ...rest } = r;
  return { ...rest, arms: [...r.arms], guardrails: r.guardrails.map((g) => ({ ...g })), ...(segments ? { segments: { ...segments, cells: [...segments.cells] } } : {}) };
};
// Per-segment cells (v4, pipeline/segment-allocation): absent in older records, [] on the wire when none.
const cellsCopy = (cells: NonNullable<BanditState['cells']>) => cells.map((c) => ({ ...c, weights: c.weights.map((w) => ({ ...w })), dropped: c.dropped.map((d) => ({ ...d })), override: c.override ? { ...c.override } : null }));
const banditStateToRecord = (s: BanditState): BanditStateRecord => ({ ...s, weights: s.weights.map((w) => ({ ...w })), dropped: s.dropped.map((d) => ({ ...d })), cells: cellsCopy(s.cells ?? []) });
const banditStateFromRecord = (r: BanditStateRecord): BanditState => {
  const { cells, ...rest } = r;
  return { ...rest, weights: r.weights.map((w) => ({ ...w })), dropped: r.dropped.map((d) => ({ ...d })), ...(cells && cells.length > 0 ? { cells: cellsCopy(cells) } : {}) };
};

/**
 * A legacy timer schedule (profiles written before v3) becomes the named shadow's rollout plan —
 * one ramp system, not two: a plan without guardrails or sample requirement (rollout/plan.ts).
 */
function scheduleIntoShadows(shadows: ShadowSpec[], schedule: RolloutSchedule | null): ShadowSpec[] {
  if (!schedule) return shadows;
  return shadows.map((s) => {
    if (s.name !== schedule.shadow || s.rollout) return s;
    const status = schedule.status === 'done' ? 'completed' : schedule.status;
    return {
      ...s,
      rollout: planFromSchedule(schedule.steps),
      rolloutState: { status, step: Math.max(0, schedule.currentStep), stepStartedAt: schedule.stepStartedAt, lastAnalysisAt: null, inconclusive: 0, reason: schedule.pausedReason ?? null },
    };
  });
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
      state: s.state ?? 'active',
      rollout: s.rollout ? planToRecord(s.rollout) : null,
      rolloutState: s.rolloutState ? planStateToRecord(s.rolloutState) : null,
    })),
    // Since v3 a schedule lives on as its shadow's plan (profileFromRecord converts old ones).
    schedule: null,
    bandit: p.bandit ? banditToRecord(p.bandit) : null,
    banditState: p.banditState ? banditStateToRecord(p.banditState) : null,
    promotion: p.promotion ? { shadow: p.promotion.shadow, fromItemVersion: p.promotion.fromItemVersion, toItemVersion: p.promotion.toItemVersion, previousJson: JSON.stringify(p.promotion.previous), by: p.promotion.by, at: p.promotion.at } : null,
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
    shadows: scheduleIntoShadows(
      r.shadows.map((s) => ({
        name: s.name,
        instrumentation: { capture: { ...s.instrumentation.capture }, points: s.instrumentation.points.map((x) => ({ ...x })), sampleRate: s.instrumentation.sampleRate },
        endpoints: { ...s.endpoints },
        traffic: { percentage: s.traffic.percentage, match: s.traffic.match, rules: s.traffic.rules.map(ruleFromRecord) },
        ...(s.artifact ? { artifact: { ...s.artifact } } : {}),
        control: s.control,
        ...(s.state === 'rolled_back' ? { state: 'rolled_back' as const } : {}),
        ...(s.rollout ? { rollout: planFromRecord(s.rollout) } : {}),
        ...(s.rolloutState ? { rolloutState: planStateFromRecord(s.rolloutState) } : {}),
      })),
      r.schedule ? { ...r.schedule, steps: r.schedule.steps.map((s) => ({ ...s })), pausedReason: r.schedule.pausedReason ?? undefined } : null,
    ),
    schedule: null,
    ...(r.bandit ? { bandit: banditFromRecord(r.bandit) } : {}),
    ...(r.banditState ? { banditState: banditStateFromRecord(r.banditState) } : {}),
    ...(r.promotion ? { promotion: { shadow: r.promotion.shadow, fromItemVersion: r.promotion.fromItemVersion, toItemVersion: r.promotion.toItemVersion, previous: JSON.parse(r.promotion.previousJson) as NonNullable<ShadowProfile['promotion']>['previous'], by: r.promotion.by, at: r.promotion.at } } : {}),
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
    shadows: p.shadows.map(({ artifact, ...s }) => ({ ...s, control: s.control !== false, state: s.state ?? 'active', rollout: s.rollout ?? null, rolloutState: s.rolloutState ?? null, artifact: artifact ?? null })),
    bandit: p.bandit ?? null,
    banditState: p.banditState ?? null,
    promotion: p.promotion ? { shadow: p.promotion.shadow, fromItemVersion: p.promotion.fromItemVersion, toItemVersion: p.promotion.toItemVersion, by: p.promotion.by, at: p.promotion.at } : null,
    controlArtifact: p.controlArtifact ?? null,
    updatedBy: p.updatedBy,
    updatedAt: p.updatedAt,
  };
}
