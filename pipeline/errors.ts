/**
 * The one error hierarchy of Penumbra.
 *
 * Every error we raise on purpose is a PenumbraError with a stable `code`, a `retriable` flag
 * (a retry helper decides from it, never from message text) and an optional `cause`. The HTTP
 * layer translates them to RFC 9457 problem+json in exactly one place
 * (connectors/http/problem.ts); processors decide DLQ-vs-retry from the same fields.
 */
export interface FieldIssue {
  /** JSON-pointer-like path of the offending field, e.g. `shadows/0/traffic/percentage`. */
  path: string;
  message: string;
}

export class PenumbraError extends Error {
  /** Stable machine-readable code; becomes the problem `type` suffix. */
  readonly code: string;
  readonly retriable: boolean;
  /** HTTP status this error maps to when it reaches the API edge. */
  readonly status: number;
  readonly issues: FieldIssue[];
  constructor(
    code: string,
    message: string,
    opts: { status?: number; retriable?: boolean; cause?: unknown; issues?: FieldIssue[] } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = opts.status ?? 500;
    this.retriable = opts.retriable ?? false;
    this.issues = opts.issues ?? [];
  }
}

/** Input that does not satisfy a schema or rule; names the field paths at fault. */
export class ValidationError extends PenumbraError {
  constructor(message: string, issues: FieldIssue[] = [], code = 'validation') {
    super(code, message, { status: 422, issues });
  }
}

/** Untrusted archive refused (traversal, bomb, bad manifest, …). `reason` is stable. */
export class ArchiveRejectedError extends PenumbraError {
  readonly reason: string;
  constructor(reason: string, message: string, issues: FieldIssue[] = []) {
    super('archive-rejected', message, { status: 422, issues });
    this.reason = reason;
  }
}

export class PayloadTooLargeError extends PenumbraError {
  constructor(message: string) {
    super('payload-too-large', message, { status: 413 });
  }
}

export class NotFoundError extends PenumbraError {
  constructor(message: string) {
    super('not-found', message, { status: 404 });
  }
}

/** If-Match did not match the current profile version. */
export class ConflictError extends PenumbraError {
  readonly current?: unknown;
  constructor(message: string, current?: unknown) {
    super('conflict', message, { status: 409 });
    this.current = current;
  }
}

export class PreconditionRequiredError extends PenumbraError {
  constructor(message: string) {
    super('precondition-required', message, { status: 428 });
  }
}

export class AuthError extends PenumbraError {
  constructor(code: 'unauthorized' | 'forbidden', message: string) {
    super(code, message, { status: code === 'unauthorized' ? 401 : 403 });
  }
}

export class RateLimitedError extends PenumbraError {
  readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number, message = 'Too many requests from this client') {
    super('rate-limited', message, { status: 429, retriable: true });
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** A dependency (Kafka, registry, DuckDB, disk) is unavailable; usually worth retrying. */
export class UnavailableError extends PenumbraError {
  constructor(message: string, cause?: unknown, retriable = true) {
    super('unavailable', message, { status: 503, retriable, cause });
  }
}

/** Bad configuration or environment; stops the process with an actionable message. */
export class ConfigError extends PenumbraError {
  constructor(message: string, issues: FieldIssue[] = []) {
    super('config', message, { status: 500, issues });
  }
}

export function isRetriable(err: unknown): boolean {
  if (err instanceof PenumbraError) return err.retriable;
  // kafkajs errors carry their own `retriable` flag; honour it.
  if (err && typeof err === 'object' && 'retriable' in err) return Boolean((err as { retriable: unknown }).retriable);
  return false;
}

/** Retry `fn` while the error says it is retriable, with capped exponential backoff. */
export async function withRetry<T>(
  fn: () => Promise<T>,
  opts: { retries?: number; initialMs?: number; maxMs?: number; onRetry?: (err: unknown, attempt: number) => void } = {},
): Promise<T> {
  const retries = opts.retries ?? 5;
  let delay = opts.initialMs ?? 100;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= retries || !isRetriable(err)) throw err;
      opts.onRetry?.(err, attempt + 1);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, opts.maxMs ?? 5000);
    }
  }
}
