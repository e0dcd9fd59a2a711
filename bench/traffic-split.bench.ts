/**
 * Traffic-split throughput: our compiled trafficSplit vs GrowthBook and Unleash evaluating the
 * same targeting on the same users — a 20% rollout behind three attribute conditions
 * (deviceType in [android, ios], country in [...], appVersion >= 1.2.0).
 *
 * Fairness: every contender gets pre-built per-user input objects and its configuration
 * compiled/loaded up front; only the per-user decision is timed. Rounds are interleaved
 * (ours, GrowthBook, Unleash, ours, …) and each published figure is the median round, so machine
 * noise hits all three alike.
 *
 * Two populations, reported separately: (a) 8 app versions in the field — our compiled profile
 * keeps a per-rule memo of semver results (≤ 1,024 distinct strings), so it parses each version
 * once while GrowthBook and Unleash parse on every call; (b) a distinct app version per user —
 * the memo never hits (it resets at its bound), so every contender parses every call. Before timing, a sanity pass checks that at 100% all three agree
 * exactly on who is eligible, and that at 20% each puts ~20% of eligible users in.
 * Unleash runs offline: bootstrap data, refreshInterval 0 (its fetcher never starts), metrics
 * off, in-memory storage; it must report ready from the bootstrap without any error event.
 *
 * The headline runs our shadow without a control cohort (`control: false`), the same workload as
 * the peers' plain rollout. The same rounds also time ours with the control cohort on (20 % shadow
 * + 20 % control, the default for new configs), reported in the notes: the control only adds a
 * parity test inside the shadow's range.
 */
import { GrowthBookClient } from '@growthbook/growthbook';
import { InMemStorageProvider, Unleash, UnleashEvents } from 'unleash-client';
import type { ShadowProfile, TrafficRule, UserContext } from '../pipeline/domain/types.ts';
import { compileProfile, trafficSplit } from '../pipeline/traffic-split/traffic-split.ts';
import type { BenchOptions, BenchResult } from './types.ts';

const FEATURE = 'checkout-v2';
const DEVICES = ['android', 'ios', 'web', 'tv'];
const COUNTRIES = ['DE', 'FR', 'US', 'BR', 'IN', 'JP', 'CN', 'GB'];
const TARGET_COUNTRIES = ['DE', 'FR', 'US', 'BR', 'GB'];
const VERSIONS = ['1.0.0', '1.1.3', '1.2.0', '1.2.7', '1.4.0', '2.0.0', '2.3.1', '3.0.0'];
const MIN_VERSION = '1.2.0';

interface BenchUser {
  ours: UserContext;
  gb: { attributes: Record<string, string> };
  unleash: { userId: string; properties: Record<string, string> };
}

function makeUsers(count: number, distinctVersions = false): BenchUser[] {
  const users: BenchUser[] = [];
  let x = 0x9e3779b9;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  for (let i = 0; i < count; i++) {
    // Round-trip through UTF-8 so ids are flat strings, as they are when parsed from a request
    // (template literals build rope strings, which every contender would pay to walk).
    const userId = Buffer.from(`u-${next().toString(16)}-${i}`, 'utf8').toString('utf8');
    const deviceType = DEVICES[next() % DEVICES.length];
    const country = COUNTRIES[next() % COUNTRIES.length];
    // Distinct: major 0..3, minor 0..49, patch = i — every user's version string is its own.
    const appVersion = distinctVersions ? Buffer.from(`${next() % 4}.${next() % 50}.${i}`, 'utf8').toString('utf8') : VERSIONS[next() % VERSIONS.length];
    users.push({
      ours: { userId, deviceType, country, appVersion },
      gb: { attributes: { userId, deviceType, country, appVersion } },
      unleash: { userId, properties: { deviceType, country, appVersion } },
    });
  }
  return users;
}

function oursFor(percentage: number, control = false) {
  const rules: TrafficRule[] = [
    { attribute: 'deviceType', op: 'in', values: ['android', 'ios'] },
    { attribute: 'country', op: 'in', values: TARGET_COUNTRIES },
    { attribute: 'appVersion', op: 'semver', range: `>=${MIN_VERSION}` },
  ];
  const profile: ShadowProfile = {
    itemId: 'com.example.bench', profileVersion: 1, state: 'active', seed: 'com.example.bench', holdout: 0,
    itemVersion: '1.0.0', updatedBy: 'bench', updatedAt: 0,
    shadows: [{
      name: FEATURE, endpoints: {},
      instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 },
      traffic: { percentage, match: 'all', rules },
      control,
    }],
  };
  const compiled = compileProfile(profile);
  // With a control: true for the shadow only (the control cohort is counted apart in the sanity check).
  return (u: BenchUser) => trafficSplit(u.ours, compiled).variant === FEATURE;
}

