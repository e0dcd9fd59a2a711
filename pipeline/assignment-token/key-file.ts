/**
 * Where the assignment key ring comes from (the one I/O edge of this folder): the
 * PENUMBRA_ASSIGNMENT_KEYS configuration, else `<data>/assignment-keys`, created once (one random
 * 32-byte key, mode 0600) when missing — the same pattern as the admin token.
 *
 * Every resolver, API and collector process of one deployment must share the ring (a token signed
 * by one process is verified by another): processes on one data folder share the file; processes
 * on different machines need PENUMBRA_ASSIGNMENT_KEYS. The file is created with an exclusive link,
 * so two processes starting together on one data folder end up with the same key.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseKeyRing, type KeyRing } from './token.ts';

export const KEY_FILE = 'assignment-keys';

export interface LoadedKeyRing {
  ring: KeyRing;
  /** `config` (PENUMBRA_ASSIGNMENT_KEYS) or the key file's path. */
  source: string;
  /** True when this call generated the file. */
  created: boolean;
}

/** Lines `kid:base64secret` (comments `#`), parsed like the variable. */
function readKeyFile(file: string): KeyRing {
  const text = readFileSync(file, 'utf8');
  return parseKeyRing(text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).join(','), file);
}

export function loadAssignmentKeys(opts: { configured: KeyRing | null; dataDir: string }): LoadedKeyRing {
  if (opts.configured) return { ring: opts.configured, source: 'config', created: false };
  const file = path.join(opts.dataDir, KEY_FILE);
  try {
    return { ring: readKeyFile(file), source: file, created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(opts.dataDir, { recursive: true });
  const kid = `k${new Date().toISOString().slice(0, 10).replace(/-/g, '')}`;
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(
    tmp,
    `# created by penumbra; assignment-token signing keys, one kid:base64secret per line (first signs, all verify)\n` +
      `# every process of this deployment must share these keys (pipeline/assignment-token/README.md)\n` +
      `${kid}:${randomBytes(32).toString('base64')}\n`,
    { mode: 0o600 },
  );
  chmodSync(tmp, 0o600);
  let created = true;
  try {
    linkSync(tmp, file); // atomic and exclusive: a concurrent starter's file wins, never a torn one
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    created = false;
  } finally {
    unlinkSync(tmp);
  }
  return { ring: readKeyFile(file), source: file, created };
}
