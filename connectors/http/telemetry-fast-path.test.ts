/**
 * The collector's two entrances give the same answers (connectors/http/telemetry-router.ts): the
 * raw node:http fast path in front of Express, and the Express route alone. Each case is posted
 * to two identical stacks — createApi with its middleware, the collector router, listenApi; one
 * with the collector's fast path, one without — and the answers must match byte for byte:
 * status line, every header name, value and order (but `Date`), and the body. The records each
 * stack produced (telemetry and dead letters: topic, key, ids, reason, bytes) must match too, as
 * must the latency histogram (one observation per request, by status) and the collector's stats.
 *
 * The producer is a stub that records what it is given (what reaches Kafka is the same code on
 * both paths after `collect`; the broker itself is exercised by the collector's integration and
 * fault tests). The fast path must really have answered: the test counts the requests it took.
 */
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { createTelemetryRouter } from './telemetry-router.ts';
import { createApi } from './create-api.ts';
import { OpenApiRegistry } from './openapi.ts';
import { TokenStore } from './auth.ts';
import { listenApi, type Listening } from './content-origin.ts';
import { timedFastPaths } from './metrics-endpoint.ts';
import { defaultDeviceLimits, TokenBuckets, type DeviceLimits } from './rate-limit.ts';
import { MetricsRegistry } from '../../pipeline/app/metrics.ts';
import { topicNames } from '../../pipeline/config/config.ts';
import type { AvroProducer, OutRecord } from '../../pipeline/kafka/client.ts';
import { UnavailableError } from '../../pipeline/errors.ts';
import { LIMITS } from '../../pipeline/telemetry/batch.ts';

class StubProducer {
  fail = false;
  sent: OutRecord[] = [];
  async send(records: OutRecord[]): Promise<void> {
    if (this.fail) throw new UnavailableError(`Kafka did not acknowledge ${records.length} record(s): stub broker down`);
    this.sent.push(...records);
  }
}

interface Stack { url: string; producer: StubProducer; metrics: MetricsRegistry; stats: ReturnType<typeof createTelemetryRouter>['stats']; taken: () => number; listening: Listening }

async function stack(fast: boolean, limits?: DeviceLimits): Promise<Stack> {
  const producer = new StubProducer();
  const openapi = new OpenApiRegistry();
  const metrics = new MetricsRegistry();
  const { router, stats, fastPath } = createTelemetryRouter({
    producer: producer as unknown as AvroProducer, topics: topicNames('t.'), openapi, limits,
    // Attribution is the same code on both paths: batches are unverified (no profile).
    keys: [{ kid: 'k1', secret: Buffer.alloc(32, 1) }], profile: () => undefined,
  });
  const app = createApi({ openapi, tokens: new TokenStore([]), routers: [router], health: async () => ({ status: 'ok', checks: {} }), version: 't', log: () => {}, metrics });
  let took = 0;
  const counted: typeof fastPath = (req, res, express) => {
    const t = fastPath(req, res, express);
    if (t) took++;
    return t;
  };
  const timed = timedFastPaths(fast ? [counted] : [], { registry: metrics, openapi });
  const listening = await listenApi(app, { host: '127.0.0.1', port: 0, contentUrl: () => 'http://127.0.0.1:1', fast: timed });
  return { url: listening.url, producer, metrics, stats, taken: () => took, listening };
}

interface Answer { status: number; message: string; headers: string[]; body: Buffer }

function post(url: string, body: Buffer | string, headers: Record<string, string | number> = {}, chunked = false): Promise<Answer> {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({ host: u.hostname, port: u.port, path: '/api/v1/telemetry', method: 'POST', agent: false, headers: { 'content-type': 'application/json', ...(chunked ? {} : { 'content-length': b.length }), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const headers: string[] = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) if (res.rawHeaders[i] !== 'Date') headers.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
        resolve({ status: res.statusCode!, message: res.statusMessage!, headers, body: Buffer.concat(chunks) });
      });
    });
    req.on('error', reject);
    if (chunked) {
      // Undeclared length: written in pieces, so only reading tells the size.
      for (let i = 0; i < b.length; i += 64 * 1024) req.write(b.subarray(i, i + 64 * 1024));
      req.end();
    } else req.end(b);
  });
}

const now = () => Date.now();
const good = (id: string, extra: object = {}) => JSON.stringify({ itemId: 'com.example.notes', version: '1.0.0', variant: 'original', profileVersion: 1, sessionId: 's-1', userId: 'u-1', sentAt: now(), events: [{ id: `${id}-a`, type: 'usage', name: 'buy', ts: now() }, { id: `${id}-b`, type: 'request', name: 'api', ts: now(), value: 12, attrs: { status: '200' } }], ...extra });

/** What a stack produced, without what legitimately differs per call (dead letters' random ids and times). */
function produced(p: StubProducer): unknown[] {
  return p.sent.map((r) => {
    const v = r.value as unknown as Record<string, unknown>;
    if (r.topic === 't.penumbra.dlq' || 'processor' in v) return { topic: r.topic, key: r.key, reason: v.reason, errorCode: v.errorCode, processor: v.processor, value: String(v.value) };
    return { topic: r.topic, key: r.key, partition: r.partition, id: v.id, type: v.type, verified: v.verified, unverifiedReason: v.unverifiedReason, value: v.value };
  });
}

function histogramCounts(text: string): string[] {
  return text.split('\n').filter((l) => l.startsWith('penumbra_http_request_duration_seconds_count') && l.includes('/api/v1/telemetry')).sort();
}

