/**
 * Load generator of the collector bench (bench/collector.bench.ts), run as a process of its own
 * so it shares neither contender's event loop: `--connections` keep-alive connections, each
 * POSTing telemetry batches back to back (the next when the previous was answered) to
 * `<url>/api/v1/telemetry` for `--seconds`.
 *
 * Batches are what the injected library sends (connectors/instrumentation: up to 50 events per
 * flush): `--batch` events, 90 % `request` (value, attrs.status), 8 % `usage`, 2 % `error`;
 * envelope with item bench.item0/1, variant original/shadow, one of 5,000 users, and the
 * assignment token signed for exactly that item, user and variant (`--tokens FILE`: JSON array,
 * index = user). Bodies are built before the clock starts (a pool of 512, sentAt = now) and
 * cycled, so the generator's own CPU is the HTTP client only. With `--fresh` (the end-to-end
 * bench, bench/e2e.bench.ts) every body is built when it is sent instead: event times within the
 * last `batch` ms and unique event ids, so the metrics processor windows (and does not drop as
 * late or duplicate) every event of a 20 s run. Fresh bodies are spliced from pieces serialized
 * once (`spliced`, checked equal to JSON.stringify's `body` at start): the same events, at a
 * fraction of the generator's CPU (before 2026-12-07 each was a JSON.stringify of new objects).
 *
 * `--rate N` paces the load open-loop at N events/s (the end-to-end bench's "sustained" run): batch
 * i is due at t0 + i·batch/N, whichever connection takes it; a late one goes at once.
 *
 * Prints one JSON line: `{ accepted, batches, failed, unverified, statuses, ms }` — accepted =
 * sum of `accepted` in the 202 answers; failed = any other status or a connection error.
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { url: { type: 'string' }, seconds: { type: 'string', default: '10' }, connections: { type: 'string', default: '32' }, batch: { type: 'string', default: '50' }, tokens: { type: 'string' }, fresh: { type: 'boolean', default: false }, rate: { type: 'string' } },
});
const url = new URL(values.url!);
const seconds = Number(values.seconds);
const connections = Number(values.connections);
const batch = Number(values.batch);
const tokens = JSON.parse(readFileSync(values.tokens!, 'utf8')) as string[];
const run = Math.random().toString(36).slice(2, 8);

const fresh = values.fresh === true;
// `--rate N` (events/s): open-loop pacing — the i-th batch (over all connections) is due at
// t0 + i·batch/N; a connection waits for its batch's due time, and one that is late (the server
// answers slower than the schedule) sends at once. Without it: closed loop, as fast as answered.
const rate = values.rate === undefined ? 0 : Number(values.rate);
if (values.rate !== undefined && !(rate > 0)) throw new Error(`--rate must be a positive number of events/s, got ${values.rate}`);

function body(n: number, now: number): string {
  const user = n % tokens.length; // tokens.length is a multiple of 4: the user fixes item and variant
  const item = `bench.item${user % 2}`;
  const variant = (user >> 1) % 2 === 0 ? 'original' : 'shadow';
  const events = [];
  for (let k = 0; k < batch; k++) {
    const type = k % 50 === 0 ? 'error' : k % 12 === 0 ? 'usage' : 'request';
    events.push({
      id: `${run}-${n}-${k}`, type, name: type === 'usage' ? 'buy' : type === 'error' ? 'TypeError' : 'api', ts: now - (batch - k) * (fresh ? 1 : 10),
      ...(type === 'request' ? { value: 80 + ((k * 37 + n) % 120), attrs: { status: k % 97 === 0 ? '503' : '200' } } : {}),
    });
  }
  return JSON.stringify({ itemId: item, version: '1.0.0', variant, profileVersion: 1, sessionId: `${run}-s${n}`, userId: `u${user}`, sentAt: now, token: tokens[user], events });
}

/**
 * The same bodies as body(), built by splicing pre-serialized pieces instead of JSON.stringify of
 * fresh objects (the generator shares the 2 cores with the pipeline it measures; stringify was
 * most of its CPU in the --fresh e2e load). Per batch size the constant parts of every event —
 * everything but the id's batch number, the time and the value — are serialized once, through
 * JSON.stringify itself; the splice inserts only numbers and the run id (base-36, no escaping).
 * Checked against body() at start for several batches, so the workload cannot drift.
 */
