// Two projects: `unit` (pure code, no services) and `integration` (real Kafka, registry,
// DuckDB, Chromium). The integration project's globalSetup reuses a running local stack or
// starts one, so `npm test` works on a fresh machine.
//
// Fuzzing: every project seeds fast-check from FUZZ_SEED (test/fuzz/setup.ts; a fresh seed when
// unset). With FUZZ_FRESH_SEED set — CI does (.ci/run), next to a pinned FUZZ_SEED — a third
// project, `fuzz-fresh`, runs every file that uses fast-check again with that seed and
// FUZZ_FRESH_RUNS (default 1) as its size: the pinned pass replays inputs known to pass, the
// fresh one can still find something.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(fileURLToPath(import.meta.url));
const swc = ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }];
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testEnvironment: 'node',
  setupFiles: ['<rootDir>/test/fuzz/setup.ts'],
};
const services = { globalSetup: '<rootDir>/test/global-setup.ts', globalTeardown: '<rootDir>/test/global-teardown.ts', testTimeout: 120000 };

/** Test files that import fast-check (fuzzers and property tests), relative to the repo. */
function fastCheckFiles() {
  const skip = new Set(['node_modules', '.git', 'dist', '.cache', '.penumbra', '.penumbra-test', 'test-results']);
  const out = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) {
        if (!skip.has(e.name)) walk(path.join(dir, e.name));
      } else if (e.name.endsWith('.test.ts') && /from 'fast-check'/.test(readFileSync(path.join(dir, e.name), 'utf8'))) {
        out.push(path.relative(root, path.join(dir, e.name)));
      }
    }
  };
  walk(root);
  return out.sort();
}

function freshFuzzProject() {
  const seed = process.env.FUZZ_FRESH_SEED;
  if (!seed) return [];
  if (!/^-?\d+$/.test(seed) || Math.abs(Number(seed)) >= 2 ** 31) throw new Error(`FUZZ_FRESH_SEED=${seed} is not a 32-bit integer`);
  const files = fastCheckFiles();
  if (files.length === 0) throw new Error('FUZZ_FRESH_SEED is set but no test file imports fast-check');
  return [{
    ...common,
    ...services,
    displayName: 'fuzz-fresh',
    testMatch: files.map((f) => `<rootDir>/${f}`),
    setupFiles: ['<rootDir>/test/fuzz/fresh.ts', ...common.setupFiles],
  }];
}

export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/**/*.test.ts'], testPathIgnorePatterns: ['/node_modules/', '\\.int\\.test\\.ts$', '/console/dist/'] },
    {
      ...common,
      ...services,
      displayName: 'integration',
      testMatch: ['<rootDir>/**/*.int.test.ts'],
      testPathIgnorePatterns: ['/node_modules/'],
    },
    ...freshFuzzProject(),
  ],
  testTimeout: 30000,
  // kafkajs keeps reconnect timers on sockets a test already disconnected; do not let them hold
  // the run open after every suite finished (open handles are still reported with --detectOpenHandles).
  forceExit: true,
};
