/**
 * `penumbra start --demo`: something to look at right away. Ingests the multi-page-web sample
 * item with a shadow (`checkout-v2`, 20 % of android + ios users), creates an example alert
 * rule when this build has the alert-rules route, and runs the simulator in the background at a
 * modest rate (5 sessions/s ≈ 75 events/s, shadow 20 % slower with +1 pp error sessions) until
 * Ctrl-C. Ingesting again on a later start is harmless: it becomes the next profile version.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Penumbra } from '../pipeline/app/penumbra.ts';
import type { ShadowConfig } from '../pipeline/domain/types.ts';
import { ingestDigitalItem } from '../pipeline/ingest/ingest-service.ts';
import { fixtureArchive } from '../pipeline/shadowing/fixtures.ts';
import { startSimulation, type SimulationHandle } from '../pipeline/simulator/runner.ts';

export const DEMO_SHADOW: ShadowConfig = {
  name: 'checkout-v2',
  instrumentation: {
    capture: { performance: true, errors: true, usage: true },
    points: [{ id: 'buy', selector: '#buy', event: 'click' }],
    sampleRate: 1,
  },
  endpoints: { api: 'https://shadow-api.example.com/v1' },
  traffic: { percentage: 20, match: 'all', rules: [{ attribute: 'deviceType', op: 'in', values: ['android', 'ios'] }] },
};

export const DEMO_EFFECTS = ['shadow:latency=+20%', 'shadow:errors=+1pp'];

/** A raw operator/admin token this process may use against its own API (tokens are stored hashed). */
function operatorToken(p: Penumbra): string | undefined {
  if (p.createdToken) return p.createdToken.token;
  if (process.env.PENUMBRA_TOKEN) return process.env.PENUMBRA_TOKEN;
  const specs: string[] = [];
  if (p.cfg.tokens) specs.push(...p.cfg.tokens.split(','));
  const file = p.cfg.tokensFile ?? path.join(p.cfg.dataDir, 'tokens');
  if (existsSync(file)) specs.push(...readFileSync(file, 'utf8').split('\n'));
  const line = specs.map((s) => s.trim()).find((s) => /^[^#:]+:(operator|admin):\S{16,}$/.test(s));
  return line?.split(':').slice(2).join(':');
}

export async function startDemo(p: Penumbra, say: (l: string) => void): Promise<SimulationHandle> {
  const archive = await fixtureArchive('multi-page-web', 'zip');
  const r = await ingestDigitalItem(p.ctx.ingest, { archive, shadowConfig: DEMO_SHADOW, actor: { name: 'system:demo', role: 'admin' }, requestId: `demo-${randomUUID()}` });
  const itemId = r.entry.itemId;
  await p.ctx.profileStore.waitForVersion(itemId, r.profile.profileVersion);
  say(`demo: ingested ${itemId} ${r.entry.latestVersion} with shadow ${DEMO_SHADOW.name} (20 % of android + ios), profile version ${r.profile.profileVersion}`);

  const token = operatorToken(p);
  const hasAlertRules = p.ctx.openapi.routes.some((x) => x.path === '/api/v1/alert-rules' && x.method === 'post');
  if (hasAlertRules && token) {
    const rule = {
      itemId, name: 'demo: shadow mean latency 10 % above its control', metric: 'latencyMean', comparison: 'vs_control', direction: 'increase',
      threshold: 0.1, minSample: 20, forWindows: 2, guardrail: false,
    };
    try {
      const res = await fetch(`${p.url}/api/v1/alert-rules`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(rule) });
      say(res.ok ? `demo: alert rule "${rule.name}" created` : `demo: alert rule not created (HTTP ${res.status}: ${(await res.text()).slice(0, 200)})`);
    } catch (err) {
      say(`demo: alert rule not created (${(err as Error).message})`);
    }
  } else if (hasAlertRules) {
    say('demo: no operator token at hand (set PENUMBRA_TOKEN), so no example alert rule');
  }

  const sim = startSimulation({
    url: p.url, token, items: [itemId], users: 5000, rate: 5, durationMs: 365 * 24 * 3600 * 1000, seed: 'demo', effects: DEMO_EFFECTS,
    log: () => {},
  });
  const onSignal = (): void => void sim.stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  void sim.done.then(
    (rep) => say(`demo: simulator stopped after ${rep.sessions.started} sessions, ${rep.events.accepted} events accepted`),
    (err: Error) => say(`demo: simulator failed: ${err.message}`),
  );
  say(`demo: simulating devices (5 sessions/s, effects ${DEMO_EFFECTS.join(' ')}); notebooks: PENUMBRA_DATA_DIR=${p.cfg.dataDir} PENUMBRA_ITEM=${itemId}`);
  return sim;
}
