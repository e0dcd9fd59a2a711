/**
 * The raw limit of the HTTP latency benches (resolver, expo), run as a process of its own: a
 * handler answering every request with the same status, headers and body bytes that ours
 * answered a typical request with — no parsing, no decision, no logging.
 *  - `--framework node`: a bare node:http handler (the peer the ratios are taken against);
 *  - `--framework express`: one Express 5 route writing the same bytes (a reference: the part of
 *    a cost that is the framework rather than the work).
 *
 *   node --import tsx bench/http-peer.ts --spec FILE --framework node|express
 *   (FILE: {path, headers: {name: value}, body: base64})
 *
 * Prints `{"url": …}` when listening; serves until SIGTERM.
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import express from 'express';

const { values } = parseArgs({ options: { spec: { type: 'string' }, framework: { type: 'string', default: 'node' } } });
const spec = JSON.parse(readFileSync(values.spec!, 'utf8')) as { path: string; headers: Record<string, string>; body: string };
const body = Buffer.from(spec.body, 'base64');
const answer = (res: http.ServerResponse): void => {
  for (const [k, v] of Object.entries(spec.headers)) res.setHeader(k, v);
  res.setHeader('content-length', body.length);
  res.end(body);
};
let server: http.Server;
if (values.framework === 'express') {
  const app = express();
  app.get(spec.path, (_req, res) => answer(res));
  server = http.createServer(app);
} else if (values.framework === 'node') {
  server = http.createServer((_req, res) => answer(res));
} else throw new Error(`--framework must be node or express, not ${values.framework}`);
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
});
process.once('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
