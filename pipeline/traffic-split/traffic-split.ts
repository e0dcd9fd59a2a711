/**
 * The pure traffic-splitting core: which variant (original, one shadow, or that shadow's control
 * cohort) a user gets for an item's shadow profile. No I/O, no clock, no randomness — same (user, profile) → same answer,
 * in this process, in the Python reference (reference.py) and in cases.json.
 *
 * compileProfile runs once per profile change (validation, regex/semver compilation, bucket
 * layout); trafficSplit runs per resolve and allocates at most the returned decision.
 * Semantics, hash spec and bucket layout: README.md beside this file.
 */
import semver from 'semver';
import { ValidationError, type FieldIssue } from '../errors.ts';
import { CONTROL, ORIGINAL, type SegmentLookup, type ShadowProfile, type SplitDecision, type TrafficRule, type UserContext } from '../domain/types.ts';
import { BUCKETS, hashWithPrefix, prefixState, type PrefixState } from './hash.ts';
import { MAX_REGEX_INPUT, compileRegexRule, type RegexMatcher } from './regex-safety.ts';
import { isPercentage, MAX_STRING, validateTrafficConfig } from './validate.ts';

export { HASH_VERSION, BUCKETS } from './hash.ts';
export { validateTrafficConfig } from './validate.ts';

export const MAX_SHADOWS = 64;
/** Distinct appVersion strings remembered per semver rule before the memo is reset. */
const SEMVER_MEMO_LIMIT = 1024;

const enum Attr {
  UserId,
  DeviceType,
  Country,
  UserGroup,
  AppVersion,
  Custom,
  /** Behavioural segment membership (pipeline/segments), asked of the SegmentLookup. */
  Segment,
}
const enum Op {
  In,
  NotIn,
  Equals,
  NotEquals,
  Semver,
  Regex,
}
const OP_CODES: Record<string, Op> = {
  in: Op.In,
  not_in: Op.NotIn,
  equals: Op.Equals,
  not_equals: Op.NotEquals,
  semver: Op.Semver,
  regex: Op.Regex,
};
/** Relative evaluation cost, for ordering (Array.prototype.sort is stable). */
const RULE_COST: Record<Op, number> = {
  [Op.Equals]: 0,
  [Op.NotEquals]: 0,
  [Op.In]: 1,
  [Op.NotIn]: 1,
  [Op.Semver]: 2,
  [Op.Regex]: 3,
};
/** Segment rules cost a hash and a binary search per segment: after equals/in, before semver. */
const SEGMENT_RULE_COST = 1.5;
const ATTR_CODES: Record<string, Attr> = {
  userId: Attr.UserId,
  deviceType: Attr.DeviceType,
  country: Attr.Country,
  userGroup: Attr.UserGroup,
  appVersion: Attr.AppVersion,
  segment: Attr.Segment,
};

/** One rule, compiled. A single class keeps every rule the same shape for the JIT. */
class CompiledRule {
  constructor(
    readonly attr: Attr,
    readonly name: string,
    readonly op: Op,
    readonly set: Set<string> | null,
    readonly value: string,
    readonly range: semver.Range | null,
    readonly memo: Map<string, boolean> | null,
    readonly re: RegexMatcher | null,
    /** Segment ids of a segment rule, for iteration (the set answers nothing about membership). */
    readonly segments: readonly string[] | null = null,
  ) {}
}

export interface CompiledShadow {
  readonly name: string;
  /** Target share of eligible users, basis points of 10,000 (the control cohort gets as many). */
  readonly shareBp: number;
  /**
   * Bucket range [lo, hi) of the assignment bucket that this shadow (and its control cohort,
   * when `control`) owns at its share: w buckets, or 2w with a control.
   */
  readonly lo: number;
  readonly hi: number;
  /** Has a control cohort: inside [lo, hi) an odd offset from the anchor is the control. */
  readonly control: boolean;
  /** Rolled back on its own (pipeline/rollout): owns no buckets, and a pin to it is not served. */
  readonly rolledBack?: boolean;
  /** The range grows down from segmentHi (offset = hi − 1 − b), else up from segmentLo (b − lo). */
  readonly growsDown: boolean;
  /** Bounds of the fixed segment the range grows inside (see README, "Bucket layout"). */
  readonly segmentLo: number;
  readonly segmentHi: number;
  readonly matchAll: boolean;
  readonly rules: readonly CompiledRule[];
}