let fastStack: Stack;
let plainStack: Stack;
beforeAll(async () => {
  fastStack = await stack(true);
  plainStack = await stack(false);
});
afterAll(async () => {
  await fastStack.listening.stop();
  await plainStack.listening.stop();
});

const RID = { 'x-request-id': 'fixed-request-id-0001' };
const big = Buffer.alloc(LIMITS.maxBodyBytes + 10, 'x');

const cases: { name: string; body: () => Buffer | string; headers?: Record<string, string>; chunked?: boolean; brokerDown?: boolean; fastTakes: boolean }[] = [
  { name: '202 good batch', body: () => good('g1'), headers: RID, fastTakes: true },
  { name: '202 with a rejected event', body: () => JSON.stringify({ ...JSON.parse(good('g2')), events: [{ id: 'g2-a', type: 'usage', name: 'buy', ts: now() }, { id: 'g2-bad', type: 'nonsense', ts: 'soon' }] }), headers: RID, fastTakes: true },
  { name: '400 malformed JSON', body: () => '{"itemId": "x", ', headers: RID, fastTakes: true },
  { name: '422 invalid envelope', body: () => JSON.stringify({ version: '1.0.0', events: [] }), headers: RID, fastTakes: true },
  { name: '422 no valid event', body: () => JSON.stringify({ ...JSON.parse(good('g3')), events: [{ id: 'g3-bad', type: 'nonsense' }] }), headers: RID, fastTakes: true },
  { name: '413 undeclared length', body: () => big, headers: RID, chunked: true, fastTakes: true },
  { name: '413 declared length (Express)', body: () => big, headers: RID, fastTakes: false },
  { name: '503 broker down', body: () => good('g4'), headers: RID, brokerDown: true, fastTakes: true },
  { name: '202 gzip body (Express inflates it)', body: () => gzipSync(good('g5')), headers: { ...RID, 'content-encoding': 'gzip' }, fastTakes: false },
  { name: '415 unknown content-encoding (Express)', body: () => good('g7'), headers: { ...RID, 'content-encoding': 'bogus' }, fastTakes: false },
  { name: '202 with a malformed client request id (a fresh one)', body: () => good('g6'), headers: { 'x-request-id': 'bad id!' }, fastTakes: true },
];

describe('collector fast path vs Express: the same answers', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const before = [fastStack.taken(), plainStack.taken()];
      fastStack.producer.fail = plainStack.producer.fail = c.brokerDown === true;
      const [nA, nB] = [fastStack.producer.sent.length, plainStack.producer.sent.length];
      const body = c.body();
      const a = await post(fastStack.url, body, c.headers, c.chunked);
      const b = await post(plainStack.url, body, c.headers, c.chunked);
      fastStack.producer.fail = plainStack.producer.fail = false;
      expect(fastStack.taken() - before[0]).toBe(c.fastTakes ? 1 : 0);
      expect(plainStack.taken()).toBe(0);
      if (c.headers?.['x-request-id'] === 'bad id!') {
        // A fresh UUID on each side: the same shape, not the same value.
        const id = (x: Answer) => x.headers.find((h) => h.startsWith('X-Request-Id: '))!;
        expect(id(a)).toMatch(/^X-Request-Id: [0-9a-f-]{36}$/);
        expect(id(b)).toMatch(/^X-Request-Id: [0-9a-f-]{36}$/);
        a.headers = a.headers.map((h) => (h === id(a) ? 'X-Request-Id: *' : h));
        b.headers = b.headers.map((h) => (h === id(b) ? 'X-Request-Id: *' : h));
      }
      expect({ status: a.status, message: a.message, headers: a.headers, body: a.body.toString('latin1') }).toEqual({ status: b.status, message: b.message, headers: b.headers, body: b.body.toString('latin1') });
      expect(a.status).toBe(Number(c.name.slice(0, 3)));
      expect(produced({ sent: fastStack.producer.sent.slice(nA) } as StubProducer)).toEqual(produced({ sent: plainStack.producer.sent.slice(nB) } as StubProducer));
    });
  }

  it('counted the same requests: stats and one latency observation per request', async () => {
    expect(fastStack.stats).toEqual(plainStack.stats);
    expect(fastStack.stats.batches).toBeGreaterThan(5);
    const [fa, pl] = [histogramCounts(await fastStack.metrics.render()), histogramCounts(await plainStack.metrics.render())];
    expect(fa).toEqual(pl);
    expect(fa.some((l) => l.includes('status="202"'))).toBe(true);
    expect(fa.some((l) => l.includes('status="503"'))).toBe(true);
  });

  it('an empty rate-limit bucket falls through to the same 429', async () => {
    const tight = (): DeviceLimits => ({ ...defaultDeviceLimits(), telemetry: new TokenBuckets({ perSecond: 0.001, burst: 1 }) });
    const [f, p] = [await stack(true, tight()), await stack(false, tight())];
    try {
      const fa = [await post(f.url, good('r1'), RID), await post(f.url, good('r2'), RID)];
      const pa = [await post(p.url, good('r1'), RID), await post(p.url, good('r2'), RID)];
      expect(fa.map((x) => x.status)).toEqual([202, 429]);
      expect(f.taken()).toBe(1);
      for (const i of [0, 1]) expect({ ...fa[i], body: fa[i].body.toString() }).toEqual({ ...pa[i], body: pa[i].body.toString() });
    } finally {
      await f.listening.stop();
      await p.listening.stop();
    }
  });
});
