import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import avro from 'avsc';
import { SCHEMA_DIR } from '../../schemas/index.ts';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ShadowProfile } from '../domain/types.ts';
import { profileFromRecord, profileToRecord } from './codec.ts';
import { ProfileStore } from './profile-store.ts';

const instrumentation = { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 };
const profile = (control: boolean | undefined): ShadowProfile => ({
  itemId: 'com.example.up', profileVersion: 4, state: 'active', seed: 'com.example.up', holdout: 0, itemVersion: '1.0.0',
  shadows: [{ name: 's', instrumentation, endpoints: {}, traffic: { percentage: 60, match: 'all', rules: [] }, ...(control === undefined ? {} : { control }) }],
  updatedBy: 't', updatedAt: 0,
});

describe('profiles written before control cohorts (upgrade)', () => {
  it('a snapshot without `control` is read with the control off: same layout, nobody moves', () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'penumbra-snap-')), 'profiles.json');
    writeFileSync(file, JSON.stringify({ savedAt: 0, profiles: [profile(undefined)] }));
    const store = new ProfileStore(file);
    expect(store.loadSnapshot()).toBe(1);
    expect(store.get('com.example.up')!.shadows[0].control).toBe(false);
    // 60 % fits without a control cohort; read as "on" it would be refused (everyone original).
    expect(store.compiledFor('com.example.up')!.valid).toBe(true);
  });

  it('a shadow-profile v1 record read with the v2 schema has the control off and no control artifact', () => {
    const schema = (v: number) => avro.Type.forSchema(JSON.parse(readFileSync(path.join(SCHEMA_DIR, `shadow-profile.v${v}.avsc`), 'utf8')));
    const [v1, v2] = [schema(1), schema(2)];
    const { controlArtifact: _c, shadows, ...rest } = profileToRecord(profile(undefined));
    const old = v1.toBuffer({ ...rest, shadows: shadows.map(({ control: _x, ...s }) => s) });
    const read = profileFromRecord(v2.fromBuffer(old, v2.createResolver(v1)) as never);
    expect(read.shadows[0].control).toBe(false);
    expect(read.controlArtifact).toBeUndefined();
  });

  it('the codec always writes the flag, so a record round-trips it either way', () => {
    for (const control of [true, false]) expect(profileFromRecord(profileToRecord(profile(control))).shadows[0].control).toBe(control);
    expect(profileToRecord(profile(undefined)).shadows[0].control).toBe(true); // absent in a config = on
  });
});
