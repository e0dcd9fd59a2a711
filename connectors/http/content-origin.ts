/**
 * The listeners: the API and the item-pages origin. `/d/…` serves uploaded HTML and JS, so it
 * must never share an origin with the console: on the console's origin an item page could read
 * the operator's session token from sessionStorage (same tab) and call the API as that operator.
 * A second listener on another port is another origin in every browser, and unlike a CSP
 * sandbox it leaves the item a normal origin of its own — its storage works and its scripts'
 * errors are not muted to "Script error." (which would blind the error telemetry).
 *
 *  - the content listener answers `/d/…` (through the same Express app, so headers, limits and
 *    problem+json are the same) and 404 for anything else; the `/d/` route itself refuses
 *    requests that did not arrive here (`servedOnContentOrigin`), so an absolute-form request
 *    (`GET http://host/d/… HTTP/1.1`) to the API port is never served as an item page there;
 *  - the API listener answers `/d/…` (origin-form or absolute-form) with a 308 to the content
 *    origin, so relative launch URLs already handed to devices keep working;
 *  - one origin per item: when PENUMBRA_CONTENT_URL has a wildcard first label
 *    (`https://*.items.example.com`, or `http://*.localhost:7071` on one machine — browsers
 *    resolve every `*.localhost` name to loopback), each item is served only on its own host
 *    `<itemOriginLabel(itemId)>.items.example.com`, so one item's page cannot read another's
 *    localStorage, IndexedDB or cookies; a request for item B on item A's host is a 404.
 *  - both listeners have header and request timeouts and a connection cap (slowloris, socket
 *    exhaustion), from PENUMBRA_HEADERS_TIMEOUT_MS, PENUMBRA_REQUEST_TIMEOUT_MS and
 *    PENUMBRA_MAX_CONNECTIONS.
 */
import http from 'node:http';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { ListenerLimits } from '../../pipeline/config/config.ts';

export type NodeHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

const fromContentListener = new WeakSet<http.IncomingMessage>();

/** True when `req` arrived on the content listener (the only place `/d/` is served). */
export function servedOnContentOrigin(req: http.IncomingMessage): boolean {
  return fromContentListener.has(req);
}

/** Path of a request target, origin-form or absolute-form (`http://host/d/…`). */
export function targetPath(url: string | undefined): string {
  if (!url) return '';
  if (url.startsWith('/')) return url;
  try {
    const u = new URL(url);
    return u.pathname + u.search;
  } catch {
    return url;
  }
}

export function isContentPath(url: string | undefined): boolean {
  return targetPath(url).startsWith('/d/');
}

/** DNS label of an item's own origin: stable, lowercase, valid for any item id. */
export function itemOriginLabel(itemId: string): string {
  return `i${createHash('sha256').update(itemId, 'utf8').digest('hex').slice(0, 20)}`;
}

/** Base URL of `itemId`'s pages: the content URL, its wildcard label replaced by the item's. */
export function contentBaseFor(contentUrl: string, itemId: string): string {
  return contentUrl.includes('*') ? contentUrl.replace('*', itemOriginLabel(itemId)) : contentUrl;
}

function itemIdOfPath(path: string): string | null {
  const seg = /^\/d\/([^/?#]+)/.exec(path)?.[1];
  if (seg === undefined) return null;
  try {
    return decodeURIComponent(seg);
  } catch {
    return null;
  }
}

/** Answer on the API origin: item pages live elsewhere (on the item's own host, when wildcarded). */
export function redirectToContent(res: http.ServerResponse, contentUrl: string, url: string): void {
  const path = targetPath(url);
  const itemId = itemIdOfPath(path) ?? '';
  res.writeHead(308, { location: `${contentBaseFor(contentUrl, itemId)}${path}`, 'cache-control': 'public, max-age=300', 'content-length': '0', 'x-content-type-options': 'nosniff' });
  res.end();
}

function notFound(res: http.ServerResponse, detail: string): void {
  const body = JSON.stringify({ type: 'https://penumbra.dev/problems/not-found', title: 'Not Found', status: 404, detail });
  res.writeHead(404, { 'content-type': 'application/problem+json', 'content-length': Buffer.byteLength(body), 'x-content-type-options': 'nosniff' });
  res.end(body);
}

export const DEFAULT_LISTENER_LIMITS: ListenerLimits = { maxConnections: 10_000, headersTimeoutMs: 15_000, requestTimeoutMs: 300_000, streamsPerToken: 8 };

/** Node checks header/request timeouts on this interval (its default, 30 s, would let a short timeout wait that long). */
function serverOptions(limits: ListenerLimits = DEFAULT_LISTENER_LIMITS): http.ServerOptions {
  return { connectionsCheckingInterval: Math.max(250, Math.min(5000, Math.floor(limits.headersTimeoutMs / 2))) };
}

/** Timeouts and a connection cap: what every listener of ours gets. */
export function harden(server: http.Server, limits: ListenerLimits = DEFAULT_LISTENER_LIMITS): void {
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs);
  server.keepAliveTimeout = 65000;
  server.maxConnections = limits.maxConnections;
}

export interface Listening {
  server: http.Server;
  url: string;
  stop(): Promise<void>;
}

async function listen(server: http.Server, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

function stopper(server: http.Server): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections?.();
      server.close(() => resolve());
    });
}

const hostUrl = (host: string, port: number) => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

export async function listenContent(app: NodeHandler, opts: { host: string; port: number; publicUrl: string | null; limits?: ListenerLimits }): Promise<Listening> {
  const wildcard = opts.publicUrl?.includes('*') ? opts.publicUrl : null;
  const server = http.createServer(serverOptions(opts.limits), (req, res) => {
    if (!req.url?.startsWith('/d/')) return notFound(res, 'this origin serves item pages under /d/ only');
    if (wildcard) {
      // One origin per item: the Host must be this item's own label.
      const label = (req.headers.host ?? '').split('.')[0].toLowerCase();
      const itemId = itemIdOfPath(req.url);
      if (itemId === null || label !== itemOriginLabel(itemId)) return notFound(res, 'this host serves another item (one origin per item)');
    }
    fromContentListener.add(req);
    app(req, res);
  });
  harden(server, opts.limits);
  const port = await listen(server, opts.host, opts.port);
  return { server, url: opts.publicUrl ?? hostUrl(opts.host, port), stop: stopper(server) };
}

/** The API listener: fast paths first, `/d/` redirected to the content origin, Express for the rest. */
export async function listenApi(app: NodeHandler, opts: { host: string; port: number; contentUrl: () => string; fast: (req: http.IncomingMessage, res: http.ServerResponse, express: NodeHandler) => boolean; limits?: ListenerLimits }): Promise<Listening> {
  const server = http.createServer(serverOptions(opts.limits), (req, res) => {
    // A fast path may take a request and hand it to Express later (the collector's errors).
    if (opts.fast(req, res, app)) return;
    if (isContentPath(req.url)) return redirectToContent(res, opts.contentUrl(), req.url!);
    app(req, res);
  });
  harden(server, opts.limits);
  const port = await listen(server, opts.host, opts.port);
  return { server, url: hostUrl(opts.host, port), stop: stopper(server) };
}
