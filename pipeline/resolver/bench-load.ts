/**
 * A closed-loop HTTP load generator for the resolver benchmarks (autocannon is not a
 * dependency): N keep-alive connections, each sending its next request as soon as the last
 * answer is read, for a fixed duration. It runs in a worker thread (plain JS, eval'd) so the
 * server under test keeps its own event loop and core; ours and the peer get the same loop.
 */
import { Worker } from 'node:worker_threads';

const LOOP = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { base, paths, headers, connections, durationMs } = workerData;
const u = new URL(base);
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
const lat = [];
let ok = 0, other = 0, errors = 0, i = 0;
const end = Date.now() + durationMs;
function one() {
  return new Promise((resolve) => {
    const k = i++;
    const t0 = process.hrtime.bigint();
    const req = http.request({ host: u.hostname, port: u.port, path: paths[k % paths.length], agent, headers: headers[k % headers.length] }, (res) => {
      res.resume();
      res.on('end', () => {
        lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (res.statusCode === 200) ok++; else other++;
        resolve();
      });
    });
    req.on('error', () => { errors++; resolve(); });
    req.end();
  });
}
async function conn() { while (Date.now() < end) await one(); }
const started = Date.now();
Promise.all(Array.from({ length: connections }, conn)).then(() => {
  const secs = (Date.now() - started) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p) => lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : NaN;
  agent.destroy();
  parentPort.postMessage({ requests: lat.length, ok, other, errors, rps: ok / secs, p50: q(0.5), p99: q(0.99), max: lat[lat.length - 1] ?? NaN });
});
`;

export interface LoadResult {
  requests: number;
  ok: number;
  /** Answers other than 200 (e.g. 429): a run with any is not a valid measurement. */
  other: number;
  errors: number;
  /** Successful requests per second. */
  rps: number;
  p50: number;
  p99: number;
  max: number;
}

export function runLoad(opts: { base: string; paths: string[]; headers?: Record<string, string>[]; connections: number; durationMs: number }): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(LOOP, { eval: true, workerData: { ...opts, headers: opts.headers ?? [{}] } });
    w.once('message', (m: LoadResult) => {
      void w.terminate();
      resolve(m);
    });
    w.once('error', reject);
  });
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
