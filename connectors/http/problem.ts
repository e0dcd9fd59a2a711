/**
 * The one place errors become HTTP answers: RFC 9457 problem+json with a stable `type`
 * (https://penumbra.dev/problems/<code>), a human `detail`, and for validation the offending
 * field paths in `errors`. Every route throws PenumbraError subclasses; nothing else writes
 * error bodies.
 */
import type { ErrorRequestHandler, Response } from 'express';
import { PenumbraError, RateLimitedError, ConflictError, type FieldIssue } from '../../pipeline/errors.ts';

export const PROBLEM_BASE = 'https://penumbra.dev/problems/';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errors?: FieldIssue[];
  [ext: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict',
  413: 'Payload Too Large', 415: 'Unsupported Media Type', 422: 'Unprocessable Content', 428: 'Precondition Required',
  429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

export function toProblem(err: unknown, instance?: string): Problem {
  if (err instanceof PenumbraError) {
    const p: Problem = {
      type: PROBLEM_BASE + err.code,
      title: TITLES[err.status] ?? 'Error',
      status: err.status,
      detail: err.message,
      instance,
    };
    if (err.issues.length > 0) p.errors = err.issues;
    if ('reason' in err && typeof (err as { reason?: unknown }).reason === 'string') p.reason = (err as { reason: string }).reason;
    if (err instanceof ConflictError && err.current !== undefined) p.current = err.current;
    return p;
  }
  const e = err as { status?: number; statusCode?: number; type?: string; message?: string; expose?: boolean };
  // body-parser / express errors carry a status; map the common ones to stable codes.
  const status = e?.status ?? e?.statusCode;
  if (status === 413 || e?.type === 'entity.too.large') {
    return { type: PROBLEM_BASE + 'payload-too-large', title: TITLES[413], status: 413, detail: 'Request body exceeds the size limit', instance };
  }
  if (status === 400 && e?.type === 'entity.parse.failed') {
    return { type: PROBLEM_BASE + 'malformed-json', title: TITLES[400], status: 400, detail: `Body is not valid JSON: ${e.message}`, instance, errors: [{ path: '', message: 'malformed JSON' }] };
  }
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return { type: PROBLEM_BASE + 'bad-request', title: TITLES[status] ?? 'Bad Request', status, detail: e.message ?? 'Bad request', instance };
  }
  return { type: PROBLEM_BASE + 'internal', title: TITLES[500], status: 500, detail: 'Internal error; see server logs for the request id', instance };
}

export function sendProblem(res: Response, problem: Problem): void {
  res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
}

export function problemHandler(log: (msg: string, extra: Record<string, unknown>) => void): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const p = toProblem(err, req.originalUrl);
    if (p.status >= 500) log('request failed', { err: String((err as Error)?.stack ?? err), url: req.originalUrl, requestId: res.locals.requestId });
    if (err instanceof RateLimitedError) res.setHeader('Retry-After', String(err.retryAfterSeconds));
    if (res.headersSent) return;
    sendProblem(res, p);
  };
}
