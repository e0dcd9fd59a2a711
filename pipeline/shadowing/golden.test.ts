/**
 * Golden cases: each sample item, shadowed with a fixed config and a fixed fake library, must give
 * exactly the pinned file tree (path → sha256), report and archive hashes. Other components (the
 * artifact store, ETags, the console's diff view) rely on shadows not changing silently.
 * Regenerate deliberately with `UPDATE_GOLDEN=1` and review the diff of fixtures/golden/*.json.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { applyShadowConfig } from './apply.ts';
import { readArchiveBuffer, writeArchive, type ItemTree } from './archive.ts';
import { FIXTURE_NAMES, FIXTURES_DIR, goldenConfig, goldenContext, loadFixture } from './fixtures.ts';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const treeHashes = (t: ItemTree): Record<string, string> => Object.fromEntries([...t.files].map(([p, b]) => [p, sha256(b)]));
const snapshot = (t: ItemTree): Map<string, Buffer> => new Map([...t.files].map(([p, b]) => [p, Buffer.from(b)]));

describe.each(FIXTURE_NAMES)('golden shadow of %s', (name) => {
  test('matches fixtures/golden and leaves the original untouched', async () => {
    const item = await loadFixture(name, 'zip');
    const before = snapshot(item);
    const manifestBefore = JSON.stringify(item.manifest);

    const { tree, report } = applyShadowConfig(item, goldenConfig(name, item), goldenContext(item));
    const zip = await writeArchive(tree, 'zip');
    const tgz = await writeArchive(tree, 'tar.gz');
    const actual = {
      tree: treeHashes(tree),
      report,
      archives: { zip: sha256(zip), 'tar.gz': sha256(tgz) },
    };

    // The original is byte-identical after applying (same paths, same bytes, same manifest).
    expect([...item.files.keys()]).toEqual([...before.keys()]);
    for (const [p, b] of before) expect(item.files.get(p)?.equals(b)).toBe(true);
    expect(JSON.stringify(item.manifest)).toBe(manifestBefore);

    // Both archives read back to the same tree (and pass every reader check).
    for (const archive of [zip, tgz]) {
      const back = await readArchiveBuffer(archive);
      expect(treeHashes(back)).toEqual(actual.tree);
    }

    const file = path.join(FIXTURES_DIR, 'golden', `${name}.json`);
    if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
      if (process.env.UPDATE_GOLDEN !== '1') throw new Error(`${file} is missing; run with UPDATE_GOLDEN=1 and review it`);
      writeFileSync(file, JSON.stringify(actual, null, 2) + '\n');
    }
    expect(actual).toEqual(JSON.parse(readFileSync(file, 'utf8')));
  });

  test('a second run gives byte-identical archives (from a tar.gz read, too)', async () => {
    const fromZip = await loadFixture(name, 'zip');
    const fromTgz = await loadFixture(name, 'tar.gz');
    const a = applyShadowConfig(fromZip, goldenConfig(name, fromZip), goldenContext(fromZip)).tree;
    const b = applyShadowConfig(fromTgz, goldenConfig(name, fromTgz), goldenContext(fromTgz)).tree;
    expect((await writeArchive(a, 'zip')).equals(await writeArchive(b, 'zip'))).toBe(true);
    expect((await writeArchive(a, 'tar.gz')).equals(await writeArchive(b, 'tar.gz'))).toBe(true);
  });
});
