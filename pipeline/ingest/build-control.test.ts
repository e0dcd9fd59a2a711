/**
 * buildControl picks the control arm's builder by item kind: web items get the browser library
 * injected (applyControl), update bundles the React Native library prepended to their bundles
 * (applyExpoControl); both keep every endpoint of the original.
 */
import { readArchiveBuffer } from '../shadowing/archive.ts';
import { manifestFromFiles } from '../shadowing/manifest.ts';
import { fixtureTree } from '../shadowing/fixtures.ts';
import { sampleExpoFiles } from '../mobile/sample/sample-item.ts';
import { buildControl } from './ingest-service.ts';

const library = { fileName: 'penumbra-instrument-9.9.9.js', source: '/* web lib */' };
const rnLibrary = { fileName: 'penumbra-instrument-rn-9.9.9.js', source: '(function(){globalThis.__rn=1})();\n' };
const ctx = { library, rnLibrary, publicUrl: 'https://penumbra.example', profileVersion: 5 };

test('a web item: the browser library and identity injected, nothing rewritten', async () => {
  const tree = fixtureTree('api-refs');
  const b = await buildControl(tree, 'zip', ctx);
  const out = await readArchiveBuffer(b.bytes);
  expect(b.report.totalReplacements).toBe(0);
  expect(out.files.has('__penumbra/penumbra-instrument-9.9.9.js')).toBe(true);
  expect(out.files.get('index.html')!.toString()).toContain('"variant":"control"');
  expect(JSON.parse(out.files.get('manifest.json')!.toString()).endpoints).toEqual(tree.manifest.endpoints);
});

test('an update bundle: the React Native library on each bundle, the original endpoints kept', async () => {
  const files = sampleExpoFiles();
  const tree = { manifest: manifestFromFiles(files), files };
  const b = await buildControl(tree, 'zip', ctx);
  const out = await readArchiveBuffer(b.bytes);
  expect(b.report.totalReplacements).toBe(0);
  expect(b.report.injectedPages.length).toBeGreaterThan(0);
  for (const p of b.report.injectedPages) {
    const text = out.files.get(p)!.toString();
    expect(text).toContain(rnLibrary.source.trim());
    expect(text).toContain('"variant":"control"');
    expect(text).not.toContain(library.source);
  }
  await expect(buildControl(tree, 'zip', { ...ctx, rnLibrary: undefined })).rejects.toThrow(/React Native library/);
});
