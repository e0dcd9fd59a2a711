/**
 * Load generator of the HTTP latency benches (resolver, expo), run as a process of its own so it
 * shares neither contender's event loop nor the bench process's: a closed loop of
 * `connections` keep-alive connections, each sending its next GET as soon as the last answer was
 * read, for `durationMs`; path and headers rotate over the lists in the spec file (request k
 * uses paths[k % n] and headers[k % m]). Latency is measured from the request's start to the end
 * of its answer.
 *
 *   node --import tsx bench/http-load.ts --spec FILE   (FILE: {base, paths, headers, connections, durationMs})
 *
 * Prints one JSON line: LoadResult (bench/http-bench.ts).
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface Spec { base: string; paths: string[]; headers: Record<string, string>[]; connections: number; durationMs: number }

const { values } = parseArgs({ options: { spec: { type: 'string' } } });
const spec = JSON.parse(readFileSync(values.spec!, 'utf8')) as Spec;
const u = new URL(spec.base);
const agent = new http.Agent({ keepAlive: true, maxSockets: spec.connections });
const headers = spec.headers.length > 0 ? spec.headers : [{}];
const lat: number[] = [];
let ok = 0;
let other = 0;
let errors = 0;
let i = 0;
const statuses: Record<string, number> = {};

function one(): Promise<void> {
  return new Promise((resolve) => {
    const k = i++;
    const t0 = process.hrtime.bigint();
    const req = http.request({ host: u.hostname, port: u.port, path: spec.paths[k % spec.paths.length], agent, headers: headers[k % headers.length] }, (res) => {
      res.resume();
      res.on('end', () => {
        lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (res.statusCode === 200) ok++;
        else {
          other++;
          statuses[res.statusCode ?? 0] = (statuses[res.statusCode ?? 0] ?? 0) + 1;
        }
        resolve();
      });
    });
    req.on('error', () => {
      errors++;
      resolve();
    });
    req.end();
  });
}

const started = performance.now();
const end = started + spec.durationMs;
await Promise.all(Array.from({ length: spec.connections }, async () => {
  while (performance.now() < end) await one();
}));
const secs = (performance.now() - started) / 1000;
lat.sort((a, b) => a - b);
const q = (p: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : NaN);
agent.destroy();
process.stdout.write(`${JSON.stringify({ requests: lat.length, ok, other, errors, statuses, rps: ok / secs, p50: q(0.5), p99: q(0.99), max: lat[lat.length - 1] ?? NaN })}\n`);
process.exit(0);
