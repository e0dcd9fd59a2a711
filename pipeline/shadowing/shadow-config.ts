/**
 * Validation of operator shadow configs (docs/ARCHITECTURE.md, "Shadow configuration").
 *
 * parseShadowConfigs accepts one config or an array (A/B/n), applies defaults and returns plain
 * ShadowConfig values, or throws one ValidationError listing every issue with a field path such
 * as `shadowConfig/0/endpoints/payments` (a single object is treated as an array of one, so
 * paths always carry the index). Objects are strict: an unknown key (a typo such as
 * `sampelRate`) is an issue rather than silently ignored — except the read-only `artifact` of a
 * stored ShadowSpec, which is dropped so a GET → PUT round trip works.
 */
import { z } from 'zod';
import type { ItemManifest, ShadowConfig, TrafficConfig } from '../domain/types.ts';
import { CONTROL, ORIGINAL } from '../domain/types.ts';
import { ValidationError, type FieldIssue } from '../errors.ts';
import { MAX_SHADOWS } from '../traffic-split/traffic-split.ts';
import { validateTrafficConfig } from '../traffic-split/validate.ts';
import { endpointUrlProblem, zodIssues } from './manifest.ts';
import { planIssues, type PlanLimits, type RolloutPlan } from '../rollout/plan.ts';

export const SHADOW_NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const POINT_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const MAX_POINTS = 200;
export const MAX_SELECTOR_LENGTH = 512;

/** DOM events an instrumentation point may listen to (the library attaches one listener per point). */
export const POINT_EVENTS = [
  'click', 'dblclick', 'contextmenu', 'submit', 'change', 'input', 'focus', 'blur',
  'keydown', 'keyup', 'pointerdown', 'pointerup', 'touchstart', 'touchend',
  'mouseenter', 'mouseleave', 'scroll', 'play', 'pause', 'ended', 'load', 'error', 'visible',
] as const;

const pointSchema = z.strictObject({
  id: z.string().regex(POINT_ID_RE, 'must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
  selector: z
    .string()
    .min(1, 'must not be empty')
    .max(MAX_SELECTOR_LENGTH, `must be at most ${MAX_SELECTOR_LENGTH} characters`)
    // eslint-disable-next-line no-control-regex
    .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'must not contain control characters'),
  event: z.enum(POINT_EVENTS, { message: `must be one of ${POINT_EVENTS.join(', ')}` }),
});

