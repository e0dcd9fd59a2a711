import { promotedTree, promotedVersion } from './promote.ts';
import type { ItemTree } from '../shadowing/archive.ts';
import { readArchiveBuffer, writeArchive } from '../shadowing/archive.ts';
import { applyShadowConfig } from '../shadowing/apply.ts';
import { ValidationError } from '../errors.ts';

const manifest = { id: 'com.example.notes', version: '1.4.0', name: 'Notes', entry: 'index.html', endpoints: { api: 'https://api.example.com/v1', cdn: 'https://cdn.example.com' } };
function item(): ItemTree {
  const files = new Map<string, Buffer>([
    ['manifest.json', Buffer.from(JSON.stringify({ ...manifest, extra: 'kept' }))],
    ['index.html', Buffer.from('<html><head></head><body><script src="app.js"></script></body></html>')],
    ['app.js', Buffer.from('fetch("https://api.example.com/v1/notes"); fetch("https://api.example.com/v10/x"); load("https://cdn.example.com/a.png");')],
    ['logo.png', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0xff, 0xfe])],
  ]);
  return { manifest, files };
}
const cfg = { name: 'checkout-v2', endpoints: { api: 'https://shadow-api.example.com/v2' } };

describe('promotedTree', () => {
  it('applies the shadow\'s endpoint rewrites like the shadow build, without any instrumentation', () => {
    const { tree, replacements } = promotedTree(item(), cfg, '1.4.0+checkout-v2.p7');
    expect(replacements).toBe(1);
    expect(tree.files.get('app.js')!.toString()).toBe('fetch("https://shadow-api.example.com/v2/notes"); fetch("https://api.example.com/v10/x"); load("https://cdn.example.com/a.png");');
    expect(tree.files.get('index.html')!.toString()).toBe('<html><head></head><body><script src="app.js"></script></body></html>');
    expect([...tree.files.keys()].some((p) => p.startsWith('__penumbra'))).toBe(false);
    expect(tree.files.get('logo.png')).toEqual(item().files.get('logo.png'));
    expect(JSON.parse(tree.files.get('manifest.json')!.toString())).toEqual({
      ...manifest, extra: 'kept', version: '1.4.0+checkout-v2.p7', endpoints: { api: 'https://shadow-api.example.com/v2', cdn: 'https://cdn.example.com' }, promotedFrom: { version: '1.4.0', shadow: 'checkout-v2' },
    });
    // The same text as the shadow the operator watched, minus the injected tags.
    const shadow = applyShadowConfig(item(), { ...cfg, instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 }, traffic: { percentage: 5, match: 'all', rules: [] } }, {
      library: { fileName: 'penumbra-instrument-1.0.0.js', source: '/*lib*/' }, identity: { itemId: manifest.id, version: manifest.version, variant: cfg.name, profileVersion: 1 }, runtimeConfigUrl: 'http://x/rc', telemetryUrl: 'http://x/t',
    });
    expect(shadow.tree.files.get('app.js')).toEqual(tree.files.get('app.js'));
  });

  it('is deterministic and survives an archive round trip', async () => {
    const a = await writeArchive(promotedTree(item(), cfg, '1.4.0+x.p1').tree, 'zip');
    const b = await writeArchive(promotedTree(item(), cfg, '1.4.0+x.p1').tree, 'zip');
    expect(a.equals(b)).toBe(true);
    const back = await readArchiveBuffer(a);
    expect(back.manifest.version).toBe('1.4.0+x.p1');
  });

  it('refuses an endpoint the manifest does not declare', () => {
    expect(() => promotedTree(item(), { name: 's', endpoints: { payments: 'https://p.example.com' } }, '1.4.0+s.p1')).toThrow(ValidationError);
  });

  it('versions are SemVer build metadata naming shadow and profile version', () => {
    expect(promotedVersion('1.4.0', 'checkout-v2', 7)).toBe('1.4.0+checkout-v2.p7');
    expect(promotedVersion('1.4.0+checkout-v2.p7', 'b', 9)).toBe('1.4.0+checkout-v2.p7.b.p9');
  });
});