/** The arm (shadow, control or original) of each user, for the control sanity check. */
function oursArms(percentage: number) {
  const compiled = compileProfile({
    itemId: 'com.example.bench', profileVersion: 1, state: 'active', seed: 'com.example.bench', holdout: 0,
    itemVersion: '1.0.0', updatedBy: 'bench', updatedAt: 0,
    shadows: [{
      name: FEATURE, endpoints: {}, control: true,
      instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 },
      traffic: { percentage, match: 'all', rules: [
        { attribute: 'deviceType', op: 'in', values: ['android', 'ios'] },
        { attribute: 'country', op: 'in', values: TARGET_COUNTRIES },
        { attribute: 'appVersion', op: 'semver', range: `>=${MIN_VERSION}` },
      ] },
    }],
  });
  return (u: BenchUser) => trafficSplit(u.ours, compiled).variant;
}

function growthbookFor(coverage: number) {
  const gb = new GrowthBookClient().initSync({
    payload: {
      features: {
        [FEATURE]: {
          defaultValue: false,
          rules: [{
            force: true,
            coverage,
            hashAttribute: 'userId',
            condition: {
              deviceType: { $in: ['android', 'ios'] },
              country: { $in: TARGET_COUNTRIES },
              appVersion: { $vgte: MIN_VERSION },
            },
          }],
        },
      },
    },
  });
  return { decide: (u: BenchUser) => gb.isOn(FEATURE, u.gb), close: () => gb.destroy() };
}

async function unleashFor(rollout: number) {
  const errors: unknown[] = [];
  const unleash = new Unleash({
    appName: 'penumbra-bench',
    url: 'http://127.0.0.1:1/',
    refreshInterval: 0,
    disableMetrics: true,
    disableAutoStart: true,
    skipInstanceCountWarning: true,
    storageProvider: new InMemStorageProvider(),
    bootstrap: {
      data: [{
        name: FEATURE,
        enabled: true,
        type: 'release',
        project: 'default',
        stale: false,
        impressionData: false,
        variants: [],
        strategies: [{
          name: 'flexibleRollout',
          parameters: { rollout: String(rollout), stickiness: 'userId', groupId: FEATURE },
          constraints: [
            { contextName: 'deviceType', operator: 'IN', values: ['android', 'ios'] },
            { contextName: 'country', operator: 'IN', values: TARGET_COUNTRIES },
            { contextName: 'appVersion', operator: 'SEMVER_GTE', value: MIN_VERSION },
          ],
        }],
      }] as never,
    },
  });
  unleash.on(UnleashEvents.Error, (e: unknown) => errors.push(e));
  const ready = new Promise<void>((resolve) => unleash.once(UnleashEvents.Ready, () => resolve()));
  await unleash.start();
  await Promise.race([ready, new Promise((_, reject) => setTimeout(() => reject(new Error('Unleash not ready from bootstrap')), 5000))]);
  if (errors.length > 0) throw new Error(`Unleash tried the network or failed offline: ${String(errors[0])}`);
  if (unleash.getFeatureToggleDefinition(FEATURE) === undefined) throw new Error('Unleash did not load the bootstrap');
  return {
    decide: (u: BenchUser) => unleash.isEnabled(FEATURE, u.unleash),
    close: () => {
      unleash.destroy();
      if (errors.length > 0) throw new Error(`Unleash error during the run: ${String(errors[0])}`);
    },
  };
}

/** At 100% all three must agree per user; at 20% each must hold ~20% of eligible users. */
async function sanityCheck(users: BenchUser[]): Promise<string> {
  const ours = oursFor(100);
  const gb = growthbookFor(1);
  const unleash = await unleashFor(100);
  let eligible = 0;
  try {
    for (const u of users) {
      const [o, g, l] = [ours(u), gb.decide(u), unleash.decide(u)];
      if (o !== g || o !== l) throw new Error(`eligibility disagrees for ${JSON.stringify(u.ours)}: ours ${o}, GrowthBook ${g}, Unleash ${l}`);
      if (o) eligible++;
    }
  } finally {
    gb.close();
    unleash.close();
  }
  if (eligible === 0 || eligible === users.length) throw new Error('bench population does not exercise the rules');
  const partial = { ours: oursFor(20), gb: growthbookFor(0.2), unleash: await unleashFor(20) };
  const shares: string[] = [];
  try {
    for (const [name, decide] of [['ours', partial.ours], ['GrowthBook', partial.gb.decide], ['Unleash', partial.unleash.decide]] as const) {
      let on = 0;
      for (const u of users) if (decide(u)) on++;
      const share = (100 * on) / eligible;
      if (Math.abs(share - 20) > 1.5) throw new Error(`${name} put ${share.toFixed(2)}% of eligible users in, not ~20%`);
      shares.push(`${name} ${share.toFixed(1)}%`);
    }
    // With a control cohort: the shadow keeps its 20 % and the control gets as many.
    const withControl = oursFor(20, true);
    const arms = oursArms(20);
    let shadow = 0;
    let control = 0;
    for (const u of users) {
      if (withControl(u)) shadow++;
      if (arms(u) === 'control') control++;
    }
    const [s, c] = [(100 * shadow) / eligible, (100 * control) / eligible];
    if (Math.abs(s - 20) > 1.5 || Math.abs(c - 20) > 1.5) throw new Error(`with a control: shadow ${s.toFixed(2)}%, control ${c.toFixed(2)}%, not ~20% each`);
    shares.push(`ours with control: shadow ${s.toFixed(1)}%, control ${c.toFixed(1)}%`);
  } finally {
    partial.gb.close();
    partial.unleash.close();
  }
  return `eligible ${eligible}/${users.length} agree; rollout ${shares.join(', ')}`;
}

