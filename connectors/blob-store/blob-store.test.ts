import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FsBlobStore, sha256Hex } from './blob-store.ts';
import { NotFoundError, ValidationError } from '../../pipeline/errors.ts';

describe('FsBlobStore', () => {
  const store = new FsBlobStore(mkdtempSync(path.join(tmpdir(), 'blobs-')));

  it('stores by sha256 and reads back the same bytes', async () => {
    const bytes = Buffer.from('hello shadow');
    const info = await store.put(bytes);
    expect(info).toEqual({ sha256: sha256Hex(bytes), size: bytes.length });
    expect(await store.has(info.sha256)).toBe(true);
    expect((await store.get(info.sha256)).equals(bytes)).toBe(true);
    expect(await store.put(bytes)).toEqual(info);
  });

  it('refuses ids that are not a sha256 (no path tricks) and reports missing blobs', async () => {
    await expect(store.get('../../etc/passwd')).rejects.toBeInstanceOf(ValidationError);
    await expect(store.get('a'.repeat(64))).rejects.toBeInstanceOf(NotFoundError);
  });
});
