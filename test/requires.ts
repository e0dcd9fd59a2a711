/**
 * Tests that need something outside node_modules (python3 and its packages, Chromium, kcat,
 * chattr, DuckDB's fetched httpfs extension) declare it here instead of returning early: a test that returns early passes having
 * checked nothing.
 *
 *   const py = requires(['python:duckdb']);
 *   py('the notebook helper reads the snapshot', async () => { … });
 *
 * `requires(deps)` returns jest's `test` when every dependency is usable. When one is missing:
 *  - it returns a skip: jest reports the test as skipped (`pending` in its JSON, `N skipped` on
 *    `.ci/run`'s last line), and the title says what is missing and how to get it;
 *  - except under CI (`CI=true`) for a dependency the README's test command provides
 *    (`npm test` runs infra/ensure-test-deps.sh, which installs chromium, kcat and
 *    test/requirements.txt, and needs python3 to do so): there the test is registered and
 *    FAILS with that message, because on CI a missing one means the setup is broken, not that
 *    the check does not apply.
 * chattr is the one dependency nothing installs (it needs root and a filesystem with the
 * immutable attribute), so its tests are skipped — visibly — on CI too.
 *
 * Checks run once per test file (each jest test file has its own module registry) and take a
 * few hundred milliseconds at most (the Python imports).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DUCKDB_VERSION, extensionPlatform } from '../connectors/duckdb-httpfs/httpfs.ts';

/** `python:<module>` is a Python module importable by python3 (test/requirements.txt). */
export type Dependency = 'python3' | `python:${string}` | 'python-duckdb-pin' | 'chromium' | 'kcat' | 'chattr' | 'hermes' | 'duckdb-httpfs';

interface Spec {
  /** Null when usable, otherwise what is wrong. */
  check: () => string | null;
  /** Provided by the README's test command (`npm test`), so its absence fails under CI. */
  providedByTestCommand: boolean;
  /** How to get it. */
  hint: string;
}

function runs(cmd: string, args: string[]): string | null {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error) return (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? `${cmd} not found on PATH` : `${cmd}: ${r.error.message}`;
  if (r.status !== 0) return `${cmd} ${args.join(' ')} exited ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(-1)[0] ?? ''}`;
  return null;
}

export function chromiumPath(): string {
  return process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
}

