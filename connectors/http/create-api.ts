/**
 * createApi(deps) — the Express app, wired by hand from its dependencies (no globals), so a
 * test can start two in one process. Feature routers are mounted in order; the one problem+json
 * handler is last. Security headers and body limits apply to every route.
 */
import express, { type Router, type RequestHandler, type ErrorRequestHandler } from 'express';
import { PenumbraError } from '../../pipeline/errors.ts';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { OpenApiRegistry } from './openapi.ts';
import { problemHandler, sendProblem, PROBLEM_BASE } from './problem.ts';
import { requireRole, type TokenStore } from './auth.ts';
import type { MetricsRegistry } from '../../pipeline/app/metrics.ts';
import { createMetricsRouter, requestTiming } from './metrics-endpoint.ts';

export interface HealthReport {
  status: 'ok' | 'degraded' | 'down';
  checks: Record<string, { status: 'ok' | 'degraded' | 'down'; detail?: string; [k: string]: unknown }>;
  [k: string]: unknown;
}

export interface ApiDeps {
  openapi: OpenApiRegistry;
  tokens: TokenStore;
  routers: Router[];
  health: () => Promise<HealthReport>;
  version: string;
  log: (msg: string, extra?: Record<string, unknown>) => void;
  /** Built console (console/dist); served at / when present. */
  consoleDir?: string;
  jsonLimit?: string;
  /** Prometheus registry: enables GET /metrics and the request latency histogram. */
  metrics?: MetricsRegistry;
  /** Which peers may set X-Forwarded-For (PENUMBRA_TRUST_PROXY, compiled by rate-limit.ts). */
  trust?: (addr: string, i: number) => boolean;
  /** Debug logger for one line per request (method, route, status, duration). */
  requestLog?: (msg: string, extra?: Record<string, unknown>) => void;
}

const securityHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'SAMEORIGIN');
  next();
};

export function createApi(deps: ApiDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // req.ip (and so every per-client limit) reads X-Forwarded-For only from trusted peers.
  app.set('trust proxy', deps.trust ?? 'loopback');
  if (deps.metrics) app.use(requestTiming({ registry: deps.metrics, openapi: deps.openapi, log: deps.requestLog }));
  app.use(securityHeaders);
  app.use((req, res, next) => {
    const incoming = req.headers['x-request-id'];
    res.locals.requestId = typeof incoming === 'string' && /^[A-Za-z0-9._-]{8,80}$/.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', res.locals.requestId as string);
    next();
  });
  const json = express.json({ limit: deps.jsonLimit ?? '1mb', type: ['application/json', 'application/*+json', 'text/plain'] });
  // The collector parses its own body: it must keep the raw bytes of malformed input for the DLQ.
  app.use('/api', (req, res, next) => (req.path === '/v1/telemetry' ? next() : json(req, res, next)));

  deps.openapi.add({ method: 'get', path: '/api/v1/health', summary: 'Health of Kafka, registry, DuckDB and this process (profile versions served)', auth: 'none', tags: ['ops'], responses: { 200: 'Healthy or degraded', 503: 'Down' } });
  app.get('/api/v1/health', async (_req, res) => {
    const h = await deps.health();
    res.status(h.status === 'down' ? 503 : 200).json(h);
  });
  deps.openapi.add({ method: 'get', path: '/api/v1/openapi.json', summary: 'This OpenAPI document', auth: 'none', tags: ['ops'], responses: { 200: 'OpenAPI 3.1' } });
  app.get('/api/v1/openapi.json', (_req, res) => {
    res.json(deps.openapi.document(deps.version));
  });
  deps.openapi.add({ method: 'get', path: '/api/v1/whoami', summary: 'Name and role of the presented token', auth: 'viewer', tags: ['ops'], responses: { 200: 'Principal', 401: 'No or bad token' } });
  app.get('/api/v1/whoami', requireRole(deps.tokens, 'viewer'), (_req, res) => {
    res.json(res.locals.principal);
  });

  if (deps.metrics) app.use(createMetricsRouter({ registry: deps.metrics, openapi: deps.openapi }));
  for (const r of deps.routers) app.use(r);

  const notFound: RequestHandler = (req, res) => {
    sendProblem(res, { type: PROBLEM_BASE + 'not-found', title: 'Not Found', status: 404, detail: `No route ${req.method} ${req.originalUrl}`, instance: req.originalUrl });
  };
  app.use('/api', notFound);

  if (deps.consoleDir && existsSync(deps.consoleDir)) {
    const dir = deps.consoleDir;
    app.use((_req, res, next) => {
      res.setHeader('Content-Security-Policy', "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'");
      next();
    });
    app.use(express.static(dir, { index: 'index.html', maxAge: '1h', setHeaders: (res, p) => { if (p.endsWith('index.html')) res.setHeader('Cache-Control', 'no-cache'); } }));
    // Client-side routes fall back to the app shell.
    app.get(/^\/(?!api\/|d\/|launch\/).*/, (_req, res) => res.sendFile(path.join(dir, 'index.html')));
  }

  // Anything else (device paths such as /d/…/ or /launch/ without a match, unknown paths) is a
  // problem+json 404 too, never Express's HTML page.
  app.use(notFound);
  // A URIError is malformed percent-encoding in the request reaching a decodeURIComponent in a
  // route (found by test/fuzz/routes): the client's input, so a 400, not a 500.
  app.use(((err, _req, _res, next) => {
    next(err instanceof URIError ? new PenumbraError('malformed-uri', `Malformed percent-encoding in the URL: ${err.message}`, { status: 400 }) : err);
  }) as ErrorRequestHandler);
  app.use(problemHandler(deps.log));
  return app;
}
