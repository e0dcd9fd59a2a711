/**
 * Golden cases of the pure parts (platform names, wheel choice, the S3 secret, the bucket
 * listing → view files), the pin (the extension must match DuckDB's exact version), and the
 * fetch's own logic against a local HTTP server serving a PEP 691 index and a wheel built here:
 * sha256 checked (a mismatch writes nothing), the member extracted, a second call does no network.
 * The real PyPI wheel is fetched and loaded by the integration setup (s3.int.test.ts reads the
 * bucket with it).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import yazl from 'yazl';
import type { S3Settings } from '../../pipeline/config/config.ts';
import { s3TableFiles } from '../duckdb-sink/query.ts';
import { ensureHttpfsExtension } from './fetch.ts';
import { completeMarker, DUCKDB_VERSION, extensionPlatform, httpfsCachePath, httpfsExtensionPath, pickWheel, s3SecretSql, warehouseS3Url, wheelMember, type IndexFile } from './httpfs.ts';

const linux = { duckdb: 'linux_amd64', wheelTag: 'manylinux2014_x86_64' };
const sha = (c: string) => c.repeat(64);

test('DUCKDB_VERSION is the installed DuckDB, and package.json pins @duckdb/node-api exactly to it', async () => {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  const [{ v }] = (await c.runAndReadAll('SELECT version() AS v')).getRowObjectsJS();
  c.closeSync();
  db.closeSync();
  expect(v).toBe(`v${DUCKDB_VERSION}`);
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> };
  expect(pkg.dependencies['@duckdb/node-api']).toMatch(new RegExp(`^${DUCKDB_VERSION.replace(/\./g, '\\.')}-r\\.\\d+$`));
});

test('the Python side pins the same DuckDB: notebooks/requirements.txt (duckdb and the httpfs wheel), penumbra_warehouse.py, ensure-test-deps.sh', () => {
  const read = (f: string) => readFileSync(new URL(`../../${f}`, import.meta.url), 'utf8');
  const req = read('notebooks/requirements.txt');
  expect(req).toMatch(new RegExp(`^duckdb==${DUCKDB_VERSION.replace(/\./g, '\\.')}$`, 'm'));
  expect(req).toMatch(new RegExp(`^duckdb-extension-httpfs==${DUCKDB_VERSION.replace(/\./g, '\\.')}$`, 'm'));
  expect(read('notebooks/penumbra_warehouse.py')).toContain(`HTTPFS_DUCKDB_VERSION = "${DUCKDB_VERSION}"`);
  expect(read('infra/ensure-test-deps.sh')).toContain(`duckdb.__version__ != '${DUCKDB_VERSION}'`);
  expect(read('test/requirements.txt')).not.toMatch(/^duckdb[<>=]/m); // one pin, in notebooks/requirements.txt
});

test('extensionPlatform: DuckDB platform and wheel tag per OS/arch; null where PyPI has no wheel', () => {
  expect(extensionPlatform('linux', 'x64')).toEqual(linux);
  expect(extensionPlatform('linux', 'arm64')).toEqual({ duckdb: 'linux_arm64', wheelTag: 'manylinux2014_aarch64' });
  expect(extensionPlatform('darwin', 'arm64')).toEqual({ duckdb: 'osx_arm64', wheelTag: 'macosx_11_0_arm64' });
  expect(extensionPlatform('win32', 'x64')).toEqual({ duckdb: 'windows_amd64', wheelTag: 'win_amd64' });
  expect(extensionPlatform('win32', 'arm64')).toBeNull();
  expect(extensionPlatform('freebsd', 'x64')).toBeNull();
  expect(httpfsCachePath('/c', linux)).toBe(path.join('/c', 'duckdb-extensions', `v${DUCKDB_VERSION}`, 'linux_amd64', 'httpfs.duckdb_extension'));
  expect(wheelMember('1.5.5')).toBe('duckdb_extension_httpfs/extensions/v1.5.5/httpfs.duckdb_extension');
});

test('pickWheel: the exact version and tag, with a sha256, not yanked', () => {
  const f = (filename: string, extra: Partial<IndexFile> = {}): IndexFile => ({ filename, url: `https://files/${filename}`, hashes: { sha256: sha('a') }, ...extra });
  const files = [
    f('duckdb_extension_httpfs-1.5.4-py3-none-manylinux2014_x86_64.whl'),
    f('duckdb_extension_httpfs-1.5.5-py3-none-manylinux2014_aarch64.whl'),
    f('duckdb_extension_httpfs-1.5.5-py3-none-manylinux2014_x86_64.whl'),
    f('duckdb_extension_httpfs-1.5.5-py3-none-win_amd64.whl', { yanked: 'broken' }),
    f('duckdb_extension_httpfs-1.5.5-py3-none-macosx_11_0_arm64.whl', { hashes: {} }),
  ];
  expect(pickWheel(files, linux, '1.5.5')?.filename).toBe('duckdb_extension_httpfs-1.5.5-py3-none-manylinux2014_x86_64.whl');
  expect(pickWheel(files, { duckdb: 'windows_amd64', wheelTag: 'win_amd64' }, '1.5.5')).toBeNull();
  expect(pickWheel(files, { duckdb: 'osx_arm64', wheelTag: 'macosx_11_0_arm64' }, '1.5.5')).toBeNull();
  expect(pickWheel(files, linux, '1.5.6')).toBeNull();
});

test('s3SecretSql: endpoint without scheme, SSL from the scheme, path or vhost style, keys quoted', () => {
  const base: S3Settings = { endpoint: 'http://127.0.0.1:8333', local: true, bucket: 'penumbra', region: 'us-east-1', accessKeyId: null, secretAccessKey: null, prefix: '', forcePathStyle: true };
  expect(s3SecretSql(base)).toBe(
    "CREATE OR REPLACE SECRET penumbra_s3 (TYPE s3, ENDPOINT '127.0.0.1:8333', USE_SSL false, URL_STYLE 'path', REGION 'us-east-1', SCOPE 's3://penumbra/', KEY_ID 'penumbra-local', SECRET 'penumbra-local')",
  );
  expect(s3SecretSql({ ...base, endpoint: 'https://s3.eu-west-1.amazonaws.com', local: false, region: 'eu-west-1', forcePathStyle: false, accessKeyId: "AK'I", secretAccessKey: 'sec' })).toBe(
    "CREATE OR REPLACE SECRET penumbra_s3 (TYPE s3, ENDPOINT 's3.eu-west-1.amazonaws.com', USE_SSL true, URL_STYLE 'vhost', REGION 'eu-west-1', SCOPE 's3://penumbra/', KEY_ID 'AK''I', SECRET 'sec')",
  );
  // An endpoint of its own without keys: no KEY_ID (DuckDB's unsigned requests).
  expect(s3SecretSql({ ...base, local: false })).not.toContain('KEY_ID');
  expect(warehouseS3Url({ bucket: 'b', prefix: 'lake/' })).toBe('s3://b/lake/warehouse/');
});

test('s3TableFiles: one listing split per table; Hive partitions through liveParts; staging and unknown tables left out', () => {
  const url = 's3://b/lake/warehouse/';
  const layouts = (t: string) => (t === 'items' ? { hive: false, glob: 'items/*.parquet', columns: [] } : t === 'telemetry_events' ? { hive: true, glob: 'telemetry_events/*/*.parquet', columns: [] } : undefined);
  const files = s3TableFiles(url, [
    `${url}items/data_0.parquet`,
    `${url}telemetry_events/date=2026-01-02/part-5-5_0.parquet`,
    `${url}telemetry_events/date=2026-01-01/part-1-1_0.parquet`,
    `${url}telemetry_events/date=2026-01-01/part-2-2_0.parquet`,
    // a compaction's merged part: its inputs 1 and 2 are left out
    `${url}telemetry_events/date=2026-01-01/part-1-2_c.parquet`,
    `${url}telemetry_events/.staging/x.parquet`,
    `${url}telemetry_events/date=2026-01-01/.tmp/part-9-9_0.parquet`,
    `${url}unknown/data_0.parquet`,
    `${url}items/nested/data_0.parquet`,
    's3://b/other/items/data_0.parquet',
  ], layouts);
  expect(Object.fromEntries(files)).toEqual({
    items: [`${url}items/data_0.parquet`],
    telemetry_events: [`${url}telemetry_events/date=2026-01-01/part-1-2_c.parquet`, `${url}telemetry_events/date=2026-01-02/part-5-5_0.parquet`],
  });
});

