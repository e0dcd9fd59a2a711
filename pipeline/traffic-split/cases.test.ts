import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ShadowProfile, SplitDecision, UserContext } from '../domain/types.ts';
import { safeCompile, trafficSplit, trafficSplitProfile } from './traffic-split.ts';
import { requires } from '../../test/requires.ts';
import { lookupOf } from './case-lookup.ts';

interface Case {
  name: string;
  profile: ShadowProfile | null;
  user: UserContext;
  /** Known segments and their members (absent = unknown segment); see gen-cases.ts. */
  segments?: Record<string, string[]>;
  expected: SplitDecision;
}
const dir = fileURLToPath(new URL('.', import.meta.url));
const cases: Case[] = JSON.parse(readFileSync(`${dir}cases.json`, 'utf8'));

describe('golden cases (cases.json)', () => {
  it('cover every op, both match modes and every reason', () => {
    expect(cases.length).toBeGreaterThanOrEqual(200);
    const ops = new Set<string>();
    const matches = new Set<string>();
    for (const c of cases) {
      if (c.expected.reason === 'invalid_profile') continue;
      for (const s of c.profile?.shadows ?? []) {
        matches.add(s.traffic.match);
        for (const r of s.traffic.rules) ops.add(r.op);
      }
    }
    expect([...ops].sort()).toEqual(['equals', 'in', 'not_equals', 'not_in', 'regex', 'semver']);
    expect([...matches].sort()).toEqual(['all', 'any']);
    const reasons = new Set(cases.map((c) => c.expected.reason));
    expect([...reasons].sort()).toEqual(
      ['assigned', 'control', 'holdout', 'invalid_profile', 'no_match', 'no_profile', 'not_in_share', 'rolled_back'],
    );
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    // Control cohorts in every layout situation: growing up and down, pairs, holdout, ramps.
    const controlOf = new Set(cases.filter((c) => c.expected.reason === 'control').map((c) => `${c.profile!.itemId}/${c.expected.controlOf}`));
    for (const s of ['ctl/ctl-up', 'ctl-pair/up', 'ctl-pair/down', 'ctl-mixed/with-ctl', 'ctl-mixed2/with-ctl', 'ctl-hold/a', 'ctl-hold/b', 'ctl-hold/c', 'ctl-ramp/ramp']) {
      expect(controlOf).toContain(`com.example.${s}`);
    }
    // Cases written before control cohorts pin the layout without one: their shadows say so.
    expect(cases.filter((c) => !c.name.startsWith('control:') && !c.name.includes('control')).every((c) => (c.profile?.shadows ?? []).every((s) => s.control === false))).toBe(true);
    // Segment rules: both ops, with known, unknown and no segments at all.
    const seg = cases.filter((c) => c.profile?.shadows.some((s) => s.traffic.rules.some((r) => r.attribute === 'segment')) && c.expected.reason !== 'invalid_profile');
    expect(seg.some((c) => c.segments === undefined)).toBe(true);
    expect(seg.filter((c) => c.expected.reason === 'assigned').length).toBeGreaterThanOrEqual(5);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const compiled = c.profile === null ? undefined : safeCompile(c.profile);
    const segments = lookupOf(c.segments);
    expect(trafficSplit(c.user, compiled, segments)).toEqual(c.expected);
    expect(trafficSplitProfile(c.user, c.profile ?? undefined, segments)).toEqual(c.expected);
  });

  // An independent implementation (stdlib Python) decides every case the same way.
  requires(['python3'])('agree with the Python reference implementation', () => {
    const run = spawnSync('python3', [`${dir}reference.py`, `${dir}cases.json`], { encoding: 'utf8' });
    expect(run.error).toBeUndefined();
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary.failures).toBe(0);
    expect(summary.checked).toBeGreaterThanOrEqual(350);
    expect(summary.control).toBeGreaterThanOrEqual(30);
  });
});
