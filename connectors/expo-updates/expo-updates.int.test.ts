/**
 * Issue 18, end to end on the real stack (Kafka, registry, DuckDB): the sample update bundle is
 * ingested with a shadow; Penumbra's Expo Updates answers are read with Expo's own multipart
 * parser and their signatures checked against an @expo/code-signing-certificates certificate;
 * asset hashes are recomputed from the served bytes; the split goes through the resolver
 * (deterministic per device, exposures counted); the shadow's launch asset runs in Hermes (or
 * Node's vm) with React Native's native side stubbed and its telemetry — relayed byte for byte
 * by the stub network layer — reaches Kafka and DuckDB; a rolled-back item answers
 * rollBackToEmbedded. One Penumbra for the file.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseMultipartMixedResponseAsync, type MultipartPart } from '@expo/multipart-body-parser';
import { convertCertificateToCertificatePEM, convertKeyPairToPEM, generateKeyPair, generateSelfSignedCodeSigningCertificate } from '@expo/code-signing-certificates';
import forge from 'node-forge';
import { startTestPenumbra, uploadForm, type TestPenumbra } from '../../test/penumbra-helpers.ts';
import { testConfig } from '../../test/penumbra-helpers.ts';
import { waitFor } from '../../test/wait-for.ts';
import { writeArchive } from '../../pipeline/shadowing/archive.ts';
import { manifestFromFiles } from '../../pipeline/shadowing/manifest.ts';
import { sampleExpoFiles } from '../../pipeline/mobile/sample/sample-item.ts';
import { parseSfvDictionary } from '../../pipeline/mobile/sfv.ts';
import { expoAssetHash, type ExpoManifest } from '../../pipeline/mobile/expo-manifest.ts';
import { verifyAssignment, parseKeyRing } from '../../pipeline/assignment-token/token.ts';
import { runInRnHost } from '../instrumentation-rn/host/host.ts';
import type { WarehouseFeatureHandle } from '../../pipeline/warehouse/feature.ts';

const ITEM = 'com.example.notes.app';
const SHADOW = 'fast-api';
const SHADOW_API = 'https://shadow-api.example.com/v1';
const KEYS = `k1:${randomBytes(32).toString('base64')}`;
let t: TestPenumbra;
let certificate: forge.pki.Certificate;
const BASE = { 'expo-protocol-version': '1', 'expo-platform': 'ios', 'expo-runtime-version': '1.0.0', accept: 'application/expo+json;q=0.9, application/json;q=0.8, multipart/mixed', 'expo-expect-signature': 'sig, keyid="main", alg="rsa-v1_5-sha256"' };

beforeAll(async () => {
  const keyPair = generateKeyPair();
  certificate = forge.pki.certificateFromPem(convertCertificateToCertificatePEM(generateSelfSignedCodeSigningCertificate({ keyPair, validityNotBefore: new Date(Date.now() - 60_000), validityNotAfter: new Date(Date.now() + 86400_000), commonName: 'Penumbra expo test' })));
  const { dataDir } = testConfig('expo-keys');
  const keyFile = path.join(dataDir, 'expo-signing.pem');
  writeFileSync(keyFile, convertKeyPairToPEM(keyPair).privateKeyPEM, { mode: 0o600 });
  t = await startTestPenumbra('expo-updates', { PENUMBRA_EXPO_SIGNING_KEY_FILE: keyFile, PENUMBRA_ASSIGNMENT_KEYS: KEYS });
  t.p.ctx.ingest.publicUrl = t.url;
  const files = sampleExpoFiles();
  const archive = await writeArchive({ manifest: manifestFromFiles(files), files }, 'zip');
  const shadow = { name: SHADOW, instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 }, endpoints: { api: SHADOW_API }, traffic: { percentage: 25, match: 'all', rules: [{ attribute: 'runtimeVersion', op: 'in', values: ['1.0.0'] }] } };
  // 25 % shadow, 25 % its control cohort (the original bundle with the RN library: issue 11), 50 % original.
  const res = await fetch(`${t.url}/api/v1/items`, { method: 'POST', headers: t.auth('operator'), body: uploadForm(archive, shadow) });
  expect(res.status).toBe(201);
}, 90_000);

afterAll(async () => {
  await t?.stop();
});

interface Answer { status: number; headers: Headers; part?: MultipartPart; body: Buffer }

async function ask(headers: Record<string, string>): Promise<Answer> {
  const res = await fetch(`${t.url}/api/v1/expo/${ITEM}/manifest`, { headers });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200 || !String(res.headers.get('content-type')).startsWith('multipart/mixed')) return { status: res.status, headers: res.headers, body };
  const parts = await parseMultipartMixedResponseAsync(res.headers.get('content-type')!, body);
  expect(parts).toHaveLength(1);
  return { status: res.status, headers: res.headers, part: parts[0], body };
}

function verified(body: string, header: string | undefined | string[]): boolean {
  const sig = parseSfvDictionary(String(header));
  if (!sig || sig.keyid !== 'main' || sig.alg !== 'rsa-v1_5-sha256') return false;
  const md = forge.md.sha256.create();
  md.update(body, 'utf8');
  return (certificate.publicKey as forge.pki.rsa.PublicKey).verify(md.digest().bytes(), forge.util.decode64(String(sig.sig)));
}

const manifests = new Map<string, ExpoManifest>();
async function deviceFor(variant: string): Promise<string> {
  for (let i = 0; i < 64; i++) {
    const device = `device-${i}`;
    const a = await ask({ ...BASE, 'penumbra-user-id': device });
    const m = JSON.parse(a.part!.body) as ExpoManifest;
    manifests.set(device, m);
    if (m.metadata.variant === variant) return device;
  }
  throw new Error(`no device got ${variant}`);
}

test('conforming, signed manifests per variant; assets hash as announced; the split is the resolver\'s', async () => {
  const shadowDevice = await deviceFor(SHADOW);
  const originalDevice = await deviceFor('original');
  const controlDevice = await deviceFor('control');
  const a = await ask({ ...BASE, 'penumbra-user-id': shadowDevice });
  expect(a.status).toBe(200);
  expect(a.headers.get('expo-protocol-version')).toBe('1');
  expect(a.headers.get('expo-sfv-version')).toBe('0');
  expect(a.headers.get('cache-control')).toBe('private, max-age=0');
  expect(parseSfvDictionary(a.headers.get('expo-manifest-filters')!)).toEqual({ item: ITEM, variant: SHADOW });
  expect(parseSfvDictionary(a.headers.get('expo-server-defined-headers')!)).toEqual({ 'penumbra-user-id': shadowDevice });
  expect(a.part!.name).toBe('manifest');
  expect(verified(a.part!.body, a.part!.headers.get('expo-signature'))).toBe(true);
  const m = JSON.parse(a.part!.body) as ExpoManifest;
  // The same device gets the same answer (deterministic split, id from the variant's bytes).
  expect(m.id).toBe(manifests.get(shadowDevice)!.id);
  expect(m.id).not.toBe(manifests.get(originalDevice)!.id);
  expect(m).toMatchObject({ runtimeVersion: '1.0.0', metadata: { item: ITEM, variant: SHADOW }, extra: { apiBase: SHADOW_API, penumbra: { userId: shadowDevice, variant: SHADOW } } });
  expect(manifests.get(originalDevice)!.extra).toMatchObject({ apiBase: 'https://api.example.com/v1' });
  // The token in extra is a valid assignment token for this device and variant.
  const token = (m.extra.penumbra as { token: string }).token;
  expect(verifyAssignment(token, parseKeyRing(KEYS), Date.now(), { itemId: ITEM, userId: shadowDevice, variant: SHADOW })).toMatchObject({ ok: true });
  // The control: the original's endpoints, instrumented, and a token that says whose control it is.
  const c = manifests.get(controlDevice)!;
  expect(c).toMatchObject({ metadata: { item: ITEM, variant: 'control' }, extra: { apiBase: 'https://api.example.com/v1', penumbra: { userId: controlDevice, variant: 'control', controlOf: SHADOW } } });
  expect(verifyAssignment((c.extra.penumbra as { token: string }).token, parseKeyRing(KEYS), Date.now(), { itemId: ITEM, userId: controlDevice, variant: 'control', controlOf: SHADOW })).toMatchObject({ ok: true });
  const controlBundle = await (await fetch(c.launchAsset.url)).text();
  expect(controlBundle.startsWith('globalThis.__PENUMBRA__=')).toBe(true);
  expect(controlBundle).not.toContain(SHADOW_API);
  expect(new Set([m.id, c.id, manifests.get(originalDevice)!.id]).size).toBe(3);

  // Assets: served bytes hash to what the manifest says (plain, gzip and br alike), immutable.
  for (const asset of [m.launchAsset, ...m.assets]) {
    for (const enc of ['identity', 'gzip', 'br']) {
      const res = await fetch(asset.url, { headers: { 'accept-encoding': enc } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(asset.contentType);
      expect(res.headers.get('cache-control')).toContain('immutable');
      expect(expoAssetHash(Buffer.from(await res.arrayBuffer()))).toBe(asset.hash);
    }
  }
  const bundle = await (await fetch(m.launchAsset.url)).text();
  expect(bundle.startsWith('globalThis.__PENUMBRA__=')).toBe(true);
  expect(bundle).toContain(SHADOW_API);

  // The client already runs it → noUpdateAvailable (signed directive).
  const same = await ask({ ...BASE, 'penumbra-user-id': shadowDevice, 'expo-current-update-id': m.id });
  expect(same.part!.name).toBe('directive');
  expect(JSON.parse(same.part!.body)).toEqual({ type: 'noUpdateAvailable' });
  expect(verified(same.part!.body, same.part!.headers.get('expo-signature'))).toBe(true);
  // Another runtime version: nothing it can run.
  const other = await ask({ ...BASE, 'penumbra-user-id': shadowDevice, 'expo-runtime-version': '2.0.0' });
  expect(JSON.parse(other.part!.body)).toEqual({ type: 'noUpdateAvailable' });
  // JSON structure: the manifest itself, signed in the response header.
  const json = await fetch(`${t.url}/api/v1/expo/${ITEM}/manifest`, { headers: { ...BASE, accept: 'application/expo+json', 'penumbra-user-id': shadowDevice } });
  expect(json.headers.get('content-type')).toBe('application/expo+json');
  const jsonBody = await json.text();
  expect(JSON.parse(jsonBody).id).toBe(m.id);
  expect(verified(jsonBody, json.headers.get('expo-signature') ?? undefined)).toBe(true);
  // Bad headers: the problem names the header.
  const bad = await fetch(`${t.url}/api/v1/expo/${ITEM}/manifest`, { headers: { ...BASE, 'expo-platform': 'web' } });
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as { errors: { path: string }[] }).errors[0].path).toBe('header/expo-platform');

  // Every manifest answer was an exposure through the resolver.
  const counts = await waitFor('exposures', async () => {
    const r = (await (await fetch(`${t.url}/api/v1/exposures?itemId=${ITEM}`, { headers: t.auth('viewer') })).json()) as { counts: Record<string, number> };
    return (r.counts[SHADOW] ?? 0) > 0 && (r.counts.original ?? 0) > 0 && (r.counts.control ?? 0) > 0 ? r.counts : undefined;
  }, 15_000);
  expect(counts[SHADOW] + counts.original + counts.control).toBeGreaterThanOrEqual(manifests.size);
}, 60_000);

test('the shadow bundle runs with React Native stubbed and its telemetry reaches Kafka and DuckDB', async () => {
  const device = await deviceFor(SHADOW);
  const answer = await ask({ ...BASE, 'penumbra-user-id': device });
  const m = JSON.parse(answer.part!.body) as ExpoManifest;
  const bundle = await (await fetch(m.launchAsset.url)).text();
  const identity = JSON.parse(/^globalThis\.__PENUMBRA__=(\{.*?\});/.exec(bundle)![1]) as { runtimeConfigUrl: string; telemetryUrl: string };
  const runtimeConfig = await (await fetch(identity.runtimeConfigUrl)).text();
  const run = await runInRnHost(bundle, {
    responses: [
      { prefix: identity.runtimeConfigUrl, status: 200, body: runtimeConfig },
      { prefix: identity.telemetryUrl, status: 202, body: '{}' },
      { prefix: `${SHADOW_API}/notes`, status: 200, body: JSON.stringify({ notes: [{ title: 'first' }] }) },
    ],
    actions: [{ at: 1000, kind: 'call', fn: 'openNote', args: [3] }, { at: 2000, kind: 'appState', state: 'background' }],
    untilMs: 4000,
    expoManifest: answer.part!.body,
  });
  const posts = run.records.filter((r) => r.kind === 'request' && r.url === identity.telemetryUrl);
  expect(posts.length).toBeGreaterThan(0);
  // The stub network layer relays what the bundle sent, byte for byte, to the real collector.
  for (const p of posts) {
    const res = await fetch(identity.telemetryUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: p.body! });
    expect(res.status).toBe(202);
  }
  const handle = t.p.handles.find((h) => typeof (h as WarehouseFeatureHandle).sink === 'function') as WarehouseFeatureHandle;
  const rows = await waitFor('RN telemetry in DuckDB', async () => {
    const sink = handle.sink();
    if (!sink) return undefined;
    const r = await sink.query(`SELECT type, name, variant FROM telemetry_events WHERE item_id = '${ITEM}' AND user_id = '${device}'`);
    const kinds = new Set(r.map((x) => `${x.type}:${x.name}`));
    return kinds.has('session:end') && kinds.has('request:api') && kinds.has('error:TypeError: note 3 is undefined') && kinds.has('usage:open-note') ? r : undefined;
  }, 20_000);
  expect(rows.every((r) => r.variant === SHADOW)).toBe(true);
  console.log(`RN shadow ran in ${run.engine}; ${posts.length} batches, ${rows.length} events stored`);
}, 60_000);

test('a ramp is monotone per device, and a changed shadow (PUT) is a new update id', async () => {
  const devices = Array.from({ length: 40 }, (_, i) => `ramp-${i}`);
  const variantOf = async () => Promise.all(devices.map(async (d) => JSON.parse((await ask({ ...BASE, 'penumbra-user-id': d })).part!.body) as ExpoManifest));
  const before = await variantOf();
  const cur = await fetch(`${t.url}/api/v1/items/${ITEM}/shadow-config`, { headers: t.auth('viewer') });
  const profile = (await cur.json()) as { profileVersion: number; shadows: Record<string, unknown>[] };
  const shadows = profile.shadows.map((s) => ({ ...s, endpoints: { api: 'https://shadow-api-2.example.com/v1' }, traffic: { ...(s.traffic as object), percentage: 45 } }));
  const put = await fetch(`${t.url}/api/v1/items/${ITEM}/shadow-config`, { method: 'PUT', headers: { ...t.auth('operator'), 'content-type': 'application/json', 'if-match': `"${profile.profileVersion}"` }, body: JSON.stringify({ shadows }) });
  expect(put.status).toBe(200);
  const after = await waitFor('the new profile served', async () => {
    const a = await variantOf();
    return a.some((m) => m.extra.apiBase === 'https://shadow-api-2.example.com/v1') ? a : undefined;
  }, 10_000);
  for (const [i, m] of before.entries()) {
    // Nobody on the shadow (or its control) at 25 % leaves it at 45 %; the shadow's bytes changed,
    // so its id did; the control's (the original, instrumented) did not.
    if (m.metadata.variant === SHADOW) {
      expect(after[i].metadata.variant).toBe(SHADOW);
      expect(after[i].id).not.toBe(m.id);
    } else if (m.metadata.variant === 'control') {
      expect(after[i].metadata.variant).toBe('control');
      expect(after[i].id).toBe(m.id);
    } else if (after[i].metadata.variant === 'original') expect(after[i].id).toBe(m.id);
  }
  expect(after.filter((m) => m.metadata.variant === SHADOW).length).toBeGreaterThan(before.filter((m) => m.metadata.variant === SHADOW).length);
}, 30_000);

test('the fast path in front of Express answers exactly what the Express route answers', async () => {
  // A query string makes the fast path decline (router.ts), so `?via=express` is the Express route.
  const device = 'device-fastpath-1';
  const headersOf = (h: Headers) => Object.fromEntries([...h.entries()].filter(([k]) => !['date', 'x-request-id', 'content-length', 'content-type', 'keep-alive', 'connection'].includes(k)));
  const first = await ask({ ...BASE, 'penumbra-user-id': device }); // the variant archives are unpacked after this
  const running = (JSON.parse(first.part!.body) as ExpoManifest).id;
  // A manifest, then noUpdateAvailable for the device already running it.
  for (const [extra, part] of [[{}, 'manifest'], [{ 'expo-current-update-id': running }, 'directive']] as const) {
    const h = { ...BASE, 'penumbra-user-id': device, ...extra };
    const fast = await fetch(`${t.url}/api/v1/expo/${ITEM}/manifest`, { headers: h });
    const slow = await fetch(`${t.url}/api/v1/expo/${ITEM}/manifest?via=express`, { headers: h });
    expect(fast.status).toBe(200);
    expect(slow.status).toBe(200);
    expect(headersOf(fast.headers)).toEqual(headersOf(slow.headers));
    const [f, s] = await Promise.all([fast, slow].map(async (r) => (await parseMultipartMixedResponseAsync(r.headers.get('content-type')!, Buffer.from(await r.arrayBuffer())))[0]));
    expect([f.name, s.name]).toEqual([part, part]);
    expect(verified(f.body, f.headers.get('expo-signature'))).toBe(true);
    // Same bytes but for the token's issue time (a second may pass between the two requests).
    const strip = (body: string) => body.replace(/"token":"[^"]+","tokenExpiresAt":\d+/, '"token":"…"');
    expect(strip(f.body)).toBe(strip(s.body));
  }
  // Invalid headers are the Express route's: the same 400 problem naming the header.
  const bad = await fetch(`${t.url}/api/v1/expo/${ITEM}/manifest`, { headers: { ...BASE, 'expo-platform': 'web' } });
  expect(bad.status).toBe(400);
  expect(JSON.stringify(await bad.json())).toContain('header/expo-platform');
});

test('a rolled-back item sends apps back to their embedded update', async () => {
  const device = await deviceFor(SHADOW);
  const current = manifests.get(device)!.id;
  const rb = await fetch(`${t.url}/api/v1/items/${ITEM}/rollback`, { method: 'POST', headers: { ...t.auth('operator'), 'content-type': 'application/json' }, body: '{}' });
  expect(rb.status).toBe(200);
  const a = await waitFor('the rollback directive', async () => {
    const r = await ask({ ...BASE, 'penumbra-user-id': device, 'expo-current-update-id': current, 'expo-embedded-update-id': 'embedded-1' });
    return r.part?.name === 'directive' && JSON.parse(r.part.body).type === 'rollBackToEmbedded' ? r : undefined;
  }, 10_000);
  expect(JSON.parse(a.part!.body).parameters.commitTime).toMatch(/^\d{4}-\d\d-\d\dT/);
  expect(verified(a.part!.body, a.part!.headers.get('expo-signature'))).toBe(true);
  expect(parseSfvDictionary(a.headers.get('expo-manifest-filters')!)).toEqual({ item: ITEM });
  // Once on its embedded update, nothing more to do.
  const done = await ask({ ...BASE, 'penumbra-user-id': device, 'expo-current-update-id': 'embedded-1', 'expo-embedded-update-id': 'embedded-1' });
  expect(JSON.parse(done.part!.body)).toEqual({ type: 'noUpdateAvailable' });
}, 30_000);
