import { riskSummary, toneFor } from './risk.ts';
import type { RiskScoreView } from './types.ts';

const base: RiskScoreView = { id: 'a', itemId: 'i', version: '1.1.0', shadow: null, phase: 'ingest', source: 'model', modelVersion: 3, probability: 0.42, low: null, high: null, explanation: [{ feature: 'new_origins', value: 2, contribution: 0.9 }, { feature: 'script_growth', value: 0.3125, contribution: 0.2 }, { feature: 'major_bump', value: 0, contribution: -0.1 }], note: 'model v3 …', evidenceJson: null, at: 1000 };

test('ingest score with the inputs that pushed it up, then the newest live update', () => {
  expect(riskSummary([])).toBeNull();
  const s = riskSummary([base])!;
  expect(s).toMatchObject({ version: '1.1.0', atIngest: '42.0 %', source: 'model v3', pushedUp: ['new_origins = 2 (+0.90)', 'script_growth = 0.313 (+0.20)'], now: null, tone: 'bad' });
  const upd: RiskScoreView = { ...base, id: 'b', phase: 'update', shadow: 'next', probability: 0.08, at: 2000, evidenceJson: JSON.stringify({ shadowSessions: 120, shadowErrorSessions: 2, baselineRate: 0.021, baseline: 'control:next' }) };
  const t = riskSummary([upd, base])!;
  expect(t).toMatchObject({ now: '8.0 %', shadow: 'next', tone: 'ok', nowDetail: '2 of 120 shadow sessions with errors vs 2.1 % on control:next' });
});

test('the prior says so and shows its interval', () => {
  const s = riskSummary([{ ...base, source: 'prior', modelVersion: null, probability: 0.2, low: 0.013, high: 0.527, explanation: [] }])!;
  expect(s).toMatchObject({ source: 'prior (too little history for a model)', interval: '1.3 %–52.7 %', pushedUp: [], tone: 'warn' });
  expect([toneFor(0.1), toneFor(0.2), toneFor(0.5)]).toEqual(['ok', 'warn', 'bad']);
});
