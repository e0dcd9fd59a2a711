/**
 * S3-compatible object storage (AWS SDK v3): the blob store for item archives when
 * `PENUMBRA_BLOB_STORE=s3`, and the mirror the warehouse sink publishes its Parquet exports to
 * when `PENUMBRA_PARQUET_S3=true` — one bucket shared by every Penumbra process and host.
 *
 * Keys (under the configured prefix):
 *   blobs/<sha256[0:2]>/<sha256>                          item archives, content-addressed
 *   warehouse/<table>/date=YYYY-MM-DD/part-….parquet      the sink's Hive-partitioned export
 *   warehouse/_meta.json                                  the last export's metadata
 *
 * Works against AWS S3 and any S3-compatible server (S3Proxy in the local stack, MinIO, …):
 * path-style URLs by default when an endpoint is set. With no endpoint configured the local
 * stack's S3Proxy (loopback, no authorization) is used.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import {
  CreateBucketCommand, DeleteObjectsCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client,
} from '@aws-sdk/client-s3';
import type { S3Settings } from '../../pipeline/config/config.ts';
import { NotFoundError, UnavailableError, ValidationError } from '../../pipeline/errors.ts';
import type { ExportMirror } from '../duckdb-sink/export.ts';
import { sha256Hex, type BlobInfo, type BlobStore } from './blob-store.ts';

export interface S3Connection {
  client: S3Client;
  bucket: string;
  prefix: string;
  endpoint: string;
}

/** An S3 client for the configured store. */
export function connectS3(s3: S3Settings): S3Connection {
  let credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
  if (s3.accessKeyId && s3.secretAccessKey) credentials = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
  // The local stack's S3Proxy listens on loopback without authorization (infra/stack.ts); the
  // SDK still signs every request, with any key, as it would against AWS.
  else if (s3.local) credentials = { accessKeyId: 'penumbra-local', secretAccessKey: 'penumbra-local' };
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: s3.forcePathStyle,
    credentials,
    // Checksums only when an operation needs them: S3-compatible servers differ in the
    // (newer) flexible checksum headers they accept.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 4,
  });
  return { client, bucket: s3.bucket, prefix: s3.prefix, endpoint: s3.endpoint };
}

