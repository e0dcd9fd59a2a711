/**
 * Shape and safety checks for the `traffic` part of a shadow config. The shadowing core calls
 * validateTrafficConfig for each shadow; compileProfile calls it too, so a profile that passes
 * here compiles (apart from profile-wide checks: share sums and segment capacity).
 */
import semver from 'semver';
import type { FieldIssue } from '../errors.ts';
import { unsafeRegexReason } from './regex-safety.ts';

export const RULE_OPS = ['in', 'not_in', 'equals', 'not_equals', 'semver', 'regex'] as const;
export const MAX_RULES = 50;
export const MAX_VALUES = 1000;
export const MAX_STRING = 256;
/** Reserved rule attribute: behavioural segment membership. */
export const SEGMENT_ATTRIBUTE = 'segment';
/** Segment ids (pipeline/segments) are slugs, so rules can name them. */
export const SEGMENT_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A share 0..100 with two decimals honoured (more decimals are rounded, not refused). */
export function isPercentage(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 100;
}

function checkString(v: unknown, path: string, issues: FieldIssue[], what: string): void {
  if (typeof v !== 'string' || v.length === 0) issues.push({ path, message: `${what} must be a non-empty string` });
  else if (v.length > MAX_STRING) issues.push({ path, message: `${what} longer than ${MAX_STRING} characters` });
}

function validateRule(rule: unknown, p: string, issues: FieldIssue[]): void {
  if (!isRecord(rule)) {
    issues.push({ path: p, message: 'rule must be an object' });
    return;
  }
  checkString(rule.attribute, `${p}/attribute`, issues, 'attribute');
  const op = rule.op;
  // `segment` is reserved for behavioural segments (pipeline/segments): membership, not a value.
  if (rule.attribute === SEGMENT_ATTRIBUTE && op !== 'in' && op !== 'not_in') {
    issues.push({ path: `${p}/op`, message: 'segment rules take in or not_in (segment in [<segment id>, …])' });
    return;
  }
  if (rule.attribute === SEGMENT_ATTRIBUTE && Array.isArray(rule.values)) {
    rule.values.forEach((v: unknown, i: number) => {
      if (typeof v === 'string' && v !== '' && !SEGMENT_ID.test(v)) issues.push({ path: `${p}/values/${i}`, message: `not a segment id (${SEGMENT_ID.source})` });
    });
  }
  if (typeof op !== 'string' || !(RULE_OPS as readonly string[]).includes(op)) {
    issues.push({ path: `${p}/op`, message: `op must be one of ${RULE_OPS.join(', ')}` });
    return;
  }
  // Whatever the op, a `values` that is present must be an array of strings: it is stored as such
  // (Avro array<string>) even where the op reads only `value`.
  // Companion fields, when present, are strings whatever the op (they are stored as such).
  for (const k of ['value', 'range', 'pattern'] as const) {
    if (rule[k] !== undefined && typeof rule[k] !== 'string') issues.push({ path: `${p}/${k}`, message: `${k} must be a string` });
  }
  if (op !== 'in' && op !== 'not_in' && rule.values !== undefined) {
    if (!Array.isArray(rule.values)) issues.push({ path: `${p}/values`, message: 'values must be an array of strings' });
    else if (rule.values.length > MAX_VALUES) issues.push({ path: `${p}/values`, message: `at most ${MAX_VALUES} values` });
    else rule.values.forEach((v: unknown, i: number) => checkString(v, `${p}/values/${i}`, issues, 'value'));
  }
  switch (op) {
    case 'in':
    case 'not_in': {
      const values = rule.values;
      if (!Array.isArray(values) || values.length === 0) {
        issues.push({ path: `${p}/values`, message: `${op} needs a non-empty array of strings` });
      } else if (values.length > MAX_VALUES) {
        issues.push({ path: `${p}/values`, message: `at most ${MAX_VALUES} values` });
      } else {
        values.forEach((v, i) => checkString(v, `${p}/values/${i}`, issues, 'value'));
      }
      break;
    }
    case 'equals':
    case 'not_equals': {
      // `value`, or values[0] (its strings were checked above).
      if (rule.value !== undefined) checkString(rule.value, `${p}/value`, issues, 'value');
      else if (!(Array.isArray(rule.values) && rule.values.length > 0)) issues.push({ path: `${p}/value`, message: `${op} needs a value` });
      break;
    }
    case 'semver': {
      const range = rule.range;
      if (typeof range !== 'string' || range.trim() === '') {
        issues.push({ path: `${p}/range`, message: 'semver needs a range such as ">=1.2.0 <2"' });
      } else if (range.length > MAX_STRING || semver.validRange(range) === null) {
        issues.push({ path: `${p}/range`, message: `not a valid semver range: ${JSON.stringify(range.slice(0, 64))}` });
      }
      break;
    }
    case 'regex': {
      const pattern = rule.pattern;
      if (typeof pattern !== 'string') {
        issues.push({ path: `${p}/pattern`, message: 'regex needs a pattern string' });
      } else {
        const why = unsafeRegexReason(pattern);
        if (why !== null) issues.push({ path: `${p}/pattern`, message: `pattern refused: ${why}` });
      }
      break;
    }
  }
}

/**
 * Issues in one shadow's `traffic` object; paths are `${pathPrefix}/…`, e.g.
 * `shadows/0/traffic/rules/1/range`. An empty list means it compiles.
 */
export function validateTrafficConfig(traffic: unknown, pathPrefix: string): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const at = (s: string) => (pathPrefix === '' ? s : `${pathPrefix}/${s}`);
  if (!isRecord(traffic)) {
    issues.push({ path: pathPrefix, message: 'traffic must be an object' });
    return issues;
  }
  if (!isPercentage(traffic.percentage)) {
    issues.push({ path: at('percentage'), message: 'percentage must be a number from 0 to 100' });
  }
  if (traffic.match !== 'all' && traffic.match !== 'any') {
    issues.push({ path: at('match'), message: 'match must be "all" or "any"' });
  }
  const rules = traffic.rules;
  if (!Array.isArray(rules)) {
    issues.push({ path: at('rules'), message: 'rules must be an array (empty = everyone eligible)' });
  } else if (rules.length > MAX_RULES) {
    issues.push({ path: at('rules'), message: `at most ${MAX_RULES} rules` });
  } else {
    rules.forEach((r, i) => validateRule(r, at(`rules/${i}`), issues));
  }
  return issues;
}
