// Unit tests sit next to the code (src, *.spec.ts); e2e tests under test/ (*.e2e-spec.ts) use real HTTP and a real database.
const transform = { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.jest.json' }] };

module.exports = {
  // testTimeout is a global option: project entries ignore it.
  testTimeout: 60_000,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      rootDir: '.',
      testMatch: ['<rootDir>/src/**/*.spec.ts'],
      transform,
    },
    {
      displayName: 'e2e',
      testEnvironment: 'node',
      rootDir: '.',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/airflow-real/'],
      transform,
      // Tests run as CommonJS: take the package's CommonJS build (Jest would otherwise pick its ESM default export).
      moduleNameMapper: { '^eventsource-parser$': '<rootDir>/node_modules/eventsource-parser/dist/index.cjs' },
      globalSetup: '<rootDir>/test/setup/global-setup.ts',
      globalTeardown: '<rootDir>/test/setup/global-teardown.ts',
    },
    {
      // Real Apache Airflow 3 (installed from deploy/airflow/requirements.lock, cached) started once by its global-setup;
      // needs PostgreSQL (TEST_DATABASE_URL). AIRFLOW_E2E=off skips it, saying so.
      displayName: 'airflow',
      testEnvironment: 'node',
      rootDir: '.',
      testMatch: ['<rootDir>/test/airflow-real/**/*.e2e-spec.ts'],
      transform,
      globalSetup: '<rootDir>/test/airflow-real/global-setup.ts',
      globalTeardown: '<rootDir>/test/airflow-real/global-teardown.ts',
    },
  ],
};
