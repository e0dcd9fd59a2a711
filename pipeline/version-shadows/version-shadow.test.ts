import { catalogWithCandidate, isProactive, needsControlArtifact, isVersionShadow, rolloutOf, versionShadowConfig, versionShadowName } from './version-shadow.ts';
import type { RolloutState } from '../rollout/plan.ts';
import { detectOutcome } from '../risk-model/outcomes.ts';
import type { ShadowProfile } from '../domain/types.ts';
import type { CatalogEntry } from '../../schemas/types.generated.ts';

const current: ShadowProfile = {
  itemId: 'i', profileVersion: 4, state: 'active', seed: 'i', holdout: 0, itemVersion: '1.0.0', original: { sha256: 'a'.repeat(64), size: 10 },
  shadows: [{ name: 'checkout', instrumentation: { capture: { performance: true, errors: true, usage: false }, points: [{ id: 'buy', selector: '#buy', event: 'click' }], sampleRate: 0.5 }, endpoints: { api: 'https://x.example' }, traffic: { percentage: 10, match: 'all', rules: [] } }],
  updatedBy: 'op', updatedAt: 1,
};

test('names: the version in the shadow-name alphabet, recognisable', () => {
  expect(versionShadowName('1.1.0')).toBe('v-1-1-0');
  expect(versionShadowName('2.0.0-RC.1+build.7')).toBe('v-2-0-0-rc-1-build-7');
  expect(versionShadowName('1.1.0')).toMatch(/^[a-z0-9][a-z0-9-]{0,62}$/);
  expect([isVersionShadow('v-1-1-0'), isVersionShadow('checkout')]).toEqual([true, false]);
});

test('proactive by default only for another version of an item with an active original; explicit wins, a first version never', () => {
  expect(isProactive(undefined, current, '1.1.0')).toBe(true);
  expect(isProactive(undefined, current, '1.0.0')).toBe(false); // re-ingest of the served version
  expect(isProactive(undefined, { ...current, state: 'rolled_back' }, '1.1.0')).toBe(false);
  expect(isProactive(undefined, undefined, '1.0.0')).toBe(false);
  expect(isProactive(false, current, '1.1.0')).toBe(false);
  expect(isProactive(true, { ...current, state: 'rolled_back' }, '1.1.0')).toBe(true);
  expect(isProactive(true, undefined, '1.0.0')).toBe(false);
});

test('the version shadow is instrumented like the item\'s shadows, with no endpoint rewrites, at the plan\'s first share, with its control cohort', () => {
  const c = versionShadowConfig('v-1-1-0', current, 5);
  expect(c).toEqual({ name: 'v-1-1-0', instrumentation: current.shadows[0].instrumentation, endpoints: {}, traffic: { percentage: 5, match: 'all', rules: [] }, control: true });
  expect(c.instrumentation).not.toBe(current.shadows[0].instrumentation);
  expect(versionShadowConfig('v-1-1-0', { ...current, shadows: [] }, 5).instrumentation).toEqual({ capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 });
});

test('the sized plan becomes the shadow\'s rollout plan (pipeline/rollout), validated with the deployment\'s limits', () => {
  const sized = { steps: [5, 15], analysisSeconds: 120, minSessionsPerArm: 300, guardrails: [{ metric: 'errorRate', direction: 'increase' as const, maxDelta: 0.015 }], maxInconclusive: 3, onComplete: 'promote' as const };
  expect(rolloutOf(sized)).toEqual({ steps: [{ percentage: 5 }, { percentage: 15 }], analysisSeconds: 120, minSessionsPerArm: 300, guardrails: [{ metric: 'errorRate', direction: 'increase', maxDelta: 0.015 }], maxInconclusive: 3, onComplete: 'promote' });
  expect(() => rolloutOf({ ...sized, analysisSeconds: 5 }, { minAnalysisSeconds: 10 })).toThrow(expect.objectContaining({ issues: [expect.objectContaining({ path: 'rollout/analysisSeconds' })] }));
});

test('the catalog lists the candidate without making it latest; the served version gets the shadow variant (one at a time)', () => {
  const entry: CatalogEntry = { itemId: 'i', name: 'I', latestVersion: '1.0.0', updatedAt: 5, versions: [{ version: '1.0.0', entry: 'index.html', manifestJson: '{}', ingestedAt: 1, requestId: null, variants: [{ name: 'original', sha256: 'a', size: 1, files: 1, profileVersion: null, replacements: 0 }, { name: 'v-0-9-0', sha256: 'old', size: 1, files: 1, profileVersion: 3, replacements: 0 }] }] };
  const cand = { version: '1.1.0', entry: 'index.html', manifestJson: '{}', ingestedAt: 9, requestId: 'r', variants: [{ name: 'original', sha256: 'b', size: 2, files: 2, profileVersion: null, replacements: 0 }] };
  const out = catalogWithCandidate(entry, current, cand, { name: 'v-1-1-0', sha256: 'c', size: 3, files: 3, profileVersion: 5, replacements: 0 }, 100);
  expect(out.latestVersion).toBe('1.0.0');
  expect(out.versions.map((v) => v.version)).toEqual(['1.0.0', '1.1.0']);
  expect(out.versions[0].variants.map((x) => x.name)).toEqual(['original', 'v-1-1-0']);
  expect(out.updatedAt).toBe(100);
  // A control artifact built for the served version (it had none) is listed beside it.
  const ctl = catalogWithCandidate(entry, current, cand, { name: 'v-1-1-0', sha256: 'c', size: 3, files: 3, profileVersion: 5, replacements: 0 }, 100, { name: 'control', sha256: 'd', size: 4, files: 4, profileVersion: 5, replacements: 0 });
  expect(ctl.versions[0].variants.map((x) => x.name)).toEqual(['original', 'v-1-1-0', 'control']);
});