describe('ensureHttpfsExtension against a local index', () => {
  let server: Server;
  let index: string;
  let dir: string;
  const member = wheelMember('9.9.9');
  const extBytes = Buffer.from('not really an extension, but the bytes we put in the wheel');
  let wheel: Buffer;
  let advertised: string;
  const requests: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'httpfs-fetch-'));
    const zip = new yazl.ZipFile();
    zip.addBuffer(Buffer.from('Wheel-Version: 1.0\n'), 'duckdb_extension_httpfs-9.9.9.dist-info/WHEEL');
    zip.addBuffer(extBytes, member);
    zip.end();
    const chunks: Buffer[] = [];
    for await (const c of zip.outputStream) chunks.push(c as Buffer);
    wheel = Buffer.concat(chunks);
    advertised = createHash('sha256').update(wheel).digest('hex');
    server = createServer((req, res) => {
      requests.push(req.url ?? '');
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      if (req.url === '/simple/duckdb-extension-httpfs/') {
        res.setHeader('content-type', 'application/vnd.pypi.simple.v1+json');
        res.end(JSON.stringify({ files: [{ filename: 'duckdb_extension_httpfs-9.9.9-py3-none-manylinux2014_x86_64.whl', url: `${base}/w.whl`, hashes: { sha256: advertised } }] }));
      } else if (req.url === '/w.whl') res.end(wheel);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    index = `http://127.0.0.1:${(server.address() as AddressInfo).port}/simple`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  test('a wheel whose sha256 differs from the index is refused and nothing is written', async () => {
    const real = advertised;
    advertised = sha('0');
    try {
      await expect(ensureHttpfsExtension(dir, { indexUrl: index, platform: linux, version: '9.9.9' })).rejects.toThrow(/sha256 .* the index says 0{64}: refused/);
    } finally {
      advertised = real;
    }
    expect(existsSync(httpfsCachePath(dir, linux, '9.9.9'))).toBe(false);
  });

  test('fetch, verify, extract; then cached without a request; unsupported platforms are said, not fetched', async () => {
    const r = await ensureHttpfsExtension(dir, { indexUrl: index, platform: linux, version: '9.9.9' });
    const dest = httpfsCachePath(dir, linux, '9.9.9');
    expect(r).toMatchObject({ status: 'fetched', path: dest, sha256: advertised });
    expect(readFileSync(dest).equals(extBytes)).toBe(true);
    expect(readFileSync(completeMarker(dest), 'utf8')).toContain(`sha256=${advertised}`);
    const n = requests.length;
    expect(await ensureHttpfsExtension(dir, { indexUrl: index, platform: linux, version: '9.9.9' })).toMatchObject({ status: 'cached', path: dest });
    expect(requests.length).toBe(n);
    expect(await ensureHttpfsExtension(dir, { indexUrl: index, platform: null, version: '9.9.9' })).toMatchObject({ status: 'unsupported' });
    expect(await ensureHttpfsExtension(dir, { indexUrl: index, platform: { duckdb: 'osx_arm64', wheelTag: 'macosx_11_0_arm64' }, version: '9.9.9' })).toMatchObject({ status: 'unsupported', reason: expect.stringContaining('macosx_11_0_arm64') });
    // Only the current version's path counts as present.
    expect(httpfsExtensionPath(dir, linux)).toBeNull();
  });
});
