/**
 * `npm run bench`: run every bench/*.bench.ts (ours vs a peer, side by side in one run), print a
 * table and write bench/results.json with the machine and versions.
 */
import { readdirSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchModule, BenchResult } from './types.ts';

const DIR = path.dirname(fileURLToPath(import.meta.url));

function fmt(n: number | null): string {
  if (n === null || Number.isNaN(n)) return '-';
  if (Math.abs(n) >= 1000) return n.toFixed(0);
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(3);
}

export async function benchCli(argv: string[]): Promise<number> {
  const quick = argv.includes('--quick');
  const onlyIdx = argv.indexOf('--only');
  const only = onlyIdx >= 0 ? argv[onlyIdx + 1] : undefined;
  const all = readdirSync(DIR).filter((f) => f.endsWith('.bench.ts')).sort();
  // Short names of benches whose file names do not contain them (`--only segalloc`).
  const ALIASES: Record<string, string> = { segalloc: 'segment-allocation' };
  const name = only !== undefined && Object.hasOwn(ALIASES, only) ? ALIASES[only] : only;
  // `--only NAME` runs NAME.bench.ts alone when it exists (`--only expo` must not also run
  // exposure.bench.ts); otherwise every bench whose file name contains NAME.
  const files = !name ? all : all.includes(`${name}.bench.ts`) ? [`${name}.bench.ts`] : all.filter((f) => f.includes(name));
  const results: (BenchResult & { bench: string })[] = [];
  let failed = 0;
  for (const f of files) {
    process.stderr.write(`bench ${f} …\n`);
    try {
      const mod = (await import(pathToFileURL(path.join(DIR, f)).href)) as BenchModule;
      for (const r of await mod.run({ quick })) results.push({ bench: f, ...r });
    } catch (err) {
      failed++;
      process.stderr.write(`bench ${f} failed: ${(err as Error).stack ?? err}\n`);
    }
  }
  const pkg = JSON.parse(readFileSync(path.join(DIR, '..', 'package.json'), 'utf8')) as { version: string };
  const out = {
    at: new Date().toISOString(),
    quick,
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), platform: `${os.platform()} ${os.release()}` },
    versions: { penumbra: pkg.version, node: process.version },
    results,
  };
  writeFileSync(path.join(DIR, 'results.json'), `${JSON.stringify(out, null, 2)}\n`);
  const rows = [['name', 'unit', 'ours', 'peer', 'peerName', 'ratio', 'notes'], ...results.map((r) => [r.name, r.unit, fmt(r.ours), fmt(r.peer), r.peerName ?? '-', fmt(r.ratio), r.notes ?? ''])];
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd());
  console.log(`\nwrote ${path.join(DIR, 'results.json')}`);
  return failed > 0 ? 1 : 0;
}