/**
 * Decisions per second over whole passes of `users`, running for at least `minMs`. Each
 * contender gets its own copy of the loop (built from source text), so the call site inside
 * stays monomorphic for all three and no one pays for sharing a polymorphic harness.
 */
type Measure = (decide: (u: BenchUser) => boolean, users: BenchUser[], minMs: number) => number;
const MEASURE_SOURCE = `
  let decisions = 0;
  let on = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    for (let i = 0; i < users.length; i++) if (decide(users[i])) on++;
    decisions += users.length;
    elapsed = performance.now() - start;
  } while (elapsed < minMs);
  if (on < 0) throw new Error('unreachable'); // keeps the result observable
  return (decisions / elapsed) * 1000;`;
const newMeasure = (): Measure => new Function('decide', 'users', 'minMs', MEASURE_SOURCE) as Measure;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measurePopulation(opts: BenchOptions, users: BenchUser[]): Promise<{ sanity: string; samples: { ours: number[]; oursControl: number[]; gb: number[]; unleash: number[] }; rounds: number }> {
  const sanity = await sanityCheck(users);
  const ours = oursFor(20);
  const oursControl = oursFor(20, true);
  const gb = growthbookFor(0.2);
  const unleash = await unleashFor(20);
  const rounds = opts.quick ? 7 : 15;
  const minMs = opts.quick ? 120 : 400;
  const samples = { ours: [] as number[], oursControl: [] as number[], gb: [] as number[], unleash: [] as number[] };
  try {
    const [mOurs, mOursControl, mGb, mUnleash] = [newMeasure(), newMeasure(), newMeasure(), newMeasure()];
    // Warm-up so every contender is optimised before the first timed round.
    mOurs(ours, users, opts.quick ? 100 : 300);
    mOursControl(oursControl, users, opts.quick ? 100 : 300);
    mGb(gb.decide, users, opts.quick ? 100 : 300);
    mUnleash(unleash.decide, users, opts.quick ? 100 : 300);
    for (let r = 0; r < rounds; r++) {
      samples.ours.push(mOurs(ours, users, minMs));
      samples.oursControl.push(mOursControl(oursControl, users, minMs));
      samples.gb.push(mGb(gb.decide, users, minMs));
      samples.unleash.push(mUnleash(unleash.decide, users, minMs));
    }
  } finally {
    gb.close();
    unleash.close();
  }
  return { sanity, samples, rounds };
}

export async function run(opts: BenchOptions): Promise<BenchResult[]> {
  const count = opts.quick ? 20_000 : 100_000;
  const out: BenchResult[] = [];
  for (const pop of [
    { label: '8 app versions (our semver memo hits)', distinct: false },
    { label: 'a distinct app version per user (no memo hits)', distinct: true },
  ]) {
    const { sanity, samples, rounds } = await measurePopulation(opts, makeUsers(count, pop.distinct));
    const o = median(samples.ours);
    const g = median(samples.gb);
    const l = median(samples.unleash);
    const range = (xs: number[]) => `${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}`;
    out.push(
      {
        name: `traffic split: 20% rollout + 3 conditions, ${pop.label}`,
        unit: 'decisions/s',
        ours: Math.round(o),
        peer: Math.round(g),
        peerName: '@growthbook/growthbook GrowthBookClient.isOn',
        ratio: o / g,
        notes: `target ≥15×; median of ${rounds} interleaved rounds over ${count} users (range ours ${range(samples.ours)}, peer ${range(samples.gb)}); ours with a control cohort (20 % + 20 %): median ${Math.round(median(samples.oursControl))} (range ${range(samples.oursControl)}); ${sanity}`,
      },
      {
        name: `traffic split: 20% rollout + 3 conditions, ${pop.label}`,
        unit: 'decisions/s',
        ours: Math.round(o),
        peer: Math.round(l),
        peerName: 'unleash-client Unleash.isEnabled (offline bootstrap)',
        ratio: o / l,
        notes: `target ≥25×; median of ${rounds} interleaved rounds (range ours ${range(samples.ours)}, peer ${range(samples.unleash)})`,
      },
    );
  }
  return out;
}
