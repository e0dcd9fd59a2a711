/**
 * The S3-compatible object store against a real server: the local stack's S3Proxy (filesystem
 * backend) that test/global-setup.ts reuses or starts (S3_TEST_ENDPOINT; any S3-compatible
 * endpoint works). One bucket per run of this file.
 *  - S3BlobStore keeps the BlobStore contract (content-addressed, verified, missing → NotFound);
 *  - a Penumbra configured with PENUMBRA_BLOB_STORE=s3 stores an ingested item's archives in the
 *    bucket and serves them back;
 *  - the warehouse sink publishes its Parquet export to the bucket in the Hive layout, which
 *    DuckDB reads with a glob and hive_partitioning (copied down as they are, and — with the
 *    httpfs extension the test setup fetched from PyPI — straight from s3://, row for row what
 *    the warehouse holds);
 *  - with PENUMBRA_PARQUET_READ=s3 and no httpfs extension (an empty PENUMBRA_CACHE_DIR) a
 *    Penumbra without any local export answers the old metric windows of GET …/metrics from the
 *    bucket through the synced cache folder (connectors/parquet-source), and a pass follows
 *    deletions and same-name replacements;
 *  - with the extension, a Penumbra reads the bucket directly (health source 'httpfs', no cache
 *    folder): metrics windows, queryParquet and the segment sandbox, and sees a change at once.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { DuckDBInstance } from '@duckdb/node-api';
import type { S3Settings } from '../../pipeline/config/config.ts';
import { NotFoundError, ValidationError } from '../../pipeline/errors.ts';
import { loadConfig, topicNames, type PenumbraConfig } from '../../pipeline/config/config.ts';
import { createKafka, AvroProducer } from '../../pipeline/kafka/client.ts';
import { provisionAll } from '../../pipeline/kafka/setup.ts';
import { AvroCodec } from '../../pipeline/kafka/registry.ts';
import { createWarehouseSink } from '../duckdb-sink/sink.ts';
import * as fx from '../duckdb-sink/fixtures.ts';
import { startTestPenumbra, type TestPenumbra } from '../../test/penumbra-helpers.ts';
import { ingestFixture, waitFor } from '../../pipeline/resolver/test-support.ts';
import { connectS3, ensureBucket, getObject, S3BlobStore, S3ExportMirror, type S3Connection } from './s3.ts';
import { sha256Hex } from './blob-store.ts';
import { queryParquet } from '../duckdb-sink/query.ts';
import { readerParquetDir, readerParquetSource, S3ParquetCache } from '../parquet-source/source.ts';
import { parquetCaches } from '../parquet-source/feature.ts';
import { loadHttpfs, s3SecretSql } from '../duckdb-httpfs/httpfs.ts';
import { Sandbox } from '../../pipeline/segments/sandbox.ts';
import { requires } from '../../test/requires.ts';

const endpoint = process.env.S3_TEST_ENDPOINT;
const bucket = `t-s3-${randomUUID().slice(0, 8)}`;
const settings = (prefix: string): S3Settings => ({ endpoint: endpoint!, local: true, bucket, region: 'us-east-1', accessKeyId: null, secretAccessKey: null, prefix, forcePathStyle: true });
const dirs: string[] = [];
let conn: S3Connection;
/** What the export test left for the httpfs test: the warehouse's rows as the sink held them, the bucket's state. */
let exported: { events: { id: string; variant: string; d: string }[]; windows: { ws: number; events: number }[]; goneRows: number; itemId: string } | null = null;
const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

// test/global-setup.ts always provides an endpoint (it starts S3Proxy when none answers), so a
// missing one is a broken setup: the tests fail rather than skip.

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function keys(prefix: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const res = await conn.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of res.Contents ?? []) out.push(o.Key!);
    token = res.IsTruncated ? res.NextContinuationToken : undefined;
  } while (token);
  return out.sort();
}

