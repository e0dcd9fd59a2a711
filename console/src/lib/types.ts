/**
 * Wire types of the operator API (`/api/v1`, see shared ARCHITECTURE.md "HTTP API").
 * Everything the server may add later is optional here: the console renders what exists.
 */
export type Role = 'viewer' | 'operator' | 'admin';
export interface WhoAmI { name: string; role: Role }

/** deviceType | country | userGroup | appVersion, or any custom attribute name. */
export type RuleAttribute = string;
export type RuleOp = 'in' | 'not_in' | 'equals' | 'not_equals' | 'semver' | 'regex';
export interface TrafficRule {
  attribute: RuleAttribute;
  op: RuleOp;
  values?: string[];
  value?: string;
  range?: string;
  pattern?: string;
}
export interface InstrumentationPoint { id: string; selector: string; event: string }
export interface ShadowConfig {
  name: string;
  instrumentation: {
    capture: { performance: boolean; errors: boolean; usage: boolean };
    points: InstrumentationPoint[];
    sampleRate: number;
  };
  endpoints: Record<string, string>;
  traffic: { percentage: number; match: 'all' | 'any'; rules: TrafficRule[] };
}
export interface ArtifactRef { sha256: string; size: number; [k: string]: unknown }
export type ShadowView = ShadowConfig & { artifact?: ArtifactRef | null; control?: boolean; state?: 'active' | 'rolled_back'; rollout?: RolloutPlanView | null; rolloutState?: RolloutStateView | null };

/** A guardrail: `direction` is the harmful one; `maxDelta` in the metric's unit (rates as fractions). */
export interface Guardrail { metric: string; direction: 'increase' | 'decrease'; maxDelta: number }
export interface RolloutPlanView {
  steps: { percentage: number; analysisSeconds?: number }[];
  analysisSeconds: number;
  minSessionsPerArm: number;
  guardrails: Guardrail[];
  maxInconclusive: number;
  onComplete: 'hold' | 'promote';
}
export interface RolloutStateView { status: 'running' | 'paused' | 'completed' | 'rolled_back'; step: number; stepStartedAt: number; lastAnalysisAt: number | null; inconclusive: number; reason: string | null }
export interface BanditPlanView { arms: string[]; control: boolean; metric: string; better?: 'higher' | 'lower'; floorShare: number; burnInSessions: number; reweightSeconds: number; guardrails: Guardrail[]; segments?: { by: 'deviceType' | 'country' | 'segment'; cells: string[]; burnInSessions: number | null } | null }
/** One cell of GET /items/{id}/bandit/segments (pipeline/segment-allocation). */
export interface CellView {
  cell: string; label: string; epoch: number; weights: { arm: string; weight: number }[]; dropped: { arm: string; epoch: number; reason: string }[];
  lastReweightAt: number | null; override: { actor: string; reason: string | null; at: number } | null; sticky: Record<string, number> | null;
  evidence: { at: number; epoch: number; phase: string; arms: { arm: string; sessions: number; pBest: number; weight: number }[]; sentence: string } | null;
}
/** GET /items/{id}/bandit/segments. */
export interface SegmentAllocationView { itemId: string; profileVersion: number; by: string; metric: string; status: string; burnInSessions: number; reweightSeconds: number; cells: CellView[]; history: { at: number; rule: string | null; automated: boolean; actor: string; reason: string; cells: string[] }[] }
export interface BanditStateView { status: 'running' | 'paused' | 'stopped'; epoch: number; weights: { arm: string; weight: number }[]; dropped: { arm: string; epoch: number; reason: string }[]; startedAt: number; lastReweightAt: number | null; reason: string | null }
export interface TimelineEntry { id: string; shadow: string | null; kind: string; rule: string | null; automated: boolean; actor: string; profileVersion: number; step: number | null; percentage: number | null; reason: string; evidence: unknown; at: number }
/** One entry of GET /items/{id}/history. */
export interface HistoryVersion { profileVersion: number; action: string; actor: string; reason: string | null; at: number; shadows: { name: string; traffic?: { percentage: number }; endpoints?: Record<string, string> }[] }
/** GET /items/{id}/rollout. */
export interface RolloutView {
  itemId: string;
  profileVersion: number;
  state: ItemState;
  itemVersion: string;
  shadows: { name: string; state: 'active' | 'rolled_back'; percentage: number; control: boolean; rollout: RolloutPlanView | null; rolloutState: RolloutStateView | null }[];
  bandit: BanditPlanView | null;
  banditState: BanditStateView | null;
  promotion: { shadow: string; fromItemVersion: string; toItemVersion: string; by: string; at: number } | null;
  timeline: TimelineEntry[];
}

