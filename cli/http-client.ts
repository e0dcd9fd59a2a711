/** Shared by CLI commands that talk to a running Penumbra: where it is and which token to use. */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../pipeline/config/config.ts';
import { ConfigError, PenumbraError } from '../pipeline/errors.ts';

export function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

export function target(argv: string[]): { url: string; token: string } {
  const cfg = loadConfig();
  const url = (flag(argv, '--url') ?? cfg.publicUrl).replace(/\/+$/, '');
  let token = flag(argv, '--token') ?? process.env.PENUMBRA_TOKEN;
  if (!token) {
    const file = path.join(cfg.dataDir, 'tokens');
    if (existsSync(file)) {
      const line = readFileSync(file, 'utf8').split('\n').find((l) => /:(operator|admin):/.test(l) && !l.startsWith('#'));
      token = line?.split(':').slice(2).join(':').trim();
    }
  }
  if (!token) throw new ConfigError('No operator token: pass --token, set PENUMBRA_TOKEN, or run `npm start` once to create one in the data folder.');
  return { url, token };
}

/** Turn a problem+json answer into a readable multi-line error. */
export async function problemError(res: Response): Promise<PenumbraError> {
  const text = await res.text();
  try {
    const p = JSON.parse(text) as { detail?: string; reason?: string; errors?: { path: string; message: string }[] };
    const lines = [`HTTP ${res.status}: ${p.detail ?? text}`];
    if (p.reason) lines.push(`  reason: ${p.reason}`);
    for (const e of p.errors ?? []) lines.push(`  ${e.path}: ${e.message}`);
    return new PenumbraError('http', lines.join('\n'), { status: res.status });
  } catch {
    return new PenumbraError('http', `HTTP ${res.status}: ${text.slice(0, 500)}`, { status: res.status });
  }
}
