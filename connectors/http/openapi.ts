/**
 * Contract first: routers declare each route with its zod request schemas here, the same
 * schemas validate requests (validate.ts), and this registry renders the OpenAPI 3.1 document
 * served at /api/v1/openapi.json. A route that is not declared does not appear in the document,
 * so the meta-test (openapi.test.ts) checks every mounted /api route is declared.
 */
import { z } from 'zod';

export type Auth = 'none' | 'viewer' | 'operator' | 'admin';

export interface RouteDoc {
  method: 'get' | 'post' | 'put' | 'delete';
  /** OpenAPI path template, e.g. /api/v1/items/{itemId}. */
  path: string;
  summary: string;
  auth: Auth;
  tags?: string[];
  query?: z.ZodType;
  body?: z.ZodType;
  bodyContentType?: string;
  responses: Record<string, string>;
}

/**
 * A route's declared answers plus those it gives without its router saying so: the auth
 * middleware's 401 (and 403 above the lowest role) and express.json()'s 400 for a malformed
 * body. console/test/fake-api.int.test.ts checks real answers against this document.
 */
function impliedResponses(r: RouteDoc): Record<string, string> {
  const out: Record<string, string> = {};
  if (r.body && (r.bodyContentType ?? 'application/json') === 'application/json') out[400] = 'Malformed JSON body';
  if (r.auth !== 'none') out[401] = 'No or unknown token';
  if (r.auth === 'operator' || r.auth === 'admin') out[403] = `Role below ${r.auth}`;
  return Object.fromEntries(Object.entries({ ...out, ...r.responses }).sort(([a], [b]) => Number(a) - Number(b)));
}

export class OpenApiRegistry {
  readonly routes: RouteDoc[] = [];

  add(doc: RouteDoc): RouteDoc {
    this.routes.push(doc);
    return doc;
  }

  document(version: string): Record<string, unknown> {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const r of this.routes) {
      const params: unknown[] = [];
      for (const m of r.path.matchAll(/\{([^}]+)\}/g)) params.push({ name: m[1], in: 'path', required: true, schema: { type: 'string' } });
      if (r.query) {
        const js = z.toJSONSchema(r.query, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, unknown>; required?: string[] };
        for (const [name, schema] of Object.entries(js.properties ?? {})) {
          params.push({ name, in: 'query', required: js.required?.includes(name) ?? false, schema });
        }
      }
      const op: Record<string, unknown> = {
        summary: r.summary,
        tags: r.tags ?? [],
        parameters: params,
        responses: Object.fromEntries(
          Object.entries(impliedResponses(r)).map(([code, description]) => [
            code,
            Number(code) >= 400
              ? { description, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } }
              : { description },
          ]),
        ),
      };
      if (r.auth !== 'none') {
        op.security = [{ bearer: [] }];
        op['x-required-role'] = r.auth;
      }
      if (r.body) {
        op.requestBody = {
          required: true,
          content: { [r.bodyContentType ?? 'application/json']: { schema: z.toJSONSchema(r.body, { io: 'input', unrepresentable: 'any' }) } },
        };
      }
      (paths[r.path] ??= {})[r.method] = op;
    }
    return {
      openapi: '3.1.0',
      info: { title: 'Penumbra API', version, description: 'Shadow rollouts of digital items: ingest, traffic split, runtime config, telemetry, alerts, rollback.' },
      servers: [{ url: '/' }],
      paths,
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'Operator token from PENUMBRA_TOKENS (name:role:token).' } },
        schemas: {
          Problem: {
            type: 'object',
            description: 'RFC 9457 problem details',
            properties: {
              type: { type: 'string' }, title: { type: 'string' }, status: { type: 'integer' }, detail: { type: 'string' }, instance: { type: 'string' },
              errors: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
            },
          },
        },
      },
    };
  }
}