test('the served version needs its control artifact built unless the profile and the catalog both have it; a built one replaces the old variant', () => {
  const entry = (variants: string[]): CatalogEntry => ({ itemId: 'i', name: 'I', latestVersion: '1.0.0', updatedAt: 5, versions: [{ version: '1.0.0', entry: 'index.html', manifestJson: '{}', ingestedAt: 1, requestId: null, variants: variants.map((name) => ({ name, sha256: name, size: 1, files: 1, profileVersion: null, replacements: 0 })) }] });
  const ref = { sha256: 'c'.repeat(64), size: 3 };
  expect(needsControlArtifact(current, entry(['original']))).toBe(true); // ingested without shadows: none yet
  expect(needsControlArtifact({ ...current, controlArtifact: ref }, entry(['original']))).toBe(true);
  expect(needsControlArtifact(current, entry(['original', 'control']))).toBe(true);
  expect(needsControlArtifact({ ...current, controlArtifact: ref }, entry(['original', 'checkout', 'control']))).toBe(false);
  expect(needsControlArtifact({ ...current, controlArtifact: ref }, undefined)).toBe(true);
  const cand = { version: '1.1.0', entry: 'index.html', manifestJson: '{}', ingestedAt: 9, requestId: 'r', variants: [] };
  const ctl = { name: 'control', sha256: 'new', size: 3, files: 3, profileVersion: 5, replacements: 0 };
  const out = catalogWithCandidate(entry(['original', 'control', 'v-0-9-0']), current, cand, { name: 'v-1-1-0', sha256: 'c', size: 3, files: 3, profileVersion: 5, replacements: 0 }, 100, ctl);
  expect(out.versions[0].variants.map((x) => [x.name, x.sha256])).toEqual([['original', 'original'], ['v-1-1-0', 'c'], ['control', 'new']]);
  const kept = catalogWithCandidate(entry(['original', 'control']), current, cand, { name: 'v-1-1-0', sha256: 'c', size: 3, files: 3, profileVersion: 5, replacements: 0 }, 100);
  expect(kept.versions[0].variants.map((x) => x.name)).toEqual(['original', 'control', 'v-1-1-0']);
});

test('outcomes of a version shadow name the version it carries; its plan decides them', () => {
  const plan = rolloutOf({ steps: [5, 15], analysisSeconds: 60, minSessionsPerArm: 10, guardrails: [], maxInconclusive: 3, onComplete: 'promote' });
  const running: RolloutState = { status: 'running', step: 0, stepStartedAt: 0, lastAnalysisAt: null, inconclusive: 0, reason: null };
  const vs = { ...current.shadows[0], name: 'v-1-1-0', rollout: plan, rolloutState: running };
  const withShadow: ShadowProfile = { ...current, shadows: [...current.shadows, vs] };
  const versionOf = (s: string) => (s === 'v-1-1-0' ? '1.1.0' : undefined);
  const next = (shadow: Partial<typeof vs>, over: Partial<ShadowProfile> = {}): ShadowProfile => ({ ...withShadow, profileVersion: 5, shadows: [current.shadows[0], { ...vs, ...shadow }], ...over });
  expect(detectOutcome(withShadow, { ...withShadow, profileVersion: 5, state: 'rolled_back', updatedBy: 'system:alerts' }, null, versionOf)).toMatchObject({ version: '1.1.0', shadow: 'v-1-1-0', outcome: 'regression', cause: 'guardrail_rollback' });
  // The plan's analysis rolls this shadow back alone (pipeline/rollout).
  expect(detectOutcome(withShadow, next({ state: 'rolled_back', rolloutState: { ...running, status: 'rolled_back' } }, { updatedBy: 'system:rollout' }), null, versionOf)).toMatchObject({ version: '1.1.0', shadow: 'v-1-1-0', outcome: 'regression', cause: 'analysis_rollback' });
  expect(detectOutcome(withShadow, next({ state: 'rolled_back' }, { updatedBy: 'alice' }), null, versionOf)).toMatchObject({ outcome: 'regression', cause: 'operator_rollback' });
  // The plan completes: success.
  expect(detectOutcome(withShadow, next({ rolloutState: { ...running, status: 'completed' } }, { updatedBy: 'system:rollout' }), null, versionOf)).toMatchObject({ version: '1.1.0', outcome: 'success', cause: 'plan_done' });
  // An advance is no outcome.
  expect(detectOutcome(withShadow, next({ rolloutState: { ...running, step: 1 } }), null, versionOf)).toBeNull();
  // Promoted (a newer original, the version shadow gone, the promotion names it): its rollout ended well.
  const promotion = { shadow: 'v-1-1-0', fromItemVersion: '1.0.0', toItemVersion: '1.1.0', previous: { itemVersion: '1.0.0', shadows: [] }, by: 'system:rollout', at: 9 };
  expect(detectOutcome(withShadow, { ...current, profileVersion: 5, itemVersion: '1.1.0', promotion }, null, versionOf)).toMatchObject({ version: '1.1.0', outcome: 'success', cause: 'promoted' });
  expect(detectOutcome(withShadow, { ...current, profileVersion: 5, itemVersion: '1.1.0' }, null, versionOf)).toMatchObject({ version: '1.1.0', outcome: 'success', cause: 'superseded' });
  // A version shadow rolled back earlier and then replaced is not also a success.
  const rb = next({ state: 'rolled_back' });
  expect(detectOutcome(rb, { ...rb, profileVersion: 6, shadows: [current.shadows[0]] }, null, versionOf)).toBeNull();
});
