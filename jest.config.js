// One jest run for the whole monorepo. ts-jest only transpiles (types are checked by
// `tsc -p tsconfig.tests.json` before jest runs), and workspace packages resolve to
// their `src/` so a test never mixes a package's source with its compiled copy.
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.jest.json' }],
    '/node_modules/@electric-sql/pglite/dist/.+\\.cjs$': '<rootDir>/tests/support/pglite-transform.js',
  },
  transformIgnorePatterns: ['/node_modules/(?!@electric-sql/pglite/)'],
  moduleNameMapper: {
    '^@parley/(protocol|db|auth|bus|batching)$': '<rootDir>/packages/$1/src',
    '^@parley/client$': '<rootDir>/packages/client/src',
    '^@parley/migrations$': '<rootDir>/migrations/src',
    '^@parley/message-service$': '<rootDir>/services/message/src',
    '^@parley/gateway$': '<rootDir>/services/gateway/src',
    '^@parley/standalone$': '<rootDir>/services/standalone/src',
    '^@parley/deploy$': '<rootDir>/deploy/src',
  },
  testMatch: ['<rootDir>/{packages,services,migrations,deploy,tests}/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  globalSetup: '<rootDir>/tests/setup/global-setup.ts',
  globalTeardown: '<rootDir>/tests/setup/global-teardown.ts',
  testTimeout: 30000,
};