const pieces = Array.from({ length: batch }, (_, k) => {
  const type = k % 50 === 0 ? 'error' : k % 12 === 0 ? 'usage' : 'request';
  const name = type === 'usage' ? 'buy' : type === 'error' ? 'TypeError' : 'api';
  // `{"id":"<run>-` n `-k","type":…,"ts":` ts [`,"value":` v] tail
  const head = `${JSON.stringify({ id: '' }).slice(0, -3)}"${run}-`;
  const mid = `-${k}",${JSON.stringify({ type, name }).slice(1, -1)},"ts":`;
  const tail = type === 'request' ? `,"attrs":${JSON.stringify({ status: k % 97 === 0 ? '503' : '200' })}}` : '}';
  return { head, mid, request: type === 'request', tail };
});
const envelopes = tokens.map((token, user) => {
  const item = `bench.item${user % 2}`;
  const variant = (user >> 1) % 2 === 0 ? 'original' : 'shadow';
  const a = JSON.stringify({ itemId: item, version: '1.0.0', variant, profileVersion: 1, sessionId: '' }).slice(0, -3); // up to `"sessionId":`
  return { start: `${a}"${run}-s`, mid: `",${JSON.stringify({ userId: `u${user}` }).slice(1, -1)},"sentAt":`, end: `,${JSON.stringify({ token }).slice(1, -1)},"events":[` };
});
function spliced(n: number, now: number): string {
  const env = envelopes[n % tokens.length];
  let s = `${env.start}${n}${env.mid}${now}${env.end}`;
  const step = fresh ? 1 : 10;
  for (let k = 0; k < batch; k++) {
    const p = pieces[k];
    s += `${k === 0 ? '' : ','}${p.head}${n}${p.mid}${now - (batch - k) * step}${p.request ? `,"value":${80 + ((k * 37 + n) % 120)}` : ''}${p.tail}`;
  }
  return `${s}]}`;
}
for (const n of [0, 1, 7, 119, 4999, 123_457]) {
  if (spliced(n, 1_765_000_000_123) !== body(n, 1_765_000_000_123)) throw new Error(`collector-load: the spliced body of batch ${n} differs from JSON.stringify's`);
}

const now = Date.now();
const pool = fresh ? [] : Array.from({ length: 512 }, (_, n) => Buffer.from(body(n, now)));
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
const statuses: Record<string, number> = {};
let accepted = 0;
let batches = 0;
let failed = 0;
let unverified = 0;
let next = 0;

function post(b: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const req = http.request({ host: url.hostname, port: url.port, path: '/api/v1/telemetry', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': b.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        batches++;
        statuses[res.statusCode ?? 0] = (statuses[res.statusCode ?? 0] ?? 0) + 1;
        if (res.statusCode === 202) {
          const a = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { accepted: number; verified?: boolean };
          accepted += a.accepted;
          if (a.verified === false) unverified += a.accepted;
        } else failed++;
        resolve();
      });
    });
    req.on('error', () => {
      failed++;
      statuses.error = (statuses.error ?? 0) + 1;
      resolve();
    });
    req.end(b);
  });
}

const t0 = performance.now();
const deadline = t0 + seconds * 1000;
const perBatchMs = rate > 0 ? (batch / rate) * 1000 : 0;
await Promise.all(Array.from({ length: connections }, async () => {
  while (performance.now() < deadline) {
    const i = next++;
    if (perBatchMs > 0) {
      const due = t0 + i * perBatchMs;
      if (due >= deadline) break;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    await post(fresh ? Buffer.from(spliced(i, Date.now())) : pool[i % pool.length]);
  }
}));
const ms = performance.now() - t0;
agent.destroy();
process.stdout.write(`${JSON.stringify({ accepted, batches, failed, unverified, statuses, ms })}\n`);
process.exit(0);
