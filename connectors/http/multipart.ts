/**
 * Multipart upload parsing with hard limits (busboy): one `item` file field up to maxBytes,
 * an optional `shadowConfig` text field up to 1 MB, and [#13] optional `proactive` ("true" /
 * "false") and `rollout` (JSON plan fields) fields. Exceeding a limit aborts with 413 instead
 * of buffering without bound.
 */
import busboy from 'busboy';
import type { Request } from 'express';
import { PayloadTooLargeError, ValidationError } from '../../pipeline/errors.ts';

export interface UploadParts {
  item: Buffer;
  fileName: string | null;
  shadowConfig?: unknown;
  /** [#13] Explicit proactive choice; undefined = the default (pipeline/version-shadows). */
  proactive?: boolean;
  /** [#13] Operator's rollout plan fields for a proactive version. */
  rollout?: Record<string, unknown>;
}

export function parseUpload(req: Request, maxBytes: number): Promise<UploadParts> {
  return new Promise((resolve, reject) => {
    const ct = req.headers['content-type'] ?? '';
    if (!/^multipart\/form-data/i.test(ct)) {
      reject(new ValidationError('upload must be multipart/form-data with an `item` file field', [{ path: 'item', message: 'missing multipart body' }], 'unsupported-media-type'));
      return;
    }
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: { fileSize: maxBytes, files: 1, fields: 6, fieldSize: 1024 * 1024 } });
    } catch (err) {
      reject(new ValidationError(`malformed multipart body: ${(err as Error).message}`, [{ path: 'item', message: 'malformed multipart' }]));
      return;
    }
    const chunks: Buffer[] = [];
    let fileName: string | null = null;
    let gotFile = false;
    let shadowRaw: string | undefined;
    let proactiveRaw: string | undefined;
    let rolloutRaw: string | undefined;
    let failed = false;
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      req.unpipe(bb);
      req.resume();
      reject(err);
    };
    bb.on('file', (name, stream, info) => {
      if (name !== 'item') {
        stream.resume();
        fail(new ValidationError(`unexpected file field ${name}`, [{ path: name, message: 'only the `item` file field is accepted' }]));
        return;
      }
      gotFile = true;
      fileName = info.filename ?? null;
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('limit', () => fail(new PayloadTooLargeError(`item archive exceeds ${maxBytes} bytes (PENUMBRA_MAX_UPLOAD_BYTES)`)));
    });
    bb.on('field', (name, value, info) => {
      if (info.valueTruncated) return fail(new PayloadTooLargeError(`field ${name} exceeds 1 MB`));
      if (name === 'shadowConfig') shadowRaw = value;
      else if (name === 'proactive') proactiveRaw = value;
      else if (name === 'rollout') rolloutRaw = value;
    });
    bb.on('error', (err: Error) => fail(new ValidationError(`malformed multipart body: ${err.message}`, [{ path: 'item', message: 'malformed multipart' }])));
    bb.on('close', () => {
      if (failed) return;
      if (!gotFile) return fail(new ValidationError('the `item` file field is required', [{ path: 'item', message: 'required' }]));
      let shadowConfig: unknown;
      if (shadowRaw !== undefined && shadowRaw.trim() !== '') {
        try {
          shadowConfig = JSON.parse(shadowRaw);
        } catch (err) {
          return fail(new ValidationError('shadowConfig is not valid JSON', [{ path: 'shadowConfig', message: (err as Error).message }]));
        }
      }
      let proactive: boolean | undefined;
      if (proactiveRaw !== undefined && proactiveRaw.trim() !== '') {
        const v = proactiveRaw.trim().toLowerCase();
        if (!['true', 'false', '1', '0'].includes(v)) return fail(new ValidationError('proactive must be true or false', [{ path: 'proactive', message: `"${proactiveRaw}" is not true or false` }]));
        proactive = v === 'true' || v === '1';
      }
      let rollout: Record<string, unknown> | undefined;
      if (rolloutRaw !== undefined && rolloutRaw.trim() !== '') {
        try {
          rollout = JSON.parse(rolloutRaw) as Record<string, unknown>;
        } catch (err) {
          return fail(new ValidationError('rollout is not valid JSON', [{ path: 'rollout', message: (err as Error).message }]));
        }
        if (!rollout || typeof rollout !== 'object' || Array.isArray(rollout)) return fail(new ValidationError('rollout must be a JSON object of plan fields', [{ path: 'rollout', message: 'not an object' }]));
      }
      resolve({ item: Buffer.concat(chunks), fileName, shadowConfig, proactive, rollout });
    });
    req.pipe(bb);
  });
}
