import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { computeChangeFeatures, findUrls, inlineScriptBytes, modelInputs, MODEL_INPUT_NAMES, NO_HISTORY, versionBump, type HistoryInputs } from './features.ts';
import { CHANGE_FIXTURES_DIR, versionTree } from './fixtures.ts';

const GOLDEN = path.join(CHANGE_FIXTURES_DIR, '..', 'golden');
const AT = Date.UTC(2026, 0, 15, 12, 0, 0);
const HISTORY: HistoryInputs = { priorRollouts: 3, priorRegressions: 1, lastOutcome: 'regression', currentErrorRate: 0.031, currentSessions: 1200, currentIngestedAt: AT - 36 * 3_600_000 };

/** Golden pairs: (previous, next, history). `null` previous = a first version. */
const PAIRS: [string, string | null, string, HistoryInputs][] = [
  ['shop-first', null, 'v1', NO_HISTORY],
  ['shop-same', 'v1', 'v1', NO_HISTORY],
  ['shop-v1-v2', 'v1', 'v2', HISTORY],
  ['shop-v2-v3', 'v2', 'v3', HISTORY],
];

async function features(prev: string | null, next: string, h: HistoryInputs, format: 'zip' | 'tar.gz' = 'zip') {
  return computeChangeFeatures(prev ? await versionTree('shop', prev, format) : null, await versionTree('shop', next, format), h, AT);
}

describe('change features on golden archive pairs', () => {
  it.each(PAIRS)('%s matches its golden file', async (name, prev, next, h) => {
    const f = await features(prev, next, h);
    const file = path.join(GOLDEN, `${name}.json`);
    // UPDATE_GOLDEN=1 rewrites the files; a diff in review is then the behaviour change.
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, `${JSON.stringify(f, null, 2)}\n`);
    expect(existsSync(file)).toBe(true);
    expect(JSON.parse(JSON.stringify(f))).toEqual(JSON.parse(readFileSync(file, 'utf8')));
  });

  it('the same pair read from tar.gz gives the same features as from zip', async () => {
    expect(await features('v1', 'v2', HISTORY, 'tar.gz')).toEqual(await features('v1', 'v2', HISTORY, 'zip'));
  });

  it('v1 → v2: a grown script, a new vendor script with two new origins, a removed file', async () => {
    const f = await features('v1', 'v2', HISTORY);
    expect(f.versionBump).toBe('minor');
    expect([f.filesAdded, f.filesRemoved, f.filesChanged]).toEqual([1, 1, 2]); // vendor/track.js; about.txt; index.html + js/app.js
    expect(f.bytesRemoved).toBe('A small shop.\n'.length);
    expect(f.scriptBytes).toBeGreaterThan(f.previousScriptBytes);
    expect(f.scriptFilesAdded).toBe(1);
    expect(f.scriptFilesChanged).toBe(2); // app.js and the inline script of index.html
    expect(f.newOrigins).toEqual(['https://collect.tracker.example.org', 'https://recs.example.net']);
    expect(f.removedOrigins).toEqual([]);
    // Query strings and fragments are not part of an endpoint; w3.org namespaces are not origins.
    expect(f.newEndpoints).toEqual(['https://collect.tracker.example.org/pixel.gif', 'https://recs.example.net/v2/suggest']);
    expect(f.origins).not.toContain('http://www.w3.org');
    expect(f.manifestChangedKeys).toEqual([]);
    expect(f.hoursSincePrevious).toBe(36);
    expect(f.inputs.new_origins).toBe(2);
    expect(f.inputs.prior_regression_share).toBeCloseTo(2 / 5, 9);
    expect(f.inputs.last_outcome_regression).toBe(1);
  });

  it('v2 → v3: major bump, new entry, manifest endpoints added and changed, tracker removed', async () => {
    const f = await features('v2', 'v3', HISTORY);
    expect(f.versionBump).toBe('major');
    expect(f.entryChanged).toBe(true);
    expect(f.manifestChangedKeys).toEqual(['endpoints', 'entry', 'name']);
    expect(f.manifestEndpointsAdded).toEqual(['payments']);
    expect(f.manifestEndpointsChanged).toEqual(['api']);
    expect(f.manifestEndpointsRemoved).toEqual([]);
    expect(f.removedOrigins).toEqual(['https://api.example.com', 'https://collect.tracker.example.org', 'https://recs.example.net']);
    expect(f.newOrigins).toEqual(['https://api2.example.com', 'https://pay.example.com']);
    expect(f.scriptGrowth).toBeLessThan(0);
    expect(f.inputs.major_bump).toBe(1);
    expect(f.inputs.entry_changed).toBe(1);
    expect(f.inputs.manifest_endpoints_changed).toBe(2);
  });

  it('an identical archive changes nothing; a first version has no previous side', async () => {
    const same = await features('v1', 'v1', NO_HISTORY);
    expect([same.filesAdded, same.filesRemoved, same.filesChanged, same.bytesAdded, same.scriptGrowth]).toEqual([0, 0, 0, 0, 0]);
    expect(same.versionBump).toBe('same');
    const first = await features(null, 'v1', NO_HISTORY);
    expect(first.previousVersion).toBeNull();
    expect(first.inputs.first_version).toBe(1);
    expect(first.hoursSincePrevious).toBeNull();
    expect(first.inputs.prior_regression_share).toBe(0.5);
  });

  it('model inputs are named, finite and in a fixed order', async () => {
    const f = await features('v1', 'v2', HISTORY);
    expect(Object.keys(f.inputs)).toEqual([...MODEL_INPUT_NAMES]);
    for (const v of Object.values(f.inputs)) expect(Number.isFinite(v)).toBe(true);
    const { inputs: _i, ...rest } = f;
    expect(modelInputs(rest)).toEqual(f.inputs);
  });
});

describe('helpers', () => {
  it('findUrls keeps origin and path, drops query, fragment, trailing slash and punctuation', () => {
    const r = findUrls('see https://API.example.com:8443/v1/items/?q=1, and "http://x.test/a/b#frag". Also https://www.w3.org/2000/svg.');
    expect([...r.origins].sort()).toEqual(['http://x.test', 'https://api.example.com:8443']);
    expect([...r.endpoints].sort()).toEqual(['http://x.test/a/b', 'https://api.example.com:8443/v1/items']);
  });

  it('inlineScriptBytes counts inline bodies only', () => {
    expect(inlineScriptBytes('<script src="a.js"></script><script>abc</script><SCRIPT type="module">de</SCRIPT>')).toBe(5);
  });

  it('versionBump classifies semver changes', () => {
    expect([versionBump(null, '1.0.0'), versionBump('1.0.0', '1.0.1'), versionBump('1.0.0', '1.1.0'), versionBump('1.9.0', '2.0.0'), versionBump('2.0.0', '1.0.0'), versionBump('1.0.0', '1.0.1-rc.1'), versionBump('x', '1.0.0')])
      .toEqual(['first', 'patch', 'minor', 'major', 'downgrade', 'patch', 'other']);
  });
});
