/**
 * "Ours" of the HTTP latency benches (bench/resolver.bench.ts, bench/expo.bench.ts), run as a
 * process of its own: the production composition `createPenumbra(cfg, { sink: false })`
 * configured from the environment like `penumbra start` (processors on, so the ingest below goes
 * the production way; the DuckDB sink off, as in the earlier runs of these benches), with one
 * fixture ingested:
 *  - `--fixture resolve`: the multi-page-web fixture with a 50 % shadow for android/ios
 *    (pipeline/resolver/test-support.ts);
 *  - `--fixture expo`: the generated sample Expo update bundle with a 50 % shadow
 *    (pipeline/mobile/sample), publicUrl = this server.
 *
 * Prints `{"url", "itemId"}` once the item's profile and catalog entry are served, then serves
 * until SIGTERM (a clean exit, so `--cpu-prof` writes its profile).
 *
 *   node [--cpu-prof --cpu-prof-dir=DIR] --import tsx bench/api-server.ts --fixture resolve|expo
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { loadConfig } from '../pipeline/config/config.ts';
import { createPenumbra } from '../pipeline/app/penumbra.ts';
import { ingestDigitalItem } from '../pipeline/ingest/ingest-service.ts';
import { writeArchive } from '../pipeline/shadowing/archive.ts';
import { manifestFromFiles } from '../pipeline/shadowing/manifest.ts';
import { sampleExpoFiles } from '../pipeline/mobile/sample/sample-item.ts';
import { ingestFixture, waitFor } from '../pipeline/resolver/test-support.ts';
import type { ShadowConfig } from '../pipeline/domain/types.ts';

const { values } = parseArgs({ options: { fixture: { type: 'string' } } });
const p = await createPenumbra(loadConfig(process.env), { sink: false });
let itemId: string;
let profileVersion: number;
if (values.fixture === 'resolve') {
  ({ itemId, profileVersion } = await ingestFixture(p.ctx));
} else if (values.fixture === 'expo') {
  p.ctx.ingest.publicUrl = p.url;
  const files = sampleExpoFiles();
  const archive = await writeArchive({ manifest: manifestFromFiles(files), files }, 'zip');
  const shadow: ShadowConfig = { name: 'fast-api', instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 }, endpoints: { api: 'https://shadow-api.example.com/v1' }, traffic: { percentage: 50, match: 'all', rules: [] } };
  const r = await ingestDigitalItem(p.ctx.ingest, { archive, shadowConfig: shadow, actor: { name: 'bench', role: 'admin' }, requestId: randomUUID() });
  itemId = r.entry.itemId;
  profileVersion = r.profile.profileVersion;
} else throw new Error(`--fixture must be resolve or expo, not ${values.fixture}`);
await p.ctx.profileStore.waitForVersion(itemId, profileVersion);
await waitFor('catalog', () => p.ctx.catalog.find(itemId));
process.stdout.write(`${JSON.stringify({ url: p.url, itemId })}\n`);
process.once('SIGTERM', () => {
  void p.stop().finally(() => process.exit(0));
});
