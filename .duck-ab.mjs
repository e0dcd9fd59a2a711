import { DuckDBInstance } from '@duckdb/node-api';
import fs from 'node:fs';
const dir = fs.mkdtempSync('/tmp/dab-');
const inst = await DuckDBInstance.create(dir + '/x.duckdb', { memory_limit: '512MB' });
const c = await inst.connect();
const cols = `id VARCHAR NOT NULL, item_id VARCHAR, version VARCHAR, variant VARCHAR, profile_version BIGINT, session_id VARCHAR, user_id VARCHAR, type VARCHAR, name VARCHAR, ts TIMESTAMP, value DOUBLE, attrs_json VARCHAR, sent_at TIMESTAMP, received_at TIMESTAMP`;
await c.run(`CREATE TABLE pk (${cols}, tx BIGINT, PRIMARY KEY (id))`);
await c.run(`CREATE TABLE nopk (${cols}, tx BIGINT)`);
await c.run(`CREATE TABLE md5 (${cols}, tx BIGINT, k UHUGEINT PRIMARY KEY)`);
await c.run(`CREATE TABLE h64 (${cols}, tx BIGINT, k UBIGINT PRIMARY KEY)`);
await c.run(`CREATE TEMP TABLE st (${cols})`);
const CH = 10000; const T0 = 1764200000000n * 1000n;
const times = { pk: 0, nopk: 0, md5: 0, h64: 0 };
for (let r = 0; r < 30; r++) {
  const ap = await c.createAppender('st');
  for (let k = r * CH; k < (r + 1) * CH; k++) {
    ap.appendVarchar(`ev-${k}-xxxxxxxx-xxxx-xxxx`); ap.appendVarchar('com.example.notes'); ap.appendVarchar('1.4.0'); ap.appendVarchar(k % 2 ? 'a' : 'original');
    ap.appendBigInt(3n); ap.appendVarchar(`s-${k % 97}`); ap.appendVarchar(`u-${k % 89}`); ap.appendVarchar('request'); ap.appendVarchar('api');
    ap.appendTimestamp({ micros: T0 + BigInt(k) * 1000n }); ap.appendDouble(100 + (k % 50)); ap.appendVarchar('{"status":"200"}');
    ap.appendTimestamp({ micros: T0 }); ap.appendTimestamp({ micros: T0 }); ap.endRow();
  }
  ap.flushSync(); ap.closeSync();
  for (const t of (r % 2 ? ['pk', 'nopk', 'md5', 'h64'] : ['h64', 'md5', 'nopk', 'pk'])) {
    const t0 = performance.now();
    await c.run(`BEGIN; INSERT INTO ${t} SELECT *, ${r}${t === 'md5' ? ', md5_number(id)' : t === 'h64' ? ', hash(id)' : ''} FROM st; COMMIT`);
    times[t] += performance.now() - t0;
  }
  await c.run('DELETE FROM st');
}
console.log(Object.entries(times).map(([k, v]) => `${k} ${(v / 30).toFixed(1)} ms`).join(', '), 'per 10k rows');
fs.rmSync(dir, { recursive: true });