const instrumentationSchema = z.strictObject({
  capture: z
    .strictObject({
      performance: z.boolean().default(true),
      errors: z.boolean().default(true),
      usage: z.boolean().default(true),
    })
    .prefault({}),
  points: z
    .array(pointSchema)
    .max(MAX_POINTS, `at most ${MAX_POINTS} points`)
    .default([])
    .superRefine((points, ctx) => {
      const seen = new Set<string>();
      points.forEach((p, i) => {
        if (seen.has(p.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicate point id ${p.id}` });
        seen.add(p.id);
      });
    }),
  sampleRate: z.number().min(0, 'must be from 0 to 1').max(1, 'must be from 0 to 1').default(1),
});

const shadowSchema = z.strictObject({
  name: z
    .string()
    .regex(SHADOW_NAME_RE, 'must match ^[a-z0-9][a-z0-9-]{0,62}$')
    .refine((n) => n !== ORIGINAL, `"${ORIGINAL}" is reserved for the unmodified item`)
    .refine((n) => n !== CONTROL, `"${CONTROL}" is reserved for the control cohorts`),
  instrumentation: instrumentationSchema.prefault({}),
  endpoints: z.record(z.string(), z.string()).default({}),
  // An equally sized control cohort (the original, instrumented alike) unless switched off.
  control: z.boolean().default(true),
  // Checked by trafficShapeIssues (one place, shared with the resolver's compile step).
  traffic: z.unknown().optional(),
  artifact: z.unknown().optional(),
  // Per-shadow rollback: a rolled-back shadow keeps its config but owns no users (pipeline/rollout).
  state: z.enum(['active', 'rolled_back'], { message: 'must be "active" or "rolled_back"' }).optional(),
  // Checked by planIssues (pipeline/rollout/plan.ts); null removes a plan, absent keeps it.
  rollout: z.unknown().optional(),
  // Read-only (written by the profile writer): dropped so a GET → PUT round trip works.
  rolloutState: z.unknown().optional(),
});

/**
 * JSON has no -0 (it prints 0): a config stored with -0 would come back from GET as a different
 * value than was accepted, so GET → PUT would not be a fixed point (found by the fresh-seed
 * fuzz pass, test/fuzz/configs, FUZZ_SEED=63696294).
 */
const noNegativeZero = (x: number): number => (Object.is(x, -0) ? 0 : x);

export const DEFAULT_TRAFFIC: Readonly<TrafficConfig> = Object.freeze({ percentage: 0, match: 'all', rules: [] });

/** Traffic with defaults filled in for absent fields (present fields are validated as given). */
export function trafficWithDefaults(traffic: unknown): unknown {
  if (traffic === undefined) return { ...DEFAULT_TRAFFIC, rules: [] };
  if (typeof traffic !== 'object' || traffic === null || Array.isArray(traffic)) return traffic;
  const t = traffic as Record<string, unknown>;
  return {
    ...t,
    percentage: t.percentage ?? DEFAULT_TRAFFIC.percentage,
    match: t.match ?? DEFAULT_TRAFFIC.match,
    rules: t.rules ?? [],
  };
}

/**
 * Issues in one shadow's traffic object (after defaults), paths under `pathPrefix`. Delegates to
 * the traffic-split validator so upload-time and resolve-time agree on what compiles.
 */
export function trafficShapeIssues(traffic: unknown, pathPrefix: string): FieldIssue[] {
  return validateTrafficConfig(trafficWithDefaults(traffic), pathPrefix);
}

function endpointIssues(endpoints: Record<string, string>, manifest: ItemManifest, prefix: string): FieldIssue[] {
  const declared = manifest.endpoints ?? {};
  const names = Object.keys(declared).sort();
  const issues: FieldIssue[] = [];
  for (const [key, url] of Object.entries(endpoints)) {
    if (!Object.hasOwn(declared, key)) {
      issues.push({
        path: `${prefix}/${key}`,
        message: `the item's manifest declares no endpoint "${key}"${names.length ? ` (declared: ${names.join(', ')})` : ' (it declares none)'}`,
      });
      continue;
    }
    const problem = endpointUrlProblem(url);
    if (problem) issues.push({ path: `${prefix}/${key}`, message: problem });
  }
  return issues;
}

export interface ParseShadowConfigsOptions {
  /** Root of issue paths: `shadowConfig` (upload field, default) or e.g. `shadows` (PUT body). */
  pathPrefix?: string;
  /** Limits of rollout plans (configuration: PENUMBRA_ROLLOUT_MIN_ANALYSIS_SECONDS). */
  planLimits?: PlanLimits;
}

/** Validate one shadow config or an array of them against the item's manifest. */
export function parseShadowConfigs(input: unknown, manifest: ItemManifest, opts: ParseShadowConfigsOptions = {}): ShadowConfig[] {
  const root = opts.pathPrefix ?? 'shadowConfig';
  const list = Array.isArray(input) ? input : [input];
  const issues: FieldIssue[] = [];
  if (list.length > MAX_SHADOWS) {
    throw new ValidationError('too many shadow configs', [{ path: root, message: `at most ${MAX_SHADOWS} shadows` }]);
  }
  const out: ShadowConfig[] = [];
  const names = new Map<string, number>();
  let share = 0;
  list.forEach((raw, i) => {
    const at = `${root}/${i}`;
    const parsed = shadowSchema.safeParse(raw);
    const trafficRaw = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>).traffic : undefined;
    const tIssues = trafficShapeIssues(trafficRaw, `${at}/traffic`);
    issues.push(...tIssues);
    if (!parsed.success) {
      issues.push(...zodIssues(parsed.error, at).filter((x) => !x.path.startsWith(`${at}/traffic`)));
      return;
    }
    const { name, instrumentation, endpoints, control, state } = parsed.data;
    const eIssues = endpointIssues(endpoints, manifest, `${at}/endpoints`);
    issues.push(...eIssues);
    let rollout: RolloutPlan | null | undefined;
    if (parsed.data.rollout === null) rollout = null;
    else if (parsed.data.rollout !== undefined) {
      const r = planIssues(parsed.data.rollout, `${at}/rollout`, { hasControl: control, limits: opts.planLimits });
      issues.push(...r.issues);
      rollout = r.plan;
    }
    const prev = names.get(name);
    if (prev !== undefined) issues.push({ path: `${at}/name`, message: `duplicate shadow name "${name}" (also ${root}/${prev})` });
    names.set(name, i);
    if (tIssues.length > 0 || eIssues.length > 0) return;
    const traffic = trafficWithDefaults(trafficRaw) as TrafficConfig;
    // A control cohort is as large as its shadow, so it counts twice; a rolled-back shadow holds nobody.
    const held = state === 'rolled_back' ? 0 : traffic.percentage;
    share += control ? 2 * held : held;
    // Shares are of ALL users of the item, so A/B/n shares cannot add up past everyone.
    if (share > 100 + 1e-9) {
      const note = control ? ' (a shadow with a control cohort takes its share twice: one shadow can take at most 50%; "control": false drops the baseline)' : '';
      issues.push({ path: `${at}/traffic/percentage`, message: `shares of all shadows and their control cohorts add up to ${share}%, more than 100%${note}` });
    }
    out.push({
      name,
      instrumentation: {
        capture: { ...instrumentation.capture },
        points: instrumentation.points.map((p) => ({ ...p })),
        sampleRate: noNegativeZero(instrumentation.sampleRate),
      },
      endpoints: Object.fromEntries(Object.entries(endpoints).sort(([a], [b]) => (a < b ? -1 : 1))),
      traffic: {
        percentage: noNegativeZero(traffic.percentage),
        match: traffic.match,
        rules: traffic.rules.map((r) => ({ ...r, ...(r.values ? { values: [...r.values] } : {}) })),
      },
      control,
      ...(state ? { state } : {}),
      ...(rollout !== undefined ? { rollout } : {}),
    });
  });
  if (issues.length > 0) {
    throw new ValidationError(`invalid shadow config (${issues.length} issue${issues.length === 1 ? '' : 's'})`, issues);
  }
  return out;
}
