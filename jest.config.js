// Two projects: `unit` (pure code, no services) and `integration` (real Kafka, registry,
// DuckDB, Chromium). The integration project's globalSetup reuses a running local stack or
// starts one, so `npm test` works on a fresh machine.
const swc = ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }];
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testEnvironment: 'node',
};
export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/**/*.test.ts'], testPathIgnorePatterns: ['/node_modules/', '\\.int\\.test\\.ts$', '/console/dist/'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/**/*.int.test.ts'],
      testPathIgnorePatterns: ['/node_modules/'],
      globalSetup: '<rootDir>/test/global-setup.ts',
      globalTeardown: '<rootDir>/test/global-teardown.ts',
      testTimeout: 120000,
    },
  ],
  testTimeout: 30000,
  // kafkajs keeps reconnect timers on sockets a test already disconnected; do not let them hold
  // the run open after every suite finished (open handles are still reported with --detectOpenHandles).
  forceExit: true,
};