/** What trafficSplit evaluates. Build it with compileProfile or safeCompile, never by hand. */
export class CompiledProfile {
  /** @internal */
  constructor(
    readonly itemId: string,
    readonly profileVersion: number,
    readonly valid: boolean,
    readonly rolledBack: boolean,
    /** Why the profile was refused (safeCompile only); empty when valid. */
    readonly issues: readonly FieldIssue[],
    readonly seed: string,
    readonly holdoutBp: number,
    readonly shadows: readonly CompiledShadow[],
    /** @internal pre-hashed `seed + ":"` and `seed + ":holdout:"` */
    readonly assignPrefix: PrefixState,
    readonly holdoutPrefix: PrefixState,
  ) {}
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Percent with two decimals → basis points of the 10,000 buckets. */
export function toBasisPoints(percentage: number): number {
  return Math.round(percentage * 100);
}

/**
 * Bucket layout (README "Bucket layout"). With n shadows, boundary(k) = ⌊k·10000/n⌋. Shadows
 * are paired in declared order: pair j owns [boundary(2j), boundary(min(2j+2, n))); its first
 * shadow grows up from the segment start, its second down from the segment end. So each
 * shadow's range depends only on its own share (ramps are nested, neighbours never move), and
 * every shadow can always take its nominal 1/n, borrowing what its partner leaves.
 */
export function segmentOf(index: number, count: number): { lo: number; hi: number; growsDown: boolean } {
  const boundary = (k: number) => Math.floor((k * BUCKETS) / count);
  const first = index - (index % 2);
  return { lo: boundary(first), hi: boundary(Math.min(first + 2, count)), growsDown: index % 2 === 1 };
}

/**
 * Width in the assignment-bucket space. Holdout is drawn from an independent hash, so only
 * (1 − holdout) of eligible users reach the layout; widening by 1/(1 − holdout) keeps each
 * shadow's share of ALL eligible users at its percentage. Floor keeps it monotone and never
 * over target (error < 1 bucket).
 */
function widthOf(shareBp: number, holdoutBp: number): number {
  if (holdoutBp >= BUCKETS) return 0;
  return Math.floor((shareBp * BUCKETS) / (BUCKETS - holdoutBp));
}

const costOf = (r: CompiledRule): number => (r.attr === Attr.Segment ? SEGMENT_RULE_COST : RULE_COST[r.op]);

function compileRule(r: Record<string, unknown>): CompiledRule {
  const attribute = r.attribute as string;
  const op = OP_CODES[r.op as string];
  const attr = Object.hasOwn(ATTR_CODES, attribute) ? ATTR_CODES[attribute] : Attr.Custom;
  const values = r.values as string[] | undefined;
  if (attr === Attr.Segment) return new CompiledRule(attr, attribute, op, null, '', null, null, null, [...new Set(values)]);
  switch (op) {
    case Op.In:
    case Op.NotIn:
      return new CompiledRule(attr, attribute, op, new Set(values), '', null, null, null);
    case Op.Equals:
    case Op.NotEquals:
      return new CompiledRule(attr, attribute, op, null, (r.value as string | undefined) ?? values![0], null, null, null);
    case Op.Semver:
      return new CompiledRule(
        attr, attribute, op, null, '',
        new semver.Range(r.range as string, { includePrerelease: true }), new Map(), null,
      );
    default:
      return new CompiledRule(attr, attribute, op, null, '', null, null, compileRegexRule(r.pattern as string));
  }
}

/** Validates and compiles a profile; throws ValidationError naming every offending field. */
export function compileProfile(profile: ShadowProfile): CompiledProfile {
  const issues: FieldIssue[] = [];
  const p = profile as unknown;
  if (!isRecord(p)) throw new ValidationError('shadow profile must be an object', [{ path: '', message: 'not an object' }]);
  if (p.state !== 'active' && p.state !== 'rolled_back') {
    issues.push({ path: 'state', message: 'state must be "active" or "rolled_back"' });
  }
  const seed = typeof p.seed === 'string' && p.seed !== '' ? p.seed : p.itemId;
  if (typeof seed !== 'string' || seed === '' || seed.length > MAX_STRING) {
    issues.push({ path: 'seed', message: 'seed (or, without one, itemId) must be a non-empty string' });
  }
  const holdout = p.holdout ?? 0;
  if (!isPercentage(holdout)) issues.push({ path: 'holdout', message: 'holdout must be a number from 0 to 100' });
  const shadows = p.shadows;
  if (!Array.isArray(shadows)) {
    issues.push({ path: 'shadows', message: 'shadows must be an array' });
  } else if (shadows.length > MAX_SHADOWS) {
    issues.push({ path: 'shadows', message: `at most ${MAX_SHADOWS} shadows` });
  } else {
    const seen = new Map<string, number>();
    shadows.forEach((s, i) => {
      if (!isRecord(s)) {
        issues.push({ path: `shadows/${i}`, message: 'shadow must be an object' });
        return;
      }
      const name = s.name;
      if (typeof name !== 'string' || name === '' || name.length > MAX_STRING) {
        issues.push({ path: `shadows/${i}/name`, message: 'name must be a non-empty string' });
      } else if (name === ORIGINAL) {
        issues.push({ path: `shadows/${i}/name`, message: `"${ORIGINAL}" is reserved for the unshadowed item` });
      } else if (name === CONTROL) {
        issues.push({ path: `shadows/${i}/name`, message: `"${CONTROL}" is reserved for the control cohorts` });
      } else if (seen.has(name)) {
        issues.push({ path: `shadows/${i}/name`, message: `duplicate shadow name (also shadows/${seen.get(name)})` });
      } else {
        seen.set(name, i);
      }
      if (s.state !== undefined && s.state !== 'active' && s.state !== 'rolled_back') {
        issues.push({ path: `shadows/${i}/state`, message: 'state must be "active" or "rolled_back"' });
      }
      if (s.control !== undefined && typeof s.control !== 'boolean') {
        issues.push({ path: `shadows/${i}/control`, message: 'control must be true or false' });
      }
      issues.push(...validateTrafficConfig(s.traffic, `shadows/${i}/traffic`));
    });
  }
  if (issues.length > 0) throw new ValidationError('invalid shadow profile', issues);

  const specs = profile.shadows;
  const holdoutBp = toBasisPoints(holdout as number);
  // A shadow rolled back on its own keeps its configured share for later but owns no buckets:
  // its users (and its control cohort's) get the original, nobody else moves (pipeline/rollout).
  const shares = specs.map((s) => (s.state === 'rolled_back' ? 0 : toBasisPoints(s.traffic.percentage)));
  // A control cohort is as large as its shadow: it occupies the same share again.
  const controls = specs.map((s) => s.control !== false);
  const total = shares.reduce((a, b, i) => a + (controls[i] ? 2 * b : b), 0);
  if (total + holdoutBp > BUCKETS) {
    const withControls = controls.some(Boolean) ? ', each control cohort counted like its shadow' : '';
    throw new ValidationError('shadow shares plus holdout exceed 100%', [
      { path: 'shadows', message: `shares of all shadows (${total / 100}%${withControls}) plus holdout (${holdoutBp / 100}%) exceed 100%` },
    ]);
  }
  // Buckets each shadow occupies: w for itself, as many again for its control cohort.
  const widths = shares.map((s, i) => widthOf(s, holdoutBp) * (controls[i] ? 2 : 1));
  const n = specs.length;
  const compiled: CompiledShadow[] = specs.map((s, i) => {
    const seg = segmentOf(i, n);
    const w = widths[i];
    const partner = seg.growsDown ? i - 1 : i + 1 < n && segmentOf(i + 1, n).lo === seg.lo ? i + 1 : -1;
    const partnerW = partner >= 0 ? widths[partner] : 0;
    if (w + partnerW > seg.hi - seg.lo) {
      const room = seg.hi - seg.lo - partnerW;
      const own = controls[i] ? Math.floor(room / 2) : room;
      const maxPct = Math.floor((own * (BUCKETS - holdoutBp)) / BUCKETS) / 100;
      const withPartner = partner >= 0 ? ` while "${specs[partner].name}" holds ${shares[partner] / 100}%${controls[partner] ? ' (+ its control)' : ''}` : '';
      const withControl = controls[i] ? ' (its control cohort takes as much again)' : '';
      issues.push({
        path: `shadows/${i}/traffic/percentage`,
        message: `with ${n} shadows and ${holdoutBp / 100}% holdout this shadow can take at most ${maxPct}%${withControl}${withPartner}`,
      });
    }
    const lo = seg.growsDown ? seg.hi - w : seg.lo;
    return {
      name: s.name,
      ...(s.state === 'rolled_back' ? { rolledBack: true } : {}),
      shareBp: shares[i],
      lo,
      hi: lo + w,
      control: controls[i],
      growsDown: seg.growsDown,
      segmentLo: seg.lo,
      segmentHi: seg.hi,
      matchAll: s.traffic.match === 'all',
      // Rules are pure predicates, so evaluating the cheap ones first changes no answer and
      // lets most non-matching users leave before a semver or regex test.
      rules: s.traffic.rules
        .map((r) => compileRule(r as unknown as Record<string, unknown>))
        .sort((x, y) => costOf(x) - costOf(y)),
    };
  });
  // Both shadows of an overflowing pair are named: lowering either one fixes it.
  if (issues.length > 0) throw new ValidationError('shadow shares do not fit the bucket layout', issues);

  const s = seed as string;
  return new CompiledProfile(
    String(profile.itemId), profile.profileVersion, true, profile.state === 'rolled_back', [], s, holdoutBp,
    compiled, prefixState(`${s}:`), prefixState(`${s}:holdout:`),
  );
}

const EMPTY_PREFIX = prefixState('');

/**
 * Like compileProfile, but a profile that fails validation yields an evaluator that always
 * answers original with reason 'invalid_profile': devices never see an error.
 */
export function safeCompile(profile: ShadowProfile): CompiledProfile {
  try {
    return compileProfile(profile);
  } catch (err) {
    const issues = err instanceof ValidationError ? err.issues : [{ path: '', message: String(err) }];
    const p = (isRecord(profile) ? profile : {}) as Partial<ShadowProfile>;
    return new CompiledProfile(
      String(p.itemId ?? ''), typeof p.profileVersion === 'number' ? p.profileVersion : -1, false, false, issues, '',
      0, [], EMPTY_PREFIX, EMPTY_PREFIX,
    );
  }
}

const freeze = (variant: string, bucket: number, reason: SplitDecision['reason']): SplitDecision =>
  Object.freeze({ variant, bucket, reason });
// Shared, frozen answers for the unbucketed cases: no allocation. Treat decisions as read-only.
const NO_PROFILE = freeze(ORIGINAL, -1, 'no_profile');
const INVALID = freeze(ORIGINAL, -1, 'invalid_profile');
const ROLLED_BACK = freeze(ORIGINAL, -1, 'rolled_back');
const NO_MATCH = freeze(ORIGINAL, -1, 'no_match');

function attributeOf(user: UserContext, rule: CompiledRule): unknown {
  switch (rule.attr) {
    case Attr.UserId:
      return user.userId;
    case Attr.DeviceType:
      return user.deviceType;
    case Attr.Country:
      return user.country;
    case Attr.UserGroup:
      return user.userGroup;
    case Attr.AppVersion:
      return user.appVersion;
    default: {
      const attrs = user.attributes;
      return attrs === undefined || attrs === null ? undefined : attrs[rule.name];
    }
  }
}

/**
 * `segment in [a, b]`: the user is a member of at least one; `segment not_in [a, b]`: the user is
 * known not to be in any. A segment the lookup does not know (never evaluated, or not loaded in
 * this process yet) is a missing attribute: it makes neither op hold, so a resolver that has not
 * loaded the memberships never puts anyone into a shadow through `not_in`.
 */
function segmentRuleHolds(user: UserContext, rule: CompiledRule, segments: SegmentLookup | undefined): boolean {
  const userId = user.userId;
  if (segments === undefined || typeof userId !== 'string' || userId === '') return false;
  const ids = rule.segments!;
  if (rule.op === Op.In) {
    for (let i = 0; i < ids.length; i++) if (segments.membership(ids[i], userId) === 1) return true;
    return false;
  }
  for (let i = 0; i < ids.length; i++) if (segments.membership(ids[i], userId) !== 0) return false;
  return true;
}

function ruleHolds(user: UserContext, rule: CompiledRule, segments: SegmentLookup | undefined): boolean {
  if (rule.attr === Attr.Segment) return segmentRuleHolds(user, rule, segments);
  const v = attributeOf(user, rule);
  // Missing (absent, empty or not a string — e.g. an inherited `constructor`) never matches,
  // not even a negative rule: a user we know nothing about is never shadowed by exclusion.
  if (typeof v !== 'string' || v === '') return false;
  switch (rule.op) {
    case Op.In:
      return rule.set!.has(v);
    case Op.NotIn:
      return !rule.set!.has(v);
    case Op.Equals:
      return v === rule.value;
    case Op.NotEquals:
      return v !== rule.value;
    case Op.Semver: {
      const memo = rule.memo!;
      let hit = memo.get(v);
      if (hit === undefined) {
        // Range.test parses the version (an allocation); app versions repeat, so memoise.
        // Invalid versions return false. The reset bounds memory against random input.
        hit = rule.range!.test(v);
        if (memo.size >= SEMVER_MEMO_LIMIT) memo.clear();
        memo.set(v, hit);
      }
      return hit;
    }
    default:
      return v.length <= MAX_REGEX_INPUT && rule.re!.test(v);
  }
}

function eligible(user: UserContext, shadow: CompiledShadow, segments: SegmentLookup | undefined): boolean {
  const rules = shadow.rules;
  const n = rules.length;
  if (n === 0) return true;
  if (shadow.matchAll) {
    for (let i = 0; i < n; i++) if (!ruleHolds(user, rules[i], segments)) return false;
    return true;
  }
  for (let i = 0; i < n; i++) if (ruleHolds(user, rules[i], segments)) return true;
  return false;
}

/**
 * The variant for `user`. Order: no profile → invalid → rolled back → rules (no shadow
 * matches: no_match, unbucketed) → holdout → the shadow owning the user's bucket, if the user
 * is eligible for it (assigned, or `control` with `controlOf` for the odd offsets of a shadow
 * with a control cohort), else not_in_share.
 */
export function trafficSplit(user: UserContext, compiled: CompiledProfile | undefined, segments?: SegmentLookup): SplitDecision {
  if (compiled === undefined) return NO_PROFILE;
  if (!compiled.valid) return INVALID;
  if (compiled.rolledBack) return ROLLED_BACK;
  const shadows = compiled.shadows;
  const n = shadows.length;
  let firstEligible = -1;
  for (let i = 0; i < n; i++) {
    if (eligible(user, shadows[i], segments)) {
      firstEligible = i;
      break;
    }
  }
  if (firstEligible < 0) return NO_MATCH;
  const userId = user.userId;
  const bucket = hashWithPrefix(compiled.assignPrefix, userId) % BUCKETS;
  if (compiled.holdoutBp > 0 && hashWithPrefix(compiled.holdoutPrefix, userId) % BUCKETS < compiled.holdoutBp) {
    return { variant: ORIGINAL, bucket, reason: 'holdout' };
  }
  for (let i = firstEligible; i < n; i++) {
    const s = shadows[i];
    if (bucket >= s.lo && bucket < s.hi) {
      if (i !== firstEligible && !eligible(user, s, segments)) break;
      // Shadow and control interleave from the range's fixed anchor (even offset: shadow, odd:
      // control), so both grow together and stay equal (README "Control cohorts").
      if (s.control && ((s.growsDown ? s.hi - 1 - bucket : bucket - s.lo) & 1) === 1) {
        return { variant: CONTROL, bucket, reason: 'control', controlOf: s.name };
      }
      return { variant: s.name, bucket, reason: 'assigned' };
    }
  }
  return { variant: ORIGINAL, bucket, reason: 'not_in_share' };
}

/**
 * A predicate over users from targeting rules alone (no share, no bucketing): the same rule
 * semantics as a shadow's eligibility — for anything else that selects users by rules, such as
 * per-segment allocation. Throws ValidationError with paths under `pathPrefix`.
 */
export function compileMatcher(match: 'all' | 'any', rules: readonly TrafficRule[], pathPrefix = ''): (user: UserContext, segments?: SegmentLookup) => boolean {
  const issues = validateTrafficConfig({ percentage: 0, match, rules }, pathPrefix).filter((i) => !i.path.endsWith('percentage'));
  if (issues.length > 0) throw new ValidationError('invalid rules', issues);
  const compiled = {
    matchAll: match === 'all',
    rules: rules.map((r) => compileRule(r as unknown as Record<string, unknown>)).sort((x, y) => costOf(x) - costOf(y)),
  } as unknown as CompiledShadow;
  return (user, segments) => eligible(user, compiled, segments);
}

const cache = new WeakMap<ShadowProfile, CompiledProfile>();

/**
 * Convenience for callers holding raw profiles: compiles once per profile object (WeakMap),
 * so profiles must be treated as immutable values — replace, never mutate in place.
 */
export function trafficSplitProfile(user: UserContext, profile: ShadowProfile | undefined, segments?: SegmentLookup): SplitDecision {
  if (profile === undefined || profile === null) return NO_PROFILE;
  let compiled = cache.get(profile);
  if (compiled === undefined) {
    compiled = safeCompile(profile);
    cache.set(profile, compiled);
  }
  return trafficSplit(user, compiled, segments);
}
