import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { activeHold, foldHolds, heldBefore, holdFromDecision, releaseCommand, type DecisionLike, type HoldKind } from './holds.ts';
import type { ShadowProfile } from '../domain/types.ts';

interface Case {
  name: string;
  decisions: DecisionLike[];
  profile: ShadowProfile | null;
  holds: Record<string, unknown>[];
  active: string | null;
  heldBefore: [HoldKind, string, boolean][];
}
const golden = JSON.parse(readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'golden/cases.json'), 'utf8')) as { cases: Case[] };

describe('early holds from rollout decisions and the profile (golden cases)', () => {
  test.each(golden.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const holds = foldHolds('i', c.decisions, c.profile ?? undefined);
    expect(holds).toHaveLength(c.holds.length);
    c.holds.forEach((want, i) => expect(holds[i]).toMatchObject(want));
    expect(activeHold(holds)?.id ?? null).toBe(c.active);
    for (const [kind, key, was] of c.heldBefore) expect([kind, key, heldBefore(holds, kind, key)]).toEqual([kind, key, was]);
  });
});

describe('early holds', () => {
  const d: DecisionLike = { id: 'x', itemId: 'i', shadow: 'v-1', kind: 'pause', actor: 'system:forecast', profileVersion: 1, step: 0, reason: 'system:forecast paused the plan of v-1 at step 1 (50%): forecast hold: v-1 …', evidence: { stepStartedAt: 5 }, at: 10 };

  test('only the two hold actors\' pauses are holds', () => {
    expect(holdFromDecision(d)).toMatchObject({ kind: 'forecast', reason: 'forecast hold: v-1 …', key: 'v-1@5' });
    expect(holdFromDecision({ ...d, actor: 'system:alerts' })).toBeNull();
    expect(holdFromDecision({ ...d, actor: 'alice' })).toBeNull();
    expect(holdFromDecision({ ...d, kind: 'resume' })).toBeNull();
    expect(holdFromDecision({ ...d, shadow: null })).toBeNull();
  });

  test('another item\'s decisions are ignored', () => {
    expect(foldHolds('other', [d], undefined)).toEqual([]);
  });

  test('the release is a resume naming the hold it releases, with the operator\'s reason or a sentence', () => {
    const h = holdFromDecision(d)!;
    expect(releaseCommand(h, 'checked')).toEqual({ payload: { shadow: 'v-1', action: 'resume', evidence: { kind: 'early_hold_release', holdId: 'x', holdKind: 'forecast', heldAt: 10 } }, reason: 'checked' });
    expect(releaseCommand(h, undefined).reason).toBe('operator released the forecast hold of v-1 (step 1)');
  });
});
