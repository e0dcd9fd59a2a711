/**
 * Content-addressed blob storage for item archives (original and shadows).
 *
 * Callers see only the BlobStore interface, keyed by the hex sha256 of the bytes, so an
 * S3-compatible implementation can replace the filesystem one without touching them. The
 * filesystem store writes to a temp file and renames (atomic; a crash never leaves a partial
 * blob under its final name) and verifies the digest on write.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename, stat, writeFile, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { NotFoundError, ValidationError } from '../../pipeline/errors.ts';

export interface BlobInfo {
  sha256: string;
  size: number;
}

export interface BlobStore {
  put(bytes: Buffer): Promise<BlobInfo>;
  has(sha256: string): Promise<boolean>;
  get(sha256: string): Promise<Buffer>;
  stream(sha256: string): Promise<{ stream: Readable; size: number }>;
}

export function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const HEX64 = /^[0-9a-f]{64}$/;

export class FsBlobStore implements BlobStore {
  constructor(private readonly dir: string) {}

  private pathFor(sha256: string): string {
    if (!HEX64.test(sha256)) throw new ValidationError('blob id must be a lowercase hex sha256', [{ path: 'sha256', message: 'not a sha256' }]);
    return path.join(this.dir, sha256.slice(0, 2), sha256);
  }

  async put(bytes: Buffer): Promise<BlobInfo> {
    const sha256 = sha256Hex(bytes);
    const final = this.pathFor(sha256);
    if (await this.has(sha256)) return { sha256, size: bytes.length };
    // Owner-only: blobs are every uploaded item's bytes (the data folder itself is 0700 too).
    await mkdir(path.dirname(final), { recursive: true, mode: 0o700 });
    const tmp = `${final}.${randomUUID()}.tmp`;
    await writeFile(tmp, bytes, { mode: 0o600 });
    try {
      await rename(tmp, final);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    return { sha256, size: bytes.length };
  }

  async has(sha256: string): Promise<boolean> {
    const p = this.pathFor(sha256);
    try {
      await stat(p);
      return true;
    } catch {
      return false;
    }
  }

  async get(sha256: string): Promise<Buffer> {
    const p = this.pathFor(sha256); // validation errors must not turn into "not found"
    try {
      return await readFile(p);
    } catch {
      throw new NotFoundError(`blob ${sha256} not found`);
    }
  }

  async stream(sha256: string): Promise<{ stream: Readable; size: number }> {
    const p = this.pathFor(sha256);
    let size: number;
    try {
      size = (await stat(p)).size;
    } catch {
      throw new NotFoundError(`blob ${sha256} not found`);
    }
    return { stream: createReadStream(p), size };
  }
}
