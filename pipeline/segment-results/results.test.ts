/**
 * resultsFromCells (pure): warehouse cell totals → per-shadow results against the control cohort,
 * with the comparison over all users next to the Holm-corrected breakdown.
 */
import { armKey, type ArmTotals, type CellTotals } from './totals.ts';
import { resultsFromCells } from './results.ts';

const ITEM = 'com.example.shop';
const arm = (variant: string, controlOf: string | null, sessions: number, bought: number): ArmTotals => ({
  itemId: ITEM, variant, controlOf, profileVersion: 0, sessions, errorSessions: 0, requests: sessions * 3, requestErrors: 0,
  // Same latency distribution in both arms (mean 100 ms, sd 10 ms).
  latency: { count: sessions * 3, sum: sessions * 300, sumSq: sessions * 3 * (100 * 100 + 100) }, perf: {}, conversions: { buy: bought },
});
const cell = (dimension: string, value: string, shadow: [number, number], control: [number, number]): CellTotals => ({
  dimension, value,
  arms: new Map([[armKey('s', null), arm('s', null, ...shadow)], [armKey('control', 's'), arm('control', 's', ...control)]]),
});

describe('resultsFromCells', () => {
  // Android: the shadow converts 5 % vs 30 %; elsewhere 50 % vs 30 %: over all users the two cancel out.
  const cells = [
    cell('all', 'all', [1000, 350], [1000, 300]),
    cell('deviceType', 'android', [450, 22], [450, 135]),
    cell('deviceType', 'ios', [550, 328], [550, 165]),
    cell('country', 'DE', [3, 1], [0, 0]),
  ];

  it('finds the android regression the comparison over all users does not show, and names it', () => {
    const r = resultsFromCells(ITEM, cells, [{ name: 's', control: true }]);
    expect(r.noBaseline).toEqual([]);
    const [s] = r.shadows;
    expect(s.global.sessions).toEqual({ shadow: 1000, control: 1000 });
    expect(s.global.metrics['conversion:buy'].verdict).not.toBe('worse');
    expect(s.breakdown.regressions[0]).toMatchObject({ dimension: 'deviceType', value: 'android', metric: 'conversion:buy' });
    expect(s.breakdown.improvements[0]).toMatchObject({ dimension: 'deviceType', value: 'ios', metric: 'conversion:buy' });
    // A cell where one arm has no session is left out of the family (DE: no control session).
    expect(s.breakdown.cells.map((c) => `${c.dimension}=${c.value}`)).toEqual(['deviceType=android', 'deviceType=ios']);
    expect(s.breakdown.sentence).toMatch(/^Shadow s regresses for deviceType=android: conversion:buy -25\.1 pp .*The comparison over all users does not show it/);
  });

  it('lists shadows without a control cohort as having no baseline', () => {
    const r = resultsFromCells(ITEM, cells, [{ name: 's', control: true }, { name: 'beta', control: false }]);
    expect(r.shadows.map((x) => x.shadow)).toEqual(['s']);
    expect(r.noBaseline).toEqual(['beta']);
  });
});
