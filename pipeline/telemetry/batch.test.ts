/**
 * The collector's zod-free event parse (`fastEvent`) against `eventSchema`: wherever the fast
 * path answers, zod must accept the same event and return the same value; where it declines,
 * zod decides. Golden cases for the edges, then a seeded corpus of mutated events.
 */
import { eventSchema, fastEvent, validateBatch } from './batch.ts';

const base = { id: 'e-1', type: 'request', name: 'api', ts: 1_700_000_000_000, value: 120, attrs: { status: '200' } };

function agree(raw: unknown): 'fast' | 'zod-ok' | 'zod-refused' {
  const fast = fastEvent(raw);
  const z = eventSchema.safeParse(raw);
  if (fast !== undefined) {
    expect(z.success).toBe(true);
    expect(fast).toEqual(z.data);
    return 'fast';
  }
  return z.success ? 'zod-ok' : 'zod-refused';
}

const golden: [string, unknown, 'fast' | 'zod-ok' | 'zod-refused'][] = [
  ['a request with attrs', base, 'fast'],
  ['minimal usage event', { id: 'x', type: 'usage', name: 'buy', ts: 1 }, 'fast'],
  ['value null', { ...base, value: null }, 'fast'],
  ['number and boolean attrs become strings', { ...base, attrs: { n: 3.5, b: false, s: 'x' } }, 'fast'],
  ['unknown keys are dropped', { ...base, extra: { deep: 1 } }, 'fast'],
  ['32 attributes', { ...base, attrs: Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`k${i}`, i])) }, 'fast'],
  ['33 attributes', { ...base, attrs: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i])) }, 'zod-refused'],
  ['attribute name of 65 characters', { ...base, attrs: { ['k'.repeat(65)]: 'v' } }, 'zod-refused'],
  ['attribute value an object', { ...base, attrs: { a: { b: 1 } } }, 'zod-refused'],
  ['attribute value infinite (1e400 in JSON)', JSON.parse('{"id":"i","type":"usage","name":"n","ts":5,"attrs":{"a":1e400}}'), 'zod-refused'],
  ['attribute value null', { ...base, attrs: { a: null } }, 'zod-refused'],
  ['attrs an array', { ...base, attrs: ['a'] }, 'zod-refused'],
  ['attribute named __proto__ (from JSON)', JSON.parse('{"id":"p","type":"usage","name":"n","ts":5,"attrs":{"__proto__":"x"}}'), 'zod-ok'],
  ['ts not an integer', { ...base, ts: 1.5 }, 'zod-refused'],
  ['ts zero', { ...base, ts: 0 }, 'zod-refused'],
  ['ts beyond safe integers', { ...base, ts: 2 ** 53 }, 'zod-refused'],
  ['ts a string', { ...base, ts: '1' }, 'zod-refused'],
  ['value infinite (1e400 in JSON)', JSON.parse('{"id":"i","type":"perf","name":"n","ts":5,"value":1e400}'), 'zod-refused'],
  ['value a string', { ...base, value: '1' }, 'zod-refused'],
  ['id empty', { ...base, id: '' }, 'zod-refused'],
  ['id of 129 characters', { ...base, id: 'i'.repeat(129) }, 'zod-refused'],
  ['name of 201 characters', { ...base, name: 'n'.repeat(201) }, 'zod-refused'],
  ['unknown type', { ...base, type: 'metric' }, 'zod-refused'],
  ['an array', [base], 'zod-refused'],
  ['null', null, 'zod-refused'],
  ['a string', 'event', 'zod-refused'],
];

describe('fastEvent agrees with eventSchema', () => {
  it.each(golden)('%s', (_name, raw, expected) => {
    expect(agree(raw)).toBe(expected);
  });

  it('on 5,000 seeded mutations of valid events', () => {
    let seed = 15;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pick = <T,>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
    const values: unknown[] = [undefined, null, 0, -1, 1.5, 2 ** 53, Infinity, '', 'x', 'y'.repeat(129), true, {}, [], { a: 1 }, 'request', 'usage', 1_700_000_000_000];
    const fields = ['id', 'type', 'name', 'ts', 'value', 'attrs', 'other'];
    const seen = { fast: 0, 'zod-ok': 0, 'zod-refused': 0 };
    for (let i = 0; i < 5000; i++) {
      const e: Record<string, unknown> = JSON.parse(JSON.stringify(base));
      for (let m = Math.floor(rnd() * 3); m > 0; m--) {
        const f = pick(fields);
        const v = pick(values);
        if (f === 'attrs' && rnd() < 0.5) e.attrs = { ...(e.attrs as object), [pick(['k', 'status', 'z'.repeat(70)])]: v };
        else if (v === undefined) delete e[f];
        else e[f] = v;
      }
      seen[agree(e)]++;
    }
    // The corpus exercises both paths.
    expect(seen.fast).toBeGreaterThan(500);
    expect(seen['zod-refused']).toBeGreaterThan(500);
  });

  it('a batch mixing both paths: same events and rejections as before, issues worded by zod', () => {
    const body = { itemId: 'i', version: '1', variant: 'original', profileVersion: 1, sessionId: 's', userId: 'u', sentAt: 1_700_000_000_000, events: [base, { ...base, id: 'e-2', ts: 1.5 }, JSON.parse('{"id":"p","type":"usage","name":"n","ts":1700000000000,"attrs":{"__proto__":"x"}}')] };
    const v = validateBatch(body, 1_700_000_000_000);
    if (!v.ok) throw new Error('envelope refused');
    expect(v.result.events.map((e) => e.id)).toEqual(['e-1', 'p']);
    expect(v.result.events[0].attrs).toEqual({ status: '200' });
    expect(v.result.rejected).toEqual([{ index: 1, id: 'e-2', issues: [expect.objectContaining({ path: 'events/1/ts' })] }]);
  });
});