describe('S3 object store (S3Proxy)', () => {
  beforeAll(async () => {
    if (!endpoint) throw new Error('S3_TEST_ENDPOINT is not set: test/global-setup.ts starts S3Proxy and sets it');
    conn = connectS3(settings('blobs-test/'));
    await ensureBucket(conn);
    await ensureBucket(conn); // idempotent
  });

  test('S3BlobStore: content-addressed put/has/get/stream, idempotent, missing blobs are NotFound', async () => {
    const store = new S3BlobStore(conn);
    const bytes = Buffer.from(`archive bytes ${randomUUID()}`);
    const info = await store.put(bytes);
    expect(info).toEqual({ sha256: sha256Hex(bytes), size: bytes.length });
    expect(await store.has(info.sha256)).toBe(true);
    expect((await store.get(info.sha256)).equals(bytes)).toBe(true);
    const { stream, size } = await store.stream(info.sha256);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(Buffer.from(c as Uint8Array));
    expect(size).toBe(bytes.length);
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
    expect(await store.put(bytes)).toEqual(info);
    expect(await keys('blobs-test/blobs/')).toContain(`blobs-test/blobs/${info.sha256.slice(0, 2)}/${info.sha256}`);
    await expect(store.get('b'.repeat(64))).rejects.toBeInstanceOf(NotFoundError);
    expect(await store.has('b'.repeat(64))).toBe(false);
  });

  test('PENUMBRA_BLOB_STORE=s3: an ingested item\'s archives live in the bucket and are served from it', async () => {
    let t: TestPenumbra | null = null;
    try {
      t = await startTestPenumbra('s3-blobs', {
        PENUMBRA_BLOB_STORE: 's3', PENUMBRA_S3_ENDPOINT: endpoint!, PENUMBRA_S3_BUCKET: bucket, PENUMBRA_S3_PREFIX: 'app',
        PENUMBRA_S3_ACCESS_KEY_ID: 'any', PENUMBRA_S3_SECRET_ACCESS_KEY: 'any',
      }, { sink: false });
      const { itemId } = await ingestFixture(t.p.ctx);
      const entry = await waitFor('catalog entry', () => t!.p.ctx.catalog.find(itemId));
      const variant = entry.versions[0].variants[0];
      expect(await keys('app/blobs/')).toContain(`app/blobs/${variant.sha256.slice(0, 2)}/${variant.sha256}`);
      const res = await fetch(`${t.url}/api/v1/items/${encodeURIComponent(itemId)}/artifacts/${encodeURIComponent(variant.name)}?version=${encodeURIComponent(entry.versions[0].version)}`);
      expect(res.status).toBe(200);
      expect(sha256Hex(Buffer.from(await res.arrayBuffer()))).toBe(variant.sha256);
    } finally {
      await t?.stop();
    }
  }, 60_000);

  test('the warehouse export is published to the bucket in a Hive layout that DuckDB reads with a glob', async () => {
    const base = loadConfig({ KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092', SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7' });
    const prefix = `t-s3sink-${randomUUID().slice(0, 8)}.`;
    const cfg: PenumbraConfig = { ...base, topicPrefix: prefix, topics: topicNames(prefix), partitions: 2 };
    const kafka = createKafka(cfg.kafkaBrokers, 's3-int-test');
    const codec = new AvroCodec(cfg.schemaRegistryUrl);
    await provisionAll(kafka, cfg, codec);
    const producer = new AvroProducer(kafka, codec);
    await producer.connect();
    // Two arrival days: two Hive partitions.
    const day = 86_400_000;
    await producer.send(Array.from({ length: 600 }, (_, i) => {
      const e = fx.telemetryEvent(i);
      return { topic: cfg.topics.telemetryRaw, key: e.sessionId, value: { ...e, receivedAt: e.receivedAt + (i % 2) * day } };
    }));
    // Three old 10 s windows of one item: what GET …/metrics reads from the warehouse export.
    const win = fx.metricWindow(0);
    await producer.send([7, 8, 9].map((k) => ({ topic: cfg.topics.telemetryMetrics, key: win.itemId, value: { ...fx.metricWindow(k), windowStart: fx.T0 + k * 10_000, windowEnd: fx.T0 + (k + 1) * 10_000 } })));
    await producer.disconnect();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'penumbra-s3-sink-'));
    dirs.push(dir);
    const wconn = connectS3(settings('lake/'));
    const sink = createWarehouseSink({ cfg, kafka, codec, dbPath: path.join(dir, 'w.duckdb'), parquetDir: path.join(dir, 'parquet'), snapshotIntervalMs: 60_000, mirror: new S3ExportMirror(wconn) });
    try {
      await sink.start();
      await waitFor('600 events stored', async () => Number((await sink.query('SELECT count(*) AS n FROM telemetry_events'))[0].n) === 600 || undefined, 30_000);
      await waitFor('3 metric windows stored', async () => Number((await sink.query('SELECT count(*) AS n FROM metric_windows'))[0].n) === 3 || undefined, 30_000);
      const meta = await sink.snapshot();
      expect(meta.tables.telemetry_events).toBe(600);
      // The warehouse's own rows, to compare with what readers of the bucket get.
      const events = (await sink.query('SELECT id, variant, CAST(received_at AS DATE)::VARCHAR AS d FROM telemetry_events')).map((r) => ({ id: String(r.id), variant: String(r.variant), d: String(r.d) })).sort(byId);
      const windows = (await sink.query('SELECT epoch_ms(window_start) AS ws, events FROM metric_windows ORDER BY window_start')).map((r) => ({ ws: Number(r.ws), events: Number(r.events) }));
      exported = { events, windows, goneRows: 0, itemId: win.itemId };
    } finally {
      await sink.stop();
    }
    const all = await keys('lake/warehouse/');
    const d0 = new Date(fx.T0).toISOString().slice(0, 10);
    const d1 = new Date(fx.T0 + day).toISOString().slice(0, 10);
    const events = all.filter((k) => k.startsWith('lake/warehouse/telemetry_events/'));
    expect(events.length).toBeGreaterThanOrEqual(2);
    for (const k of events) expect(k).toMatch(new RegExp(`^lake/warehouse/telemetry_events/date=(${d0}|${d1})/part-\\d+-\\d+_\\w+\\.parquet$`));
    expect(all).toContain('lake/warehouse/_meta.json');
    expect(all).toContain('lake/warehouse/items/data_0.parquet');

    // What a Spark/Trino/DuckDB reader of the bucket sees: copy the objects down as they are.
    const local = path.join(dir, 'from-s3');
    for (const k of all) {
      const file = path.join(local, k.slice('lake/warehouse/'.length));
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, await getObject(wconn, k));
    }
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    const rows = (await c.runAndReadAll(`SELECT "date"::VARCHAR AS d, count(*)::INT AS n FROM read_parquet('${path.join(local, 'telemetry_events/*/*.parquet')}', hive_partitioning = true) GROUP BY 1 ORDER BY 1`)).getRowObjectsJS();
    c.closeSync();
    db.closeSync();
    expect(rows).toEqual([{ d: d0, n: 300 }, { d: d1, n: 300 }]);

    // ---- PENUMBRA_PARQUET_READ=s3 without httpfs: Penumbra's own readers read the bucket's
    // export through the AWS SDK into a local cache folder (the fallback where the extension is
    // absent: an empty PENUMBRA_CACHE_DIR here). A process with no local export answers the old
    // windows of GET …/metrics from the bucket.
    let t: TestPenumbra | null = null;
    const noExtension = mkdtempSync(path.join(os.tmpdir(), 'penumbra-no-httpfs-'));
    dirs.push(noExtension);
    try {
      t = await startTestPenumbra('s3-read', {
        PENUMBRA_PARQUET_READ: 's3', PENUMBRA_S3_ENDPOINT: endpoint!, PENUMBRA_S3_BUCKET: bucket, PENUMBRA_S3_PREFIX: 'lake',
        PENUMBRA_S3_ACCESS_KEY_ID: 'any', PENUMBRA_S3_SECRET_ACCESS_KEY: 'any', PENUMBRA_CACHE_DIR: noExtension,
      }, { sink: false });
      const cacheDir = readerParquetDir(t.cfg);
      expect(cacheDir).toBe(path.join(t.dataDir, 'warehouse', 'parquet-s3'));
      expect(readerParquetSource(t.cfg)).toBe(cacheDir);
      expect(existsSync(path.join(t.dataDir, 'warehouse', 'parquet'))).toBe(false);
      const health = (await (await fetch(`${t.url}/api/v1/health`)).json()) as { checks: { parquetSource?: { status: string; objects: number; source: string } } };
      expect(health.checks.parquetSource).toMatchObject({ status: 'ok', objects: all.length, source: 's3-cache', url: `s3://${bucket}/lake/warehouse/` });
      const m = (await (await fetch(`${t.url}/api/v1/items/${win.itemId}/metrics?window=10s&from=${fx.T0}&to=${fx.T0 + 100_000}`, { headers: t.auth('viewer') })).json()) as { windows: { windowStart: number; events: number }[] };
      expect(m.windows.map((w) => [w.windowStart - fx.T0, w.events])).toEqual([[70_000, 7], [80_000, 8], [90_000, 9]]);
      // The query helper over the cache gives the bucket's rows (what segment results read).
      const viaCache = await queryParquet(cacheDir, `SELECT "date"::VARCHAR AS d, count(*)::INT AS n FROM telemetry_events GROUP BY 1 ORDER BY 1`);
      expect(viaCache).toEqual(rows);

      // The bucket changes (a compaction deletes parts; a whole-table file is replaced under the
      // same name): the next pass deletes and re-downloads exactly those.
      const cache = parquetCaches.get(t.dataDir)!;
      const gone = events[0].slice('lake/warehouse/'.length);
      const goneRows = Number((await queryParquet(cacheDir, `SELECT count(*) AS n FROM read_parquet('${path.join(cacheDir, gone)}')`))[0].n);
      const goneIds = new Set((await queryParquet(cacheDir, `SELECT id FROM read_parquet('${path.join(cacheDir, gone)}')`)).map((r) => String(r.id)));
      exported!.goneRows = goneRows;
      exported!.events = exported!.events.filter((e) => !goneIds.has(e.id));
      await new S3ExportMirror(wconn).delete([gone]);
      await new S3ExportMirror(wconn).put('items/data_0.parquet', path.join(cacheDir, events[1].slice('lake/warehouse/'.length)));
      const r = await cache.sync();
      expect(r).toMatchObject({ objects: all.length - 1, downloaded: 1, deleted: 1 });
      expect(existsSync(path.join(cacheDir, gone))).toBe(false);
      const after = await queryParquet(cacheDir, 'SELECT count(*)::INT AS n FROM telemetry_events');
      expect(after).toEqual([{ n: 600 - goneRows }]);
      expect((await cache.sync()).downloaded).toBe(0);
      // A restarted process (a new cache on the same folder) downloads nothing that did not change.
      expect(await new S3ParquetCache(connectS3(settings('lake/')), cacheDir).sync()).toMatchObject({ objects: all.length - 1, downloaded: 0, deleted: 0 });
    } finally {
      await t?.stop();
    }
  }, 120_000);

  // Python notebooks (notebooks/penumbra_warehouse.py) read the same bucket with the same
  // extension: notebooks/requirements.txt pins duckdb to the version PyPI has httpfs for.
  requires(['duckdb-httpfs', 'python:duckdb', 'python-duckdb-pin'])('the notebook helper reads the export straight from s3:// (PENUMBRA_PARQUET_READ=s3), exactly the warehouse\'s rows', () => {
    expect(exported).not.toBeNull(); // left by the export test above (the bucket after its deletion)
    const ex = exported!;
    const env = { PENUMBRA_PARQUET_READ: 's3', PENUMBRA_S3_ENDPOINT: endpoint!, PENUMBRA_S3_BUCKET: bucket, PENUMBRA_S3_PREFIX: 'lake', PENUMBRA_S3_ACCESS_KEY_ID: 'any', PENUMBRA_S3_SECRET_ACCESS_KEY: 'any' };
    const script = [
      'import json, penumbra_warehouse as w',
      'con = w.connect()',
      'ev = con.sql(\'SELECT id, variant, "date"::VARCHAR FROM telemetry_events ORDER BY id\').fetchall()',
      'wi = con.sql("SELECT epoch_ms(window_start), events FROM metric_windows ORDER BY window_start").fetchall()',
      'cmp = con.sql("SELECT count(*) FROM comparison_events").fetchone()[0]',
      'fresh = w.freshness()',
      'print(json.dumps({"events": [{"id": a, "variant": b, "d": c} for a, b, c in ev], "windows": [{"ws": a, "events": b} for a, b in wi],',
      '  "comparison": cmp, "exported": fresh["tables"]["telemetry_events"], "secret": w.s3_secret_sql(w.s3_settings()), "url": w.warehouse_s3_url(w.s3_settings())}))',
    ].join('\n');
    const out = JSON.parse(execFileSync('python3', ['-c', script], { cwd: path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../notebooks'), env: { ...process.env, ...env }, encoding: 'utf8' })) as {
      events: { id: string; variant: string; d: string }[]; windows: { ws: number; events: number }[]; comparison: number; exported: number; secret: string; url: string;
    };
    expect(out.url).toBe(`s3://${bucket}/lake/warehouse/`);
    // The export test deleted one part from the bucket (the cache-sync check): the rest, exactly.
    expect(ex.goneRows).toBeGreaterThan(0);
    expect(out.events.length).toBe(600 - ex.goneRows);
    expect([...out.events].sort(byId)).toEqual(ex.events);
    expect(out.windows).toEqual(ex.windows);
    expect(out.comparison).toBeGreaterThan(0); // the shared view over the bucket's telemetry_events
    expect(out.exported).toBe(600); // freshness(): the bucket's _meta.json (what the sink exported)
    // The same secret as Penumbra's own readers build from the same settings.
    const cfg = loadConfig({ KAFKA_BROKERS: '127.0.0.1:9092', SCHEMA_REGISTRY_URL: 'http://127.0.0.1:8081/apis/ccompat/v7', ...env });
    expect(out.secret).toBe(s3SecretSql(cfg.s3!));
    // Without the setup's file and without the TypeScript cache: the pip wheel's own file.
    const emptyCache = mkdtempSync(path.join(os.tmpdir(), 'penumbra-no-cache-'));
    dirs.push(emptyCache);
    const ext = execFileSync('python3', ['-c', 'import penumbra_warehouse as w; print(w.httpfs_extension()); w.connect(s3=True).sql("SELECT 1").fetchall()'], {
      cwd: path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../notebooks'),
      env: { ...process.env, ...env, DUCKDB_HTTPFS_EXTENSION: '', PENUMBRA_CACHE_DIR: emptyCache },
      encoding: 'utf8',
    }).trim();
    expect(ext).toMatch(/duckdb_extension_httpfs\/extensions\/v1\.5\.5\/httpfs\.duckdb_extension$/);
  }, 60_000);

  // The extension is fetched from PyPI by the test setup (connectors/duckdb-httpfs); where PyPI
  // has no wheel for the platform this is skipped, visibly.
  requires(['duckdb-httpfs'])('httpfs: a plain DuckDB and a Penumbra read the export straight from s3:// (Hive layout), exactly the warehouse\'s rows', async () => {
    expect(exported).not.toBeNull(); // left by the test above (the bucket after its deletion)
    const ex = exported!;
    const s3 = settings('lake/');
    const url = `s3://${bucket}/lake/warehouse/`;
    // What an analyst or Spark/Trino does: a glob over the Hive layout, hive_partitioning.
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    try {
      await loadHttpfs(c, process.env.DUCKDB_HTTPFS_EXTENSION!, s3);
      const [ext] = (await c.runAndReadAll("SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'")).getRowObjectsJS();
      expect(ext).toEqual({ loaded: true });
      const direct = (await c.runAndReadAll(`SELECT id, variant, "date"::VARCHAR AS d FROM read_parquet('${url}telemetry_events/*/*.parquet', hive_partitioning = true)`)).getRowObjectsJS()
        .map((r) => ({ id: String(r.id), variant: String(r.variant), d: String(r.d) })).sort(byId);
      expect(direct.length).toBe(600 - ex.goneRows);
      expect(direct).toEqual(ex.events);
      const w = (await c.runAndReadAll(`SELECT epoch_ms(window_start) AS ws, events FROM read_parquet('${url}metric_windows/*/*.parquet', hive_partitioning = true) ORDER BY window_start`)).getRowObjectsJS();
      expect(w.map((r) => ({ ws: Number(r.ws), events: Number(r.events) }))).toEqual(ex.windows);
    } finally {
      c.closeSync();
      db.closeSync();
    }

    // A Penumbra with the extension in its cache decides for direct reads at start.
    let t: TestPenumbra | null = null;
    try {
      t = await startTestPenumbra('s3-httpfs', {
        PENUMBRA_PARQUET_READ: 's3', PENUMBRA_S3_ENDPOINT: endpoint!, PENUMBRA_S3_BUCKET: bucket, PENUMBRA_S3_PREFIX: 'lake',
        PENUMBRA_S3_ACCESS_KEY_ID: 'any', PENUMBRA_S3_SECRET_ACCESS_KEY: 'any',
        // <cache>/duckdb-extensions/v<version>/<platform>/httpfs.duckdb_extension
        PENUMBRA_CACHE_DIR: path.resolve(process.env.DUCKDB_HTTPFS_EXTENSION!, '../../../..'),
      }, { sink: false });
      const source = readerParquetSource(t.cfg);
      expect(source).toMatchObject({ kind: 's3', url, extension: process.env.DUCKDB_HTTPFS_EXTENSION });
      const health = (await (await fetch(`${t.url}/api/v1/health`)).json()) as { checks: { parquetSource?: Record<string, unknown> } };
      expect(health.checks.parquetSource).toMatchObject({ status: 'ok', source: 'httpfs', url, exportedAt: expect.any(String) });
      expect(existsSync(readerParquetDir(t.cfg))).toBe(false); // no local copy
      const m = (await (await fetch(`${t.url}/api/v1/items/${ex.itemId}/metrics?window=10s&from=${fx.T0}&to=${fx.T0 + 100_000}`, { headers: t.auth('viewer') })).json()) as { windows: { windowStart: number; events: number }[] };
      expect(m.windows.map((x) => [x.windowStart - fx.T0, x.events])).toEqual([[70_000, 7], [80_000, 8], [90_000, 9]]);
      const rows = (await queryParquet(source, 'SELECT id, variant, "date"::VARCHAR AS d FROM telemetry_events')).map((r) => ({ id: String(r.id), variant: String(r.variant), d: String(r.d) })).sort(byId);
      expect(rows).toEqual(ex.events);
      // The segment sandbox reads the bucket and nothing else in it.
      const sb = await Sandbox.open(source);
      try {
        await sb.check('SELECT DISTINCT user_id FROM telemetry_events');
        const refused = await sb.check(`SELECT user_id FROM read_parquet('s3://${bucket}/blobs-test/x.parquet')`).then(() => null, (err: ValidationError) => err);
        expect(refused).toBeInstanceOf(ValidationError);
        expect(refused!.issues[0].message).toMatch(/Permission Error: Cannot access file "s3:\/\/.*disabled by configuration/);
      } finally {
        sb.close();
      }
      // A change in the bucket is seen by the next read (no sync interval in between).
      await new S3ExportMirror(connectS3(s3)).delete((await keys('lake/warehouse/metric_windows/')).map((k) => k.slice('lake/warehouse/'.length)));
      expect(await queryParquet(source, 'SELECT count(*)::INT AS n FROM metric_windows')).toEqual([{ n: 0 }]);
    } finally {
      await t?.stop();
    }
  }, 90_000);
});