function spec(dep: Dependency): Spec {
  if (dep === 'python3') {
    return { check: () => runs('python3', ['-c', 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)']), providedByTestCommand: true, hint: 'python3 ≥ 3.9 on PATH (npm test needs it to install test/requirements.txt)' };
  }
  if (dep.startsWith('python:')) {
    const mod = dep.slice('python:'.length);
    if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(mod)) throw new Error(`requires: ${dep} is not a Python module name`);
    return { check: () => runs('python3', ['-c', `import ${mod}`]), providedByTestCommand: true, hint: 'python3 -m pip install -r test/requirements.txt (npm test does it)' };
  }
  if (dep === 'python-duckdb-pin') {
    // python3's duckdb is the version PyPI publishes the httpfs extension for, with that wheel (notebooks/requirements.txt pins both).
    return {
      check: () => runs('python3', ['-c', `import duckdb, duckdb_extension_httpfs, sys; v = duckdb.__version__; sys.exit(0 if v == '${DUCKDB_VERSION}' else 'duckdb ' + v + ' is not the pinned ${DUCKDB_VERSION}')`]),
      providedByTestCommand: true,
      hint: 'python3 -m pip install -r test/requirements.txt (npm test does it; it pins duckdb)',
    };
  }
  if (dep === 'chromium') {
    return {
      check: () => {
        try {
          accessSync(chromiumPath(), constants.X_OK);
          return null;
        } catch {
          return `no executable Chromium at ${chromiumPath()} (CHROMIUM_PATH)`;
        }
      },
      providedByTestCommand: true,
      hint: 'apt-get install chromium (npm test does it as root)',
    };
  }
  if (dep === 'hermes') {
    // The Hermes VM of npm's hermes-engine-cli (a devDependency; linux x64 binaries), which runs
    // React Native bundles in connectors/instrumentation-rn's tests.
    const bin = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'node_modules', 'hermes-engine-cli', 'linux64-bin', 'hermes');
    return {
      check: () => (process.platform !== 'linux' || process.arch !== 'x64' ? `hermes-engine-cli ships linux x64 binaries; this is ${process.platform}/${process.arch}` : runs(bin, ['-version'])),
      providedByTestCommand: process.platform === 'linux' && process.arch === 'x64',
      hint: 'npm ci installs hermes-engine-cli (linux x64)',
    };
  }
  if (dep === 'duckdb-httpfs') {
    // DuckDB's httpfs extension, fetched from PyPI by test/global-setup.ts (connectors/duckdb-httpfs),
    // which hands its path over as DUCKDB_HTTPFS_EXTENSION (empty + DUCKDB_HTTPFS_MISSING when not).
    const supported = extensionPlatform() !== null;
    return {
      check: () => {
        const p = process.env.DUCKDB_HTTPFS_EXTENSION;
        if (p && existsSync(p)) return null;
        return process.env.DUCKDB_HTTPFS_MISSING ?? 'DUCKDB_HTTPFS_EXTENSION is not set (the integration global setup fetches it)';
      },
      providedByTestCommand: supported,
      hint: supported ? 'the integration tests\' global setup fetches it from PyPI (network to pypi.org)' : 'PyPI publishes no wheel for this platform',
    };
  }
  if (dep === 'kcat') return { check: () => runs('kcat', ['-V']), providedByTestCommand: true, hint: 'apt-get install kcat (npm test does it as root)' };
  if (dep === 'chattr') {
    return {
      check: () => {
        // The fault test freezes a folder under the temp dir; the attribute needs root and a
        // filesystem that supports it (ext4, xfs, btrfs; not tmpfs or overlayfs on some kernels).
        const dir = mkdtempSync(path.join(tmpdir(), 'penumbra-chattr-'));
        try {
          return runs('chattr', ['+i', dir]) ?? runs('chattr', ['-i', dir]);
        } finally {
          spawnSync('chattr', ['-i', dir]);
          rmSync(dir, { recursive: true, force: true });
        }
      },
      providedByTestCommand: false,
      hint: 'chattr +i must work on the temp dir: run as root on a filesystem with the immutable attribute',
    };
  }
  throw new Error(`requires: unknown dependency ${String(dep)}`);
}

const cache = new Map<Dependency, string | null>();

/** What is wrong with each missing dependency; empty when all are usable. */
export function missing(deps: Dependency[]): { dep: Dependency; problem: string; spec: Spec }[] {
  const out: { dep: Dependency; problem: string; spec: Spec }[] = [];
  // Python modules first, in one interpreter (one start instead of one per module); only when
  // that fails is each one asked on its own, to say which is missing.
  const modules = deps.filter((d) => d.startsWith('python:') && !cache.has(d)).map((d) => { spec(d); return d.slice('python:'.length); });
  if (modules.length > 1 && runs('python3', ['-c', `import ${modules.join(', ')}`]) === null) for (const m of modules) cache.set(`python:${m}`, null);
  for (const dep of deps) {
    const s = spec(dep);
    if (!cache.has(dep)) cache.set(dep, s.check());
    const problem = cache.get(dep)!;
    if (problem !== null) out.push({ dep, problem, spec: s });
  }
  return out;
}

/** True when every dependency is usable (for setup code that only some tests need). */
export function available(deps: Dependency[]): boolean {
  return missing(deps).length === 0;
}

export function underCi(): boolean {
  return /^(true|1)$/i.test(process.env.CI ?? '');
}

export type TestFn = (name: string, fn: jest.ProvidesCallback, timeout?: number) => void;

/** jest's `test` when every dependency is usable; otherwise a visible skip, or (CI) a failure. */
export function requires(deps: Dependency[]): TestFn {
  const gone = missing(deps);
  if (gone.length === 0) return (name, fn, timeout) => test(name, fn, timeout);
  const what = gone.map((g) => `${g.dep} (${g.problem}; ${g.spec.hint})`).join(', ');
  const fatal = gone.filter((g) => g.spec.providedByTestCommand);
  if (underCi() && fatal.length > 0) {
    return (name, _fn, timeout) =>
      test(name, () => {
        throw new Error(`missing ${fatal.map((g) => g.dep).join(', ')} under CI=true, where npm test provides it: ${what}`);
      }, timeout);
  }
  return (name, fn, timeout) => test.skip(`${name} [skipped: needs ${what}]`, fn, timeout);
}