export interface ScheduleStep { percentage: number; holdSeconds: number }
export interface Schedule {
  shadow: string;
  steps: ScheduleStep[];
  currentStep?: number;
  status?: 'running' | 'paused' | 'done';
  stepStartedAt?: number | null;
  pausedReason?: string | null;
}
export type ItemState = 'active' | 'rolled_back';
export interface ShadowConfigView {
  itemId: string;
  profileVersion: number;
  state: ItemState;
  itemVersion?: string;
  holdout?: unknown;
  guardrail?: unknown;
  schedule?: Schedule | null;
  shadows: ShadowView[];
  updatedBy?: string;
  updatedAt?: number | string;
}
export interface PutShadowConfig {
  shadows: (ShadowConfig & { rollout?: RolloutPlanView | null })[];
  state?: ItemState;
  holdout?: unknown;
  guardrail?: unknown;
  /** Deprecated (a timer plan); the console edits rollout plans instead. */
  schedule?: { shadow: string; steps: ScheduleStep[] } | null;
  bandit?: BanditPlanView | null;
}

export interface VariantView {
  name: string;
  sha256: string;
  size: number;
  files: number;
  profileVersion: number;
  replacements: number;
  artifactUrl?: string;
  launchUrl?: string;
}
export interface ItemVersionView {
  version: string;
  entry: string;
  ingestedAt: number | string;
  manifest: { id: string; version: string; name: string; entry: string; endpoints?: Record<string, string> };
  variants: VariantView[];
}
export interface ItemView {
  itemId: string;
  name: string;
  /** `mobile`: an update bundle served through the Expo Updates protocol (pipeline/mobile). */
  kind?: 'web' | 'mobile';
  platforms?: string[];
  runtimeVersion?: string | null;
  /** Mobile items: the URL an app's `updates.url` points at (relative to the API). */
  updateUrl?: string | null;
  latestVersion: string;
  state: ItemState;
  profileVersion: number;
  updatedAt: number | string;
  versions: ItemVersionView[];
  shadows: { name: string; percentage: number; rules: TrafficRule[] }[];
}
export interface UploadResult { item: ItemView; profile?: ShadowConfigView; reports?: unknown }

export interface LatencyStats { count: number; mean: number; p50: number; p95: number; p99: number; sum?: number; sumSq?: number }
export interface MetricWindow {
  itemId: string;
  variant: string;
  windowSize: string | number;
  windowStart: number;
  windowEnd: number;
  events?: number;
  sessions?: number;
  users?: number;
  errors?: number;
  errorSessions?: number;
  errorRate?: number;
  requests?: number;
  requestErrors?: number;
  rate?: number;
  latency?: Partial<LatencyStats>;
  conversions?: Record<string, { sessions: number; rate: number }>;
  perf?: Record<string, { count: number; mean: number; p95: number }>;
  late?: number;
  /** Live only: a copy of a still-open window (partial; replaced by the closed one). */
  provisional?: boolean;
  emittedAt?: number;
}
/** Always-valid (sequential) interval and its fixed-horizon twin, as the server computes them. */
export interface SequentialTest { valid?: boolean; diff?: number; ci?: [number, number]; halfWidth?: number; p?: number; significant?: boolean; se?: number; n?: number; alpha?: number; tuning?: number }
/**
 * A difference in means (latency, perf), shadow − control. Top-level `p`/`ci`/`significant` are the
 * always-valid ones that decide the verdict; `fixed` is the fixed-horizon Welch test.
 */
