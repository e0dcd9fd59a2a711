/** Request validation from the same zod schemas the OpenAPI document is built from. */
import type { z } from 'zod';
import { ValidationError, type FieldIssue } from '../../pipeline/errors.ts';

export function zodIssues(err: z.ZodError, root: string): FieldIssue[] {
  return err.issues.map((i) => ({ path: [root, ...i.path.map(String)].filter(Boolean).join('/'), message: i.message }));
}

export function parseOr422<T>(schema: z.ZodType<T>, value: unknown, root: string, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new ValidationError(`${what} is invalid`, zodIssues(r.error, root));
  return r.data;
}
