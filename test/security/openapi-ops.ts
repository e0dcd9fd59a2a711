/**
 * The operations of the live OpenAPI document, with path parameters filled in, so the auth
 * matrix and the route fuzzer cover every route the running API declares — including routes
 * added after these tests were written.
 */

export interface Operation {
  method: 'get' | 'post' | 'put' | 'delete';
  /** OpenAPI template, e.g. /api/v1/items/{itemId}. */
  template: string;
  secured: boolean;
  requiredRole: 'viewer' | 'operator' | 'admin' | null;
  /** Query parameters declared by the document (name → JSON schema). */
  query: { name: string; required: boolean; schema: Record<string, unknown> }[];
  pathParams: string[];
  bodyContentType: string | null;
  bodySchema: Record<string, unknown> | null;
}

interface OpenApiDoc {
  paths: Record<string, Record<string, {
    security?: unknown[];
    'x-required-role'?: string;
    parameters?: { name: string; in: string; required?: boolean; schema?: Record<string, unknown> }[];
    requestBody?: { content?: Record<string, { schema?: Record<string, unknown> }> };
  }>>;
}

export async function fetchOperations(base: string): Promise<Operation[]> {
  const res = await fetch(`${base}/api/v1/openapi.json`);
  if (!res.ok) throw new Error(`openapi.json answered ${res.status}`);
  const doc = (await res.json()) as OpenApiDoc;
  const ops: Operation[] = [];
  for (const [template, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const params = op.parameters ?? [];
      const content = op.requestBody?.content ?? {};
      const [ct, media] = Object.entries(content)[0] ?? [null, null];
      ops.push({
        method: method as Operation['method'],
        template,
        secured: Array.isArray(op.security) && op.security.length > 0,
        requiredRole: (op['x-required-role'] as Operation['requiredRole']) ?? null,
        query: params.filter((p) => p.in === 'query').map((p) => ({ name: p.name, required: p.required ?? false, schema: p.schema ?? {} })),
        pathParams: params.filter((p) => p.in === 'path').map((p) => p.name),
        bodyContentType: ct,
        bodySchema: media?.schema ?? null,
      });
    }
  }
  return ops;
}

/** Fill `{param}` placeholders from `values` (default `x`), URL-encoded. */
export function fillPath(template: string, values: Record<string, string> = {}): string {
  return template.replace(/\{([^}]+)\}/g, (_, name: string) => encodeURIComponent(values[name] ?? 'x'));
}

export const ROLE_RANK = { viewer: 1, operator: 2, admin: 3 } as const;