export interface MeanTest {
  valid?: boolean; diff?: number; relativeDiff?: number; ci?: [number, number]; p?: number; significant?: boolean; verdict?: Verdict;
  shadow?: { n: number; mean: number }; control?: { n: number; mean: number };
  sequential?: SequentialTest; fixed?: { t?: number; df?: number; p?: number; ci?: [number, number] };
  /** Older servers: the fixed-horizon t. */
  t?: number; df?: number;
}
/** A difference in proportions (error rate, conversions), shadow − control. */
export interface PropTest {
  valid?: boolean; diff?: number; relativeLift?: number; ci?: [number, number]; p?: number; significant?: boolean; verdict?: Verdict;
  shadow?: { n: number; x: number; rate: number }; control?: { n: number; x: number; rate: number };
  sequential?: SequentialTest; fixed?: { z?: number; p?: number; ci?: [number, number] };
  /** Older servers. */
  z?: number; lift?: number;
}
export type Verdict = 'better' | 'worse' | 'inconclusive';
export interface Comparison {
  shadow?: string;
  /** The baseline arm: `control` (the control cohort drawn for this shadow). */
  baseline?: string;
  hasBaseline?: boolean;
  /** Why nothing is compared, in words. */
  noBaseline?: { reason: string; message: string } | null;
  /** Both arms' distinct sessions. */
  sessions?: { shadow: number; control: number };
  method?: { kind: string; alpha: number; tuning: number };
  latency?: MeanTest;
  errorRate?: PropTest;
  conversions?: Record<string, PropTest>;
  /** Page timings and web vitals by perf name (lcp, inp, cls, ttfb, fcp, load, …). */
  perf?: Record<string, MeanTest>;
  srm?: { chi2?: number; p?: number; flagged?: boolean };
  verdicts?: Record<string, Verdict>;
  sentence?: string;
  /** When the owning member computed it (epoch ms, its clock). */
  at?: number;
}
/** Telemetry kept out of every window and comparison (no valid assignment token). */
export interface UnverifiedCounts { total: number; byVariant: Record<string, Record<string, number>> }
/** Where GET …/metrics got the comparisons (and unverified / join counts) from (pipeline/comparisons-topic). */
export type ComparisonsSource = 'this-process' | 'topic' | 'another-member' | 'none';
/** How fresh the comparisons followed from the comparisons topic are (source `topic`). */
export interface ComparisonsFreshness { computedAt: number; publishedAt: number; receivedAt: number; ageMs: number; transitMs: number; member: string; stale: boolean; staleAfterMs: number }
export interface MetricsResponse { windows: MetricWindow[]; comparisons: Record<string, Comparison>; unverified?: UnverifiedCounts | null; comparisonsSource?: ComparisonsSource; comparisonsFreshness?: ComparisonsFreshness | null }

export interface ResolverView { resolverId: string; host?: string; pid?: number; versions: Record<string, number>; at: number | string; stale?: boolean }
export interface Exposures { itemId: string; counts: Record<string, number>; total: number; since?: number | string }

