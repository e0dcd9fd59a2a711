/**
 * Regex rules. Patterns come from operators and run on every resolve with device-supplied
 * input, so matching must never backtrack: rules are matched by RE2JS (a maintained pure-JS
 * port of RE2, linear in the input for any pattern — no native build, nothing downloaded at
 * install). V8's own engine is kept out of the hot path: its backtracking made a pattern that
 * passed the old structural check alone, `^(a|a)(a|a)…$` (39 groups), stall the event loop for
 * hours on `userGroup=aaa…b` (test/security/hardening.int.test.ts).
 *
 * A pattern is accepted when
 * - it is ≤ MAX_PATTERN_LENGTH characters and compiles both as a JavaScript `u` regex and as
 *   RE2 (the common dialect, so the same rule means the same thing in the notebooks and the
 *   Python reference, whose engines backtrack);
 * - it stays inside the structural subset below (no backreferences or lookarounds — RE2 has
 *   neither — and none of the classic exponential shapes such as `(a+)+`, so a backtracking
 *   consumer of the same rule, e.g. reference.py, stays safe too; the golden cases pin these
 *   refusals);
 * - its RE2 program has ≤ MAX_PROGRAM_SIZE instructions (bounds the per-character cost:
 *   `a{1000}a{1000}…` would otherwise be a 25,000-instruction program).
 * Device values longer than MAX_REGEX_INPUT never match (the golden cases pin this too).
 *
 * Structural subset (kept from before RE2; now defence in depth and portability):
 * - no nested repetition that can grow: when a repeated group contains a repeating quantifier,
 *   the product of the two maxima must stay ≤ LARGE_REPEAT, and a group repeated more than
 *   LARGE_REPEAT times must not contain an alternation — `(a+)+`, `(a|aa)*`, `(\w+\s?)*`,
 *   `(.*a){12}`, `(x{1,16}){16}` are the classic exponential shapes, while
 *   `(\.\d{1,3}){3}` stays small and is allowed;
 * - at most MAX_UNBOUNDED quantifiers whose maximum exceeds LARGE_REPEAT.
 *
 * Semantics are RE2's (README, "Regex rules"): `\s` is ASCII whitespace, `.` excludes only
 * `\n`; `\uXXXX` and `\u{…}` escapes are accepted and mean the same code point.
 */
import { RE2JS } from 're2js';

export const MAX_PATTERN_LENGTH = 200;
export const MAX_UNBOUNDED = 2;
export const LARGE_REPEAT = 16;
export const MAX_REGEX_INPUT = 256;
export const MAX_PROGRAM_SIZE = 5000;

/** What a compiled rule needs: a linear-time substring test. */
export interface RegexMatcher {
  test(input: string): boolean;
}

/**
 * JavaScript's `\uXXXX` / `\u{…}` escapes in RE2 spelling (`\x{…}`); every other escape is
 * copied as is (an escaped backslash stays escaped, so `\\u0041` is not an escape).
 */
export function toRe2Syntax(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c !== '\\') {
      out += c;
      continue;
    }
    const d = pattern[i + 1];
    if (d === 'u') {
      const braced = /^\{([0-9A-Fa-f]{1,6})\}/.exec(pattern.slice(i + 2));
      const plain = /^[0-9A-Fa-f]{4}/.exec(pattern.slice(i + 2));
      if (braced) {
        out += `\\x{${braced[1]}}`;
        i += 1 + braced[0].length;
        continue;
      }
      if (plain) {
        out += `\\x{${plain[0]}}`;
        i += 1 + 4;
        continue;
      }
    }
    out += c + (d ?? '');
    i++;
  }
  return out;
}

/** Compiles an accepted pattern (unsafeRegexReason(pattern) === null) for matching. */
export function compileRegexRule(pattern: string): RegexMatcher {
  return RE2JS.compile(toRe2Syntax(pattern));
}

