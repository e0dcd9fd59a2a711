/**
 * "Ours" of the collector bench (bench/collector.bench.ts), run as a process of its own: the
 * production composition `createPenumbra(cfg, { processors: false, sink: false })` — the API
 * process of a split deployment — configured from the environment like `penumbra start`. So the
 * measured route is the real one: the collector's raw fast path in front of Express (since issue
 * 15 round 6; the Express route with every middleware of the app answers what the fast path
 * hands over: errors, compressed bodies, service callers), the per-address rate limit, token verification against the deployment's key ring and the item's current profile
 * (followed from shadow.profiles), validation, Avro encoding, the coalescing idempotent producer
 * (acks=all), 202 after the broker's ack.
 *
 * Prints `{"url": …}` once the profiles named in `--items` are in its profile store (so every
 * batch of the load is verified), then serves until SIGTERM.
 *
 *   node --import tsx bench/collector-server.ts --items bench.item0,bench.item1
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../pipeline/config/config.ts';
import { createPenumbra } from '../pipeline/app/penumbra.ts';

const { values } = parseArgs({ options: { items: { type: 'string', default: '' } } });
const items = values.items!.split(',').filter(Boolean);
const p = await createPenumbra(loadConfig(process.env), { processors: false, sink: false });
const until = Date.now() + 60_000;
while (items.some((i) => !p.ctx.profileStore.get(i))) {
  if (Date.now() > until) throw new Error(`profiles ${items.join(', ')} never arrived on ${p.ctx.cfg.topics.shadowProfiles}`);
  await new Promise((r) => setTimeout(r, 50));
}
process.stdout.write(`${JSON.stringify({ url: p.url })}\n`);
process.once('SIGTERM', () => {
  void p.stop().finally(() => process.exit(0));
});
