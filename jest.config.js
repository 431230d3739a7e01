// One jest run for the whole monorepo. Sources are transformed with swc (types are
// checked separately by `tsc -p tsconfig.tests.json`), and workspace packages resolve
// to their `src/` so a test never mixes a package's source with its compiled copy.
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.[cm]?[tj]s$': ['@swc/jest', { jsc: { target: 'es2022' } }] },
  // Node 20.19+ can require() ES modules; jest's module system cannot yet. The few
  // ESM-only dependencies (cookie, via fastify's inject) are compiled to CommonJS here.
  transformIgnorePatterns: ['/node_modules/(?!(cookie)/)'],
  moduleNameMapper: {
    '^@parley/(protocol|db|auth|bus)$': '<rootDir>/packages/$1/src',
    '^@parley/migrations$': '<rootDir>/migrations/src',
    '^@parley/message-service$': '<rootDir>/services/message/src',
  },
  testMatch: ['<rootDir>/{packages,services,migrations,tests}/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  globalSetup: '<rootDir>/tests/setup/global-setup.ts',
  globalTeardown: '<rootDir>/tests/setup/global-teardown.ts',
  testTimeout: 30000,
};
