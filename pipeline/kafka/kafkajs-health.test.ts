/**
 * Health's `checks.kafkajs` (kafkajs-health.ts) must report what the load-time patches actually
 * did: in this process, the modules' own state; in plain node processes (kafkajs as the pipeline
 * loads it, not through jest's module registry), every patch when loaded first, the encoding off
 * with PENUMBRA_KAFKAJS_STOCK=1 — still ok — and the misses named when kafkajs was loaded first.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { kafkajsHealth, type KafkajsHealth } from './kafkajs-health.ts';
import { kafkajsEncoding, kafkajsStock } from './kafkajs-encoding.ts';
import { kafkajsGroupingLinear } from './kafkajs-grouping.ts';
import { kafkajsIdleTimerGuarded, kafkajsTimeoutSweep } from './kafkajs-idle-timer.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

/** kafkajsHealth() of a fresh node process; `before` runs first (CommonJS, e.g. loading kafkajs). */
function childHealth(env: Record<string, string>, before = ''): KafkajsHealth {
  const script = `${before}; import('./pipeline/kafka/kafkajs-health.ts').then((m) => console.log(JSON.stringify(m.kafkajsHealth())));`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], {
    cwd: path.resolve(here, '../..'), env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8',
  });
  return JSON.parse(out) as KafkajsHealth;
}

const allEncoding = (on: boolean) => ({ methods: on, constructor: on, crc32c: on, produce: on, recordDecoder: on, batch: on });

describe('kafkajs health check', () => {
  it('reports this process\'s patch state, ok whatever it is', () => {
    const h = kafkajsHealth();
    expect(h).toEqual({
      status: 'ok', detail: expect.any(String) as string, stock: kafkajsStock, encoding: { ...kafkajsEncoding },
      groupingLinear: kafkajsGroupingLinear, idleTimerGuard: kafkajsIdleTimerGuarded, timeoutSweep: kafkajsTimeoutSweep,
    });
    for (const v of [h.stock, h.groupingLinear, h.idleTimerGuard, h.timeoutSweep, ...Object.values(h.encoding)]) expect(typeof v).toBe('boolean');
    expect(Object.keys(h.encoding).sort()).toEqual(Object.keys(allEncoding(true)).sort());
    // The detail names exactly the parts that missed (stock encoding aside), or says patched.
    const missed = [...(h.stock ? [] : Object.entries(h.encoding).filter(([, on]) => !on).map(([k]) => `encoding.${k}`)), ...(['groupingLinear', 'idleTimerGuard', 'timeoutSweep'] as const).filter((k) => !h[k])];
    if (!h.stock && missed.length === 0) expect(h.detail).toBe('patched');
    for (const m of missed) expect(h.detail).toContain(m);
    // A fresh object each time: a caller changing the report does not change the next one.
    h.encoding.methods = !h.encoding.methods;
    expect(kafkajsHealth().encoding.methods).toBe(kafkajsEncoding.methods);
  });

  it('a pipeline process reports every patch, stock encoding when asked, and names what missed', () => {
    expect(childHealth({})).toEqual({ status: 'ok', detail: 'patched', stock: false, encoding: allEncoding(true), groupingLinear: true, idleTimerGuard: true, timeoutSweep: true });
    expect(childHealth({ PENUMBRA_KAFKAJS_STOCK: '1' })).toEqual({
      status: 'ok', detail: 'stock encoding (PENUMBRA_KAFKAJS_STOCK=1)', stock: true, encoding: allEncoding(false), groupingLinear: true, idleTimerGuard: true, timeoutSweep: true,
    });
    // kafkajs loaded before the patches (an import order client.ts exists to prevent).
    const late = childHealth({}, "require('kafkajs')");
    expect(late).toMatchObject({ status: 'ok', stock: false, groupingLinear: false });
    expect(late.detail).toMatch(/^kafkajs loaded before the patch, stock: .*groupingLinear/);
    expect(late.detail).toContain('encoding.batch');
  }, 60_000);
});