export type AlertMetric = 'errorRate' | 'latencyMean' | 'latencyP95' | 'latencyP99' | 'requestErrorRate' | `conversion:${string}` | `perfMean:${string}` | `perfP95:${string}`;
export type AlertDirection = 'above' | 'below' | 'increase' | 'decrease';
export interface AlertRule {
  id: string;
  itemId: string | null;
  name: string;
  metric: AlertMetric;
  /** The server stores `vs_original` (deprecated) as `vs_control`. */
  comparison: 'absolute' | 'vs_control';
  direction: AlertDirection;
  kind: 'threshold' | 'ewma';
  threshold: number;
  ewma: { alpha: number; warmup: number; minStd: number } | null;
  minSample: number;
  forWindows: number;
  guardrail: boolean;
}
export type AlertRuleInput = Omit<AlertRule, 'id'>;
export interface Alert {
  id: string;
  incidentId?: string;
  ruleId: string;
  itemId: string;
  variant: string;
  metric: string;
  state: 'fired' | 'resolved';
  value: number;
  threshold: number;
  baseline?: number | null;
  message?: string;
  windowEnd?: number;
  action?: string | null;
  at: number | string;
}
export interface AuditEntry {
  id: string;
  itemId: string | null;
  actor: string;
  role: string;
  action: string;
  outcome: string;
  reason?: string | null;
  before: unknown;
  after: unknown;
  requestId?: string;
  at: number | string;
}

/** [#13] A rollout-risk score (GET /api/v1/items/{itemId}/risk; pipeline/risk-model/README.md). */
export interface RiskScoreView {
  id: string;
  itemId: string;
  version: string;
  shadow: string | null;
  phase: 'ingest' | 'update' | string;
  source: 'model' | 'prior' | string;
  modelVersion: number | null;
  probability: number;
  low: number | null;
  high: number | null;
  explanation: { feature: string; value: number; contribution: number }[];
  note: string;
  evidenceJson: string | null;
  at: number;
}

/** [#13] An early risk hold (pipeline/risk-model "Early hold"): lead time = decidedAt − heldAt for a regression. */
export interface RiskHoldView {
  itemId: string;
  version: string;
  shadow: string;
  scoreId: string;
  baseScoreId: string;
  probability: number;
  evidence: { shadowSessions: number; shadowErrorSessions: number; baselineSessions: number; baselineErrorSessions: number; baseline: string };
  heldAt: number;
  profileVersion: number | null;
  releasedBy: string | null;
  outcome: 'regression' | 'success' | null;
  decidedAt: number | null;
  leadMs: number | null;
}
/** [#13] The plan a proactive version's score chose (GET …/risk `plan`; pipeline/risk-plan README). */
export interface RiskPlanView {
  version: string;
  shadow: string;
  scoreId: string;
  tier: string | null;
  source: 'model' | 'prior' | 'operator' | string;
  probability: number;
  modelVersion: number | null;
  steps: number[];
  analysisSeconds: number;
  minSessionsPerArm: number;
  guardrails: { metric: string; direction: 'increase' | 'decrease'; maxDelta: number }[];
  maxInconclusive: number;
  onComplete: 'hold' | 'promote' | string;
  overridden: string[];
  overriddenBy: string | null;
  sizing: string;
  at: number;
}

/** [#13] One guardrail's forecast at the step's analysis (pipeline/guardrail-forecast). */
export interface GuardrailForecastView {
  metric: string;
  direction: 'increase' | 'decrease';
  maxDelta: number;
  status: 'forecast' | 'regressed' | 'unmeasured' | 'due' | string;
  probability: number | null;
  now: { diff: number | null; se: number | null; ciLow: number | null; ciHigh: number | null; shadowN: number; controlN: number };
  projected: { shadowN: number; controlN: number; se: number | null; halfWidth: number | null; boundary: number | null; spread: number | null };
  rates: { shadow: number; control: number };
  elapsedSeconds: number;
  remainingSeconds: number;
}

/** [#13] A shadow's step, forecast. */
export interface StepForecastView {
  shadow: string;
  step: number;
  stepStartedAt: number;
  analysisDueAt: number;
  at: number;
  status: string;
  guardrails: GuardrailForecastView[];
  worst: GuardrailForecastView | null;
  hold: GuardrailForecastView | null;
  holdAt: number;
}

