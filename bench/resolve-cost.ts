/**
 * What our own code costs per resolve answer, in process and without the machine's load in the
 * figure: CPU µs and young-generation bytes allocated per answer of the raw fast path (query
 * read, rate-limit bucket, decision, token from the reuse cache, exposure record, answer JSON and
 * header list, fast-path timing) for the checkout at ROOT — so two checkouts (e.g. a clean
 * `git archive main` with node_modules linked, and this one) compare on a shared machine where
 * the HTTP bench's rounds differ by more than the code does (docs/scaling.md "Resolve, round 6").
 *
 *   node --import tsx bench/resolve-cost.ts ROOT [answers=200000]
 *
 * Not measured here (the same for every checkout, or elsewhere): node:http's parser and
 * response objects and the socket write (bench/resolver.bench.ts measures the whole answer next
 * to a bare node:http handler), the exposure queue's batching, Avro encoding and the worker's
 * produce (the record is built and handed to a sink that drops it), signing (every user's token
 * is warm in the reuse cache, as within a minute in the bench). Workload: the resolve bench's —
 * 10,000 users, android/ios alternating, country given, one X-Forwarded-For address per user, a
 * 50 % shadow. Not part of `npm run bench` (no peer): a tool for comparing code.
 */
import v8 from 'node:v8';
const root = process.argv[2] ?? process.cwd();
const N = Number(process.argv[3] ?? 200000);
const { Resolver } = await import(`${root}/pipeline/resolver/resolver.ts`);
const { ProfileStore } = await import(`${root}/pipeline/profiles/profile-store.ts`);
const { CatalogStore } = await import(`${root}/pipeline/ingest/catalog-store.ts`);
const { createResolveFastPath } = await import(`${root}/connectors/http/resolve-fast-path.ts`);
const { timedFastPaths } = await import(`${root}/connectors/http/metrics-endpoint.ts`);
const { MetricsRegistry } = await import(`${root}/pipeline/app/metrics.ts`);
const { OpenApiRegistry } = await import(`${root}/connectors/http/openapi.ts`);
const { TokenBuckets } = await import(`${root}/connectors/http/rate-limit.ts`);
const instrumentation = { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 };
const profiles = new ProfileStore();
profiles.apply({ itemId: 'com.example.app', profileVersion: 3, state: 'active', seed: 'seed', holdout: 0, itemVersion: '1.0.0', updatedBy: 't', updatedAt: 1,
  shadows: [{ name: 'checkout-v2', instrumentation, endpoints: {}, traffic: { percentage: 50, match: 'all', rules: [{ attribute: 'deviceType', op: 'in', values: ['android', 'ios'] }] }, control: false }] });
const catalog = new CatalogStore();
catalog.apply({ itemId: 'com.example.app', name: 'App', latestVersion: '1.0.0', updatedAt: 1, versions: [{ version: '1.0.0', entry: 'index.html', manifestJson: '{}', ingestedAt: 1, requestId: null, variants: ['original', 'checkout-v2'].map((name) => ({ name, sha256: name, size: 1, files: 1, profileVersion: null, replacements: 0 })) }] });
let queued = 0;
const resolver = new Resolver({ profiles, catalog, log: { enqueue: () => void queued++ }, resolverId: 'r1', keys: [{ kid: 'k', secret: Buffer.alloc(32, 1) }] });
const buckets = new TokenBuckets({ perSecond: 200, burst: 400 });
const fast = timedFastPaths([createResolveFastPath({ resolver, buckets, identity: { trust: () => true, isService: () => false } })], { registry: new MetricsRegistry(), openapi: new OpenApiRegistry() });
const USERS = 10000;
const socket = { remoteAddress: '127.0.0.1' };
const reqs = Array.from({ length: USERS }, (_, i) => ({ method: 'GET', url: `/api/v1/resolve?itemId=com.example.app&userId=bench-${i}&deviceType=${i % 2 ? 'android' : 'ios'}&country=DE`, headers: { host: 'x', 'x-forwarded-for': `10.0.${(i >> 8) & 255}.${i & 255}` }, socket }));
let bytesOut = 0;
// writableEnded as node:http has it after a synchronous answer: metrics-endpoint.ts then observes
// the timing at once instead of waiting for 'finish' (which this stand-in never emits).
const res = { statusCode: 200, h: null as unknown, writableEnded: false, writeHead(_s: number, h: unknown) {
  this.h = h;
  this.writableEnded = false;
}, end(b: string) {
  bytesOut += b.length;
  this.writableEnded = true;
} };
// Warm: JIT, and a token in the reuse cache for every user (the bench's steady state within a minute).
for (let i = 0; i < 3 * USERS; i++) fast(reqs[i % USERS], res);
const newSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_used_size;
// Young-generation growth over 20 answers, from batches that no scavenge interrupted.
let alloc = 0;
let n = 0;
for (let b = 0; b < 2000; b++) {
  const before = newSpace();
  for (let i = 0; i < 20; i++) fast(reqs[(b * 20 + i) % USERS], res);
  const after = newSpace();
  if (after > before) {
    alloc += after - before;
    n += 20;
  }
}
const c0 = process.cpuUsage();
let declined = 0;
for (let i = 0; i < N; i++) if (!fast(reqs[i % USERS], res)) declined++;
const c = process.cpuUsage(c0);
// Every request must have been answered by the fast path (none rate-limited or declined).
if (declined > 0) throw new Error(`incomplete run: ${declined} of ${N} requests declined`);
console.log(JSON.stringify({ root, cpuUsPerAnswer: +((c.user + c.system) / N).toFixed(2), youngBytesPerAnswer: Math.round(alloc / n), sampled: n, queued, avgBody: Math.round(bytesOut / (N + 3 * USERS + 40000)) }));