const statusOf = (err: unknown): number | undefined => (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
const unavailable = (what: string, c: S3Connection, err: unknown): UnavailableError =>
  new UnavailableError(`S3 ${what} on ${c.endpoint} bucket ${c.bucket} failed: ${(err as Error)?.message ?? String(err)}`, err);

/** Create the bucket if it does not exist (idempotent; two processes racing is fine). */
export async function ensureBucket(c: S3Connection): Promise<void> {
  try {
    await c.client.send(new HeadBucketCommand({ Bucket: c.bucket }));
    return;
  } catch (err) {
    const s = statusOf(err);
    if (s !== 404 && s !== 403 && s !== 301) throw unavailable('HeadBucket', c, err);
  }
  try {
    await c.client.send(new CreateBucketCommand({ Bucket: c.bucket }));
  } catch (err) {
    const name = (err as Error).name;
    if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists' && statusOf(err) !== 409) throw unavailable('CreateBucket', c, err);
  }
}

async function bodyBytes(body: unknown): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Content-addressed blobs in a bucket: same contract as FsBlobStore (keyed by the hex sha256 of the
 * bytes, verified on write and on read). A PUT is atomic in S3, so no reader sees half an object.
 */
export class S3BlobStore implements BlobStore {
  constructor(private readonly c: S3Connection) {}

  private key(sha256: string): string {
    if (!HEX64.test(sha256)) throw new ValidationError('blob id must be a lowercase hex sha256', [{ path: 'sha256', message: 'not a sha256' }]);
    return `${this.c.prefix}blobs/${sha256.slice(0, 2)}/${sha256}`;
  }

  async put(bytes: Buffer): Promise<BlobInfo> {
    const sha256 = sha256Hex(bytes);
    if (await this.has(sha256)) return { sha256, size: bytes.length };
    try {
      await this.c.client.send(new PutObjectCommand({
        Bucket: this.c.bucket, Key: this.key(sha256), Body: bytes, ContentLength: bytes.length,
        ContentType: 'application/octet-stream',
        // The store checks what it received against the bytes we hashed.
        ContentMD5: createHash('md5').update(bytes).digest('base64'),
      }));
    } catch (err) {
      throw unavailable('PutObject', this.c, err);
    }
    return { sha256, size: bytes.length };
  }

  async has(sha256: string): Promise<boolean> {
    const Key = this.key(sha256);
    try {
      await this.c.client.send(new HeadObjectCommand({ Bucket: this.c.bucket, Key }));
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw unavailable('HeadObject', this.c, err);
    }
  }

  async get(sha256: string): Promise<Buffer> {
    const Key = this.key(sha256);
    let bytes: Buffer;
    try {
      const res = await this.c.client.send(new GetObjectCommand({ Bucket: this.c.bucket, Key }));
      bytes = await bodyBytes(res.Body);
    } catch (err) {
      if (statusOf(err) === 404 || (err as Error).name === 'NoSuchKey') throw new NotFoundError(`blob ${sha256} not found`);
      throw unavailable('GetObject', this.c, err);
    }
    if (sha256Hex(bytes) !== sha256) throw new UnavailableError(`blob ${sha256} in bucket ${this.c.bucket} does not match its digest`, undefined, false);
    return bytes;
  }

  async stream(sha256: string): Promise<{ stream: Readable; size: number }> {
    const Key = this.key(sha256);
    try {
      const res = await this.c.client.send(new GetObjectCommand({ Bucket: this.c.bucket, Key }));
      return { stream: res.Body as Readable, size: Number(res.ContentLength ?? 0) };
    } catch (err) {
      if (statusOf(err) === 404 || (err as Error).name === 'NoSuchKey') throw new NotFoundError(`blob ${sha256} not found`);
      throw unavailable('GetObject', this.c, err);
    }
  }
}

/** The sink's export mirror: `<prefix>warehouse/<relative path>` in the bucket. */
export class S3ExportMirror implements ExportMirror {
  readonly description: string;
  private readonly base: string;
  constructor(private readonly c: S3Connection) {
    this.base = `${c.prefix}warehouse/`;
    this.description = `s3://${c.bucket}/${this.base}`;
  }

  async put(key: string, file: string): Promise<void> {
    const body = await readFile(file);
    try {
      await this.c.client.send(new PutObjectCommand({ Bucket: this.c.bucket, Key: this.base + key, Body: body, ContentLength: body.length }));
    } catch (err) {
      throw unavailable(`PutObject ${key}`, this.c, err);
    }
  }

  async delete(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      try {
        await this.c.client.send(new DeleteObjectsCommand({ Bucket: this.c.bucket, Delete: { Objects: batch.map((k) => ({ Key: this.base + k })), Quiet: true } }));
      } catch (err) {
        throw unavailable('DeleteObjects', this.c, err);
      }
    }
  }

  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      let res;
      try {
        res = await this.c.client.send(new ListObjectsV2Command({ Bucket: this.c.bucket, Prefix: this.base + prefix, ContinuationToken: token }));
      } catch (err) {
        throw unavailable('ListObjectsV2', this.c, err);
      }
      for (const o of res.Contents ?? []) if (o.Key) out.push(o.Key.slice(this.base.length));
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out;
  }
}

/** Read a whole object (tests, tools). */
export async function getObject(c: S3Connection, key: string): Promise<Buffer> {
  const res = await c.client.send(new GetObjectCommand({ Bucket: c.bucket, Key: key }));
  return bodyBytes(res.Body);
}


/** The blob store the configuration names: the data folder, or the bucket (created if missing). */
export async function blobStoreFor(cfg: { blobStore: 'fs' | 's3'; s3: S3Settings | null; dataDir: string }, makeFs: () => BlobStore): Promise<BlobStore> {
  if (cfg.blobStore !== 's3' || !cfg.s3) return makeFs();
  const c = connectS3(cfg.s3);
  await ensureBucket(c);
  return new S3BlobStore(c);
}

/** The Parquet export mirror the configuration asks for, or null. */
export async function exportMirrorFor(cfg: { parquetToS3: boolean; s3: S3Settings | null; dataDir: string }): Promise<S3ExportMirror | null> {
  if (!cfg.parquetToS3 || !cfg.s3) return null;
  const c = connectS3(cfg.s3);
  await ensureBucket(c);
  return new S3ExportMirror(c);
}
