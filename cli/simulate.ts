/**
 * `penumbra simulate`: simulated devices against a running Penumbra (pipeline/simulator).
 * Prints progress every 5 s and the report at the end; Ctrl-C stops early and still prints it.
 */
import { ValidationError } from '../pipeline/errors.ts';
import { loadConfig } from '../pipeline/config/config.ts';
import { parseEffect } from '../pipeline/simulator/model.ts';
import { startSimulation, type SimulationReport } from '../pipeline/simulator/runner.ts';
import { flag, target } from './http-client.ts';

export const SIMULATE_HELP = `Usage: penumbra simulate --items <a,b,…|N> [--url URL] [--users N] [--rate N] [--duration S]
                         [--effect EFFECT]… [--browser N] [--seed S] [--token TOKEN] [--json]

Acts like devices against a running Penumbra: each simulated session resolves its variant
(GET /api/v1/resolve with deviceType/country/appVersion drawn per user), fetches the variant's
artifact (once per variant) and runtime config, then POSTs telemetry batches the way the
injected library does (session start/end, navigation timings, endpoint requests with log-normal
latency, errors, usage of the configured points). Original and shadows both report; effects
change shadows only. Stops by itself after --duration and prints sent/accepted/rejected counts.

  --url URL         Penumbra base URL (default: PENUMBRA_PUBLIC_URL or http://HOST:PORT)
  --items LIST|N    item ids (comma-separated), or N = the first N catalog items (needs a token)
  --users N         size of the simulated user pool (default 1000); a user keeps its device
  --rate N          new sessions per second, Poisson arrivals (default 5); a session lasts ~4 s
                    and sends ~10-20 events, so events/s ≈ 15 × rate
  --duration S      seconds to run (default 60)
  --effect EFFECT   repeatable; <shadow|shadowName>:<metric>=<change> applied to shadows only:
                      shadow:latency=+20%        request latency × 1.2
                      shadow:latency=+30ms       request latency + 30 ms
                      shadow:errors=+1pp         sessions with an error: 2 % → 3 %
                      checkout-v2:conversion=-5pp, shadow:conversion:buy=+10%
  --browser N       also drive N real headless Chromium sessions through /launch/{itemId}
                    (clicking the configured points; /usr/bin/chromium)
  --seed S          seed of the pseudo-random draws (same seed → same users and sessions)
  --concurrency N   sessions in flight at most (default 256; arrivals beyond are counted skipped)
  --token TOKEN     operator/viewer token (else PENUMBRA_TOKEN or the data folder's tokens
                    file); optional unless --items N; lets original sessions use the shadows' points
  --json            print the final report as JSON only`;

function num(argv: string[], name: string, def: number, check: (n: number) => boolean, what: string): number {
  const raw = flag(argv, name);
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!check(n)) throw new ValidationError(`${name} must be ${what}, got "${raw}"`, [{ path: name, message: what }]);
  return n;
}

export function formatReport(r: SimulationReport): string {
  const pct = (a: number, b: number) => (b ? `${((100 * a) / b).toFixed(1)} %` : '-');
  const lines = [
    `Simulation ${r.runId} (seed ${r.seed}) against ${r.url}: ${(r.durationMs / 1000).toFixed(1)} s, items ${r.items.join(', ')}${r.effects.length ? `, effects ${r.effects.join(' ')}` : ''}`,
    `  sessions  started ${r.sessions.started}, completed ${r.sessions.completed} (cut at end ${r.sessions.cut}), unsent ${r.sessions.unsent}, skipped ${r.sessions.skipped}, sampled out ${r.sessions.sampledOut}, original (sends nothing) ${r.sessions.original}, failed ${r.sessions.failed}`,
    `  variants  ${Object.entries(r.sessions.byVariant).map(([v, n]) => `${v} ${n} (${pct(n, r.sessions.started)})`).join(', ') || '-'}`,
    `  resolves  ok ${r.resolves.ok}, failed ${r.resolves.failed}; reasons ${Object.entries(r.resolves.byReason).map(([k, n]) => `${k} ${n}`).join(', ') || '-'}`,
    `  artifacts downloaded ${r.artifacts.downloads} (${r.artifacts.bytes} bytes), from cache ${r.artifacts.cached}, failed ${r.artifacts.failed}`,
    `  batches   sent ${r.batches.sent}, accepted ${r.batches.accepted}, refused ${r.batches.refused}, failed ${r.batches.failed}; retries ${r.retries}`,
    `  events    sent ${r.events.sent}, accepted ${r.events.accepted}, rejected ${r.events.rejected} (${(r.events.accepted / Math.max(0.001, r.durationMs / 1000)).toFixed(0)} events/s)`,
  ];
  if (r.browser) lines.push(`  browser   sessions ${r.browser.sessions} (${Object.entries(r.browser.byVariant).map(([v, n]) => `${v} ${n}`).join(', ') || '-'}), clicks ${r.browser.clicks}, failed ${r.browser.failed}, ${r.browser.avgSessionMs} ms each`);
  if (r.errors.length) lines.push('  errors', ...r.errors.map((e) => `    ${e}`));
  return lines.join('\n');
}

export async function simulateCli(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(SIMULATE_HELP);
    return 0;
  }
  const itemsRaw = flag(argv, '--items');
  if (!itemsRaw) throw new ValidationError(`--items is required\n\n${SIMULATE_HELP}`, [{ path: '--items', message: 'required' }]);
  const items = /^\d+$/.test(itemsRaw) ? Number(itemsRaw) : itemsRaw.split(',').map((s) => s.trim()).filter(Boolean);
  let url: string;
  let token: string | undefined;
  try {
    ({ url, token } = target(argv));
  } catch {
    url = (flag(argv, '--url') ?? loadConfig().publicUrl).replace(/\/+$/, '');
  }
  const effects = argv.flatMap((a, i) => (a === '--effect' && argv[i + 1] !== undefined ? [parseEffect(argv[i + 1])] : []));
  const json = argv.includes('--json');
  const sim = startSimulation({
    url, token, items, effects,
    users: num(argv, '--users', 1000, (n) => Number.isInteger(n) && n > 0, 'a positive integer'),
    rate: num(argv, '--rate', 5, (n) => n > 0 && n <= 100_000, 'sessions per second (> 0)'),
    durationMs: num(argv, '--duration', 60, (n) => n > 0, 'seconds (> 0)') * 1000,
    browser: num(argv, '--browser', 0, (n) => Number.isInteger(n) && n >= 0, 'a non-negative integer'),
    concurrency: num(argv, '--concurrency', 256, (n) => Number.isInteger(n) && n > 0, 'a positive integer'),
    seed: flag(argv, '--seed'),
  });
  const progress = json
    ? null
    : setInterval(() => {
        const r = sim.report;
        console.error(`… sessions ${r.sessions.started}, events sent ${r.events.sent} / accepted ${r.events.accepted} / rejected ${r.events.rejected}`);
      }, 5000);
  const onSigint = () => void sim.stop();
  process.once('SIGINT', onSigint);
  try {
    const report = await sim.done;
    console.log(json ? JSON.stringify(report, null, 2) : formatReport(report));
    // Non-zero when the API refused or lost telemetry: a broken run should not look fine in CI.
    return report.events.accepted > 0 && report.batches.failed === 0 && report.batches.refused === 0 ? 0 : 1;
  } finally {
    if (progress) clearInterval(progress);
    process.off('SIGINT', onSigint);
  }
}
