import { conflictMessage, draftDiff, newRule, newShadow, originalShare, serverErrorsToDraftPaths, toDraft, toPutBody, validateDraft, withOp } from './editor.ts';
import { describeDiff } from './diff.ts';
import type { ShadowConfigView } from './types.ts';

const view: ShadowConfigView = {
  itemId: 'i', profileVersion: 3, state: 'active',
  shadows: [{ name: 'a', artifact: { sha256: 'x', size: 1 }, instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 },
    endpoints: { api: 'https://x.example/v1' }, traffic: { percentage: 20, match: 'all', rules: [{ attribute: 'deviceType', op: 'in', values: ['android'] }] },
    rollout: { steps: [{ percentage: 20 }], analysisSeconds: 60, minSessionsPerArm: 0, guardrails: [], maxInconclusive: 3, onComplete: 'hold' },
    rolloutState: { status: 'running', step: 0, stepStartedAt: 0, lastAnalysisAt: null, inconclusive: 0, reason: null } }],
};

test('round trip: the unchanged draft diffs to nothing and drops the artifact', () => {
  const d = toDraft(view);
  expect(draftDiff(view, d)).toEqual([]);
  expect(toPutBody(d).shadows[0]).not.toHaveProperty('artifact');
  expect(toPutBody(d).shadows[0].endpoints).toEqual({ api: 'https://x.example/v1' });
  // The plan is the Rollout tab's: a config save sends none (which keeps it) and no schedule.
  expect(toPutBody(d).shadows[0]).not.toHaveProperty('rollout');
  expect(toPutBody(d).shadows[0]).not.toHaveProperty('rolloutState');
  expect(toPutBody(d)).not.toHaveProperty('schedule');
});

test('edits show up as a readable diff', () => {
  const d = toDraft(view);
  d.shadows[0].traffic.percentage = 30;
  d.shadows[0].traffic.rules.push({ ...newRule('appVersion') });
  d.shadows[0].endpointRows[0].url = 'https://y.example/v1';
  expect(describeDiff(draftDiff(view, d))).toEqual([
    'shadows › a › traffic › percentage: 20 → 30',
    'shadows › a › traffic › rules › #2: added {"attribute":"appVersion","op":"semver","range":">=1.0.0"}',
    'shadows › a › endpoints › api: "https://x.example/v1" → "https://y.example/v1"',
  ]);
});

test('changing the op carries the value to the right field', () => {
  expect(withOp({ attribute: 'country', op: 'in', values: ['DE', 'FR'] }, 'equals')).toEqual({ attribute: 'country', op: 'equals', value: 'DE, FR' });
  expect(withOp({ attribute: 'country', op: 'equals', value: 'DE, FR' }, 'not_in')).toEqual({ attribute: 'country', op: 'not_in', values: ['DE', 'FR'] });
  expect(withOp({ attribute: 'userGroup', op: 'equals', value: 'beta' }, 'not_equals')).toEqual({ attribute: 'userGroup', op: 'not_equals', value: 'beta' });
});

test('validation uses server-shaped paths', () => {
  const d = toDraft(view);
  d.shadows.push({ ...newShadow(d.shadows), name: 'a' });
  d.shadows[1].traffic.percentage = 90;
  d.shadows[0].traffic.rules.push({ attribute: 'x', op: 'regex', pattern: '(' });
  d.shadows[0].endpointRows.push({ key: 'cdn', url: 'ftp://nope' });
  expect(validateDraft(d).map((e) => e.path)).toEqual([
    'shadows/0/traffic/rules/1/pattern', 'shadows/0/endpoints/1/url', 'shadows/1/name', 'shadows',
  ]);
  expect(originalShare(d.shadows)).toBe(0);
});

test('server endpoint paths map to rows; conflict sentence names who and when', () => {
  const d = toDraft(view);
  expect(serverErrorsToDraftPaths([{ path: 'shadows/0/endpoints/api', message: 'bad' }], d)).toEqual([{ path: 'shadows/0/endpoints/0/url', message: 'bad' }]);
  expect(conflictMessage({ profileVersion: 9, updatedBy: 'sam', updatedAt: new Date(2025, 10, 26, 14, 3, 12).getTime() }))
    .toBe('This configuration was changed by sam at 2025-11-26 14:03:12 (now profile version 9). Reload to see their change, then re-apply yours.');
  expect(conflictMessage(undefined)).toMatch(/Someone else/);
});
