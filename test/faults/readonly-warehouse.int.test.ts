/**
 * The warehouse folder turns read-only under a running sink (disk remounted read-only, a
 * full volume, an operator's chmod). Tests run as root here, so permissions would not stop a
 * write: the immutable attribute (chattr +i) does, for root too, on the folder and its files.
 *
 * Guarantees checked:
 *  - the API and collector keep working (telemetry is durable in Kafka; the warehouse is
 *    downstream of it), and health names the warehouse as degraded rather than the process
 *    dying;
 *  - no stored offset runs ahead of stored rows: once the folder is writable again (and, if the
 *    sink cannot recover in place, after a restart), every event acknowledged — before, during
 *    and after the outage — is in DuckDB exactly once.
 * Skipped (visibly, CI too: nothing installs it) when chattr cannot set the attribute — not
 * root, or a filesystem without it (test/requires.ts).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { faultEnv, health, killAll, spawnPenumbra, storedEventIds, waitFor, type PenumbraChild } from './child.ts';
import { requires } from '../requires.ts';

let env: Record<string, string>;
let frozen: string[] = [];

function chattr(flag: '+i' | '-i', paths: string[]): void {
  if (paths.length) execFileSync('chattr', [flag, ...paths]);
}

beforeAll(async () => {
  env = await faultEnv('readonly-warehouse');
});
afterAll(() => {
  try {
    chattr('-i', frozen);
  } catch {
    /* already writable */
  }
  killAll();
});

requires(['chattr'])('a read-only warehouse folder degrades the sink, not the process; data is complete once writable', async () => {
  const RUN = randomUUID().slice(0, 8);
  const acked = new Set<string>();
  let n = 0;
  let p: PenumbraChild = await spawnPenumbra(env);
  const send = async () => {
    const now = Date.now();
    const ids = Array.from({ length: 20 }, () => `${RUN}-${n++}`);
    const res = await fetch(`${p.url}/api/v1/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ itemId: 'com.example.fault', version: '1', variant: 'original', profileVersion: 0, sessionId: `s${n % 7}`, userId: 'u1', sentAt: now, events: ids.map((id) => ({ id, type: 'usage', name: 'buy', ts: now })) }) });
    await res.arrayBuffer();
    if (res.status === 202) for (const id of ids) acked.add(id);
    return res.status;
  };
  const raw = `${env.PENUMBRA_TOPIC_PREFIX}telemetry.raw`;
  const caughtUp = async () => (((await health(p.url)).checks.duckdb?.lagByTopic as Record<string, number> | undefined)?.[raw] === 0);
  for (let i = 0; i < 10; i++) expect(await send()).toBe(202);
  await waitFor('the sink storing the first events', caughtUp, 60_000, 500);

  // Freeze the warehouse folder and everything in it.
  const wh = path.join(env.PENUMBRA_DATA_DIR, 'warehouse');
  const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? [...walk(path.join(d, e.name)), path.join(d, e.name)] : [path.join(d, e.name)]));
  frozen = [...walk(wh), wh];
  chattr('+i', frozen);
  for (let i = 0; i < 20; i++) expect(await send()).toBe(202); // the collector does not depend on the warehouse
  const degraded = await waitFor('health to report the warehouse degraded', async () => {
    const h = await health(p.url);
    return h.checks.duckdb && h.checks.duckdb.status !== 'ok' ? h : null;
  }, 60_000, 500);
  expect(degraded.status).not.toBe('down');
  expect(degraded.checks.kafka.status).toBe('ok');
  const resolve = await fetch(`${p.url}/api/v1/resolve?itemId=com.example.fault&userId=u1`);
  expect(resolve.status).toBe(200);
  process.stderr.write(`readonly-warehouse: while frozen: duckdb ${JSON.stringify({ status: degraded.checks.duckdb.status, detail: degraded.checks.duckdb.detail, lag: degraded.checks.duckdb.lag })}\n`);

  chattr('-i', frozen);
  frozen = [];
  for (let i = 0; i < 10; i++) expect(await send()).toBe(202);
  let recoveredInPlace = true;
  try {
    await waitFor('the sink to recover in place', caughtUp, 45_000, 500);
  } catch {
    // DuckDB may invalidate a database after a failed write; then a restart recovers it.
    recoveredInPlace = false;
    await p.stop();
    p = await spawnPenumbra(env);
    await waitFor('the restarted sink to catch up', caughtUp, 90_000, 500);
  }
  expect((await p.stop()).code).toBe(0);

  const ids = await storedEventIds(path.join(wh, 'penumbra.duckdb'), RUN);
  process.stderr.write(`readonly-warehouse: ${acked.size} acknowledged, ${ids.length} rows; recovered ${recoveredInPlace ? 'in place' : 'after a restart'}\n`);
  expect(ids.length).toBe(new Set(ids).size);
  expect(new Set(ids)).toEqual(acked);
}, 300_000);
