/**
 * The item-pages origin. `/d/…` serves uploaded HTML and JS, so it must never share an origin
 * with the console: on the console's origin an item page could read the operator's session
 * token from sessionStorage (same tab) and call the API as that operator. A second listener on
 * another port is another origin in every browser, and unlike a CSP sandbox it leaves the item
 * a normal origin of its own — its storage works and its scripts' errors are not muted to
 * "Script error." (which would blind the error telemetry).
 *
 *  - the content listener answers `/d/…` (through the same Express app, so headers, limits and
 *    problem+json are the same) and 404 for anything else;
 *  - the API listener answers `/d/…` with a 308 to the content origin, so relative launch URLs
 *    already handed to devices keep working.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type NodeHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export function isContentPath(url: string | undefined): boolean {
  return url !== undefined && url.startsWith('/d/');
}

/** Answer on the API origin: item pages live elsewhere. */
export function redirectToContent(res: http.ServerResponse, contentUrl: string, url: string): void {
  res.writeHead(308, { location: `${contentUrl}${url}`, 'cache-control': 'public, max-age=300', 'content-length': '0', 'x-content-type-options': 'nosniff' });
  res.end();
}

export async function listenContent(app: NodeHandler, opts: { host: string; port: number; publicUrl: string | null }): Promise<{ server: http.Server; url: string; stop(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (isContentPath(req.url)) return app(req, res);
    const body = JSON.stringify({ type: 'https://penumbra.dev/problems/not-found', title: 'Not Found', status: 404, detail: 'this origin serves item pages under /d/ only' });
    res.writeHead(404, { 'content-type': 'application/problem+json', 'content-length': Buffer.byteLength(body), 'x-content-type-options': 'nosniff' });
    res.end(body);
  });
  server.keepAliveTimeout = 65000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = opts.publicUrl ?? `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`;
  return {
    server,
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