/** Returns why `pattern` is refused, or null when it is in the safe subset. */
export function unsafeRegexReason(pattern: string): string | null {
  if (pattern.length === 0) return 'pattern must not be empty';
  if (pattern.length > MAX_PATTERN_LENGTH) return `pattern longer than ${MAX_PATTERN_LENGTH} characters`;
  // One frame per open group: the largest repetition maximum inside it, and whether it alternates.
  const innerMax: number[] = [1];
  const hasAlt: boolean[] = [false];
  let unbounded = 0;
  // What the last atom was: a plain atom, or a group whose body repeats/alternates.
  let lastInnerMax = 1;
  let lastAlt = false;
  let haveAtom = false;
  const n = pattern.length;
  let i = 0;
  while (i < n) {
    const c = pattern[i];
    if (c === '\\') {
      const d = pattern[i + 1];
      if (d === undefined) return 'pattern ends with a backslash';
      if (d >= '1' && d <= '9') return 'backreferences are not allowed';
      if (d === 'k') return 'named backreferences are not allowed';
      if ((d === 'p' || d === 'P' || d === 'u') && pattern[i + 2] === '{') {
        const close = pattern.indexOf('}', i + 3);
        if (close < 0) return 'unterminated escape';
        i = close + 1;
      } else {
        i += 2;
      }
      haveAtom = true;
      lastInnerMax = 1;
      lastAlt = false;
      continue;
    }
    if (c === '[') {
      let j = i + 1;
      if (pattern[j] === '^') j++;
      if (pattern[j] === ']') j++;
      while (j < n && pattern[j] !== ']') j += pattern[j] === '\\' ? 2 : 1;
      if (j >= n) return 'unterminated character class';
      i = j + 1;
      haveAtom = true;
      lastInnerMax = 1;
      lastAlt = false;
      continue;
    }
    if (c === '(') {
      if (pattern[i + 1] === '?') {
        const a = pattern[i + 2];
        const b = pattern[i + 3];
        if (a === '=' || a === '!' || (a === '<' && (b === '=' || b === '!'))) return 'lookarounds are not allowed';
      }
      innerMax.push(1);
      hasAlt.push(false);
      haveAtom = false;
      // Skip the group prefix (`?:`, `?<name>`) so its `?` is not read as a quantifier.
      if (pattern[i + 1] === '?') {
        if (pattern[i + 2] === ':') i += 3;
        else if (pattern[i + 2] === '<') {
          const close = pattern.indexOf('>', i + 3);
          if (close < 0) return 'unterminated group name';
          i = close + 1;
        } else return 'unsupported group syntax';
      } else i++;
      continue;
    }
    if (c === ')') {
      if (innerMax.length === 1) return 'unbalanced parenthesis';
      const inner = innerMax.pop() as number;
      const alt = hasAlt.pop() as boolean;
      // A repeating body makes the enclosing group repeat too (`((a+))+`).
      const top = innerMax.length - 1;
      innerMax[top] = Math.max(innerMax[top], inner);
      lastInnerMax = inner;
      lastAlt = alt;
      haveAtom = true;
      i++;
      continue;
    }
    if (c === '|') {
      hasAlt[hasAlt.length - 1] = true;
      haveAtom = false;
      i++;
      continue;
    }
    let max = -1;
    let end = i + 1;
    if (c === '*' || c === '+') max = Infinity;
    else if (c === '?') max = 1;
    else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i));
      if (m) {
        max = m[2] === undefined ? Number(m[1]) : m[3] === '' ? Infinity : Number(m[3]);
        end = i + m[0].length;
      }
    }
    if (max >= 0) {
      if (!haveAtom) return 'quantifier without something to repeat';
      if (max > 1) {
        if ((lastInnerMax > 1 && max * lastInnerMax > LARGE_REPEAT) || (lastAlt && max > LARGE_REPEAT)) {
          return 'nested quantifier or repeated alternation (catastrophic backtracking)';
        }
        const top = innerMax.length - 1;
        innerMax[top] = Math.max(innerMax[top], max * lastInnerMax);
        if (max > LARGE_REPEAT && ++unbounded > MAX_UNBOUNDED) {
          return `more than ${MAX_UNBOUNDED} unbounded quantifiers`;
        }
      }
      if (pattern[end] === '?') end++; // lazy
      haveAtom = false;
      lastInnerMax = 1;
      lastAlt = false;
      i = end;
      continue;
    }
    haveAtom = c !== '^' && c !== '$';
    lastInnerMax = 1;
    lastAlt = false;
    i++;
  }
  if (innerMax.length !== 1) return 'unbalanced parenthesis';
  try {
    new RegExp(pattern, 'u');
  } catch (e) {
    return `invalid regular expression: ${(e as Error).message}`;
  }
  let size: number;
  try {
    size = RE2JS.compile(toRe2Syntax(pattern)).programSize();
  } catch (e) {
    return `not supported by the RE2 engine rules run on: ${(e as Error).message}`;
  }
  if (size > MAX_PROGRAM_SIZE) return `pattern compiles to ${size} RE2 instructions, more than ${MAX_PROGRAM_SIZE}`;
  return null;
}
