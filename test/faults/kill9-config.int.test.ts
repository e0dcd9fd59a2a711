/**
 * kill -9 of the main process during a burst of config changes, with a resolver-only replica
 * that stays up. After a restart on the same data folder and topics:
 *  - every change answered 200 is on penumbra.shadow.profiles (its profile version, once) and in
 *    the audit log (an `accepted` entry with that version) — the API answers only after the
 *    profile writer produced both;
 *  - versions on the profiles topic are gap-free and strictly increasing: the single writer per
 *    item never forked a version across the crash;
 *  - the restarted process serves the latest version, If-Match keeps working from it, and every
 *    resolver (the restarted one and the replica that never went down) converges on the next
 *    change, as their resolve answers and heartbeats show.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fixtureArchive } from '../../pipeline/shadowing/fixtures.ts';
import { spawnResolver, type ChildResolver } from '../../pipeline/resolver/test-support.ts';
import { AvroCodec } from '../../pipeline/kafka/registry.ts';
import { kafkaFor } from '../stack-helpers.ts';
import { auth, faultEnv, killAll, spawnPenumbra, waitFor, type PenumbraChild } from './child.ts';

const ITEM = 'com.example.multipage';
let env: Record<string, string>;
let replica: ChildResolver | undefined;

beforeAll(async () => {
  env = await faultEnv('kill9-config');
});
afterAll(async () => {
  await replica?.stop();
  killAll();
});

function shadows(percentage: number) {
  return [{
    name: 'checkout-v2',
    instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [{ id: 'buy', selector: '#buy', event: 'click' }], sampleRate: 1 },
    endpoints: { api: 'https://shadow-api.example.com/v1' },
    traffic: { percentage, match: 'all', rules: [] },
    control: false, // shares up to 100 % (with a control cohort one shadow takes at most 50 %)
  }];
}

async function current(url: string): Promise<number> {
  const res = await fetch(`${url}/api/v1/items/${ITEM}/shadow-config`, { headers: auth('viewer'), signal: AbortSignal.timeout(10_000) });
  if (res.status !== 200) throw new Error(`GET shadow-config ${res.status}`);
  await res.arrayBuffer();
  return Number((res.headers.get('etag') ?? '"0"').replace(/"/g, ''));
}

async function put(url: string, version: number, percentage: number): Promise<Response> {
  return fetch(`${url}/api/v1/items/${ITEM}/shadow-config`, {
    method: 'PUT', headers: { ...auth('operator'), 'content-type': 'application/json', 'if-match': `"${version}"` },
    body: JSON.stringify({ shadows: shadows(percentage) }), signal: AbortSignal.timeout(15_000),
  });
}

async function resolveVersion(url: string): Promise<number> {
  const r = (await (await fetch(`${url}/api/v1/resolve?itemId=${ITEM}&userId=u-${randomUUID()}`)).json()) as { profileVersion: number };
  return r.profileVersion;
}

test('kill -9 during a burst of PUTs: accepted changes are on the profiles topic and in the audit log; resolvers converge', async () => {
  let main: PenumbraChild = await spawnPenumbra(env);
  const form = new FormData();
  form.append('shadowConfig', JSON.stringify(shadows(10)));
  form.append('item', new Blob([new Uint8Array(await fixtureArchive('multi-page-web', 'zip'))]), 'item.zip');
  const up = await fetch(`${main.url}/api/v1/items`, { method: 'POST', headers: auth('operator'), body: form });
  expect(up.status).toBe(201);
  replica = await spawnResolver({ ...env, PORT: '0', PENUMBRA_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'penumbra-fault-replica-')) }, 60_000);

  // Burst: three operators changing traffic as fast as If-Match allows (409s are expected).
  const accepted: number[] = [];
  let conflicts = 0;
  let errors = 0;
  let running = true;
  const operators = [0, 1, 2].map(async (o) => {
    for (let i = 0; running; i++) {
      try {
        const v = await current(main.url);
        const res = await put(main.url, v, (o * 31 + i * 7) % 101);
        const body = (await res.json()) as { profileVersion?: number };
        if (res.status === 200) accepted.push(body.profileVersion!);
        else if (res.status === 409) conflicts++;
        else errors++;
      } catch {
        errors++;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });
  await waitFor('20 accepted changes', () => accepted.length >= 20, 90_000, 20);
  await main.kill9(); // PUTs are in flight: some may be decided by the writer but never answered
  const acceptedBeforeKill = accepted.length;
  running = false;
  await Promise.all(operators);

  main = await spawnPenumbra(env);
  // The restarted process serves at least every version it acknowledged before the kill.
  const maxAccepted = Math.max(...accepted);
  const latest = await waitFor('the restarted process to serve the latest profile', async () => {
    const v = await current(main.url);
    return v >= maxAccepted ? v : null;
  }, 60_000);

  // The profiles topic: every accepted version, once, gap-free from 1 to the latest.
  const prefix = env.PENUMBRA_TOPIC_PREFIX;
  const codec = new AvroCodec(env.SCHEMA_REGISTRY_URL);
  const kafka = kafkaFor('fault-kill9-config');
  const admin = kafka.admin();
  await admin.connect();
  const total = (await admin.fetchTopicOffsets(`${prefix}shadow.profiles`)).reduce((s, o) => s + Number(o.high) - Number(o.low), 0);
  await admin.disconnect();
  const versions: number[] = [];
  const consumer = kafka.consumer({ groupId: `${prefix}fault-reader-${randomUUID()}` });
  await consumer.connect();
  await consumer.subscribe({ topic: `${prefix}shadow.profiles`, fromBeginning: true });
  let read = 0;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 60_000);
    void consumer.run({
      eachMessage: async ({ message }) => {
        if (message.value) {
          const p = await codec.decode('shadow-profile', message.value);
          if (p.itemId === ITEM) versions.push(p.profileVersion);
        }
        if (++read >= total) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  expect(new Set(versions).size).toBe(versions.length); // no version produced twice
  expect([...versions].sort((a, b) => a - b)).toEqual(Array.from({ length: latest }, (_, i) => i + 1));
  for (const v of accepted) expect(versions).toContain(v);

  // The audit log (rebuilt from penumbra.audit by the restarted process) has each accepted change.
  const audit = await waitFor('audit entries for every accepted version', async () => {
    const r = (await (await fetch(`${main.url}/api/v1/audit?itemId=${ITEM}&limit=2000`, { headers: auth('viewer') })).json()) as { entries: { outcome: string; after: { profileVersion?: number } | null }[] };
    const got = new Set(r.entries.filter((e) => e.outcome === 'accepted').map((e) => e.after?.profileVersion));
    return accepted.every((v) => got.has(v)) ? got : null;
  }, 30_000);
  for (let v = 1; v <= latest; v++) expect(audit.has(v)).toBe(true);

  // Convergence: the replica (never restarted) and the restarted main serve `latest`, then the
  // next change made through the restarted process.
  await waitFor('the replica on the latest version', async () => (await resolveVersion(replica!.url)) === latest, 30_000);
  const next = await put(main.url, latest, 55);
  expect(next.status).toBe(200);
  const nextVersion = ((await next.json()) as { profileVersion: number }).profileVersion;
  expect(nextVersion).toBe(latest + 1);
  await waitFor('both resolvers on the next version', async () => (await resolveVersion(main.url)) === nextVersion && (await resolveVersion(replica!.url)) === nextVersion, 30_000);
  await waitFor('heartbeats showing every live resolver on the next version', async () => {
    const r = (await (await fetch(`${main.url}/api/v1/resolvers`, { headers: auth('viewer') })).json()) as { resolvers: { resolverId: string; stale: boolean; versions: Record<string, number> }[] };
    const live = r.resolvers.filter((x) => !x.stale);
    return live.length >= 2 && live.every((x) => x.versions[ITEM] === nextVersion);
  }, 45_000, 500);

  process.stderr.write(`kill9-config: ${accepted.length} accepted (${acceptedBeforeKill} answered before the kill), ${conflicts} conflicts, ${errors} client errors; ` +
    `latest after restart v${latest} (max acknowledged v${maxAccepted}); topic versions 1..${Math.max(...versions)}\n`);
  await main.stop();
}, 300_000);
