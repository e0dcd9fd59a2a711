/**
 * Bounded regex rules. Patterns come from operators and run on every resolve, so a pattern
 * that backtracks exponentially would let one config change stall the resolver. V8 has no
 * linear-time engine without a process flag, so we accept only a subset whose worst case stays
 * polynomial and small, and bound the input as well:
 *
 * - pattern length ≤ MAX_PATTERN_LENGTH;
 * - no backreferences (`\1`, `\k<name>`) and no lookarounds (`(?=`, `(?!`, `(?<=`, `(?<!`);
 * - no nested repetition that can grow: when a repeated group contains a repeating quantifier,
 *   the product of the two maxima must stay ≤ LARGE_REPEAT, and a group repeated more than
 *   LARGE_REPEAT times must not contain an alternation — `(a+)+`, `(a|aa)*`, `(\w+\s?)*`,
 *   `(.*a){12}`, `(x{1,16}){16}` are the classic exponential shapes, while
 *   `(\.\d{1,3}){3}` stays small and is allowed;
 * - at most MAX_UNBOUNDED quantifiers whose maximum exceeds LARGE_REPEAT (`.*a.*b.*c`-style
 *   chains are polynomial of that degree);
 * - compiled with the `u` flag (strict syntax); values longer than MAX_REGEX_INPUT never match.
 */
export const MAX_PATTERN_LENGTH = 200;
export const MAX_UNBOUNDED = 2;
export const LARGE_REPEAT = 16;
export const MAX_REGEX_INPUT = 256;

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
  return null;
}
