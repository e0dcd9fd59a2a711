/**
 * Ingest end to end on the real stack: REST upload, the Kafka ingest topic and the CLI all give
 * byte-identical shadows; hostile archives are refused with problem+json and store nothing;
 * the catalog, profiles and artifacts survive an API restart; old versions stay addressable.
 * The control arm's artifact (the original + the library, no rewrites) is built alongside.
 */
import { readdirSync, existsSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import yazl from 'yazl';
import { startTestPenumbra, uploadForm, TOKENS, type TestPenumbra } from '../../test/penumbra-helpers.ts';
import { fixtureArchive, fixtureTree, goldenConfig } from '../shadowing/fixtures.ts';
import { readArchiveBuffer } from '../shadowing/archive.ts';
import { rawZip, zeroDeflate, zeroCrc } from '../shadowing/test-archives.ts';

/** Run the CLI asynchronously: it talks to a server living in this very process. */
function runCli(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/penumbra.js', ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
let t: TestPenumbra;
const PUBLIC = 'http://penumbra.test:7070';

beforeAll(async () => {
  t = await startTestPenumbra('ingest', { PENUMBRA_PUBLIC_URL: PUBLIC });
});
afterAll(async () => {
  await t?.stop();
});

function blobCount(dataDir: string): number {
  const dir = path.join(dataDir, 'blobs');
  if (!existsSync(dir)) return 0;
  return readdirSync(dir).reduce((n, d) => n + readdirSync(path.join(dir, d)).filter((f) => !f.endsWith('.tmp')).length, 0);
}

async function upload(archive: Buffer, cfg?: unknown, role: keyof typeof TOKENS = 'operator') {
  return fetch(`${t.url}/api/v1/items`, { method: 'POST', headers: t.auth(role), body: uploadForm(archive, cfg) });
}

test('REST ingest stores the original unchanged and a shadow with rewritten endpoints', async () => {
  const archive = await fixtureArchive('api-refs', 'zip');
  const cfg = goldenConfig('api-refs', fixtureTree('api-refs'));
  const res = await upload(archive, cfg);
  expect(res.status).toBe(201);
  const body = (await res.json()) as { item: { itemId: string; versions: { variants: { name: string; sha256: string; replacements: number }[] }[] }; reports: Record<string, { totalReplacements: number }> };
  const [orig, shadow, control] = body.item.versions[0].variants;
  expect(orig.name).toBe('original');
  expect(control).toMatchObject({ name: 'control', replacements: 0 });
  expect(orig.sha256).toBe(sha(archive));
  expect(shadow.name).toBe('checkout-v2');
  expect(shadow.replacements).toBeGreaterThan(0);
  expect(body.reports['checkout-v2'].totalReplacements).toBe(shadow.replacements);

  const dl = await fetch(`${t.url}/api/v1/items/${body.item.itemId}/artifacts/original`);
  expect(dl.status).toBe(200);
  expect(dl.headers.get('etag')).toBe(`"${orig.sha256}"`);
  expect(sha(Buffer.from(await dl.arrayBuffer()))).toBe(orig.sha256);
  const again = await fetch(`${t.url}/api/v1/items/${body.item.itemId}/artifacts/original`, { headers: { 'if-none-match': `"${orig.sha256}"` } });
  expect(again.status).toBe(304);

  const shadowBytes = Buffer.from(await (await fetch(`${t.url}/api/v1/items/${body.item.itemId}/artifacts/checkout-v2`)).arrayBuffer());
  const tree = await readArchiveBuffer(shadowBytes);
  const html = tree.files.get('index.html')!.toString('utf8');
  expect(html).toContain('https://shadow-api.example.com/v1');
  expect(html).toContain('__penumbra/penumbra-instrument-');
  expect(html).toContain(`${PUBLIC}/api/v1/items/${body.item.itemId}/runtime-config?variant=checkout-v2`);

  // The control: the original's files and endpoints, with the library and identity injected.
  const controlBytes = Buffer.from(await (await fetch(`${t.url}/api/v1/items/${body.item.itemId}/artifacts/control`)).arrayBuffer());
  expect(sha(controlBytes)).toBe(control.sha256);
  const ctree = await readArchiveBuffer(controlBytes);
  const ohtml = (await readArchiveBuffer(archive)).files.get('index.html')!.toString('utf8');
  const chtml = ctree.files.get('index.html')!.toString('utf8');
  expect(chtml).not.toContain('https://shadow-api.example.com/v1');
  expect(chtml.replace(/<script>window\.__PENUMBRA__=.*?<\/script><script src="[^"]*" integrity="[^"]*" crossorigin="anonymous"><\/script>/, '')).toBe(ohtml);
  expect(chtml).toContain(`${PUBLIC}/api/v1/items/${body.item.itemId}/runtime-config?variant=control`);
  expect(body.reports.control.totalReplacements).toBe(0);
  expect((await fetch(`${t.url}/d/${body.item.itemId}/3.0.0/control/index.html`)).status).toBe(200);
  // Its runtime config: the shadow's points and sampling, the original's endpoints.
  const rc = (await (await fetch(`${t.url}/api/v1/items/${body.item.itemId}/runtime-config?variant=control&controlOf=checkout-v2`)).json()) as { enabled: boolean; controlOf: string; points: unknown[]; endpoints: Record<string, string> };
  const src = (await (await fetch(`${t.url}/api/v1/items/${body.item.itemId}/runtime-config?variant=checkout-v2`)).json()) as { points: unknown[]; endpoints: Record<string, string> };
  expect(rc).toMatchObject({ enabled: true, controlOf: 'checkout-v2', points: src.points });
  expect(rc.endpoints).toEqual((await readArchiveBuffer(archive)).manifest.endpoints);
  expect(src.endpoints).not.toEqual(rc.endpoints);

  // The unpacked CDN-like origin: right content type, no escaping the variant folder.
  const page = await fetch(`${t.url}/d/${body.item.itemId}/3.0.0/checkout-v2/index.html`);
  expect(page.status).toBe(200);
  expect(page.headers.get('content-type')).toMatch(/text\/html/);
  for (const evil of ['..%2F..%2Fmanifest.json', '%2E%2E/%2E%2E/etc/passwd', '']) {
    const r = await fetch(`${t.url}/d/${body.item.itemId}/3.0.0/checkout-v2/${evil}`);
    if (evil === '') expect(r.status).toBe(200); // the entry page
    else expect(r.status).toBe(404);
  }
});

test('the same item and config through REST, the ingest topic and the CLI give byte-identical shadows', async () => {
  // Each way in runs against its own fresh Penumbra (same public URL), so each ingest is the
  // item's first (profile version 1) and the embedded identity is the same.
  const archive = await fixtureArchive('multi-page-web', 'zip');
  const cfg = goldenConfig('multi-page-web', fixtureTree('multi-page-web'));
  const shadowSha = (p: TestPenumbra) => p.p.ctx.catalog.find('com.example.multipage')?.versions[0]?.variants.find((x) => x.name === 'checkout-v2')?.sha256;
  const rest = await fetch(`${t.url}/api/v1/items`, { method: 'POST', headers: t.auth('operator'), body: uploadForm(archive, cfg) });
  expect(rest.status).toBe(201);
  const restSha = shadowSha(t)!;
  expect(restSha).toMatch(/^[0-9a-f]{64}$/);

  const viaTopic = await startTestPenumbra('ingest-topic', { PENUMBRA_PUBLIC_URL: PUBLIC });
  const viaCli = await startTestPenumbra('ingest-cli', { PENUMBRA_PUBLIC_URL: PUBLIC });
  try {
    const requestId = randomUUID();
    await viaTopic.p.ctx.producer.send([{ topic: viaTopic.cfg.topics.itemsIngest, key: 'com.example.multipage', value: { requestId, itemId: 'com.example.multipage', archive, archiveRef: null, shadowConfigJson: JSON.stringify(cfg), submittedBy: 'data-eng', submittedAt: Date.now(), proactive: null, rolloutJson: null } }]);
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline && !shadowSha(viaTopic)) await new Promise((r) => setTimeout(r, 100));
    expect(viaTopic.p.ctx.catalog.find('com.example.multipage')!.versions[0].requestId).toBe(requestId);
    expect(shadowSha(viaTopic)).toBe(restSha);

    const dir = mkdtempSync(path.join(tmpdir(), 'cli-'));
    writeFileSync(path.join(dir, 'item.zip'), archive);
    writeFileSync(path.join(dir, 'cfg.json'), JSON.stringify(cfg));
    const cli = await runCli(['ingest', path.join(dir, 'item.zip'), '--shadow', path.join(dir, 'cfg.json'), '--url', viaCli.url, '--token', TOKENS.operator], { PENUMBRA_DATA_DIR: viaCli.dataDir });
    expect(cli.stderr).toBe('');
    expect(cli.status).toBe(0);
    expect(cli.stdout).toContain(restSha);
    expect(shadowSha(viaCli)).toBe(restSha);

    // A refused topic request becomes a DLQ record with the reason, and the CLI exits non-zero.
    await viaTopic.p.ctx.producer.send([{ topic: viaTopic.cfg.topics.itemsIngest, key: 'x', value: { requestId: 'bad-1', itemId: 'com.example.multipage', archive: Buffer.from('garbage'), archiveRef: null, shadowConfigJson: null, submittedBy: 'data-eng', submittedAt: Date.now(), proactive: null, rolloutJson: null } }]);
    const letters: string[] = [];
    const c = viaTopic.p.ctx.kafka.consumer({ groupId: `dlq-${randomUUID()}` });
    await c.connect();
    await c.subscribe({ topic: viaTopic.cfg.topics.dlq, fromBeginning: true });
    await new Promise<void>((resolve) => {
      void c.run({ eachMessage: async ({ message }) => {
        const d = await viaTopic.p.ctx.codec.decode('dead-letter', message.value);
        letters.push(d.reason);
        if (d.reason.includes('bad-1')) resolve();
      } });
    });
    await c.disconnect();
    expect(letters.find((l) => l.includes('bad-1'))).toMatch(/unsupported-format/);
    writeFileSync(path.join(dir, 'bad.zip'), 'not an archive');
    const bad = await runCli(['ingest', path.join(dir, 'bad.zip'), '--url', viaCli.url, '--token', TOKENS.operator]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/unsupported-format/);
  } finally {
    await viaTopic.stop();
    await viaCli.stop();
  }
}, 90000);

describe('hostile and invalid input is refused with problem+json and stores nothing', () => {
  async function zipOf(entries: [string, string | Buffer][]): Promise<Buffer> {
    const z = new yazl.ZipFile();
    for (const [n, c] of entries) z.addBuffer(Buffer.isBuffer(c) ? c : Buffer.from(c), n);
    z.end();
    const chunks: Buffer[] = [];
    for await (const c of z.outputStream) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }
  const manifest = JSON.stringify({ id: 'com.example.evil', version: '1.0.0', name: 'Evil', entry: 'index.html' });

  test.each([
    ['missing manifest', async () => zipOf([['index.html', '<html></html>']]), 'manifest-missing'],
    ['entry missing', async () => zipOf([['manifest.json', manifest]]), 'entry-missing'],
    ['garbage bytes', async () => Buffer.from('this is not an archive at all'), 'unsupported-format'],
    ['truncated zip', async () => (await fixtureArchive('multi-page-web', 'zip')).subarray(0, 200), 'corrupt'],
  ])('%s', async (_name, make, reason) => {
    const before = blobCount(t.dataDir);
    const res = await upload(await make());
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const p = (await res.json()) as { reason: string; type: string; detail: string };
    expect(p.reason).toBe(reason);
    expect(blobCount(t.dataDir)).toBe(before);
  });

  test('a 1 GB-expanding bomb is refused quickly while the server keeps serving', async () => {
    // 1 GiB of zeros as raw deflate (~1 MiB), with honest sizes in the headers.
    const bomb = rawZip([
      { name: 'manifest.json', data: Buffer.from(manifest) },
      { name: 'index.html', data: Buffer.from('<html></html>') },
      { name: 'zeros.bin', method: 8, compressed: zeroDeflate(1024), declaredSize: 1024 * 1024 * 1024, crc: zeroCrc(1024) },
    ]);
    const before = blobCount(t.dataDir);
    const t0 = Date.now();
    const pending = upload(bomb);
    const health = await fetch(`${t.url}/api/v1/health`);
    expect(health.status).toBe(200);
    const res = await pending;
    expect(res.status).toBe(422);
    expect(((await res.json()) as { reason: string }).reason).toMatch(/compression-ratio|too-large/);
    expect(Date.now() - t0).toBeLessThan(15000);
    expect(blobCount(t.dataDir)).toBe(before);
  }, 60000);

  test('a shadow config naming an endpoint the manifest lacks names the field path', async () => {
    const archive = await fixtureArchive('api-refs', 'zip');
    const res = await upload(archive, { name: 'x', endpoints: { nope: 'https://a.example' }, traffic: { percentage: 200 } });
    expect(res.status).toBe(422);
    const p = (await res.json()) as { errors: { path: string }[] };
    const paths = p.errors.map((e) => e.path);
    expect(paths).toContain('shadowConfig/0/endpoints/nope');
    expect(paths.some((x) => x.startsWith('shadowConfig/0/traffic/percentage'))).toBe(true);
  });

  test('a viewer may not upload and no token is 401', async () => {
    const archive = await fixtureArchive('api-refs', 'zip');
    expect((await upload(archive, undefined, 'viewer')).status).toBe(403);
    expect((await fetch(`${t.url}/api/v1/items`, { method: 'POST', body: uploadForm(archive) })).status).toBe(401);
  });
});

test('a new version keeps the old one addressable and carries the shadow config over', async () => {
  const tree = fixtureTree('js-entry');
  const v1 = await fixtureArchive('js-entry', 'tar.gz');
  const cfg = goldenConfig('js-entry', tree);
  expect((await upload(v1, cfg)).status).toBe(201);
  // Version 2 of the same item: same files, bumped manifest version, no shadowConfig field.
  const { writeArchive } = await import('../shadowing/archive.ts');
  const files = new Map(tree.files);
  files.set('manifest.json', Buffer.from(JSON.stringify({ ...tree.manifest, version: '2.4.0' })));
  const v2 = await writeArchive({ manifest: { ...tree.manifest, version: '2.4.0' }, files }, 'tar.gz');
  // Explicitly not proactive ([#13]: by default a new version of an active item goes out as a
  // version shadow instead — test/predictive.int.test.ts).
  const fd = uploadForm(v2);
  fd.append('proactive', 'false');
  const res = await fetch(`${t.url}/api/v1/items`, { method: 'POST', headers: t.auth('operator'), body: fd });
  expect(res.status).toBe(201);
  const item = (await (await fetch(`${t.url}/api/v1/items/com.example.jsentry`, { headers: t.auth('viewer') })).json()) as { latestVersion: string; versions: { version: string; variants: { name: string }[] }[] };
  expect(item.latestVersion).toBe('2.4.0');
  expect(item.versions.map((v) => v.version)).toEqual(['2.3.1-beta.1', '2.4.0']);
  expect(item.versions[1].variants.map((v) => v.name)).toEqual(['original', 'checkout-v2', 'control']);
  const old = await fetch(`${t.url}/api/v1/items/com.example.jsentry/artifacts/checkout-v2?version=2.3.1-beta.1`);
  expect(old.status).toBe(200);
  expect(old.headers.get('cache-control')).toContain('immutable');
});

test('after an API restart the catalog, profiles and artifacts are served as before', async () => {
  const before = (await (await fetch(`${t.url}/api/v1/items`, { headers: t.auth('viewer') })).json()) as { items: unknown[] };
  const cfgBefore = await (await fetch(`${t.url}/api/v1/items/com.example.apirefs/shadow-config`, { headers: t.auth('viewer') })).json();
  await t.stop();
  t = await startTestPenumbra('ingest', { PENUMBRA_PUBLIC_URL: PUBLIC, PENUMBRA_DATA_DIR: t.dataDir, PENUMBRA_TOPIC_PREFIX: t.prefix });
  const after = (await (await fetch(`${t.url}/api/v1/items`, { headers: t.auth('viewer') })).json()) as { items: unknown[] };
  expect(after.items).toEqual(before.items);
  expect(await (await fetch(`${t.url}/api/v1/items/com.example.apirefs/shadow-config`, { headers: t.auth('viewer') })).json()).toEqual(cfgBefore);
  expect((await fetch(`${t.url}/api/v1/items/com.example.apirefs/artifacts/checkout-v2`)).status).toBe(200);
});