/** [#13] A forecast hold: lead time = decidedAt − heldAt when the guardrail rolled it back. */
export interface ForecastHoldView {
  itemId: string;
  shadow: string;
  step: number;
  stepStartedAt: number;
  guardrail: GuardrailForecastView;
  probability: number;
  holdAt: number;
  heldAt: number;
  reason: string;
  profileVersion: number | null;
  releasedBy: string | null;
  outcome: 'rolled_back' | 'advanced' | 'completed' | 'removed' | null;
  decidedAt: number | null;
  leadMs: number | null;
  outcomeReason: string | null;
}

/** [#13] An early hold as every process knows it (pipeline/early-holds: rebuilt from the rollout decisions and the profile). */
export interface EarlyHoldView {
  id: string;
  kind: 'forecast' | 'risk';
  itemId: string;
  shadow: string;
  step: number | null;
  stepStartedAt: number | null;
  key: string | null;
  heldAt: number | null;
  profileVersion: number | null;
  reason: string;
  evidence: Record<string, unknown> | null;
  status: 'active' | 'released' | 'ended';
  releasedBy: string | null;
  releasedAt: number | null;
  releaseReason: string | null;
  endedBy: string | null;
  endedAt: number | null;
}

/** [#13] GET /api/v1/items/{itemId}/risk. */
export interface RiskView {
  scores: RiskScoreView[];
  holds: RiskHoldView[];
  plan: RiskPlanView | null;
  forecast: { holdAt: number | null; shadows: StepForecastView[]; holds: ForecastHoldView[] };
  /** Every early hold, from any process and after a restart (older servers: absent → []). */
  earlyHolds: EarlyHoldView[];
}

/** Behavioural segments (GET /api/v1/segments; docs/segments.md). */
export type SegmentState = 'ok' | 'failed' | 'timeout' | 'over_limit';
export interface SegmentStatusView {
  state: SegmentState;
  members: number;
  candidateMembers?: number | null;
  added?: number;
  removed?: number;
  evaluatedAt: number;
  durationMs?: number;
  snapshotAt?: number | null;
  lastGoodAt?: number | null;
  error?: string | null;
}
export interface SegmentInput {
  id: string;
  name: string;
  description?: string;
  sql: string;
  scheduleSeconds?: number;
  timeoutMs?: number;
  maxMembers?: number;
  enabled?: boolean;
}
export interface Segment extends Required<Omit<SegmentInput, 'description'>> {
  description?: string;
  updatedBy?: string;
  updatedAt?: number;
  status?: SegmentStatusView | null;
  loadedMembers?: number;
  falsePositiveRate?: number;
}
export interface SegmentPreview { members: number; truncated: boolean; sample: string[]; durationMs: number }

/** Per-segment results (GET /api/v1/items/{itemId}/metrics/segments; pipeline/segment-results). */
export type SegmentVerdict = 'better' | 'worse' | 'inconclusive';
export interface SegmentMetricView { valid: boolean; diff: number; p: number | null; ci: [number | null, number | null]; verdict: SegmentVerdict; adjustedP?: number | null; correctedVerdict?: SegmentVerdict }
export interface SegmentCellView { dimension: string; value: string; sessions: { shadow: number; control: number }; metrics: Record<string, SegmentMetricView> }
export interface SegmentFindingView { dimension: string; value: string; metric: string; diff: number; adjustedP: number; verdict: SegmentVerdict }
export interface SegmentShadowResultsView {
  shadow: string;
  global: { sessions: { shadow: number; control: number }; metrics: Record<string, SegmentMetricView> };
  breakdown: {
    shadow: string; alpha: number; correction: { method: 'holm'; tests: number; family: string };
    cells: SegmentCellView[]; regressions: SegmentFindingView[]; improvements: SegmentFindingView[]; sentence: string;
  };
}
export interface SegmentResultsView { itemId: string; from: number; to: number; dimensions: string[]; shadows: SegmentShadowResultsView[]; noBaseline: string[] }
