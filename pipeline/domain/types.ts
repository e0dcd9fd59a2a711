/**
 * Plain domain types shared by the pure cores (traffic split, shadowing, profiles, telemetry).
 * They mirror the public contract in docs/ARCHITECTURE.md; Avro/record types live in schemas/.
 */
import type { RolloutPlan, RolloutState } from '../rollout/plan.ts';
import type { BanditPlan, BanditState } from '../bandit/plan.ts';

/** `manifest.json` at the root of an item archive. */
export interface ItemManifest {
  id: string;
  version: string;
  name: string;
  /** Entry point relative to the archive root: an `.html` page or a `.js`/`.mjs` module. */
  entry: string;
  /** Named server base URLs the item talks to; shadows may override any of these keys. */
  endpoints?: Record<string, string>;
  /** Update bundles (Expo export layout) only: the native runtime the JS needs (pipeline/mobile). */
  runtimeVersion?: string;
  /** Update bundles only: platforms with a bundle in metadata.json. */
  platforms?: ('ios' | 'android')[];
  /** Update bundles only: handed to apps as the Expo manifest's `extra` (endpoint URLs rewritten in shadows). */
  extra?: Record<string, unknown>;
}

export type RuleOp = 'in' | 'not_in' | 'equals' | 'not_equals' | 'semver' | 'regex';

/**
 * One targeting condition. `attribute` is deviceType | country | userGroup | appVersion or any
 * custom attribute name (looked up in `UserContext.attributes`).
 * - in / not_in: `values`
 * - equals / not_equals: `value` (or `values[0]`)
 * - semver: `range` (npm semver range, e.g. ">=1.2.0 <2")
 * - regex: `pattern` (bounded: length-limited, linear-time safe subset, compiled once)
 */
export interface TrafficRule {
  attribute: string;
  op: RuleOp;
  values?: string[];
  value?: string;
  range?: string;
  pattern?: string;
}

export interface TrafficConfig {
  /** Share of the users matching this shadow's rules that get it, 0..100 (two decimals honoured). */
  percentage: number;
  /** How rules combine: every rule must hold (`all`) or at least one (`any`). */
  match: 'all' | 'any';
  rules: TrafficRule[];
}

export interface InstrumentationPoint {
  id: string;
  selector: string;
  event: string;
}

export interface InstrumentationConfig {
  capture: { performance: boolean; errors: boolean; usage: boolean };
  points: InstrumentationPoint[];
  /** Fraction of sessions that send telemetry, 0..1. */
  sampleRate: number;
}

/** One shadow as configured by an operator (the `shadowConfig` contract). */
export interface ShadowConfig {
  name: string;
  instrumentation: InstrumentationConfig;
  endpoints: Record<string, string>;
  traffic: TrafficConfig;
  /**
   * Equally sized control cohort (variant `control`: the original with the same
   * instrumentation, no endpoint rewrites) drawn from the same eligible users. Absent = true;
   * false = no baseline for this shadow's comparisons. Toggling it reshuffles the shadow's users
   * (pipeline/traffic-split/README.md).
   */
  control?: boolean;
  /**
   * Per-shadow rollback: `rolled_back` sends this shadow's users (and its control cohort's) to
   * the original while the other shadows keep running. Absent = active.
   */
  state?: 'active' | 'rolled_back';
  /** Rollout plan (pipeline/rollout): steps gated by analyses of shadow vs control. */
  rollout?: RolloutPlan | null;
}

/** A step of an automatic ramp: set the share, then hold for `holdSeconds`. */
export interface RolloutStep {
  percentage: number;
  holdSeconds: number;
}

export interface RolloutSchedule {
  /** Shadow the schedule ramps. */
  shadow: string;
  steps: RolloutStep[];
  /** Index of the step currently applied; -1 before the first. */
  currentStep: number;
  status: 'running' | 'paused' | 'done';
  /** Epoch ms when the current step began (hold timer). */
  stepStartedAt: number;
  pausedReason?: string;
}

export type ProfileState = 'active' | 'rolled_back';

/** A stored artifact: content-addressed blob of the (deterministic) archive. */
export interface ArtifactRef {
  sha256: string;
  size: number;
}

export interface ShadowSpec extends ShadowConfig {
  /** Archive of the shadow copy for the item version the profile points at. */
  artifact?: ArtifactRef;
  /** Where the rollout plan is (changed only by commands); null/absent without a plan. */
  rolloutState?: RolloutState | null;
}

/** The last promotion of a shadow to the original, kept so it can be rolled back. */
export interface Promotion {
  shadow: string;
  fromItemVersion: string;
  toItemVersion: string;
  /** What the promotion replaced: restored by a rollback of the promotion. */
  previous: { itemVersion: string; original?: ArtifactRef; controlArtifact?: ArtifactRef; shadows: ShadowSpec[] };
  by: string;
  at: number;
}

/** Current shadow profile of an item: what the resolver evaluates. */
export interface ShadowProfile {
  itemId: string;
  profileVersion: number;
  state: ProfileState;
  /** Bucketing seed; defaults to the itemId. Changing it reshuffles users (on purpose only). */
  seed: string;
  /** Share 0..100 of users kept on the original and out of every shadow (holdout). */
  holdout: number;
  /** Item version the profile's artifacts belong to. */
  itemVersion: string;
  original?: ArtifactRef;
  /** The control arm's archive for itemVersion (original + instrumentation, no rewrites); one for every shadow's control. */
  controlArtifact?: ArtifactRef;
  shadows: ShadowSpec[];
  /** Legacy timer ramp: read into the shadow's rollout plan (profile codec), never written since v3. */
  schedule?: RolloutSchedule | null;
  /** Bandit allocation among shadows (pipeline/bandit). */
  bandit?: BanditPlan | null;
  banditState?: BanditState | null;
  /** The last promotion (null/absent: none). */
  promotion?: Promotion | null;
  /** Roll back automatically when a guardrail alert fires. */
  guardrail?: boolean;
  /** Ids of the last applied commands (idempotent replay after a crash). */
  recentCommands?: string[];
  updatedBy: string;
  updatedAt: number;
}

/** Who is asking, as seen by the resolver. */
export interface UserContext {
  userId: string;
  deviceType?: string;
  country?: string;
  userGroup?: string;
  appVersion?: string;
  attributes?: Record<string, string>;
}

/**
 * Behavioural segment membership as the traffic split sees it (pipeline/segments): every
 * resolver holds the memberships in memory. Answers 1 (member), 0 (not a member) or -1 (unknown:
 * the segment was never evaluated, was deleted, or this process has not loaded its memberships
 * yet) — an unknown segment is a missing attribute, so neither `in` nor `not_in` matches it.
 */
export interface SegmentLookup {
  membership(segmentId: string, userId: string): 1 | 0 | -1;
}

/** A traffic decision. `variant` is "original", a shadow name or "control". */
export interface SplitDecision {
  variant: string;
  /** 0..9999, or -1 when no bucketing took place (rolled back, unknown item). */
  bucket: number;
  reason: 'rolled_back' | 'no_profile' | 'invalid_profile' | 'holdout' | 'no_match' | 'not_in_share' | 'assigned' | 'control' | 'pinned';
  /** Only for variant `control`: the shadow whose control cohort the user is in. */
  controlOf?: string;
}

export const ORIGINAL = 'original';
/** Reserved variant of every shadow's control cohort (the original, instrumented, no rewrites). */
export const CONTROL = 'control';

/** Platforms of an update bundle (Expo export layout, pipeline/mobile). */
export const EXPO_PLATFORMS = ['ios', 'android'] as const;
